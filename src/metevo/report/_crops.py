"""CT crops of the report: axial slices through each target and new lesion at every visit.

A track is cropped at its first visit around its lesion (bounding-box centre, the slice of its
longest axial diameter). At every later visit the same anatomy is shown: that point is carried
through the analysis' registrations (the ``affine_*`` columns of ``registrations.parquet``, which
map a later visit's points to the earlier visit's), so a reader sees where the lesion was, how it
changed, and whether the match is right, instead of a crop that follows the lesion itself.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from metevo.columns import parse_recist_lesion_id

__all__ = ["slug", "track_roles", "visit_slices", "visit_to_first"]

SLICE_ROLES = ("target", "new")


def slug(patient_id: str) -> str:
    """A file name for a patient id (letters, digits, ``-`` and ``_`` kept)."""
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", str(patient_id)).strip("_") or "patient"
    return name



def track_roles(pid: str, tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The patient's ``recist_lesions`` rows with the ``track_id`` of the lesion they follow.

    A target or non-target ``L<k>`` follows baseline lesion ``k``; a new lesion ``N<tp>:<k>``
    the lesion ``k`` of visit ``tp`` where it first appeared (``source_timepoint``,
    ``source_lesion_id``).
    """
    rl = tables.get("recist_lesions")
    lesions = tables.get("lesions")
    if rl is None or lesions is None:
        return pd.DataFrame(columns=["timepoint", "lesion_id", "track_id", "role", "ld_mm", "state",
                                     "source_timepoint", "source_lesion_id"])
    rl = rl[rl["patient_id"] == pid].copy()
    mine = lesions[lesions["patient_id"] == pid]
    track_of = {(str(t), int(k)): int(tr) for t, k, tr in zip(mine["timepoint"], mine["lesion_id"], mine["track_id"], strict=True)}
    scans = tables.get("scans")
    base = scans[(scans["patient_id"] == pid) & scans["is_baseline"].astype(bool)]["timepoint"] if scans is not None and "is_baseline" in scans else []
    baseline = str(base.iloc[0]) if len(base) else (str(mine["timepoint"].iloc[0]) if len(mine) else "")

    parsed = [parse_recist_lesion_id(v) for v in rl["lesion_id"]]
    sources = [(p[0] or baseline, p[1]) if p else None for p in parsed]
    rl["track_id"] = pd.array([track_of.get(k) if k else None for k in sources], dtype="Int64")
    rl["source_timepoint"] = [k[0] if k else None for k in sources]
    rl["source_lesion_id"] = pd.array([k[1] if k else None for k in sources], dtype="Int64")
    rl["role"] = rl.groupby("lesion_id")["role"].transform(lambda r: r.ffill().bfill())
    return rl


def visit_to_first(timepoints: list[str], registrations: pd.DataFrame | None) -> dict[str, np.ndarray]:
    """4x4 matrices mapping each visit's points (LPS mm) to the first visit's, from the table.

    Visits after a missing or incomplete pair of the chain are left out.
    """
    from metevo.tracking import affine_matrix_from_row

    if not timepoints:
        return {}
    out = {timepoints[0]: np.eye(4)}
    if registrations is None or registrations.empty:
        return out
    by_pair = {(str(r["timepoint_from"]), str(r["timepoint_to"])): r for _, r in registrations.iterrows()}
    for earlier, later in zip(timepoints, timepoints[1:], strict=False):
        row = by_pair.get((earlier, later))
        if row is None or earlier not in out:
            break
        try:
            m = affine_matrix_from_row(row)
        except (ValueError, KeyError):
            break
        out[later] = out[earlier] @ m
    return out


