"""Survival and response association of evolution patterns (lifelines, landmark-safe).

Every statistic comes from lifelines or SciPy called on the data as given; metevo only prepares
the data honestly and collects the results as tidy tables:

* **Endpoint** (``endpoint=``): ``"os"`` (``os_days``/``os_event``) or trial ``"pfs"``
  (``pfs_days``/``pfs_event``) from the clinical table, or ``"imaging_pfs"``
  (``imaging_pfs_days``/``imaging_pfs_event``) from ``patients.parquet``; times are days from
  ``treatment_start``.
* **Landmark** (default whenever a covariate is post-baseline, which patterns always are): only
  patients alive and uncensored at the landmark enter, and time is counted from the landmark
  (Anderson, Cain & Gelber, J Clin Oncol 1983;1:710-719, on guarantee-time bias). The pattern
  model's horizon may never exceed the landmark.
* **Cross-validated assignment**: hazard ratios and concordance use patterns assigned by models
  fitted without the scored patient (:func:`cross_validated_patterns`).
* **Fragile fits are flagged**: few events per parameter and non-proportional hazards warn
  (:class:`~metevo.exceptions.StatisticsWarning`); a pattern without events switches to a
  penalised (ridge) Cox fit, stated in the ``note`` column.

Response association (:func:`response_association`) crosstabs the patterns with best overall
response, early tumour shrinkage and treatment arm, with Fisher/chi-square tests, Cramér's V and
Benjamini-Hochberg adjusted p-values; the table is descriptive and says when pattern and
response derive from the same CT measurements.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from metevo.columns import Clinical
from metevo.columns import SurvivalCox as SC
from metevo.columns import SurvivalKM as SK
from metevo.exceptions import ClinicalTableError, DataQualityWarning, StatisticsWarning

__all__ = [
    "ENDPOINTS",
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

#: endpoint -> (time column, event column, source table)
ENDPOINTS = {
    "os": (Clinical.OS_DAYS, Clinical.OS_EVENT, "clinical"),
    "pfs": (Clinical.PFS_DAYS, Clinical.PFS_EVENT, "clinical"),
    "imaging_pfs": ("imaging_pfs_days", "imaging_pfs_event", "patients"),
}
TIME = "time_days"
EVENT = "event"
PATTERN = "pattern"
MIN_EVENTS_PER_PARAMETER = 10
PENALIZER_NO_EVENTS = 0.1
DEFAULT_COVARIATES = ("age", "arm", "ecog", "sex", "ras_status", "baseline_target_sum_mm")


def _bool_events(values: pd.Series, column: str, ids: pd.Series) -> np.ndarray:
    mapping = {"true": 1, "false": 0, "1": 1, "0": 0, "yes": 1, "no": 0}
    if values.dtype == bool:
        return values.to_numpy(int)
    num = pd.to_numeric(values, errors="coerce")
    if num.isna().any() or not num.isin([0, 1]).all():
        txt = values.astype(str).str.strip().str.lower().map(mapping)
        bad = txt.isna()
        if bad.any():
            raise ClinicalTableError(
                f"column '{column}' must be 0/1 or true/false; patient {ids[bad].iloc[0]!r} has "
                f"{values[bad].iloc[0]!r}. Fix the value in the clinical table."
            )
        return txt.to_numpy(int)
    return num.to_numpy(int)


def survival_data(
    clinical: pd.DataFrame | None,
    patients: pd.DataFrame | None = None,
    *,
    endpoint: str = "os",
) -> pd.DataFrame:
    """Survival times from ``treatment_start`` for one endpoint.

    Returns
    -------
    DataFrame with ``patient_id``, ``time_days`` (float, days from treatment start) and
    ``event`` (0/1), one row per patient with a non-missing time.
    """
    if endpoint not in ENDPOINTS:
        raise ValueError(f"endpoint must be one of {tuple(ENDPOINTS)}; found {endpoint!r}.")
    tcol, ecol, source = ENDPOINTS[endpoint]
    table = clinical if source == "clinical" else patients
    name = "clinical table" if source == "clinical" else "patients.parquet"
    if table is None:
        raise ClinicalTableError(
            f"endpoint={endpoint!r} needs the {name} with columns '{tcol}' and '{ecol}'; none "
            "was given. Pass clinical= (CSV with os_days/os_event ...) or choose another "
            "endpoint."
        )
    missing = [c for c in ("patient_id", tcol, ecol) if c not in table.columns]
    if missing:
        raise ClinicalTableError(
            f"endpoint={endpoint!r}: the {name} lacks column(s) {missing}; found "
            f"{list(table.columns)}. Add them (days from treatment_start, event 0/1) or choose "
            "another endpoint."
        )
    ids = table["patient_id"].astype(str)
    time = pd.to_numeric(table[tcol], errors="coerce")
    keep = time.notna()
    if (time[keep] < 0).any():
        bad = ids[keep & (time < 0)].iloc[0]
        raise ClinicalTableError(
            f"column '{tcol}' has a negative time for patient {bad!r}; times are days from "
            "treatment_start and must be >= 0."
        )
    events = _bool_events(table.loc[keep, ecol], ecol, ids[keep])
    out = pd.DataFrame(
        {"patient_id": ids[keep].to_numpy(), TIME: time[keep].to_numpy(float), EVENT: events}
    )
    if out["patient_id"].duplicated().any():
        dup = out.loc[out["patient_id"].duplicated(), "patient_id"].iloc[0]
        raise ClinicalTableError(f"patient {dup!r} appears twice in the {name}; keep one row.")
    return out.reset_index(drop=True)


def landmark_data(data: pd.DataFrame, landmark_days: float) -> pd.DataFrame:
    """Patients alive and uncensored at ``landmark_days``, time counted from the landmark."""
    keep = data[TIME] > landmark_days
    out = data.loc[keep].copy()
    out[TIME] = out[TIME] - float(landmark_days)
    return out.reset_index(drop=True)


def _analysis_label(landmark_days: float | None) -> str:
    if landmark_days is None:
        return "from treatment start (baseline covariates only)"
    return (
        f"landmark at day {landmark_days:g}: patients alive and uncensored at day "
        f"{landmark_days:g}, time counted from the landmark"
    )


# ---------------------------------------------------------------------------- Kaplan-Meier
def kaplan_meier(
    data: pd.DataFrame,
    group: str | None = PATTERN,
    *,
    endpoint: str = "os",
    landmark_days: float | None = None,
) -> tuple[pd.DataFrame, dict[str, Any], Any]:
    """Kaplan-Meier estimate per group with numbers at risk, and the log-rank test.

    Parameters
    ----------
    data : DataFrame
        ``time_days``, ``event`` and the ``group`` column (already landmarked if needed).
    group : str or None
        Grouping column; None for one curve.

    Returns
    -------
    table : DataFrame
        ``survival_km`` rows (one per group and event/censoring time, time 0 included).
    fitters : dict
        ``{group value: lifelines.KaplanMeierFitter}``.
    logrank : lifelines StatisticalResult or None
        ``multivariate_logrank_test`` over the groups (None with fewer than two groups).
    """
    from lifelines import KaplanMeierFitter
    from lifelines.statistics import multivariate_logrank_test

    groups = ["all"] if group is None else sorted(data[group].dropna().unique(), key=str)
    fitters, frames = {}, []
    for g in groups:
        sub = data if group is None else data[data[group] == g]
        kmf = KaplanMeierFitter(label=str(g)).fit(sub[TIME], sub[EVENT])
        fitters[g] = kmf
        et = kmf.event_table
        sf = kmf.survival_function_.iloc[:, 0]
        ci = kmf.confidence_interval_survival_function_
        frames.append(
            pd.DataFrame(
                {
                    SK.GROUP: str(g),
                    SK.TIME_DAYS: et.index.to_numpy(float),
                    SK.SURVIVAL: sf.loc[et.index].to_numpy(float),
                    SK.CI_LOWER: ci.iloc[:, 0].loc[et.index].to_numpy(float),
                    SK.CI_UPPER: ci.iloc[:, 1].loc[et.index].to_numpy(float),
                    SK.AT_RISK: et["at_risk"].to_numpy(int),
                    SK.EVENTS: et["observed"].to_numpy(int),
                    SK.CENSORED: et["censored"].to_numpy(int),
                }
            )
        )
    table = pd.concat(frames, ignore_index=True)
    logrank = None
    stat, p = np.nan, np.nan
    if group is not None and len(groups) >= 2:
        logrank = multivariate_logrank_test(data[TIME], data[group], data[EVENT])
        stat, p = float(logrank.test_statistic), float(logrank.p_value)
    table.insert(0, SK.ENDPOINT, endpoint)
    table[SK.LOGRANK_STATISTIC] = stat
    table[SK.LOGRANK_P_VALUE] = p
    table[SK.LANDMARK_DAYS] = np.nan if landmark_days is None else float(landmark_days)
    table[SK.ANALYSIS] = _analysis_label(landmark_days)
    return table, fitters, logrank


# ---------------------------------------------------------------------------- Cox
def _design(
    data: pd.DataFrame, covariates: list[str], reference: dict[str, Any]
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Numeric design matrix (dummies with the given reference levels) and term labels."""
    cols, labels = {}, {}
    for c in covariates:
        v = data[c]
        categorical = isinstance(v.dtype, pd.CategoricalDtype)
        if categorical:  # keep the category order (patterns: by outcome)
            present = set(v.dropna().astype(str))
            levels = [str(cat) for cat in v.cat.categories if str(cat) in present]
        elif pd.api.types.is_bool_dtype(v) or not pd.api.types.is_numeric_dtype(v):
            categorical = True
            levels = sorted(v.dropna().astype(str).unique())
        if categorical:
            ref = str(reference.get(c, levels[0])) if levels else None
            for lev in levels:
                if lev == ref:
                    continue
                key = f"{c}[{lev}]"
                cols[key] = (v.astype(str) == lev).astype(float).to_numpy()
                labels[key] = f"{c}: {lev} vs {ref}"
        else:
            cols[c] = v.astype(float).to_numpy()
            labels[c] = c
    x = pd.DataFrame(cols, index=data.index)
    return x, labels


