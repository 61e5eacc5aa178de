"""The ROI's surface mesh (IBSI-1 3.1: marching cubes at level 0.5 on the zero-padded mask)
without building it: area, volume and the candidate vertices of its convex hull.

On a binary mask every marching-cubes vertex is the midpoint of a cube edge whose two voxels
differ, and each cube's triangles depend only on its 8 corner values (one of 256
configurations). So the mesh area is ``sum_c count[c] * area[c]`` over the configurations, and
its volume (divergence theorem) ``sum_c count[c] * V0[c] + P[c] . S[c]`` with ``V0`` the signed
tetrahedra of the configuration's triangles at the origin, ``S`` the sum of their
(unnormalised) normals and ``P`` the sum of the cubes' positions: one pass over the mask counts
the configurations, and the per-configuration table comes from scikit-image's marching cubes
(Lewiner), run once on each single cube, so the figures equal those of its mesh of the whole
mask.
"""

from __future__ import annotations

from functools import lru_cache

import numba
import numpy as np

__all__ = ["hull_candidates", "mesh_area_volume"]


@lru_cache(maxsize=1)
def _unit_table() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per configuration (bit ``4 dx + 2 dz + dy`` set where the corner is in the ROI, unit
    voxels): triangle cross products ``(b - a) x (c - a)`` (padded with zeros, shape
    (256, 12, 3)), ``V0`` = sum of ``det(a, b, c)`` and ``S`` = sum of the cross products."""
    from skimage.measure import marching_cubes

    cross = np.zeros((256, 12, 3))
    v0 = np.zeros(256)
    s = np.zeros((256, 3))
    for code in range(1, 255):
        cube = np.zeros((2, 2, 2), np.float32)
        for bit in range(8):
            if code >> bit & 1:
                dx, dz, dy = bit >> 2 & 1, bit >> 1 & 1, bit & 1
                cube[dz, dy, dx] = 1.0
        verts, faces, _, _ = marching_cubes(cube, level=0.5)
        tri = verts.astype(np.float64)[faces]  # (t, 3 vertices, zyx)
        a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
        x = np.cross(b - a, c - a)
        cross[code, : len(x)] = x
        v0[code] = float(np.einsum("ij,ij->", a, np.cross(b, c)))
        s[code] = x.sum(axis=0)
    return cross, v0, s


@lru_cache(maxsize=16)
def _area_table(spacing: tuple[float, float, float]) -> np.ndarray:
    """Mesh area of each configuration at voxel size ``spacing`` (z, y, x) in mm^2."""
    cross = _unit_table()[0]
    sz, sy, sx = spacing
    scaled = cross * np.array([sy * sx, sz * sx, sz * sy])
    area = 0.5 * np.sqrt((scaled**2).sum(axis=2)).sum(axis=1)
    area.setflags(write=False)
    return area


@numba.njit(cache=True, nogil=True)
def _count_cubes(mask):  # pragma: no cover - compiled
    """Configuration counts and summed cube positions of the zero-padded ``mask``."""
    nz, ny, nx = mask.shape
    p = np.zeros((nz + 2, ny + 2, nx + 2), np.uint8)
    for z in range(nz):
        for y in range(ny):
            for x in range(nx):
                if mask[z, y, x]:
                    p[z + 1, y + 1, x + 1] = 1
    counts = np.zeros(256, np.int64)
    pos = np.zeros((256, 3), np.int64)
    for z in range(nz + 1):
        for y in range(ny + 1):
            a = p[z, y]
            b = p[z, y + 1]
            c = p[z + 1, y]
            d = p[z + 1, y + 1]
            prev = a[0] | (b[0] << 1) | (c[0] << 2) | (d[0] << 3)
            for x in range(nx + 1):
                col = a[x + 1] | (b[x + 1] << 1) | (c[x + 1] << 2) | (d[x + 1] << 3)
                code = prev | (col << 4)
                prev = col
                if code != 0 and code != 255:
                    counts[code] += 1
                    pos[code, 0] += z
                    pos[code, 1] += y
                    pos[code, 2] += x
    return counts, pos


def mesh_area_volume(mask: np.ndarray, spacing: np.ndarray) -> tuple[float, float]:
    """Area (mm^2) and volume (mm^3) of the marching-cubes mesh of ``mask`` (bool, z, y, x),
    zero-padded, at level 0.5; equal to those of scikit-image's mesh of the padded mask."""
    counts, pos = _count_cubes(np.ascontiguousarray(mask))
    _, v0, s = _unit_table()
    spacing = tuple(float(h) for h in spacing)
    area = float(counts @ _area_table(spacing))
    vol = float(counts @ v0) + float(np.einsum("ij,ij->", pos.astype(np.float64), s))
    return area, abs(vol) * spacing[0] * spacing[1] * spacing[2] / 6.0


