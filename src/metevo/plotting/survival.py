"""Survival figures: Kaplan-Meier curves with numbers at risk, and the Cox forest plot.

Both draw the tidy tables of :mod:`metevo.survival` (``survival_km``, ``survival_cox``) onto
``ax`` (created when None) and return it. Colours follow the one palette of metevo
(:mod:`metevo.plotting._palette`: a pattern's colour says what it means); every title says
which analysis it shows (landmark at day L or full follow-up).
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter

from metevo.plotting._labels import column_label
from metevo.plotting._palette import pattern_colors

__all__ = ["plot_forest", "plot_km"]


def _km_title(km: pd.DataFrame) -> str:
    endpoint = km["endpoint"].iloc[0].upper() if len(km) else ""
    lm = km["landmark_days"].dropna() if "landmark_days" in km else pd.Series([])
    if len(lm):
        return (
            f"{endpoint} by pattern, landmark at day {lm.iloc[0]:g} "
            "(patterns from scans up to the landmark)"
        )
    return f"{endpoint}, full follow-up from treatment start"


def plot_km(
    km: pd.DataFrame,
    *,
    order: Sequence[str] | None = None,
    ax: plt.Axes | None = None,
    at_risk: bool = True,
    at_risk_times: Sequence[float] | None = None,
    confidence: bool | str = "auto",
    title: str | None = None,
) -> plt.Axes:
    """Kaplan-Meier curves from a ``survival_km`` table, with a numbers-at-risk table below.

    The legend gives each group's number of patients (``n`` at time 0); censored patients are
    ticks on the curves; 95 % CI bands are drawn as light steps, by default only with up to
    three groups (``confidence="auto"``; more bands overlap into an unreadable wash). The
    numbers at risk are written under the x ticks (``at_risk_times`` sets both), with the group
    names to the left of the axis, clear of the first column. The title says which analysis the
    curves show (landmark or full follow-up; ``title`` overrides).
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 4.6), constrained_layout=True)
    groups = list(order) if order is not None else sorted(km["group"].unique())
    groups = [g for g in groups if g in set(km["group"])]
    pal = pattern_colors(groups)
    show_ci = len(groups) <= 3 if confidence == "auto" else bool(confidence)
    for g in groups:
        sub = km[km["group"] == g].sort_values("time_days")
        n = int(sub["at_risk"].iloc[0])
        ax.step(
            sub["time_days"],
            sub["survival"],
            where="post",
            color=pal[g],
            lw=1.8,
            label=f"{g} (n={n})",
        )
        if show_ci:
            ax.fill_between(
                sub["time_days"],
                sub["ci_lower"],
                sub["ci_upper"],
                step="post",
                color=pal[g],
                alpha=0.12,
                lw=0,
            )
        cens = sub[sub["censored"] > 0]
        ax.plot(
            cens["time_days"],
            cens["survival"],
            ls="none",
            marker="|",
            color=pal[g],
            ms=6,
            mew=1.0,
            label="_censored",
        )
    ax.set_ylim(0, 1.02)
    xmax = float(km["time_days"].max()) if len(km) else 1.0
    if at_risk_times is not None:
        ticks = np.asarray(at_risk_times, float)
        ax.set_xticks(ticks)
        xmax = max(xmax, float(ticks.max()))
    else:
        ax.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))
    ax.set_xlim(0, xmax)
    lm = km["landmark_days"].dropna()
    origin = (
        f"days since landmark (day {lm.iloc[0]:g})" if len(lm) else "days since treatment start"
    )
    ax.set_xlabel(origin)
    ax.set_ylabel(f"{km['endpoint'].iloc[0].upper() if len(km) else ''} probability")
    p = km["logrank_p_value"].dropna()
    legend_title = f"log-rank p = {p.iloc[0]:.2g}" if len(p) else None
    if show_ci:
        ax.plot([], [], color="0.6", lw=6, alpha=0.3, label="95 % CI")
    ax.plot([], [], ls="none", marker="|", color="0.3", label="censored")
    legend = ax.legend(loc="best", fontsize=7, frameon=False, title=legend_title)
    legend.get_title().set_fontsize(7)  # placed where it hides the fewest steps
    ax.set_title(title or _km_title(km), fontsize=9)
    if at_risk and groups:
        _at_risk_table(ax, km, groups, pal)
    return ax


def _left_label(ax: plt.Axes, text: str, y: float, **style: object) -> None:
    """A row label 18 points left of the axis (clear of a centred 5-digit count at x = 0)."""
    ax.annotate(
        text,
        xy=(0, y),
        xycoords="axes fraction",
        xytext=(-18, 0),
        textcoords="offset points",
        ha="right",
        va="center",
        fontsize=7,
        **style,
    )


