"""Survival: patterns and clinical outcomes in, association tables out.

In: pattern assignments, the clinical table (overall survival, PFS) and the ``patients`` table.
Out: Kaplan-Meier and Cox tables, landmark analysis without look-ahead
(:func:`landmark_pattern_survival`), time-varying Cox, cross-validated pattern
assignment, and pattern / best-response association.
"""

from metevo.survival._landmark import landmark_pattern_survival
from metevo.survival._patterns_cv import (
    SurvivalResult,
    cross_validated_patterns,
    pattern_survival,
    time_varying_cox,
)
from metevo.survival._response import response_association
from metevo.survival._survival import (
    cox_model,
    kaplan_meier,
    landmark_data,
    out_of_fold_concordance,
    survival_data,
)

__all__ = [
    "SurvivalResult",
    "cox_model",
    "cross_validated_patterns",
    "kaplan_meier",
    "landmark_data",
    "landmark_pattern_survival",
    "out_of_fold_concordance",
    "pattern_survival",
    "response_association",
    "survival_data",
    "time_varying_cox",
]