def visit_slices(
    pid: str,
    tables: dict[str, pd.DataFrame],
    cohort: Any,
    out: Path,
    fov_mm: float,
    limit: int,
    dpi: int,
) -> tuple[list[dict], str]:
    """CT crops through each target and new lesion of each visit; (visits, note for the page).

    Each slice dict holds ``src``, ``color``, ``caption``, ``track_id``, ``slice`` and
    ``center_mm`` (the crop centre, LPS mm, on the drawn slice).
    """
    recist = tables.get("recist")
    rec = recist[recist["patient_id"] == pid] if recist is not None else pd.DataFrame()
    response = dict(zip(rec.get("timepoint", []), rec.get("overall_response", []), strict=True))
    if cohort is None:
        return [], ("CT slices are shown when the analysis folder records its manifest (`metevo analyze` "
                    "does) or the report is given one (--manifest).")
    if pid not in cohort.patient_ids:
        return [], f"patient {pid} is not in the manifest given: no CT slices."
    lesions = tables.get("lesions")
    if lesions is None:
        return [], "no lesions table: no CT slices."
    import matplotlib.pyplot as plt

    from metevo.cohort import ScanReads
    from metevo.plotting.scans import plot_slice
    from metevo.tracking import label_lesions, track_palette

    patient = cohort[pid]
    mine = lesions[lesions["patient_id"] == pid]
    palette = track_palette(mine["track_id"].unique())
    rl = track_roles(pid, tables)
    rl = rl[rl["role"].isin(SLICE_ROLES) & rl["track_id"].notna()]
    roles = {(str(t), int(tr)): str(r) for t, tr, r in zip(rl["timepoint"], rl["track_id"], rl["role"], strict=True)}
    regs = tables.get("registrations")
    to_first = visit_to_first(
        [s.timepoint for s in patient.scans],
        regs[regs["patient_id"] == pid] if regs is not None else None,
    )
    # a track's crops show the anatomy around the lesion its RECIST role names (baseline target k,
    # new lesion k of the visit it appeared), else around its largest lesion at its first visit
    anchor: dict[int, tuple[str, int]] = {}
    for t, v, k in zip(rl["track_id"], rl["source_timepoint"], rl["source_lesion_id"], strict=True):
        if pd.notna(k):
            anchor.setdefault(int(t), (str(v), int(k)))
    reference: dict[int, tuple[str, np.ndarray]] = {}  # track -> (visit, crop centre there in mm)
    reads = ScanReads()
    visits = []
    folder = out / "patients" / slug(pid)
    folder.mkdir(parents=True, exist_ok=True)
    for scan in patient.scans:
        tp = scan.timepoint
        here = mine[mine["timepoint"] == tp]
        if "recist_lesions" in tables:
            keep = np.array([(tp, int(t)) in roles for t in here["track_id"]], dtype=bool)
            chosen = here[keep]  # a boolean array: an empty visit keeps its columns
        else:
            chosen = here
        chosen = chosen.sort_values("volume_ml", ascending=False)
        note = ""
        if len(chosen) > limit:
            note = f"{len(chosen)} target/new lesions; the {limit} largest are shown."
            chosen = chosen.head(limit)
        if here.empty or (chosen.empty and all(int(t) in reference for t in here["track_id"])):
            visits.append({"timepoint": tp, "date": str(scan.date), "response": _resp(response.get(tp)),
                           "note": "no target or new lesion at this visit.", "slices": []})
            continue
        # the CT is read only where something is drawn; elsewhere its header places the references
        image = _geometry(scan.header()) if chosen.empty else reads.image(scan)
        for r in here.sort_values("volume_ml", ascending=False).itertuples():
            t = int(r.track_id)
            if t not in reference and anchor.get(t, (tp, int(r.lesion_id))) == (tp, int(r.lesion_id)):
                centre = ((r.bbox_x_min + r.bbox_x_max) / 2, (r.bbox_y_min + r.bbox_y_max) / 2, float(r.axial_slice))
                reference[t] = (tp, np.asarray(image.TransformContinuousIndexToPhysicalPoint(centre)))
        if chosen.empty:
            visits.append({"timepoint": tp, "date": str(scan.date), "response": _resp(response.get(tp)),
                           "note": "no target or new lesion at this visit.", "slices": []})
            continue
        liver = reads.liver_mask(scan)
        labels = label_lesions(reads.lesion_mask(scan), liver, kind=scan.lesion_mask_kind, context=f"{pid} {tp}")
        counts = np.bincount(_array(labels).ravel())
        colors = {int(r.lesion_id): palette[int(r.track_id)] for r in here.itertuples()}
        mismatch = [int(r.lesion_id) for r in here.itertuples()
                    if r.lesion_id >= len(counts) or counts[int(r.lesion_id)] != r.n_voxels]
        if mismatch:
            note = (note + " " if note else "") + (
                f"lesion labels {mismatch} do not match the lesions table (the analysis used other "
                "lesion options?): contours drawn without track colours."
            )
            colors = {}
        slices = []
        for r in chosen.itertuples():
            k, center, how = _crop(image, r, reference, to_first, tp)
            fig, ax = plt.subplots(figsize=(2.0, 2.0), constrained_layout=True)
            plot_slice(image, k, labels=labels, colors=colors, liver=liver,
                       center=center, fov_mm=fov_mm, ax=ax, linewidth=1.0)
            name = f"{slug(tp)}_lesion{int(r.lesion_id)}.png"
            fig.savefig(folder / name, dpi=dpi)
            plt.close(fig)
            role = roles.get((tp, int(r.track_id)), "")
            slices.append({
                "src": f"{slug(pid)}/{name}",
                "color": _rgb_hex(palette[int(r.track_id)]),
                "track_id": int(r.track_id),
                "slice": k,
                "center_mm": " ".join(f"{v:.3f}" for v in image.TransformContinuousIndexToPhysicalPoint((*center, k))),
                "caption": (f"track {int(r.track_id)}, lesion {int(r.lesion_id)}"
                            f"{', ' + role if role else ''}, {r.change}; LD {r.axial_ld_mm:.1f} mm, "
                            f"slice {k}{how}"),
            })
        visits.append({"timepoint": tp, "date": str(scan.date), "response": _resp(response.get(tp)),
                       "note": note, "slices": slices})
        reads.clear()
    return visits, ("Window -150/250 HU; contour colour = track (as in the lesion graph); white dashed = "
                    "liver outline. After a track's first visit its crops show the same anatomy, "
                    "carried by the registration.")


