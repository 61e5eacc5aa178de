"""The marching-cubes mesh of metevo.radiomics._mesh against scikit-image's mesh."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import ConvexHull
from skimage.measure import marching_cubes

from metevo.radiomics._mesh import hull_candidates, mesh_area_volume


def _skimage_mesh(mask: np.ndarray, spacing: np.ndarray):
    verts, faces, _, _ = marching_cubes(
        np.pad(mask.astype(np.float32), 1), level=0.5, spacing=tuple(spacing)
    )
    tri = verts[faces]
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    area = 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1).sum()
    volume = abs(np.einsum("ij,ij->", a, np.cross(b, c))) / 6.0
    return verts, area, volume


# every one of the 256 cube configurations occurs in random masks of these densities
@pytest.mark.parametrize("seed", range(12))
def test_area_volume_and_hull_equal_skimage_marching_cubes(seed):
    rng = np.random.default_rng(100 + seed)
    shape = tuple(int(n) for n in rng.integers(2, 12, 3))
    mask = rng.random(shape) < (0.3 + 0.05 * seed)
    spacing = np.array([2.5, 0.8, 0.8]) if seed % 2 else np.array([1.0, 0.5, 2.0])
    verts, area, volume = _skimage_mesh(mask, spacing)
    got_area, got_volume = mesh_area_volume(mask, spacing)
    assert got_area == pytest.approx(area, rel=1e-9)
    assert got_volume == pytest.approx(volume, rel=1e-9)
    candidates = hull_candidates(mask, spacing)
    hull, ours = ConvexHull(verts), ConvexHull(candidates)
    assert ours.volume == pytest.approx(hull.volume, rel=1e-9)
    assert ours.area == pytest.approx(hull.area, rel=1e-9)
    # every vertex of the mesh's hull is a candidate, and the candidates are mesh vertices
    verts = verts - spacing  # the mesh of the padded mask, shifted back to the mask's origin
    on_lattice = {tuple(p) for p in np.rint(4.0 * candidates / spacing).astype(int)}
    mesh = {tuple(p) for p in np.rint(4.0 * verts / spacing).astype(int)}
    assert {
        tuple(p) for p in np.rint(4.0 * verts[hull.vertices] / spacing).astype(int)
    } <= on_lattice
    assert on_lattice <= mesh
    assert len(candidates) < len(verts)


def test_mesh_of_one_voxel_is_the_octahedron_of_its_face_centres():
    # six vertices at the face centres of a cube of side h: a regular octahedron of
    # circumradius r = h / 2 (edge r sqrt(2)): area 4 sqrt(3) r^2 and volume 4/3 r^3
    mask = np.ones((1, 1, 1), bool)
    area, volume = mesh_area_volume(mask, np.array([2.0, 2.0, 2.0]))
    assert area == pytest.approx(4 * np.sqrt(3), rel=1e-12)
    assert volume == pytest.approx(8 / 6, rel=1e-12)
    assert len(hull_candidates(mask, np.ones(3))) == 6


def test_zplane_hull_from_row_ends_equals_the_monotone_chain_on_all_points():
    # each z-plane's hull from one chain over the rows' first points and one over their last
    # points, exact lattice turns: the same vertices as the chain over every point (in mm at
    # 1 mm, where its float turns are exact too), on blobs with holes and one-voxel rows
    from metevo.radiomics._mesh import _line_lattice, _plane_hull_mask, _zplane_hull

    rng = np.random.default_rng(12)
    for _ in range(300):
        shape = tuple(int(v) for v in rng.integers(1, 11, 3))
        mask = rng.random(shape) < rng.random()
        k = _line_lattice(mask)
        expected = _plane_hull_mask(k[:, 0].copy(), 0.5 * k[:, 1], 0.5 * k[:, 2])
        np.testing.assert_array_equal(_zplane_hull(k), expected)
