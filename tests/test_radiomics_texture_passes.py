"""The texture kernel's plane pass against the voxel-by-voxel passes it replaces.

``_plane_pass`` (the fused kernel's counts: per-plane vectorised neighbour counts, run
lengths over two planes, one union-find per group of adjacent equal neighbours) must give
exactly the integer counts, the NGTDM sums and the zones of ``_neighbour_pass`` /
``_zones`` (which the NumPy reference ``texture_matrices`` still uses).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from metevo.radiomics._border import _city_block
from metevo.radiomics._texture import _ALL, texture_features
from metevo.radiomics._texture_fast import _padded_grid, texture_names, texture_vector
from metevo.radiomics._texture_passes import (
    _LOWBIT,
    _RIGHT_BITS,
    OFFSETS,
    _neighbour_pass,
    _plane_pass,
    _zone_labels,
    _zone_reps,
    _zones,
)


def _textured_roi(seed: int, shape: tuple[int, int, int], n_levels: int):
    """A blob with holes and a few separate parts, grey levels from smoothed noise (zones of
    many sizes), levels starting above 1."""
    rng = np.random.default_rng(seed)
    roi = ndimage.gaussian_filter(rng.random(shape), 1.5) > 0.47
    roi[rng.random(shape) < 0.05] = False  # holes
    smooth = ndimage.gaussian_filter(rng.normal(size=shape), 1.0)
    edges = np.quantile(smooth, np.linspace(0, 1, n_levels + 1)[1:-1])
    grey = np.digitize(smooth, edges) + 3
    return roi, grey


def _both(roi, grey):
    values = grey[roi].astype(np.int64)
    lv, gp, lp, vox, step = _padded_grid(values, roi)
    g, max_len = lv.size, max(roi.shape)
    px = roi.shape[2] + 2
    ppl = (roi.shape[1] + 2) * px
    new = _plane_pass(gp, lp, vox, g, lv, step, px, ppl, max_len, True, True, _LOWBIT, _zone_reps())
    old = _neighbour_pass(gp, vox, g, lv, step, max_len)
    dp = _city_block(roi).ravel()
    return new, old, (gp, dp, vox, step)


@pytest.mark.parametrize(
    ("seed", "shape", "n_levels"),
    [(0, (9, 14, 17), 3), (1, (12, 20, 23), 9), (2, (6, 31, 13), 20), (3, (3, 4, 40), 2)],
)
def test_plane_pass_counts_equal_the_voxel_passes(seed, shape, n_levels):
    roi, grey = _textured_roi(seed, shape, n_levels)
    assert roi.sum() > 50
    (glcm, ngldm, s, n, rlm, parent), old, (gp, dp, vox, step) = _both(roi, grey)
    glcm_old, ngldm_old, s_old, n_old, rlm_old = old
    np.testing.assert_array_equal(glcm[:, :, 1:], glcm_old)
    # column 0: the pairs with a neighbour outside the ROI, so every voxel has 13 pairs
    np.testing.assert_array_equal(glcm.sum(axis=(1, 2)), np.full(13, vox.size))
    np.testing.assert_array_equal(ngldm, ngldm_old)
    np.testing.assert_array_equal(s, s_old)  # same order of the same float sums: bit-equal
    np.testing.assert_array_equal(n, n_old)
    np.testing.assert_array_equal(rlm, rlm_old)
    zones = _zone_labels(parent, gp, dp, vox)
    expected = _zones(gp, dp, vox, step, _LOWBIT, _RIGHT_BITS)
    for got, want in zip(zones, expected, strict=True):
        np.testing.assert_array_equal(got, want)
    # and the zones are scipy's 26-connected components of each level
    sizes = []
    for level in np.unique(grey[roi]):
        labels, _ = ndimage.label(roi & (grey == level), structure=np.ones((3, 3, 3)))
        sizes += [(level, int(c)) for c in np.bincount(labels.ravel())[1:]]
    lv = np.unique(grey[roi])
    assert sorted(zip(lv[zones[0]].tolist(), zones[1].tolist(), strict=True)) == sorted(sizes)


@pytest.mark.parametrize("length", [255, 256, 300, 1000])
def test_texture_vector_with_long_runs_equals_the_numpy_formulas(length):
    # runs over 255 voxels along x and y (the two-plane ring holds int16 lengths)
    rng = np.random.default_rng(length)
    roi = np.ones((2, 3, length), bool)
    roi[1, 2, length // 3] = False
    grey = np.ones(roi.shape, np.int64)
    grey[0, :, length - 20 :] = 2
    grey[1, 1, rng.integers(0, length, 5)] = 3
    ref = texture_features(grey, roi)
    fast = texture_vector(grey, roi)
    expected = np.array([ref[name] for name in texture_names(_ALL)])
    np.testing.assert_allclose(fast, expected, rtol=1e-10, atol=1e-12, equal_nan=True)


@pytest.mark.parametrize("lowest", [0, 1, 40])
def test_texture_vector_for_any_lowest_level_equals_the_numpy_formulas(lowest):
    # the plane pass stores levels shifted to start at 1 (0 marks the outside): a ROI whose
    # lowest level is 0 or far above 1 has the reference's features (level 0: those not
    # dividing by the level, which both paths leave infinite or NaN)
    roi, grey = _textured_roi(7, (7, 9, 11), 5)
    grey = grey - grey[roi].min() + lowest
    with np.errstate(divide="ignore", invalid="ignore"):
        ref = texture_features(grey, roi)
        fast = texture_vector(grey, roi)
    expected = np.array([ref[name] for name in texture_names(_ALL)])
    finite = np.isfinite(expected) | (lowest > 0)
    assert finite.sum() > 120  # of 136
    np.testing.assert_allclose(
        fast[finite], expected[finite], rtol=1e-10, atol=1e-12, equal_nan=True
    )


def test_zone_reps_keep_one_neighbour_per_connected_group():
    # for every set of backward neighbours: one representative in each 26-connected group
    # of them (scipy's labelling of the 3 x 3 x 3 block), none outside the set
    reps = _zone_reps()
    back = OFFSETS[13:] + 1  # positions in the 3 x 3 x 3 block
    rng = np.random.default_rng(0)
    masks = np.concatenate([np.arange(64), rng.integers(0, 1 << 13, 1500), [(1 << 13) - 1]])
    for mask in masks:
        bits = [k for k in range(13) if mask >> k & 1]
        block = np.zeros((3, 3, 3), bool)
        for k in bits:
            block[tuple(back[k])] = True
        labels, n_groups = ndimage.label(block, structure=np.ones((3, 3, 3)))
        rep_bits = [k for k in range(13) if reps[mask] >> k & 1]
        assert set(rep_bits) <= set(bits)
        assert sorted(labels[tuple(back[k])] for k in rep_bits) == list(range(1, n_groups + 1))
