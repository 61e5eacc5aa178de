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
    # only a box known to hold the ROI read (the interpolation's reach): the same result
    reach = np.array([[1, 8], [3, 12], [0, 9]])
    inside = resegment(image, roi, value_range, reach)
    np.testing.assert_array_equal(inside[0], mask)
    assert inside[1:] == (box, n_roi, ibox, n_int)


def test_resegment_with_no_voxel_in_range_gives_no_intensity_box():
    roi = np.zeros((3, 4, 5), bool)
    roi[1, 1:3, 2:4] = True
    mask, box, n_roi, ibox, n_int = resegment(np.full(roi.shape, 900.0), roi, (-1000.0, 400.0))
    assert (n_roi, n_int, ibox) == (4, 0, None) and not mask.any()
    assert box == (slice(1, 2), slice(1, 3), slice(2, 4))


def _block_cases():
    rng = np.random.default_rng(43)
    shape = (6, 9, 8)
    mask = rng.random(shape) < 0.6
    hu = rng.normal(40, 300, shape).round()
    hu[1, 1, 1], hu[2, 2, 2] = -1200.0, 500.0  # below the first bin's lower bound, above 400
    hu[3, 3, 3] = -990.0  # in the first bin itself
    mask[1, 1, 1] = mask[2, 2, 2] = mask[3, 3, 3] = True
    yield hu, mask, -1000.0, 25.0, 1.0, (-1000.0, 400.0)  # ct_default
    yield rng.normal(40, 30, shape), mask, -1000.0, 25.0, 1.0, (-1000.0, 400.0)  # not integers
    yield np.full(shape, 12.0), mask, -20.0, 7.0, 1.0, None  # constant
    nan = hu.copy()
    nan[2, 2, 2] = np.inf  # IVH: not finite
    yield nan, mask, -1000.0, 25.0, 2.5, (-1000.0, 400.0)
    yield hu, mask, -3000.0, 10.0, None, None  # no IVH asked


@pytest.mark.parametrize("case", list(range(5)))
def test_intensity_block_equals_the_separate_functions_to_the_bit(case):
    from metevo.radiomics._intensity import discretise
    from metevo.radiomics._intensity_fast import (
        block_arguments,
        histogram_vector,
        intensity_block,
        statistics_vector,
    )
    from metevo.radiomics._settings import check_settings

    image, mask, lower, width, ivh_step, ivh_range = list(_block_cases())[case]
    args = block_arguments(
        statistics=True,
        ivh_step=ivh_step,
        ivh_lower_bound=lower,
        ivh_range=ivh_range,
        lower_bound=lower,
        bin_width=width,
        histogram=True,
    )
    x, constant, stats, stats_ok, ivh, ivh_ok, grey, n_below, hist = intensity_block(
        image[1:, :, 1:], mask[1:, :, 1:], int(mask[1:, :, 1:].sum()), args
    )
    ref_x = image[1:, :, 1:][mask[1:, :, 1:]]
    assert x.tobytes() == ref_x.tobytes()
    assert constant == (np.min(ref_x) == np.max(ref_x))
    ref_stats = statistics_vector(ref_x)
    assert stats_ok == (ref_stats is not None)
    if stats_ok:
        assert stats.tobytes() == ref_stats.tobytes()
    if ivh_step is not None:
        ref_ivh = ivh_vector(ref_x, ivh_step, lower, ivh_range)
        assert ivh_ok == (ref_ivh is not None)
        if ivh_ok:
            assert ivh.tobytes() == ref_ivh.tobytes()
    else:
        assert not ivh_ok
    settings = check_settings(None, bin_width=width, bin_lower_bound=lower)
    with np.errstate(invalid="ignore"):  # inf: no integer grey level (the engine's errstate)
        ref_grey = discretise(ref_x, settings)
    assert n_below == int((ref_grey < 1).sum())
    ref_grey = np.maximum(ref_grey, 1)
    np.testing.assert_array_equal(grey, ref_grey)
    assert hist.tobytes() == histogram_vector(ref_grey).tobytes()
    if case == 0:
        assert n_below == 1 and stats_ok and ivh_ok  # the cases test what they mean to
    if case == 1:
        assert not stats_ok
    if case == 2:
        assert constant
    if case == 3:
        assert not ivh_ok


@pytest.mark.parametrize("dtype", [np.int16, np.float64, np.float32, np.uint8])
def test_value_range_equals_numpy_min_and_max(dtype):
    from metevo.radiomics._intensity_fast import value_range

    rng = np.random.default_rng(44)
    a = (rng.normal(100, 80, (5, 7, 6)) + 60).astype(dtype)
    assert value_range(a) == (float(a.min()), float(a.max()))
    assert value_range(a[:, 1:4, ::2]) == (float(a[:, 1:4, ::2].min()), float(a[:, 1:4, ::2].max()))
    if a.dtype.kind == "f":
        a[2, 3, 1] = np.nan
        assert all(math.isnan(v) for v in value_range(a))
    with pytest.raises(ValueError, match="zero-size array"):
        value_range(a[:0])
