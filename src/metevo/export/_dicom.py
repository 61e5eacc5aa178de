"""DICOM SEG + SR (TID 1500) export of an analysed cohort whose images are DICOM series.

Per patient and visit, next to nothing but the source series:

- ``<patient>/<timepoint>/seg.dcm``: a DICOM Segmentation (binary) on the source CT series, one
  segment per lesion (label ``lesion <lesion_id> track <track_id>``, TrackingID = the track,
  TrackingUID constant for the track across visits) plus the liver when the manifest has one;
- ``<patient>/<timepoint>/sr.dcm``: a Comprehensive 3D SR holding a TID 1500 Measurement Report;
  one TID 1411 volumetric measurement group per lesion (referencing its SEG segment) with volume
  (SCT 118565006, mL), axial longest diameter (SCT 103339001, mm), axial short-axis diameter
  (SCT 103340004, mm), mean attenuation (DCM 112031 "Attenuation Coefficient" mean, HU),
  the same tracking identifier and UID as the SEG segment (DCM 112039 / 112040), and the RECIST
  1.1 role (DCM 112016 "Baseline Category" = 112074 target / 112075 non-target lesion at
  baseline, along the track; a new lesion: local "new_lesion" = SCT "Yes"); one TID 1501 group
  for the visit with the target sum (mm), the overall response (DCM 112048 "Current Response",
  NCIt values), the target and non-target responses (DCM CID 6144 values) and new lesions (SCT
  Yes/No/Equivocal); "not evaluable" is NCIt C62222. The observer is a device (``metevo`` +
  version). Only concepts without a standard code use the local scheme ``99METEVO``; they are
  listed in ``docs/dicom_export.md``.

The lesion voxels are labelled again from the scan's masks with the graph stage's labelling
options; every lesion's voxel count is checked against the ``lesions`` table, so the SEG shows
exactly the lesions whose numbers the SR reports.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk

from metevo._version import __version__
from metevo.cohort import Cohort, Scan
from metevo.columns import Lesions as L
from metevo.columns import Recist as R
from metevo.columns import parse_recist_lesion_id
from metevo.exceptions import CohortError, MissingDependencyError

__all__ = ["METEVO_SCHEME", "export_dicom", "tracking_uid"]

METEVO_SCHEME = "99METEVO"  # local coding scheme (PS3.16 8.2: designators starting with 99)
_UID_ROOT = "1.2.826.0.1.3680043.10.1474.2."


def tracking_uid(patient_id: str, track_id: int | str) -> str:
    """The TrackingUID of a track: the same for every visit (and every export) of that track."""
    digest = int(hashlib.sha256(f"{patient_id}/track/{track_id}".encode()).hexdigest(), 16)
    return (_UID_ROOT + str(digest))[:64]


def export_dicom(
    cohort: Cohort,
    analysis_dir: str | Path,
    out_dir: str | Path,
    *,
    patients: Iterable[str] | None = None,
    label_options: Mapping[str, object] | None = None,
) -> pd.DataFrame:
    """Write one DICOM SEG and one DICOM SR per visit for an analysed cohort.

    Parameters
    ----------
    cohort
        The cohort that was analysed (:func:`metevo.open_cohort`); its images must be DICOM
        series folders (the SEG and SR reference their instances).
    analysis_dir
        Folder written by :func:`metevo.analyze` (``lesions.parquet``, ``recist.parquet``,
        ``recist_lesions.parquet``).
    out_dir
        Output folder: ``<patient_id>/<timepoint>/seg.dcm`` and ``sr.dcm``.
    patients
        Patients to export (default: every patient in ``lesions.parquet``).
    label_options
        The graph stage's labelling options if the analysis changed them (``connectivity``,
        ``min_voxels``, ``min_diameter_mm``, ``liver_margin_mm``).

    Returns
    -------
    pandas.DataFrame
        One row per written visit: ``patient_id``, ``timepoint``, ``seg_path``, ``sr_path``,
        ``n_lesions``.

    Raises
    ------
    CohortError
        A scan's image is not a DICOM series folder, or the lesions labelled again differ from
        the ``lesions`` table (the analysis used other labelling options or other masks).
    """
    try:
        import highdicom  # noqa: F401
        import pydicom  # noqa: F401
    except ImportError as exc:  # pragma: no cover - core dependencies
        raise MissingDependencyError("DICOM export needs highdicom and pydicom.") from exc
    analysis = Path(analysis_dir)
    lesions = pd.read_parquet(analysis / "lesions.parquet")
    recist = _optional(analysis / "recist.parquet")
    roles = _optional(analysis / "recist_lesions.parquet")
    wanted = sorted(lesions[L.PATIENT_ID].astype(str).unique()) if patients is None else list(patients)
    out = Path(out_dir)
    written = []
    for pid in wanted:
        patient = cohort[pid]
        mine = lesions[lesions[L.PATIENT_ID].astype(str) == pid]
        role_of = _roles(mine, roles[roles[R.PATIENT_ID] == pid] if roles is not None else None)
        for scan in patient:
            visit = recist[(recist[R.PATIENT_ID] == pid) & (recist[R.TIMEPOINT] == scan.timepoint)] if recist is not None else None
            rows = mine[mine[L.TIMEPOINT] == scan.timepoint].sort_values(L.LESION_ID)
            written.append(
                _export_scan(patient, scan, rows, visit, role_of, out / pid / scan.timepoint, label_options or {})
            )
    return pd.DataFrame(written)


def _optional(path: Path) -> pd.DataFrame | None:
    return pd.read_parquet(path) if path.exists() else None


def _roles(lesions: pd.DataFrame, recist_lesions: pd.DataFrame | None) -> dict[int, str]:
    """RECIST role per track: a baseline lesion's role spreads to its track; new lesions: new."""
    if recist_lesions is None or recist_lesions.empty:
        return {}
    track = {
        (tp, int(lid)): int(tr)
        for tp, lid, tr in zip(lesions[L.TIMEPOINT], lesions[L.LESION_ID], lesions[L.TRACK_ID], strict=True)
    }
    first = recist_lesions.drop_duplicates("lesion_id")
    baseline_tp = recist_lesions[R.TIMEPOINT].iloc[0]
    out: dict[int, str] = {}
    for rid, role in zip(first["lesion_id"], first["role"], strict=True):
        parsed = parse_recist_lesion_id(rid)
        if parsed is None:
            continue
        key = (parsed[0] or baseline_tp, parsed[1])
        if key in track:
            out.setdefault(track[key], str(role))
    return out


