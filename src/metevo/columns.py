"""Column names of every table metevo writes, as constants (one class per table).

Every column listed here is described in ``data_dictionary/<table>.schema.json``.
Modules add their table's class here; keys come first. The value format of the one key that is
built from others (``recist_lesions.lesion_id``) is written and read by the two functions here.
"""

from __future__ import annotations

import re

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
    #: optional naming of the lesions a resection/ablation treated: lesion ids (or track ids) of
    #: the lesions table at the last scan before the event, or a point (physical LPS mm) there
    LESION_IDS = "lesion_ids"
    TRACK_IDS = "track_ids"
    POINT_X_MM = "point_x_mm"
    POINT_Y_MM = "point_y_mm"
    POINT_Z_MM = "point_z_mm"
    POINT = (POINT_X_MM, POINT_Y_MM, POINT_Z_MM)
    #: line of the events table a checked row came from (header = line 1), for error messages
    LINE = "line"
    KINDS = (
        "resection",
        "ablation",
        "new_treatment_line",
        "extrahepatic_progression",
        "death",
    )
    #: events that treat lesions locally (RECIST: the treated lesions leave the assessment)
    LOCAL_THERAPY = ("resection", "ablation")


class PatientTrajectories:
    """Columns of ``patient_trajectories`` that other stages read (the table's full column list
    depends on the radiomic features; see :mod:`metevo.evolution`)."""

    POST_RESECTION = "post_resection"
    #: burden column -> the same after a resection or ablation with the treated lesions taken
    #: out of its baseline (RECIST 1.1's rule); pattern features read these when present
    RESECTION_ADJUSTED = {
        "target_sum_mm": "target_sum_adjusted_mm",
        "total_volume_ml": "total_volume_adjusted_ml",
        "sum_ld_mm": "sum_ld_adjusted_mm",
        "n_lesions": "n_lesions_adjusted",
    }


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
    LIVER_TOTAL_VOLUME_ML = "liver_total_volume_ml"
    MASK_EMPTY = "mask_empty"
    LIVER_IN_FOV = "liver_in_fov"
    LESIONS_IN_FOV = "lesions_in_fov"
    REGISTRATION_OK = "registration_ok"
    QC_FLAG = "qc_flag"
    QC_NOTE = "qc_note"


class Failures:
    PATIENT_ID = PATIENT_ID
    STAGE = "stage"
    ERROR_TYPE = "error_type"
    ERROR = "error"
    TIMEPOINT = TIMEPOINT
    FILE = "file"


class Lesions:
    PATIENT_ID = PATIENT_ID
    TIMEPOINT = TIMEPOINT
    DATE = DATE
    DAYS = DAYS
    LESION_ID = LESION_ID
    TRACK_ID = TRACK_ID
    CHANGE = "change"
    N_VOXELS = "n_voxels"
    VOLUME_ML = "volume_ml"
    AXIAL_LD_MM = "axial_ld_mm"
    AXIAL_SA_MM = "axial_sa_mm"
    AXIAL_SLICE = "axial_slice"
    AXIAL_LD_SEPARABLE_MM = "axial_ld_separable_mm"
    MAX_3D_DIAMETER_MM = "max_3d_diameter_mm"
    EQUIVALENT_DIAMETER_MM = "equivalent_diameter_mm"
    SURFACE_AREA_MM2 = "surface_area_mm2"
    SPHERICITY = "sphericity"
    CENTROID_X_MM = "centroid_x_mm"
    CENTROID_Y_MM = "centroid_y_mm"
    CENTROID_Z_MM = "centroid_z_mm"
    MEAN_HU = "mean_hu"
    STD_HU = "std_hu"
    BBOX_X_MIN, BBOX_X_MAX = "bbox_x_min", "bbox_x_max"
    BBOX_Y_MIN, BBOX_Y_MAX = "bbox_y_min", "bbox_y_max"
    BBOX_Z_MIN, BBOX_Z_MAX = "bbox_z_min", "bbox_z_max"
    CHANGES = ("lone", "new", "disappeared", "persistent", "merged", "split", "complex")


