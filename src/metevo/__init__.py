"""metevo: longitudinal CT analysis of colorectal liver metastases.

Lesion graph across visits, size/radiomic/count trajectories, RECIST 1.1, and evolution patterns
related to survival and response. The public API is re-exported here; see ``docs/`` and the
notebooks for a tour.
"""

from metevo import datasets
from metevo._cohort_run import AnalysisResult, analyze
from metevo._patterns_run import run_patterns
from metevo._version import __version__
from metevo.cohort import Cohort, CohortOptions, Patient, Scan, open_cohort
from metevo.datasets import (
    SyntheticCohort,
    load_demo_cohort,
    make_synthetic_cohort,
    make_synthetic_trajectories,
)
from metevo.graph import LesionGraph, lesion_graph
from metevo.kinetics import fit_growth_kinetics
from metevo.lesions import lesions
from metevo.outcomes import best_overall_response, imaging_pfs
from metevo.patterns import (
    EvolutionPatterns,
    evolution_patterns,
    lesion_pattern_mix,
    lesion_patterns,
)
from metevo.pipeline import PatientResult, analyze_patient
from metevo.radiomics import RadiomicsSettings, feature_catalog, radiomic_features
from metevo.recist import recist, recist_from_measurements
from metevo.scans import scans_table
from metevo.sdtm import recist_from_sdtm, to_sdtm
from metevo.survival import (
    cross_validated_patterns,
    pattern_survival,
    response_association,
    time_varying_cox,
)
from metevo.trajectories import trajectories

__all__ = [
    "AnalysisResult",
    "Cohort",
    "CohortOptions",
    "EvolutionPatterns",
    "LesionGraph",
    "Patient",
    "PatientResult",
    "RadiomicsSettings",
    "Scan",
    "SyntheticCohort",
    "__version__",
    "analyze",
    "analyze_patient",
    "best_overall_response",
    "cross_validated_patterns",
    "datasets",
    "evolution_patterns",
    "feature_catalog",
    "fit_growth_kinetics",
    "imaging_pfs",
    "lesion_graph",
    "lesion_pattern_mix",
    "lesion_patterns",
    "lesions",
    "load_demo_cohort",
    "make_synthetic_cohort",
    "make_synthetic_trajectories",
    "open_cohort",
    "pattern_survival",
    "radiomic_features",
    "recist",
    "recist_from_measurements",
    "recist_from_sdtm",
    "response_association",
    "run_patterns",
    "scans_table",
    "time_varying_cox",
    "to_sdtm",
    "trajectories",
]