def _source_datasets(scan: Scan) -> list:
    import pydicom

    folder = Path(scan.image_path)
    if not folder.is_dir():
        raise CohortError(
            f"patient {scan.patient_id} timepoint {scan.timepoint}: image {folder} is not a DICOM "
            "series folder; DICOM SEG/SR export needs the images as DICOM series (convert them, "
            "e.g. with metevo.datasets.write_dicom_cohort, and analyse that manifest)."
        )
    datasets = []
    for f in sorted(folder.iterdir()):
        if f.is_file():
            try:
                ds = pydicom.dcmread(f)
            except Exception:  # not a DICOM file (README, thumbs): skip it
                continue
            if "ImagePositionPatient" in ds:
                datasets.append(ds)
    for ds in datasets[:1]:
        missing = [k for k in _REQUIRED_UIDS if not str(ds.get(k, "") or "").strip()]
        if missing:
            raise CohortError(
                f"patient {scan.patient_id} timepoint {scan.timepoint}: the DICOM series in {folder} "
                f"has empty {', '.join(missing)} (found in {ds.filename}); a SEG/SR must reference "
                "the series by these UIDs, so it cannot be exported. Use the series as archived "
                "(before anonymisation removed the UIDs) or re-identify it with new UIDs."
            )
    return datasets


_REQUIRED_UIDS = (
    "SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID",
)


def _instances(scan: Scan, options: Mapping[str, object]) -> tuple[sitk.Image, sitk.Image | None]:
    from metevo.tracking import label_lesions

    liver = scan.liver_mask()
    inst = label_lesions(
        scan.lesion_mask(), liver, kind=scan.lesion_mask_kind, context=scan.context, **options
    )
    return inst, liver


