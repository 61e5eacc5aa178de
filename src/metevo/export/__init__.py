"""Export an analysed cohort to DICOM: one SEG and one TID 1500 SR per visit.

In: a cohort whose images are DICOM series (:func:`metevo.open_cohort`) and the folder written by
:func:`metevo.analyze`. Out: ``<patient>/<timepoint>/seg.dcm`` (a segment per lesion, labelled with
its track, plus the liver) and ``sr.dcm`` (per-lesion volume, diameters, mean HU, tracking
identifier/UID constant across visits, RECIST role; the visit's target sum and responses).
CLI: ``metevo export-dicom DIR --out FOLDER``.
"""

from metevo.export._dicom import METEVO_SCHEME, export_dicom, tracking_uid

__all__ = ["METEVO_SCHEME", "export_dicom", "tracking_uid"]
