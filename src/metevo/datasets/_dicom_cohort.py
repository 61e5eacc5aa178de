"""Write a cohort's images as DICOM CT series and its masks as DICOM-SEG (highdicom).

For tests and demonstrations of the DICOM path (reading series + SEG, ``metevo export-dicom``):
each scan's CT becomes a folder of single-frame CT Image Storage files (uncompressed, int16
pixels with rescale slope 1 / intercept 0, so the HU round-trip exactly), and each mask a
DICOM-SEG on that series (one segment). UIDs are derived from a fixed root and the patient /
timepoint so that writing twice gives the same files. One frame of reference per scan, one
study per patient.

The SEGs list their frames in highdicom's order (from the last slice of the series to the first
for a series stored feet to head), which exercises the reader's frame placement.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk

__all__ = ["write_dicom_cohort"]

_ROOT = "1.2.826.0.1.3680043.10.1474."  # metevo test-data UID root (pydicom-style)


def _uid(*parts: str) -> str:
    digest = int(hashlib.sha256("/".join(parts).encode()).hexdigest(), 16)
    return (_ROOT + str(digest))[:64]


def _ds(value: float):
    """A Decimal String with as many digits as its 16 characters hold (PS3.5 6.2)."""
    from pydicom.valuerep import DS

    return DS(float(value), auto_format=True)


def write_dicom_cohort(
    manifest: str | Path | pd.DataFrame,
    out_dir: str | Path,
    *,
    lesion_label: int | None = None,
    liver_label: int | None = None,
) -> Path:
    """Convert a manifest's scans to DICOM series and its masks to DICOM-SEG.

    Parameters
    ----------
    manifest
        A manifest (path or DataFrame with absolute paths) whose images are files on one grid with
        their masks.
    out_dir
        Output folder: ``<patient>/<timepoint>/ct/`` (one file per slice), ``lesions.dcm``,
        ``liver.dcm``, and ``manifest.csv`` pointing at them (other columns kept).
    lesion_label, liver_label
        Class of the lesion / liver in multi-class masks (None: any non-zero voxel).

    Returns
    -------
    Path
        The new manifest.

    Examples
    --------
    >>> from metevo.datasets import make_synthetic_cohort  # doctest: +SKIP
    >>> demo = make_synthetic_cohort("syn", n_patients=2)  # doctest: +SKIP
    >>> write_dicom_cohort(demo.manifest, "syn_dicom")     # doctest: +SKIP
    """
    import pydicom  # noqa: F401  (highdicom's dependency; fail early with its name)

    out = Path(out_dir)
    if isinstance(manifest, pd.DataFrame):
        table, base = manifest.copy(), Path.cwd()
    else:
        path = Path(manifest)
        table = pd.read_csv(path) if path.suffix != ".parquet" else pd.read_parquet(path)
        base = path.parent
    rows = []
    for rec in table.to_dict("records"):
        pid, tp = str(rec["patient_id"]), str(rec["timepoint"])
        folder = out / pid / tp
        ct = sitk.ReadImage(str(base / rec["image"]))
        date = pd.Timestamp(rec["date"]).date() if "date" in rec and pd.notna(rec["date"]) else None
        datasets = _write_series(ct, folder / "ct", pid, tp, date)
        new = dict(rec)
        new["image"] = str((folder / "ct").resolve())
        for column, name, label in (("lesion_mask", "lesions", lesion_label), ("liver_mask", "liver", liver_label)):
            value = rec.get(column)
            if value is None or (isinstance(value, float) and np.isnan(value)):
                continue
            mask = sitk.GetArrayFromImage(sitk.ReadImage(str(base / value)))
            mask = mask == label if label is not None else mask != 0
            seg_path = folder / f"{name}.dcm"
            _write_seg(datasets, mask, seg_path, name, pid, tp)
            new[column] = str(seg_path.resolve())
        rows.append(new)
    out.mkdir(parents=True, exist_ok=True)
    new_manifest = out / "manifest.csv"
    pd.DataFrame(rows).to_csv(new_manifest, index=False)
    return new_manifest


def _write_series(ct: sitk.Image, folder: Path, pid: str, tp: str, date: dt.date | None) -> list:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

    folder.mkdir(parents=True, exist_ok=True)
    arr = sitk.GetArrayFromImage(ct)
    if arr.min() < -32768 or arr.max() > 32767:
        raise ValueError(f"patient {pid} timepoint {tp}: HU outside int16; cannot write as DICOM.")
    arr = np.rint(arr).astype(np.int16)
    direction = np.asarray(ct.GetDirection()).reshape(3, 3)
    spacing = ct.GetSpacing()
    study, series, frame = _uid(pid, "study"), _uid(pid, tp, "series"), _uid(pid, tp, "frame")
    day = (date or dt.date(2000, 1, 1)).strftime("%Y%m%d")
    datasets = []
    for k in range(arr.shape[0]):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = _uid(pid, tp, "slice", str(k))
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.PatientID, ds.PatientName, ds.PatientBirthDate, ds.PatientSex = pid, f"{pid}^", "", "O"
        ds.StudyID, ds.AccessionNumber, ds.ReferringPhysicianName = pid[:16], "", ""
        ds.StudyDate = ds.SeriesDate = ds.ContentDate = day
        ds.StudyTime = ds.SeriesTime = ds.ContentTime = "120000"
        ds.Modality, ds.Manufacturer, ds.SeriesNumber, ds.InstanceNumber = "CT", "metevo", 1, k + 1
        ds.SeriesDescription = f"{tp} CT"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.PositionReferenceIndicator, ds.KVP, ds.PatientPosition = "", 120, "FFS"
        ds.Laterality, ds.AcquisitionNumber = "", 1
        ds.ImagePositionPatient = [_ds(v) for v in ct.TransformIndexToPhysicalPoint((0, 0, k))]
        ds.ImageOrientationPatient = [_ds(v) for v in (*direction[:, 0], *direction[:, 1])]
        ds.PixelSpacing = [_ds(spacing[1]), _ds(spacing[0])]
        ds.SliceThickness = _ds(spacing[2])
        ds.Rows, ds.Columns = arr.shape[1], arr.shape[2]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = "0", "1", "HU"
        ds.PixelData = arr[k].tobytes()
        ds.save_as(folder / f"slice_{k:04d}.dcm", enforce_file_format=True)
        datasets.append(ds)
    return datasets


def _write_seg(datasets: list, mask: np.ndarray, path: Path, name: str, pid: str, tp: str) -> None:
    import highdicom as hd
    from pydicom.sr.codedict import codes

    prop = (
        (codes.SCT.Tissue, codes.SCT.Liver)
        if name == "liver"
        else (codes.SCT.MorphologicallyAbnormalStructure, codes.SCT.Neoplasm)
    )
    description = hd.seg.SegmentDescription(
        segment_number=1,
        segment_label=name,
        segmented_property_category=prop[0],
        segmented_property_type=prop[1],
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
    )
    seg = hd.seg.Segmentation(
        source_images=datasets,
        pixel_array=mask.astype(np.uint8),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[description],
        series_instance_uid=_uid(pid, tp, name, "series"),
        series_number=2 if name == "lesions" else 3,
        sop_instance_uid=_uid(pid, tp, name, "sop"),
        instance_number=1,
        manufacturer="metevo",
        manufacturer_model_name="write_dicom_cohort",
        software_versions="test data",
        device_serial_number="0",
        omit_empty_frames=False,
    )
    seg.save_as(path)
