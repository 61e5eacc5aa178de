"""Survival: patterns and clinical outcomes in, association tables out.

In: pattern assignments, the clinical table (overall survival, PFS) and the ``patients`` table.
Out: Kaplan-Meier and Cox tables, landmark analysis, time-varying Cox, cross-validated pattern
assignment, and pattern / best-response association.
"""

from metevo.survival._patterns_cv import (
    SurvivalResult,
    cross_validated_patterns,
    pattern_survival,
    time_varying_cox,
)
from metevo.survival._response import response_association
from metevo.survival._survival import cox_model, kaplan_meier, landmark_data, survival_data

__all__ = [
    "SurvivalResult",
    "cox_model",
    "cross_validated_patterns",
    "kaplan_meier",
    "landmark_data",
    "pattern_survival",
    "response_association",
    "survival_data",
    "time_varying_cox",
]
