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
* **Fragile fits are not drawn as results**: below ``MIN_EVENTS_PER_PARAMETER`` (10) events
  per Cox parameter the model is not fitted and the ``survival_cox`` rows say why (``fitted``
  False, reason in ``note``); non-proportional hazards warn
  (:class:`~metevo.exceptions.StatisticsWarning`); a pattern without events switches to a
  penalised (ridge) Cox fit, stated in the ``note`` column.
* **Concordance out of fold**: the ``concordance`` column comes from risk scores of Cox models
  fitted without the scored patients (K-fold); the in-sample value is kept beside it.

Response association (:func:`response_association`) crosstabs the patterns with best overall
response, early tumour shrinkage and treatment arm, with Fisher/chi-square tests, Cramér's V and
Benjamini-Hochberg adjusted p-values; the table is descriptive and says when pattern and
response derive from the same CT measurements.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from metevo.columns import Clinical
from metevo.columns import SurvivalCox as SC
from metevo.columns import SurvivalKM as SK
from metevo.exceptions import ClinicalTableError, StatisticsWarning

__all__ = [
    "ENDPOINTS",
    "cox_model",
    "kaplan_meier",
    "landmark_data",
    "out_of_fold_concordance",
    "survival_data",
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


def cox_table(
    terms: list[str],
    summary: pd.DataFrame | None,
    *,
    endpoint: str,
    model: str = "cox_ph",
    n_patients: int,
    n_events: int,
    penalizer: float,
    landmark_days: float | None,
    pattern_assignment: str,
    note: str,
    analysis: str | None = None,
    ph_test_p_value: Any = np.nan,
    concordance: float = np.nan,
    concordance_in_sample: float = np.nan,
    concordance_method: str = "",
) -> pd.DataFrame:
    """``survival_cox`` rows, one per term, in the table's column order.

    ``summary`` is the fitted lifelines model's ``summary`` (hazard ratios, their 95 % CI and p
    values, one row per term); None for a model that was not fitted (estimates NaN, ``fitted``
    False, the reason in ``note``). ``analysis`` defaults to the landmark's description.
    """

    def estimate(column: str) -> np.ndarray:
        if summary is None:
            return np.full(len(terms), np.nan)
        return summary[column].to_numpy(float)

    return pd.DataFrame(
        {
            SC.ENDPOINT: endpoint,
            SC.MODEL: model,
            SC.TERM: terms,
            SC.HAZARD_RATIO: estimate("exp(coef)"),
            SC.CI_LOWER: estimate("exp(coef) lower 95%"),
            SC.CI_UPPER: estimate("exp(coef) upper 95%"),
            SC.P_VALUE: estimate("p"),
            SC.PH_TEST_P_VALUE: ph_test_p_value,
            SC.CONCORDANCE: concordance,
            SC.CONCORDANCE_IN_SAMPLE: concordance_in_sample,
            SC.CONCORDANCE_METHOD: concordance_method,
            SC.FITTED: summary is not None,
            SC.N_PATIENTS: n_patients,
            SC.N_EVENTS: n_events,
            SC.PENALIZER: penalizer,
            SC.LANDMARK_DAYS: np.nan if landmark_days is None else float(landmark_days),
            SC.PATTERN_ASSIGNMENT: pattern_assignment,
            SC.ANALYSIS: _analysis_label(landmark_days) if analysis is None else analysis,
            SC.NOTE: note,
        }
    )


def _fit_quietly(frame: pd.DataFrame, penalizer: float) -> tuple[Any, list[str]]:
    """lifelines ``CoxPHFitter`` fit with its warnings collected (one note, not a wall)."""
    from lifelines import CoxPHFitter

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cph = CoxPHFitter(penalizer=penalizer).fit(frame, duration_col=TIME, event_col=EVENT)
    messages = list(dict.fromkeys(str(w.message).split("\n")[0].strip() for w in caught))
    return cph, messages


def out_of_fold_concordance(
    design: pd.DataFrame,
    *,
    penalizer: float = 0.0,
    n_splits: int = 5,
    random_state: int | None = 0,
) -> float:
    """Harrell's concordance of Cox risk scores predicted for patients left out of the fit.

    ``design`` holds the numeric terms plus ``time_days`` and ``event``. The patients are split
    into ``n_splits`` folds (a seeded random permutation); for each fold a Cox model with the
    same terms and ``penalizer`` is fitted on the other folds and predicts the fold's partial
    hazards (a term constant in the training folds is left out of that fold's model). The
    concordance is computed once over the pooled out-of-fold predictions (lifelines
    ``concordance_index``), so it measures discrimination on patients the model never saw.
    """
    from lifelines.exceptions import ConvergenceError
    from lifelines.utils import concordance_index

    n = len(design)
    rng = np.random.default_rng(random_state)
    folds = rng.permutation(n) % n_splits
    risk = np.full(n, np.nan)
    terms = [c for c in design.columns if c not in (TIME, EVENT)]
    for f in range(n_splits):
        test = folds == f
        train = design.loc[~test]
        if not test.any() or train[EVENT].sum() == 0:
            continue
        keep = [c for c in terms if train[c].std(ddof=0) > 0]
        frame = train[[*keep, TIME, EVENT]]
        try:
            cph, _ = _fit_quietly(frame, penalizer)
        except ConvergenceError:
            cph, _ = _fit_quietly(frame, max(penalizer, PENALIZER_NO_EVENTS))
        risk[test] = cph.predict_log_partial_hazard(design.loc[test, keep]).to_numpy(float)
    ok = np.isfinite(risk)
    if ok.sum() < 2 or design.loc[ok, EVENT].sum() == 0:
        return float("nan")
    return float(concordance_index(design.loc[ok, TIME], -risk[ok], design.loc[ok, EVENT]))


def cox_model(
    data: pd.DataFrame,
    covariates: list[str],
    *,
    reference: dict[str, Any] | None = None,
    endpoint: str = "os",
    landmark_days: float | None = None,
    pattern_assignment: str = "",
    penalizer: float | None = None,
    min_events_per_parameter: float = MIN_EVENTS_PER_PARAMETER,
    cv_splits: int = 5,
    random_state: int | None = 0,
) -> tuple[pd.DataFrame, Any]:
    """Cox proportional-hazards model with hazard ratios, PH test and concordance.

    Categorical covariates (strings, booleans) enter as indicator terms against ``reference``
    (default: the first level in sorted order). With ``penalizer=None`` the fit is
    unpenalised unless a level of a categorical covariate has no event, in which case a ridge
    penalty of 0.1 keeps the estimate finite (and the note says so).

    Below ``min_events_per_parameter`` events per model parameter (default 10, the rule of
    thumb of Peduzzi et al., J Clin Epidemiol 1996;49:1373-1379) the model is **not fitted**:
    the table keeps one row per term with empty estimates, ``fitted`` False and the reason in
    ``note``, and the fitter returned is None. lifelines' convergence warnings are collected
    into ``note`` instead of being repeated.

    ``concordance`` is out-of-fold (:func:`out_of_fold_concordance`, ``cv_splits`` folds;
    ``cv_splits=0`` reports the in-sample value there); ``concordance_in_sample`` is the
    fitted model's own (optimistic) concordance.

    Returns
    -------
    table : DataFrame
        ``survival_cox`` rows, one per term.
    fitter : lifelines.CoxPHFitter or None
    """
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
    epp = n_events / max(x.shape[1], 1)
    about = {  # what every row of this model's table says about the analysis
        "endpoint": endpoint,
        "n_patients": len(d),
        "n_events": n_events,
        "landmark_days": landmark_days,
        "pattern_assignment": pattern_assignment,
    }
    if epp < min_events_per_parameter:
        reason = (
            f"not fitted: {n_events} {endpoint} events for {x.shape[1]} Cox parameters "
            f"({epp:.1f} per parameter; at least {min_events_per_parameter:g} needed)"
        )
        table = cox_table(
            [labels.get(t, t) for t in x.columns],
            None,
            penalizer=np.nan,
            note="; ".join([reason, *notes]),
            **about,
        )
        return table, None
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
    frame = pd.concat([x, d[[TIME, EVENT]]], axis=1)
    cph, fit_warnings = _fit_quietly(frame, penalizer)
    if fit_warnings:
        notes.append(f"lifelines: {fit_warnings[0]}")
    summ = cph.summary
    ph_p = pd.Series(np.nan, index=summ.index)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
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
    in_sample = float(cph.concordance_index_)
    if cv_splits and cv_splits >= 2:
        concordance = out_of_fold_concordance(
            frame, penalizer=penalizer, n_splits=cv_splits, random_state=random_state
        )
        method = f"out-of-fold ({cv_splits}-fold)"
    else:
        concordance, method = in_sample, "in-sample"
    table = cox_table(
        [labels.get(t, t) for t in summ.index],
        summ,
        penalizer=float(penalizer),
        note="; ".join(notes),
        **about,
        ph_test_p_value=ph_p.to_numpy(float),
        concordance=concordance,
        concordance_in_sample=in_sample,
        concordance_method=method,
    )
    return table, cph
