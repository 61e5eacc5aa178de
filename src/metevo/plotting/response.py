"""Response figures: waterfall, spider and swimmer plots (matplotlib).

Each function takes the ``recist`` table (and optionally the ``patients`` and events tables),
accepts ``ax=None`` and returns the Axes; none calls ``plt.show()``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["RESPONSE_COLORS", "spider", "swimmer", "waterfall"]

#: Colour of each response category (colour-blind friendly, Okabe-Ito based).
RESPONSE_COLORS = {
    "CR": "#006D2C",
    "PR": "#009E73",
    "SD": "#E69F00",
    "NON-CR/NON-PD": "#F0E442",
    "PD": "#D55E00",
    "NE": "#999999",
    "MISSING": "#DDDDDD",
}
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


def _post_baseline(recist: pd.DataFrame) -> pd.DataFrame:
    df = recist[recist["overall_response"].notna()]
    return df


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
    for y, style in ((20, "--"), (-30, ":")):
        ax.axhline(y, color="0.4", linestyle=style, linewidth=0.8)
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_xticks(np.arange(len(best)))
    ax.set_xticklabels(best.index, rotation=90, fontsize=7)
    ax.set_ylabel("best change of target sum from baseline (%)")
    ax.set_xlabel("patient")
    if resp:
        from matplotlib.patches import Patch

        present = [r for r in RESPONSE_COLORS if r in {resp.get(p) for p in best.index}]
        ax.legend(
            handles=[Patch(color=RESPONSE_COLORS[r], label=r) for r in present],
            title=color_by.replace("_", " "),
            fontsize=7,
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
    for y, style in ((20, "--"), (-30, ":")):
        ax.axhline(y, color="0.4", linestyle=style, linewidth=0.8)
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_xlabel(x.replace("_", " ") + " (days)" if x in ("days", "study_day") else x)
    ax.set_ylabel("change of target sum from baseline (%)")
    return ax


def swimmer(
    recist: pd.DataFrame,
    patients: pd.DataFrame | None = None,
    events: pd.DataFrame | None = None,
    *,
    ax: Axes | None = None,
) -> Axes:
    """Swimmer plot: each patient's follow-up as a bar, its responses as markers, its events.

    Time is days from the baseline scan. A bar ends at the last scan; an arrow marks patients
    whose imaging PFS is censored (``patients`` table).

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
    for i, pid in enumerate(order):
        length = (last[pid] - starts[pid]).days
        ax.barh(
            i,
            length,
            color=RESPONSE_COLORS.get(resp.get(pid, ""), "#BBBBBB"),
            alpha=0.35,
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
                xy=(length + 25, i),
                xytext=(length + 2, i),
                arrowprops={"arrowstyle": "->", "color": "0.3"},
            )
        if events is not None and len(events):
            ev = events[events["patient_id"] == pid]
            for _, e in ev.iterrows():
                marker, color = _EVENT_MARKERS.get(e["event"], ("o", "black"))
                ax.scatter(
                    (pd.Timestamp(e["date"]) - starts[pid]).days,
                    i,
                    marker=marker,
                    color=color,
                    s=40,
                    zorder=4,
                )
    ax.set_yticks(range(len(order)))
    ax.set_yticklabels(order, fontsize=7)
    ax.set_xlabel("days since baseline scan")
    from matplotlib.lines import Line2D

    handles = [
        Line2D([], [], marker="o", linestyle="", color=c, label=r)
        for r, c in RESPONSE_COLORS.items()
        if r != "MISSING"
    ]
    if events is not None and len(events):
        kinds = set(events["event"])
        handles += [
            Line2D([], [], marker=m, linestyle="", color=c, label=k.replace("_", " "))
            for k, (m, c) in _EVENT_MARKERS.items()
            if k in kinds
        ]
    ax.legend(handles=handles, fontsize=6, loc="lower right")
    return ax
