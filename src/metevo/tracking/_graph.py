"""The lesion-level longitudinal graph of one patient.

Every lesion at every visit is a node ``(timepoint, lesion_id)``; an edge joins a lesion to the
lesion(s) it became at a later visit. Lesions of consecutive visits are matched after mapping the
earlier visit's lesion labels into the later visit's space (:mod:`metevo.tracking`), by
iterative dilation with an overlap criterion in the spirit of Di Veroli et al. (MICCAI 2023;
Medical Image Analysis 2024): round ``k`` (``k = 0, 1, ..., max_dilation``) dilates every lesion
still unmatched by ``k`` voxel steps (a ball of radius ``k`` times the smallest voxel spacing, so
that thick slices are not over-dilated along z), and every pair whose overlap -- intersection
over the smaller of the two dilated lesions -- reaches ``min_overlap`` becomes an edge in that
round; matched lesions leave the pool. Several pairs crossing the threshold in the same round are
how merges and splits appear. Published liver defaults: 1-voxel steps, 10 % overlap, 7 rounds.
A lesion left without a successor and a lesion left without a predecessor up to ``max_skip + 1``
visits later (any later visit by default) are then matched the same way through the chained
transforms, shortest gaps first (*skip* edges: a lesion missed at one or more visits -- below
visibility at its nadir, say -- and seen again).

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

Examples
--------
>>> import metevo
>>> cohort = metevo.open_cohort(metevo.datasets.load_demo_cohort())  # doctest: +SKIP
>>> graph = metevo.lesion_graph(cohort.patients[0])                   # doctest: +SKIP
>>> graph.changes                                                     # doctest: +SKIP
"""

from __future__ import annotations

import html
import time
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import networkx as nx
import numpy as np
import pandas as pd
import SimpleITK as sitk
from scipy import ndimage

from metevo.cohort._cohort import ScanReads
from metevo.columns import LesionEdges as E
from metevo.columns import Lesions as L
from metevo.columns import Registrations as R
from metevo.columns import Scans as S
from metevo.exceptions import GeometryError, RegistrationWarning
from metevo.tracking._lesions import label_lesions, liver_in_fov, measure_lesions
from metevo.tracking._registration import Registration, compose, register_pair

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

    from metevo.cohort._cohort import Patient

__all__ = [
    "CHANGE_COLORS",
    "LesionGraph",
    "build_lesion_graph",
    "change_classes",
    "graph_stage",
    "lesion_graph",
    "match_lesions",
    "map_to_reference",
    "pooled_scores",
    "score_graph",
    "score_synthetic",
]

CHANGES = L.CHANGES
TRACK_CLASSES = ("single", "linear", "merging", "splitting", "complex")
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

EDGE_COLUMNS = (
    E.PATIENT_ID,
    E.TIMEPOINT_FROM,
    E.LESION_ID_FROM,
    E.TIMEPOINT_TO,
    E.LESION_ID_TO,
    E.OVERLAP,
    E.DISTANCE_MM,
    E.SKIP,
    E.DILATION_VOXELS,
)
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
)


