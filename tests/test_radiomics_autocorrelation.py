"""Moran's I / Geary's C: the large-ROI approximation against brute-force all-pairs sums."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import fft as sp_fft
from scipy import ndimage
from scipy.spatial.distance import pdist, squareform

from metevo.radiomics import radiomic_features
from metevo.radiomics._autocorrelation import (
    _approximate_autocorrelation,
    _even_fast_len,
    _padded_rfftn,
    _spatial_autocorrelation,
    pair_sums,
)


def _brute(values: np.ndarray, mask: np.ndarray, spacing: np.ndarray) -> tuple[float, float]:
    """IBSI 3.1.26-27 written out over every ordered pair."""
    pos = np.argwhere(mask) * spacing
    x = values[mask].astype(np.float64)
    w = squareform(1.0 / pdist(pos))
    d = x - x.mean()
    n = x.size
    moran = n / w.sum() * (w * np.outer(d, d)).sum() / (d**2).sum()
    geary = (n - 1) * (w * (x[:, None] - x[None]) ** 2).sum() / (2 * w.sum() * (d**2).sum())
    return moran, geary


def test_pair_sums_are_exact_when_every_pair_is_a_neighbour():
    # a 2x2x2 block: every pair within Chebyshev distance 1, so no pair is sampled
    rng = np.random.default_rng(5)
    values = rng.normal(0, 1, (2, 2, 2))
    mask = np.ones((2, 2, 2), bool)
    spacing = np.array([2.5, 0.8, 0.7])
    expected = _brute(values, mask, spacing)
    assert _approximate_autocorrelation(values, mask, spacing) == pytest.approx(expected, rel=1e-12)
    w, _, _, _ = pair_sums(values, mask, spacing, 1000, 1)
    assert w == pytest.approx(0.5 * squareform(1.0 / pdist(np.argwhere(mask) * spacing)).sum())


def test_far_pairs_of_equal_weight_are_exact_through_the_control_variates():
    # a regular tetrahedron of voxels (all six pairs sqrt(8) voxels apart, none a neighbour):
    # with one weight w, w d_i d_j regresses on d_i d_j with slope w and no residual, so the
    # estimate is w times the exact far-pair sum whatever pairs were drawn
    mask = np.zeros((3, 3, 3), bool)
    for p in [(0, 0, 0), (0, 2, 2), (2, 0, 2), (2, 2, 0)]:
        mask[p] = True
    values = np.zeros(mask.shape)
    values[mask] = [10.0, -3.0, 7.5, 1.0]
    spacing = np.full(3, 0.9)  # isotropic: the weight comes from the table
    expected = _brute(values, mask, spacing)
    assert _approximate_autocorrelation(values, mask, spacing) == pytest.approx(expected)
    for n_samples in (7, 1000):
        w, cross, sq, ss = pair_sums(values, mask, spacing, n_samples, 3)
        assert w == pytest.approx(6.0 / (0.9 * np.sqrt(8.0)), rel=1e-12)
        # unordered sums: IBSI's ordered sums are twice these
        moran, geary = 4 / w * cross / ss, 3 * sq / (2 * w * ss)
        assert (moran, geary) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("spacing", [(2.5, 0.8, 0.8), (1.0, 1.0, 1.0)])
def test_approximation_is_close_to_the_exact_all_pairs_value(spacing):
    # a 2,000-voxel ball of smoothed noise (spatially autocorrelated, like a lesion)
    rng = np.random.default_rng(11)
    zz, yy, xx = np.indices((14, 20, 20))
    mask = ((zz - 6.5) / 6.5) ** 2 + ((yy - 9.5) / 9.5) ** 2 + ((xx - 9.5) / 9.5) ** 2 <= 1
    values = ndimage.gaussian_filter(rng.normal(0, 30, mask.shape), 1.5) + 60
    spacing = np.array(spacing)
    moran, geary = _brute(values, mask, spacing)
    assert moran > 0.05  # autocorrelated: a relative error means something
    approx = _approximate_autocorrelation(values, mask, spacing)
    assert approx[0] == pytest.approx(moran, rel=0.03)
    assert approx[1] == pytest.approx(geary, rel=0.01)
    # the FFT path stays exact
    assert _spatial_autocorrelation(values, mask, spacing) == pytest.approx(
        (moran, geary), rel=1e-5
    )


def test_setting_switches_between_exact_and_approximate():
    rng = np.random.default_rng(2)
    arr = ndimage.gaussian_filter(rng.normal(50, 40, (16, 40, 40)), 1.0).round()
    arr[0, 0, 0], arr[0, 0, 1] = -1000, 300
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((0.8, 0.8, 2.5))
    lab = np.zeros(arr.shape, np.uint8)
    lab[3:13, 5:35, 5:35] = 1  # 9,000 voxels
    msk = sitk.GetImageFromArray(lab)
    msk.CopyInformation(img)
    cols = ["morph_moran_i", "morph_geary_c"]

    def run(limit):
        return (
            radiomic_features(
                img, msk, features=cols, resample=False, autocorrelation_exact_max_voxels=limit
            )
            .loc[0, cols]
            .to_numpy(float)
        )

    exact = run(None)
    np.testing.assert_array_equal(run(9000), exact)  # at the limit: exact
    approx = run(8999)
    assert not np.array_equal(approx, exact)
    # sampling error of the far pairs: about 1e-3 in absolute terms for Moran's I (near 0 here)
    assert approx[0] == pytest.approx(exact[0], abs=0.002)
    assert approx[1] == pytest.approx(exact[1], rel=0.01)
    with pytest.raises(ValueError, match="autocorrelation_exact_max_voxels must be a positive"):
        radiomic_features(img, msk, autocorrelation_exact_max_voxels=0)


@pytest.mark.parametrize("shape", [(1, 1, 2), (3, 5, 4), (13, 17, 15), (22, 31, 27), (7, 40, 9)])
def test_pruned_transform_equals_rfftn_of_the_padded_fields_to_the_bit(shape):
    # the exact path transforms only the lines that hold data; the result must be the very
    # array scipy's rfftn gives on the zero-padded grid (odd, even and 5-smooth lengths)
    rng = np.random.default_rng(11)
    fields = rng.normal(0, 1, (3, *shape)).astype(np.float32)
    fshape = tuple(_even_fast_len(2 * s - 1) for s in shape)
    padded = np.zeros((3, *fshape), np.float32)
    padded[:, : shape[0], : shape[1], : shape[2]] = fields
    expected = sp_fft.rfftn(padded, axes=(1, 2, 3))
    got = _padded_rfftn(fields, fshape)
    assert got.dtype == expected.dtype
    assert np.array_equal(got, expected)
