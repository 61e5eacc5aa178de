"""Moran's I and Geary's C (IBSI-1 3.1.26-27): inverse-distance weighted sums over every pair
of intensity-mask voxels.

Exact through FFTs (Parseval's theorem on the masked fields), or, for large ROIs, approximated
by ``_autocorrelation_approx`` (neighbours exact, the other pairs sampled by strata with a
control variate whose sums are exact).
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict

import numba
import numpy as np
from scipy import fft as sp_fft

from metevo.radiomics._autocorrelation_approx import approximate_autocorrelation

__all__ = ["spatial_autocorrelation"]


def _even_fast_len(n: int, real: bool = True) -> int:
    """The smallest even FFT-friendly length >= ``n``: 5-smooth for a real transform, 11-smooth
    for a complex one (pocketfft has radix 7 and 11 passes for complex data only)."""
    length = sp_fft.next_fast_len(n, real=real)
    while length % 2:
        length = sp_fft.next_fast_len(length + 1, real=real)
    return length


def _grid_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The FFT grid for a box of ``shape``: at least ``2 n - 1`` per axis (no pair wraps),
    even (the kernel's DCT-I), the last axis real-transformed, the others complex (e.g. 44
    rather than 48 for 22 voxels: the 5k lesion's transforms ~5 % cheaper)."""
    *lead, last = shape
    return (*(_even_fast_len(2 * n - 1, real=False) for n in lead), _even_fast_len(2 * last - 1))


# kernel spectra kept by grid shape and spacing, least recently used dropped first, up to
# _SPECTRA_BYTES in all (a 5k-voxel lesion's ~0.2 MB, the largest exact ROI's ~1 MB): a cohort
# meets a new box shape at nearly every lesion, a 16-entry cache forgets them within a scan
_SPECTRA_BYTES = 64 << 20
_spectra: OrderedDict[tuple, np.ndarray] = OrderedDict()
_lock = threading.Lock()  # the caches' bookkeeping (callers may run lesions in threads)


