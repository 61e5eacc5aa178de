"""The ``scans`` stage: one row per analysed scan with geometry, volumes and QC.

Columns are listed in :class:`metevo.columns.Scans` and described in
``data_dictionary/scans.schema.json``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import SimpleITK as sitk

from metevo.cohort._cohort import Patient, Scan, ScanReads
from metevo.columns import Failures, Scans
from metevo.exceptions import MetevoError

__all__ = ["liver_in_field_of_view", "scan_row", "scans_stage", "scans_table"]


def scans_table(patient: Patient, *, reads: ScanReads | None = None) -> pd.DataFrame:
    """One row per analysed scan of ``patient`` (reads every image and mask once).

    ``reads`` shares the decoded images with later stages (the pipeline passes its own).

    Examples
    --------
    >>> import metevo
    >>> demo = metevo.datasets.load_demo_cohort()                       # doctest: +SKIP
    >>> cohort = metevo.open_cohort(demo.manifest, clinical=demo.clinical)  # doctest: +SKIP
    >>> metevo.scans_table(cohort[cohort.patient_ids[0]])               # doctest: +SKIP
    """
    reads = reads if reads is not None else ScanReads()
    rows = [scan_row(scan, patient, reads=reads) for scan in patient.scans]
    return pd.DataFrame.from_records(rows, columns=_COLUMNS)


def scans_stage(patient: Patient, result, **options: object) -> None:
    """Pipeline stage: fills ``result.tables["scans"]``.

    A follow-up scan whose image or mask cannot be read (truncated, corrupt, off the image grid,
    invalid mask values) costs that visit only: its row has ``qc_flag`` ``"excluded"`` and the
    reason in ``qc_note``, and ``result.objects["excluded_scans"]`` lists it (``timepoint ->``
    failure record naming the file) so that the runner records the failure and the later stages
    analyse the other visits. An unreadable baseline scan fails the patient.
    """
    if options:
        raise TypeError(f"the scans stage takes no options; got {sorted(options)}.")
    reads = ScanReads.of(result)
    rows, excluded = [], {}
    for scan in patient.scans:
        problem = None if scan.is_baseline else _unreadable(scan, reads)
        if problem is None:
            rows.append(scan_row(scan, patient, reads=reads))
        else:
            excluded[scan.timepoint] = problem
            rows.append(_excluded_row(scan, problem[Failures.ERROR]))
    result.tables["scans"] = pd.DataFrame.from_records(rows, columns=_COLUMNS)
    if excluded:
        result.objects["excluded_scans"] = excluded


def _unreadable(scan: Scan, reads: ScanReads) -> dict | None:
    """The failure record of the first of the scan's files that cannot be read, else None."""
    for path, read in (
        (scan.image_path, reads.image),
        (scan.lesion_mask_path, reads.lesion_mask),
        (scan.liver_mask_path, reads.liver_mask),
    ):
        try:
            read(scan)
        except MetevoError as exc:
            return {
                Failures.PATIENT_ID: scan.patient_id,
                Failures.STAGE: "scans",
                Failures.TIMEPOINT: scan.timepoint,
                Failures.FILE: str(path),
                Failures.ERROR_TYPE: type(exc).__name__,
                Failures.ERROR: str(exc),
            }
    return None


def _excluded_row(scan: Scan, reason: str) -> dict:
    row = dict.fromkeys(_COLUMNS)
    row.update(_visit(scan))
    row[Scans.QC_FLAG] = "excluded"
    row[Scans.QC_NOTE] = f"scan not analysed (visit not evaluable): {reason}"
    return row