# --------------------------------------------------------------------------------------------
# matching
# --------------------------------------------------------------------------------------------
def match_lesions(
    earlier: sitk.Image,
    later: sitk.Image,
    transform: sitk.Transform | None = None,
    *,
    affine: sitk.Transform | None = None,
    max_dilation: int = 7,
    min_overlap: float = 0.10,
    earlier_ids: Sequence[int] | None = None,
    later_ids: Sequence[int] | None = None,
) -> pd.DataFrame:
    """Match the lesions of two visits by iterative dilation (see the module docstring).

    Parameters
    ----------
    earlier, later
        UInt32 lesion instance images of the earlier and the later visit (each on its own grid).
    transform
        Maps later-visit physical points to earlier-visit points (as from
        :func:`metevo.tracking.register_pair` with the later visit fixed); None = identity.
    affine
        An invertible approximation of ``transform`` used to find where the earlier lesions land
        (defaults to ``transform``; pass ``Registration.affine`` for a B-spline transform).
    max_dilation
        Last dilation round, in voxels (default 7; round 0 has no dilation).
    min_overlap
        Overlap (intersection over the smaller dilated lesion) that makes an edge (default 0.10).
    earlier_ids, later_ids
        Restrict matching to these lesions (used for skip edges); None = all.

    Returns
    -------
    pandas.DataFrame
        One row per edge: ``lesion_id_from`` (earlier), ``lesion_id_to`` (later), ``overlap``,
        ``distance_mm`` (centroid distance after mapping, in the later visit's frame),
        ``dilation_voxels`` (the round that made the edge).

    Examples
    --------
    >>> import numpy as np, SimpleITK as sitk
    >>> a = np.zeros((10, 30, 30), np.uint32); a[3:7, 5:12, 5:12] = 1; a[3:7, 18:25, 18:25] = 2
    >>> b = np.zeros_like(a); b[3:7, 6:13, 6:13] = 5            # lesion 2 vanished
    >>> match_lesions(sitk.GetImageFromArray(a), sitk.GetImageFromArray(b))[
    ...     ["lesion_id_from", "lesion_id_to", "dilation_voxels"]].values.tolist()
    [[1, 5, 0]]
    """
    if max_dilation < 0 or not 0 < min_overlap <= 1:
        raise ValueError(
            f"max_dilation must be >= 0 and min_overlap in (0, 1]; got {max_dilation!r} and "
            f"{min_overlap!r}."
        )
    transform = transform if transform is not None else sitk.TranslationTransform(3)
    affine = affine if affine is not None else transform
    later_arr = sitk.GetArrayViewFromImage(later)
    earlier_arr = sitk.GetArrayViewFromImage(earlier)
    later_boxes = _label_boxes(later_arr, later_ids)
    earlier_boxes = _label_boxes(earlier_arr, earlier_ids)
    if not later_boxes or not earlier_boxes:
        return _empty_matches()

    # Region of the later grid where either visit's lesions can lie, plus the dilation margin.
    inverse = affine.GetInverse()
    shape = np.array(later_arr.shape)
    steps = np.array(later.GetSpacing()[::-1]) / min(later.GetSpacing())  # voxel size in steps
    reach = np.ceil(max_dilation / steps).astype(int)  # voxels reached by the last round, per axis
    pad = reach + 2
    boxes = [
        np.array([[s.start for s in b], [s.stop - 1 for s in b]]) for b in later_boxes.values()
    ]
    for box in earlier_boxes.values():
        corners = _box_corners(box)
        phys = [earlier.TransformContinuousIndexToPhysicalPoint(c[::-1].tolist()) for c in corners]
        idx = np.array(
            [
                later.TransformPhysicalPointToContinuousIndex(inverse.TransformPoint(p))[::-1]
                for p in phys
            ]
        )
        boxes.append(np.array([np.floor(idx.min(axis=0)), np.ceil(idx.max(axis=0))]))
    allb = np.array(boxes)
    lo = np.clip(allb[:, 0].min(axis=0).astype(int) - pad, 0, shape)
    hi = np.clip(allb[:, 1].max(axis=0).astype(int) + pad + 1, 0, shape)
    if np.any(hi <= lo):
        return _empty_matches()
    roi = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))

    reference = sitk.Image([int(v) for v in (hi - lo)[::-1]], sitk.sitkUInt32)
    reference.SetSpacing(later.GetSpacing())
    reference.SetDirection(later.GetDirection())
    reference.SetOrigin(later.TransformIndexToPhysicalPoint([int(v) for v in lo[::-1]]))
    moved = sitk.Resample(
        sitk.Cast(earlier, sitk.sitkUInt32),
        reference,
        transform,
        sitk.sitkNearestNeighbor,
        0,
        sitk.sitkUInt32,
    )
    m_arr = sitk.GetArrayFromImage(moved)
    f_arr = np.asarray(later_arr[roi])
    if earlier_ids is not None:
        m_arr = np.where(np.isin(m_arr, list(earlier_ids)), m_arr, 0)
    if later_ids is not None:
        f_arr = np.where(np.isin(f_arr, list(later_ids)), f_arr, 0)

    m_les = _dilation_maps(m_arr, max_dilation, steps, reach)
    f_les = _dilation_maps(f_arr, max_dilation, steps, reach)
    if not m_les or not f_les:
        return _empty_matches()

    # Overlap of every candidate pair at every round, from the two chessboard distance maps.
    overlaps: dict[tuple[int, int], np.ndarray] = {}
    for a, (abox, adist, asize) in m_les.items():
        for b, (bbox, bdist, bsize) in f_les.items():
            inter_box = [
                (max(x.start, y.start), min(x.stop, y.stop))
                for x, y in zip(abox, bbox, strict=True)
            ]
            if any(s >= e for s, e in inter_box):
                continue
            da = adist[
                tuple(
                    slice(s - x.start, e - x.start)
                    for (s, e), x in zip(inter_box, abox, strict=True)
                )
            ]
            db = bdist[
                tuple(
                    slice(s - y.start, e - y.start)
                    for (s, e), y in zip(inter_box, bbox, strict=True)
                )
            ]
            both = np.minimum(np.maximum(da, db), max_dilation + 1).ravel()
            inter = np.cumsum(np.bincount(both, minlength=max_dilation + 2))[: max_dilation + 1]
            if inter[-1] == 0:
                continue
            overlaps[(a, b)] = inter / np.minimum(asize, bsize)

    matched_a: set[int] = set()
    matched_b: set[int] = set()
    rows = []
    for k in range(max_dilation + 1):
        new = [
            (a, b, float(ov[k]))
            for (a, b), ov in overlaps.items()
            if ov[k] >= min_overlap and a not in matched_a and b not in matched_b
        ]
        for a, b, ov in new:
            rows.append((a, b, ov, k))
        matched_a.update(a for a, _, _ in new)
        matched_b.update(b for _, b, _ in new)
    if not rows:
        return _empty_matches()

    centroid_m = _centroids(m_arr, reference)
    centroid_f = _centroids(f_arr, reference)
    out = pd.DataFrame(
        rows, columns=[E.LESION_ID_FROM, E.LESION_ID_TO, E.OVERLAP, E.DILATION_VOXELS]
    )
    out[E.DISTANCE_MM] = [
        float(np.linalg.norm(centroid_m[a] - centroid_f[b]))
        for a, b in zip(out[E.LESION_ID_FROM], out[E.LESION_ID_TO], strict=True)
    ]
    out = out.sort_values([E.LESION_ID_FROM, E.LESION_ID_TO], ignore_index=True)
    return out[[E.LESION_ID_FROM, E.LESION_ID_TO, E.OVERLAP, E.DISTANCE_MM, E.DILATION_VOXELS]]


