"""Performance of risk predictions for censored times: time-dependent AUC, Brier score,
concordance and calibration.

* **Cumulative/dynamic AUC** at ``t`` (Uno et al., JASA 2007;102:527; Hung & Chiang, Can J Stat
  2010;38:8): cases are events by ``t`` weighted by the inverse probability of not being censored
  by their time, ``1 / G(T_i)``; controls are everyone still event-free after ``t``; tied risks
  count one half. ``G`` is the Kaplan-Meier estimate of the censoring distribution, with
  censorings at an event time counted as happening after it (as scikit-survival's
  ``CensoringDistributionEstimator``, against which the tests check both metrics).
* **Brier score** at ``t`` (Graf et al., Stat Med 1999;18:2529) with the same IPCW weights:
  ``mean( 1[T_i <= t, event] (0 - S_i)^2 / G(T_i) + 1[T_i > t] (1 - S_i)^2 / G(t) )``.
* **Concordance**: Harrell's C of the risk against the time truncated at the horizon
  (lifelines ``concordance_index``).
* **Calibration**: patients in deciles of predicted risk; the observed risk of a decile is one
  minus its Kaplan-Meier survival at the horizon.
"""

from __future__ import annotations

import numpy as np


def _counts(time: np.ndarray, event: np.ndarray):
    order = np.argsort(time, kind="mergesort")
    t, e = time[order], event[order].astype(bool)
    uniq, first = np.unique(t, return_index=True)
    n = t.size
    at_risk = n - first
    d = np.add.reduceat(e.astype(int), first)
    c = np.add.reduceat((~e).astype(int), first)
    return uniq, d, c, at_risk


def kaplan_meier(time, event) -> tuple[np.ndarray, np.ndarray]:
    """Unique times and the Kaplan-Meier survival just after each."""
    uniq, d, _, n = _counts(np.asarray(time, float), np.asarray(event))
    return uniq, np.cumprod(1.0 - d / n)


def step(times: np.ndarray, values: np.ndarray, at, before: float = 1.0) -> np.ndarray:
    """Right-continuous step function through (times, values), ``before`` before the first."""
    idx = np.searchsorted(times, np.asarray(at, float), side="right") - 1
    return np.where(idx >= 0, values[np.maximum(idx, 0)], before)


def censoring_survival(time, event):
    """``G(t)``: Kaplan-Meier of the censoring times (ties: censoring after the event)."""
    uniq, d, c, n = _counts(np.asarray(time, float), np.asarray(event))
    denom = n - d
    ratio = np.divide(c, denom, out=np.zeros(uniq.size), where=c != 0)
    g = np.cumprod(1.0 - ratio)
    return lambda at: step(uniq, g, at)


def cumulative_dynamic_auc(time, event, risk, t: float, G=None) -> float:
    """Cumulative/dynamic AUC of ``risk`` (higher = earlier event) at time ``t``."""
    time = np.asarray(time, float)
    event = np.asarray(event).astype(bool)
    risk = np.asarray(risk, float)
    G = censoring_survival(time, event) if G is None else G
    case = event & (time <= t)
    ctrl = time > t
    if not case.any() or not ctrl.any():
        return np.nan
    w = 1.0 / G(time[case])
    rc = np.sort(risk[ctrl])
    below = np.searchsorted(rc, risk[case], side="left")
    tied = np.searchsorted(rc, risk[case], side="right") - below
    return float(np.sum(w * (below + 0.5 * tied)) / (np.sum(w) * rc.size))


def brier_score(time, event, survival_prob, t: float, G=None) -> float:
    """IPCW Brier score at ``t`` of the predicted probabilities of being event-free at ``t``."""
    time = np.asarray(time, float)
    event = np.asarray(event).astype(bool)
    s = np.asarray(survival_prob, float)
    G = censoring_survival(time, event) if G is None else G
    g_y = G(time)
    g_y = np.where(g_y == 0, np.inf, g_y)
    case = event & (time <= t)
    ctrl = time > t
    return float(np.mean(s**2 * case / g_y + (1.0 - s) ** 2 * ctrl / G(t)))


def concordance(time, event, risk, horizon: float) -> float:
    """Harrell's C of ``risk`` for the time truncated at ``horizon``."""
    from lifelines.utils import concordance_index

    time = np.asarray(time, float)
    ev = np.asarray(event).astype(bool) & (time <= horizon)
    if ev.sum() == 0:
        return np.nan
    return float(concordance_index(np.minimum(time, horizon), -np.asarray(risk, float), ev))


def calibration_deciles(time, event, risk, horizon: float, n_groups: int = 10):
    """Rows (decile, n, mean predicted risk, observed risk = 1 - KM(horizon)) by risk decile."""
    time = np.asarray(time, float)
    event = np.asarray(event).astype(bool)
    risk = np.asarray(risk, float)
    n_groups = int(min(n_groups, max(1, risk.size // 5)))
    order = np.argsort(risk, kind="mergesort")
    groups = np.empty(risk.size, int)
    groups[order] = np.arange(risk.size) * n_groups // risk.size
    rows = []
    for k in range(n_groups):
        sel = groups == k
        uniq, surv = kaplan_meier(time[sel], event[sel])
        rows.append(
            (k + 1, int(sel.sum()), float(risk[sel].mean()), float(1 - step(uniq, surv, horizon)))
        )
    return rows
