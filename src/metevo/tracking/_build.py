"""Building a patient's :class:`~metevo.tracking.LesionGraph`: label and measure the lesions of every
scan, register consecutive visits, match, and assemble; the ``graph`` stage of the pipeline.

Examples
--------
>>> import metevo
>>> cohort = metevo.open_cohort(metevo.datasets.load_demo_cohort())  # doctest: +SKIP
>>> graph = metevo.lesion_graph(cohort.patients[0])                   # doctest: +SKIP
>>> graph.changes                                                     # doctest: +SKIP
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import SimpleITK as sitk

from metevo.cohort._cohort import ScanReads
from metevo.columns import LesionEdges as E
from metevo.columns import Lesions as L
from metevo.columns import Registrations as R
from metevo.columns import Scans as S
from metevo.exceptions import RegistrationWarning
from metevo.tracking._graph import REGISTRATION_COLUMNS, LesionGraph
from metevo.tracking._lesions import label_lesions, liver_in_fov, measure_lesions
from metevo.tracking._match import _empty_matches, match_lesions
from metevo.tracking._positions import POSITION_COLUMNS, lesion_positions
from metevo.tracking._registration import Registration, compose, register_pair

if TYPE_CHECKING:  # pragma: no cover
    from metevo.cohort._cohort import Patient

__all__ = ["build_lesion_graph", "graph_stage", "lesion_graph", "lesions"]


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
    >>> metevo.plotting.graph.plot_lesion_graph(metevo.lesion_graph(cohort.patients[0]))  # doctest: +SKIP
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

    Fills ``result.tables["lesions"]`` (with each lesion's position in the liver, see
    :func:`lesion_positions`), ``["lesion_edges"]``, ``["registrations"]``, adds
    ``registration_ok`` (and ``liver_in_fov``/``mask_empty`` when the scans stage did not) to
    ``result.tables["scans"]``, and hands on ``result.objects["instances"]`` and
    ``result.objects["graph"]``.
    """
    graph = lesion_graph(patient, reads=ScanReads.of(result), **options)
    result.tables["lesions"] = _with_positions(patient, graph.nodes, ScanReads.of(result))
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
# patient level
# --------------------------------------------------------------------------------------------
def lesions(patient: Patient, **options: object) -> pd.DataFrame:
    """One row per lesion per visit of ``patient``, with its track and change class.

    Runs :func:`lesion_graph` (labelling, measurement, registration, matching) and returns its
    ``nodes`` table with each lesion's position in the liver (:func:`lesion_positions`): the
    ``lesions`` table of the graph stage. ``options`` are passed on to :func:`lesion_graph`.



    Returns
    -------
    pandas.DataFrame
        Columns ``patient_id``, ``timepoint``, ``date``, ``days``, ``lesion_id``, ``track_id``,
        ``change`` then the measurements (see the module docstring and
        ``data_dictionary/lesions.schema.json``).

    Examples
    --------
    >>> import metevo
    >>> cohort = metevo.open_cohort(metevo.datasets.load_demo_cohort())  # doctest: +SKIP
    >>> metevo.lesions(cohort.patients[0])[["timepoint", "lesion_id", "axial_ld_mm"]]  # doctest: +SKIP
    """
    reads = ScanReads()
    graph = lesion_graph(patient, reads=reads, **options)
    return _with_positions(patient, graph.nodes, reads)


def _with_positions(patient: Patient, nodes: pd.DataFrame, reads: ScanReads) -> pd.DataFrame:
    """``nodes`` with each lesion's position in the liver (:func:`lesion_positions`) appended."""
    positions = lesion_positions(patient, nodes, reads=reads)
    nodes = nodes.drop(columns=[c for c in POSITION_COLUMNS if c in nodes.columns])
    return nodes.merge(positions, on=["timepoint", "lesion_id"], how="left")