def _export_scan(patient, scan, rows, visit, role_of, folder, options) -> dict:
    datasets = _source_datasets(scan)
    image = scan.image()
    inst, liver = _instances(scan, options)
    labels = sitk.GetArrayViewFromImage(inst)
    voxel_ml = float(np.prod(inst.GetSpacing())) / 1000.0
    ids = [int(v) for v in rows[L.LESION_ID]]
    counts = np.bincount(labels.ravel(), minlength=max(ids, default=0) + 1)
    for lid, n in zip(ids, rows[L.N_VOXELS], strict=True):
        if counts[lid] != int(n):
            raise CohortError(
                f"patient {scan.patient_id} timepoint {scan.timepoint}: lesion {lid} has "
                f"{counts[lid]} voxels when labelled again but {int(n)} in lesions.parquet; the "
                "analysis used other labelling options (pass label_options) or other masks."
            )
    # source slices in file order -> k index on the image grid (by position, never by order)
    ks = [image.TransformPhysicalPointToIndex([float(v) for v in ds.ImagePositionPatient])[2] for ds in datasets]
    folder.mkdir(parents=True, exist_ok=True)
    seg, descriptions = _write_seg(scan, datasets, ks, labels, liver, rows, folder / "seg.dcm")
    _write_sr(scan, datasets, seg, rows, visit, role_of, voxel_ml, folder / "sr.dcm", descriptions)
    return {
        L.PATIENT_ID: scan.patient_id,
        L.TIMEPOINT: scan.timepoint,
        "seg_path": str(folder / "seg.dcm"),
        "sr_path": str(folder / "sr.dcm"),
        "n_lesions": len(rows),
    }


def _uid(*parts: str) -> str:
    digest = int(hashlib.sha256("/".join(parts).encode()).hexdigest(), 16)
    return (_UID_ROOT + str(digest))[:64]


def _write_seg(scan, datasets, ks, labels, liver, rows, path):
    import highdicom as hd
    from pydicom.sr.codedict import codes

    algorithm = hd.AlgorithmIdentificationSequence(
        name="metevo", version=__version__, family=codes.DCM.ArtificialIntelligence
    )
    descriptions, planes = [], []
    for number, (lid, tid) in enumerate(zip(rows[L.LESION_ID], rows[L.TRACK_ID], strict=True), start=1):
        descriptions.append(
            hd.seg.SegmentDescription(
                segment_number=number,
                segment_label=f"lesion {int(lid)} track {int(tid)}",
                segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
                segmented_property_type=codes.SCT.Neoplasm,
                algorithm_type=hd.seg.SegmentAlgorithmTypeValues.SEMIAUTOMATIC,
                algorithm_identification=algorithm,
                tracking_id=f"track {int(tid)}",
                tracking_uid=tracking_uid(scan.patient_id, int(tid)),
                anatomic_regions=[codes.SCT.Liver],
            )
        )
        planes.append(labels == int(lid))
    if liver is not None:
        descriptions.append(
            hd.seg.SegmentDescription(
                segment_number=len(descriptions) + 1,
                segment_label="liver",
                segmented_property_category=codes.SCT.Organ,
                segmented_property_type=codes.SCT.Liver,
                algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
            )
        )
        planes.append(sitk.GetArrayViewFromImage(liver) != 0)
    if not planes:  # a visit without lesion and liver: an empty lesion segment keeps the SEG valid
        descriptions.append(
            hd.seg.SegmentDescription(
                segment_number=1, segment_label="no lesion",
                segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
                segmented_property_type=codes.SCT.Neoplasm,
                algorithm_type=hd.seg.SegmentAlgorithmTypeValues.SEMIAUTOMATIC,
                algorithm_identification=algorithm,
            )
        )
        planes.append(np.zeros_like(labels, dtype=bool))
    stack = np.stack(planes, axis=-1)[ks]  # (frames in source order, rows, cols, segments)
    seg = hd.seg.Segmentation(
        source_images=datasets,
        pixel_array=stack.astype(np.uint8),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=_uid(scan.patient_id, scan.timepoint, "seg-series"),
        series_number=901,
        sop_instance_uid=_uid(scan.patient_id, scan.timepoint, "seg"),
        instance_number=1,
        manufacturer="metevo",
        manufacturer_model_name="metevo",
        software_versions=__version__,
        device_serial_number="0",
        series_description="metevo lesions",
    )
    seg.save_as(path)
    return seg, descriptions


