"""Change classes of lesions and classes of tracks, from the graph's in/out degrees.

Change classes (from each node's in/out degree; nodes at the first visit count as having a
predecessor, nodes at the last as having a successor):

=============  ==================================
``lone``       no edge at all (a middle visit, or a single-visit patient)
``new``        no predecessor
``disappeared``  no successor
``persistent`` one predecessor, one successor
``merged``     two or more predecessors, one successor
``split``      one predecessor, two or more successors
``complex``    two or more of both
=============  ==================================

Every weakly connected group of nodes is a *track* (``track_id`` 1, 2, ... in order of first
appearance), classed ``single`` (one node), ``linear`` (a chain), ``merging``, ``splitting`` or
``complex``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import networkx as nx
import pandas as pd

from metevo.columns import LesionEdges as E
from metevo.columns import Lesions as L

if TYPE_CHECKING:  # pragma: no cover
    pass


__all__ = ["CHANGES", "TRACK_CLASSES", "change_classes", "edge_pairs"]


CHANGES = L.CHANGES
TRACK_CLASSES = ("single", "linear", "merging", "splitting", "complex")

# --------------------------------------------------------------------------------------------
# change classes
# --------------------------------------------------------------------------------------------
def edge_pairs(edges: pd.DataFrame) -> list[tuple[tuple[str, int], tuple[str, int]]]:
    """The ``((timepoint_from, lesion_id_from), (timepoint_to, lesion_id_to))`` node pairs of a
    ``lesion_edges`` table, in row order: what :func:`change_classes` takes."""
    return [
        ((a, int(b)), (c, int(d)))
        for a, b, c, d in zip(
            edges[E.TIMEPOINT_FROM],
            edges[E.LESION_ID_FROM],
            edges[E.TIMEPOINT_TO],
            edges[E.LESION_ID_TO],
            strict=True,
        )
    ]


def change_classes(
    nodes: Sequence[tuple[str, int]],
    edges: Sequence[tuple[tuple[str, int], tuple[str, int]]],
    timepoints: Sequence[str],
) -> dict[tuple[str, int], str]:
    """Change class of every node from its in/out degree (see the module docstring).

    Parameters
    ----------
    nodes
        ``(timepoint, lesion_id)`` keys.
    edges
        ``((timepoint_from, lesion_id_from), (timepoint_to, lesion_id_to))`` pairs.
    timepoints
        The patient's visits in order (the first and the last get virtual neighbours).

    Examples
    --------
    >>> change_classes([("V1", 1), ("V1", 2), ("V2", 1)],
    ...                [(("V1", 1), ("V2", 1)), (("V1", 2), ("V2", 1))], ["V1", "V2"])
    {('V1', 1): 'persistent', ('V1', 2): 'persistent', ('V2', 1): 'merged'}
    """
    g = nx.DiGraph()
    g.add_nodes_from(nodes)
    g.add_edges_from(edges)
    first, last = timepoints[0], timepoints[-1]
    single = len(timepoints) == 1
    out = {}
    for node in nodes:
        n_in, n_out = g.in_degree(node), g.out_degree(node)
        if single or (n_in == 0 and n_out == 0 and node[0] not in (first, last)):
            out[node] = "lone"
            continue
        if node[0] == first:
            n_in = max(n_in, 1)
        if node[0] == last:
            n_out = max(n_out, 1)
        if n_in == 0:
            out[node] = "new"
        elif n_out == 0:
            out[node] = "disappeared"
        elif n_in == 1 and n_out == 1:
            out[node] = "persistent"
        elif n_out == 1:
            out[node] = "merged"
        elif n_in == 1:
            out[node] = "split"
        else:
            out[node] = "complex"
    return out


def _tracks(g: nx.DiGraph, order: Mapping[str, int]) -> tuple[dict, pd.DataFrame]:
    groups = [
        sorted(c, key=lambda n: (order[n[0]], n[1])) for c in nx.weakly_connected_components(g)
    ]
    groups.sort(key=lambda c: (order[c[0][0]], c[0][1]))
    track_of = {}
    rows = []
    for t, members in enumerate(groups, start=1):
        sub = g.subgraph(members)
        max_in = max((d for _, d in sub.in_degree()), default=0)
        max_out = max((d for _, d in sub.out_degree()), default=0)
        if len(members) == 1:
            kind = "single"
        elif max_in <= 1 and max_out <= 1:
            kind = "linear"
        elif max_out <= 1:
            kind = "merging"
        elif max_in <= 1:
            kind = "splitting"
        else:
            kind = "complex"
        for n in members:
            track_of[n] = t
        tps = sorted({n[0] for n in members}, key=order.get)
        rows.append(
            {
                "track_id": t,
                "track_class": kind,
                "n_lesions": len(members),
                "n_visits": len(tps),
                "first_timepoint": tps[0],
                "last_timepoint": tps[-1],
            }
        )
    return track_of, pd.DataFrame(
        rows,
        columns=[
            "track_id",
            "track_class",
            "n_lesions",
            "n_visits",
            "first_timepoint",
            "last_timepoint",
        ],
    )
