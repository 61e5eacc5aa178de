"""Moran's I and Geary's C (IBSI-1 3.1.26-27): inverse-distance weighted sums over every pair
of intensity-mask voxels.

Exact through FFTs (Parseval's theorem on the masked fields), or, for large ROIs, approximated:
the pairs within one voxel (Chebyshev distance) exact, the far pairs from a fixed number of
uniformly drawn pairs with control variates (their unweighted sums are known exactly).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numba
import numpy as np
from scipy import fft as sp_fft

__all__ = ["spatial_autocorrelation"]


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


def _padded_rfftn(fields: np.ndarray, fshape: tuple[int, ...]) -> np.ndarray:
    """``scipy.fft.rfftn`` of ``fields`` (k, z, y, x) zero-padded to ``fshape`` over its last
    three axes, with the transforms of all-zero lines left out: x over the box's lines, z
    over the box's ``y`` extent, then y over everything (about 58 % of the full work). The
    axes in the order ``rfftn`` takes them, one line at a time by the same plans, so the
    result is equal to the bit (tested)."""
    spec = sp_fft.rfft(fields, n=fshape[2], axis=3)
    spec = sp_fft.fft(spec, n=fshape[0], axis=1, overwrite_x=True)
    return sp_fft.fft(spec, n=fshape[1], axis=2, overwrite_x=True)


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
    fields = np.zeros((3, *mask.shape), np.float32)
    fields[0][mask] = 1.0
    fields[1][mask] = d
    fields[2][mask] = d**2
    kernel = _inverse_distance_spectrum(fshape, tuple(float(h) for h in spacing))
    spec = _padded_rfftn(fields, fshape)
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
def _points(values, mask):  # pragma: no cover - compiled
    """The ROI's voxels in raster order: ``index`` (the mask's grid padded by ``_NEAR``,
    -1 outside the ROI, else the voxel's number), ``pts`` rows ``(z, y, x, d)`` in float32
    and ``d`` (deviation from the ROI mean) in float64."""
    nz, ny, nx = mask.shape
    r = _NEAR
    n = 0
    total = 0.0
    for z in range(nz):
        for y in range(ny):
            for x in range(nx):
                if mask[z, y, x]:
                    n += 1
                    total += values[z, y, x]
    mean = total / n
    index = np.full((nz + 2 * r, ny + 2 * r, nx + 2 * r), -1, np.int32)
    pts = np.empty((n, 4), np.float32)
    d = np.empty(n)
    i = 0
    for z in range(nz):
        for y in range(ny):
            for x in range(nx):
                if mask[z, y, x]:
                    index[z + r, y + r, x + r] = i
                    d[i] = values[z, y, x] - mean
                    pts[i, 0] = z
                    pts[i, 1] = y
                    pts[i, 2] = x
                    pts[i, 3] = d[i]
                    i += 1
    return index, pts, d


@numba.njit(cache=True, nogil=True)
def _near_sums(index, pts, d, spacing):  # pragma: no cover - compiled
    """Sums over the unordered pairs within Chebyshev distance ``_NEAR`` voxels (a lookup
    in ``index`` over the forward offsets): ``w``, ``w d_i d_j``, ``w (d_i - d_j)^2``,
    ``d_i d_j``, ``(d_i - d_j)^2`` and the number of pairs. One sweep over the voxels per
    offset (its weight is a constant: the weighted sums are taken at the end), on the
    flattened ``index``: the lookups run forward through memory."""
    r = _NEAR
    sz, sy, sx = index.shape
    flat = index.ravel()
    n = d.size
    pos = np.empty(n, np.int64)
    for i in range(n):
        pos[i] = ((int(pts[i, 0]) + r) * sy + int(pts[i, 1]) + r) * sx + int(pts[i, 2]) + r
    out = np.zeros(6)
    for oz in range(0, r + 1):
        for oy in range(-r, r + 1):
            for ox in range(-r, r + 1):
                if oz == 0 and (oy < 0 or (oy == 0 and ox <= 0)):
                    continue  # forward offsets only: each pair once
                w = 1.0 / math.sqrt(
                    (oz * spacing[0]) ** 2 + (oy * spacing[1]) ** 2 + (ox * spacing[2]) ** 2
                )
                step = (oz * sy + oy) * sx + ox
                prod = 0.0
                sq = 0.0
                count = 0.0
                for i in range(n):
                    j = flat[pos[i] + step]
                    if j < 0:
                        continue
                    prod += d[i] * d[j]
                    sq += (d[i] - d[j]) ** 2
                    count += 1.0
                out[0] += w * count
                out[1] += w * prod
                out[2] += w * sq
                out[3] += prod
                out[4] += sq
                out[5] += count
    return out


@numba.njit(cache=True, nogil=True)
def _far_samples(pts, spacing, n_samples, seed):  # pragma: no cover - compiled
    """Sums over ``n_samples`` uniformly drawn pairs of distinct voxels (xorshift64*, fixed
    ``seed``; the two indices from the high and low 32 bits by multiply-shift), near pairs
    left out: count, ``w``, and for ``X = d_i d_j`` and ``Y = (d_i - d_j)^2``: ``w X``,
    ``X``, ``X^2``, ``w X^2``, ``w Y``, ``Y``, ``Y^2``, ``w Y^2``. ``pts`` rows are
    ``(z, y, x, d)`` in float32. With isotropic voxels the weight is
    read from a table over the integer squared distance."""
    n = pts.shape[0]
    r = _NEAR
    iso = spacing[0] == spacing[1] == spacing[2]
    top = 0
    if iso:
        for a in range(3):
            top += int(pts[:, a].max() - pts[:, a].min()) ** 2
    table = np.empty(top + 1 if iso else 1)
    if iso:
        table[0] = 0.0
        for k in range(1, top + 1):
            table[k] = 1.0 / (spacing[0] * math.sqrt(k))
    state = np.uint64(seed)
    low = np.uint64(0xFFFFFFFF)
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = s8 = s9 = 0.0  # scalars: kept in registers
    for _ in range(n_samples):
        state ^= state >> np.uint64(12)
        state ^= state << np.uint64(25)
        state ^= state >> np.uint64(27)
        u = state * np.uint64(0x2545F4914F6CDD1D)
        p = np.int64(((u >> np.uint64(32)) * np.uint64(n)) >> np.uint64(32))
        q = np.int64(((u & low) * np.uint64(n - 1)) >> np.uint64(32))
        if q >= p:
            q += 1  # a uniform pair of distinct voxels
        dz = pts[p, 0] - pts[q, 0]
        dy = pts[p, 1] - pts[q, 1]
        dx = pts[p, 2] - pts[q, 2]
        if abs(dz) <= r and abs(dy) <= r and abs(dx) <= r:
            continue  # near pair: summed exactly
        if iso:
            w = table[int(dz * dz + dy * dy + dx * dx)]
        else:
            w = 1.0 / math.sqrt(
                (dz * spacing[0]) ** 2 + (dy * spacing[1]) ** 2 + (dx * spacing[2]) ** 2
            )
        xx = pts[p, 3] * pts[q, 3]
        yy = (pts[p, 3] - pts[q, 3]) ** 2
        s0 += 1.0
        s1 += w
        s2 += w * xx
        s3 += xx
        s4 += xx * xx
        s5 += w * xx * xx
        s6 += w * yy
        s7 += yy
        s8 += yy * yy
        s9 += w * yy * yy
    return np.array([s0, s1, s2, s3, s4, s5, s6, s7, s8, s9])


def _controlled(k: float, swf: float, sf: float, sf2: float, swf2: float, total: float) -> float:
    """Estimate of ``sum w f`` over the far pairs from ``k`` samples with sums ``swf`` (of
    ``w f``), ``sf``, ``sf2`` (of ``f``, ``f^2``) and ``swf2`` (of ``w f^2``), ``total`` the
    exact sum of ``f`` over the far pairs: ``sum w f - c (sum f - total)`` with ``c`` the
    regression coefficient of ``w f`` on ``f`` (control variate). Returned per sample."""
    var = sf2 - sf * sf / k
    c = (swf2 - swf * sf / k) / var if var > 0 else 0.0
    return swf / k - c * (sf / k - total)


def pair_sums(
    values: np.ndarray,
    mask: np.ndarray,
    spacing: np.ndarray,
    n_samples: int = _FAR_PAIRS,
    seed: int = _SEED,
) -> tuple[float, float, float, float]:
    """Sums over unordered pairs of ROI voxels of ``w``, ``w d_i d_j`` and
    ``w (d_i - d_j)^2`` with ``w = 1 / |r_i - r_j|`` (mm) and ``d`` the deviation from the
    ROI mean, and ``sum d^2``.

    Near pairs (Chebyshev distance 1) exact; far pairs estimated from ``n_samples`` uniform
    pairs scaled to their exact count, the last two sums with control variates: the sums of
    ``d_i d_j`` and ``(d_i - d_j)^2`` over all pairs are ``((sum d)^2 - sum d^2) / 2`` and
    ``n sum d^2 - (sum d)^2``, so over the far pairs they are known exactly.
    """
    spacing = np.asarray(spacing, np.float64)
    index, pts, d = _points(
        np.ascontiguousarray(values, dtype=np.float64), np.ascontiguousarray(mask)
    )
    n = d.size
    ss = float(np.dot(d, d))
    near = _near_sums(index, pts, d, spacing)
    n_far = n * (n - 1) / 2.0 - near[5]
    if n_far <= 0 or n_samples == 0:
        return float(near[0]), float(near[1]), float(near[2]), ss
    s = _far_samples(pts, spacing, int(n_samples), np.uint64(seed))
    k = s[0]
    if k == 0:
        return float(near[0]), float(near[1]), float(near[2]), ss
    sd = float(d.sum())
    prod_far = (sd * sd - ss) / 2.0 - near[3]
    sq_far = n * ss - sd * sd - near[4]
    w_sum = near[0] + n_far * s[1] / k
    cross = near[1] + n_far * _controlled(k, s[2], s[3], s[4], s[5], prod_far / n_far)
    sq = near[2] + n_far * _controlled(k, s[6], s[7], s[8], s[9], sq_far / n_far)
    return float(w_sum), float(cross), float(sq), ss


def _approximate_autocorrelation(
    values: np.ndarray, mask: np.ndarray, spacing: np.ndarray
) -> tuple[float, float]:
    """Moran's I and Geary's C from pair sums that are exact for near pairs (Chebyshev
    distance 1 voxel, where the weights are largest) and estimated from 2^20 random far
    pairs with control variates (fixed seed: the same ROI gives the same value); the ROI's
    mean and variance are exact. The IBSI-1 manual (3.1.26) allows approximating these
    O(N^2) features on large ROIs; MIRP averages exact values on random subsets of 100
    voxels instead."""
    n = int(np.count_nonzero(mask))
    if n < 2:
        return math.nan, math.nan
    w_sum, cross, sq, ss = pair_sums(values, mask, spacing)
    if ss <= 0 or w_sum <= 0:
        return math.nan, math.nan
    # unordered pair sums: the ordered sums of IBSI 3.1.26-27 are twice these
    return n / w_sum * cross / ss, (n - 1) * sq / (2.0 * w_sum * ss)


def spatial_autocorrelation(
    values: np.ndarray,
    mask: np.ndarray,
    spacing: np.ndarray,
    exact_max_voxels: int | None = None,
) -> tuple[float, float]:
    """Moran's I and Geary's C of the voxels ``mask`` (the ROI's box) with ``values``: exact
    up to ``exact_max_voxels`` voxels (``None``: always), approximated above."""
    n = int(np.count_nonzero(mask))
    if exact_max_voxels is not None and n > exact_max_voxels:
        return _approximate_autocorrelation(values, mask, spacing)
    return _spatial_autocorrelation(values, mask, spacing)
