"""The viewer's lesion graph: a plotly ``FigureWidget`` (anywidget) whose nodes can be clicked.

One marker per lesion and visit (x: days since the first scan, y: its track, colour: the track's),
lines for the graph's edges (``lesion_edges``; without them, consecutive visits of a track). The
node trace's point ``i`` is lesion ``keys[i] = (timepoint, lesion_id)``; a click on it reaches
:class:`~metevo.viewer.PatientViewer` through ``on_click``, which selects that visit and lesion.
"""

from __future__ import annotations

import pandas as pd

from metevo.columns import LesionEdges as E
from metevo.columns import Lesions as L

__all__ = ["NODE_SIZE", "graph_figure", "highlight"]

NODE_SIZE, HIGHLIGHT_SIZE = 10, 18


def _edge_list(lesions: pd.DataFrame, edges: pd.DataFrame | None) -> list[tuple[tuple[str, int], tuple[str, int]]]:
    if edges is not None:
        return [
            ((str(a), int(b)), (str(c), int(d)))
            for a, b, c, d in zip(edges[E.TIMEPOINT_FROM], edges[E.LESION_ID_FROM], edges[E.TIMEPOINT_TO],
                                  edges[E.LESION_ID_TO], strict=True)
        ]
    pairs = []
    for _, rows in lesions.sort_values([L.DAYS, L.LESION_ID]).groupby(L.TRACK_ID):
        keys = list(zip(rows[L.TIMEPOINT].astype(str), rows[L.LESION_ID].astype(int), strict=True))
        pairs += list(zip(keys, keys[1:], strict=False))
    return pairs


def graph_figure(lesions: pd.DataFrame, edges: pd.DataFrame | None, colours: dict[int, tuple[int, int, int]]):
    """``(FigureWidget, keys)``: the lesion graph and the ``(timepoint, lesion_id)`` of each node.

    The node trace is the figure's last trace (``fig.data[-1]``, named ``"lesions"``).
    """
    import plotly.graph_objects as go

    nodes = lesions.sort_values([L.DAYS, L.TRACK_ID, L.LESION_ID]).reset_index(drop=True)
    keys = list(zip(nodes[L.TIMEPOINT].astype(str), nodes[L.LESION_ID].astype(int), strict=True))
    where = {k: (float(d), int(t)) for k, d, t in zip(keys, nodes[L.DAYS], nodes[L.TRACK_ID], strict=True)}
    xs, ys = [], []
    for a, b in _edge_list(nodes, edges):
        if a in where and b in where:
            xs += [where[a][0], where[b][0], None]
            ys += [where[a][1], where[b][1], None]
    rgb = [f"rgb{colours.get(int(t), (128, 128, 128))}" for t in nodes[L.TRACK_ID]]
    text = [
        f"{tp} lesion {lid} · track {int(t)} · LD {ld:.1f} mm"
        for (tp, lid), t, ld in zip(keys, nodes[L.TRACK_ID], nodes[L.AXIAL_LD_MM], strict=True)
    ]
    fig = go.FigureWidget(
        data=[
            go.Scatter(x=xs, y=ys, mode="lines", line={"color": "#999", "width": 1}, hoverinfo="skip",
                       name="matches"),
            go.Scatter(
                x=nodes[L.DAYS].astype(float).tolist(), y=nodes[L.TRACK_ID].astype(int).tolist(), mode="markers",
                marker={"size": [NODE_SIZE] * len(keys), "color": rgb, "line": {"width": [0.5] * len(keys), "color": "black"}},
                text=text, hoverinfo="text", name="lesions",
            ),
        ],
        layout={
            "height": min(600, 140 + 22 * max(1, nodes[L.TRACK_ID].nunique())),
            "margin": {"l": 50, "r": 10, "t": 30, "b": 40},
            "showlegend": False,
            "title": {"text": "Lesion graph: click a lesion to show it", "font": {"size": 12}},
            "xaxis": {"title": {"text": "days since first scan"}},
            "yaxis": {"title": {"text": "track"}, "dtick": 1},
            "clickmode": "event",
        },
    )
    return fig, keys


def highlight(fig, keys: list[tuple[str, int]], key: tuple[str, int] | None) -> None:
    """Enlarge and outline node ``key`` (None: no node highlighted)."""
    trace = fig.data[-1]
    with fig.batch_update():
        trace.marker.size = [HIGHLIGHT_SIZE if k == key else NODE_SIZE for k in keys]
        trace.marker.line.width = [3.0 if k == key else 0.5 for k in keys]
