"""Tables of a fitted latent-class trajectory model: k selection, classes, patients, posteriors.

:func:`selection_table` computes, for every k fitted, the statistics biostatisticians expect
(log-likelihood, parameters, AIC, BIC, SABIC, relative entropy, ICL, smallest class, lowest
APPA, shares of confident assignments) and chooses k with a ``reason`` per row;
:func:`describe_classes` names each class from its mean course, checks the names against the
members' own courses (:func:`metevo.patterns._match.check_names`) and builds the ``patterns``,
``pattern_summary`` and ``pattern_posteriors`` tables and the day-grid curves the pattern
figures and the cross-validated survival analysis use. Kept apart from the estimator
(:mod:`metevo.patterns._latent_class`) so that each module holds one concept.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from metevo.columns import Patterns as P
from metevo.columns import PatternSelection as S
from metevo.patterns import _features as pf
from metevo.patterns import _lcmm as lc
from metevo.patterns._match import check_names, course_features
from metevo.patterns._names import name_pattern

__all__ = ["SELECTION_COLUMNS", "describe_classes", "selection_table"]

METHOD = "lcmm"
SELECTION_COLUMNS = S.COLUMNS
#: spacing of the day grid of the class courses and the members' curves (figures, matching)
GRID_STEP_DAYS = 28.0
RANDOM_EFFECTS = {"none": (), "intercept": (0,), "slope": (0, 1)}


def _fmt(x: float) -> str:
    return f"{x:.1f}"


def selection_table(fits: dict[int, lc.EMResult], model: Any, n_patients: int) -> pd.DataFrame:
    """One row per k fitted (``pattern_selection`` layout); sets ``model.n_classes_``."""
    p = model.degree + 1 + int(model.n_knots)
    q = len(RANDOM_EFFECTS[model.random_effects])
    need = max(int(model.min_class_size), math.ceil(model.min_class_share * n_patients))
    rows = []
    for k, em in fits.items():
        summ = lc.classification_summary(em.posterior)
        n_par = lc.n_parameters(k, p, q, model.class_variance, model.class_random_cov)
        crit = lc.criteria(em.loglik, n_par, n_patients, summ["entropy_sum"])
        smallest = int(summ["sizes"].min())
        rows.append(
            {
                S.K: k,
                S.LOG_LIKELIHOOD: em.loglik,
                S.N_PARAMETERS: n_par,
                **crit,
                S.RELATIVE_ENTROPY: summ["relative_entropy"],
                S.SMALLEST_CLASS_SHARE: smallest / n_patients,
                S.MIN_PATTERN_SIZE: smallest,
                S.APPA_MIN: float(np.nanmin(summ["appa"])) if smallest else np.nan,
                S.SHARE_POSTERIOR_GE_0_7: summ["share_ge_0_7"],
                S.SHARE_POSTERIOR_GE_0_8: summ["share_ge_0_8"],
                S.SHARE_POSTERIOR_GE_0_9: summ["share_ge_0_9"],
                S.N_ITER: em.n_iter,
                S.CONVERGED: em.converged,
                S.ELIGIBLE: k == 1 or smallest >= need,
            }
        )
    sel = pd.DataFrame(rows)
    crit = model.criterion
    auto = model.n_classes == "auto"
    if auto:
        pool = sel.loc[sel[S.ELIGIBLE]]
        chosen = int(pool.loc[pool[crit].idxmin(), S.K])
    else:
        chosen = int(model.n_classes)
    best_value = sel.loc[sel[S.K] == chosen, crit].iloc[0]
    rule = (
        f"among k whose smallest class has >= {need} patients "
        f"({model.min_class_share:.0%} and >= {model.min_class_size})"
    )
    reasons = []
    for r in sel.itertuples():
        if r.k == chosen:
            why = (
                f"chosen: lowest {crit.upper()} ({_fmt(best_value)}) {rule}"
                if auto
                else "chosen: k fixed by n_classes"
            )
        elif not r.eligible:
            why = f"not eligible: smallest class {r.min_pattern_size} patient(s) < {need}"
        else:
            why = f"{crit.upper()} {_fmt(getattr(r, crit))} vs {_fmt(best_value)} for k={chosen}"
        reasons.append(why)
    sel[S.METHOD] = METHOD
    sel[S.REPRESENTATION] = model.outcome
    sel[S.SELECTED] = sel[S.K] == chosen
    sel[S.REASON] = reasons
    sel[S.N_PATIENTS] = n_patients
    sel[S.LANDMARK_DAYS] = np.nan if model.landmark_days is None else float(model.landmark_days)
    sel[S.HORIZON_DAYS] = np.nan if model.horizon_days_ is None else model.horizon_days_
    sel[S.HORIZON_RULE] = model.horizon_rule_
    for col in SELECTION_COLUMNS:
        if col not in sel.columns:
            sel[col] = np.nan
    model.n_classes_ = chosen
    return sel[list(SELECTION_COLUMNS)]


def _member_curves(model: Any, table: pd.DataFrame, ids: np.ndarray) -> None:
    """Each patient's log-ratio on the day grid (NaN after the last visit) and the support."""
    grid = model.grid_days_
    own = np.log(table[model.value_column].to_numpy(float) + model.log_offset)
    pid = table[pf.PATIENT_ID].to_numpy()
    starts = np.flatnonzero(np.r_[True, pid[1:] != pid[:-1]])
    ends = np.append(starts[1:], len(pid))
    t = table["_t"].to_numpy(float)
    curves = np.full((len(ids), grid.size), np.nan)
    for i, (s, e) in enumerate(zip(starts, ends, strict=True)):
        y = own[s:e] - own[s]
        inside = (grid >= t[s]) & (grid <= t[e - 1])
        curves[i, inside] = np.interp(grid[inside], t[s:e], y)
        curves[i, grid < t[s]] = 0.0
    model.curves_ = curves
    support = np.zeros((model.n_classes_, grid.size))
    for c in range(model.n_classes_):
        m = curves[model.labels_ == c]
        support[c] = np.isfinite(m).mean(axis=0) if len(m) else 0.0
    model.trajectory_support_ = support