class LesionEdges:
    PATIENT_ID = PATIENT_ID
    TIMEPOINT_FROM = "timepoint_from"
    LESION_ID_FROM = "lesion_id_from"
    TIMEPOINT_TO = "timepoint_to"
    LESION_ID_TO = "lesion_id_to"
    OVERLAP = "overlap"
    DISTANCE_MM = "distance_mm"
    SKIP = "skip"
    DILATION_VOXELS = "dilation_voxels"


class Registrations:
    PATIENT_ID = PATIENT_ID
    TIMEPOINT_FROM = "timepoint_from"
    TIMEPOINT_TO = "timepoint_to"
    DRIVER = "driver"
    TRANSFORM = "transform"
    METRIC = "metric"
    METRIC_VALUE = "metric_value"
    LIVER_DICE_BEFORE = "liver_dice_before"
    LIVER_DICE_AFTER = "liver_dice_after"
    ITERATIONS = "iterations"
    TRANSLATION_MM = "translation_mm"
    ROTATION_DEG = "rotation_deg"
    QC_PASS = "qc_pass"
    FALLBACK = "fallback"
    NOTE = "note"
    AFFINE = tuple(f"affine_{r}{c}" for r in "xyz" for c in "xyz")  # A of q = A p + t, p: later visit
    AFFINE_T = tuple(f"affine_t{a}_mm" for a in "xyz")  # t (mm); q: earlier visit (LPS), row by row
    DRIVERS = ("liver_mask", "image")
    FALLBACKS = ("none", "centroid", "identity")


class Patterns:
    """``patterns.parquet``: one row per patient (metevo.patterns)."""

    PATIENT_ID = PATIENT_ID
    PATTERN = "pattern"
    PATTERN_ID = "pattern_id"
    CONFIDENCE = "confidence"
    N_VISITS = "n_visits"
    FOLLOWUP_DAYS = "followup_days"
    EXCLUDED_REASON = "excluded_reason"
    LANDMARK_DAYS = "landmark_days"
    HORIZON_DAYS = "horizon_days"
    METHOD = "method"
    REPRESENTATION = "representation"
    SURVIVAL_PATTERN = "survival_pattern"
    SURVIVAL_LANDMARK_DAYS = "survival_landmark_days"
    OWN_NADIR_RATIO = "own_nadir_ratio"


class PatternSelection:
    """``pattern_selection.parquet``: one row per number of patterns tried."""

    METHOD = "method"
    REPRESENTATION = "representation"
    K = "k"
    SILHOUETTE = "silhouette"
    CALINSKI_HARABASZ = "calinski_harabasz"
    BIC = "bic"
    INERTIA = "inertia"
    STABILITY_ARI_MEAN = "stability_ari_mean"
    STABILITY_ARI_LOW = "stability_ari_low"
    MIN_PATTERN_SIZE = "min_pattern_size"
    N_PATIENTS = "n_patients"
    SELECTED = "selected"
    LANDMARK_DAYS = "landmark_days"
    HORIZON_DAYS = "horizon_days"
    # latent-class model (method "lcmm"); empty for the clustering methods
    LOG_LIKELIHOOD = "log_likelihood"
    N_PARAMETERS = "n_parameters"
    AIC = "aic"
    SABIC = "sabic"
    RELATIVE_ENTROPY = "relative_entropy"
    ICL = "icl"
    APPA_MIN = "appa_min"
    SHARE_POSTERIOR_GE_0_7 = "share_posterior_ge_0_7"
    SHARE_POSTERIOR_GE_0_8 = "share_posterior_ge_0_8"
    SHARE_POSTERIOR_GE_0_9 = "share_posterior_ge_0_9"
    N_ITER = "n_iter"
    CONVERGED = "converged"
    # every method
    SMALLEST_CLASS_SHARE = "smallest_class_share"
    ELIGIBLE = "eligible"
    REASON = "reason"
    HORIZON_RULE = "horizon_rule"
    COLUMNS = (
        METHOD, REPRESENTATION, K, LOG_LIKELIHOOD, N_PARAMETERS, AIC, BIC, SABIC,
        RELATIVE_ENTROPY, ICL, APPA_MIN, SHARE_POSTERIOR_GE_0_7, SHARE_POSTERIOR_GE_0_8,
        SHARE_POSTERIOR_GE_0_9, N_ITER, CONVERGED, SILHOUETTE, CALINSKI_HARABASZ, INERTIA,
        STABILITY_ARI_MEAN, STABILITY_ARI_LOW, MIN_PATTERN_SIZE, SMALLEST_CLASS_SHARE,
        N_PATIENTS, ELIGIBLE, SELECTED, REASON, LANDMARK_DAYS, HORIZON_DAYS, HORIZON_RULE,
    )  # fmt: skip


