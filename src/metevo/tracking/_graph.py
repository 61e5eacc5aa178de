"""The lesion-level longitudinal graph of one patient (:class:`LesionGraph`).

Every lesion at every visit is a node ``(timepoint, lesion_id)``; an edge joins a lesion to the
lesion(s) it became at a later visit (matching: :mod:`metevo.tracking._match`). Each node carries
its change class and each weakly connected group of nodes is a *track* (``track_id`` 1, 2, ... in
order of first appearance), classed ``single``, ``linear``, ``merging``, ``splitting`` or
``complex`` (:mod:`metevo.tracking._changes`). Built by :func:`~metevo.tracking.lesion_graph`
(:mod:`metevo.tracking._build`); drawn by :func:`metevo.plotting.graph.plot_lesion_graph`.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import networkx as nx
import pandas as pd
import SimpleITK as sitk

from metevo.columns import LesionEdges as E
from metevo.columns import Lesions as L
from metevo.columns import Registrations as R
from metevo.tracking._changes import CHANGES, _tracks, change_classes, edge_pairs

if TYPE_CHECKING:  # pragma: no cover
    pass

__all__ = ["LesionGraph"]

NODE_KEYS = (L.PATIENT_ID, L.TIMEPOINT, L.DATE, L.DAYS, L.LESION_ID, L.TRACK_ID, L.CHANGE)
REGISTRATION_COLUMNS = (R.PATIENT_ID, R.TIMEPOINT_FROM, R.TIMEPOINT_TO) + (
    R.DRIVER,
    R.TRANSFORM,
    R.METRIC,
    R.METRIC_VALUE,
    R.LIVER_DICE_BEFORE,
    R.LIVER_DICE_AFTER,
    R.ITERATIONS,
    R.TRANSLATION_MM,
    R.ROTATION_DEG,
    R.QC_PASS,
    R.FALLBACK,
    R.NOTE,
    *R.AFFINE,
    *R.AFFINE_T,
)


# --------------------------------------------------------------------------------------------
# the graph object
# --------------------------------------------------------------------------------------------
class LesionGraph:
    """One patient's lesion graph: lesions per visit, matches between visits, changes, tracks.

    Build it with :func:`lesion_graph` (from a :class:`~metevo.cohort.Patient`) or
    :func:`build_lesion_graph` (from images in memory).

    Attributes
    ----------
    patient_id : str
    timepoints : list of str
        Visits in order.
    graph : networkx.DiGraph
        Nodes ``(timepoint, lesion_id)`` with the lesion's measurements as attributes; edges with
        ``overlap``, ``distance_mm``, ``skip``, ``dilation_voxels``.
    nodes : pandas.DataFrame
        The ``lesions`` table: one row per lesion per visit (keys, ``track_id``, ``change``,
        measurements).
    edges : pandas.DataFrame
        The ``lesion_edges`` table.
    registrations : pandas.DataFrame
        The ``registrations`` table (one row per consecutive pair of visits).
    instances : dict
        ``{timepoint: SimpleITK.Image}`` UInt32 lesion labels (label = ``lesion_id``).
    transforms_to_baseline : dict
        ``{timepoint: SimpleITK.Transform}`` mapping each visit's points to the first visit's.
    pair_transforms : list
        The registration transforms of consecutive visits (``[T_1->0, T_2->1, ...]``, each
        mapping the later visit's points to the earlier's); set by :func:`build_lesion_graph`.
    scan_flags : pandas.DataFrame
        Per visit: ``registration_ok``, ``liver_in_fov``, ``mask_empty``; set by
        :func:`build_lesion_graph`.
    timings : dict
        Wall-clock seconds spent per step (``label``, ``measure``, ``register``, ``match``).
    cpu_timings : dict
        CPU seconds of this process per step (all threads); set by :func:`build_lesion_graph`.
    """

    def __init__(
        self,
        nodes: pd.DataFrame,
        edges: pd.DataFrame,
        *,
        patient_id: str,
        timepoints: Sequence[str],
        registrations: pd.DataFrame | None = None,
        instances: Mapping[str, sitk.Image] | None = None,
        transforms_to_baseline: Mapping[str, sitk.Transform] | None = None,
        timings: Mapping[str, float] | None = None,
    ) -> None:
        self.patient_id = patient_id
        self.timepoints = list(timepoints)
        self.instances = dict(instances or {})
        self.transforms_to_baseline = dict(transforms_to_baseline or {})
        self.timings = dict(timings or {})
        self.pair_transforms: list[sitk.Transform] = []
        self.cpu_timings: dict[str, float] = {}
        self.scan_flags = pd.DataFrame()
        self.registrations = (
            registrations
            if registrations is not None
            else pd.DataFrame(columns=list(REGISTRATION_COLUMNS))
        )
        order = {tp: i for i, tp in enumerate(self.timepoints)}
        keys = list(zip(nodes[L.TIMEPOINT], nodes[L.LESION_ID].astype(int), strict=True))
        pairs = edge_pairs(edges)
        g = nx.DiGraph()
        for key, rec in zip(keys, nodes.to_dict("records"), strict=True):
            g.add_node(key, **rec)
        for pair, rec in zip(pairs, edges.to_dict("records"), strict=True):
            g.add_edge(
                *pair,
                **{
                    k: rec[k]
                    for k in (E.OVERLAP, E.DISTANCE_MM, E.SKIP, E.DILATION_VOXELS)
                    if k in rec
                },
            )
        classes = change_classes(keys, pairs, self.timepoints) if self.timepoints else {}
        track_of, self.tracks = _tracks(g, order)
        self.tracks.insert(0, L.PATIENT_ID, patient_id)
        for key in keys:
            g.nodes[key][L.CHANGE] = classes[key]
            g.nodes[key][L.TRACK_ID] = track_of[key]
        self.graph = g
        nodes = nodes.copy()
        nodes[L.CHANGE] = [classes[k] for k in keys]
        nodes[L.TRACK_ID] = [track_of[k] for k in keys]
        nodes["_order"] = nodes[L.TIMEPOINT].map(order)
        nodes = nodes.sort_values(["_order", L.LESION_ID], ignore_index=True).drop(columns="_order")
        first = [c for c in NODE_KEYS if c in nodes.columns]
        self.nodes = nodes[first + [c for c in nodes.columns if c not in first]]
        self.edges = edges.reset_index(drop=True)

    # ---------------------------------------------------------------- derived tables
    @property
    def changes(self) -> pd.DataFrame:
        """Per visit: number of lesions and of each change class (one row per timepoint)."""
        counts = (
            self.nodes.groupby([L.TIMEPOINT, L.CHANGE]).size().unstack(fill_value=0)
            if len(self.nodes)
            else pd.DataFrame()
        )
        counts = counts.reindex(index=self.timepoints, columns=list(CHANGES), fill_value=0)
        counts.columns = [f"n_{c}" for c in counts.columns]
        counts.insert(0, "n_lesions", counts.sum(axis=1))
        counts.insert(0, L.PATIENT_ID, self.patient_id)
        out = counts.rename_axis(L.TIMEPOINT).reset_index()
        return out[
            [L.PATIENT_ID, L.TIMEPOINT]
            + [c for c in out.columns if c not in (L.PATIENT_ID, L.TIMEPOINT)]
        ]

    def __repr__(self) -> str:
        n_edges = len(self.edges)
        n_skip = int(self.edges[E.SKIP].sum()) if n_edges else 0
        return (
            f"LesionGraph(patient_id={self.patient_id!r}, visits={len(self.timepoints)}, "
            f"lesions={len(self.nodes)}, edges={n_edges} ({n_skip} skip), tracks={len(self.tracks)})"
        )

    def _repr_html_(self) -> str:
        ch = self.changes.drop(columns=[L.PATIENT_ID]).to_html(index=False)
        tr = self.tracks["track_class"].value_counts().to_dict()
        reg = ""
        if len(self.registrations):
            fails = int((~self.registrations[R.QC_PASS].astype(bool)).sum())
            reg = f"; registrations: {len(self.registrations)} ({fails} failed QC)"
        return (
            f"<div><b>LesionGraph</b> {html.escape(self.patient_id)}: {len(self.timepoints)} visits, "
            f"{len(self.nodes)} lesions, {len(self.edges)} edges, {len(self.tracks)} tracks "
            f"({html.escape(', '.join(f'{v} {k}' for k, v in tr.items()))}){html.escape(reg)}{ch}</div>"
        )
