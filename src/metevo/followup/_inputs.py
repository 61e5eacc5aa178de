"""Checks of the tables that enter the follow-up module, and its output column names.

``check_trajectories`` validates a ``patient_trajectories`` table (the pipeline's, or the
image-free one of :func:`metevo.datasets.make_synthetic_trajectories`) once, at the boundary,
and returns the columns the module uses, sorted by patient and study day.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


class Predictions:
    """``predictions.parquet``: one row per patient x visit x horizon x endpoint."""

    PATIENT_ID = "patient_id"
    TIMEPOINT = "timepoint"
    LANDMARK_DAYS = "landmark_days"
    HORIZON_DAYS = "horizon_days"
    ENDPOINT = "endpoint"
    RISK = "risk"
    RISK_LOWER = "risk_lower"
    RISK_UPPER = "risk_upper"
    STATIC_RISK = "static_risk"


class PredictionPerformance:
    """``prediction_performance.parquet``: one row per landmark x horizon x endpoint x model x
    metric (cross-validated)."""

    LANDMARK_DAYS = "landmark_days"
    HORIZON_DAYS = "horizon_days"
    ENDPOINT = "endpoint"
    SCOPE = "scope"
    MODEL = "model"
    METRIC = "metric"
    ESTIMATE = "estimate"
    CI_LOWER = "ci_lower"
    CI_UPPER = "ci_upper"
    N_AT_RISK = "n_at_risk"
    N_EVENTS = "n_events"


class PredictionCalibration:
    """``prediction_calibration.parquet``: one row per landmark x horizon x endpoint x decile."""

    LANDMARK_DAYS = "landmark_days"
    HORIZON_DAYS = "horizon_days"
    ENDPOINT = "endpoint"
    DECILE = "decile"
    N_PATIENTS = "n_patients"
    PREDICTED_RISK = "predicted_risk"
    OBSERVED_RISK = "observed_risk"


class FollowUp:
    """``follow_up.parquet``: one row per pattern x imaging schedule."""

    PATTERN = "pattern"
    SCHEDULE = "schedule"
    INTERVAL_DAYS = "interval_days"
    N_PATIENTS = "n_patients"
    N_PROGRESSIONS = "n_progressions"
    MEDIAN_DELAY_DAYS = "median_delay_days"
    MEDIAN_DELAY_CI_LOWER = "median_delay_ci_lower"
    MEDIAN_DELAY_CI_UPPER = "median_delay_ci_upper"
    P90_DELAY_DAYS = "p90_delay_days"
    P90_DELAY_CI_LOWER = "p90_delay_ci_lower"
    P90_DELAY_CI_UPPER = "p90_delay_ci_upper"
    SCANS_PER_YEAR = "scans_per_year"
    SCANS_PER_YEAR_CI_LOWER = "scans_per_year_ci_lower"
    SCANS_PER_YEAR_CI_UPPER = "scans_per_year_ci_upper"
    DETECTED_8W_SHARE = "detected_8w_share"
    DETECTED_8W_CI_LOWER = "detected_8w_ci_lower"
    DETECTED_8W_CI_UPPER = "detected_8w_ci_upper"
    EARLY_CALL_SHARE = "early_call_share"
    EARLY_CALL_CI_LOWER = "early_call_ci_lower"
    EARLY_CALL_CI_UPPER = "early_call_ci_upper"
    MEASUREMENT_CV = "measurement_cv"
    HORIZON_DAYS = "horizon_days"


PATIENT_ID = "patient_id"
TIMEPOINT = "timepoint"
STUDY_DAY = "study_day"
TARGET_SUM = "target_sum_mm"
SUM_LD = "sum_ld_mm"
N_NEW = "n_new_lesions"
N_GONE = "n_disappeared_lesions"
PATTERN = "pattern"
ALL = "all"
REQUIRED = (PATIENT_ID, TIMEPOINT, STUDY_DAY, TARGET_SUM, N_NEW)


def check_trajectories(table: pd.DataFrame, *, name: str = "trajectories") -> pd.DataFrame:
    """Validated copy of a patient x visit trajectory table, sorted by patient and study day.

    Required columns: ``patient_id``, ``timepoint``, ``study_day`` (days from treatment start),
    ``target_sum_mm`` (NaN allowed: a patient without a measurable target), ``n_new_lesions``;
    ``n_disappeared_lesions`` and ``sum_ld_mm`` are used when present (0 / NaN otherwise).
    """
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"{name}: expected a pandas DataFrame, found {type(table).__name__}.")
    missing = [c for c in REQUIRED if c not in table.columns]
    if missing:
        raise ValueError(
            f"{name}: missing column(s) {missing}; expected {list(REQUIRED)}, found "
            f"{list(table.columns)}. Pass the patient_trajectories table (one row per patient "
            "and visit)."
        )
    if table.empty:
        raise ValueError(f"{name}: the table has no rows; expected one row per patient and visit.")
    out = pd.DataFrame(
        {
            PATIENT_ID: table[PATIENT_ID].astype(str).to_numpy(),
            TIMEPOINT: table[TIMEPOINT].astype(str).to_numpy(),
            STUDY_DAY: pd.to_numeric(table[STUDY_DAY], errors="coerce").to_numpy(float),
            TARGET_SUM: pd.to_numeric(table[TARGET_SUM], errors="coerce").to_numpy(float),
            N_NEW: pd.to_numeric(table[N_NEW], errors="coerce").fillna(0).to_numpy(int),
            SUM_LD: (
                pd.to_numeric(table[SUM_LD], errors="coerce").to_numpy(float)
                if SUM_LD in table.columns
                else np.full(len(table), np.nan)
            ),
            N_GONE: (
                pd.to_numeric(table[N_GONE], errors="coerce").fillna(0).to_numpy(int)
                if N_GONE in table.columns
                else np.zeros(len(table), int)
            ),
        }
    )
    bad = out[STUDY_DAY].isna()
    if bad.any():
        row = out.loc[bad].iloc[0]
        raise ValueError(
            f"{name}: patient {row[PATIENT_ID]!r}, timepoint {row[TIMEPOINT]!r} has no "
            f"'{STUDY_DAY}' (days from treatment start); give the clinical table a "
            "treatment_start for every patient."
        )
    neg = out[TARGET_SUM] < 0
    if neg.any():
        row = out.loc[neg].iloc[0]
        raise ValueError(
            f"{name}: patient {row[PATIENT_ID]!r}, timepoint {row[TIMEPOINT]!r} has a negative "
            f"'{TARGET_SUM}' ({row[TARGET_SUM]}); expected a sum of diameters >= 0 mm."
        )
    dup = out.duplicated([PATIENT_ID, TIMEPOINT])
    if dup.any():
        row = out.loc[dup].iloc[0]
        raise ValueError(
            f"{name}: patient {row[PATIENT_ID]!r} has timepoint {row[TIMEPOINT]!r} twice; "
            "expected one row per patient and visit."
        )
    return out.sort_values([PATIENT_ID, STUDY_DAY], kind="stable", ignore_index=True)


def check_patterns(patterns, ids: np.ndarray) -> pd.Series:
    """Pattern label per patient (index ``patient_id``); ``"all"`` when ``patterns`` is None.

    ``patterns`` is a table with ``patient_id`` and ``pattern`` (``patterns.parquet``, or the
    synthetic ground truth) or a mapping patient -> pattern. Patients without a pattern are
    labelled ``"unassigned"``.
    """
    if patterns is None:
        return pd.Series(ALL, index=pd.Index(ids, name=PATIENT_ID), name=PATTERN)
    if isinstance(patterns, pd.DataFrame):
        missing = [c for c in (PATIENT_ID, PATTERN) if c not in patterns.columns]
        if missing:
            raise ValueError(
                f"patterns: missing column(s) {missing}; expected 'patient_id' and 'pattern', "
                f"found {list(patterns.columns)}."
            )
        mapping = dict(zip(patterns[PATIENT_ID].astype(str), patterns[PATTERN], strict=True))
    elif isinstance(patterns, dict):
        mapping = {str(k): v for k, v in patterns.items()}
    else:
        raise TypeError(
            "patterns: expected a DataFrame with patient_id and pattern, or a dict, found "
            f"{type(patterns).__name__}."
        )
    labels = [mapping.get(i) for i in ids]
    labels = [
        "unassigned" if (v is None or (isinstance(v, float) and np.isnan(v))) else str(v)
        for v in labels
    ]
    return pd.Series(labels, index=pd.Index(ids, name=PATIENT_ID), name=PATTERN)