class PatternSummary:
    """``pattern_summary.parquet``: one row per pattern, its course and the name check."""

    PATTERN_ID = "pattern_id"
    PATTERN = "pattern"
    N_PATIENTS = "n_patients"
    PROPORTION = "proportion"
    MEAN_CONFIDENCE = "mean_confidence"
    NADIR_RATIO = "nadir_ratio"
    TIME_TO_NADIR_DAYS = "time_to_nadir_days"
    REGROWTH_OVER_NADIR = "regrowth_over_nadir"
    FINAL_RATIO = "final_ratio"
    N_MEMBERS_NOT_RESPONDING = "n_members_not_responding"
    METHOD = "method"
    LANDMARK_DAYS = "landmark_days"
    HORIZON_DAYS = "horizon_days"


class PatternPosteriors:
    """``pattern_posteriors.parquet``: posterior probability of each pattern per patient."""

    PATIENT_ID = PATIENT_ID
    PATTERN_ID = "pattern_id"
    PATTERN = "pattern"
    POSTERIOR = "posterior"


class _Survival:  # columns shared by survival_km and survival_cox
    ENDPOINT = "endpoint"
    CI_LOWER, CI_UPPER = "ci_lower", "ci_upper"
    LANDMARK_DAYS = "landmark_days"
    N_EXCLUDED_LANDMARK = "n_excluded_landmark"
    ANALYSIS = "analysis"


class SurvivalKM(_Survival):
    """``survival_km.parquet``: Kaplan-Meier estimate per pattern and time (metevo.survival)."""

    GROUP = "group"
    TIME_DAYS = "time_days"
    SURVIVAL = "survival"
    AT_RISK = "at_risk"
    EVENTS = "events"
    CENSORED = "censored"
    LOGRANK_STATISTIC = "logrank_statistic"
    LOGRANK_P_VALUE = "logrank_p_value"


class SurvivalCox(_Survival):
    """``survival_cox.parquet``: one row per Cox model term (metevo.survival)."""

    MODEL = "model"
    TERM = "term"
    HAZARD_RATIO = "hazard_ratio"
    P_VALUE = "p_value"
    PH_TEST_P_VALUE = "ph_test_p_value"
    CONCORDANCE = "concordance"
    CONCORDANCE_IN_SAMPLE, CONCORDANCE_METHOD = "concordance_in_sample", "concordance_method"
    FITTED = "fitted"
    N_PATIENTS = "n_patients"
    N_EVENTS = "n_events"
    PENALIZER = "penalizer"
    PATTERN_ASSIGNMENT = "pattern_assignment"
    NOTE = "note"


class ResponseAssociation:
    """``response_association.parquet``: pattern x response crosstabs with tests (descriptive)."""

    VARIABLE = "variable"
    PATTERN = "pattern"
    LEVEL = "level"
    N = "n"
    ROW_FRACTION = "row_fraction"
    TEST = "test"
    STATISTIC = "statistic"
    P_VALUE = "p_value"
    P_ADJUSTED = "p_adjusted"
    CRAMERS_V = "cramers_v"
    SAME_MEASUREMENTS = "same_measurements"
    NOTE = "note"


