"""Morphological features (IBSI-1 section 3.1); local intensity features are in
``_local_intensity``.

All functions take arrays in (z, y, x) order with the voxel spacing in mm in the same order.
Undefined values (a 1-voxel ROI has no convex hull and no principal axes) are NaN; callers
run them under ``np.errstate(all="ignore")``.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from scipy.spatial import ConvexHull, QhullError
from scipy.special import eval_legendre

from metevo.radiomics._autocorrelation import spatial_autocorrelation
from metevo.radiomics._mesh import hull_candidates, mesh_area_volume

__all__ = ["label_boxes", "morphology_features"]


def _box(mask: np.ndarray) -> tuple[slice, slice, slice]:
    """The bounding box of ``mask`` (which holds at least one voxel)."""
    out = []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        hit = np.flatnonzero(mask.any(axis=other))
        out.append(slice(int(hit[0]), int(hit[-1]) + 1))
    return tuple(out)


@numba.njit(cache=True, nogil=True)
def _label_scan(lab, limit):  # pragma: no cover - compiled
    """One pass over the label image ``lab`` (z, y, x): the bounding box (start z, y, x, stop z,
    y, x) and voxel count of every label 1 .. (highest label), the lowest and the highest
    value, and whether a label above ``limit`` was met (then no boxes are kept). Each row's
    lowest and highest values come first (a vectorised loop): rows with no positive value are
    skipped; the others are read as runs of one value (a box and a count update per run)."""
    cap = 64
    boxes = np.empty((cap, 6), np.int64)
    counts = np.zeros(cap, np.int64)
    nz, ny, nx = lab.shape
    lo = np.int64(0)
    hi = np.int64(0)
    over = False
    for z in range(nz):
        for y in range(ny):
            row = lab[z, y]
            rlo = row[0]
            rhi = row[0]
            for x in range(1, nx):
                v = row[x]
                rlo = min(rlo, v)
                rhi = max(rhi, v)
            lo = min(lo, np.int64(rlo))
            top = np.int64(rhi)
            if top <= 0:
                continue
            hi = max(hi, top)
            if top > limit:
                over = True
            if over:
                continue
            if top > cap:  # grow the tables to the row's highest label
                new = max(2 * cap, top)
                grown = np.empty((new, 6), np.int64)
                grown[:cap] = boxes
                boxes = grown
                more = np.zeros(new, np.int64)
                more[:cap] = counts
                counts = more
                cap = new
            x = 0
            while x < nx:  # the row's runs of one value
                v = row[x]
                first = x
                x += 1
                while x < nx and row[x] == v:
                    x += 1
                if v <= 0:
                    continue
                i = np.int64(v) - 1
                if counts[i] == 0:
                    boxes[i, 0] = boxes[i, 3] = z
                    boxes[i, 1] = boxes[i, 4] = y
                    boxes[i, 2] = first
                    boxes[i, 5] = x - 1
                else:
                    boxes[i, 3] = z  # raster order: z never decreases
                    boxes[i, 1] = min(boxes[i, 1], y)
                    boxes[i, 4] = max(boxes[i, 4], y)
                    boxes[i, 2] = min(boxes[i, 2], first)
                    boxes[i, 5] = max(boxes[i, 5], x - 1)
                counts[i] += x - first
    n = 0 if over else hi
    for i in range(n):
        for a in range(3, 6):
            boxes[i, a] += 1
    return boxes[:n], counts[:n], lo, hi, over


# above this label value (sparse label values), scipy's find_objects: its memory per label
# is a list entry, here 56 bytes
_DENSE_LABELS = 1 << 20


def label_boxes(lab: np.ndarray) -> tuple[dict[int, tuple[int, ...]], int]:
    """The positive labels present in ``lab`` (an integer array, z y x), each with its
    bounding box (starts, then stops, z y x: those of ``scipy.ndimage.find_objects``), and
    the lowest value of ``lab`` (0 when none is below), in one compiled pass (find_objects
    itself when a label is above ``_DENSE_LABELS``)."""
    if lab.size == 0:
        return {}, 0
    boxes, counts, lo, _, over = _label_scan(np.ascontiguousarray(lab), _DENSE_LABELS)
    if over:
        from scipy import ndimage

        found = {
            i + 1: tuple(s.start for s in b) + tuple(s.stop for s in b)
            for i, b in enumerate(ndimage.find_objects(np.where(lab < 0, 0, lab)))
            if b is not None
        }
        return found, int(lo)
    present = counts.nonzero()[0]
    found = dict(zip((present + 1).tolist(), map(tuple, boxes[present].tolist()), strict=True))
    return found, int(lo)


@numba.njit(cache=True, nogil=True)
def _max_distance(pts):  # pragma: no cover - compiled
    """Largest distance between two of the points ``pts`` (n, 3)."""
    best = 0.0
    for i in range(pts.shape[0]):
        for j in range(i + 1, pts.shape[0]):
            d = (
                (pts[i, 0] - pts[j, 0]) ** 2
                + (pts[i, 1] - pts[j, 1]) ** 2
                + (pts[i, 2] - pts[j, 2]) ** 2
            )
            best = max(best, d)
    return math.sqrt(best)


@numba.njit(cache=True, nogil=True)
def _mask_moments(morph, imask, image):  # pragma: no cover - compiled
    """Voxel count, coordinate sums and second moments (about the box centre) of ``morph``;
    intensity sum, intensity-weighted coordinate sums and voxel count of ``imask``.

    The coordinates about the box centre are multiples of 1/2, so the coordinate sums and
    moments are exact in float64 whatever their order: they are summed as integers (doubled
    coordinates), row by row (counts, x sums and x^2 sums vectorise), then halved or
    quartered. The intensity sums keep the voxel-by-voxel raster order."""
    nz, ny, nx = morph.shape
    cz = 0.5 * (nz - 1)
    cy = 0.5 * (ny - 1)
    cx = 0.5 * (nx - 1)
    # sums of q = 2 (coordinate - centre): q0, q1, q2, q0q0, q0q1, q0q2, q1q1, q1q2, q2q2
    t = np.zeros(9, np.int64)
    n = 0
    for z in range(nz):
        q0 = 2 * z - (nz - 1)
        for y in range(ny):
            q1 = 2 * y - (ny - 1)
            row = morph[z, y]
            c = 0
            sx = 0
            sxx = 0
            for x in range(nx):
                m = np.int64(row[x])
                q2 = 2 * x - (nx - 1)
                c += m
                sx += m * q2
                sxx += m * q2 * q2
            if c:
                n += c
                t[0] += c * q0
                t[1] += c * q1
                t[2] += sx
                t[3] += c * q0 * q0
                t[4] += c * q0 * q1
                t[5] += q0 * sx
                t[6] += c * q1 * q1
                t[7] += q1 * sx
                t[8] += sxx
    s1 = np.empty(3)
    s2 = np.empty((3, 3))
    for a in range(3):
        s1[a] = t[a] / 2.0
    s2[0, 0] = t[3] / 4.0
    s2[0, 1] = s2[1, 0] = t[4] / 4.0
    s2[0, 2] = s2[2, 0] = t[5] / 4.0
    s2[1, 1] = t[6] / 4.0
    s2[1, 2] = s2[2, 1] = t[7] / 4.0
    s2[2, 2] = t[8] / 4.0
    w1 = np.zeros(3)
    w = 0.0
    n_int = 0
    for z in range(nz):
        for y in range(ny):
            for x in range(nx):
                if imask[z, y, x]:
                    v = image[z, y, x]
                    n_int += 1
                    w += v
                    w1[0] += v * (z - cz)
                    w1[1] += v * (y - cy)
                    w1[2] += v * (x - cx)
    return n, s1, s2, w, w1, n_int


def _div(a: float, b: float) -> float:
    """``a / b``, NaN where ``b`` is 0 or not finite (degenerate ROI)."""
    return a / b if (b != 0 and math.isfinite(b)) else math.nan


def _ellipsoid_area(a: float, b: float, c: float) -> float:
    """Surface of an ellipsoid with semi-axes a >= b >= c (IBSI 3.1.19 series, 20 terms)."""
    if not a > 0:
        return math.nan
    alpha = math.sqrt(max(1.0 - b**2 / a**2, 0.0))
    beta = math.sqrt(max(1.0 - c**2 / a**2, 0.0))
    if alpha * beta == 0:
        # at least two equal axes with a == b == c: a sphere (or a degenerate ellipsoid)
        if alpha == 0 and beta == 0:
            return 4.0 * math.pi * a * b
    nu = np.arange(21)
    x = (alpha**2 + beta**2) / (2.0 * alpha * beta) if alpha * beta > 0 else 1.0
    terms = (alpha * beta) ** nu / (1.0 - 4.0 * nu**2) * eval_legendre(nu, x)
    return float(4.0 * math.pi * a * b * terms.sum())


def morphology_features(
    morph: np.ndarray,
    intensity_mask: np.ndarray,
    image: np.ndarray,
    spacing: np.ndarray,
    *,
    shape: bool = True,
    autocorrelation: bool = True,
    exact_max_voxels: int | None = None,
) -> dict[str, float]:
    """IBSI morphological features of one ROI.

    Parameters
    ----------
    morph : ndarray of bool, shape (z, y, x)
        Morphological mask (before re-segmentation).
    intensity_mask : ndarray of bool, same shape
        Intensity mask (after re-segmentation).
    image : ndarray of float, same shape
        Intensities.
    spacing : ndarray, shape (3,)
        Voxel size in mm, (z, y, x).
    shape : bool
        Compute the features of the mesh, the voxels, the convex hull and the principal axes.
    autocorrelation : bool
        Compute Moran's I and Geary's C.
    exact_max_voxels : int or None
        Moran's I and Geary's C are exact (all voxel pairs, through FFTs) up to this many
        voxels in the intensity mask, approximated above (exact near pairs, sampled far
        pairs); ``None``: always exact.
    """
    out: dict[str, float] = {}
    spacing = np.asarray(spacing, dtype=np.float64)
    if autocorrelation:
        moran, geary = spatial_autocorrelation(image, intensity_mask, spacing, exact_max_voxels)
        out["morph_moran_i"] = moran
        out["morph_geary_c"] = geary
    if not shape:
        return out
    voxel_volume = float(np.prod(spacing))
    n_morph = int(morph.sum())
    area, volume = mesh_area_volume(morph, spacing)
    out["morph_volume_mm3"] = volume
    out["morph_vol_approx_mm3"] = n_morph * voxel_volume
    out["morph_area_mesh_mm2"] = area
    out["morph_av_per_mm"] = area / volume
    out["morph_comp_1"] = volume / (math.sqrt(math.pi) * area**1.5)
    out["morph_comp_2"] = 36.0 * math.pi * volume**2 / area**3
    sph = (36.0 * math.pi * volume**2) ** (1.0 / 3.0)
    out["morph_sph_dispr"] = area / sph
    out["morph_sphericity"] = sph / area
    out["morph_asphericity"] = (area**3 / (36.0 * math.pi * volume**2)) ** (1.0 / 3.0) - 1.0

    n, s1, s2, w, w1, _ = _mask_moments(
        np.ascontiguousarray(morph),
        np.ascontiguousarray(intensity_mask),
        np.ascontiguousarray(image, dtype=np.float64),
    )
    n_int = int(np.count_nonzero(intensity_mask))
    if n_int and w != 0:
        # centre of mass shift: geometric centre vs intensity-weighted centre (IBSI 3.1.10)
        out["morph_com_mm"] = float(np.linalg.norm((s1 / n - w1 / w) * spacing))
    else:
        out["morph_com_mm"] = math.nan

    candidates = hull_candidates(morph, spacing)
    try:
        hull = ConvexHull(candidates)
        hull_pts = candidates[hull.vertices]
        out["morph_diam_mm"] = _max_distance(np.ascontiguousarray(hull_pts))
        hull_volume, hull_area = float(hull.volume), float(hull.area)
    except (QhullError, ValueError):
        out["morph_diam_mm"] = _max_distance(candidates) if len(candidates) > 1 else math.nan
        hull_volume = hull_area = math.nan

    if n_morph >= 2:
        mean = s1 / n
        cov = (s2 - n * np.outer(mean, mean)) / (n - 1) * np.outer(spacing, spacing)
        lam = np.sort(np.linalg.eigvalsh(cov))[::-1]
        lam = np.clip(lam, 0.0, None)
    else:
        lam = np.full(3, math.nan)
    out["morph_pca_maj_axis_mm"] = 4.0 * math.sqrt(lam[0])
    out["morph_pca_min_axis_mm"] = 4.0 * math.sqrt(lam[1])
    out["morph_pca_least_axis_mm"] = 4.0 * math.sqrt(lam[2])
    out["morph_pca_elongation"] = math.sqrt(_div(lam[1], lam[0]))
    out["morph_pca_flatness"] = math.sqrt(_div(lam[2], lam[0]))

    # the mesh spans the ROI's bounding box plus half a voxel on each side
    ext = spacing * [s.stop - s.start for s in _box(morph)]
    out["morph_vol_dens_aabb"] = _div(volume, float(np.prod(ext)))
    out["morph_area_dens_aabb"] = _div(
        area, float(2.0 * (ext[0] * ext[1] + ext[1] * ext[2] + ext[0] * ext[2]))
    )

    sa, sb, sc = (2.0 * math.sqrt(v) for v in lam) if n_morph >= 2 else (math.nan,) * 3
    out["morph_vol_dens_aee"] = _div(volume, 4.0 * math.pi * sa * sb * sc / 3.0)
    out["morph_area_dens_aee"] = _div(area, _ellipsoid_area(sa, sb, sc)) if sc > 0 else math.nan
    out["morph_vol_dens_conv_hull"] = _div(volume, hull_volume)
    out["morph_area_dens_conv_hull"] = _div(area, hull_area)
    out["morph_integ_int"] = volume * w / n_int if n_int else math.nan
    return out
