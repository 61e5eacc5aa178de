"""Tumour growth kinetics: the Stein/Wilkerson growth-decay family and Ferté's tumour growth rate.

Growth-decay models (Stein et al., Clin Cancer Res 2008;14:7464-7470; Wilkerson et al., PLoS One
2017;12:e0184302, R package ``tumgr``) on the tumour size normalised to the first assessment,
``f(t) = size(t) / size(0)``, with ``t`` in days since the first (baseline) assessment:

========  ============================================  ==========
model     f(t)                                          parameters
========  ============================================  ==========
``gd``    ``exp(-d t) + exp(g t) - 1``                  g, d
``dx``    ``exp(-d t)``                                 d
``gx``    ``exp(g t)``                                  g
``gdphi`` ``phi exp(g t) + (1 - phi) exp(-d t)``        g, d, phi
========  ============================================  ==========

Each model is fitted by bounded nonlinear least squares (rates in [0, ``max_rate``] per day,
``phi`` in [0, 1]; several starting points). As in ``tumgr::gdrate``, a fit is kept only when it
converged and all its parameters are significant (Wald t-test on the Jacobian covariance,
``p < pval``, default 0.05); among the kept fits the lowest AIC wins (AIC of a Gaussian
least-squares fit, as R's ``AIC(nls)``). Outcomes as ``tumgr``: ``status`` is ``"fit"``,
``"excluded"`` (fewer than ``min_assessments`` assessments, or a baseline size of 0) or
``"not fit"`` (no model kept).

Tumour growth rate (Ferté et al., Eur J Cancer 2014;50:1463-1472; Gomez-Roca et al., Eur J
Cancer 2011): ``TG = 3 log(D_t / D_0) / t`` with ``D`` the sum of longest diameters (volume taken
as ``D**3``) and ``t`` in months (30.4375 days), ``TGR = 100 (exp(TG) - 1)`` in % per month.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["KineticsFit", "fit_growth_kinetics", "growth_kinetics", "tumour_growth_rate"]

DAYS_PER_MONTH = 30.4375
MODELS = ("gd", "dx", "gx", "gdphi")


def _model(name: str):
    if name == "gd":
        return (lambda p, t: np.exp(-p[1] * t) + np.exp(p[0] * t) - 1.0), ("g", "d")
    if name == "dx":
        return (lambda p, t: np.exp(-p[0] * t)), ("d",)
    if name == "gx":
        return (lambda p, t: np.exp(p[0] * t)), ("g",)
    if name == "gdphi":
        return (lambda p, t: p[2] * np.exp(p[0] * t) + (1.0 - p[2]) * np.exp(-p[1] * t)), (
            "g",
            "d",
            "phi",
        )
    raise ValueError(f"unknown growth model {name!r}; choose from {list(MODELS)}.")


@dataclass(frozen=True)
class KineticsFit:
    """Result of :func:`fit_growth_kinetics` for one patient.

    ``model`` is the selected model (None unless ``status == "fit"``), ``g_per_day`` and
    ``d_per_day`` its rates (NaN when the model lacks them), ``phi`` the fraction of the growing
    component (``gdphi`` only), ``aic`` its AIC, ``n`` the number of assessments used and
    ``candidates`` a table of every model tried (``model``, ``converged``, ``significant``,
    ``aic``, parameters and p-values).
    """

    status: str
    model: str | None
    g_per_day: float
    d_per_day: float
    phi: float
    aic: float
    n: int
    candidates: pd.DataFrame


def _fit_one(name: str, t: np.ndarray, y: np.ndarray, max_rate: float, pval: float) -> dict:
    from scipy import optimize, stats

    f, names = _model(name)
    k = len(names)
    lower = np.zeros(k)
    upper = np.array([max_rate] * min(k, 2) + ([1.0] if k == 3 else []))
    starts = [0.001, 0.01, 0.05]
    best = None
    for s in starts:
        x0 = np.array([min(s, max_rate * 0.5)] * min(k, 2) + ([0.5] if k == 3 else []))
        with np.errstate(over="ignore", invalid="ignore"):
            res = optimize.least_squares(
                lambda p: f(p, t) - y, x0, bounds=(lower, upper), method="trf", x_scale="jac"
            )
        if not np.all(np.isfinite(res.fun)):
            continue
        if best is None or res.cost < best.cost:
            best = res
    row: dict = {"model": name, "converged": False, "significant": False, "aic": math.nan}
    if best is None:
        return row
    n = len(t)
    rss = float(np.sum(best.fun**2))
    converged = bool(best.success and best.status > 0)
    row["converged"] = converged
    for nm, v in zip(names, best.x, strict=True):
        row[nm] = float(v)
    dof = n - k
    pvals = [math.nan] * k
    if dof > 0:
        jac = best.jac
        s2 = max(rss, 1e-300) / dof
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            try:
                cov = np.linalg.inv(jac.T @ jac) * s2
                se = np.sqrt(np.diag(cov))
                tval = np.abs(best.x) / se
                pvals = [
                    float(2 * stats.t.sf(v, dof)) if np.isfinite(v) else math.nan for v in tval
                ]
            except np.linalg.LinAlgError:
                pass
    for nm, pv in zip(names, pvals, strict=True):
        row[f"p_{nm}"] = pv
    row["significant"] = bool(all(np.isfinite(pv) and pv < pval for pv in pvals))
    rss_floor = max(rss, 1e-12 * n)
    row["aic"] = n * (math.log(2 * math.pi * rss_floor / n) + 1) + 2 * (k + 1)
    return row


def fit_growth_kinetics(
    days: Sequence[float],
    sizes: Sequence[float],
    *,
    models: Sequence[str] = ("gd", "dx", "gx"),
    min_assessments: int = 3,
    pval: float = 0.05,
    max_rate: float = 1.0,
) -> KineticsFit:
    """Fit the growth-decay family to one patient's tumour sizes and select as ``tumgr`` does.

    Parameters
    ----------
    days : sequence of float
        Assessment times in days (any origin; the first assessment becomes t = 0).
    sizes : sequence of float
        Tumour size at each time (sum of diameters in mm, or total volume in ml).
    models : sequence of str
        Models to try, among ``"gd"``, ``"dx"``, ``"gx"``, ``"gdphi"``.
    min_assessments : int
        Fewer finite assessments make the patient ``"excluded"``.
    pval : float
        Significance level of every parameter of a kept fit.
    max_rate : float
        Upper bound of g and d (per day).

    Returns
    -------
    KineticsFit

    Examples
    --------
    >>> import numpy as np
    >>> t = np.array([0, 56, 112, 168, 224])
    >>> fit = fit_growth_kinetics(t, 50 * (np.exp(-0.01 * t) + np.exp(0.004 * t) - 1))
    >>> fit.model, round(fit.g_per_day, 4), round(fit.d_per_day, 4)
    ('gd', 0.004, 0.01)
    """
    for m in models:
        _model(m)
    if not 0 < pval < 1:
        raise ValueError(f"pval must be in (0, 1); got {pval!r}.")
    t = np.asarray(days, dtype=float)
    y = np.asarray(sizes, dtype=float)
    if t.shape != y.shape:
        raise ValueError(f"days and sizes must have the same length; got {t.size} and {y.size}.")
    ok = np.isfinite(t) & np.isfinite(y)
    t, y = t[ok], y[ok]
    order = np.argsort(t, kind="stable")
    t, y = t[order], y[order]
    empty = pd.DataFrame(columns=["model", "converged", "significant", "aic"])
    if t.size < min_assessments or y[0] <= 0 or np.any(y < 0):
        return KineticsFit(
            "excluded", None, math.nan, math.nan, math.nan, math.nan, int(t.size), empty
        )
    t = t - t[0]
    f = y / y[0]
    rows = [_fit_one(m, t, f, max_rate, pval) for m in models]
    cand = pd.DataFrame(rows)
    kept = cand[cand["converged"] & cand["significant"]]
    if kept.empty:
        return KineticsFit(
            "not fit", None, math.nan, math.nan, math.nan, math.nan, int(t.size), cand
        )
    best = kept.loc[kept["aic"].idxmin()]
    return KineticsFit(
        "fit",
        str(best["model"]),
        float(best.get("g", math.nan)) if "g" in best and pd.notna(best.get("g")) else math.nan,
        float(best.get("d", math.nan)) if "d" in best and pd.notna(best.get("d")) else math.nan,
        float(best.get("phi", math.nan))
        if "phi" in best and pd.notna(best.get("phi"))
        else math.nan,
        float(best["aic"]),
        int(t.size),
        cand,
    )


def growth_kinetics(
    table: pd.DataFrame,
    *,
    time: str = "days",
    size: str = "target_sum_mm",
    by: str = "patient_id",
    **options,
) -> pd.DataFrame:
    """Fit :func:`fit_growth_kinetics` per patient of a long table.

    Parameters
    ----------
    table : DataFrame
        One row per patient x assessment (e.g. the ``recist`` table restricted to on-treatment,
        evaluable assessments).
    time, size, by : str
        Column names of the time (days), size and patient key.
    **options
        Passed to :func:`fit_growth_kinetics`.

    Returns
    -------
    DataFrame
        One row per patient: ``by``, ``tgk_status``, ``tgk_model``, ``tgk_g_per_day``,
        ``tgk_d_per_day``, ``tgk_phi``, ``tgk_aic``, ``tgk_n``.
    """
    missing = [c for c in (time, size, by) if c not in table.columns]
    if missing:
        raise ValueError(
            f"table lacks column(s) {missing}; found {list(table.columns)}. Pass time=, size= "
            "and by= to name your columns."
        )
    rows = []
    for key, grp in table.groupby(by, sort=True):
        fit = fit_growth_kinetics(grp[time].to_numpy(float), grp[size].to_numpy(float), **options)
        rows.append(
            {
                by: key,
                "tgk_status": fit.status,
                "tgk_model": fit.model,
                "tgk_g_per_day": fit.g_per_day,
                "tgk_d_per_day": fit.d_per_day,
                "tgk_phi": fit.phi,
                "tgk_aic": fit.aic,
                "tgk_n": fit.n,
            }
        )
    return pd.DataFrame(rows)


def tumour_growth_rate(d0: float, dt: float, days: float) -> float:
    """Ferté's tumour growth rate in % per month between two assessments.

    Parameters
    ----------
    d0, dt : float
        Sum of longest diameters (mm) at the start and the end of the period.
    days : float
        Length of the period in days (> 0).

    Returns
    -------
    float
        ``100 (exp(3 log(dt / d0) / months) - 1)``; -100 when ``dt`` is 0; NaN when ``d0`` is 0
        or the period is empty.

    Examples
    --------
    >>> round(tumour_growth_rate(50.0, 60.0, 60.875), 2)  # 2 months, +20 % in diameter
    31.45
    """
    if (
        not (math.isfinite(d0) and math.isfinite(dt) and math.isfinite(days))
        or d0 <= 0
        or days <= 0
    ):
        return math.nan
    if dt <= 0:
        return -100.0
    tg = 3.0 * math.log(dt / d0) / (days / DAYS_PER_MONTH)
    return 100.0 * (math.exp(tg) - 1.0)