def _crop(image, r, reference, to_first, tp) -> tuple[int, tuple[float, float], str]:
    """(slice, (x, y) voxel centre, caption note) of lesion row ``r``'s crop at visit ``tp``."""
    own = (int(r.axial_slice), ((r.bbox_x_min + r.bbox_x_max) / 2, (r.bbox_y_min + r.bbox_y_max) / 2))
    if int(r.track_id) not in reference:  # the lesion its role names comes later in its track
        return own[0], own[1], ""
    first, point = reference[int(r.track_id)]
    if first == tp:
        return own[0], own[1], ""
    if first not in to_first or tp not in to_first:
        return own[0], own[1], " (centred on the lesion: no registration to its first visit)"
    # first visit -> this visit: inverse of this visit's map to the first, after the first's map
    m = np.linalg.inv(to_first[tp]) @ to_first[first]
    q = m[:3, :3] @ point + m[:3, 3]
    idx = image.TransformPhysicalPointToContinuousIndex(tuple(float(v) for v in q))
    nz = image.GetSize()[2]
    k = int(round(idx[2]))
    if not 0 <= k < nz:
        return own[0], own[1], f" (centred on the lesion: its {first} position lies outside this scan)"
    return k, (idx[0], idx[1]), f" (same anatomy as at {first}, by registration)"


def _geometry(header: dict):
    """A one-voxel image with a scan's geometry (its index-to-LPS mapping, no pixels read)."""
    import SimpleITK as sitk

    image = sitk.Image(1, 1, 1, sitk.sitkUInt8)
    image.SetSpacing(header["spacing"])
    image.SetOrigin(header["origin"])
    image.SetDirection(header["direction"])
    return image


def _array(image) -> np.ndarray:
    import SimpleITK as sitk

    return sitk.GetArrayViewFromImage(image)


def _resp(value) -> str:
    return value if isinstance(value, str) else ""


def _rgb_hex(rgb) -> str:
    return "#" + "".join(f"{int(round(255 * c)):02x}" for c in rgb[:3])
