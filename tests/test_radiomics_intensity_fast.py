"""The compiled intensity steps of ``ct_default`` (re-segmentation with its boxes, the
intensity-volume histogram) against the NumPy reference, to the bit."""

from __future__ import annotations

import math

import numpy as np
import pytest

from metevo.radiomics._intensity import ivh_features
from metevo.radiomics._intensity_fast import IVH_NAMES, ivh_vector, resegment
from metevo.radiomics._morphology import _box


def _ivh_cases():
    rng = np.random.default_rng(41)
    hu = rng.normal(60, 80, 5000).round()
    yield hu, 1.0, -1000.0, (-1000.0, 400.0)  # ct_default
    yield hu[:7], 1.0, -1000.0, (-1000.0, 400.0)  # few voxels
    yield rng.normal(60, 80, 3000), 2.5, None, None  # floats, range of the bin centres
    yield rng.normal(60, 80, 3000), 0.7, -200.0, (-150.0, 300.0)  # values below the range
    yield np.full(40, 12.0), 1.0, None, None  # one bin: undefined (NaN)
    yield np.array([5.0, 5.0, 900.0]), 25.0, -1000.0, None  # sparse histogram


@pytest.mark.parametrize("case", list(range(6)))
def test_ivh_vector_equals_ivh_features_to_the_bit(case):
    values, step, lower_bound, value_range = list(_ivh_cases())[case]
    ref = ivh_features(values, step, lower_bound=lower_bound, value_range=value_range)
    fast = ivh_vector(values, step, lower_bound, value_range)
    assert tuple(ref) == IVH_NAMES
    expected = np.array([ref[n] for n in IVH_NAMES])
    assert fast.tobytes() == expected.tobytes()
    if case == 4:
        assert np.isnan(fast).all()
    else:
        assert np.isfinite(fast).all()


def test_ivh_vector_leaves_values_that_are_not_finite_to_the_reference():
    assert ivh_vector(np.array([1.0, math.inf, 3.0]), 1.0, None, None) is None
    assert ivh_vector(np.array([1.0, math.nan]), 1.0, -10.0, (-10.0, 10.0)) is None


@pytest.mark.parametrize("value_range", [(-20.0, 35.0), None])
def test_resegment_equals_numpy_masks_boxes_and_counts(value_range):
    rng = np.random.default_rng(42)
    image = rng.normal(10, 30, (9, 14, 12)).round()
    image[3, 4, 5] = np.nan  # outside any range
    image[6] = 500.0  # the ROI's last plane above the range: the intensity box is shorter
    roi = np.zeros(image.shape, bool)
    roi[2:7, 3:11, 1:9] = rng.random((5, 8, 8)) < 0.6
    roi[3, 4, 5] = True
    mask, box, n_roi, ibox, n_int = resegment(image, roi, value_range)
    assert box == _box(roi)
    assert n_roi == roi.sum()
    if value_range is None:
        assert mask is roi and ibox == box and n_int == n_roi
        return
    lo, hi = value_range
    ref = roi & (image >= lo) & (image <= hi)
    np.testing.assert_array_equal(mask, ref)
    assert ibox == _box(ref) and n_int == ref.sum()
    assert ibox != box  # the range cut the box: the test sees the difference


def test_resegment_with_no_voxel_in_range_gives_no_intensity_box():
    roi = np.zeros((3, 4, 5), bool)
    roi[1, 1:3, 2:4] = True
    mask, box, n_roi, ibox, n_int = resegment(np.full(roi.shape, 900.0), roi, (-1000.0, 400.0))
    assert (n_roi, n_int, ibox) == (4, 0, None) and not mask.any()
    assert box == (slice(1, 2), slice(1, 3), slice(2, 4))