class Recist:
    PATIENT_ID = PATIENT_ID
    TIMEPOINT = TIMEPOINT
    DATE = DATE
    DAYS = DAYS
    STUDY_DAY = STUDY_DAY
    SCOPE = "scope"
    EVALUABLE = "evaluable"
    NOT_EVALUABLE_REASON = "not_evaluable_reason"
    TARGET_SUM_MM = "target_sum_mm"
    PCT_CHANGE_BASELINE = "pct_change_baseline"
    PCT_CHANGE_NADIR = "pct_change_nadir"
    TARGET_RESPONSE = "target_response"
    TARGET_RESPONSE_MARGIN_MM = "target_response_margin_mm"
    NONTARGET_RESPONSE = "nontarget_response"
    NEW_LESIONS = "new_lesions"
    OVERALL_RESPONSE = "overall_response"
    CHOI_RESPONSE = "choi_response"
    COLUMNS = (
        PATIENT_ID, TIMEPOINT, DATE, DAYS, STUDY_DAY, SCOPE, EVALUABLE, NOT_EVALUABLE_REASON,
        TARGET_SUM_MM, PCT_CHANGE_BASELINE, PCT_CHANGE_NADIR, TARGET_RESPONSE,
        TARGET_RESPONSE_MARGIN_MM, NONTARGET_RESPONSE, NEW_LESIONS, OVERALL_RESPONSE,
        CHOI_RESPONSE,
    )


def recist_lesion_id(lesion_id: int, *, new_at: str | None = None) -> str:
    """``recist_lesions.lesion_id``: ``L<k>`` for baseline lesion ``k`` (its ``lesion_id`` in the
    lesions table), ``N<tp>:<k>`` for a new lesion first seen as lesion ``k`` at visit ``new_at``.
    """
    return f"L{int(lesion_id)}" if new_at is None else f"N{new_at}:{int(lesion_id)}"


def parse_recist_lesion_id(value: object) -> tuple[str | None, int] | None:
    """Inverse of :func:`recist_lesion_id`: ``(None, k)`` for ``L<k>``, ``(tp, k)`` for
    ``N<tp>:<k>``, None for any other value."""
    found = re.fullmatch(r"L([0-9]+)|N(.+):([0-9]+)", str(value))
    if found is None:
        return None
    if found.group(1) is not None:
        return None, int(found.group(1))
    return found.group(2), int(found.group(3))


class Patients:
    PATIENT_ID = PATIENT_ID
    MEASURABLE_AT_BASELINE = "measurable_at_baseline"
    BEST_RESPONSE = "best_response"
    BEST_RESPONSE_CONFIRMED = "best_response_confirmed"
    FIRST_PD_DATE = "first_pd_date"
    IMAGING_PFS_DAYS = "imaging_pfs_days"
    IMAGING_PFS_EVENT = "imaging_pfs_event"
    IMAGING_PFS_CENSOR_REASON = "imaging_pfs_censor_reason"
    DURATION_OF_RESPONSE_DAYS = "duration_of_response_days"
    ETS = "ets"
    DEPTH_OF_RESPONSE = "depth_of_response"
    TIME_TO_NADIR_DAYS = "time_to_nadir_days"
    TGK_MODEL = "tgk_model"
    TGK_G_PER_DAY = "tgk_g_per_day"
    TGK_D_PER_DAY = "tgk_d_per_day"
    TGK_STATUS = "tgk_status"
    TGR_PCT_PER_MONTH = "tgr_pct_per_month"
    EXCLUSION_REASON = "exclusion_reason"
    TGK_VOLUME_MODEL = "tgk_volume_model"
    TGK_VOLUME_G_PER_DAY = "tgk_volume_g_per_day"
    TGK_VOLUME_D_PER_DAY = "tgk_volume_d_per_day"
    TGK_VOLUME_STATUS = "tgk_volume_status"
    SCOPE = "scope"
    COLUMNS = (
        PATIENT_ID, MEASURABLE_AT_BASELINE, BEST_RESPONSE, BEST_RESPONSE_CONFIRMED,
        FIRST_PD_DATE, IMAGING_PFS_DAYS, IMAGING_PFS_EVENT, IMAGING_PFS_CENSOR_REASON,
        DURATION_OF_RESPONSE_DAYS, ETS, DEPTH_OF_RESPONSE, TIME_TO_NADIR_DAYS, TGK_MODEL,
        TGK_G_PER_DAY, TGK_D_PER_DAY, TGK_STATUS, TGR_PCT_PER_MONTH, EXCLUSION_REASON,
        TGK_VOLUME_MODEL, TGK_VOLUME_G_PER_DAY, TGK_VOLUME_D_PER_DAY, TGK_VOLUME_STATUS, SCOPE,
    )


