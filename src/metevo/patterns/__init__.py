"""Evolution patterns: trajectories in, patient clusters out.

In: the ``patient_trajectories`` table (one row per patient per visit). Out: fitted
:class:`EvolutionPatterns` (patterns, their names, k selection), the latent-class trajectory
model :class:`LatentClassTrajectories` (mixture of linear mixed models, BIC/ICL choice of k),
lesion-level patterns, :func:`match_patterns` (pair two fits' patterns by their courses, so a
landmark fit is named like the full-follow-up one), and :func:`pattern_analysis`, the cohort-level step writing
``patterns``/``pattern_selection`` and the survival and response association tables.
"""

from metevo.patterns._latent_class import LatentClassTrajectories, latent_class_trajectories
from metevo.patterns._lesion_patterns import lesion_pattern_mix, lesion_patterns
from metevo.patterns._match import consistent_names, course_features, match_patterns
from metevo.patterns._names import name_pattern
from metevo.patterns._patterns import EvolutionPatterns, evolution_patterns
from metevo.patterns._run import PatternAnalysis, pattern_analysis

__all__ = [
    "EvolutionPatterns",
    "LatentClassTrajectories",
    "PatternAnalysis",
    "consistent_names",
    "course_features",
    "evolution_patterns",
    "latent_class_trajectories",
    "lesion_pattern_mix",
    "lesion_patterns",
    "match_patterns",
    "name_pattern",
    "pattern_analysis",
]
