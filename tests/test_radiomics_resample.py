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
