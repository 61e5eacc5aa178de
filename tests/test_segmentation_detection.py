"""Per-lesion detection (recall/precision at IoU 0.1 and 0.5, by size) of metevo.segmentation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from metevo.dictionary import validate_table
from metevo.segmentation import detection_summary
from metevo.segmentation._detection import lesion_detection, size_bin


def _cube(arr, corner, side, value):
    z, y, x = corner
    arr[z : z + side, y : y + side, x : x + side] = value


def _scan():
    """Hand-made scan, 1 mm voxels (1 voxel = 0.001 ml).

    Reference: A 12^3 (diameter (6*1.728/pi)^(1/3)*10 = 14.9 mm), B 4^3 (4.96 mm), C 30^3 (37.2 mm).
    Predicted: A shifted by 2 voxels in z (IoU 10*144/(2*1728-1440) = 1440/2016 = 0.714),
    B shifted by 3 voxels (IoU 16/(128-16) = 0.143), D a false positive 5^3.
    """
    ref = np.zeros((40, 80, 80), np.int32)
    pred = np.zeros_like(ref)
    _cube(ref, (0, 0, 0), 12, 1)
    _cube(pred, (2, 0, 0), 12, 7)
    _cube(ref, (20, 20, 20), 4, 2)
    _cube(pred, (23, 20, 20), 4, 8)
    _cube(ref, (5, 45, 45), 30, 3)
    _cube(pred, (30, 0, 60), 5, 9)
    return ref, pred


def test_lesions_are_matched_by_iou_with_sizes():
    ref, pred = _scan()
    rows = lesion_detection(ref, pred, 0.001)
    r05 = rows[(rows.iou_threshold == 0.5)].set_index(["source", "lesion"])
    r01 = rows[(rows.iou_threshold == 0.1)].set_index(["source", "lesion"])
    assert r05.loc[("reference", 1), "iou"] == pytest.approx(1440 / 2016)
    assert bool(r05.loc[("reference", 1), "matched"]) and bool(r05.loc[("predicted", 7), "matched"])
    # B overlaps with IoU 1/7: found at 0.1, missed at 0.5
    assert not r05.loc[("reference", 2), "matched"] and bool(r01.loc[("reference", 2), "matched"])
    assert r01.loc[("predicted", 8), "iou"] == pytest.approx(16 / 112)
    assert not r01.loc[("reference", 3), "matched"] and not r01.loc[("predicted", 9), "matched"]
    assert r05.loc[("reference", 1), "diameter_mm"] == pytest.approx((6 * 1728 / np.pi) ** (1 / 3))
    assert r05.loc[("reference", 1), "volume_ml"] == pytest.approx(1.728)
    assert [r05.loc[("reference", k), "size_bin"] for k in (1, 2, 3)] == [
        "10-20 mm", "<10 mm", ">20 mm"
    ]  # fmt: skip


def test_summary_recall_precision_by_size():
    ref, pred = _scan()
    rows = lesion_detection(ref, pred, 0.001)
    rows.insert(0, "timepoint", "V0")
    rows.insert(0, "patient_id", "P1")
    validate_table(rows, "segmentation_eval_lesions")
    summary = detection_summary(rows)
    validate_table(summary, "segmentation_eval_detection")
    s = summary.set_index(["iou_threshold", "size_bin"])
    # IoU 0.5: reference A detected of A, B, C -> 1/3; predicted A matched of A', B', D -> 1/3
    assert s.loc[(0.5, "all"), "recall"] == pytest.approx(1 / 3)
    assert s.loc[(0.5, "all"), "precision"] == pytest.approx(1 / 3)
    # IoU 0.1: A and B found
    assert s.loc[(0.1, "all"), "recall"] == pytest.approx(2 / 3)
    assert s.loc[(0.1, "<10 mm"), "recall"] == 1.0 and s.loc[(0.5, "<10 mm"), "recall"] == 0.0
    assert s.loc[(0.5, ">20 mm"), "recall"] == 0.0
    # precision by predicted size: D (5^3 = 6.2 mm) and B' are < 10 mm -> 1 of 2 at 0.1
    assert s.loc[(0.1, "<10 mm"), "precision"] == pytest.approx(0.5)
    assert np.isnan(s.loc[(0.1, ">20 mm"), "precision"])  # no predicted lesion > 20 mm
    assert s.loc[(0.5, "10-20 mm"), "n_true_positive_lesions"] == 1


def test_one_to_one_matching_and_bins():
    ref = np.zeros((10, 10, 30), np.int32)
    pred = np.zeros_like(ref)
    ref[:, :, 0:10] = 1
    pred[:, :, 0:10] = 5  # the same lesion predicted ...
    pred[:, :, 10:12] = 0
    rows = lesion_detection(ref, pred, 0.001, thresholds=(0.5,))
    assert rows.matched.all() and (rows.iou == 1.0).all()
    assert size_bin(9.99) == "<10 mm" and size_bin(10.0) == "10-20 mm"
    assert size_bin(20.0) == "10-20 mm" and size_bin(20.01) == ">20 mm"
    empty = lesion_detection(np.zeros((3, 3, 3)), np.zeros((3, 3, 3)), 1.0)
    assert empty.empty
    assert detection_summary(pd.concat([rows.assign(patient_id="P", timepoint="V")])).shape[0] == 4
