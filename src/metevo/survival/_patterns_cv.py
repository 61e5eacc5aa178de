"""Survival of evolution patterns: cross-validated pattern assignment, the landmark Kaplan-Meier +
Cox analysis of patterns (:func:`pattern_survival`) and the time-varying Cox model.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from metevo.columns import SurvivalCox as SC
from metevo.columns import SurvivalKM as SK
from metevo.exceptions import ClinicalTableError, DataQualityWarning, StatisticsWarning
from metevo.survival._survival import (
    DEFAULT_COVARIATES,
    ENDPOINTS,
    EVENT,
    MIN_EVENTS_PER_PARAMETER,
    PATTERN,
    TIME,
    cox_model,
    cox_table,
    kaplan_meier,
    landmark_data,
    survival_data,
)

__all__ = ["SurvivalResult", "cross_validated_patterns", "pattern_survival", "time_varying_cox"]


# ---------------------------------------------------------------------------- CV patterns
def cross_validated_patterns(
    model: Any,
    trajectories: pd.DataFrame,
    *,
    lesion_trajectories: pd.DataFrame | None = None,
    n_splits: int = 5,
    random_state: int | None = 0,
) -> pd.DataFrame:
    """Pattern of each patient from a model fitted *without* that patient (K-fold).

    Each fold refits ``model``'s settings with its chosen number of patterns
    (``model.fixed_k_copy()``: :class:`~metevo.patterns.EvolutionPatterns` or
    :class:`~metevo.patterns.LatentClassTrajectories`) on the other folds' patients, assigns
    the held-out patients, and maps the fold's patterns onto the reference model's by matching
    their mean courses (:func:`metevo.patterns.match_patterns`, Hungarian algorithm), so names
    agree.

    Returns
    -------
    DataFrame with ``patient_id``, ``pattern``, ``pattern_id`` for the patients with a
    trajectory.
    """
    from metevo.patterns._match import match_patterns

    ids = np.asarray(model.patient_ids_)
    rng = np.random.default_rng(random_state)
    folds = rng.permutation(ids.size) % n_splits
    pid = trajectories["patient_id"].astype(str)
    lpid = (
        lesion_trajectories["patient_id"].astype(str) if lesion_trajectories is not None else None
    )
    out = []
    for f in range(n_splits):
        test_ids = set(ids[folds == f])
        train_mask = ~pid.isin(test_ids) & pid.isin(set(ids))
        train = trajectories[train_mask]
        test = trajectories[pid.isin(test_ids)]
        l_train = l_test = None
        if lesion_trajectories is not None:
            l_train = lesion_trajectories[lpid.isin(set(pid[train_mask]))]
            l_test = lesion_trajectories[lpid.isin(test_ids)]
        fold = model.fixed_k_copy().fit(train, lesion_trajectories=l_train)
        mapping = match_patterns(model, fold)["reference_pattern_id"].to_numpy()
        pred = fold.predict(test, lesion_trajectories=l_test)
        pred = pred[pred >= 0]
        ref_ids = np.array([mapping[int(v)] for v in pred.to_numpy()], dtype=int)
        out.append(pd.DataFrame({"patient_id": pred.index.astype(str), "pattern_id": ref_ids}))
    table = pd.concat(out, ignore_index=True).sort_values("patient_id", ignore_index=True)
    table["pattern"] = [model.names_[i] for i in table["pattern_id"]]
    return table[["patient_id", "pattern", "pattern_id"]]


# ---------------------------------------------------------------------------- orchestration
@dataclass
class SurvivalResult:
    """Tables and lifelines objects of :func:`pattern_survival`."""

    km: pd.DataFrame
    cox: pd.DataFrame
    km_fitters: dict[str, Any] = field(default_factory=dict)
    logrank: Any = None
    cox_fitter: Any = None
    data: pd.DataFrame | None = None
    message: str = ""
    #: patients with a pattern whose event or censoring came on or before the landmark
    n_excluded: int = 0
    #: the pattern model fitted on the landmark data (:func:`landmark_pattern_survival`)
    model: Any = None
    #: cross-validated pattern of each landmark patient (``patient_id``, ``pattern``, ...)
    assignment: pd.DataFrame | None = None

    def __repr__(self) -> str:
        if self.km.empty:
            return f"SurvivalResult(skipped: {self.message})"
        p = self.km[SK.LOGRANK_P_VALUE].iloc[0]
        n = self.data.shape[0] if self.data is not None else 0
        head = f"SurvivalResult({n} patients, {len(self.km_fitters)} KM curves, log-rank p={p:.3g}"
        if self.cox.empty or not bool(self.cox[SC.FITTED].iloc[0]):
            return f"{head}, {self.message or 'no Cox model'})"
        return f"{head}, Cox concordance={self.cox[SC.CONCORDANCE].iloc[0]:.3f} (out-of-fold))"


def _baseline_burden(trajectories: pd.DataFrame | None) -> pd.DataFrame | None:
    if trajectories is None or "target_sum_mm" not in trajectories.columns:
        return None
    t = trajectories.copy()
    t["patient_id"] = t["patient_id"].astype(str)
    time = "study_day" if "study_day" in t.columns else "days"
    t = t.sort_values(["patient_id", time])
    base = t[t[time] <= 0].groupby("patient_id").tail(1)
    rest = t[~t["patient_id"].isin(base["patient_id"])].groupby("patient_id").head(1)
    both = pd.concat([base, rest])
    return pd.DataFrame(
        {
            "patient_id": both["patient_id"].to_numpy(),
            "baseline_target_sum_mm": pd.to_numeric(both["target_sum_mm"]).to_numpy(float),
        }
    )


def pattern_survival(
    patterns: pd.DataFrame,
    clinical: pd.DataFrame | None,
    *,
    patients: pd.DataFrame | None = None,
    trajectories: pd.DataFrame | None = None,
    endpoint: str = "os",
    landmark_days: float | None = None,
    covariates: list[str] | str = "auto",
    pattern_assignment: str = "cross-validated (5-fold)",
    min_events_per_parameter: float = MIN_EVENTS_PER_PARAMETER,
    random_state: int | None = 0,
    excluded_before: int = 0,
) -> SurvivalResult:
    """Kaplan-Meier, log-rank and Cox by pattern, counted from a landmark.

    Parameters
    ----------
    patterns : DataFrame
        ``patient_id``, ``pattern``, ``pattern_id`` and ``landmark_days`` (the landmark the
        patterns were fitted with; see :class:`~metevo.patterns.EvolutionPatterns`). Use the
        cross-validated assignment (:func:`cross_validated_patterns`) for honest hazard ratios.
    clinical : DataFrame or None
        Clinical table (endpoint times, covariates).
    patients : DataFrame or None
        ``patients.parquet`` (for ``endpoint="imaging_pfs"``).
    trajectories : DataFrame or None
        ``patient_trajectories`` (for the ``baseline_target_sum_mm`` covariate).
    endpoint : {"os", "pfs", "imaging_pfs"}
    landmark_days : float or None
        Landmark; None takes the patterns' own landmark. Must be >= that landmark.
    covariates : list of str or "auto"
        Cox covariates besides the pattern; "auto" takes those of
        ``age, arm, ecog, sex, ras_status, baseline_target_sum_mm`` that are present.
    min_events_per_parameter : float
        Below this many events per Cox parameter the Cox model is not fitted (the
        ``survival_cox`` rows say why; see :func:`cox_model`).
    random_state : int or None
        Seed of the folds of the out-of-fold concordance.
    excluded_before : int
        Patients the caller already left out because their event or censoring came on or before
        the landmark (:func:`landmark_pattern_survival` does so before fitting); added to
        ``n_excluded_landmark``.

    Returns
    -------
    SurvivalResult
        With ``message`` set (and empty tables) when the analysis cannot run (no events).
    """
    if "landmark_days" in patterns.columns:
        lm = pd.to_numeric(patterns["landmark_days"], errors="coerce").dropna()
        fitted_landmark = float(lm.max()) if len(lm) else np.nan
    else:
        fitted_landmark = np.nan
    if not np.isfinite(fitted_landmark):
        raise ValueError(
            "the patterns were fitted without a landmark (their trajectories use scans of the "
            "whole follow-up), so they would leak post-landmark information into a survival "
            "model (guarantee-time bias). Fit EvolutionPatterns(landmark_days=D) and pass its "
            "patterns, or use metevo.run_patterns(..., landmark_days=D)."
        )
    if landmark_days is None:
        landmark_days = float(fitted_landmark)
    if landmark_days < fitted_landmark:
        raise ValueError(
            f"landmark_days={landmark_days:g} is earlier than the landmark the patterns were "
            f"fitted with ({fitted_landmark:g} d); the trajectory horizon can never exceed the "
            "landmark. Use landmark_days >= the patterns' landmark."
        )
    surv = survival_data(clinical, patients, endpoint=endpoint)
    pat = patterns.dropna(subset=["pattern"])[["patient_id", "pattern", "pattern_id"]].copy()
    pat["patient_id"] = pat["patient_id"].astype(str)
    no_clin = sorted(set(pat["patient_id"]) - set(surv["patient_id"]))
    if no_clin:
        warnings.warn(
            f"{len(no_clin)} patient(s) with a pattern have no {endpoint} time in the "
            f"{'clinical table' if ENDPOINTS[endpoint][2] == 'clinical' else 'patients table'} "
            f"(e.g. {no_clin[:3]}); they are left out of the survival analysis.",
            DataQualityWarning,
            stacklevel=2,
        )
    data = pat.merge(surv, on="patient_id", how="inner")
    clin = clinical.copy() if clinical is not None else pd.DataFrame({"patient_id": []})
    clin["patient_id"] = clin["patient_id"].astype(str)
    base = _baseline_burden(trajectories)
    if base is not None:
        clin = clin.merge(base, on="patient_id", how="outer")
    if covariates == "auto":
        covariates = [c for c in DEFAULT_COVARIATES if c in clin.columns]
    missing = [c for c in covariates if c not in clin.columns]
    if missing:
        raise ClinicalTableError(
            f"covariate(s) {missing} are not in the clinical table (columns: "
            f"{list(clin.columns)}); drop them from covariates= or add the columns."
        )
    data = data.merge(clin[["patient_id", *covariates]], on="patient_id", how="left")
    n_excluded = excluded_before + int((data[TIME] <= landmark_days).sum())
    data = landmark_data(data, landmark_days)
    n_ev = int(data[EVENT].sum())
    if n_ev == 0:
        msg = (
            f"survival skipped: no {endpoint} events among the {len(data)} patients alive and "
            f"uncensored at the landmark (day {landmark_days:g})."
        )
        warnings.warn(msg, StatisticsWarning, stacklevel=2)
        return SurvivalResult(
            km=pd.DataFrame(), cox=pd.DataFrame(), data=data, message=msg, n_excluded=n_excluded
        )
    km, fitters, logrank = kaplan_meier(
        data, PATTERN, endpoint=endpoint, landmark_days=landmark_days
    )
    km[SK.N_EXCLUDED_LANDMARK] = n_excluded
    if data[PATTERN].nunique() < 2:
        msg = "all patients at the landmark share one pattern; no Cox model by pattern."
        warnings.warn(msg, StatisticsWarning, stacklevel=2)
        return SurvivalResult(
            km=km,
            cox=pd.DataFrame(),
            km_fitters=fitters,
            data=data,
            message=msg,
            n_excluded=n_excluded,
        )
    order = data.drop_duplicates(PATTERN).sort_values("pattern_id")[PATTERN].tolist()
    best = order[0]
    data[PATTERN] = pd.Categorical(data[PATTERN], categories=order)
    cox, cph = cox_model(
        data,
        [PATTERN, *covariates],
        reference={PATTERN: best},
        endpoint=endpoint,
        landmark_days=landmark_days,
        pattern_assignment=pattern_assignment,
        min_events_per_parameter=min_events_per_parameter,
        random_state=random_state,
    )
    cox.insert(cox.columns.get_loc(SC.LANDMARK_DAYS) + 1, SC.N_EXCLUDED_LANDMARK, n_excluded)
    message = ""
    if not cox[SC.FITTED].all():
        message = f"Cox model and forest plot skipped: {cox[SC.NOTE].iloc[0]}"
    return SurvivalResult(
        km=km,
        cox=cox,
        km_fitters=fitters,
        logrank=logrank,
        cox_fitter=cph,
        data=data,
        message=message,
        n_excluded=n_excluded,
    )


def time_varying_cox(
    trajectories: pd.DataFrame,
    clinical: pd.DataFrame | None,
    *,
    patients: pd.DataFrame | None = None,
    endpoint: str = "os",
    features: tuple[str, ...] = ("log_ratio_target_sum", "n_new_lesions"),
) -> tuple[pd.DataFrame, Any]:
    """Time-varying Cox model (lifelines ``CoxTimeVaryingFitter``) on per-visit features.

    Each patient contributes intervals ``[visit_j, visit_{j+1})`` from treatment start on, with
    the features measured at visit ``j`` (values are only known once the scan is read, so no
    landmark is needed). ``log_ratio_target_sum`` is ``log(target_sum_mm / baseline)``;
    other features are columns of ``patient_trajectories``.

    Returns
    -------
    table : DataFrame
        ``survival_cox`` rows with ``model = "cox_time_varying"``.
    fitter : lifelines.CoxTimeVaryingFitter
    """
    from lifelines import CoxTimeVaryingFitter

    surv = survival_data(clinical, patients, endpoint=endpoint).set_index("patient_id")
    t = trajectories.copy()
    t["patient_id"] = t["patient_id"].astype(str)
    time = "study_day" if "study_day" in t.columns else "days"
    t = t.sort_values(["patient_id", time])
    base = _baseline_burden(trajectories).set_index("patient_id")["baseline_target_sum_mm"]
    t["log_ratio_target_sum"] = np.log(
        (pd.to_numeric(t["target_sum_mm"]) + 1.0) / (t["patient_id"].map(base) + 1.0)
    )
    rows = []
    for pid, g in t.groupby("patient_id", sort=True):
        if pid not in surv.index:
            continue
        stop_all, ev = float(surv.at[pid, TIME]), int(surv.at[pid, EVENT])
        days = np.maximum(g[time].to_numpy(float), 0.0)
        vals = g[list(features)].to_numpy(float)
        for j in range(len(days)):
            start = days[j]
            stop = days[j + 1] if j + 1 < len(days) else stop_all
            stop = min(stop, stop_all)
            if stop <= start:
                continue
            last = stop == stop_all
            rows.append((pid, start, stop, ev if last else 0, *vals[j]))
            if last:
                break
    long = pd.DataFrame(rows, columns=["patient_id", "start", "stop", EVENT, *features])
    long = long.dropna()
    constant = [f for f in features if long[f].std(ddof=0) == 0]
    long = long.drop(columns=constant)
    note = f"constant feature(s) {constant} left out" if constant else ""
    ctv = CoxTimeVaryingFitter().fit(
        long, id_col="patient_id", event_col=EVENT, start_col="start", stop_col="stop"
    )
    s = ctv.summary
    table = cox_table(
        list(s.index),
        s,
        endpoint=endpoint,
        model="cox_time_varying",
        n_patients=int(long["patient_id"].nunique()),
        n_events=int(long[EVENT].sum()),
        penalizer=0.0,
        landmark_days=None,
        pattern_assignment="",
        note=note,
        analysis="time-varying: per-visit features from treatment start",
    )
    table.insert(table.columns.get_loc(SC.LANDMARK_DAYS) + 1, SC.N_EXCLUDED_LANDMARK, pd.NA)
    return table, ctv
