"""The lesion graph as a timeline (one row per track, node area = volume, colour = change class)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from metevo.columns import LesionEdges as E
from metevo.columns import Lesions as L
from metevo.tracking import CHANGES

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

    from metevo.tracking import LesionGraph

__all__ = ["CHANGE_COLORS", "plot_lesion_graph"]

#: Colours of the change classes in :meth:`LesionGraph.plot`.
CHANGE_COLORS = {
    "lone": "#7f7f7f",
    "new": "#d62728",
    "disappeared": "#2ca02c",
    "persistent": "#1f77b4",
    "merged": "#9467bd",
    "split": "#ff7f0e",
    "complex": "#8c564b",
}


def plot_lesion_graph(graph: LesionGraph, ax: Axes | None = None, *, by: str = "date") -> Axes:
    """Draw the graph as a timeline: x = visit date (or days), one row per track.

    Node area is proportional to lesion volume; node colour is the change class, an edge's
    colour the change class of the lesion it leads to; skip edges are dashed.

    Parameters
    ----------
    ax
        Axes to draw on (a new figure when None).
    by
        ``"date"`` (default; falls back to visit order when dates are missing) or ``"days"``.

    Returns
    -------
    matplotlib.axes.Axes
    """
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    if by not in ("date", "days"):
        raise ValueError(f"by must be 'date' or 'days'; got {by!r}.")
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 0.45 * max(len(graph.tracks), 3) + 1.5))
    nodes = graph.nodes
    order = {tp: i for i, tp in enumerate(graph.timepoints)}
    column = L.DATE if by == "date" else L.DAYS
    if column in nodes and nodes[column].notna().all() and len(nodes):
        xs = pd.to_datetime(nodes[column]) if by == "date" else nodes[column].astype(float)
        x_of = dict(zip(nodes[L.TIMEPOINT], xs, strict=True))
    else:
        x_of = {tp: i for tp, i in order.items()}
    pos = {}
    for (_track, tp), grp in nodes.groupby([L.TRACK_ID, L.TIMEPOINT]):
        ids = sorted(grp[L.LESION_ID])
        for i, lid in enumerate(ids):
            pos[(tp, int(lid))] = (x_of[tp], _track + (i - (len(ids) - 1) / 2) * 0.28)
    for u, v, data in graph.graph.edges(data=True):
        (x0, y0), (x1, y1) = pos[u], pos[v]
        ax.plot(
            [x0, x1],
            [y0, y1],
            color=CHANGE_COLORS[graph.graph.nodes[v][L.CHANGE]],
            linestyle="--" if data.get(E.SKIP) else "-",
            linewidth=1.5,
            zorder=1,
        )
    if len(nodes):
        vol = nodes[L.VOLUME_ML].astype(float).fillna(0).to_numpy()
        size = 20 + 400 * vol / max(vol.max(), 1e-9)
        keys = list(zip(nodes[L.TIMEPOINT], nodes[L.LESION_ID].astype(int), strict=True))
        ax.scatter(
            [pos[k][0] for k in keys],
            [pos[k][1] for k in keys],
            s=size,
            c=[CHANGE_COLORS[c] for c in nodes[L.CHANGE]],
            edgecolors="black",
            linewidths=0.5,
            zorder=2,
        )
    ax.set_ylabel("track")
    ax.set_xlabel("visit date" if by == "date" else "days since first visit")
    if len(graph.tracks):
        ax.set_yticks(graph.tracks["track_id"].tolist())
    ax.invert_yaxis()
    present = [c for c in CHANGES if c in set(nodes.get(L.CHANGE, []))]
    ax.legend(
        handles=[
            Line2D([], [], marker="o", linestyle="", color=CHANGE_COLORS[c], label=c)
            for c in present
        ],
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        frameon=False,
        title="change",
    )
    ax.set_title(f"Lesion graph, patient {graph.patient_id}")
    return ax