@numba.njit(cache=True, nogil=True)
def _line_extremes(mask):  # pragma: no cover - compiled
    """The first and last mesh vertex of every lattice line, in index units of ``mask``.

    Mesh vertices (edge midpoints between a voxel in the ROI and one out of it, the mask
    zero-padded) lie on lines along x: ``(z, y)`` for x-edges, ``(z, y + 1/2)`` for y-edges,
    ``(z + 1/2, y)`` for z-edges. A vertex of the convex hull is an end of its line's vertices.
    """
    nz, ny, nx = mask.shape
    out = np.empty((6 * (nz + 1) * (ny + 1), 3))
    k = 0
    for z in range(-1, nz):
        for y in range(-1, ny):
            for kind in range(3):
                lo = -1
                hi = -1
                for x in range(nx):
                    inside = z >= 0 and y >= 0 and mask[z, y, x]
                    if kind == 0:
                        hit = inside
                    elif kind == 1:
                        other = z >= 0 and y + 1 < ny and mask[z, y + 1, x]
                        hit = inside != other
                    else:
                        other = y >= 0 and z + 1 < nz and mask[z + 1, y, x]
                        hit = inside != other
                    if hit:
                        if lo < 0:
                            lo = x
                        hi = x
                if lo < 0:
                    continue
                if kind == 0:
                    if z < 0 or y < 0:
                        continue
                    out[k, 0] = z
                    out[k, 1] = y
                    out[k, 2] = lo - 0.5
                    out[k + 1, 0] = z
                    out[k + 1, 1] = y
                    out[k + 1, 2] = hi + 0.5
                    k += 2
                else:
                    dz = 0.5 if kind == 2 else 0.0
                    dy = 0.5 if kind == 1 else 0.0
                    out[k, 0] = z + dz
                    out[k, 1] = y + dy
                    out[k, 2] = lo
                    out[k + 1, 0] = z + dz
                    out[k + 1, 1] = y + dy
                    out[k + 1, 2] = hi
                    k += 2 if hi > lo else 1  # one vertex on the line: listed once
    return out[:k]


@numba.njit(cache=True, nogil=True)
def _turn(y, x, o, a, b):  # pragma: no cover - compiled
    """Cross product of ``a - o`` and ``b - o``: positive for a counter-clockwise turn."""
    return (y[a] - y[o]) * (x[b] - x[o]) - (x[a] - x[o]) * (y[b] - y[o])


@numba.njit(cache=True, nogil=True)
def _plane_hull_mask(plane, y, x):  # pragma: no cover - compiled
    """Vertices of the 2D convex hull of each plane's points (monotone chain).

    The points are sorted by (plane, y, x); collinear boundary points are dropped.
    """
    n = plane.size
    keep = np.zeros(n, np.bool_)
    hull = np.empty(n + 1, np.int64)
    start = 0
    while start < n:
        end = start
        while end < n and plane[end] == plane[start]:
            end += 1
        if end - start <= 2:
            for i in range(start, end):
                keep[i] = True
        else:
            k = 0
            for i in range(start, end):
                while k >= 2 and _turn(y, x, hull[k - 2], hull[k - 1], i) <= 0:
                    k -= 1
                hull[k] = i
                k += 1
            lower = k + 1
            for i in range(end - 2, start - 1, -1):
                while k >= lower and _turn(y, x, hull[k - 2], hull[k - 1], i) <= 0:
                    k -= 1
                hull[k] = i
                k += 1
            for j in range(k - 1):
                keep[hull[j]] = True
        start = end
    return keep


def hull_candidates(mask: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """Mesh vertices (mm, z, y, x; relative to the mask's first voxel) that can be vertices
    of the mesh's 3D convex hull.

    A vertex of the 3D hull is extreme on its lattice line and within its plane ``z = const``,
    so it is a vertex of that plane's 2D hull: keeping those leaves the 3D hull (volume, area,
    largest vertex distance) unchanged and cuts the points Qhull has to process.
    """
    pts = _line_extremes(np.ascontiguousarray(mask))
    k = np.rint(2.0 * pts).astype(np.int64)  # half-voxel lattice: integer sort keys
    k -= k.min(axis=0)
    ext = k.max(axis=0) + 1
    order = np.argsort((k[:, 0] * ext[1] + k[:, 1]) * ext[2] + k[:, 2], kind="stable")
    v = pts[order] * np.asarray(spacing, dtype=np.float64)
    keep = _plane_hull_mask(k[order, 0], v[:, 1], v[:, 2])
    v, k = v[keep], k[order[keep]]
    # a vertex of the 3D hull is extreme in every subset holding it: also a vertex of the 2D
    # hull of the candidates in its plane y = const and in its plane x = const. Extreme points
    # do not change under scaling, so the half-voxel lattice gives exact integer turn tests.
    for a, b, c in ((1, 0, 2), (2, 0, 1)):
        order = np.argsort((k[:, a] * ext[b] + k[:, b]) * ext[c] + k[:, c], kind="stable")
        kf = k[order].astype(np.float64)
        keep = order[_plane_hull_mask(k[order, a], kf[:, b], kf[:, c])]
        keep.sort()  # the candidates stay in (z, y, x) order
        v, k = v[keep], k[keep]
    return v
