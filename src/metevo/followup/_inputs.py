"""Checks of the tables that enter the follow-up module, and its output column names.

``check_trajectories`` validates a ``patient_trajectories`` table (the pipeline's, or the
image-free one of :func:`metevo.datasets.make_synthetic_trajectories`) once, at the boundary,
and returns the columns the module uses, sorted by patient and study day. The output column
names are the classes of :mod:`metevo.columns` (re-exported here for the module's use).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from metevo.columns import FollowUp, PredictionCalibration, PredictionPerformance, Predictions

__all__ = [
    "FollowUp",
    "PredictionCalibration",
    "PredictionPerformance",
    "Predictions",
    "check_patterns",
    "check_trajectories",
]

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