def _empty_matches() -> pd.DataFrame:
    return pd.DataFrame(
        {
            E.LESION_ID_FROM: pd.Series(dtype="int64"),
            E.LESION_ID_TO: pd.Series(dtype="int64"),
            E.OVERLAP: pd.Series(dtype=float),
            E.DISTANCE_MM: pd.Series(dtype=float),
            E.DILATION_VOXELS: pd.Series(dtype="int64"),
        }
    )


def _label_boxes(arr: np.ndarray, ids: Sequence[int] | None) -> dict[int, tuple[slice, ...]]:
    from metevo.tracking._lesions import _nonzero_box

    box = _nonzero_box(arr)
    if box is None:
        return {}
    crop = np.asarray(arr[box])
    labels = np.unique(crop)
    labels = labels[labels != 0]
    if ids is not None:
        labels = labels[np.isin(labels, list(ids))]
    if labels.size == 0:
        return {}
    dense = np.where(np.isin(crop, labels), np.searchsorted(labels, crop) + 1, 0)
    out = {}
    for lab, sl in zip(labels, ndimage.find_objects(dense), strict=True):
        out[int(lab)] = tuple(
            slice(s.start + b.start, s.stop + b.start) for s, b in zip(sl, box, strict=True)
        )
    return out


def _box_corners(box: tuple[slice, ...]) -> np.ndarray:
    lo = np.array([s.start - 0.5 for s in box])
    hi = np.array([s.stop - 0.5 for s in box])
    return np.array([[(hi if (i >> d) & 1 else lo)[d] for d in range(3)] for i in range(8)])


def _dilation_maps(
    arr: np.ndarray, max_dilation: int, steps: np.ndarray, reach: np.ndarray
) -> dict[int, tuple]:
    """Per lesion: (box, dilation round reaching each voxel of the box, lesion size per round).

    Round ``k`` reaches the voxels within ``k`` steps of the lesion, a step being the smallest
    voxel spacing (a physical ball: thick slices are not over-dilated along z).
    """
    out = {}
    for lab, box in _label_boxes(arr, None).items():
        big = tuple(
            slice(max(s.start - r, 0), min(s.stop + r, n))
            for s, r, n in zip(box, reach, arr.shape, strict=True)
        )
        mask = arr[big] == lab
        if max_dilation:
            edt = ndimage.distance_transform_edt(~mask, sampling=steps)
            dist = np.ceil(edt - 1e-6).astype(np.int32)
        else:
            dist = np.where(mask, 0, 1).astype(np.int32)
        sizes = np.cumsum(
            np.bincount(np.minimum(dist, max_dilation + 1).ravel(), minlength=max_dilation + 2)
        )
        out[lab] = (big, dist, sizes[: max_dilation + 1].astype(float))
    return out


def _centroids(arr: np.ndarray, reference: sitk.Image) -> dict[int, np.ndarray]:
    labels = np.unique(arr)
    labels = labels[labels != 0]
    if labels.size == 0:
        return {}
    com = ndimage.center_of_mass(np.ones_like(arr, dtype=np.uint8), arr, labels)
    return {
        int(lab): np.array(
            reference.TransformContinuousIndexToPhysicalPoint(list(map(float, c[::-1])))
        )
        for lab, c in zip(labels, com, strict=True)
    }