def _code(value: str, scheme: str, meaning: str):
    import highdicom as hd

    return hd.sr.CodedConcept(value=value, scheme_designator=scheme, meaning=meaning)


# Coded concepts of the RECIST role and responses: (value, scheme, meaning). Standard codes where
# DICOM PS3.16 or NCIt has one; the local scheme 99METEVO only where none exists (docs/dicom_export.md).
NCIT_NE = ("C62222", "NCIt", "Not Evaluable")
#: A lesion's RECIST 1.1 category at baseline (DCM 112016, CID 6145), kept along its track.
BASELINE_CATEGORY = ("112016", "DCM", "Baseline Category")
ROLES = {
    "target": ("112074", "DCM", "Target Lesion at Baseline"),
    "non-target": ("112075", "DCM", "Non-Target Lesion at Baseline"),
}
#: A new lesion (RECIST 1.1 section 4.3.2): PS3.16 has no concept; value SCT 373066001 "Yes".
NEW_LESION = ("new_lesion", METEVO_SCHEME, "RECIST 1.1 new lesion")
YES, NO = ("373066001", "SCT", "Yes"), ("373067005", "SCT", "No")
#: Concept names of the visit's responses: the overall response is DCM 112048 "Current Response";
#: PS3.16 has no names for the target / non-target / new-lesion parts (their values are DCM CID
#: 6144 and SCT codes).
RESPONSE_NAMES = {
    R.TARGET_RESPONSE: ("target_resp", METEVO_SCHEME, "RECIST 1.1 target lesion response"),
    R.NONTARGET_RESPONSE: ("nontarget_resp", METEVO_SCHEME, "RECIST 1.1 non-target lesion response"),
    R.NEW_LESIONS: ("new_lesions", METEVO_SCHEME, "RECIST 1.1 new lesions"),
    R.OVERALL_RESPONSE: ("112048", "DCM", "Current Response"),
}
#: Values per response column (metevo's value -> code): DCM CID 6144 "RECIST Defined Lesion
#: Response" for the target and non-target parts, NCIt for the overall response and "not evaluable".
RESPONSE_VALUES = {
    R.TARGET_RESPONSE: {
        "CR": ("112041", "DCM", "Target Lesion Complete Response"),
        "PR": ("112042", "DCM", "Target Lesion Partial Response"),
        "PD": ("112043", "DCM", "Target Lesion Progressive Disease"),
        "SD": ("112044", "DCM", "Target Lesion Stable Disease"),
        "NE": NCIT_NE,
    },
    R.NONTARGET_RESPONSE: {
        "CR": ("112045", "DCM", "Non-Target Lesion Complete Response"),
        "NON-CR/NON-PD": ("112046", "DCM", "Non-Target Lesion Incomplete Response or Stable Disease"),
        "PD": ("112047", "DCM", "Non-Target Lesion Progressive Disease"),
        "NE": NCIT_NE,
    },
    R.NEW_LESIONS: {"Y": YES, "N": NO, "EQUIVOCAL": ("42425007", "SCT", "Equivocal"), "NE": NCIT_NE},
    R.OVERALL_RESPONSE: {
        "CR": ("C4870", "NCIt", "Complete Response"),
        "PR": ("C18058", "NCIt", "Partial Response"),
        "SD": ("C18213", "NCIt", "Stable Disease"),
        "PD": ("C35571", "NCIt", "Progressive Disease"),
        "NE": NCIT_NE,
    },
}
#: Sum of the target lesions' diameters (RECIST 1.1 section 4.3.1): no standard concept.
TARGET_SUM = ("target_sum_mm", METEVO_SCHEME, "Sum of target lesion diameters")


def _response_value(column: str, value: str, context: str):
    codes = RESPONSE_VALUES[column]
    if value not in codes:
        raise ValueError(f"{context}: {column} {value!r} has no code; expected one of {sorted(codes)}.")
    return _code(*codes[value])