class SegmentationLog:
    PATIENT_ID = PATIENT_ID
    TIMEPOINT = TIMEPOINT
    STATUS = "status"
    SECONDS = "seconds"
    LIVER_VOLUME_ML = "liver_volume_ml"
    LESION_VOLUME_ML = "lesion_volume_ml"
    ERROR = "error"
    STATUSES = ("computed", "reused", "failed")
    COLUMNS = (PATIENT_ID, TIMEPOINT, STATUS, SECONDS, LIVER_VOLUME_ML, LESION_VOLUME_ML, ERROR)


class SegmentationEval:
    PATIENT_ID = PATIENT_ID
    TIMEPOINT = TIMEPOINT
    STRUCTURE = "structure"
    DICE = "dice"
    REFERENCE_ML = "reference_ml"
    PREDICTED_ML = "predicted_ml"
    INTERSECTION_ML = "intersection_ml"
    VOLUME_ERROR_ML = "volume_error_ml"
    VOLUME_ERROR_PCT = "volume_error_pct"
    N_REFERENCE_LESIONS = "n_reference_lesions"
    N_PREDICTED_LESIONS = "n_predicted_lesions"
    N_DETECTED_LESIONS = "n_detected_lesions"
    PRECISION = "precision"
    RECALL = "recall"
    STRUCTURES = ("liver", "lesion")
    COLUMNS = (
        PATIENT_ID, TIMEPOINT, STRUCTURE, DICE, REFERENCE_ML, PREDICTED_ML, INTERSECTION_ML,
        VOLUME_ERROR_ML, VOLUME_ERROR_PCT, N_REFERENCE_LESIONS, N_PREDICTED_LESIONS,
        N_DETECTED_LESIONS, PRECISION, RECALL,
    )


class SegmentationEvalSummary:
    STRUCTURE = "structure"
    N_CASES = "n_cases"
    GLOBAL_DICE = "global_dice"
    MEAN_DICE = "mean_dice"
    PRECISION = "precision"
    RECALL = "recall"
    MEAN_ABS_VOLUME_ERROR_ML = "mean_abs_volume_error_ml"
    COLUMNS = (STRUCTURE, N_CASES, GLOBAL_DICE, MEAN_DICE, PRECISION, RECALL, MEAN_ABS_VOLUME_ERROR_ML)


class SegmentationEvalLesions:
    """Columns of ``segmentation_eval_lesions`` (one row per lesion and IoU threshold)."""

    PATIENT_ID = PATIENT_ID
    TIMEPOINT = TIMEPOINT
    SOURCE = "source"
    LESION = "lesion"
    IOU_THRESHOLD = "iou_threshold"
    VOLUME_ML = "volume_ml"
    DIAMETER_MM = "diameter_mm"
    SIZE_BIN = "size_bin"
    MATCHED = "matched"
    IOU = "iou"
    SOURCES = ("reference", "predicted")
    COLUMNS = (
        PATIENT_ID, TIMEPOINT, SOURCE, LESION, IOU_THRESHOLD, VOLUME_ML, DIAMETER_MM, SIZE_BIN,
        MATCHED, IOU,
    )  # fmt: skip


