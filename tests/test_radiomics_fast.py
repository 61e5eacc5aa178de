"""The compiled per-lesion path of metevo.radiomics against the NumPy reference formulas.

``texture_vector`` / ``shape_vector`` evaluate the same IBSI definitions as
``texture_features`` / ``morphology_features`` in numba; they must agree to 1e-10 on random
ROIs, including the degenerate ones (one voxel, one slice, one grey level, empty GLCM
directions), where the reference gives NaN or 0.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from metevo.radiomics._engine import _assemble, _assemble_public, _plan
from metevo.radiomics._intensity import intensity_histogram_features, intensity_statistics
from metevo.radiomics._intensity_fast import (
    HISTOGRAM_NAMES,
    STATISTICS_NAMES,
    histogram_vector,
    statistics_vector,
)
from metevo.radiomics._mesh import hull_candidates
from metevo.radiomics._morphology import _box, label_boxes, morphology_features
from metevo.radiomics._settings import check_settings
from metevo.radiomics._shape_fast import (
    _LATTICE_HULL_MAX,
    SHAPE_NAMES,
    _lattice_hull,
    _qhull,
    _stable_argsort,
    shape_vector,
)
from metevo.radiomics._texture import _ALL, texture_features, texture_matrices
from metevo.radiomics._texture_fast import texture_names, texture_vector
from metevo.radiomics._texture_passes import OFFSETS, _flat_offsets, _zone_pass


def _assert_same(fast: np.ndarray, ref: dict[str, float], names: tuple[str, ...]) -> None:
    assert tuple(ref) == names  # same names, same (catalogue) order
    expected = np.array([ref[n] for n in names], dtype=np.float64)
    np.testing.assert_allclose(fast, expected, rtol=1e-10, atol=1e-12, equal_nan=True)


def _random_rois(seed: int, n: int):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        shape = tuple(int(s) for s in rng.integers(1, 9, 3))
        roi = rng.random(shape) < rng.uniform(0.2, 1.0)
        if not roi.any():
            roi.flat[0] = True
        yield rng, roi


@pytest.mark.parametrize("n_bins", [1, 2, 5, 32])
def test_texture_vector_equals_the_numpy_formulas_on_random_rois(n_bins):
    for rng, roi in _random_rois(seed=10 + n_bins, n=12):
        offset = int(rng.integers(0, 4))  # levels need not start at 1
        grey = rng.integers(1, n_bins + 1, roi.shape) + offset
        for families in (_ALL, ("glrlm",), ("glszm", "ngtdm"), ("gldzm", "glcm")):
            _assert_same(
                texture_vector(grey, roi, families),
                texture_features(grey, roi, families),
                texture_names(families),
            )


@pytest.mark.parametrize(
    "roi_shape",
    [(1, 1, 1), (1, 6, 7), (4, 1, 1), (1, 1, 5)],
    ids=["one voxel", "one slice", "one column", "one row"],
)
def test_texture_vector_on_degenerate_rois(roi_shape):
    rng = np.random.default_rng(3)
    roi = np.ones(roi_shape, bool)
    for grey in (np.full(roi_shape, 7), rng.integers(1, 4, roi_shape)):
        ref = texture_features(grey, roi)
        fast = texture_vector(grey, roi)
        _assert_same(fast, ref, texture_names(_ALL))
    # one voxel: no GLCM pair in any direction, so the direction-averaged GLCM features are NaN
    if roi.size == 1:
        assert np.isnan(fast[:25]).all()


def test_texture_vector_on_isolated_voxels_of_two_levels():
    roi = np.array([[[True, False, True]]])
    grey = np.array([[[1, 5, 3]]])  # the middle voxel is outside the ROI: no pair at all
    _assert_same(texture_vector(grey, roi), texture_features(grey, roi), texture_names(_ALL))


def test_shape_vector_equals_the_numpy_formulas_on_random_rois():
    rng = np.random.default_rng(21)
    for trial in range(30):
        shape = tuple(int(s) for s in rng.integers(1, 10, 3))
        morph = rng.random(shape) < rng.uniform(0.05, 1.0)
        if not morph.any():
            morph.flat[rng.integers(morph.size)] = True
        morph = morph[_box(morph)]
        image = rng.normal(0.0, 50.0, morph.shape).round()
        imask = morph & (rng.random(morph.shape) < 0.8) if trial % 3 else morph
        spacing = np.array([2.5, 0.8, 0.8]) if trial % 2 else np.ones(3)
        with np.errstate(all="ignore"):
            ref = morphology_features(morph, imask, image, spacing, autocorrelation=False)
            fast = shape_vector(morph, imask, image, spacing)
        _assert_same(fast, ref, SHAPE_NAMES)


@pytest.mark.parametrize("shape", [(1, 1, 1), (1, 4, 5), (2, 1, 1)], ids=["1", "slice", "2"])
def test_shape_vector_on_degenerate_rois(shape):
    morph = np.ones(shape, bool)
    image = np.arange(morph.size, dtype=np.float64).reshape(shape)
    with np.errstate(all="ignore"):
        ref = morphology_features(morph, morph, image, np.array([2.5, 0.8, 0.8]))
        fast = shape_vector(morph, morph, image, np.array([2.5, 0.8, 0.8]))
    ref = {k: v for k, v in ref.items() if k in SHAPE_NAMES}
    _assert_same(fast, ref, SHAPE_NAMES)
    # a one-voxel ROI has no principal axes: NaN, as the reference says
    if morph.size == 1:
        assert np.isnan(fast[SHAPE_NAMES.index("morph_pca_elongation")])


def test_zone_pass_finds_the_26_connected_zones_of_scipy():
    rng = np.random.default_rng(5)
    grey = rng.integers(0, 3, (9, 11, 13)).astype(np.int32)
    roi = rng.random(grey.shape) < 0.9
    gp = np.full(tuple(n + 2 for n in grey.shape), -1, np.int32)
    gp[1:-1, 1:-1, 1:-1][roi] = grey[roi]
    step = _flat_offsets(gp.shape)
    flat = gp.ravel()
    level, size, _ = _zone_pass(flat, np.ones(flat.size, np.int32), np.flatnonzero(flat >= 0), step)
    expected = []
    for g in range(3):
        labels, _ = ndimage.label((gp == g), structure=np.ones((3, 3, 3)))
        expected += [(g, int(s)) for s in np.bincount(labels.ravel())[1:]]
    assert sorted(zip(level.tolist(), size.tolist(), strict=True)) == sorted(expected)


@pytest.mark.parametrize("n_lesions", [0, 1, 3])
def test_table_from_blocks_equals_the_public_constructors(n_lesions):
    plan = _plan(check_settings("pyradiomics_like"))
    values = np.random.default_rng(1).random((n_lesions, len(plan.names)))
    if n_lesions:
        values[0, 3] = np.nan
    labels = list(range(2, 2 + n_lesions))
    notes = [f"note {i}" if i % 2 else "" for i in range(n_lesions)]
    fast = _assemble(labels, values.copy(), notes, plan)
    public = _assemble_public(
        np.asarray(labels, dtype=np.int64),
        values.copy(),
        pd.array(notes, dtype="string"),
        plan.columns,
    )
    pd.testing.assert_frame_equal(fast, public)
    assert list(fast.columns) == ["lesion_id", *plan.names, "radiomics_note"]


def test_tables_do_not_share_their_column_index():
    """Renaming one result's column axis (``table.columns.name = ...``, common before a
    melt) must leave the next call's table alone: the plan's index is cached per settings."""
    plan = _plan(check_settings("pyradiomics_like"))
    values = np.zeros((1, len(plan.names)))
    first = _assemble([1], values.copy(), [""], plan)
    first.columns.name = "feature"
    second = _assemble([1], values.copy(), [""], plan)
    assert second.columns.name is None
    assert plan.columns.name is None


@pytest.mark.parametrize("radius", [2, 6, 12])
@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (2.5, 0.8, 0.8)], ids=["iso", "ct"])
def test_lattice_hull_equals_qhull(radius, spacing):
    rng = np.random.default_rng(radius)
    zz, yy, xx = np.indices((2 * radius + 3,) * 3) - radius - 1
    mask = (zz**2 + yy**2 + xx**2 <= radius**2) & (rng.random(zz.shape) < 0.95)
    spacing = np.asarray(spacing)
    candidates = hull_candidates(mask, spacing)
    lattice = np.rint(2.0 * candidates / spacing).astype(np.int64)
    np.testing.assert_allclose(_lattice_hull(lattice, candidates), _qhull(candidates), rtol=1e-10)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 8, 100, 1001])
def test_stable_argsort_equals_numpy_stable_order_with_ties(n):
    x = np.random.default_rng(n).integers(0, 4, n).astype(np.float64)  # many ties
    np.testing.assert_array_equal(_stable_argsort(x), np.argsort(x, kind="stable"))


def test_lattice_hull_of_coplanar_points_is_nan_like_qhull():
    k = np.array([[0, 0, 0], [2, 0, 0], [0, 2, 0], [2, 2, 0], [1, 1, 0]], np.int64)
    assert np.isnan(_lattice_hull(k, k * 0.4)).all()
    assert np.isnan(_qhull(k * 0.4)[:2]).all()


def test_shape_vector_of_a_large_roi_uses_qhull_and_equals_the_reference():
    zz, yy, xx = np.indices((35, 141, 141)) - np.array([17, 70, 70])[:, None, None, None]
    morph = (zz / 17.0) ** 2 + (yy / 70.0) ** 2 + (xx / 61.0) ** 2 <= 1.0
    morph = morph[_box(morph)]  # shape_vector takes the ROI cropped to its box
    spacing = np.array([2.5, 0.8, 0.8])
    assert len(hull_candidates(morph, spacing)) > _LATTICE_HULL_MAX  # the Qhull branch
    image = np.random.default_rng(0).normal(40.0, 10.0, morph.shape).round()
    with np.errstate(all="ignore"):
        ref = morphology_features(morph, morph, image, spacing, autocorrelation=False)
        fast = shape_vector(morph, morph, image, spacing)
    _assert_same(fast, ref, SHAPE_NAMES)


@pytest.mark.parametrize("case", ["ct", "narrow", "one value", "two voxels", "ties"])
def test_intensity_vectors_equal_the_numpy_formulas(case):
    rng = np.random.default_rng(7)
    x = {
        "ct": rng.normal(40.0, 60.0, 3000).round(),
        "narrow": rng.integers(-3, 4, 50).astype(np.float64),
        "one value": np.full(9, -12.0),
        "two voxels": np.array([3.0, 250.0]),
        "ties": np.array([1.0, 1.0, 2.0, 2.0, 5.0, 5.0, 9.0]),
    }[case]
    _assert_same(statistics_vector(x), intensity_statistics(x), STATISTICS_NAMES)
    g = (np.floor((x - x.min()) / 25.0) + 1).astype(np.int64)
    ref = intensity_histogram_features(g)
    _assert_same(histogram_vector(g), {n: ref[n] for n in HISTOGRAM_NAMES}, HISTOGRAM_NAMES)


def test_statistics_vector_leaves_non_integer_intensities_to_the_reference():
    assert statistics_vector(np.array([1.0, 2.5, 3.0])) is None
    assert statistics_vector(np.array([1.0, np.nan])) is None
    # a range too wide to bin
    assert statistics_vector(np.array([0.0, 1e7])) is None


def test_runs_longer_than_the_int16_ring_raise():
    roi = np.ones((1, 1, 32767), bool)
    with pytest.raises(ValueError, match="32,766 voxels"):
        texture_matrices(np.ones(roi.shape, np.int64), roi, ("glrlm",))


@pytest.mark.parametrize("length", [255, 300, 1000])
@pytest.mark.parametrize("families", [("glrlm",), ("glcm", "glrlm")], ids=["alone", "with glcm"])
def test_run_lengths_of_a_long_row_by_hand(length, families):
    # one row (runs along x only): the first length - 20 voxels at level 1, the rest at 2;
    # one-byte run lengths up to 255 voxels, int16 above
    roi = np.ones((1, 1, length), bool)
    grey = np.ones(roi.shape, np.int64)
    grey[..., length - 20 :] = 2
    rlm = texture_matrices(grey, roi, families)["glrlm"]
    x = next(k for k in range(13) if tuple(OFFSETS[k]) == (0, 0, 1))
    expected = np.zeros((2, max(rlm.shape[2], length)), np.int64)
    expected[0, length - 21] = expected[1, 19] = 1
    np.testing.assert_array_equal(rlm[x], expected[:, : rlm.shape[2]])
    for k in set(range(13)) - {x}:  # across the row every voxel is a run of one
        assert rlm[k, 0, 0] == length - 20 and rlm[k, 1, 0] == 20 and rlm[k].sum() == length


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.uint32, np.int64])
@pytest.mark.parametrize("dense", [True, False], ids=["compiled", "find_objects"])
def test_label_boxes_equal_scipy_find_objects(dtype, dense, monkeypatch):
    from metevo.radiomics import _morphology

    rng = np.random.default_rng(4)
    lab = np.zeros((9, 30, 40), dtype)
    for k in (1, 2, 3, 5):  # label 4 absent
        z, y, x = rng.integers(0, 8), rng.integers(0, 25), rng.integers(0, 35)
        lab[z : z + rng.integers(1, 3), y : y + rng.integers(1, 6), x : x + rng.integers(1, 6)] = k
    lab[rng.random(lab.shape) < 0.01] = 6  # scattered voxels: a box spanning the array
    lab[0, 0, 0] = lab[-1, -1, -1] = 7  # the array's corners
    if not dense:
        monkeypatch.setattr(_morphology, "_DENSE_LABELS", 3)
    expected = {
        i + 1: tuple(s.start for s in b) + tuple(s.stop for s in b)
        for i, b in enumerate(ndimage.find_objects(lab))
        if b is not None
    }
    assert 4 not in expected and len(expected) == 6
    assert label_boxes(lab) == (expected, 0)
    if np.dtype(dtype).kind == "i":  # negative values: the lowest is reported, boxes unchanged
        lab[3, 3, 3] = -2
        expected = {
            i + 1: tuple(s.start for s in b) + tuple(s.stop for s in b)
            for i, b in enumerate(ndimage.find_objects(np.where(lab < 0, 0, lab)))
            if b is not None
        }
        assert label_boxes(lab) == (expected, -2)


def test_label_box_runs_count_every_voxel_of_every_label():
    # rows read as runs of one value (several labels and gaps per row, runs at both ends,
    # negative values, labels past the first table size so that it grows): counts equal
    # bincount, boxes find_objects', lowest and highest values numpy's
    from metevo.radiomics._morphology import _label_scan

    rng = np.random.default_rng(7)
    for _ in range(200):
        shape = tuple(int(v) for v in rng.integers(1, 10, 3))
        top = int(rng.choice([6, 70, 300]))
        lab = rng.integers(-2, top, shape) * (rng.random(shape) < rng.random())
        lab = np.repeat(lab, rng.integers(1, 4), axis=2).astype(np.int16)  # runs along x
        boxes, counts, lo, hi, over = _label_scan(np.ascontiguousarray(lab), 1 << 20)
        assert (lo, hi, over) == (min(lab.min(), 0), max(lab.max(), 0), False)
        positive = np.where(lab < 0, 0, lab)
        np.testing.assert_array_equal(counts, np.bincount(positive.ravel(), minlength=hi + 1)[1:])
        for i, b in enumerate(ndimage.find_objects(positive)):
            if b is not None:
                assert tuple(boxes[i]) == tuple(s.start for s in b) + tuple(s.stop for s in b)
        if hi > 1:  # a label above the limit: no boxes, the caller takes find_objects
            assert _label_scan(np.ascontiguousarray(lab), hi - 1)[4]


def _total(values):
    """The sum of ``values`` in sequence from 0.0, as a compiled loop adds them."""
    return np.cumsum(np.append(0.0, values))[-1]


def test_mask_moments_equal_the_float_sums_to_the_bit():
    # the coordinate moments are summed as integers (exact): the float64 sums voxel by
    # voxel in raster order are exact too, so the two agree to the bit; the intensity sums
    # keep the raster order (np.cumsum adds in sequence)
    from metevo.radiomics._morphology import _mask_moments

    rng = np.random.default_rng(8)
    for shape in [(1, 1, 2), (5, 7, 9), (12, 3, 30)]:
        morph = rng.random(shape) < 0.7
        imask = morph & (rng.random(shape) < 0.8)
        image = rng.normal(30, 200, shape)
        n, s1, s2, w, w1, n_int = _mask_moments(morph, imask, image)
        centre = (np.array(shape) - 1) / 2.0
        p = np.argwhere(morph) - centre  # raster order
        assert n == len(p) and n_int == int(imask.sum())
        for a in range(3):
            assert s1[a] == _total(p[:, a])
            for b in range(3):
                assert s2[a, b] == _total(p[:, a] * p[:, b])
        q = np.argwhere(imask) - centre

        v = image[imask]
        assert w == _total(v)
        for a in range(3):
            assert w1[a] == _total(v * q[:, a])


def test_vertex_diameter_equals_the_pairwise_maximum_to_the_bit():
    # squared distances vectorised, their maximum taken on the int64 bits: the same value as
    # the plain double loop (one point, repeated points, anisotropic scales)
    from metevo.radiomics._morphology import _max_distance
    from metevo.radiomics._shape_fast import _vertex_diameter

    rng = np.random.default_rng(9)
    for n in [1, 2, 3, 17, 64]:
        pts = rng.normal(0, 20, (n, 3)) * np.array([2.5, 0.8, 0.8])
        if n > 2:
            pts[-1] = pts[0]
        idx = rng.permutation(n)
        expected = _max_distance(np.ascontiguousarray(pts[idx])) if n > 1 else 0.0
        assert _vertex_diameter(pts, idx) == expected
        if n == 2:
            assert expected == np.linalg.norm(pts[0] - pts[1])


def test_fused_kernel_cache_follows_the_modules_it_calls(tmp_path):
    # numba keys a cached kernel on its own file: without the fingerprint of the modules it
    # calls, a kernel keeps a changed dependency's old machine code (here: 2 instead of 20)
    import subprocess
    import sys
    import textwrap

    (tmp_path / "dep.py").write_text("import numba\n@numba.njit(cache=True)\ndef f(x):\n    return x + 0\n")
    (tmp_path / "kern.py").write_text(
        textwrap.dedent(
            """
            import numba, dep
            from metevo.radiomics._numba_cache import sources_fingerprint

            def make(fingerprint):
                @numba.njit(cache=True)
                def kernel(x):
                    return f(x) * 2 if fingerprint else -1
                return kernel

            f = dep.f
            kernel = make(sources_fingerprint(dep))
            """
        )
    )

    def run() -> int:
        code = "import kern; print(kern.kernel(1))"
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
        )
        return int(done.stdout)

    assert run() == 2
    assert run() == 2  # from the cache
    (tmp_path / "dep.py").write_text("import numba\n@numba.njit(cache=True)\ndef f(x):\n    return x + 9\n")
    assert run() == 20
