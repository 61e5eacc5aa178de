"""Local intensity peaks (IBSI 3.2) against brute-force sphere means."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from metevo.radiomics._local_intensity import PEAK_RADIUS_MM, local_intensity_features


def _sphere_kernel(spacing: np.ndarray) -> np.ndarray:
    r = np.floor(PEAK_RADIUS_MM / spacing).astype(int)
    grid = np.indices(2 * r + 1).transpose(1, 2, 3, 0) - r
    return (np.linalg.norm(grid * spacing, axis=-1) <= PEAK_RADIUS_MM).astype(np.float64)


def _means_by_convolution(image: np.ndarray, valid: np.ndarray, spacing: np.ndarray):
    """Sphere means of every voxel by scipy's direct convolution: voxels outside the array
    or not valid count neither in the sum nor in the count."""
    kernel = _sphere_kernel(spacing)
    sums = ndimage.convolve(np.where(valid, image, 0.0), kernel, mode="constant", cval=0.0)
    counts = ndimage.convolve(valid.astype(np.float64), kernel, mode="constant", cval=0.0)
    return sums / counts


@pytest.mark.parametrize("with_invalid", [False, True])
def test_peaks_equal_convolution_means_inside_and_at_the_border(with_invalid):
    # 1 mm voxels: most lines of the ROI take the vectorised path (spheres inside the
    # array), the lesion's part at x = 0 the bounds-checked one
    rng = np.random.default_rng(11)
    spacing = np.ones(3)
    image = rng.normal(40, 25, (22, 36, 40)).round()
    mask = np.zeros(image.shape, bool)
    mask[7:15, 9:27, 8:30] = rng.random((8, 18, 22)) < 0.7
    mask[9:12, 12:20, 0:5] = True
    image[10, 15, 20] = image[12, 20, 25] = 400.0  # two voxels share the maximum
    valid = np.ones(image.shape, bool)
    if with_invalid:
        valid[:, 30:, :] = False
    means = _means_by_convolution(image, valid, spacing)
    f = local_intensity_features(image, mask, spacing, valid if with_invalid else None)
    top = image[mask].max()
    assert f["loc_peak_glob"] == pytest.approx(means[mask].max(), rel=1e-12)
    assert f["loc_peak_loc"] == pytest.approx(means[mask & (image == top)].max(), rel=1e-12)


def test_local_intensity_peaks_match_brute_force():

    rng = np.random.default_rng(5)
    image = rng.normal(50, 30, (9, 30, 28)).round()
    mask = np.zeros(image.shape, bool)
    mask[0:4, 3:12, 20:27] = True  # touches the crop's border: spheres cut
    mask[5:8, 15:22, 4:11] = True
    spacing = np.array([2.5, 0.8, 0.8])
    f = local_intensity_features(image, mask, spacing)
    grid = np.indices(image.shape).reshape(3, -1).T * spacing
    means = {}
    for p in np.argwhere(mask):
        inside = np.linalg.norm(grid - p * spacing, axis=1) <= PEAK_RADIUS_MM
        means[tuple(p)] = image.ravel()[inside].mean()
    x_max = image[mask].max()
    assert f["loc_peak_glob"] == pytest.approx(max(means.values()), rel=1e-5)
    assert f["loc_peak_loc"] == pytest.approx(
        max(v for p, v in means.items() if image[p] == x_max), rel=1e-5
    )


def test_local_intensity_peaks_leave_out_voxels_outside_the_scan():

    rng = np.random.default_rng(6)
    image = rng.normal(50, 30, (8, 20, 20)).round()
    mask = np.zeros(image.shape, bool)
    mask[2:6, 5:12, 6:13] = True
    valid = np.ones(image.shape, bool)
    valid[:, :, :8] = False  # outside the scan: neither in the sums nor in the counts
    spacing = np.array([2.5, 0.8, 0.8])
    f = local_intensity_features(image, mask, spacing, valid)
    grid = np.indices(image.shape).reshape(3, -1).T * spacing
    best = -np.inf
    for p in np.argwhere(mask):
        inside = (np.linalg.norm(grid - p * spacing, axis=1) <= PEAK_RADIUS_MM) & valid.ravel()
        best = max(best, image.ravel()[inside].mean())
    assert f["loc_peak_glob"] == pytest.approx(best)


def test_every_voxels_sphere_mean_with_planes_kept_in_a_ring():
    # one-voxel ROIs all through a block 30 planes deep: the prefix sums of only 13 planes
    # (the sphere's depth at 1 mm) are kept, so every sphere reads planes that have wrapped
    rng = np.random.default_rng(12)
    spacing = np.ones(3)
    image = rng.normal(40, 25, (30, 24, 26)).round() + rng.random((30, 24, 26))
    valid = np.ones(image.shape, bool)
    means = _means_by_convolution(image, valid, spacing)
    for z, y, x in zip(*(rng.integers(0, n, 40) for n in image.shape), strict=True):
        mask = np.zeros(image.shape, bool)
        mask[z, y, x] = True
        f = local_intensity_features(image, mask, spacing)
        assert f["loc_peak_glob"] == pytest.approx(means[z, y, x], rel=1e-12)
        assert f["loc_peak_loc"] == f["loc_peak_glob"]


def _float_path(image, mask, spacing):
    """The float64 kernel (every voxel valid): the path of non-integer intensities."""
    from metevo.radiomics._local_intensity import _peaks, _sphere_rows

    rows = _sphere_rows(tuple(float(h) for h in spacing))
    return _peaks(
        np.ascontiguousarray(image, np.float64), mask, np.ones((1, 1, 1), bool), True, rows
    )


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (2.5, 0.8, 0.8), (1.0, 2.0, 0.7)])
def test_integer_peaks_equal_the_float_kernel_to_the_bit_and_convolution_means(spacing):
    # integer intensities take the int32 plane-at-once kernel: its means must be the float
    # kernel's to the bit (exact integer sums / the same counts) and the convolution's; the
    # ROI reaches every face of the image (spheres cut on all six sides, counts < full)
    rng = np.random.default_rng(21)
    spacing = np.asarray(spacing)
    image = rng.integers(-300, 900, (14, 26, 23)).astype(np.float64)
    mask = rng.random(image.shape) < 0.35
    mask[:, :, :2] = mask[:, :, -2:] = False
    mask[0, 3:9, 0:4] = mask[-1, 20:, 18:] = True  # at the first/last plane, row and column
    image[5, 10, 11] = image[9, 14, 6] = 2000.0  # two voxels share the maximum
    mask[5, 10, 11] = mask[9, 14, 6] = True
    f = local_intensity_features(image, mask, spacing)
    loc, glob = _float_path(image, mask, spacing)
    assert np.float64(f["loc_peak_glob"]).tobytes() == np.float64(glob).tobytes()
    assert np.float64(f["loc_peak_loc"]).tobytes() == np.float64(loc).tobytes()
    means = _means_by_convolution(image, np.ones(image.shape, bool), spacing)
    assert f["loc_peak_glob"] == pytest.approx(means[mask].max(), rel=1e-12)
    assert f["loc_peak_loc"] == pytest.approx(means[image == 2000.0].max(), rel=1e-12)


@pytest.mark.parametrize("kind", ["fraction", "too_large"])
def test_peaks_fall_back_to_float_sums_when_int32_would_not_be_exact(kind):
    # a non-integer voxel, or integers so large that a sphere's sum overflows int32
    # (1021 voxels x 3e6 > 2^31): the float64 kernel takes over, values stay exact
    rng = np.random.default_rng(22)
    spacing = np.ones(3)
    image = rng.integers(-50, 50, (16, 18, 18)).astype(np.float64)
    if kind == "fraction":
        image[12, 3, 4] += 0.25
    else:
        image += 3_000_000.0
    mask = np.zeros(image.shape, bool)
    mask[6:10, 6:12, 5:13] = True
    means = _means_by_convolution(image, np.ones(image.shape, bool), spacing)
    f = local_intensity_features(image, mask, spacing)
    assert f["loc_peak_glob"] == pytest.approx(means[mask].max(), rel=1e-13)
    top = image[mask].max()
    assert f["loc_peak_loc"] == pytest.approx(means[mask & (image == top)].max(), rel=1e-13)


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (2.5, 0.8, 0.8), (0.7, 1.3, 0.9)])
def test_sphere_runs_are_symmetric_in_z(spacing):
    # the integer kernel reads the runs at +dz and -dz together from the sum of their planes
    from metevo.radiomics._local_intensity import _sphere_rows

    runs = {tuple(r) for r in _sphere_rows(spacing).tolist()}
    assert runs == {(-dz, dy, w) for dz, dy, w in runs}
    assert any(dz != 0 for dz, _, _ in runs)


def test_integer_peaks_of_rows_inside_the_image_with_tied_maxima():
    # every sphere inside the image: whole ROI rows take the branch-free pass (highest sum
    # per row); the maximum intensity is tied within one row and across rows and planes
    rng = np.random.default_rng(23)
    spacing = np.ones(3)
    image = rng.integers(-100, 200, (28, 34, 36)).astype(np.float64)
    mask = np.zeros(image.shape, bool)
    mask[7:21, 7:27, 7:29] = rng.random((14, 20, 22)) < 0.5
    for z, y, x in [(9, 10, 9), (9, 10, 20), (15, 22, 14), (18, 8, 27)]:
        image[z, y, x] = 500.0
        mask[z, y, x] = True
    f = local_intensity_features(image, mask, spacing)
    loc, glob = _float_path(image, mask, spacing)
    assert np.float64(f["loc_peak_glob"]).tobytes() == np.float64(glob).tobytes()
    assert np.float64(f["loc_peak_loc"]).tobytes() == np.float64(loc).tobytes()
    means = _means_by_convolution(image, np.ones(image.shape, bool), spacing)
    assert f["loc_peak_loc"] == pytest.approx(means[image == 500.0].max(), rel=1e-12)
    assert f["loc_peak_loc"] < f["loc_peak_glob"]  # the two peaks differ here


@pytest.mark.parametrize("integers", [True, False])
def test_peak_vector_equals_local_intensity_features(integers):
    from metevo.radiomics._local_intensity import LOCAL_NAMES, peak_vector

    rng = np.random.default_rng(61)
    image = rng.normal(50, 40, (18, 20, 22))
    if integers:
        image = image.round()
    mask = np.zeros(image.shape, bool)
    mask[5:12, 6:15, 4:17] = rng.random((7, 9, 13)) < 0.6
    spacing = np.array([1.0, 0.9, 0.9])
    ref = local_intensity_features(image, mask, spacing)
    got = peak_vector(image, mask, spacing)
    assert got.tobytes() == np.array([ref[n] for n in LOCAL_NAMES]).tobytes()
    assert np.isfinite(got).all()
    # the mask's voxels looked for in its bounding box, or a looser one: the same peaks
    for box in [
        (slice(5, 12), slice(6, 15), slice(4, 17)),
        (slice(2, 15), slice(0, 20), slice(3, 22)),
    ]:
        inside = np.zeros(image.shape, bool)
        inside[box] = True
        assert not (mask & ~inside).any()
        assert peak_vector(image, mask, spacing, box).tobytes() == got.tobytes()