def _at_risk_table(ax: plt.Axes, km: pd.DataFrame, groups: list[str], pal: dict) -> None:
    """Numbers at risk under each x tick, one row per group; group names left of the axis."""
    lo, hi = ax.get_xlim()
    times = [float(t) for t in ax.get_xticks() if lo - 1e-9 <= t <= hi + 1e-9]
    ax.set_xticks(times)
    ax.set_xlim(lo, hi)
    trans = ax.get_xaxis_transform()
    _left_label(ax, "at risk", -0.25, weight="bold")
    for row, g in enumerate(groups):
        sub = km[km["group"] == g].sort_values("time_days")
        y = -0.33 - 0.075 * row
        _left_label(ax, g, y, color=pal[g])
        for t in times:
            later = sub[sub["time_days"] >= t]
            count = int(later["at_risk"].iloc[0]) if len(later) else 0
            ax.text(t, y, str(count), transform=trans, ha="center", va="center", fontsize=7)


def _log_ticks(lo: float, hi: float) -> list[float]:
    """Hazard-ratio ticks inside [lo, hi] that cannot crowd: 1-2-5 steps over a narrow range,
    decades (every n-th when very wide, at most 5 ticks) otherwise; 1 is always kept."""
    e_lo, e_hi = int(np.floor(np.log10(lo))), int(np.ceil(np.log10(hi)))
    ticks = [m * 10.0**e for e in range(e_lo, e_hi + 1) for m in (1.0, 2.0, 5.0)]
    inside = [t for t in ticks if lo <= t <= hi]
    if len(inside) <= 6:
        return inside or [1.0]
    decades = [10.0**e for e in range(e_lo, e_hi + 1) if lo <= 10.0**e <= hi]
    step = int(np.ceil(len(decades) / 5))
    return [t for t in decades if round(np.log10(t)) % step == 0] or [1.0]


def _hr_text(hr: float, lo: float, hi: float) -> str:
    def f(v: float) -> str:
        return f"{v:.2f}" if 0.01 <= v < 100 else f"{v:.2g}"

    return f"{f(hr)} ({f(lo)}–{f(hi)})"


def plot_forest(
    cox: pd.DataFrame, *, ax: plt.Axes | None = None, title: str | None = None
) -> plt.Axes:
    """Forest plot of hazard ratios with 95 % CI from a ``survival_cox`` table (log axis).

    Each row has its "HR (95 % CI)" written to the right of the plot; ticks are 1-2-5 steps
    (decades only when the range is wide) so labels never overlap. A model that was not fitted
    (``fitted`` False: too few events per parameter) is refused with its reason: it is not a
    result to draw.
    """
    d = cox.reset_index(drop=True)
    if "fitted" in d and len(d) and not d["fitted"].astype(bool).all():
        raise ValueError(f"no forest plot: the Cox model was {d['note'].iloc[0]}.")
    if ax is None:
        _, ax = plt.subplots(figsize=(7.2, 0.42 * len(d) + 1.4), constrained_layout=True)
    y = np.arange(len(d))[::-1]
    ax.errorbar(
        d["hazard_ratio"],
        y,
        xerr=[d["hazard_ratio"] - d["ci_lower"], d["ci_upper"] - d["hazard_ratio"]],
        fmt="s",
        color="0.15",
        ecolor="0.4",
        capsize=3,
        ms=5,
    )
    ax.axvline(1.0, color="0.5", ls="--", lw=1)
    ax.set_xscale("log")
    if len(d):
        lo = float(np.nanmin(np.r_[d["ci_lower"], 1.0])) / 1.25
        hi = float(np.nanmax(np.r_[d["ci_upper"], 1.0])) * 1.25
        ax.set_xlim(lo, hi)
        ax.set_xticks(_log_ticks(lo, hi))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_yticks(y)
    # covariate terms spelled out ("baseline_target_sum_mm" -> "baseline RECIST target sum (mm)")
    ax.set_yticklabels([t if ":" in t else column_label(t) for t in d["term"]], fontsize=8)
    ax.set_ylim(-0.7, len(d) - 0.3)
    ax.set_xlabel("hazard ratio (log scale)")
    trans = ax.get_yaxis_transform()
    ax.text(
        1.02, len(d) - 0.4, "HR (95 % CI)", transform=trans, fontsize=8, weight="bold", va="bottom"
    )
    for yi, row in zip(y, d.itertuples(), strict=True):
        ax.text(
            1.02,
            yi,
            _hr_text(row.hazard_ratio, row.ci_lower, row.ci_upper),
            transform=trans,
            fontsize=8,
            va="center",
        )
    if len(d) and title is None:
        c = d["concordance"].iloc[0]
        lm = d["landmark_days"].iloc[0]
        method = d["concordance_method"].iloc[0] if "concordance_method" in d else ""
        title = f"Cox model, {d['endpoint'].iloc[0].upper()}"
        title += f", landmark at day {lm:g}" if np.isfinite(lm) else ", full follow-up"
        title += f"\nconcordance {c:.2f}" + (f", {method}" if method else "")
        title += f", {int(d['n_events'].iloc[0])} events / {int(d['n_patients'].iloc[0])} patients"
    if title:
        ax.set_title(title, fontsize=9)
    return ax
