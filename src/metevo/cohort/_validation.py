"""Checking a cohort without analysing it (``metevo validate``)."""

from __future__ import annotations

import pandas as pd

from metevo.cohort._cohort import Cohort
from metevo.exceptions import MetevoError

__all__ = ["validate_cohort"]


def validate_cohort(cohort: Cohort) -> pd.DataFrame:
    """Read every image and mask of ``cohort`` and report problems, one row per scan.

    Every image is decoded, every mask is checked against its image grid and its declared kind.
    Patients set aside when the cohort was opened appear with their error.

    Returns
    -------
    pandas.DataFrame
        Columns ``patient_id``, ``timepoint`` (empty for patient-level rows), ``status``
        (``ok``, ``warning``, ``error``) and ``message``.
    """
    rows: list[dict] = []
    for pid, err in sorted(cohort.set_aside.items()):
        rows.append({"patient_id": pid, "timepoint": "", "status": "error", "message": str(err)})
    for patient in cohort:
        if patient.baseline_note and cohort.clinical is not None:
            rows.append(
                {
                    "patient_id": patient.patient_id,
                    "timepoint": patient.baseline.timepoint,
                    "status": "warning",
                    "message": patient.baseline_note,
                }
            )
        for note in patient.protocol_notes:
            rows.append(
                {"patient_id": patient.patient_id, "timepoint": "", "status": "warning", "message": note}
            )
        for scan in patient.scans:
            try:
                scan.image()
                scan.lesion_mask()
                scan.liver_mask()
            except MetevoError as exc:
                rows.append(
                    {
                        "patient_id": patient.patient_id,
                        "timepoint": scan.timepoint,
                        "status": "error",
                        "message": str(exc),
                    }
                )
                continue
            rows.append(
                {"patient_id": patient.patient_id, "timepoint": scan.timepoint, "status": "ok", "message": ""}
            )
    return pd.DataFrame(rows, columns=["patient_id", "timepoint", "status", "message"])
