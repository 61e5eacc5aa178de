"""Prediction and follow-up: what the observed trajectory says about the next months.

In: a ``patient_trajectories`` table (patient x visit; ``study_day``, ``target_sum_mm``, lesion
counts), the clinical table (``os_days``/``os_event``, ``pfs_days``/``pfs_event``) and optionally
each patient's evolution pattern. Out:

- :func:`predict`: dynamic prediction at every visit (landmark super-model, van Houwelingen) of
  the risk of death and of progression within 6 and 12 months, with its cross-validated
  performance (time-dependent AUC, Brier score, calibration, gain over a static model):
  ``predictions.parquet``, ``prediction_performance.parquet``,
  ``prediction_calibration.parquet``;
- :func:`follow_up`: detection delay of RECIST progression and scans per year under imaging
  schedules (6, 8, 9, 12 weeks; adaptive), per pattern: ``follow_up.parquet``.
"""

from metevo.followup._landmark import LandmarkSupermodel
from metevo.followup._predict import PredictionResult, predict
from metevo.followup._schedules import (
    DEFAULT_SCHEDULES,
    AdaptiveSchedule,
    FollowUpResult,
    follow_up,
)

__all__ = [
    "AdaptiveSchedule",
    "DEFAULT_SCHEDULES",
    "FollowUpResult",
    "LandmarkSupermodel",
    "PredictionResult",
    "follow_up",
    "predict",
]
