"""Moran's I / Geary's C: the large-ROI approximation against brute-force all-pairs sums."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import fft as sp_fft
from scipy import ndimage
from scipy.spatial.distance import pdist, squareform

from metevo.radiomics import _autocorrelation, radiomic_features
from metevo.radiomics._autocorrelation import (
    _even_fast_len,
    _grid_shape,
    _inverse_distance_spectrum,
    _padded_rfftn,
    _spatial_autocorrelation,
)
from metevo.radiomics._autocorrelation_approx import (
    _bilinear,
    _far_samples,
    _moments,
    _points,
    _stream,
    _weight_table,
    pair_sums,
)
from metevo.radiomics._autocorrelation_approx import (
    approximate_autocorrelation as _approximate_autocorrelation,
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
    # with one distance the polynomial P(s) fits w exactly, the drawn residuals w - P(s) are
    # 0, and the estimate is the exact sum of P(s) f over the far pairs, whatever was drawn
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


def test_pruned_transform_without_in_place_passes_gives_the_same_bits(monkeypatch):
    # the z and y passes run in place on one spectrum; should scipy hand back a new array
    # instead (``overwrite_x`` is only a hint), the result must be copied back, not lost
    import types

    import metevo.radiomics._autocorrelation as autocorrelation

    def fft_copy(x, *args, **kwargs):
        return sp_fft.fft(x, *args, **{**kwargs, "overwrite_x": False}).copy()

    shape = (22, 31, 27)
    fields = np.random.default_rng(12).normal(0, 1, (3, *shape)).astype(np.float32)
    fshape = tuple(_even_fast_len(2 * s - 1) for s in shape)
    expected = _padded_rfftn(fields, fshape)
    monkeypatch.setattr(
        autocorrelation, "sp_fft", types.SimpleNamespace(rfft=sp_fft.rfft, fft=fft_copy)
    )
    got = _padded_rfftn(fields, fshape)
    assert np.count_nonzero(got) == got.size
    assert np.array_equal(got, expected)


def _ellipsoid_case(kind: str) -> tuple[np.ndarray, np.ndarray]:
    """ROIs of 17,000-28,000 voxels at 1 mm (shapes and textures not used to tune the
    approximation): a solid ellipsoid with a necrotic core, a rim (spherical shell) and
    two overlapping lobes with a gradient, each with smoothed noise."""
    rng = np.random.default_rng({"core": 21, "rim": 22, "lobes": 23}[kind])
    zz, yy, xx = np.indices((34, 46, 40)).astype(float)
    r = np.sqrt(((zz - 16.5) / 16) ** 2 + ((yy - 22.5) / 22) ** 2 + ((xx - 19.5) / 19) ** 2)
    noise = ndimage.gaussian_filter(rng.normal(0, 40, r.shape), 1.2)
    if kind == "core":
        mask = r <= 1
        values = np.where(r < 0.5, 10.0, 80.0) + noise
    elif kind == "rim":
        mask = (r <= 1) & (r >= 0.6)
        values = 90.0 + 30.0 * np.sin(xx / 5.0) + noise
    else:
        a = np.sqrt(((zz - 16) / 13) ** 2 + ((yy - 14) / 13) ** 2 + ((xx - 14) / 12) ** 2)
        b = np.sqrt(((zz - 18) / 12) ** 2 + ((yy - 31) / 14) ** 2 + ((xx - 26) / 13) ** 2)
        mask = (a <= 1) | (b <= 1)
        values = 2.0 * yy + noise
    return values, mask


@pytest.mark.parametrize("kind", ["core", "rim", "lobes"])
def test_approximation_is_close_to_the_exact_value_on_other_shapes(kind):
    # the exact FFT value against the approximation's default (fixed seed); the sampling
    # error measured over seeds is ~0.5 % (Moran) and ~0.05 % (Geary) RMS on lesions of
    # this size (docs/radiomics.md): 4 % and 0.5 % leave room for the seed, not for a bias
    values, mask = _ellipsoid_case(kind)
    assert 15_000 < mask.sum() < 30_000
    spacing = np.ones(3)
    exact = _spatial_autocorrelation(values, mask, spacing)
    approx = _approximate_autocorrelation(values, mask, spacing)
    assert exact[0] > 0.05
    assert approx[0] == pytest.approx(exact[0], rel=0.04)
    assert approx[1] == pytest.approx(exact[1], rel=0.005)
    # deterministic: the same ROI gives the same value; another seed another one
    assert _approximate_autocorrelation(values, mask, spacing) == approx
    assert pair_sums(values, mask, spacing, seed=12345) != pair_sums(values, mask, spacing)


def test_polynomial_pair_sums_from_moments_equal_brute_force():
    # sum_ij a_i b_j s_ij^k (k = 0, 1, 2) over every ordered pair, s the squared distance in
    # units of the scale, from the moments of the voxels' positions
    rng = np.random.default_rng(8)
    pts = np.zeros((60, 4), np.float32)
    pts[:, :3] = rng.integers(0, 9, (60, 3))
    d = rng.normal(0, 1, 60)
    spacing = np.array([2.5, 0.8, 0.7])
    centre = np.array([3.0, 4.0, 2.0])
    moments = _moments(pts, d, spacing, centre, 6.0)
    u = (pts[:, :3] * spacing - centre) / 6.0
    s = ((u[:, None, :] - u[None, :, :]) ** 2).sum(-1)
    for fa, a, fb, b in [
        (0, np.ones(60), 0, np.ones(60)),
        (1, d, 1, d),
        (2, d * d, 0, np.ones(60)),
    ]:
        expected = [(np.outer(a, b) * s**k).sum() for k in range(3)]
        np.testing.assert_allclose(_bilinear(moments[fa], moments[fb]), expected, rtol=1e-10)


def test_every_shell_offset_drawn_gives_the_exact_sums():
    # a 5x5x5 block: every pair within Chebyshev distance 4, so only the near pairs (exact)
    # and the shell (every entry of the importance table drawn once per voxel: its value
    # times the inverse of its expected draws is the residual w - P(s) itself) take part
    rng = np.random.default_rng(4)
    values = rng.normal(0, 1, (5, 5, 5))
    mask = np.ones((5, 5, 5), bool)
    mask[0, 0, 0] = False
    spacing = np.array([1.2, 0.8, 0.9])
    pos = np.argwhere(mask) * spacing
    w = squareform(1.0 / pdist(pos))
    d = values[mask] - values[mask].mean()
    expected = (
        0.5 * w.sum(),
        0.5 * (w * np.outer(d, d)).sum(),
        0.5 * (w * (d[:, None] - d[None]) ** 2).sum(),
    )
    got = pair_sums(values, mask, spacing, far_draws=2, shell_draws=10**6)
    np.testing.assert_allclose(got[:3], expected, rtol=1e-10)
    # with 4 draws per voxel the shell is estimated, not exact
    assert not np.allclose(pair_sums(values, mask, spacing)[:3], expected, rtol=1e-6)


def _largest_prime_factor(n: int) -> int:
    p, largest = 2, 1
    while n > 1:
        while n % p == 0:
            n //= p
            largest = p
        p += 1
    return largest


@pytest.mark.parametrize("shape", [(1, 1, 2), (11, 6, 5), (13, 17, 15), (22, 31, 27), (35, 54, 43)])
def test_grid_lengths_leave_no_wrap_and_suit_the_transforms(shape):
    fshape = _grid_shape(shape)
    for n, length in zip(shape, fshape, strict=True):
        assert length >= 2 * n - 1 and length % 2 == 0
    # the real transform's axis 5-smooth (pocketfft's real radices), the complex ones 11-smooth
    assert _largest_prime_factor(fshape[2]) <= 5
    assert max(_largest_prime_factor(length) for length in fshape[:2]) <= 11
    if shape == (22, 31, 27):
        assert fshape == (44, 64, 54)  # not (48, 64, 54): 8 % fewer points


def test_exact_value_on_a_grid_with_a_radix_11_axis_equals_brute_force():
    # 11 voxels along z: a grid of 22 (2 x 11) points there
    rng = np.random.default_rng(31)
    values = rng.normal(50, 20, (11, 6, 5))
    mask = rng.random((11, 6, 5)) < 0.7
    assert _grid_shape(mask.shape)[0] == 22
    spacing = np.array([1.6, 0.9, 0.7])
    assert _spatial_autocorrelation(values, mask, spacing) == pytest.approx(
        _brute(values, mask, spacing), rel=1e-5
    )


def _direct_spectrum(fshape, spacing):
    """The kernel spectrum as round 5 computed it: the block of 1 / |d| built for the grid."""
    axes = [
        np.arange(n // 2 + 1, dtype=np.float64) * h for n, h in zip(fshape, spacing, strict=True)
    ]
    dz, dy, dx = np.meshgrid(*axes, indexing="ij", sparse=True)
    dist = np.sqrt(dz**2 + dy**2 + dx**2)
    dist[0, 0, 0] = np.inf
    spectrum = sp_fft.dctn(1.0 / dist, type=1)
    spectrum[..., 1:-1] *= 2.0
    return spectrum / float(np.prod(fshape))


def test_kernel_spectra_from_the_cached_distance_grid_equal_a_direct_computation(monkeypatch):
    monkeypatch.setattr(_autocorrelation, "_spectra", type(_autocorrelation._spectra)())
    monkeypatch.setattr(_autocorrelation, "_distances", type(_autocorrelation._distances)())
    # a small grid, one that makes the cached 1 / |d| grow, a small one again, another spacing
    for fshape, spacing in [
        ((20, 30, 24), (1.0, 1.0, 1.0)),
        ((44, 120, 54), (1.0, 1.0, 1.0)),
        ((22, 18, 10), (1.0, 1.0, 1.0)),
        ((22, 18, 10), (2.5, 0.8, 0.7)),
    ]:
        got = _inverse_distance_spectrum(fshape, spacing)
        assert np.array_equal(got, _direct_spectrum(fshape, spacing))
        assert not got.flags.writeable
        assert _inverse_distance_spectrum(fshape, spacing) is got  # cached
    assert _autocorrelation._distances[(1.0, 1.0, 1.0)].shape == (28, 76, 35)


def test_kernel_spectra_cache_drops_the_least_recently_used_beyond_its_bytes(monkeypatch):
    monkeypatch.setattr(_autocorrelation, "_spectra", type(_autocorrelation._spectra)())
    spacing = (1.0, 1.0, 1.0)
    one = _inverse_distance_spectrum((20, 20, 20), spacing)
    # room for three of these (the other two shapes hold 12/11 as many bins)
    monkeypatch.setattr(_autocorrelation, "_SPECTRA_BYTES", 3 * one.nbytes)
    _inverse_distance_spectrum((20, 20, 22), spacing)
    _inverse_distance_spectrum((20, 20, 20), spacing)  # used again: now the most recent
    _inverse_distance_spectrum((20, 22, 20), spacing)  # over the budget: (20, 20, 22) goes
    assert [key[0] for key in _autocorrelation._spectra] == [(20, 20, 20), (20, 22, 20)]


def test_far_draws_from_the_residual_table_equal_the_per_pair_evaluation():
    # isotropic voxels: w - P(s) read by squared distance must give the very sums of
    # evaluating each drawn pair (Chebyshev test, weight, polynomial), written out here
    rng = np.random.default_rng(17)
    mask = ndimage.binary_dilation(np.pad(np.ones((3, 4, 3), bool), 5), iterations=4)
    values = rng.normal(40, 15, mask.shape)
    spacing = np.full(3, 1.5)
    _, pts, _, _ = _points(values, mask, 4)
    table = _weight_table(mask.shape, spacing)
    coef = np.array([0.31, -0.052, 0.0047])
    inv_scale2 = 1.0 / 97.0
    seed = _stream(99, 3)
    got = _far_samples(pts, spacing, table, 4, np.uint64(seed), inv_scale2, coef)
    n = pts.shape[0]
    mask64 = (1 << 64) - 1
    state, sums = seed, np.zeros(3)
    for _ in range(2):
        for p in range(n):
            state ^= state >> 12
            state ^= (state << 25) & mask64
            state ^= state >> 27
            u = (state * 0x2545F4914F6CDD1D) & mask64
            for q in (((u >> 32) * (n - 1)) >> 32, ((u & 0xFFFFFFFF) * (n - 1)) >> 32):
                q += q >= p
                delta = pts[p, :3].astype(np.int64) - pts[q, :3].astype(np.int64)
                if np.abs(delta).max() <= 4:
                    continue
                r2 = float((delta * delta).sum()) * 1.5**2
                s = r2 * inv_scale2
                e = 1.0 / np.sqrt(r2) - (coef[0] + s * (coef[1] + s * coef[2]))
                dp, dq = pts[p, 3], pts[q, 3]  # float32 products, as compiled
                sums += e * np.array([1.0, float(dp * dq), float((dp - dq) ** 2)])
    np.testing.assert_allclose(got, sums, rtol=1e-9)


def test_weight_tables_sliced_from_a_longer_one_equal_a_direct_computation():
    spacing = np.full(3, 0.7)
    for shape in [(5, 6, 7), (30, 41, 25), (5, 6, 7)]:
        top = sum((k - 1) ** 2 for k in shape)
        expected = np.zeros(top + 1)
        expected[1:] = 1.0 / (0.7 * np.sqrt(np.arange(1, top + 1, dtype=np.float64)))
        assert np.array_equal(_weight_table(shape, spacing), expected)
    assert _weight_table((5, 6, 7), np.array([0.7, 0.7, 1.0])).shape == (1,)  # anisotropic