# --------------------------------------------------------------------------------------------
# change classes
# --------------------------------------------------------------------------------------------
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
        pairs = [
            ((a, int(b)), (c, int(d)))
            for a, b, c, d in zip(
                edges[E.TIMEPOINT_FROM],
                edges[E.LESION_ID_FROM],
                edges[E.TIMEPOINT_TO],
                edges[E.LESION_ID_TO],
                strict=True,
            )
        ]
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

    # ---------------------------------------------------------------- drawing
    def plot(self, ax: Axes | None = None, *, by: str = "date") -> Axes:
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
            _, ax = plt.subplots(figsize=(8, 0.45 * max(len(self.tracks), 3) + 1.5))
        nodes = self.nodes
        order = {tp: i for i, tp in enumerate(self.timepoints)}
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
        for u, v, data in self.graph.edges(data=True):
            (x0, y0), (x1, y1) = pos[u], pos[v]
            ax.plot(
                [x0, x1],
                [y0, y1],
                color=CHANGE_COLORS[self.graph.nodes[v][L.CHANGE]],
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
        if len(self.tracks):
            ax.set_yticks(self.tracks["track_id"].tolist())
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
        ax.set_title(f"Lesion graph, patient {self.patient_id}")
        return ax


# --------------------------------------------------------------------------------------------
# building
# --------------------------------------------------------------------------------------------
def build_lesion_graph(
    lesion_masks: Sequence[sitk.Image],
    images: Sequence[sitk.Image | None] | None = None,
    *,
    liver_masks: Sequence[sitk.Image | None] | None = None,
    timepoints: Sequence[str] | None = None,
    dates: Sequence[Any] | None = None,
    days: Sequence[int] | None = None,
    patient_id: str = "",
    lesion_mask_kind: str | None = None,
    connectivity: int = 26,
    min_voxels: int = 1,
    min_diameter_mm: float = 3.0,
    liver_margin_mm: float | None = 10.0,
    transform: str = "affine",
    deformable: bool = False,
    resolution_mm: float = 6.0,
    min_dice: float = 0.80,
    max_dilation: int = 7,
    min_overlap: float = 0.10,
    max_skip: int | None = None,
) -> LesionGraph:
    """Build a lesion graph from images in memory (one entry per visit, in visit order).

    Parameters
    ----------
    lesion_masks
        Lesion masks (binary or instance-labelled), one per visit.
    images
        The CTs (HU), on the masks' grids; needed for ``mean_hu``/``std_hu`` and to register
        visits without liver masks. None entries (or None) skip both.
    liver_masks
        Liver masks on the same grids (or None entries); they drive registration and restrict
        lesions to the liver plus ``liver_margin_mm``.
    timepoints, dates, days
        Visit labels (default ``V1``, ``V2``, ...), dates and days since the first visit.
    patient_id
        Key written in every table.
    lesion_mask_kind
        ``"binary"``, ``"instances"`` or None (auto); see :func:`metevo.tracking.label_lesions`.
    connectivity, min_voxels, min_diameter_mm, liver_margin_mm
        Lesion labelling (see :func:`metevo.tracking.label_lesions`).
    transform, deformable, resolution_mm, min_dice
        Registration (see :func:`metevo.tracking.register_pair`).
    max_dilation, min_overlap
        Matching (see :func:`match_lesions`; defaults 7 rounds, 10 %).
    max_skip
        Largest number of consecutive visits a lesion may be missed at and still be bridged by a
        skip edge (default None: any number; 0 = no skip edges).

    Returns
    -------
    LesionGraph

    Warns
    -----
    RegistrationWarning
        Once per patient when visits lack liver masks (registered on image intensities), and
        once per registration that failed QC (with the fallback used).
    """
    n = len(lesion_masks)
    if n == 0:
        raise ValueError(f"patient {patient_id!r}: no visits to build a lesion graph from.")
    images = list(images) if images is not None else [None] * n
    livers = list(liver_masks) if liver_masks is not None else [None] * n
    timepoints = list(timepoints) if timepoints is not None else [f"V{i + 1}" for i in range(n)]
    dates = list(dates) if dates is not None else [pd.NaT] * n
    days = list(days) if days is not None else [pd.NA] * n
    for name, seq in (
        ("images", images),
        ("liver_masks", livers),
        ("timepoints", timepoints),
        ("dates", dates),
        ("days", days),
    ):
        if len(seq) != n:
            raise ValueError(
                f"patient {patient_id!r}: {name} has {len(seq)} entries but lesion_masks has {n}; "
                "pass one entry per visit (None where absent)."
            )
    if len(set(timepoints)) != n:
        raise ValueError(f"patient {patient_id!r}: timepoints must be unique; got {timepoints}.")
    if max_skip is not None and max_skip < 0:
        raise ValueError(f"max_skip must be >= 0; got {max_skip!r}.")
    timings = {"label": 0.0, "measure": 0.0, "register": 0.0, "match": 0.0}
    cpu = dict.fromkeys(timings, 0.0)

    instances: dict[str, sitk.Image] = {}
    tables = []
    for i, tp in enumerate(timepoints):
        ctx = f"patient {patient_id} timepoint {tp}" if patient_id else f"timepoint {tp}"
        if images[i] is not None:
            _check_grid(images[i], lesion_masks[i], f"{ctx}: lesion mask vs image")
        t0, c0 = time.perf_counter(), time.process_time()
        inst = label_lesions(
            lesion_masks[i],
            livers[i],
            kind=lesion_mask_kind,
            connectivity=connectivity,
            min_voxels=min_voxels,
            min_diameter_mm=min_diameter_mm,
            liver_margin_mm=liver_margin_mm,
            context=ctx,
        )
        t1, c1 = time.perf_counter(), time.process_time()
        table = measure_lesions(images[i], inst, context=ctx)
        timings["label"] += t1 - t0
        timings["measure"] += time.perf_counter() - t1
        cpu["label"] += c1 - c0
        cpu["measure"] += time.process_time() - c1
        table.insert(0, L.DAYS, days[i])
        table.insert(0, L.DATE, dates[i])
        table.insert(0, L.TIMEPOINT, tp)
        table.insert(0, L.PATIENT_ID, patient_id)
        tables.append(table)
        instances[tp] = inst
    filled = [t for t in tables if len(t)]
    nodes = pd.concat(filled, ignore_index=True) if filled else tables[0]

    # Registration of each visit to the previous one.
    t0, c0 = time.perf_counter(), time.process_time()
    regs: list[Registration] = []
    missing = [tp for tp, lv in zip(timepoints, livers, strict=True) if lv is None]
    if n > 1 and missing:
        warnings.warn(
            f"patient {patient_id}: no liver mask at {', '.join(missing)}; visits involving them "
            "are registered on image intensities, which is slower and less robust. Add liver "
            "masks (liver_mask column) to drive registration.",
            RegistrationWarning,
            stacklevel=2,
        )
    for i in range(1, n):
        fixed_img = images[i] if images[i] is not None else lesion_masks[i]
        moving_img = images[i - 1] if images[i - 1] is not None else lesion_masks[i - 1]
        reg = register_pair(
            fixed_img,
            moving_img,
            fixed_liver=livers[i],
            moving_liver=livers[i - 1],
            transform=transform,
            deformable=deformable,
            resolution_mm=resolution_mm,
            min_dice=min_dice,
            context=f"patient {patient_id} {timepoints[i - 1]}->{timepoints[i]}",
        )
        if not reg.qc_pass:
            warnings.warn(reg.note, RegistrationWarning, stacklevel=2)
        regs.append(reg)
    timings["register"] = time.perf_counter() - t0
    cpu["register"] = time.process_time() - c0

    # Matching: consecutive visits, then skip edges.
    t0, c0 = time.perf_counter(), time.process_time()
    edge_rows = []
    for i in range(1, n):
        m = match_lesions(
            instances[timepoints[i - 1]],
            instances[timepoints[i]],
            regs[i - 1].transform,
            affine=regs[i - 1].affine,
            max_dilation=max_dilation,
            min_overlap=min_overlap,
        )
        edge_rows.append(_edge_frame(m, patient_id, timepoints[i - 1], timepoints[i], skip=False))
    last_gap = n - 1 if max_skip is None else min(max_skip + 1, n - 1)
    for gap in range(2, last_gap + 1):
        for i in range(0, n - gap):
            j = i + gap
            current = pd.concat(edge_rows, ignore_index=True) if edge_rows else None
            from_ids = _without(nodes, current, timepoints[i], outgoing=True)
            to_ids = _without(nodes, current, timepoints[j], outgoing=False)
            if not from_ids or not to_ids:
                continue
            chain = [regs[k - 1].transform for k in range(i + 1, j + 1)]
            bulk = [regs[k - 1].affine for k in range(i + 1, j + 1)]
            m = match_lesions(
                instances[timepoints[i]],
                instances[timepoints[j]],
                compose(chain),
                affine=compose(bulk),
                max_dilation=max_dilation,
                min_overlap=min_overlap,
                earlier_ids=from_ids,
                later_ids=to_ids,
            )
            edge_rows.append(_edge_frame(m, patient_id, timepoints[i], timepoints[j], skip=True))
    edges = (
        pd.concat(edge_rows, ignore_index=True)
        if edge_rows
        else _edge_frame(_empty_matches(), patient_id, "", "", skip=False)
    )
    timings["match"] = time.perf_counter() - t0
    cpu["match"] = time.process_time() - c0

    reg_table = pd.DataFrame(
        [
            {
                R.PATIENT_ID: patient_id,
                R.TIMEPOINT_FROM: timepoints[i - 1],
                R.TIMEPOINT_TO: timepoints[i],
                **regs[i - 1].to_row(),
            }
            for i in range(1, n)
        ],
        columns=list(REGISTRATION_COLUMNS),
    )
    to_base = {timepoints[0]: sitk.TranslationTransform(3)}
    for i in range(1, n):
        to_base[timepoints[i]] = compose([r.transform for r in regs[:i]])
    graph = LesionGraph(
        nodes,
        edges,
        patient_id=patient_id,
        timepoints=timepoints,
        registrations=reg_table,
        instances=instances,
        transforms_to_baseline=to_base,
        timings=timings,
    )
    graph.pair_transforms = [r.transform for r in regs]
    graph.cpu_timings = cpu
    graph.scan_flags = pd.DataFrame(
        {
            S.TIMEPOINT: timepoints,
            S.REGISTRATION_OK: pd.array([pd.NA] + [bool(r.qc_pass) for r in regs], dtype="boolean"),
            S.LIVER_IN_FOV: pd.array([liver_in_fov(lv) for lv in livers], dtype="boolean"),
            S.MASK_EMPTY: [len(t) == 0 for t in tables],
        }
    )
    return graph


def _check_grid(a: sitk.Image, b: sitk.Image, what: str) -> None:
    from metevo.tracking._lesions import _check_grid as check

    check(a, b, what)


def _edge_frame(
    m: pd.DataFrame, patient_id: str, tp_from: str, tp_to: str, *, skip: bool
) -> pd.DataFrame:
    out = pd.DataFrame(
        {
            E.PATIENT_ID: pd.Series([patient_id] * len(m), dtype=object),
            E.TIMEPOINT_FROM: pd.Series([tp_from] * len(m), dtype=object),
            E.LESION_ID_FROM: m[E.LESION_ID_FROM].astype("int64").to_numpy(),
            E.TIMEPOINT_TO: pd.Series([tp_to] * len(m), dtype=object),
            E.LESION_ID_TO: m[E.LESION_ID_TO].astype("int64").to_numpy(),
            E.OVERLAP: m[E.OVERLAP].astype(float).to_numpy(),
            E.DISTANCE_MM: m[E.DISTANCE_MM].astype(float).to_numpy(),
            E.SKIP: np.full(len(m), skip, dtype=bool),
            E.DILATION_VOXELS: m[E.DILATION_VOXELS].astype("int64").to_numpy(),
        }
    )
    return out[list(EDGE_COLUMNS)]


def _without(
    nodes: pd.DataFrame, edges: pd.DataFrame | None, tp: str, *, outgoing: bool
) -> list[int]:
    ids = set(nodes.loc[nodes[L.TIMEPOINT] == tp, L.LESION_ID].astype(int))
    if edges is not None and len(edges):
        if outgoing:
            ids -= set(edges.loc[edges[E.TIMEPOINT_FROM] == tp, E.LESION_ID_FROM].astype(int))
        else:
            ids -= set(edges.loc[edges[E.TIMEPOINT_TO] == tp, E.LESION_ID_TO].astype(int))
    return sorted(ids)


# --------------------------------------------------------------------------------------------
# patient level and pipeline stage
# --------------------------------------------------------------------------------------------
def lesion_graph(
    patient: Patient, *, reads: ScanReads | None = None, **options: Any
) -> LesionGraph:
    """Build the lesion graph of one patient (reads every analysed scan).

    Parameters
    ----------
    patient
        A :class:`metevo.cohort.Patient`.
    reads
        Decoded images and masks shared with other stages (the pipeline passes its own); a new
        one when ``None``.
    **options
        Keyword options of :func:`build_lesion_graph` (``min_voxels``, ``transform``,
        ``max_dilation``, ``max_skip``, ...).

    Returns
    -------
    LesionGraph
        Also holds ``read_seconds``, the time spent decoding images and masks.

    Examples
    --------
    >>> import metevo
    >>> cohort = metevo.open_cohort(metevo.datasets.load_demo_cohort())  # doctest: +SKIP
    >>> metevo.lesion_graph(cohort.patients[0]).plot()                    # doctest: +SKIP
    """
    t0 = time.perf_counter()
    scans = list(patient.scans)
    if not scans:
        raise ValueError(
            f"patient {patient.patient_id}: no analysed scans; nothing to build a graph from."
        )
    reads = reads if reads is not None else ScanReads()
    masks, images, livers = [], [], []
    kinds = set()
    for scan in scans:
        image = reads.image(scan)
        mask = reads.lesion_mask(scan)
        liver = reads.liver_mask(scan)
        kinds.add(getattr(scan, "lesion_mask_kind", None))
        images.append(image)
        masks.append(mask)
        livers.append(liver)
    read = time.perf_counter() - t0
    kind = "instances" if kinds == {"instances"} else ("binary" if kinds <= {"binary"} else None)
    options.setdefault("lesion_mask_kind", kind)
    graph = build_lesion_graph(
        masks,
        images,
        liver_masks=livers,
        timepoints=[s.timepoint for s in scans],
        dates=[s.date for s in scans],
        days=[s.days for s in scans],
        patient_id=patient.patient_id,
        **options,
    )
    graph.read_seconds = read
    return graph


def graph_stage(patient: Patient, result: Any, **options: Any) -> None:
    """Pipeline stage ``lesion_graph``: lesions, lesion_edges, registrations, evaluability.

    Fills ``result.tables["lesions"]``, ``["lesion_edges"]``, ``["registrations"]``, adds
    ``registration_ok`` (and ``liver_in_fov``/``mask_empty`` when the scans stage did not) to
    ``result.tables["scans"]``, and hands on ``result.objects["instances"]`` and
    ``result.objects["graph"]``.
    """
    graph = lesion_graph(patient, reads=ScanReads.of(result), **options)
    result.tables["lesions"] = graph.nodes
    result.tables["lesion_edges"] = graph.edges
    result.tables["registrations"] = graph.registrations
    result.objects["instances"] = graph.instances
    result.objects["graph"] = graph
    flags = graph.scan_flags
    scans = result.tables.get("scans")
    if scans is None:
        result.tables["scans"] = flags.assign(**{S.PATIENT_ID: patient.patient_id})[
            [S.PATIENT_ID] + list(flags.columns)
        ]
        return
    scans = scans.copy()
    by_tp = flags.set_index(S.TIMEPOINT)
    for col in (S.REGISTRATION_OK, S.LIVER_IN_FOV, S.MASK_EMPTY):
        if col not in scans.columns or col == S.REGISTRATION_OK:
            values = scans[S.TIMEPOINT].map(by_tp[col])
            scans[col] = values.astype("boolean")
    result.tables["scans"] = scans


# --------------------------------------------------------------------------------------------
# accuracy against a reference graph
# --------------------------------------------------------------------------------------------
def map_to_reference(
    instances: Mapping[str, sitk.Image],
    reference: Mapping[str, sitk.Image],
    *,
    min_fraction: float = 0.5,
) -> pd.DataFrame:
    """Map predicted lesions to reference lesions of the same visit by voxel overlap.

    Each predicted ``lesion_id`` maps to the reference label holding most of its voxels, when that
    label holds at least ``min_fraction`` of them.

    Returns
    -------
    pandas.DataFrame
        ``timepoint``, ``lesion_id``, ``reference_id`` (0 when unmatched), ``fraction``.
    """
    rows = []
    for tp, pred in instances.items():
        if tp not in reference:
            raise KeyError(
                f"timepoint {tp!r} has no reference instance image; found {sorted(reference)}."
            )
        ref = reference[tp]
        if pred.GetSize() != ref.GetSize():
            raise GeometryError(
                f"timepoint {tp}: predicted lesions (size {pred.GetSize()}) and reference (size "
                f"{ref.GetSize()}) are not on the same grid; resample the reference onto the scan."
            )
        p = sitk.GetArrayViewFromImage(pred).ravel()
        r = sitk.GetArrayViewFromImage(ref).ravel()
        idx = np.flatnonzero(p)
        if idx.size == 0:
            continue
        pairs = pd.DataFrame({"p": p[idx].astype(np.int64), "r": r[idx].astype(np.int64)})
        counts = pairs.value_counts().rename("n").reset_index()
        totals = counts.groupby("p")["n"].sum()
        hit = (
            counts[counts["r"] != 0]
            .sort_values(["p", "n"], ascending=[True, False])
            .drop_duplicates("p")
        )
        hit = hit.set_index("p")
        for pid, total in totals.items():
            n_best = int(hit.loc[pid, "n"]) if pid in hit.index else 0
            frac = n_best / total
            ref_id = int(hit.loc[pid, "r"]) if pid in hit.index and frac >= min_fraction else 0
            rows.append(
                {L.TIMEPOINT: tp, L.LESION_ID: int(pid), "reference_id": ref_id, "fraction": frac}
            )
    return pd.DataFrame(rows, columns=[L.TIMEPOINT, L.LESION_ID, "reference_id", "fraction"])


def score_graph(
    edges: pd.DataFrame,
    reference_edges: pd.DataFrame,
    mapping: pd.DataFrame,
    *,
    timepoints: Sequence[str],
    reference_nodes: pd.DataFrame | None = None,
) -> dict[str, float]:
    """Edge precision/recall/F1 and change-class accuracy against a reference graph.

    Predicted edges are translated to reference lesions with ``mapping`` (from
    :func:`map_to_reference`); an edge whose end does not map, or maps to no reference edge,
    counts as a false positive. Change classes of the reference are derived from the reference
    edges with :func:`change_classes` (the same degree rules), and compared on the reference
    lesions that exactly one predicted lesion maps to.

    Parameters
    ----------
    edges
        Predicted edges (``timepoint_from``, ``lesion_id_from``, ``timepoint_to``,
        ``lesion_id_to``).
    reference_edges
        Reference edges with the same four columns, in reference ids.
    mapping
        ``timepoint``, ``lesion_id``, ``reference_id``.
    timepoints
        The visits in order.
    reference_nodes
        ``timepoint``, ``lesion_id`` of every reference lesion (default: those in the mapping
        and in the reference edges).

    Returns
    -------
    dict
        ``precision``, ``recall``, ``f1``, ``n_edges``, ``n_reference_edges``,
        ``change_accuracy``, ``n_scored_lesions``.
    """
    key = dict(
        zip(
            zip(mapping[L.TIMEPOINT], mapping[L.LESION_ID].astype(int), strict=True),
            mapping["reference_id"].astype(int),
            strict=True,
        )
    )

    def _pairs(df: pd.DataFrame) -> list[tuple[tuple[str, int], tuple[str, int]]]:
        return [
            ((a, int(b)), (c, int(d)))
            for a, b, c, d in zip(
                df[E.TIMEPOINT_FROM],
                df[E.LESION_ID_FROM],
                df[E.TIMEPOINT_TO],
                df[E.LESION_ID_TO],
                strict=True,
            )
        ]

    ref_pairs = set(_pairs(reference_edges))
    pred_mapped = set()
    n_false = 0
    for u, v in _pairs(edges):
        mu, mv = key.get(u, 0), key.get(v, 0)
        if mu and mv and ((u[0], mu), (v[0], mv)) in ref_pairs:
            pred_mapped.add(((u[0], mu), (v[0], mv)))
        else:
            n_false += 1
    tp = len(pred_mapped)
    precision = tp / (tp + n_false) if tp + n_false else 1.0
    recall = tp / len(ref_pairs) if ref_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0

    if reference_nodes is not None:
        ref_nodes = set(
            zip(reference_nodes[L.TIMEPOINT], reference_nodes[L.LESION_ID].astype(int), strict=True)
        )
    else:
        ref_nodes = {(tp_, r) for (tp_, _), r in key.items() if r}
    for u, v in ref_pairs:
        ref_nodes.update([u, v])
    ref_class = change_classes(sorted(ref_nodes), sorted(ref_pairs), timepoints)
    pred_nodes = sorted(key)
    pred_class = change_classes(pred_nodes, _pairs(edges), timepoints)
    inverse: dict[tuple[str, int], list[tuple[str, int]]] = {}
    for node, r in key.items():
        if r:
            inverse.setdefault((node[0], r), []).append(node)
    scored = [(n, inverse[n][0]) for n in ref_class if len(inverse.get(n, [])) == 1]
    correct = sum(ref_class[r] == pred_class[p] for r, p in scored)
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "n_edges": tp + n_false,
        "n_reference_edges": len(ref_pairs),
        "change_accuracy": correct / len(scored) if scored else float("nan"),
        "n_scored_lesions": len(scored),
    }