def cox_model(
    data: pd.DataFrame,
    covariates: list[str],
    *,
    reference: dict[str, Any] | None = None,
    endpoint: str = "os",
    landmark_days: float | None = None,
    pattern_assignment: str = "",
    penalizer: float | None = None,
) -> tuple[pd.DataFrame, Any]:
    """Cox proportional-hazards model with hazard ratios, PH test and concordance.

    Categorical covariates (strings, booleans) enter as indicator terms against ``reference``
    (default: the first level in sorted order). With ``penalizer=None`` the fit is
    unpenalised unless a level of a categorical covariate has no event, in which case a ridge
    penalty of 0.1 keeps the estimate finite (and the note says so).

    Returns
    -------
    table : DataFrame
        ``survival_cox`` rows, one per term.
    fitter : lifelines.CoxPHFitter
    """
    from lifelines import CoxPHFitter
    from lifelines.statistics import proportional_hazard_test

    reference = reference or {}
    d = data.dropna(subset=covariates).copy()
    n_dropped = len(data) - len(d)
    x, labels = _design(d, covariates, reference)
    x = x.loc[:, x.std(ddof=0) > 0]
    notes = []
    if n_dropped:
        notes.append(f"{n_dropped} patient(s) without covariate values left out")
    n_events = int(d[EVENT].sum())
    if n_events == 0:
        raise ValueError(
            f"no {endpoint} events among the {len(d)} patients of the analysis "
            f"({_analysis_label(landmark_days)}); a Cox model cannot be fitted."
        )
    no_event_terms = [c for c in x.columns if "[" in c and d.loc[x[c] == 1, EVENT].sum() == 0]
    for c, v in d[covariates].items():
        if c in reference and d.loc[v.astype(str) == str(reference[c]), EVENT].sum() == 0:
            no_event_terms.append(f"{c}[{reference[c]}] (reference)")
    if penalizer is None:
        penalizer = PENALIZER_NO_EVENTS if no_event_terms else 0.0
    if no_event_terms:
        msg = (
            f"no {endpoint} events in {no_event_terms}; hazard ratios are from a penalised Cox "
            f"fit (ridge penalizer {penalizer:g}) and are shrunk towards 1."
        )
        notes.append(msg)
        warnings.warn(msg, StatisticsWarning, stacklevel=2)
    epp = n_events / max(x.shape[1], 1)
    if epp < MIN_EVENTS_PER_PARAMETER:
        msg = (
            f"{n_events} {endpoint} events for {x.shape[1]} Cox parameters ({epp:.1f} per "
            f"parameter, fewer than {MIN_EVENTS_PER_PARAMETER}); estimates are fragile."
        )
        notes.append(msg)
        warnings.warn(msg, StatisticsWarning, stacklevel=2)
    frame = pd.concat([x, d[[TIME, EVENT]]], axis=1)
    cph = CoxPHFitter(penalizer=penalizer).fit(frame, duration_col=TIME, event_col=EVENT)
    summ = cph.summary
    ph_p = pd.Series(np.nan, index=summ.index)
    try:
        ph = proportional_hazard_test(cph, frame, time_transform="rank")
        ph_p = ph.summary["p"].reindex(summ.index)
    except (ValueError, np.linalg.LinAlgError) as exc:  # pragma: no cover - degenerate fits
        notes.append(f"proportional-hazards test failed: {exc}")
    bad_ph = [labels.get(t, t) for t in ph_p.index[ph_p < 0.05]]
    if bad_ph:
        msg = (
            f"proportional hazards rejected (Schoenfeld residual test, p < 0.05) for {bad_ph}; "
            "hazard ratios are time-averaged. Consider stratifying or a time-varying term."
        )
        notes.append(msg)
        warnings.warn(msg, StatisticsWarning, stacklevel=2)
    table = pd.DataFrame(
        {
            SC.ENDPOINT: endpoint,
            SC.MODEL: "cox_ph",
            SC.TERM: [labels.get(t, t) for t in summ.index],
            SC.HAZARD_RATIO: summ["exp(coef)"].to_numpy(float),
            SC.CI_LOWER: summ["exp(coef) lower 95%"].to_numpy(float),
            SC.CI_UPPER: summ["exp(coef) upper 95%"].to_numpy(float),
            SC.P_VALUE: summ["p"].to_numpy(float),
            SC.PH_TEST_P_VALUE: ph_p.to_numpy(float),
            SC.CONCORDANCE: float(cph.concordance_index_),
            SC.N_PATIENTS: len(d),
            SC.N_EVENTS: n_events,
            SC.PENALIZER: float(penalizer),
            SC.LANDMARK_DAYS: np.nan if landmark_days is None else float(landmark_days),
            SC.PATTERN_ASSIGNMENT: pattern_assignment,
            SC.ANALYSIS: _analysis_label(landmark_days),
            SC.NOTE: "; ".join(notes),
        }
    )
    return table, cph


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

    Each fold refits ``model``'s settings with its chosen number of patterns on the other
    folds' patients, assigns the held-out patients, and maps the fold's patterns onto the
    reference model's by matching centroid curves (Hungarian algorithm), so names agree.

    Returns
    -------
    DataFrame with ``patient_id``, ``pattern``, ``pattern_id`` for the patients with a
    trajectory.
    """
    from scipy.optimize import linear_sum_assignment

    from metevo.patterns._patterns import EvolutionPatterns

    params = {
        k: getattr(model, k) for k in model.__init__.__code__.co_varnames[1:] if hasattr(model, k)
    }
    params.update(n_patterns=model.n_patterns_, n_bootstrap=0, horizon_days=model.horizon_days_)
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
        fold = EvolutionPatterns(**params).fit(train, lesion_trajectories=l_train)
        cost = ((fold.trajectory_centers_[:, None, :] - model.trajectory_centers_[None]) ** 2).sum(
            axis=2
        )
        rows, cols = linear_sum_assignment(cost)
        mapping = dict(zip(rows, cols, strict=True))
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

    def __repr__(self) -> str:
        if self.message:
            return f"SurvivalResult(skipped: {self.message})"
        p = self.km[SK.LOGRANK_P_VALUE].iloc[0] if len(self.km) else np.nan
        c = self.cox[SC.CONCORDANCE].iloc[0] if len(self.cox) else np.nan
        return (
            f"SurvivalResult({self.data.shape[0] if self.data is not None else 0} patients, "
            f"{len(self.km_fitters)} KM curves, log-rank p={p:.3g}, Cox concordance={c:.3f})"
        )


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
    data = landmark_data(data, landmark_days)
    n_ev = int(data[EVENT].sum())
    if n_ev == 0:
        msg = (
            f"survival skipped: no {endpoint} events among the {len(data)} patients alive and "
            f"uncensored at the landmark (day {landmark_days:g})."
        )
        warnings.warn(msg, StatisticsWarning, stacklevel=2)
        return SurvivalResult(km=pd.DataFrame(), cox=pd.DataFrame(), data=data, message=msg)
    km, fitters, logrank = kaplan_meier(
        data, PATTERN, endpoint=endpoint, landmark_days=landmark_days
    )
    if data[PATTERN].nunique() < 2:
        msg = "all patients at the landmark share one pattern; no Cox model by pattern."
        warnings.warn(msg, StatisticsWarning, stacklevel=2)
        return SurvivalResult(km=km, cox=pd.DataFrame(), km_fitters=fitters, data=data, message=msg)
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
    )
    return SurvivalResult(
        km=km, cox=cox, km_fitters=fitters, logrank=logrank, cox_fitter=cph, data=data
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
    table = pd.DataFrame(
        {
            SC.ENDPOINT: endpoint,
            SC.MODEL: "cox_time_varying",
            SC.TERM: list(s.index),
            SC.HAZARD_RATIO: s["exp(coef)"].to_numpy(float),
            SC.CI_LOWER: s["exp(coef) lower 95%"].to_numpy(float),
            SC.CI_UPPER: s["exp(coef) upper 95%"].to_numpy(float),
            SC.P_VALUE: s["p"].to_numpy(float),
            SC.PH_TEST_P_VALUE: np.nan,
            SC.CONCORDANCE: np.nan,
            SC.N_PATIENTS: int(long["patient_id"].nunique()),
            SC.N_EVENTS: int(long[EVENT].sum()),
            SC.PENALIZER: 0.0,
            SC.LANDMARK_DAYS: np.nan,
            SC.PATTERN_ASSIGNMENT: "",
            SC.ANALYSIS: "time-varying: per-visit features from treatment start",
            SC.NOTE: note,
        }
    )
    return table, ctv


# ---------------------------------------------------------------------------- response
#: response variables derived from the same CT measurements as the patterns
SAME_MEASUREMENT_VARIABLES = ("best_response", "ets", "depth_of_response")
ETS_THRESHOLD = 0.2  # early tumour shrinkage: >= 20 % decrease of the target sum at ~8 weeks


def _ets_levels(values: pd.Series) -> pd.Series:
    """ETS as "yes"/"no": booleans as given, numbers as shrinkage >= 20 %.

    A numeric column is read as relative change (negative = shrinkage) when any value is
    negative, else as shrinkage fraction (positive = shrinkage).
    """
    if pd.api.types.is_bool_dtype(values) or values.dropna().isin([0, 1, True, False]).all():
        return values.map({True: "yes", False: "no"})  # 1 == True and 0 == False
    num = pd.to_numeric(values, errors="coerce")
    shrink = -num if (num < 0).any() else num
    return pd.Series(np.where(shrink >= ETS_THRESHOLD, "yes", "no"), index=values.index).where(
        num.notna()
    )


def _crosstab_test(table: np.ndarray, seed: int) -> tuple[str, float, float]:
    from scipy.stats import MonteCarloMethod, chi2_contingency, fisher_exact

    if table.shape == (2, 2):
        res = fisher_exact(table)
        return "fisher_exact", float(res.statistic), float(res.pvalue)
    expected = chi2_contingency(table, correction=False).expected_freq
    if (expected < 5).any():
        res = fisher_exact(table, method=MonteCarloMethod(n_resamples=9999, rng=seed))
        stat, p = np.ravel(res.statistic)[0], np.ravel(res.pvalue)[0]
        return "fisher_exact_monte_carlo", float(stat), float(p)
    res = chi2_contingency(table, correction=False)
    return "chi_square", float(res.statistic), float(res.pvalue)


def response_association(
    patterns: pd.DataFrame,
    patients: pd.DataFrame | None = None,
    clinical: pd.DataFrame | None = None,
    *,
    variables: tuple[str, ...] = ("best_response", "ets", "arm"),
    random_state: int = 0,
) -> pd.DataFrame:
    """Pattern x response / arm crosstabs with tests, Cramér's V and BH-adjusted p-values.

    The table is descriptive: p-values are Benjamini-Hochberg adjusted across the variables
    tested, and ``same_measurements`` is True when the variable derives from the CT
    measurements the patterns were built from (best response, ETS), so that an association
    there is expected by construction. Tests: Fisher's exact test for 2 x 2 tables, chi-square
    when every expected count is >= 5, else Fisher's test for r x c by Monte Carlo (9,999
    tables, SciPy ``fisher_exact(method=MonteCarloMethod)``).

    Returns
    -------
    DataFrame
        ``response_association`` rows: one per variable x pattern x level, with the variable's
        test repeated on each of its rows.
    """
    from scipy.stats import false_discovery_control
    from scipy.stats.contingency import association

    from metevo.columns import ResponseAssociation as RA

    pat = patterns.dropna(subset=["pattern"])[["patient_id", "pattern"]].copy()
    pat["patient_id"] = pat["patient_id"].astype(str)
    sources = [t for t in (patients, clinical) if t is not None]
    frames, tests = [], []
    for var in variables:
        src = next((t for t in sources if var in t.columns), None)
        if src is None:
            continue
        vals = src[["patient_id", var]].copy()
        vals["patient_id"] = vals["patient_id"].astype(str)
        vals = vals.drop_duplicates("patient_id")
        if var == "ets":
            vals[var] = _ets_levels(vals[var])
        d = pat.merge(vals, on="patient_id").dropna(subset=[var])
        d[var] = d[var].astype(str)
        ct = pd.crosstab(d["pattern"], d[var])
        note = "descriptive"
        if var in SAME_MEASUREMENT_VARIABLES:
            note += "; pattern and response derive from the same CT measurements"
        if ct.shape[0] < 2 or ct.shape[1] < 2:
            test, stat, p, v = "none", np.nan, np.nan, np.nan
            note += "; fewer than two patterns or levels: no test"
        else:
            test, stat, p = _crosstab_test(ct.to_numpy(), random_state)
            v = float(association(ct.to_numpy(), method="cramer"))
        long = ct.stack().rename(RA.N).reset_index()
        long.columns = [RA.PATTERN, RA.LEVEL, RA.N]
        long[RA.ROW_FRACTION] = long[RA.N] / long.groupby(RA.PATTERN)[RA.N].transform("sum")
        long.insert(0, RA.VARIABLE, var)
        long[RA.TEST] = test
        long[RA.STATISTIC] = stat
        long[RA.P_VALUE] = p
        long[RA.CRAMERS_V] = v
        long[RA.SAME_MEASUREMENTS] = var in SAME_MEASUREMENT_VARIABLES
        long[RA.NOTE] = note
        frames.append(long)
        tests.append((var, p))
    if not frames:
        return pd.DataFrame(
            columns=[
                RA.VARIABLE,
                RA.PATTERN,
                RA.LEVEL,
                RA.N,
                RA.ROW_FRACTION,
                RA.TEST,
                RA.STATISTIC,
                RA.P_VALUE,
                RA.P_ADJUSTED,
                RA.CRAMERS_V,
                RA.SAME_MEASUREMENTS,
                RA.NOTE,
            ]
        )
    out = pd.concat(frames, ignore_index=True)
    pv = pd.Series({v: p for v, p in tests}).dropna()
    adj = pd.Series(false_discovery_control(pv.to_numpy()), index=pv.index) if len(pv) else pv
    out.insert(out.columns.get_loc(RA.P_VALUE) + 1, RA.P_ADJUSTED, out[RA.VARIABLE].map(adj))
    out[RA.N] = out[RA.N].astype(int)
    return out
