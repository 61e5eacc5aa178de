"""Morphological features without spatial autocorrelation (IBSI-1 3.1), as one vector.

The same definitions as :func:`~metevo.radiomics._morphology.morphology_features` (the
readable reference; the tests compare the two to 1e-10): the compiled mesh, moment and
hull-candidate passes, Qhull on the candidates, then every formula (principal axes,
ellipsoid area, densities) in one numba call writing the 23 values in catalogue order.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from scipy.spatial import ConvexHull, QhullError

from metevo.radiomics import _mesh, _morphology
from metevo.radiomics._mesh import (
    _area_table,
    _candidates,
    _count_cubes,
    _stable_argsort,
    _unit_table,
)
from metevo.radiomics._morphology import _mask_moments, _max_distance
from metevo.radiomics._numba_cache import sources_fingerprint

__all__ = ["SHAPE_NAMES", "shape_vector"]

SHAPE_NAMES = (
    "morph_volume_mm3",
    "morph_vol_approx_mm3",
    "morph_area_mesh_mm2",
    "morph_av_per_mm",
    "morph_comp_1",
    "morph_comp_2",
    "morph_sph_dispr",
    "morph_sphericity",
    "morph_asphericity",
    "morph_com_mm",
    "morph_diam_mm",
    "morph_pca_maj_axis_mm",
    "morph_pca_min_axis_mm",
    "morph_pca_least_axis_mm",
    "morph_pca_elongation",
    "morph_pca_flatness",
    "morph_vol_dens_aabb",
    "morph_area_dens_aabb",
    "morph_vol_dens_aee",
    "morph_area_dens_aee",
    "morph_vol_dens_conv_hull",
    "morph_area_dens_conv_hull",
    "morph_integ_int",
)

# above this many candidates Qhull's O(n log n) wins over the O(n h) lattice hull (measured,
# one core: 753 candidates 0.64 vs 1.08 ms, 1206: 1.9 vs 4.3 ms, 2316: 10.9 vs 14.6 ms)
_LATTICE_HULL_MAX = 1500

_JIT = {"cache": True, "nogil": True, "error_model": "numpy"}


@numba.njit(**_JIT)
def _div(a, b):  # pragma: no cover - compiled
    return a / b if (b != 0 and math.isfinite(b)) else np.nan


@numba.njit(**_JIT)
def _ellipsoid_area(a, b, c):  # pragma: no cover - compiled
    """Surface of an ellipsoid with semi-axes a >= b >= c (IBSI 3.1.19, 20 terms of the
    Legendre series; P_n by the three-term recurrence)."""
    if not a > 0:
        return np.nan
    alpha = math.sqrt(max(1.0 - b * b / (a * a), 0.0))
    beta = math.sqrt(max(1.0 - c * c / (a * a), 0.0))
    if alpha == 0 and beta == 0:
        return 4.0 * math.pi * a * b
    x = (alpha**2 + beta**2) / (2.0 * alpha * beta) if alpha * beta > 0 else 1.0
    ab = alpha * beta
    p_prev = 1.0  # P_0
    p = x  # P_1
    total = 1.0  # nu = 0: (ab)^0 / 1 * P_0
    power = 1.0
    for nu in range(1, 21):
        power *= ab
        if nu > 1:
            p_prev, p = p, ((2 * nu - 1) * x * p - (nu - 1) * p_prev) / nu
        total += power / (1.0 - 4.0 * nu * nu) * p
    return 4.0 * math.pi * a * b * total


@numba.njit(**_JIT)
def _shape_formulas(
    area, volume, n_morph, spacing, n, s1, s2, w, w1, n_int, diam, hull_volume, hull_area, ext
):  # pragma: no cover - compiled
    out = np.empty(23)
    out[0] = volume
    out[1] = n_morph * spacing[0] * spacing[1] * spacing[2]
    out[2] = area
    out[3] = area / volume
    out[4] = volume / (math.sqrt(math.pi) * area**1.5)
    out[5] = 36.0 * math.pi * volume**2 / area**3
    sph = (36.0 * math.pi * volume**2) ** (1.0 / 3.0)
    out[6] = area / sph
    out[7] = sph / area
    out[8] = (area**3 / (36.0 * math.pi * volume**2)) ** (1.0 / 3.0) - 1.0
    if n_int and w != 0:
        d = 0.0
        for a in range(3):
            d += ((s1[a] / n - w1[a] / w) * spacing[a]) ** 2
        out[9] = math.sqrt(d)
    else:
        out[9] = np.nan
    out[10] = diam
    lam = np.full(3, np.nan)
    if n_morph >= 2:
        cov = np.empty((3, 3))
        for a in range(3):
            for b in range(3):
                cov[a, b] = (
                    (s2[a, b] - n * (s1[a] / n) * (s1[b] / n)) / (n - 1) * spacing[a] * spacing[b]
                )
        ev = np.linalg.eigvalsh(cov)  # ascending
        for a in range(3):
            lam[a] = max(ev[2 - a], 0.0)
    out[11] = 4.0 * math.sqrt(lam[0])
    out[12] = 4.0 * math.sqrt(lam[1])
    out[13] = 4.0 * math.sqrt(lam[2])
    out[14] = math.sqrt(_div(lam[1], lam[0]))
    out[15] = math.sqrt(_div(lam[2], lam[0]))
    out[16] = _div(volume, ext[0] * ext[1] * ext[2])
    out[17] = _div(area, 2.0 * (ext[0] * ext[1] + ext[1] * ext[2] + ext[0] * ext[2]))
    sa = 2.0 * math.sqrt(lam[0])
    sb = 2.0 * math.sqrt(lam[1])
    sc = 2.0 * math.sqrt(lam[2])
    out[18] = _div(volume, 4.0 * math.pi * sa * sb * sc / 3.0)
    out[19] = _div(area, _ellipsoid_area(sa, sb, sc)) if sc > 0 else np.nan
    out[20] = _div(volume, hull_volume)
    out[21] = _div(area, hull_area)
    out[22] = volume * w / n_int if n_int else np.nan
    return out


@numba.njit(**_JIT)
def _normal(k, a, b, c):  # pragma: no cover - compiled
    """``(b - a) x (c - a)`` of lattice points ``k`` (exact integers)."""
    ux = k[b, 0] - k[a, 0]
    uy = k[b, 1] - k[a, 1]
    uz = k[b, 2] - k[a, 2]
    vx = k[c, 0] - k[a, 0]
    vy = k[c, 1] - k[a, 1]
    vz = k[c, 2] - k[a, 2]
    return uy * vz - uz * vy, uz * vx - ux * vz, ux * vy - uy * vx


@numba.njit(**_JIT)
def _orient(k, a, b, c, p):  # pragma: no cover - compiled
    """Sign-exact 6 x signed volume of the tetrahedron (a, b, c, p) of lattice points ``k``."""
    nx, ny, nz = _normal(k, a, b, c)
    return nx * (k[p, 0] - k[a, 0]) + ny * (k[p, 1] - k[a, 1]) + nz * (k[p, 2] - k[a, 2])


@numba.njit(**_JIT)
def _set_face(face, plane, f, k, a, b, c):  # pragma: no cover - compiled
    """Face ``f`` = (a, b, c) and its plane (columns of ``plane``, float64): normal
    ``(b - a) x (c - a)`` and offset, so that ``normal . k[p] - offset`` equals
    ``_orient(k, a, b, c, p)`` exactly (integers below 2**53, see ``_lattice_hull``)."""
    face[f, 0] = a
    face[f, 1] = b
    face[f, 2] = c
    nx, ny, nz = _normal(k, a, b, c)
    plane[0, f] = nx
    plane[1, f] = ny
    plane[2, f] = nz
    plane[3, f] = nx * k[a, 0] + ny * k[a, 1] + nz * k[a, 2]


@numba.njit(**_JIT)
def _kill_face(plane, alive, f):  # pragma: no cover - compiled
    """Mark face ``f`` dead: a plane no point lies beyond (0 . k > inf never holds)."""
    alive[f] = False
    plane[0, f] = plane[1, f] = plane[2, f] = 0.0
    plane[3, f] = np.inf


@numba.njit(**_JIT)
def _visible(plane, n_faces, kx, ky, kz, vis):  # pragma: no cover - compiled
    """``vis[f]`` = whether the point ``(kx, ky, kz)`` lies strictly beyond plane ``f``, for
    the first ``n_faces`` planes; returns how many do. Branch-free, so that the compiler
    vectorises it."""
    nx, ny, nz, off = plane[0], plane[1], plane[2], plane[3]
    count = 0
    for f in range(n_faces):
        hit = nx[f] * kx + ny[f] * ky + nz[f] * kz > off[f]
        vis[f] = hit
        count += hit
    return count


# the lattice hull's exact float64 plane tests need |k| < 2**15 (``_lattice_hull``): ROI
# boxes up to this many voxels along each axis (the half-voxel lattice doubles it)
LATTICE_MAX_VOXELS = 16000


@numba.njit(**_JIT)
def _lattice_hull(k, pts):  # pragma: no cover - compiled
    """Convex hull of points on an integer lattice ``k`` (n, 3; ``pts`` the same points in
    mm): volume, area and largest vertex distance, or NaNs when the points are coplanar.

    Incremental construction with exact integer orientation tests (a face sees a point
    only when the point lies strictly outside its plane), so coplanar lattice points need
    no tolerance: the result equals Qhull's up to rounding of the final sums. O(n h) for
    h faces: used up to ``_LATTICE_HULL_MAX`` hull candidates. The planes are held in
    float64, one row per coefficient (the visibility scan then runs on whole vectors): with
    coordinates below 2**15 in magnitude (``LATTICE_MAX_VOXELS``) normals, offsets and dot
    products stay below 2**53, so every test is exact integer arithmetic.
    """
    n = k.shape[0]
    nan3 = (np.nan, np.nan, np.nan)
    if n < 4:
        return nan3
    # farthest from the centroid first: the early hull is nearly the final one, so most later
    # points fall inside it and change nothing
    centre = np.zeros(3)
    for i in range(n):
        for a in range(3):
            centre[a] += k[i, a] / n
    far = np.empty(n)
    for i in range(n):
        far[i] = -(
            (k[i, 0] - centre[0]) ** 2 + (k[i, 1] - centre[1]) ** 2 + (k[i, 2] - centre[2]) ** 2
        )
    order = _stable_argsort(far)
    # element loops, not fancy indexing or slice copies: no shape-error paths to compile
    k_in, pts_in = k, pts
    k = np.empty_like(k_in)
    pts = np.empty_like(pts_in)
    for i in range(n):
        for a in range(3):
            k[i, a] = k_in[order[i], a]
            pts[i, a] = pts_in[order[i], a]
    # a non-degenerate starting tetrahedron
    i1 = -1
    for i in range(1, n):
        if k[i, 0] != k[0, 0] or k[i, 1] != k[0, 1] or k[i, 2] != k[0, 2]:
            i1 = i
            break
    if i1 < 0:
        return nan3
    i2 = -1
    for i in range(1, n):
        cx = (k[i1, 1] - k[0, 1]) * (k[i, 2] - k[0, 2]) - (k[i1, 2] - k[0, 2]) * (k[i, 1] - k[0, 1])
        cy = (k[i1, 2] - k[0, 2]) * (k[i, 0] - k[0, 0]) - (k[i1, 0] - k[0, 0]) * (k[i, 2] - k[0, 2])
        cz = (k[i1, 0] - k[0, 0]) * (k[i, 1] - k[0, 1]) - (k[i1, 1] - k[0, 1]) * (k[i, 0] - k[0, 0])
        if cx != 0 or cy != 0 or cz != 0:
            i2 = i
            break
    if i2 < 0:
        return nan3
    i3 = -1
    for i in range(1, n):
        if _orient(k, 0, i1, i2, i) != 0:
            i3 = i
            break
    if i3 < 0:
        return nan3  # coplanar: Qhull fails too
    cap = 64 + 8 * n
    face = np.empty((cap, 3), np.int64)
    plane = np.empty((4, cap))  # normals' x, y, z, offsets: visibility by one dot product
    alive = np.zeros(cap, np.bool_)
    n_faces = 0
    tet = (0, i1, i2, i3)
    for f in range(4):
        a, b, c, d = tet[f], tet[(f + 1) % 4], tet[(f + 2) % 4], tet[(f + 3) % 4]
        if _orient(k, a, b, c, d) > 0:
            b, c = c, b  # the fourth vertex must lie behind the face
        _set_face(face, plane, n_faces, k, a, b, c)
        alive[n_faces] = True
        n_faces += 1
    used = np.zeros(n, np.bool_)
    used[0] = used[i1] = used[i2] = used[i3] = True
    edges = np.empty((3 * cap, 2), np.int64)
    head = np.full(n, -1, np.int64)
    vis = np.zeros(8 * (cap // 8 + 1), np.uint8)  # the visibility flags, read as words too
    words = vis.view(np.uint64)
    link = np.empty(3 * cap, np.int64)
    n_dead = 0
    for p in range(n):
        if used[p]:
            continue
        kx, ky, kz = np.float64(k[p, 0]), np.float64(k[p, 1]), np.float64(k[p, 2])
        if _visible(plane, n_faces, kx, ky, kz, vis) == 0:
            continue  # inside or on the hull (dead faces are never visible)
        n_edges = 0
        for word in range((n_faces + 7) // 8):  # the visible faces, eight flags at a time
            if words[word] == 0:
                continue
            for f in range(8 * word, min(8 * word + 8, n_faces)):
                if vis[f]:
                    _kill_face(plane, alive, f)
                    for e in range(3):
                        edges[n_edges, 0] = face[f, e]
                        edges[n_edges, 1] = face[f, (e + 1) % 3]
                        n_edges += 1
        used[p] = True
        n_dead += n_edges // 3  # the visible faces
        if n_faces + n_edges > cap or 2 * n_dead > n_faces:  # compact the dead faces away
            m = 0
            for f in range(n_faces):
                if alive[f]:
                    for a in range(3):
                        face[m, a] = face[f, a]
                    for a in range(4):
                        plane[a, m] = plane[a, f]
                    alive[m] = True
                    m += 1
            for f in range(m, n_faces):
                _kill_face(plane, alive, f)
            n_faces = m
            n_dead = 0
            if n_faces + n_edges > cap:
                grown = np.empty((2 * (n_faces + n_edges), 3), np.int64)
                grown_plane = np.empty((4, grown.shape[0]))
                alive = np.zeros(grown.shape[0], np.bool_)
                for f in range(n_faces):
                    for a in range(3):
                        grown[f, a] = face[f, a]
                    for a in range(4):
                        grown_plane[a, f] = plane[a, f]
                    alive[f] = True
                face, plane = grown, grown_plane
                cap = face.shape[0]
                more = np.empty((3 * cap, 2), np.int64)
                for e in range(n_edges):
                    more[e, 0] = edges[e, 0]
                    more[e, 1] = edges[e, 1]
                edges = more
                link = np.empty(3 * cap, np.int64)
                vis = np.zeros(8 * (cap // 8 + 1), np.uint8)
                words = vis.view(np.uint64)
        # horizon: the visible faces' edges without their twin, found among the edges
        # leaving the edge's end (``head``/``link``: the edges by first vertex)
        for e in range(n_edges):
            link[e] = head[edges[e, 0]]
            head[edges[e, 0]] = e
        for e in range(n_edges):
            a = edges[e, 0]
            b = edges[e, 1]
            twin = False
            q = head[b]
            while q >= 0:
                if edges[q, 1] == a:
                    twin = True
                    break
                q = link[q]
            if not twin:
                _set_face(face, plane, n_faces, k, a, b, p)
                alive[n_faces] = True
                n_faces += 1
        for e in range(n_edges):
            head[edges[e, 0]] = -1
    volume = 0.0
    area = 0.0
    vert = np.zeros(n, np.bool_)
    for f in range(n_faces):
        if not alive[f]:
            continue
        a, b, c = face[f, 0], face[f, 1], face[f, 2]
        vert[a] = vert[b] = vert[c] = True
        u0, u1, u2 = pts[b, 0] - pts[a, 0], pts[b, 1] - pts[a, 1], pts[b, 2] - pts[a, 2]
        v0, v1, v2 = pts[c, 0] - pts[a, 0], pts[c, 1] - pts[a, 1], pts[c, 2] - pts[a, 2]
        w0, w1, w2 = pts[a, 0] - pts[0, 0], pts[a, 1] - pts[0, 1], pts[a, 2] - pts[0, 2]
        cx = u1 * v2 - u2 * v1
        cy = u2 * v0 - u0 * v2
        cz = u0 * v1 - u1 * v0
        area += 0.5 * math.sqrt(cx * cx + cy * cy + cz * cz)
        volume += (w0 * cx + w1 * cy + w2 * cz) / 6.0
    return abs(volume), area, _vertex_diameter(pts, np.flatnonzero(vert))


@numba.njit(**_JIT)
def _vertex_diameter(pts, idx):  # pragma: no cover - compiled
    """Largest distance between two of the points ``pts[idx]``: the squared distances of
    one point to the later ones in one vectorised loop, their maximum as the largest
    int64 bit pattern (non-negative doubles order as their bits do), the same value as a
    running ``max`` of the same sums."""
    m = idx.size
    xs = np.empty(m)
    ys = np.empty(m)
    zs = np.empty(m)
    for i in range(m):
        xs[i] = pts[idx[i], 0]
        ys[i] = pts[idx[i], 1]
        zs[i] = pts[idx[i], 2]
    sq = np.zeros(max(m, 1))
    bits = sq.view(np.int64)
    best = np.int64(0)  # the bits of 0.0
    for i in range(m):
        n = m - i - 1
        for j in range(n):
            dx = xs[i] - xs[i + 1 + j]
            dy = ys[i] - ys[i + 1 + j]
            dz = zs[i] - zs[i + 1 + j]
            sq[j] = dx**2 + dy**2 + dz**2
        for j in range(n):
            best = max(best, bits[j])
    return math.sqrt(np.array([best]).view(np.float64)[0])


def _make_shape_kernel(fingerprint: int):  # a numba dispatcher
    """``_shape_kernel``, cached under the ``fingerprint`` of the modules it calls
    (``_numba_cache``)."""

    @numba.njit(**_JIT)
    def _shape_kernel(morph, imask, image, spacing, area_table, v0, s_table):  # pragma: no cover
        """``shape_vector`` in one compiled call: mesh counts, moments, hull candidates, the
        lattice hull (up to ``_LATTICE_HULL_MAX`` candidates) and every formula. Returns the 23
        values and the candidates when Qhull is to take the hull (else no candidate)."""
        counts, pos = _count_cubes(morph)
        # BLAS dot products: the area and the first volume term equal those of ``mesh_area_volume``
        # (numpy's ``@``) to the bit; its second term (an ``einsum`` there) to rounding
        counts_f = counts.astype(np.float64)
        area = np.dot(counts_f, area_table)
        vol = np.dot(counts_f, v0) + np.dot(pos.astype(np.float64).ravel(), s_table.ravel())
        volume = abs(vol) * spacing[0] * spacing[1] * spacing[2] / 6.0
        n, s1, s2, w, w1, n_int = _mask_moments(morph, imask, image)
        candidates, lattice = _candidates(morph, spacing)
        m = candidates.shape[0]
        hull_volume = hull_area = diam = np.nan
        if m <= _LATTICE_HULL_MAX and max(morph.shape) <= LATTICE_MAX_VOXELS:
            hull_volume, hull_area, diam = _lattice_hull(lattice, candidates)
            if not math.isfinite(hull_volume):  # coplanar: as the reference, no hull
                diam = _max_distance(candidates) if m > 1 else np.nan
            m = 0
        ext = np.empty(3)
        for a in range(3):
            ext[a] = spacing[a] * morph.shape[a]
        out = _shape_formulas(
            area, volume, n, spacing, n, s1, s2, w, w1, n_int, diam, hull_volume, hull_area, ext
        )
        if fingerprint == 0:  # never (the fingerprint is odd): it only keys the cache
            m = 0
        return out, candidates[:m]

    return _shape_kernel


_shape_kernel = _make_shape_kernel(sources_fingerprint(_mesh, _morphology))


def shape_vector(
    morph: np.ndarray, intensity_mask: np.ndarray, image: np.ndarray, spacing: np.ndarray
) -> np.ndarray:
    """The 23 morphological features of ``SHAPE_NAMES`` of one ROI cropped to its bounding
    box (``morph`` holds a voxel on every face of the array); arguments as
    :func:`~metevo.radiomics._morphology.morphology_features`. Run under
    ``np.errstate(all="ignore")`` (degenerate ROIs give NaN)."""
    spacing = np.asarray(spacing, dtype=np.float64)
    _, v0, s_table = _unit_table()
    if image.dtype != np.float64:
        image = image.astype(np.float64)
    out, candidates = _shape_kernel(
        np.ascontiguousarray(morph),
        np.ascontiguousarray(intensity_mask),
        image,  # as it is (a view): read only under the intensity mask
        spacing,
        _area_table((float(spacing[0]), float(spacing[1]), float(spacing[2]))),
        v0,
        s_table,
    )
    if len(candidates):  # more candidates than the lattice hull takes: Qhull
        hull_volume, hull_area, out[10] = _qhull(candidates)
        out[20] = out[0] / hull_volume if math.isfinite(hull_volume) and hull_volume else math.nan
        out[21] = out[2] / hull_area if math.isfinite(hull_area) and hull_area else math.nan
    return out


def _qhull(candidates: np.ndarray) -> tuple[float, float, float]:
    """Volume, area and largest vertex distance of the convex hull by Qhull."""
    try:
        hull = ConvexHull(candidates)
        diam = _max_distance(np.ascontiguousarray(candidates[hull.vertices]))
        return float(hull.volume), float(hull.area), diam
    except (QhullError, ValueError):
        diam = _max_distance(candidates) if len(candidates) > 1 else math.nan
        return math.nan, math.nan, diam