def describe_classes(model: Any, table: pd.DataFrame) -> None:
    """Names, ``classes_``, ``patterns_``, ``posteriors_`` and the grid curves of ``model``."""
    end = model.horizon_days_ or model.time_scale_months_ * lc_days_per_month()
    model.grid_days_ = np.arange(0.0, end + 1e-9, GRID_STEP_DAYS)
    if model.grid_days_[-1] < end:
        model.grid_days_ = np.r_[model.grid_days_, end]
    centers = model._curve(model.coef_, model.grid_days_)
    model.trajectory_centers_ = centers - centers[:, :1]
    _member_curves(model, table, model.patient_ids_)
    feats = [course_features(model.grid_days_, c) for c in model.trajectory_centers_]
    names = [name_pattern(c) for c in model.trajectory_centers_]
    names, contradicting = check_names(
        names, model.labels_, model.confidence_, model.own_nadir_ratio_
    )
    summ = lc.classification_summary(model.posterior_)
    model.names_ = names
    model.classes_ = pd.DataFrame(
        {
            "pattern_id": np.arange(model.n_classes_),
            "pattern": names,
            "proportion": model.proportions_,
            "n_patients": summ["sizes"],
            "appa": summ["appa"],
            **{key: [f[key] for f in feats] for key in feats[0]},
            "n_members_not_responding": contradicting,
        }
    )
    rows = pd.DataFrame(
        {
            P.PATIENT_ID: model.patient_ids_,
            P.PATTERN: [names[i] for i in model.labels_],
            P.PATTERN_ID: model.labels_,
            P.CONFIDENCE: model.confidence_,
            P.N_VISITS: model.n_visits_,
            P.FOLLOWUP_DAYS: model.followup_days_,
            P.OWN_NADIR_RATIO: model.own_nadir_ratio_,
            P.EXCLUDED_REASON: None,
        }
    )
    if len(model.excluded_):
        ex = pd.DataFrame(
            {
                P.PATIENT_ID: model.excluded_[pf.PATIENT_ID],
                P.PATTERN: None,
                P.PATTERN_ID: pd.NA,
                P.CONFIDENCE: np.nan,
                P.N_VISITS: model.excluded_["n_visits"],
                P.FOLLOWUP_DAYS: np.nan,
                P.OWN_NADIR_RATIO: np.nan,
                P.EXCLUDED_REASON: model.excluded_["reason"],
            }
        )
        rows = pd.concat([rows, ex], ignore_index=True)
    rows[P.PATTERN_ID] = rows[P.PATTERN_ID].astype("Int64")
    rows[P.N_VISITS] = rows[P.N_VISITS].astype("Int64")
    for col in (P.PATTERN, P.EXCLUDED_REASON):
        rows[col] = rows[col].astype("string")
    rows[P.LANDMARK_DAYS] = np.nan if model.landmark_days is None else float(model.landmark_days)
    rows[P.HORIZON_DAYS] = np.nan if model.horizon_days_ is None else model.horizon_days_
    rows[P.METHOD] = METHOD
    rows[P.REPRESENTATION] = model.outcome
    model.patterns_ = rows.sort_values(P.PATIENT_ID, kind="stable").reset_index(drop=True)
    post = pd.DataFrame(model.posterior_, columns=np.arange(model.n_classes_))
    post.insert(0, P.PATIENT_ID, model.patient_ids_)
    long = post.melt(id_vars=P.PATIENT_ID, var_name=P.PATTERN_ID, value_name="posterior")
    long[P.PATTERN_ID] = long[P.PATTERN_ID].astype("Int64")
    long.insert(2, P.PATTERN, pd.array([names[i] for i in long[P.PATTERN_ID]], dtype="string"))
    model.posteriors_ = long.sort_values(
        [P.PATIENT_ID, P.PATTERN_ID], kind="stable"
    ).reset_index(drop=True)


def lc_days_per_month() -> float:
    return 365.25 / 12.0
