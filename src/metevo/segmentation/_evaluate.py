"""Evaluation of predicted masks against reference masks (Dice, lesion detection, volumes).

Lesion detection follows the LiTS evaluation (Bilic et al., Med Image Anal 2023, section 3.2):
a reference lesion counts as detected when a predicted lesion overlaps it with IoU >= 0.5
(one-to-one, greedy by IoU); precision = detected / predicted lesions, recall = detected /
reference lesions. Lesions are 26-connected components of a binary mask, or the labels of an
instance mask.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from metevo.columns import Manifest
from metevo.columns import SegmentationEval as E
from metevo.columns import SegmentationEvalLesions as DetectionLesions
from metevo.columns import SegmentationEvalSummary as S
from metevo.exceptions import ManifestError
from metevo.segmentation._detection import lesion_detection

__all__ = ["dice", "evaluate", "evaluation_summary", "match_lesions"]


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice coefficient of two boolean arrays; 1.0 when both are empty."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int(np.logical_and(a, b).sum()) / total


def _instances(mask: np.ndarray, *, already_labelled: bool) -> np.ndarray:
    if already_labelled:
        return np.asarray(mask, dtype=np.int64)
    from scipy import ndimage  # imported here: a rerun with nothing to do never labels

    labels, _ = ndimage.label(np.asarray(mask) != 0, structure=np.ones((3, 3, 3), bool))
    return labels


def match_lesions(
    reference: np.ndarray, predicted: np.ndarray, *, iou_threshold: float = 0.5
) -> tuple[int, int, int]:
    """One-to-one greedy matching of lesion instances by IoU.

    Parameters
    ----------
    reference, predicted : integer arrays of the same shape
        Instance labels (0 = background).

    Returns
    -------
    (n_reference, n_predicted, n_detected)
    """
    ref = np.asarray(reference, dtype=np.int64).ravel()
    pred = np.asarray(predicted, dtype=np.int64).ravel()
    ref_ids = np.unique(ref[ref > 0])
    pred_ids = np.unique(pred[pred > 0])
    if ref_ids.size == 0 or pred_ids.size == 0:
        return int(ref_ids.size), int(pred_ids.size), 0
    ref_size = dict(zip(*np.unique(ref[ref > 0], return_counts=True), strict=True))
    pred_size = dict(zip(*np.unique(pred[pred > 0], return_counts=True), strict=True))
    both = (ref > 0) & (pred > 0)
    pairs, inter = np.unique(np.stack([ref[both], pred[both]]), axis=1, return_counts=True)
    candidates = []
    for (r, p), n in zip(pairs.T, inter, strict=True):
        iou = n / (ref_size[r] + pred_size[p] - n)
        if iou >= iou_threshold:
            candidates.append((iou, int(r), int(p)))
    used_r: set[int] = set()
    used_p: set[int] = set()
    for _, r, p in sorted(candidates, reverse=True):
        if r not in used_r and p not in used_p:
            used_r.add(r)
            used_p.add(p)
    return int(ref_ids.size), int(pred_ids.size), len(used_r)


def case_metrics(
    reference: np.ndarray,
    predicted: np.ndarray,
    voxel_ml: float,
    *,
    lesions: bool,
    reference_is_instances: bool = False,
    iou_threshold: float = 0.5,
) -> dict[str, Any]:
    """Metrics of one structure in one scan (a row of the ``segmentation_eval`` table)."""
    ref = np.asarray(reference) != 0
    pred = np.asarray(predicted) != 0
    ref_ml = float(ref.sum()) * voxel_ml
    pred_ml = float(pred.sum()) * voxel_ml
    row: dict[str, Any] = {
        E.DICE: dice(ref, pred),
        E.REFERENCE_ML: ref_ml,
        E.PREDICTED_ML: pred_ml,
        E.INTERSECTION_ML: float(np.logical_and(ref, pred).sum()) * voxel_ml,
        E.VOLUME_ERROR_ML: pred_ml - ref_ml,
        E.VOLUME_ERROR_PCT: 100.0 * (pred_ml - ref_ml) / ref_ml if ref_ml > 0 else np.nan,
        E.N_REFERENCE_LESIONS: pd.NA,
        E.N_PREDICTED_LESIONS: pd.NA,
        E.N_DETECTED_LESIONS: pd.NA,
        E.PRECISION: np.nan,
        E.RECALL: np.nan,
    }
    if lesions:
        n_ref, n_pred, n_det = match_lesions(
            _instances(reference, already_labelled=reference_is_instances),
            _instances(predicted, already_labelled=False),
            iou_threshold=iou_threshold,
        )
        row.update(
            {
                E.N_REFERENCE_LESIONS: n_ref,
                E.N_PREDICTED_LESIONS: n_pred,
                E.N_DETECTED_LESIONS: n_det,
                E.PRECISION: n_det / n_pred if n_pred else np.nan,
                E.RECALL: n_det / n_ref if n_ref else np.nan,
            }
        )
    return row


def _read_pred_manifest(
    manifest: str | Path | pd.DataFrame, base_dir: str | Path | None
) -> tuple[pd.DataFrame, Path, str]:
    if isinstance(manifest, pd.DataFrame):
        return manifest.copy(), Path(base_dir or Path.cwd()), "(DataFrame)"
    path = Path(manifest)
    if not path.is_file():
        raise FileNotFoundError(f"manifest {path} does not exist.")
    table = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, dtype=str)
    return table, path.parent, str(path)


def evaluate(
    pred_manifest: str | Path | pd.DataFrame,
    ref_manifest: str | Path | pd.DataFrame,
    *,
    iou_threshold: float = 0.5,
    base_dir: str | Path | None = None,
    per_lesion: bool = False,
    **cohort_options: Any,
) -> pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame]:
    """Compare predicted liver and lesion masks with reference masks, scan by scan.

    Parameters
    ----------
    pred_manifest : path or DataFrame
        Manifest of the predictions (e.g. the one :func:`segment` wrote): ``patient_id``,
        ``timepoint``, ``lesion_mask``, ``liver_mask`` (binary masks). Rows with empty mask
        paths (failed scans) are skipped.
    ref_manifest : path or DataFrame
        Reference cohort manifest; read with :func:`metevo.open_cohort` and
        ``**cohort_options`` (``lesion_mask_kind``, ``lesion_label``, ``liver_label``...), so
        reference lesions may be binary (lesions = connected components) or instance labels.
    iou_threshold : float
        IoU at which a reference lesion counts as detected (LiTS: 0.5).
    per_lesion : bool
        Also return the ``segmentation_eval_lesions`` table.

    Returns
    -------
    pandas.DataFrame
        The ``segmentation_eval`` table: one row per scan and structure (``liver``, ``lesion``)
        with ``dice``, volumes in ml, volume error, and for lesions the detection counts,
        ``precision`` and ``recall``. See :func:`evaluation_summary` for global Dice.
        With ``per_lesion=True``, ``(table, lesions)`` where ``lesions`` is the
        ``segmentation_eval_lesions`` table (every reference and predicted lesion, matched or
        not at IoU 0.1 and 0.5, with its size), which
        :func:`~metevo.segmentation.detection_summary` turns into recall and precision by
        lesion size.

    Raises
    ------
    GeometryError
        A predicted mask does not lie on its reference's grid.
    ManifestError
        No scan is common to both manifests.
    """
    import SimpleITK as sitk

    from metevo.cohort import io as mio
    from metevo.cohort._cohort import open_cohort

    pred, pbase, psource = _read_pred_manifest(pred_manifest, base_dir)
    for col in (Manifest.PATIENT_ID, Manifest.TIMEPOINT, Manifest.LESION_MASK, Manifest.LIVER_MASK):
        if col not in pred.columns:
            raise ManifestError(
                f"prediction manifest {psource}: missing column {col!r} (found "
                f"{list(pred.columns)}); pass the manifest written by segment()."
            )
    cohort = open_cohort(ref_manifest, errors="raise", **cohort_options)
    ref_scans = {}
    for patient in cohort:
        for scan in [*patient.scans, *patient.skipped_scans]:
            ref_scans[(scan.patient_id, scan.timepoint)] = scan
    rows = []
    lesion_rows: list[pd.DataFrame] = []
    for rec in pred.to_dict("records"):
        key = (str(rec[Manifest.PATIENT_ID]).strip(), str(rec[Manifest.TIMEPOINT]).strip())
        if key not in ref_scans:
            continue
        scan = ref_scans[key]
        where = f"patient {key[0]}, timepoint {key[1]}"
        for structure, col in (("liver", Manifest.LIVER_MASK), ("lesion", Manifest.LESION_MASK)):
            value = rec.get(col)
            if value is None or (isinstance(value, float) and np.isnan(value)) or str(value) == "":
                continue
            path = Path(str(value))
            path = path if path.is_absolute() else pbase / path
            predicted = mio.interpret_mask(mio.read_image(path), "binary", context=where, path=path)
            if structure == "liver":
                reference = scan.liver_mask()
                if reference is None:
                    continue
                instances = False
            else:
                reference = scan.lesion_mask()
                instances = scan.lesion_mask_kind == "instances"
            mio.check_same_grid(
                reference, predicted, context=where, image_path=scan.image_path, mask_path=path
            )
            voxel_ml = float(np.prod(reference.GetSpacing())) / 1000.0
            row = {E.PATIENT_ID: key[0], E.TIMEPOINT: key[1], E.STRUCTURE: structure}
            row.update(
                case_metrics(
                    sitk.GetArrayViewFromImage(reference),
                    sitk.GetArrayViewFromImage(predicted),
                    voxel_ml,
                    lesions=structure == "lesion",
                    reference_is_instances=instances,
                    iou_threshold=iou_threshold,
                )
            )
            rows.append(row)
            if structure == "lesion":
                found = lesion_detection(
                    _instances(sitk.GetArrayViewFromImage(reference), already_labelled=instances),
                    _instances(sitk.GetArrayViewFromImage(predicted), already_labelled=False),
                    voxel_ml,
                )
                found.insert(0, DetectionLesions.TIMEPOINT, key[1])
                found.insert(0, DetectionLesions.PATIENT_ID, key[0])
                lesion_rows.append(found)
    if not rows:
        raise ManifestError(
            f"no scan of the prediction manifest {psource} (with masks) matches a scan of the "
            "reference manifest by (patient_id, timepoint); check that both describe the same "
            "cohort."
        )
    table = pd.DataFrame(rows, columns=list(E.COLUMNS))
    for col in (E.N_REFERENCE_LESIONS, E.N_PREDICTED_LESIONS, E.N_DETECTED_LESIONS):
        table[col] = table[col].astype("Int64")
    table = table.sort_values([E.STRUCTURE, E.PATIENT_ID, E.TIMEPOINT], ignore_index=True)
    lesions = (
        pd.concat(lesion_rows, ignore_index=True)
        if lesion_rows
        else pd.DataFrame(columns=list(DetectionLesions.COLUMNS))
    )
    return (table, lesions) if per_lesion else table


def evaluation_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Cohort-level figures per structure from a ``segmentation_eval`` table.

    ``global_dice`` pools voxels over all scans (2 sum|A & B| / sum(|A| + |B|), as the LiTS
    "Dice global"); ``mean_dice`` averages per-scan Dice; ``precision``/``recall`` pool lesion
    counts over scans.
    """
    out = []
    for structure, grp in table.groupby(E.STRUCTURE, sort=True):
        denom = grp[E.REFERENCE_ML].sum() + grp[E.PREDICTED_ML].sum()
        row = {
            S.STRUCTURE: structure,
            S.N_CASES: len(grp),
            S.GLOBAL_DICE: 2 * grp[E.INTERSECTION_ML].sum() / denom if denom > 0 else np.nan,
            S.MEAN_DICE: grp[E.DICE].mean(),
            S.PRECISION: np.nan,
            S.RECALL: np.nan,
            S.MEAN_ABS_VOLUME_ERROR_ML: grp[E.VOLUME_ERROR_ML].abs().mean(),
        }
        if structure == "lesion":
            det = grp[E.N_DETECTED_LESIONS].sum()
            n_pred = grp[E.N_PREDICTED_LESIONS].sum()
            n_ref = grp[E.N_REFERENCE_LESIONS].sum()
            row[S.PRECISION] = det / n_pred if n_pred else np.nan
            row[S.RECALL] = det / n_ref if n_ref else np.nan
        out.append(row)
    return pd.DataFrame(out, columns=list(S.COLUMNS))
