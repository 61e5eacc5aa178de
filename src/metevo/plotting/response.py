"""Response figures: waterfall, spider and swimmer plots (matplotlib).

Each function takes the ``recist`` table (and optionally the ``patients`` and events tables),
accepts ``ax=None`` and returns the Axes; none calls ``plt.show()``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from metevo.plotting._palette import RESPONSE_COLORS

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["RESPONSE_COLORS", "spider", "swimmer", "waterfall"]

#: Colour of each response category (colour-blind friendly, Okabe-Ito; one palette for every
#: figure: :mod:`metevo.plotting._palette`).
_EVENT_MARKERS = {
    "death": ("X", "black"),
    "new_treatment_line": (">", "#0072B2"),
    "resection": ("D", "#CC79A7"),
    "ablation": ("d", "#CC79A7"),
    "extrahepatic_progression": ("*", "#D55E00"),
}


def _axes(ax: Axes | None) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=(7, 4))
    return ax


def _check(recist: pd.DataFrame, columns: list[str]) -> None:
    if not isinstance(recist, pd.DataFrame):
        raise TypeError(
            f"recist must be a pandas DataFrame (the recist table); got {type(recist).__name__}."
        )
    missing = [c for c in columns if c not in recist.columns]
    if missing:
        raise ValueError(
            f"the recist table lacks column(s) {missing}; found {list(recist.columns)}. Pass the "
            "table written by `metevo analyze` (recist.parquet) or returned by metevo.recist()."
        )


def _best_response(patients: pd.DataFrame | None, column: str) -> dict[str, str]:
    if patients is None:
        return {}
    if column not in patients.columns:
        raise ValueError(f"patients table lacks column {column!r}; found {list(patients.columns)}.")
    return dict(zip(patients["patient_id"], patients[column], strict=True))


def _reference_lines(ax: Axes) -> None:
    """RECIST 1.1 thresholds of the target sum (section 4.3.1), labelled at the right edge."""
    for y, style, text in ((20, "--", "+20 %: PD"), (-30, ":", "−30 %: PR")):
        ax.axhline(y, color="0.4", linestyle=style, linewidth=0.8)
        ax.annotate(
            text,
            xy=(1.0, y),
            xycoords=("axes fraction", "data"),
            xytext=(-2, 2),
            textcoords="offset points",
            ha="right",
            va="bottom",
            fontsize=7,
            color="0.3",
        )
    ax.axhline(0, color="black", linewidth=0.6)


def _response_handles(categories, *, marker: str | None = None) -> list:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    seen = set(categories)
    present = [r for r in RESPONSE_COLORS if r in seen]
    if marker is None:
        return [Patch(color=RESPONSE_COLORS[r], label=r) for r in present]
    return [
        Line2D([], [], color=RESPONSE_COLORS[r], marker=marker, markersize=4, label=r)
        for r in present
    ]


def best_percent_change(recist: pd.DataFrame) -> pd.Series:
    """Best (smallest) percent change of the target sum from baseline per patient, over
    evaluable post-baseline scans at or before the first PD."""
    _check(recist, ["patient_id", "date", "pct_change_baseline", "overall_response", "evaluable"])
    out = {}
    for pid, grp in recist.sort_values("date").groupby("patient_id", sort=True):
        post = grp[grp["overall_response"].notna() & grp["evaluable"].astype(bool)]
        pd_pos = np.flatnonzero(post["overall_response"].to_numpy() == "PD")
        if len(pd_pos):
            post = post.iloc[: pd_pos[0] + 1]
        values = post["pct_change_baseline"].dropna()
        out[pid] = float(values.min()) if len(values) else np.nan
    return pd.Series(out, name="best_pct_change")


def waterfall(
    recist: pd.DataFrame,
    patients: pd.DataFrame | None = None,
    *,
    color_by: str = "best_response_confirmed",
    ax: Axes | None = None,
) -> Axes:
    """Waterfall plot: best % change of the target sum per patient, coloured by best response.

    Parameters
    ----------
    recist : DataFrame
        The ``recist`` table.
    patients : DataFrame, optional
        The ``patients`` table (for the colours).
    color_by : str
        Column of ``patients`` giving the colour (``best_response_confirmed`` or
        ``best_response``).
    ax : matplotlib Axes, optional

    Returns
    -------
    Axes

    Examples
    --------
    >>> waterfall(res.read("recist"), res.read("patients"))  # doctest: +SKIP
    """
    ax = _axes(ax)
    best = best_percent_change(recist).dropna().sort_values(ascending=False)
    resp = _best_response(patients, color_by)
    colors = [RESPONSE_COLORS.get(resp.get(pid, ""), "#56B4E9") for pid in best.index]
    ax.bar(np.arange(len(best)), best.to_numpy(), color=colors, edgecolor="none")
    _reference_lines(ax)
    ax.set_xticks(np.arange(len(best)))
    ax.set_xticklabels(best.index, rotation=90, fontsize=7)
    ax.set_ylabel("best change of target sum from baseline (%)")
    ax.set_xlabel("patient")
    if resp:
        _legend_right(
            ax, _response_handles(resp.get(p) for p in best.index), color_by.replace("_", " ")
        )
    return ax


def spider(
    recist: pd.DataFrame,
    patients: pd.DataFrame | None = None,
    *,
    x: str = "days",
    color_by: str = "best_response_confirmed",
    ax: Axes | None = None,
) -> Axes:
    """Spider plot: % change of the target sum from baseline over time, one line per patient.

    Parameters
    ----------
    recist : DataFrame
        The ``recist`` table.
    patients : DataFrame, optional
        The ``patients`` table (for the colours).
    x : str
        Time column (``days`` since the first scan, or ``study_day``).
    color_by : str
        Column of ``patients`` giving the colour.
    ax : matplotlib Axes, optional

    Returns
    -------
    Axes
    """
    _check(recist, ["patient_id", x, "pct_change_baseline", "overall_response"])
    ax = _axes(ax)
    resp = _best_response(patients, color_by)
    baseline_like = recist["pct_change_baseline"].eq(0) & recist["overall_response"].isna()
    df = recist[recist["overall_response"].notna() | baseline_like].dropna(
        subset=["pct_change_baseline", x]
    )
    for pid, grp in df.sort_values(x).groupby("patient_id", sort=True):
        color = RESPONSE_COLORS.get(resp.get(pid, ""), "#56B4E9")
        ax.plot(
            grp[x],
            grp["pct_change_baseline"],
            marker="o",
            markersize=3,
            linewidth=1,
            color=color,
            label=pid,
        )
        pdx = grp[grp["overall_response"] == "PD"]
        ax.scatter(
            pdx[x],
            pdx["pct_change_baseline"],
            marker="s",
            s=18,
            color=RESPONSE_COLORS["PD"],
            zorder=3,
        )
    _reference_lines(ax)
    xlabels = {"days": "days since first scan", "study_day": "days since treatment start"}
    ax.set_xlabel(xlabels.get(x, x.replace("_", " ")))
    ax.set_ylabel("change of target sum from baseline (%)")
    from matplotlib.lines import Line2D

    handles = _response_handles((resp.get(p) for p in df["patient_id"]), marker="o") if resp else []
    if not resp:
        handles = [Line2D([], [], color="#56B4E9", marker="o", markersize=4, label="patient")]
    if (df["overall_response"] == "PD").any():
        handles.append(
            Line2D([], [], color=RESPONSE_COLORS["PD"], marker="s", linestyle="", label="visit with PD")
        )
    _legend_right(ax, handles, f"line: {color_by.replace('_', ' ')}" if resp else None)
    return ax


def swimmer(
    recist: pd.DataFrame,
    patients: pd.DataFrame | None = None,
    events: pd.DataFrame | None = None,
    *,
    ax: Axes | None = None,
) -> Axes:
    """Swimmer plot: each patient's follow-up as a bar, its responses as markers, its events.

    Time is days from the baseline scan. A bar covers the imaging follow-up (baseline to last
    scan) and is coloured by the confirmed best response; dots are the visits' overall
    responses; an arrow marks patients whose imaging PFS is censored (no progression seen). Events
    after the last scan (death, a new treatment line) are joined to the bar by a thin line. The
    axis ends a little after the last scan of the cohort, so one late death does not squeeze
    every bar: an event beyond it is drawn at the right edge with its day written beside it.

    Parameters
    ----------
    recist : DataFrame
        The ``recist`` table.
    patients : DataFrame, optional
        The ``patients`` table (bar colour = confirmed best response; arrows for censored PFS).
    events : DataFrame, optional
        The events table (``patient_id``, ``date``, ``event``).
    ax : matplotlib Axes, optional

    Returns
    -------
    Axes
    """
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    _check(recist, ["patient_id", "date", "overall_response"])
    ax = _axes(ax)
    resp = _best_response(patients, "best_response_confirmed")
    rec = recist.copy()
    rec["_date"] = pd.to_datetime(rec["date"])
    starts = (
        rec[rec["pct_change_baseline"].eq(0) & rec["overall_response"].isna()]
        .groupby("patient_id")["_date"]
        .min()
    )
    starts = starts.reindex(rec["patient_id"].unique()).fillna(
        rec.groupby("patient_id")["_date"].min()
    )
    last = rec.groupby("patient_id")["_date"].max()
    order = ((last - starts).dt.days).sort_values().index.tolist()
    censored = {}
    if patients is not None and "imaging_pfs_event" in patients:
        censored = dict(
            zip(patients["patient_id"], ~patients["imaging_pfs_event"].astype(bool), strict=True)
        )
    ev = events if events is not None and len(events) else None
    if ev is not None:
        ev = ev[ev["patient_id"].isin(order)].assign(_date=lambda d: pd.to_datetime(d["date"]))
    longest = max(((last - starts).dt.days.max() if len(order) else 0), 1)
    xmax = 1.25 * longest + 30
    beyond = False
    for i, pid in enumerate(order):
        length = (last[pid] - starts[pid]).days
        ax.barh(
            i,
            length,
            color=RESPONSE_COLORS.get(resp.get(pid, ""), "#BBBBBB"),
            alpha=0.45,
            height=0.6,
        )
        grp = rec[(rec["patient_id"] == pid) & rec["overall_response"].notna()]
        days = (grp["_date"] - starts[pid]).dt.days
        ax.scatter(
            days,
            np.full(len(grp), i),
            c=[RESPONSE_COLORS.get(r, "#999999") for r in grp["overall_response"]],
            s=22,
            zorder=3,
            edgecolors="white",
            linewidths=0.5,
        )
        if censored.get(pid):
            ax.annotate(
                "",
                xy=(length + 0.06 * longest, i),
                xytext=(length + 2, i),
                arrowprops={"arrowstyle": "->", "color": "0.3"},
            )
        if ev is None:
            continue
        mine = ev[ev["patient_id"] == pid]
        if not len(mine):
            continue
        ev_days = (mine["_date"] - starts[pid]).dt.days.to_numpy()
        end = ev_days.max()
        if end > length:
            ax.plot([length, min(end, xmax)], [i, i], color="0.35", linewidth=0.8, zorder=2)
        for (_, e), day in zip(mine.iterrows(), ev_days, strict=True):
            marker, color = _EVENT_MARKERS.get(e["event"], ("o", "black"))
            shown = min(day, xmax - 0.01 * xmax)
            ax.scatter(shown, i, marker=marker, color=color, s=40, zorder=4, clip_on=False)
            if day > xmax:
                beyond = True
                ax.annotate(
                    f"{e['event'].replace('_', ' ')} day {day}",
                    xy=(shown, i),
                    xytext=(-8, 0),
                    textcoords="offset points",
                    ha="right",
                    va="center",
                    bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8},
                    fontsize=6,
                    annotation_clip=False,
                )
    ax.set_xlim(0, xmax)
    ax.set_yticks(range(len(order)))
    ax.set_yticklabels(order, fontsize=7)
    ax.set_ylim(-0.7, len(order) - 0.3)
    ax.set_xlabel("days since baseline scan" + (" (events beyond the axis: day written)" if beyond else ""))
    bar_cats = {resp.get(p, "") for p in order}
    bars = [
        Patch(color=RESPONSE_COLORS[r], alpha=0.45, label=r)
        for r in RESPONSE_COLORS
        if r in bar_cats
    ]
    if not bars:
        bars = [Patch(color="#BBBBBB", alpha=0.45, label="imaging follow-up")]
    dots = [
        Line2D([], [], marker="o", linestyle="", color=c, label=r)
        for r, c in RESPONSE_COLORS.items()
        if r in set(rec["overall_response"].dropna())
    ]
    other = []
    if any(censored.get(p) for p in order):
        other.append(
            Line2D([], [], marker=r"$\rightarrow$", linestyle="", color="0.3", markersize=9,
                   label="imaging PFS censored")
        )
    if ev is not None and len(ev):
        other.append(Line2D([], [], color="0.35", linewidth=0.8, label="follow-up after last scan"))
        other += [
            Line2D([], [], marker=m, linestyle="", color=c, label=k.replace("_", " "))
            for k, (m, c) in _EVENT_MARKERS.items()
            if k in set(ev["event"])
        ]
    ax.add_artist(_legend_right(ax, bars, "bar: confirmed best response" if resp else None, size=6))
    _legend_right(ax, dots + other, "dot: response at visit", size=6, bottom=True)
    return ax


def _legend_right(ax: Axes, handles: list, title: str | None, *, size: float = 7, bottom=False):
    """A frameless legend just right of the axes, top-aligned (or bottom-aligned)."""
    return ax.legend(
        handles=handles,
        title=title,
        fontsize=size,
        title_fontsize=size,
        loc="lower left" if bottom else "upper left",
        bbox_to_anchor=(1.01, 0.0 if bottom else 1.0),
        frameon=False,
    )
