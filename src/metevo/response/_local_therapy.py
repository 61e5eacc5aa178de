"""Lesions treated locally (resection, ablation): which lesions each event of the events table
names, resolved against the lesions of the last scan before the event.

RECIST 1.1 lets a lesion treated locally leave the assessment (it is not a response). The events
table may name the treated lesions (checked by :mod:`metevo.cohort`):

* ``lesion_ids`` -- lesion ids of the ``lesions`` table at the last scan before the event;
* ``track_ids`` -- track ids (``lesions.track_id``); the track's lesions at that scan;
* ``point_x_mm``, ``point_y_mm``, ``point_z_mm`` -- a physical point (LPS, mm, the scanner
  coordinates of that scan, as ``lesions.centroid_*_mm``): the lesion nearest to it, the
  distance being from the point to the lesion's equivalent sphere (centroid distance minus half
  ``equivalent_diameter_mm``, 0 inside), treated when within ``tolerance_mm``
  (:data:`RESECTION_POINT_TOLERANCE_MM`, 10 mm, by default). Farther than that is an error that
  names the patient, the events-table line, the columns and the nearest lesion found.

An event that names nothing leaves the choice to :func:`metevo.response.graph_measurements`
(a lesion present before and gone after, unless it was already shrinking toward zero).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from metevo.columns import Events as EV
from metevo.columns import Lesions as L

__all__ = ["RESECTION_POINT_TOLERANCE_MM", "LocalTherapy", "local_therapies"]

#: how far (mm) a point of the events table may lie from the surface of the lesion it names
RESECTION_POINT_TOLERANCE_MM = 10.0

Node = tuple[str, int]


@dataclass
class LocalTherapy:
    """The local therapies between two assessments, seen from the first assessment after them.

    ``named`` maps lesions of the previous scan (``(timepoint, lesion_id)``) to how the events
    table named them (``lesion_ids``, ``track_ids`` or ``point``); ``infer`` is True when one of
    the events names no lesion (the treated lesions are then inferred).
    """

    named: dict[Node, str] = field(default_factory=dict)
    infer: bool = False


def local_therapies(
    patient_id: str,
    events: pd.DataFrame | None,
    lesions: pd.DataFrame,
    timepoints: Sequence[str],
    dates: Mapping[str, dt.date],
    *,
    tolerance_mm: float = RESECTION_POINT_TOLERANCE_MM,
) -> dict[str, LocalTherapy]:
    """``timepoint -> LocalTherapy`` for the first assessment after each resection / ablation.

    ``timepoints`` are the assessments in date order, ``dates`` their dates; ``lesions`` the
    patient's ``lesions`` table. Events with no assessment after them are left out; so is an
    event with no scan before it (nothing to name).
    """
    out: dict[str, LocalTherapy] = {}
    if events is None or len(events) == 0:
        return out
    tps = [str(t) for t in timepoints]
    les = lesions.copy()
    if len(les):
        les[L.TIMEPOINT] = les[L.TIMEPOINT].astype(str)
    for rec in events.to_dict("records"):
        if str(rec.get(EV.EVENT)) not in EV.LOCAL_THERAPY:
            continue
        day = pd.Timestamp(rec[EV.DATE]).date()
        after = [tp for tp in tps if dates[tp] > day]
        before = [tp for tp in tps if dates[tp] <= day]
        if not after or not before:
            continue
        therapy = out.setdefault(after[0], LocalTherapy())
        named = _named(patient_id, rec, les, before[-1], tolerance_mm)
        if named is None:
            therapy.infer = True
        else:
            therapy.named.update(named)
    return out


def _blank(value: object) -> bool:
    if value is None or value is pd.NA:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, (tuple, list)) and not value


def _named(
    patient_id: str, rec: dict, lesions: pd.DataFrame, prev: str, tolerance_mm: float
) -> dict[Node, str] | None:
    """Lesions of scan ``prev`` that one events row names, or None when it names none."""
    here = lesions[lesions[L.TIMEPOINT] == prev] if len(lesions) else lesions
    line = rec.get(EV.LINE)
    where = (
        f"patient {patient_id!r}, events table line {int(line)}"
        if not _blank(line)
        else f"patient {patient_id!r}, events row {rec.get(EV.EVENT)} on {rec.get(EV.DATE)}"
    )
    what = f"the last scan ({prev}) before the {rec[EV.EVENT]} on {rec[EV.DATE]}"
    for col, key in ((EV.LESION_IDS, L.LESION_ID), (EV.TRACK_IDS, L.TRACK_ID)):
        ids = rec.get(col)
        if _blank(ids):
            continue
        if key not in here.columns:
            raise ValueError(
                f"{where}, column {col}: the lesions table has no {key!r} column to match it."
            )
        known = sorted({int(v) for v in here[key]})
        missing = sorted(set(int(i) for i in ids) - set(known))
        if missing:
            raise ValueError(
                f"{where}, column {col}: {_ids(missing)} not found among the {key}s of {what}; "
                f"found {_ids(known) if known else 'no lesion'}."
            )
        chosen = here[here[key].astype(int).isin([int(i) for i in ids])]
        return {(prev, int(lid)): col for lid in chosen[L.LESION_ID]}
    point = [rec.get(c) for c in EV.POINT]
    if any(_blank(v) for v in point):
        return None
    cols = f"columns {'/'.join(EV.POINT)}"
    p = np.asarray(point, dtype=float)
    shown = "(" + ", ".join(f"{v:g}" for v in p) + ") mm"
    centroid = [L.CENTROID_X_MM, L.CENTROID_Y_MM, L.CENTROID_Z_MM]
    if len(here) == 0:
        raise ValueError(
            f"{where}, {cols}: no lesion at {what} to match the point {shown} against."
        )
    lacking = [c for c in centroid if c not in here.columns]
    if lacking:
        raise ValueError(
            f"{where}, {cols}: the lesions table lacks {lacking}; a point needs the lesion "
            "centroids (run the lesion_graph stage) or name the lesions by lesion_ids."
        )
    c = here[centroid].to_numpy(float)
    radius = (
        here[L.EQUIVALENT_DIAMETER_MM].to_numpy(float) / 2.0
        if L.EQUIVALENT_DIAMETER_MM in here.columns
        else np.zeros(len(here))
    )
    dist = np.maximum(np.linalg.norm(c - p[None, :], axis=1) - np.nan_to_num(radius), 0.0)
    j = int(np.argmin(dist))
    lid = int(here[L.LESION_ID].iloc[j])
    if not dist[j] <= tolerance_mm:
        near = "(" + ", ".join(f"{v:.1f}" for v in c[j]) + ")"
        raise ValueError(
            f"{where}, {cols}: no lesion of {what} lies within {tolerance_mm:g} mm of the point "
            f"{shown}; the nearest is lesion {lid} (centroid {near} mm, {dist[j]:.1f} mm from "
            "its surface). Check the coordinates are physical LPS mm of that scan, or name the "
            "lesion by lesion_ids."
        )
    return {(prev, lid): "point"}


def _ids(values: Sequence[int]) -> str:
    return ", ".join(str(v) for v in values)
