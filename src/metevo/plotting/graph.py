"""The lesion graph as a timeline (one row per track, node area = volume, colour = change class),
from a :class:`~metevo.tracking.LesionGraph` or from the ``lesions`` and ``lesion_edges`` tables.

Track colours come from :func:`metevo.tracking.track_palette` (re-exported here): every track has
one colour, fixed by its ``track_id``, in the lesion graph, the trajectory panel, the report's CT
contours and the viewer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from metevo.columns import LesionEdges as E
from metevo.columns import Lesions as L
from metevo.plotting._palette import CHANGE_COLORS  # new = progression, disappeared = response
from metevo.tracking import CHANGES, track_color, track_palette

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

    from metevo.tracking import LesionGraph

__all__ = ["CHANGE_COLORS", "plot_lesion_graph", "track_color", "track_palette"]


def plot_lesion_graph(
    lesions: pd.DataFrame | LesionGraph,
    lesion_edges: pd.DataFrame | None = None,
    *,
    patient_id: str | None = None,
    by: str = "date",
    ax: Axes | None = None,
) -> Axes:
    """Draw one patient's lesion graph as a timeline: x = visit, one row per track.

    Node area grows with lesion volume and node colour is the change class (new, persistent,
    disappeared, ...); the row of each track is a thin line in the track's colour (the colour of
    its contours in the report); edges are drawn in the colour of the change class they lead
    to, skip edges dashed. The figure height grows with the number of tracks and the legend sits
    above the axes, so a patient with many tracks stays readable.

    Parameters
    ----------
    lesions, lesion_edges
        A :class:`~metevo.tracking.LesionGraph` (``lesion_edges`` None), or the ``lesions`` and
        ``lesion_edges`` tables of ``metevo analyze`` (one or several patients).
    patient_id
        Patient to draw (default: the first in ``lesions``).
    by
        ``"date"`` (default) or ``"days"``.
    ax
        Axes to draw on (a new figure sized to the number of tracks when None).

    Returns
    -------
    matplotlib.axes.Axes
    """
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    if lesion_edges is None and hasattr(lesions, "nodes") and hasattr(lesions, "edges"):
        patient_id = lesions.patient_id if patient_id is None else patient_id
        lesions, lesion_edges = lesions.nodes, lesions.edges
    if not isinstance(lesions, pd.DataFrame):
        raise TypeError(
            f"pass a LesionGraph or the lesions table (a DataFrame); got {type(lesions).__name__}."
        )
    if lesion_edges is None:
        lesion_edges = pd.DataFrame(columns=[E.PATIENT_ID])
    if by not in ("date", "days"):
        raise ValueError(f"by must be 'date' or 'days'; got {by!r}.")
    missing = [c for c in (L.PATIENT_ID, L.TIMEPOINT, L.LESION_ID, L.TRACK_ID, L.CHANGE) if c not in lesions]
    if missing:
        raise ValueError(
            f"the lesions table lacks column(s) {missing}; pass lesions.parquet of `metevo analyze`."
        )
    if lesions.empty:
        raise ValueError("the lesions table is empty: no lesion graph to draw.")
    pid = patient_id if patient_id is not None else str(lesions[L.PATIENT_ID].iloc[0])
    nodes = lesions[lesions[L.PATIENT_ID] == pid]
    if nodes.empty:
        raise ValueError(
            f"patient {pid!r} has no row in the lesions table; patients present: "
            f"{', '.join(map(str, lesions[L.PATIENT_ID].unique()[:10]))}."
        )
    if len(lesion_edges) and E.PATIENT_ID in lesion_edges:
        edges = lesion_edges[lesion_edges[E.PATIENT_ID] == pid]
    else:
        edges = lesion_edges
    tracks = sorted(int(t) for t in nodes[L.TRACK_ID].unique())
    row = {t: i for i, t in enumerate(tracks)}
    if ax is None:
        height = min(max(2.6, 0.22 * len(tracks) + 1.6), 30.0)
        _, ax = plt.subplots(figsize=(8, height), constrained_layout=True)
    use_dates = by == "date" and L.DATE in nodes and nodes[L.DATE].notna().all()
    if use_dates:
        xs = pd.to_datetime(nodes[L.DATE])
    elif L.DAYS in nodes and nodes[L.DAYS].notna().all():
        xs = nodes[L.DAYS].astype(float)
    else:
        order = {tp: i for i, tp in enumerate(dict.fromkeys(nodes[L.TIMEPOINT]))}
        xs = nodes[L.TIMEPOINT].map(order).astype(float)
    x_of = dict(zip(nodes[L.TIMEPOINT], xs, strict=True))
    pos: dict[tuple[str, int], tuple] = {}
    change_of: dict[tuple[str, int], str] = {}
    for (track, tp), grp in nodes.groupby([L.TRACK_ID, L.TIMEPOINT]):
        ids = sorted(int(v) for v in grp[L.LESION_ID])
        for i, lid in enumerate(ids):
            pos[(tp, lid)] = (x_of[tp], row[int(track)] + (i - (len(ids) - 1) / 2) * 0.28)
    for r in nodes.itertuples():
        change_of[(getattr(r, L.TIMEPOINT), int(getattr(r, L.LESION_ID)))] = getattr(r, L.CHANGE)
    palette = track_palette(tracks)
    x_min, x_max = min(x_of.values()), max(x_of.values())
    for t in tracks:
        ax.plot([x_min, x_max], [row[t], row[t]], color=palette[t], linewidth=0.8, alpha=0.6, zorder=0)
    for e in edges.itertuples():
        u = (getattr(e, E.TIMEPOINT_FROM), int(getattr(e, E.LESION_ID_FROM)))
        v = (getattr(e, E.TIMEPOINT_TO), int(getattr(e, E.LESION_ID_TO)))
        if u not in pos or v not in pos:
            continue
        ax.plot(
            [pos[u][0], pos[v][0]],
            [pos[u][1], pos[v][1]],
            color=CHANGE_COLORS.get(change_of[v], "0.3"),
            linestyle="--" if bool(getattr(e, E.SKIP)) else "-",
            linewidth=1.3,
            zorder=1,
        )
    vol = nodes[L.VOLUME_ML].astype(float).fillna(0).to_numpy() if L.VOLUME_ML in nodes else np.zeros(len(nodes))
    size = 15 + 250 * vol / max(vol.max(), 1e-9)
    keys = list(zip(nodes[L.TIMEPOINT], nodes[L.LESION_ID].astype(int), strict=True))
    ax.scatter(
        [pos[k][0] for k in keys],
        [pos[k][1] for k in keys],
        s=size,
        c=[CHANGE_COLORS.get(c, "0.5") for c in nodes[L.CHANGE]],
        edgecolors="black",
        linewidths=0.5,
        zorder=2,
    )
    ax.set_ylim(len(tracks) - 0.4, -0.6)
    if len(tracks) <= 40:
        ax.set_yticks(range(len(tracks)))
        ax.set_yticklabels([str(t) for t in tracks], fontsize=7 if len(tracks) > 15 else 9)
        for label, t in zip(ax.get_yticklabels(), tracks, strict=True):
            label.set_color(palette[t])
    else:
        ax.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=20))
        ax.set_yticks([r for r in ax.get_yticks() if 0 <= r < len(tracks)])
        ax.set_yticklabels([str(tracks[int(r)]) for r in ax.get_yticks()], fontsize=7)
    ax.set_ylabel("track")
    if use_dates:
        locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        ax.set_xlabel("visit date")
    else:
        ax.set_xlabel("days since first visit")
    pad = (x_max - x_min) * 0.04 if x_max != x_min else (pd.Timedelta(days=15) if use_dates else 1)
    ax.set_xlim(x_min - pad, x_max + pad)
    present = [c for c in CHANGES if c in set(nodes[L.CHANGE])]
    handles = [
        Line2D([], [], marker="o", linestyle="", markeredgecolor="black", markeredgewidth=0.5,
               color=CHANGE_COLORS[c], label=c)
        for c in present
    ]
    if len(edges) and edges[E.SKIP].astype(bool).any():
        handles.append(Line2D([], [], color="0.3", linestyle="--", label="skip edge"))
    ax.legend(
        handles=handles,
        loc="lower left",
        bbox_to_anchor=(0.0, 1.0),
        ncol=min(len(handles), 4),
        frameon=False,
        fontsize=8,
        title="node colour: change; size: volume; row colour: track",
        title_fontsize=8,
    )
    ax.set_title(f"lesion graph, patient {pid} ({len(tracks)} tracks)", loc="right", fontsize=9)
    return ax