def _write_sr(scan, datasets, seg, rows, visit, role_of, voxel_ml, path, descriptions):
    import highdicom as hd
    from pydicom.sr.codedict import codes

    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=_uid("metevo", __version__), name="metevo", manufacturer_name="metevo",
            model_name=f"metevo {__version__}",
        ),
    )
    context = hd.sr.ObservationContext(observer_device_context=observer)
    source_series = hd.sr.SourceSeriesForSegmentation(datasets[0].SeriesInstanceUID)
    groups = []
    hu = hd.sr.CodedConcept("[hnsf'U]", "UCUM", "Hounsfield unit")
    ml = hd.sr.CodedConcept("ml", "UCUM", "milliliter")
    for number, row in enumerate(rows.itertuples(index=False), start=1):
        rec = row._asdict()
        tid = int(rec[L.TRACK_ID])
        tracking = hd.sr.TrackingIdentifier(
            uid=tracking_uid(scan.patient_id, tid), identifier=f"track {tid}"
        )
        measurements = [
            hd.sr.Measurement(name=codes.SCT.Volume, value=float(rec[L.VOLUME_ML]), unit=ml),
            hd.sr.Measurement(name=codes.SCT.LongAxis, value=float(rec[L.AXIAL_LD_MM]), unit=codes.UCUM.Millimeter),
            hd.sr.Measurement(name=codes.SCT.ShortAxis, value=float(rec[L.AXIAL_SA_MM]), unit=codes.UCUM.Millimeter),
        ]
        if pd.notna(rec[L.MEAN_HU]):
            measurements.append(
                hd.sr.Measurement(
                    name=codes.DCM.AttenuationCoefficient, value=float(rec[L.MEAN_HU]), unit=hu,
                    derivation=codes.SCT.Mean,
                )
            )
        evaluations = []
        role = role_of.get(tid)
        if role in ROLES:
            evaluations.append(
                hd.sr.QualitativeEvaluation(name=_code(*BASELINE_CATEGORY), value=_code(*ROLES[role]))
            )
        elif role == "new":
            evaluations.append(hd.sr.QualitativeEvaluation(name=_code(*NEW_LESION), value=_code(*YES)))
        groups.append(
            hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
                tracking_identifier=tracking,
                referenced_segment=hd.sr.ReferencedSegment(
                    sop_class_uid=seg.SOPClassUID, sop_instance_uid=seg.SOPInstanceUID,
                    segment_number=number, source_series=source_series,
                ),
                finding_type=codes.SCT.Neoplasm,
                finding_sites=[hd.sr.FindingSite(codes.SCT.Liver)],
                measurements=measurements,
                qualitative_evaluations=evaluations or None,
            )
        )
    if visit is not None and len(visit):
        v = visit.iloc[0]
        measurements = []
        if pd.notna(v[R.TARGET_SUM_MM]):
            measurements.append(
                hd.sr.Measurement(name=_code(*TARGET_SUM), value=float(v[R.TARGET_SUM_MM]), unit=codes.UCUM.Millimeter)
            )
        where = f"patient {scan.patient_id} visit {scan.timepoint}"
        evaluations = [
            hd.sr.QualitativeEvaluation(
                name=_code(*RESPONSE_NAMES[col]), value=_response_value(col, str(v[col]), where)
            )
            for col in RESPONSE_NAMES
            if v[col] is not None and pd.notna(v[col])
        ]
        groups.append(
            hd.sr.MeasurementsAndQualitativeEvaluations(
                tracking_identifier=hd.sr.TrackingIdentifier(
                    uid=_uid(scan.patient_id, scan.timepoint, "visit"), identifier=f"visit {scan.timepoint}"
                ),
                measurements=measurements or None,
                qualitative_evaluations=evaluations or None,
            )
        )
    report = hd.sr.MeasurementReport(
        observation_context=context,
        procedure_reported=codes.LN.CTUnspecifiedBodyRegion,
        imaging_measurements=groups or None,
    )
    sr = hd.sr.Comprehensive3DSR(
        evidence=[*datasets, seg],
        content=report,
        series_instance_uid=_uid(scan.patient_id, scan.timepoint, "sr-series"),
        series_number=902,
        sop_instance_uid=_uid(scan.patient_id, scan.timepoint, "sr"),
        instance_number=1,
        manufacturer="metevo",
        is_complete=True,
        record_evidence=True,
        series_description="metevo measurements",
    )
    sr.save_as(path)