def scan_row(scan: Scan, patient: Patient, *, reads: ScanReads | None = None) -> dict:
    """Measure one scan: geometry, lesion and liver volumes, evaluability and QC notes."""
    reads = reads if reads is not None else ScanReads()
    image = reads.image(scan)  # decoded whole: a corrupt file fails here, not later
    lesion = reads.lesion_mask(scan)
    liver = reads.liver_mask(scan)
    spacing = image.GetSpacing()
    voxel_ml = float(np.prod(spacing)) / 1000.0
    lesion_voxels = int(np.count_nonzero(sitk.GetArrayViewFromImage(lesion)))
    notes: list[str] = []
    if scan.is_baseline and patient.baseline_note:
        notes.append(patient.baseline_note)
    notes.extend(n for n in patient.protocol_notes if f" at {scan.timepoint}" in n)
    if liver is None:
        liver_ml = float("nan")
        total_ml = float("nan")
        in_fov = None
        notes.append("no liver mask")
    else:
        liver_arr = sitk.GetArrayViewFromImage(liver)
        liver_ml = float(np.count_nonzero(liver_arr)) * voxel_ml
        lesion_arr = sitk.GetArrayViewFromImage(lesion)
        total_ml = float(np.count_nonzero((liver_arr != 0) | (lesion_arr != 0))) * voxel_ml
        in_fov = liver_in_field_of_view(liver)
        if liver_ml == 0:
            notes.append("empty liver mask")
        elif not in_fov:
            notes.append("liver truncated by the field of view (lesions may be hidden)")
    if lesion_voxels == 0:
        notes.append("empty lesion mask (no visible lesion)")
    size = image.GetSize()
    qc_problems = [n for n in notes if not n.startswith("empty lesion mask")]
    return {
        **_visit(scan),
        Scans.SIZE_X: int(size[0]),
        Scans.SIZE_Y: int(size[1]),
        Scans.SIZE_Z: int(size[2]) if len(size) > 2 else 1,
        Scans.SPACING_X_MM: float(spacing[0]),
        Scans.SPACING_Y_MM: float(spacing[1]),
        Scans.SPACING_Z_MM: float(spacing[2]) if len(spacing) > 2 else float("nan"),
        Scans.LESION_VOXELS: lesion_voxels,
        Scans.LESION_VOLUME_ML: lesion_voxels * voxel_ml,
        Scans.LIVER_VOLUME_ML: liver_ml,
        Scans.LIVER_TOTAL_VOLUME_ML: total_ml,
        Scans.MASK_EMPTY: lesion_voxels == 0,
        Scans.LIVER_IN_FOV: in_fov,
        Scans.QC_FLAG: "warning" if qc_problems else "ok",
        Scans.QC_NOTE: "; ".join(notes),
    }


def _visit(scan: Scan) -> dict:
    """The columns that identify a scan's visit."""
    return {
        Scans.PATIENT_ID: scan.patient_id,
        Scans.TIMEPOINT: scan.timepoint,
        Scans.DATE: pd.Timestamp(scan.date),
        Scans.DAYS: scan.days,
        Scans.STUDY_DAY: scan.study_day,
        Scans.PHASE: scan.phase,
        Scans.IS_BASELINE: scan.is_baseline,
    }


def liver_in_field_of_view(liver: sitk.Image) -> bool:
    """Whether the liver mask stays clear of the scan's cranio-caudal ends.

    A liver that touches the first or last slice along the image axis closest to the patient's
    head-feet (z) direction is truncated: lesions beyond the field of view cannot be seen.
    """
    arr = sitk.GetArrayViewFromImage(liver)
    if not arr.any():
        return False
    direction = np.asarray(liver.GetDirection()).reshape(3, 3)
    axis_xyz = int(np.argmax(np.abs(direction[2, :])))  # index axis most aligned with z
    axis_arr = 2 - axis_xyz  # numpy order is (z, y, x)
    other = tuple(a for a in range(3) if a != axis_arr)
    present = arr.any(axis=other)
    return not (present[0] or present[-1])


_COLUMNS = [
    Scans.PATIENT_ID,
    Scans.TIMEPOINT,
    Scans.DATE,
    Scans.DAYS,
    Scans.STUDY_DAY,
    Scans.PHASE,
    Scans.IS_BASELINE,
    Scans.SIZE_X,
    Scans.SIZE_Y,
    Scans.SIZE_Z,
    Scans.SPACING_X_MM,
    Scans.SPACING_Y_MM,
    Scans.SPACING_Z_MM,
    Scans.LESION_VOXELS,
    Scans.LESION_VOLUME_ML,
    Scans.LIVER_VOLUME_ML,
    Scans.LIVER_TOTAL_VOLUME_ML,
    Scans.MASK_EMPTY,
    Scans.LIVER_IN_FOV,
    Scans.QC_FLAG,
    Scans.QC_NOTE,
]
