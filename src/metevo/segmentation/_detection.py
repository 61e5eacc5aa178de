"""Per-lesion detection of predicted lesion masks: recall and precision by IoU and lesion size.

A lesion is a 26-connected component of a binary mask (or a label of an instance mask). In each
scan, reference and predicted lesions are matched one-to-one, greedily by decreasing IoU, among
the pairs whose IoU reaches the threshold (LiTS, Bilic et al., Med Image Anal 2023, section 3.2,
uses 0.5; 0.1 counts a lesion as found when the prediction merely overlaps it). A reference
lesion is *detected* when it is matched; a predicted lesion is a *true positive* when matched.

Size bins use the lesion's equivalent-sphere diameter ``(6 V / pi)^(1/3)`` in mm (volume from the
voxel count and spacing): ``<10 mm``, ``10-20 mm``, ``>20 mm`` (10 mm is RECIST 1.1's minimum
size of a measurable lesion on CT, section 3.1.1). Recall in a bin counts reference lesions of
that bin; precision counts predicted lesions of that bin.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from metevo.columns import SegmentationEvalDetection as DetectionSummary
from metevo.columns import SegmentationEvalLesions as DetectionLesions

__all__ = [
    "IOU_THRESHOLDS",
    "SIZE_BINS",
    "detection_summary",
    "lesion_detection",
    "size_bin",
]

#: IoU thresholds at which detection is reported.
IOU_THRESHOLDS = (0.1, 0.5)
#: Size bins (equivalent-sphere diameter, mm) and their upper edges.
SIZE_BINS = ("<10 mm", "10-20 mm", ">20 mm")
_EDGES = (10.0, 20.0)


def size_bin(diameter_mm: float) -> str:
    """The size bin of an equivalent-sphere diameter."""
    if diameter_mm < _EDGES[0]:
        return SIZE_BINS[0]
    return SIZE_BINS[1] if diameter_mm <= _EDGES[1] else SIZE_BINS[2]


def _greedy(pairs: list[tuple[float, int, int]], threshold: float) -> dict[tuple[int, int], float]:
    used_r: set[int] = set()
    used_p: set[int] = set()
    out = {}
    for iou, r, p in sorted(pairs, reverse=True):
        if iou >= threshold and r not in used_r and p not in used_p:
            used_r.add(r)
            used_p.add(p)
            out[(r, p)] = iou
    return out


def lesion_detection(
    reference: np.ndarray,
    predicted: np.ndarray,
    voxel_ml: float,
    *,
    thresholds: tuple[float, ...] = IOU_THRESHOLDS,
) -> pd.DataFrame:
    """Rows of ``segmentation_eval_lesions`` (without keys) for one scan.

    ``reference`` and ``predicted`` are instance label arrays of the same shape (0 background).
    """
    C = DetectionLesions
    ref = np.asarray(reference, dtype=np.int64).ravel()
    pred = np.asarray(predicted, dtype=np.int64).ravel()
    sizes = {}
    for name, arr in (("reference", ref), ("predicted", pred)):
        ids, counts = np.unique(arr[arr > 0], return_counts=True)
        sizes[name] = dict(zip(ids.tolist(), counts.tolist(), strict=True))
    both = (ref > 0) & (pred > 0)
    pairs: list[tuple[float, int, int]] = []
    if both.any():
        inter_pairs, inter = np.unique(
            np.stack([ref[both], pred[both]]), axis=1, return_counts=True
        )
        for (r, p), n in zip(inter_pairs.T.tolist(), inter.tolist(), strict=True):
            union = sizes["reference"][r] + sizes["predicted"][p] - n
            pairs.append((n / union, int(r), int(p)))
    rows: list[dict[str, Any]] = []
    for threshold in thresholds:
        matched = _greedy(pairs, threshold)
        by_ref = {r: iou for (r, _), iou in matched.items()}
        by_pred = {p: iou for (_, p), iou in matched.items()}
        for source, lookup in (("reference", by_ref), ("predicted", by_pred)):
            for label, count in sizes[source].items():
                volume = count * voxel_ml
                diameter = (6 * volume * 1000 / np.pi) ** (1 / 3)
                rows.append(
                    {
                        C.SOURCE: source,
                        C.LESION: int(label),
                        C.IOU_THRESHOLD: float(threshold),
                        C.VOLUME_ML: volume,
                        C.DIAMETER_MM: float(diameter),
                        C.SIZE_BIN: size_bin(diameter),
                        C.MATCHED: label in lookup,
                        C.IOU: lookup.get(label, np.nan),
                    }
                )
    return pd.DataFrame(
        rows, columns=[c for c in C.COLUMNS if c not in (C.PATIENT_ID, C.TIMEPOINT)]
    )


def detection_summary(lesions: pd.DataFrame) -> pd.DataFrame:
    """``segmentation_eval_detection``: recall and precision per IoU threshold and size bin.

    One row per threshold and bin, plus ``size_bin == "all"``; recall = detected / reference
    lesions of the bin, precision = true-positive / predicted lesions of the bin (NaN when the
    bin is empty).
    """
    C, S = DetectionLesions, DetectionSummary
    out = []
    for threshold, grp in lesions.groupby(C.IOU_THRESHOLD, sort=True):
        for label in ("all", *SIZE_BINS):
            sub = grp if label == "all" else grp[grp[C.SIZE_BIN] == label]
            ref = sub[sub[C.SOURCE] == "reference"]
            pred = sub[sub[C.SOURCE] == "predicted"]
            n_ref, n_det = len(ref), int(ref[C.MATCHED].sum())
            n_pred, n_tp = len(pred), int(pred[C.MATCHED].sum())
            out.append(
                {
                    S.IOU_THRESHOLD: float(threshold),
                    S.SIZE_BIN: label,
                    S.N_REFERENCE_LESIONS: n_ref,
                    S.N_DETECTED_LESIONS: n_det,
                    S.RECALL: n_det / n_ref if n_ref else np.nan,
                    S.N_PREDICTED_LESIONS: n_pred,
                    S.N_TRUE_POSITIVE_LESIONS: n_tp,
                    S.PRECISION: n_tp / n_pred if n_pred else np.nan,
                }
            )
    return pd.DataFrame(out, columns=list(S.COLUMNS))
