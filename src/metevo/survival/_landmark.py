"""Landmark analysis of evolution patterns without look-ahead.

:func:`landmark_pattern_survival` refits a pattern model on what was known at the landmark day
``L`` and relates it to survival counted from ``L`` (Anderson, Cain & Gelber, J Clin Oncol
1983;1:710-719):

1. patients whose event or censoring came on or before ``L`` are left out (and counted);
2. every remaining patient's scans are cut to those **on or before** ``L`` (no visit window
   after it: a progression scan on day ``L + 7`` can neither shape a pattern nor be its cause);
3. the number of patterns is selected again on those data (not reused from a full-follow-up
   fit), with the estimator's own rule;
4. each patient's pattern comes from a model fitted on the other folds (K-fold), paired with
   the landmark model's patterns by mean course (:func:`metevo.patterns.match_patterns`), and
   the Cox concordance is out-of-fold as well;
5. with a full-follow-up model given, the landmark patterns take the names of the full-fit
   patterns they match by mean course over days ``0..L``
   (:func:`metevo.patterns.consistent_names`), so the two fits are named consistently.

Works with any pattern estimator of :mod:`metevo.patterns` that follows the estimator contract
(``EvolutionPatterns``, ``LatentClassTrajectories``).
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import pandas as pd

from metevo.patterns._patterns_base import clone_estimator
from metevo.survival._patterns_cv import (
    SurvivalResult,
    cross_validated_patterns,
    pattern_survival,
)
from metevo.survival._survival import MIN_EVENTS_PER_PARAMETER, TIME, survival_data

__all__ = ["landmark_pattern_survival"]

#: constructor argument of the number of patterns, per estimator
_K_ARGUMENTS = ("n_patterns", "n_classes")


def _k_argument(estimator: Any) -> str:
    params = inspect.signature(type(estimator).__init__).parameters
    for arg in _K_ARGUMENTS:
        if arg in params:
            return arg
    raise TypeError(f"{type(estimator).__name__} has no n_patterns / n_classes argument.")


def _cut(table: pd.DataFrame | None, ids: set[str], landmark_days: float) -> pd.DataFrame | None:
    """Rows of the given patients with a scan on or before the landmark (study day)."""
    if table is None:
        return None
    time = (
        "study_day" if "study_day" in table.columns and table["study_day"].notna().all() else "days"
    )
    keep = table["patient_id"].astype(str).isin(ids) & (
        pd.to_numeric(table[time], errors="coerce") <= landmark_days
    )
    return table.loc[keep].reset_index(drop=True)


def _rename_like(model: Any, reference: Any) -> None:
    """Give the landmark patterns the names of the full-fit patterns they match by mean course
    (:func:`metevo.patterns.consistent_names`), in every table the model holds."""
    from metevo.patterns._match import consistent_names

    names = consistent_names(reference, model)
    model.names_ = names
    for table in ("patterns_", "classes_", "posteriors_"):
        frame = getattr(model, table, None)
        if isinstance(frame, pd.DataFrame) and {"pattern", "pattern_id"} <= set(frame.columns):
            ids = frame["pattern_id"]
            frame["pattern"] = [
                names[int(i)] if pd.notna(i) and int(i) >= 0 else None for i in ids
            ]


def landmark_pattern_survival(
    estimator: Any,
    trajectories: pd.DataFrame,
    clinical: pd.DataFrame | None,
    *,
    landmark_days: float,
    patients: pd.DataFrame | None = None,
    lesion_trajectories: pd.DataFrame | None = None,
    reference: Any = None,
    endpoint: str = "os",
    covariates: list[str] | str = "auto",
    n_splits: int = 5,
    min_events_per_parameter: float = MIN_EVENTS_PER_PARAMETER,
    random_state: int | None = 0,
) -> SurvivalResult:
    """Patterns known at ``landmark_days`` and the survival counted from it, without look-ahead.

    Parameters
    ----------
    estimator : pattern estimator (fitted or not)
        Its settings are reused; the number of patterns is selected again on the landmark data
        (``n_patterns``/``n_classes`` set to ``"auto"``), with ``landmark_days`` and no visit
        window after the landmark for ``EvolutionPatterns``, and the horizon at the landmark
        for ``LatentClassTrajectories``.
    trajectories : DataFrame
        ``patient_trajectories`` (``patient_id``, ``study_day`` or ``days``, the value column).
    clinical : DataFrame or None
        Clinical table (endpoint, covariates).
    landmark_days : float
        Landmark, days from treatment start.
    patients, lesion_trajectories : DataFrame or None
        ``patients.parquet`` (for ``endpoint="imaging_pfs"``); lesion-level trajectories (for
        estimators that use them).
    reference : fitted pattern model or None
        The full-follow-up fit; the landmark patterns are named after the reference patterns
        they match by centroid over days 0 to ``landmark_days``.
    endpoint, covariates, min_events_per_parameter
        See :func:`~metevo.survival.pattern_survival`.
    n_splits : int
        Folds of the cross-validated pattern assignment and of the out-of-fold concordance.

    Returns
    -------
    SurvivalResult
        Kaplan-Meier and Cox tables (``n_excluded_landmark`` counts the patients left out
        because their event or censoring came on or before the landmark), ``model`` (the
        landmark pattern model), ``assignment`` (cross-validated patterns) and ``n_excluded``.
    """
    landmark_days = float(landmark_days)
    if not np.isfinite(landmark_days) or landmark_days <= 0:
        raise ValueError(
            f"landmark_days must be > 0 days after treatment start; found {landmark_days}."
        )
    surv = survival_data(clinical, patients, endpoint=endpoint)
    with_traj = set(trajectories["patient_id"].astype(str))
    surv = surv[surv["patient_id"].isin(with_traj)]
    at_risk = set(surv.loc[surv[TIME] > landmark_days, "patient_id"])
    n_excluded = int((surv[TIME] <= landmark_days).sum())
    traj = _cut(trajectories, at_risk, landmark_days)
    lesions = _cut(lesion_trajectories, at_risk, landmark_days)
    karg = _k_argument(estimator)
    settings = dict(
        landmark_days=landmark_days, visit_tolerance_days=0.0, horizon_days=landmark_days
    )
    model = clone_estimator(estimator, **{karg: "auto"}, **settings).fit(
        traj, lesion_trajectories=lesions
    )
    if reference is not None:
        _rename_like(model, reference)
    assignment = cross_validated_patterns(
        model, traj, lesion_trajectories=lesions, n_splits=n_splits, random_state=random_state
    )
    assignment["landmark_days"] = landmark_days
    res = pattern_survival(
        assignment,
        clinical,
        patients=patients,
        trajectories=trajectories,
        endpoint=endpoint,
        landmark_days=landmark_days,
        covariates=covariates,
        pattern_assignment=f"cross-validated ({n_splits}-fold), fitted on scans up to the landmark",
        min_events_per_parameter=min_events_per_parameter,
        random_state=random_state,
        excluded_before=n_excluded,
    )
    res.model, res.assignment = model, assignment
    return res
