"""Column names of every table metevo writes, as constants (one class per table).

Every column listed here is described in ``data_dictionary/<table>.schema.json``.
Modules add their table's class here; keys come first.
"""

from __future__ import annotations

PATIENT_ID = "patient_id"
TIMEPOINT = "timepoint"
DATE = "date"
DAYS = "days"
STUDY_DAY = "study_day"
LESION_ID = "lesion_id"
TRACK_ID = "track_id"


class Manifest:
    PATIENT_ID = PATIENT_ID
    TIMEPOINT = TIMEPOINT
    DATE = DATE
    IMAGE = "image"
    LESION_MASK = "lesion_mask"
    LIVER_MASK = "liver_mask"
    PHASE = "phase"
    SLICE_THICKNESS_MM = "slice_thickness_mm"
    KERNEL = "kernel"
    REQUIRED = (PATIENT_ID, TIMEPOINT, DATE, IMAGE, LESION_MASK)
    OPTIONAL = (LIVER_MASK, PHASE, SLICE_THICKNESS_MM, KERNEL)


class Clinical:
    PATIENT_ID = PATIENT_ID
    TREATMENT_START = "treatment_start"
    OS_DAYS = "os_days"
    OS_EVENT = "os_event"
    PFS_DAYS = "pfs_days"
    PFS_EVENT = "pfs_event"
    ARM = "arm"
    REQUIRED = (PATIENT_ID, OS_DAYS, OS_EVENT)


class Events:
    PATIENT_ID = PATIENT_ID
    DATE = DATE
    EVENT = "event"
    NOTE = "note"
    KINDS = (
        "resection",
        "ablation",
        "new_treatment_line",
        "extrahepatic_progression",
        "death",
    )


class Scans:
    PATIENT_ID = PATIENT_ID
    TIMEPOINT = TIMEPOINT
    DATE = DATE
    DAYS = DAYS
    STUDY_DAY = STUDY_DAY
    PHASE = "phase"
    IS_BASELINE = "is_baseline"
    SIZE_X = "size_x"
    SIZE_Y = "size_y"
    SIZE_Z = "size_z"
    SPACING_X_MM = "spacing_x_mm"
    SPACING_Y_MM = "spacing_y_mm"
    SPACING_Z_MM = "spacing_z_mm"
    LESION_VOXELS = "lesion_voxels"
    LESION_VOLUME_ML = "lesion_volume_ml"
    LIVER_VOLUME_ML = "liver_volume_ml"
    MASK_EMPTY = "mask_empty"
    LIVER_IN_FOV = "liver_in_fov"
    QC_FLAG = "qc_flag"
    QC_NOTE = "qc_note"


class Failures:
    PATIENT_ID = PATIENT_ID
    STAGE = "stage"
    ERROR_TYPE = "error_type"
    ERROR = "error"
