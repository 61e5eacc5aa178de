"""Interpolation of a lesion crop to isotropic voxels (IBSI 2.4) against scipy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from metevo.radiomics._resample import axis_positions, new_size, resample_crop


def test_grid_size_ignores_float_noise_in_the_spacing():
    assert new_size(50, 0.8, 1.0) == 40
    assert new_size(50, 0.8 + 1e-13, 1.0) == 40  # ceil(40.0000000001) would give 41
    assert new_size(51, 0.8, 1.0) == 41
    assert new_size(1, 0.5, 1.0) == 1


@pytest.mark.parametrize("margin_mm", [0.0, 6.2])
def test_crop_interpolation_equals_scipy_on_the_whole_crop(margin_mm):
    rng = np.random.default_rng(21)
    spacing = np.array([2.5, 0.8, 0.8])
    whole = np.array([30, 70, 64])
    start = np.array([4, 9, 13])
    img = rng.normal(40, 30, (14, 40, 36)).round()
    roi = np.zeros(img.shape, bool)
    roi[5:9, 12:25, 10:22] = rng.random((4, 13, 12)) < 0.8
    out, mask = resample_crop(img, roi, spacing, 1.0, start, whole, margin_mm=margin_mm)
    # the reference: every new point inside the crop, by scipy's trilinear interpolation
    pos = [axis_positions(img.shape[a], spacing[a], 1.0, start[a], whole[a]) for a in range(3)]
    pts = np.stack(np.meshgrid(*pos, indexing="ij")).reshape(3, -1)
    ref_img = ndimage.map_coordinates(img, pts, order=1).reshape([p.size for p in pos])
    ref_val = ndimage.map_coordinates(roi.astype(float), pts, order=1).reshape(ref_img.shape)
    ref_roi = ref_val >= 0.5 - 1e-9
    # the output covers the points the ROI reaches (non-zero interpolated mask) plus
    # floor(margin) new voxels, clipped to the crop
    reach = [np.flatnonzero((ref_val > 0).any(axis=o)) for o in ((1, 2), (0, 2), (0, 1))]
    lo = np.array([r[0] for r in reach])
    lo = np.maximum(lo - int(margin_mm), 0)
    sub = tuple(slice(int(a), int(a) + n) for a, n in zip(lo, out.shape, strict=True))
    np.testing.assert_allclose(out, ref_img[sub], rtol=1e-12, atol=1e-9)
    np.testing.assert_array_equal(mask, ref_roi[sub])
    assert mask.sum() == ref_roi.sum()  # no ROI voxel left out of the output
    hi = [
        min(int(r[-1]) + 1 + int(margin_mm), n) for r, n in zip(reach, ref_img.shape, strict=True)
    ]
    assert list(out.shape) == [h - a for h, a in zip(hi, lo, strict=True)]


def test_compiled_axis_grid_equals_the_numpy_positions_and_reach():
    # _axis_grid (one compiled call per axis) against axis_positions + _reach: the same
    # points, indices, weights and reach to the bit, over crops, starts, spacings (with
    # float32 noise), ROI extents (empty reach, one-point crops) and margins
    from metevo.radiomics._resample import _axis_grid, _reach

    rng = np.random.default_rng(31)
    for _ in range(400):
        old = float(rng.choice([0.8, 2.5, 0.7, 1.25, 3.0])) + float(rng.choice([0.0, 1.19e-8]))
        new = float(rng.choice([1.0, 2.0, 0.5]))
        n_whole = int(rng.integers(1, 200))
        n = int(rng.integers(1, n_whole + 1))
        start = int(rng.integers(0, n_whole - n + 1))
        first = int(rng.integers(0, n))
        last = int(rng.integers(first, n))
        margin = int(rng.integers(0, 8))
        pos = axis_positions(n, old, new, start, n_whole)
        a, b = _reach(pos, first, last, margin)
        m0, m1 = _reach(pos, first, last, 0)
        i0, w, s0, s1 = _axis_grid(
            n, old, new, start, n_whole, new_size(n_whole, old, new), first, last, margin
        )
        ref_i0 = np.floor(pos[a:b]).astype(np.int64)
        np.testing.assert_array_equal(i0, ref_i0)
        assert w.tobytes() == (pos[a:b] - ref_i0).tobytes()
        assert (s0, s1) == (m0 - a, m1 - a)


def test_rounded_interpolation_equals_np_rint_of_the_values():
    rng = np.random.default_rng(32)
    spacing = np.array([2.5, 0.8, 0.8])
    img = rng.normal(40, 30, (10, 30, 30)).round()
    img[4, 10, 10] = 0.5  # exact halves interpolate to .5 too: rint rounds them to even
    roi = np.zeros(img.shape, bool)
    roi[3:7, 8:20, 9:21] = True
    args = (img, roi, spacing, 1.0, np.zeros(3, int), np.array(img.shape))
    out, mask = resample_crop(*args, margin_mm=6.2)
    rounded, mask_r = resample_crop(*args, margin_mm=6.2, round_values=True)
    assert not np.array_equal(out, np.rint(out))  # interpolation made fractions to round
    assert rounded.tobytes() == np.rint(out).tobytes()
    np.testing.assert_array_equal(mask_r, mask)


def test_crop_in_its_own_type_with_the_known_extent_equals_the_float_crop():
    # the engine passes the scan's int16 crop and the ROI's extent from its label box: the
    # same grid and values to the bit as a float64 crop whose extent is found from the ROI
    rng = np.random.default_rng(33)
    spacing = np.array([2.5, 0.8, 0.8])
    img = rng.normal(40, 300, (12, 34, 30)).round()
    roi = np.zeros(img.shape, bool)
    roi[4:9, 10:21, 7:19] = rng.random((5, 11, 12)) < 0.8
    roi[4, 10, 7] = roi[8, 20, 18] = True  # the box's corners
    args = (spacing, 1.0, np.array([3, 5, 2]), np.array([40, 60, 50]))
    extent = np.array([[4, 8], [10, 20], [7, 18]])
    ref = resample_crop(img, roi, *args, margin_mm=6.2, round_values=True)
    fast = resample_crop(
        img.astype(np.int16), roi, *args, margin_mm=6.2, round_values=True, extent=extent
    )
    for a, b in zip(ref, fast, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    assert ref[1].sum() > 0
    # the box of the points the ROI reaches holds every ROI voxel, and is smaller than the
    # output (the intensity-peak margin lies outside it)
    *_, reach = resample_crop(img, roi, *args, margin_mm=6.2, with_reach=True)
    inside = np.zeros(ref[1].shape, bool)
    inside[tuple(slice(a, b) for a, b in reach)] = True
    assert ref[1][inside].sum() == ref[1].sum() and not inside.all()