class SegmentationEvalDetection:
    """Columns of ``segmentation_eval_detection`` (per IoU threshold and size bin)."""

    IOU_THRESHOLD = "iou_threshold"
    SIZE_BIN = "size_bin"
    N_REFERENCE_LESIONS = "n_reference_lesions"
    N_DETECTED_LESIONS = "n_detected_lesions"
    RECALL = "recall"
    N_PREDICTED_LESIONS = "n_predicted_lesions"
    N_TRUE_POSITIVE_LESIONS = "n_true_positive_lesions"
    PRECISION = "precision"
    COLUMNS = (
        IOU_THRESHOLD, SIZE_BIN, N_REFERENCE_LESIONS, N_DETECTED_LESIONS, RECALL,
        N_PREDICTED_LESIONS, N_TRUE_POSITIVE_LESIONS, PRECISION,
    )  # fmt: skip


class GroundTruthScans:
    """``ground_truth/scans.parquet`` of the synthetic cohort (:mod:`metevo.datasets`)."""

    PATIENT_ID = PATIENT_ID
    TIMEPOINT = TIMEPOINT
    DATE = DATE
    DAYS = DAYS
    STUDY_DAY = STUDY_DAY
    INSTANCE_MASK = "instance_mask"
    LIVER_IN_FOV = "liver_in_fov"
    FOV_TRUNCATION = "fov_truncation"
    TRANSLATION_X_MM = "translation_x_mm"
    TRANSLATION_Y_MM = "translation_y_mm"
    TRANSLATION_Z_MM = "translation_z_mm"
    ROTATION_DEG = "rotation_deg"
    ROTATION_AXIS_X = "rotation_axis_x"
    ROTATION_AXIS_Y = "rotation_axis_y"
    ROTATION_AXIS_Z = "rotation_axis_z"
    WARP_MAX_MM = "warp_max_mm"
    NOISE_HU = "noise_hu"
    N_COMPONENTS = "n_components"


class GroundTruthLesions:
    """``ground_truth/lesions.parquet``: one row per true lesion x scan where it is visible."""

    PATIENT_ID = PATIENT_ID
    TIMEPOINT = TIMEPOINT
    DAYS = DAYS
    STUDY_DAY = STUDY_DAY
    TRUE_LESION_ID = "true_lesion_id"
    COMPONENT = "component"
    VOLUME_ML = "volume_ml"
    AXIAL_LD_MM = "axial_ld_mm"
    DIAMETER_MM = "diameter_mm"
    CENTROID_X_MM = "centroid_x_mm"
    CENTROID_Y_MM = "centroid_y_mm"
    CENTROID_Z_MM = "centroid_z_mm"
    N_VOXELS = "n_voxels"
    NEAREST_GAP_MM = "nearest_gap_mm"
    IS_NEW = "is_new"
    APPEARANCE = "appearance"
    ROLE = "role"


class GroundTruthEdges:
    """``ground_truth/edges.parquet``: the true lesion graph on instance-mask components."""

    PATIENT_ID = PATIENT_ID
    TIMEPOINT_FROM = "timepoint_from"
    COMPONENT_FROM = "component_from"
    TIMEPOINT_TO = "timepoint_to"
    COMPONENT_TO = "component_to"
    SKIP = "skip"


class GroundTruthPatients:
    """``ground_truth/patients.parquet``: planted pattern, kinetics and hard cases per patient."""

    PATIENT_ID = PATIENT_ID
    PATTERN = "pattern"
    D_PER_DAY = "d_per_day"
    G_PER_DAY = "g_per_day"
    N_VISITS = "n_visits"
    N_PLANNED_VISITS = "n_planned_visits"
    N_MISSED_VISITS = "n_missed_visits"
    N_TRUE_LESIONS = "n_true_lesions"
    HAS_RESECTION = "has_resection"
    HAS_MERGE = "has_merge"
    HAS_SPLIT = "has_split"
    HAS_NEW_LESION = "has_new_lesion"
    HAS_VANISH = "has_vanish"
    HAS_REAPPEARANCE = "has_reappearance"
    HAS_TRUNCATED_FOV = "has_truncated_fov"
    MIN_GAP_MM = "min_gap_mm"


