"""Survival: patterns and clinical outcomes in, association tables out.

In: pattern assignments, the clinical table (overall survival, PFS) and the ``patients`` table.
Out: Kaplan-Meier and Cox tables, landmark analysis, time-varying Cox, cross-validated pattern
assignment, and pattern / best-response association.
"""

from metevo.survival._survival import (
    cox_model,
    cross_validated_patterns,
    kaplan_meier,
    landmark_data,
    pattern_survival,
    response_association,
    survival_data,
    time_varying_cox,
)

__all__ = ["cox_model", "cross_validated_patterns", "kaplan_meier", "landmark_data", "pattern_survival", "response_association", "survival_data", "time_varying_cox"]