def _inverse_distance_spectrum(fshape: tuple[int, ...], spacing: tuple[float, ...]) -> np.ndarray:
    """Spectrum of the kernel ``1 / |d|`` (0 at d = 0) on the circular grid ``fshape`` (even
    lengths), weighted for Parseval sums over the half spectrum and divided by the grid size.

    Displacement ``k`` stands for ``k`` below ``L / 2`` and ``k - L`` above; for signals of
    ``n <= (L + 1) / 2`` voxels per axis only displacements within ``n - 1`` couple voxels, so
    the wrap never mixes voxel pairs. The kernel is even along every axis, so its DFT is real
    and equals the DCT-I of its first ``L / 2 + 1`` points per axis: the returned array has
    shape ``(L0 / 2 + 1, L1 / 2 + 1, L2 / 2 + 1)`` and bin ``(m0, m1, m2)`` of the half
    spectrum reads it at ``(min(m0, L0 - m0), min(m1, L1 - m1), m2)``. An eighth of the grid
    is transformed. Cached (``_SPECTRA_BYTES``): the lesions of a scan share the spacing.
    """
    key = (fshape, spacing)
    with _lock:
        spectrum = _spectra.get(key)
        if spectrum is not None:
            _spectra.move_to_end(key)
            return spectrum
    spectrum = sp_fft.dctn(_inverse_distances(tuple(L // 2 + 1 for L in fshape), spacing), type=1)
    # each half-spectrum bin stands for itself and its conjugate twin, except the zero and
    # Nyquist bins of the last axis
    spectrum[..., 1:-1] *= 2.0
    spectrum /= float(np.prod(fshape))
    spectrum.setflags(write=False)
    with _lock:
        _spectra[key] = spectrum
        total = sum(a.nbytes for a in _spectra.values())
        while total > _SPECTRA_BYTES and len(_spectra) > 1:
            total -= _spectra.popitem(last=False)[1].nbytes
    return spectrum


# 1 / |d| by spacing (the _DISTANCE_SPACINGS latest spacings; a quarter more than the largest
# block asked)
_DISTANCE_SPACINGS = 4
_distances: OrderedDict[tuple[float, ...], np.ndarray] = OrderedDict()


def _inverse_distances(shape: tuple[int, ...], spacing: tuple[float, ...]) -> np.ndarray:
    """A fresh array of ``1 / |d|`` (mm, 0 at ``d = 0``) for the displacements ``0 .. shape - 1``
    voxels per axis: sliced from the spacing's cached grid (the same values as computing the
    block itself), which grows (to a quarter more than ``shape``) when ``shape`` does not
    fit."""
    with _lock:
        return _distance_block(shape, spacing)


def _distance_block(shape: tuple[int, ...], spacing: tuple[float, ...]) -> np.ndarray:
    """``_inverse_distances`` under the lock."""
    base = _distances.get(spacing)
    if base is None or any(n > g for n, g in zip(shape, base.shape, strict=True)):
        have = base.shape if base is not None else (0,) * len(shape)
        grow = tuple(max(n + n // 4, g) for n, g in zip(shape, have, strict=True))
        axes = [np.arange(n, dtype=np.float64) * h for n, h in zip(grow, spacing, strict=True)]
        dz, dy, dx = np.meshgrid(*axes, indexing="ij", sparse=True)
        dist = np.sqrt(dz**2 + dy**2 + dx**2)
        dist[0, 0, 0] = np.inf
        base = _distances[spacing] = 1.0 / dist
        while len(_distances) > _DISTANCE_SPACINGS:
            _distances.popitem(last=False)
    _distances.move_to_end(spacing)
    return base[tuple(slice(0, n) for n in shape)].copy()


@numba.njit(cache=True, nogil=True, fastmath={"reassoc", "contract", "nsz"})
def _spectral_sums(m_hat, d_hat, d2_hat, kernel):  # pragma: no cover - compiled
    """Parseval sums ``sum W |M|^2``, ``sum W |D|^2``, ``sum W Re(D2 conj(M))`` over the half
    spectra, ``W`` read from the folded kernel of ``_inverse_distance_spectrum``. The sums may
    be reassociated (several accumulators, vector lanes): 2.2x faster, the same to ~1e-8
    relative (float32 spectra: ~1e-7 anyway)."""
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
    result is equal to the bit (tested). The z and y passes run in place on one zeroed
    spectrum (no padded copies between the passes)."""
    nz, ny = fields.shape[1:3]
    spec = sp_fft.rfft(fields, n=fshape[2], axis=3)
    full = np.zeros((spec.shape[0], fshape[0], fshape[1], spec.shape[3]), spec.dtype)
    full[:, :nz, :ny] = spec
    for axis, part in ((1, full[:, :, :ny]), (2, full)):
        done = sp_fft.fft(part, axis=axis, overwrite_x=True)
        if not np.shares_memory(done, part):  # scipy may ignore ``overwrite_x``
            part[...] = done
    return full


@numba.njit(cache=True, nogil=True)
def _fill_fields(values, mask, fields):  # pragma: no cover - compiled
    """``fields`` (3, z, y, x >= the box's x, zeros) at the voxels of ``mask``: 1, ``d`` and
    ``d ** 2`` in float32, ``d`` the deviation of ``values`` from their mean over ``mask``.
    Returns the voxel count and ``sum d ** 2`` (float64)."""
    n = 0
    total = 0.0
    flat_mask = mask.ravel()  # C-contiguous: raster order
    flat_values = values.ravel()
    for i in range(flat_mask.size):
        if flat_mask[i]:
            n += 1
            total += flat_values[i]
    if n == 0:
        return 0, 0.0
    mean = total / n
    ss = 0.0
    nz, ny, nx = mask.shape
    for z in range(nz):
        for y in range(ny):
            for x in range(nx):
                if mask[z, y, x]:
                    d = values[z, y, x] - mean
                    fields[0, z, y, x] = 1.0
                    fields[1, z, y, x] = np.float32(d)
                    fields[2, z, y, x] = np.float32(d * d)
                    ss += d * d
    return n, ss


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
    # float32 transforms: ~6 significant digits, far beyond the 3 of IBSI
    fshape = _grid_shape(mask.shape)
    # the x axis already padded: the x pass needs no padded copy
    fields = np.zeros((3, *mask.shape[:2], fshape[2]), np.float32)
    n, ss = _fill_fields(
        np.ascontiguousarray(values, dtype=np.float64),
        np.ascontiguousarray(mask, dtype=np.bool_),
        fields,
    )
    if n < 2:
        return math.nan, math.nan
    kernel = _inverse_distance_spectrum(fshape, tuple(float(h) for h in spacing))
    spec = _padded_rfftn(fields, fshape)
    w_sum, cross, d2_m = _spectral_sums(spec[0], spec[1], spec[2], kernel)
    if ss <= 0 or w_sum <= 0:
        return math.nan, math.nan
    moran = n / w_sum * cross / ss
    # sum_ij w_ij (x_i - x_j)^2 = 2 sum_ij w_ij d_i^2 - 2 sum_ij w_ij d_i d_j
    geary = (n - 1) * (2.0 * d2_m - 2.0 * cross) / (2.0 * w_sum * ss)
    return moran, geary


def spatial_autocorrelation(
    values: np.ndarray,
    mask: np.ndarray,
    spacing: np.ndarray,
    exact_max_voxels: int | None = None,
) -> tuple[float, float]:
    """Moran's I and Geary's C of the voxels ``mask`` (the ROI's box) with ``values``: exact
    up to ``exact_max_voxels`` voxels (``None``: always), approximated above."""
    if exact_max_voxels is not None and int(np.count_nonzero(mask)) > exact_max_voxels:
        return approximate_autocorrelation(values, mask, spacing)
    return _spatial_autocorrelation(values, mask, spacing)