class Radiomics:
    """``radiomics.parquet``: keys, then one column per row of ``metevo.feature_catalog()``
    (the feature names live in the catalogue, not here), then the note."""

    PATIENT_ID = PATIENT_ID
    TIMEPOINT = TIMEPOINT
    LESION_ID = LESION_ID
    NOTE = "radiomics_note"
    KEYS = (PATIENT_ID, TIMEPOINT, LESION_ID)


class Predictions:
    """``predictions.parquet``: one row per patient x visit x horizon x endpoint."""

    PATIENT_ID = PATIENT_ID
    TIMEPOINT = TIMEPOINT
    LANDMARK_DAYS = "landmark_days"
    HORIZON_DAYS = "horizon_days"
    ENDPOINT = "endpoint"
    RISK = "risk"
    RISK_LOWER = "risk_lower"
    RISK_UPPER = "risk_upper"
    STATIC_RISK = "static_risk"


class PredictionPerformance:
    """``prediction_performance.parquet``: one row per landmark x horizon x endpoint x model x
    metric (cross-validated)."""

    LANDMARK_DAYS = "landmark_days"
    HORIZON_DAYS = "horizon_days"
    ENDPOINT = "endpoint"
    SCOPE = "scope"
    MODEL = "model"
    METRIC = "metric"
    ESTIMATE = "estimate"
    CI_LOWER = "ci_lower"
    CI_UPPER = "ci_upper"
    N_AT_RISK = "n_at_risk"
    N_EVENTS = "n_events"


class PredictionCalibration:
    """``prediction_calibration.parquet``: one row per landmark x horizon x endpoint x decile."""

    LANDMARK_DAYS = "landmark_days"
    HORIZON_DAYS = "horizon_days"
    ENDPOINT = "endpoint"
    DECILE = "decile"
    N_PATIENTS = "n_patients"
    PREDICTED_RISK = "predicted_risk"
    OBSERVED_RISK = "observed_risk"


class FollowUp:
    """``follow_up.parquet``: one row per pattern x imaging schedule."""

    PATTERN = "pattern"
    SCHEDULE = "schedule"
    INTERVAL_DAYS = "interval_days"
    N_PATIENTS = "n_patients"
    N_PROGRESSIONS = "n_progressions"
    MEDIAN_DELAY_DAYS = "median_delay_days"
    MEDIAN_DELAY_CI_LOWER = "median_delay_ci_lower"
    MEDIAN_DELAY_CI_UPPER = "median_delay_ci_upper"
    P90_DELAY_DAYS = "p90_delay_days"
    P90_DELAY_CI_LOWER = "p90_delay_ci_lower"
    P90_DELAY_CI_UPPER = "p90_delay_ci_upper"
    SCANS_PER_YEAR = "scans_per_year"
    SCANS_PER_YEAR_CI_LOWER = "scans_per_year_ci_lower"
    SCANS_PER_YEAR_CI_UPPER = "scans_per_year_ci_upper"
    DETECTED_8W_SHARE = "detected_8w_share"
    DETECTED_8W_CI_LOWER = "detected_8w_ci_lower"
    DETECTED_8W_CI_UPPER = "detected_8w_ci_upper"
    EARLY_CALL_SHARE = "early_call_share"
    EARLY_CALL_CI_LOWER = "early_call_ci_lower"
    EARLY_CALL_CI_UPPER = "early_call_ci_upper"
    MEASUREMENT_CV = "measurement_cv"
    HORIZON_DAYS = "horizon_days"
