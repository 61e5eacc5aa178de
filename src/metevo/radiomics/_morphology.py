"""Morphological features (IBSI-1 section 3.1); local intensity features are in
``_local_intensity``.

All functions take arrays in (z, y, x) order with the voxel spacing in mm in the same order.
Undefined values (a 1-voxel ROI has no convex hull and no principal axes) are NaN; callers
run them under ``np.errstate(all="ignore")``.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numba
import numpy as np
from scipy import fft as sp_fft
from scipy.spatial import ConvexHull, QhullError
from scipy.special import eval_legendre

from metevo.radiomics._mesh import hull_candidates, mesh_area_volume

__all__ = ["morphology_features"]


def _box(mask: np.ndarray) -> tuple[slice, slice, slice]:
    """The bounding box of ``mask`` (which holds at least one voxel)."""
    out = []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        hit = np.flatnonzero(mask.any(axis=other))
        out.append(slice(int(hit[0]), int(hit[-1]) + 1))
    return tuple(out)


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
    intensity sum and intensity-weighted coordinate sums over ``imask``."""
    nz, ny, nx = morph.shape
    cz = 0.5 * (nz - 1)
    cy = 0.5 * (ny - 1)
    cx = 0.5 * (nx - 1)
    s1 = np.zeros(3)
    s2 = np.zeros((3, 3))
    w1 = np.zeros(3)
    n = 0
    w = 0.0
    for z in range(nz):
        for y in range(ny):
            for x in range(nx):
                if morph[z, y, x]:
                    p0 = z - cz
                    p1 = y - cy
                    p2 = x - cx
                    n += 1
                    s1[0] += p0
                    s1[1] += p1
                    s1[2] += p2
                    s2[0, 0] += p0 * p0
                    s2[0, 1] += p0 * p1
                    s2[0, 2] += p0 * p2
                    s2[1, 1] += p1 * p1
                    s2[1, 2] += p1 * p2
                    s2[2, 2] += p2 * p2
                if imask[z, y, x]:
                    v = image[z, y, x]
                    w += v
                    w1[0] += v * (z - cz)
                    w1[1] += v * (y - cy)
                    w1[2] += v * (x - cx)
    s2[1, 0] = s2[0, 1]
    s2[2, 0] = s2[0, 2]
    s2[2, 1] = s2[1, 2]
    return n, s1, s2, w, w1


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


def _even_fast_len(n: int) -> int:
    """The smallest even FFT-friendly length >= ``n``."""
    length = sp_fft.next_fast_len(n, real=True)
    while length % 2:
        length = sp_fft.next_fast_len(length + 1, real=True)
    return length