def score_synthetic(
    ground_truth: str | Any,
    patient_id: str,
    edges: pd.DataFrame,
    instances: Mapping[str, sitk.Image],
    *,
    timepoints: Sequence[str] | None = None,
) -> dict[str, float]:
    """Score one patient's lesion graph against a synthetic cohort's ground truth.

    Reads ``scans.parquet`` (instance masks: the 26-connected components of the written lesion
    masks) and ``edges.parquet`` (the true graph on those components) from ``ground_truth`` (the
    folder written by :func:`metevo.datasets.make_synthetic_cohort`), maps the predicted lesions
    to components by voxel overlap (:func:`map_to_reference`) and returns :func:`score_graph`'s
    figures on the visits in ``instances`` (true edges to other visits are left out), plus
    ``n_unmapped`` (predicted lesions mapping to no component) and ``n_missed_components``
    (components no predicted lesion maps to).

    Parameters
    ----------
    ground_truth
        The ``ground_truth/`` folder.
    patient_id
        The patient to score.
    edges
        The patient's predicted ``lesion_edges`` rows.
    instances
        ``{timepoint: SimpleITK.Image}`` predicted lesion labels (``LesionGraph.instances``, or
        :func:`metevo.tracking.label_lesions` of each scan with the options of the analysis).
    timepoints
        Visit order (default: the ground truth's order for this patient).

    Examples
    --------
    >>> g = metevo.lesion_graph(patient)                                   # doctest: +SKIP
    >>> score_synthetic(cohort_gt, g.patient_id, g.edges, g.instances)     # doctest: +SKIP
    {'precision': 1.0, 'recall': 1.0, 'f1': 1.0, ...}
    """
    from pathlib import Path

    gt = Path(ground_truth)
    scans = pd.read_parquet(gt / "scans.parquet")
    scans = scans[scans[L.PATIENT_ID] == patient_id]
    if scans.empty:
        raise KeyError(f"patient {patient_id!r} is not in {gt / 'scans.parquet'}.")
    if timepoints is None:
        timepoints = scans.sort_values(L.DAYS)[L.TIMEPOINT].tolist()
    reference = {
        tp: sitk.ReadImage(str(gt / path))
        for tp, path in zip(scans[L.TIMEPOINT], scans["instance_mask"], strict=True)
        if tp in instances
    }
    ref_nodes = pd.DataFrame(
        [
            (tp, int(lab))
            for tp, img in reference.items()
            for lab in np.unique(sitk.GetArrayFromImage(img))
            if lab != 0
        ],
        columns=[L.TIMEPOINT, L.LESION_ID],
    )
    true_edges = pd.read_parquet(gt / "edges.parquet")
    true_edges = true_edges[
        (true_edges[E.PATIENT_ID] == patient_id)
        & true_edges[E.TIMEPOINT_FROM].isin(list(instances))
        & true_edges[E.TIMEPOINT_TO].isin(list(instances))
    ].rename(columns={"component_from": E.LESION_ID_FROM, "component_to": E.LESION_ID_TO})
    mapping = map_to_reference(instances, reference)
    scores = score_graph(
        edges, true_edges, mapping, timepoints=timepoints, reference_nodes=ref_nodes
    )
    mapped = set(zip(mapping[L.TIMEPOINT], mapping["reference_id"], strict=True))
    scores["n_unmapped"] = int((mapping["reference_id"] == 0).sum())
    scores["n_missed_components"] = sum(
        (tp, lab) not in mapped
        for tp, lab in zip(ref_nodes[L.TIMEPOINT], ref_nodes[L.LESION_ID], strict=True)
    )
    return scores


def pooled_scores(scores: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Micro-averaged precision, recall, F1 and change accuracy over several patients' scores."""
    tp = sum(s["precision"] * s["n_edges"] for s in scores)
    n_pred = sum(s["n_edges"] for s in scores)
    n_ref = sum(s["n_reference_edges"] for s in scores)
    precision = tp / n_pred if n_pred else 1.0
    recall = tp / n_ref if n_ref else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    n_scored = sum(s["n_scored_lesions"] for s in scores)
    correct = sum(
        s["change_accuracy"] * s["n_scored_lesions"] for s in scores if s["n_scored_lesions"]
    )
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "change_accuracy": correct / n_scored if n_scored else float("nan"),
        "n_edges": n_pred,
        "n_reference_edges": n_ref,
        "n_scored_lesions": n_scored,
    }