@lru_cache(maxsize=16)
def _inverse_distance_spectrum(fshape: tuple[int, ...], spacing: tuple[float, ...]) -> np.ndarray:
    """Spectrum of the kernel ``1 / |d|`` (0 at d = 0) on the circular grid ``fshape`` (even
    lengths), weighted for Parseval sums over the half spectrum and divided by the grid size.

    Displacement ``k`` stands for ``k`` below ``L / 2`` and ``k - L`` above; for signals of
    ``n <= (L + 1) / 2`` voxels per axis only displacements within ``n - 1`` couple voxels, so
    the wrap never mixes voxel pairs. The kernel is even along every axis, so its DFT is real
    and equals the DCT-I of its first ``L / 2 + 1`` points per axis: the returned array has
    shape ``(L0 / 2 + 1, L1 / 2 + 1, L2 / 2 + 1)`` and bin ``(m0, m1, m2)`` of the half
    spectrum reads it at ``(min(m0, L0 - m0), min(m1, L1 - m1), m2)``. An eighth of the grid
    is transformed. Cached: the lesions of a scan share the spacing.
    """
    axes = [
        np.arange(L // 2 + 1, dtype=np.float64) * h for L, h in zip(fshape, spacing, strict=True)
    ]
    dz, dy, dx = np.meshgrid(*axes, indexing="ij", sparse=True)
    dist = np.sqrt(dz**2 + dy**2 + dx**2)
    dist[0, 0, 0] = np.inf
    spectrum = sp_fft.dctn(1.0 / dist, type=1)
    # each half-spectrum bin stands for itself and its conjugate twin, except the zero and
    # Nyquist bins of the last axis
    spectrum[..., 1:-1] *= 2.0
    spectrum /= float(np.prod(fshape))
    spectrum.setflags(write=False)
    return spectrum


@numba.njit(cache=True, nogil=True)
def _spectral_sums(m_hat, d_hat, d2_hat, kernel):  # pragma: no cover - compiled
    """Parseval sums ``sum W |M|^2``, ``sum W |D|^2``, ``sum W Re(D2 conj(M))`` over the half
    spectra, ``W`` read from the folded kernel of ``_inverse_distance_spectrum``."""
    n0, n1, n2 = m_hat.shape
    s_mm = 0.0
    s_dd = 0.0
    s_dm = 0.0
    for i in range(n0):
        a = min(i, n0 - i)
        for j in range(n1):
            b = min(j, n1 - j)
            for k in range(n2):
                w = kernel[a, b, k]
                m = m_hat[i, j, k]
                d = d_hat[i, j, k]
                e = d2_hat[i, j, k]
                s_mm += w * (m.real * m.real + m.imag * m.imag)
                s_dd += w * (d.real * d.real + d.imag * d.imag)
                s_dm += w * (e.real * m.real + e.imag * m.imag)
    return s_mm, s_dd, s_dm


def _spatial_autocorrelation(
    values: np.ndarray, mask: np.ndarray, spacing: np.ndarray
) -> tuple[float, float]:
    """Moran's I and Geary's C with inverse-distance weights over all voxel pairs (IBSI 3.1.26-27).

    The double sums over voxel pairs are evaluated exactly, by Parseval's theorem on the
    spectra of the masked fields: ``sum_ij w_ij a_i b_j = sum_w W(w) conj(A(w)) B(w) / N`` with
    ``W`` the spectrum of the kernel ``1 / |d|`` (``d`` the displacement in mm, 0 at ``d = 0``)
    on a zero-padded grid large enough that no pair wraps around. The fields live on the ROI's
    bounding box (the caller crops it), in float32.
    """
    n = int(np.count_nonzero(mask))
    if n < 2:
        return math.nan, math.nan
    x = values[mask]
    mu = x.mean()
    d = (x - mu).astype(np.float64)
    ss = float(np.dot(d, d))
    # float32 transforms: ~6 significant digits, far beyond the 3 of IBSI
    fshape = tuple(_even_fast_len(2 * s - 1) for s in mask.shape)
    fields = np.zeros((3, *fshape), np.float32)
    inner = (slice(0, mask.shape[0]), slice(0, mask.shape[1]), slice(0, mask.shape[2]))
    fields[0][inner][mask] = 1.0
    fields[1][inner][mask] = d
    fields[2][inner][mask] = d**2
    kernel = _inverse_distance_spectrum(fshape, tuple(float(h) for h in spacing))
    spec = sp_fft.rfftn(fields, axes=(1, 2, 3), overwrite_x=True)
    w_sum, cross, d2_m = _spectral_sums(spec[0], spec[1], spec[2], kernel)
    if ss <= 0 or w_sum <= 0:
        return math.nan, math.nan
    moran = n / w_sum * cross / ss
    # sum_ij w_ij (x_i - x_j)^2 = 2 sum_ij w_ij d_i^2 - 2 sum_ij w_ij d_i d_j
    geary = (n - 1) * (2.0 * d2_m - 2.0 * cross) / (2.0 * w_sum * ss)
    return moran, geary


# pairs within this Chebyshev distance (voxels) are summed exactly by the approximation
_NEAR = 1
_FAR_PAIRS = 1 << 20  # random pairs drawn for the far field
_SEED = 0x9E3779B97F4A7C15


@numba.njit(cache=True, nogil=True)
def _add_pair(acc, pts, i, j, dz, dy, dx, spacing):  # pragma: no cover - compiled
    """Add pair ``(i, j)`` at voxel offset ``(dz, dy, dx)`` to the sums ``acc``: ``w``,
    ``w d_i d_j`` and ``w (x_i - x_j)^2`` with ``w`` the inverse distance in mm."""
    w = 1.0 / math.sqrt((dz * spacing[0]) ** 2 + (dy * spacing[1]) ** 2 + (dx * spacing[2]) ** 2)
    acc[0] += w
    acc[1] += w * pts[i, 4] * pts[j, 4]
    acc[2] += w * (pts[i, 3] - pts[j, 3]) ** 2


@numba.njit(cache=True, nogil=True)
def _pair_sums(pts, spacing, n_samples, seed):  # pragma: no cover - compiled
    """Sums over unordered voxel pairs of ``w``, ``w d_i d_j`` and ``w (x_i - x_j)^2`` with
    ``w = 1 / |r_i - r_j|`` (mm); ``pts`` rows are ``(z, y, x, x_i, d_i)``. The pairs within
    Chebyshev distance ``_NEAR`` voxels are summed exactly (a grid lookup over the forward
    offsets), the others estimated from ``n_samples`` uniformly drawn pairs (xorshift64*,
    fixed ``seed``) scaled to their exact count."""
    n = pts.shape[0]
    r = _NEAR
    lo = np.empty(3, np.int64)
    size = np.empty(3, np.int64)
    for a in range(3):
        lo[a] = int(pts[:, a].min())
        size[a] = int(pts[:, a].max()) - lo[a] + 1 + 2 * r
    index = np.full((size[0], size[1], size[2]), -1, np.int32)
    for i in range(n):
        index[
            int(pts[i, 0]) - lo[0] + r, int(pts[i, 1]) - lo[1] + r, int(pts[i, 2]) - lo[2] + r
        ] = i
    near = np.zeros(3)  # sums of w, w d_i d_j, w (x_i - x_j)^2
    n_near = 0
    for i in range(n):
        a = int(pts[i, 0]) - lo[0] + r
        b = int(pts[i, 1]) - lo[1] + r
        c = int(pts[i, 2]) - lo[2] + r
        for oz in range(0, r + 1):
            for oy in range(-r, r + 1):
                for ox in range(-r, r + 1):
                    if oz == 0 and (oy < 0 or (oy == 0 and ox <= 0)):
                        continue  # forward offsets only: each pair once
                    j = index[a + oz, b + oy, c + ox]
                    if j < 0:
                        continue
                    n_near += 1
                    _add_pair(near, pts, i, j, oz, oy, ox, spacing)
    n_far = n * (n - 1) // 2 - n_near
    if n_far == 0 or n_samples == 0:
        return near[0], near[1], near[2]
    state = np.uint64(seed)
    far = np.zeros(3)
    kept = 0
    for _ in range(n_samples):
        state ^= state >> np.uint64(12)
        state ^= state << np.uint64(25)
        state ^= state >> np.uint64(27)
        u = (state * np.uint64(0x2545F4914F6CDD1D)) >> np.uint64(11)  # 53 random bits
        p = np.int64(u % np.uint64(n))
        q = np.int64((u // np.uint64(n)) % np.uint64(n - 1))
        if q >= p:
            q += 1  # a uniform pair of distinct voxels
        dz = pts[p, 0] - pts[q, 0]
        dy = pts[p, 1] - pts[q, 1]
        dx = pts[p, 2] - pts[q, 2]
        if abs(dz) <= r and abs(dy) <= r and abs(dx) <= r:
            continue  # near pair: summed exactly above
        kept += 1
        _add_pair(far, pts, p, q, dz, dy, dx, spacing)
    if kept == 0:
        return near[0], near[1], near[2]
    scale = n_far / kept
    return near[0] + scale * far[0], near[1] + scale * far[1], near[2] + scale * far[2]


def _approximate_autocorrelation(
    values: np.ndarray, mask: np.ndarray, spacing: np.ndarray
) -> tuple[float, float]:
    """Moran's I and Geary's C from pair sums that are exact for near pairs (Chebyshev
    distance 1 voxel, where the weights are largest) and estimated from 2^20 random far pairs
    (fixed seed: the same ROI gives the same value); the ROI's mean and variance are exact.
    The IBSI-1 manual (3.1.26) allows approximating these O(N^2) features on large ROIs; MIRP
    averages exact values on random subsets of 100 voxels instead."""
    n = int(np.count_nonzero(mask))
    if n < 2:
        return math.nan, math.nan
    pts = np.empty((n, 5))
    pts[:, :3] = np.argwhere(mask)
    pts[:, 3] = values[mask]
    pts[:, 4] = pts[:, 3] - pts[:, 3].mean()
    ss = float(np.dot(pts[:, 4], pts[:, 4]))
    w_sum, cross, sq = _pair_sums(pts, np.asarray(spacing, np.float64), _FAR_PAIRS, _SEED)
    if ss <= 0 or w_sum <= 0:
        return math.nan, math.nan
    # unordered pair sums: the ordered sums of IBSI 3.1.26-27 are twice these
    return n / w_sum * cross / ss, (n - 1) * sq / (2.0 * w_sum * ss)


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
        n_int = int(np.count_nonzero(intensity_mask))
        if exact_max_voxels is not None and n_int > exact_max_voxels:
            moran, geary = _approximate_autocorrelation(image, intensity_mask, spacing)
        else:
            moran, geary = _spatial_autocorrelation(image, intensity_mask, spacing)
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

    n, s1, s2, w, w1 = _mask_moments(
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
