"""Interpolation of a lesion crop to isotropic voxels (IBSI-1 section 2.4).

The new grid is the one of the whole scan resampled from its spacing to the new one with the
grid centres aligned, so every lesion of a scan is sampled on one common grid. Only the part of
that grid the features need is computed: the new voxels the ROI can reach (its interpolated
mask is non-zero) plus the 1 cm^3 intensity-peak sphere's radius around them, in one numba pass
(trilinear, image and mask together).
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["new_size", "resample_crop"]


def new_size(n_whole: int, old: float, new: float) -> int:
    """Points of the new grid along an axis: ``ceil(n_whole * old / new)``, the extent snapped
    to 1e-6 voxel first, so float noise in the spacing (2.5 mm stored as 2.5000000000001)
    cannot add a point and shift the whole grid by half a voxel."""
    return max(int(math.ceil(round(n_whole * old / new, 6))), 1)


def axis_positions(n: int, old: float, new: float, start: int, n_whole: int) -> np.ndarray:
    """Positions (crop index units) of the new grid's points that fall inside a crop of ``n``
    points starting at scan index ``start``.

    The whole scan's new grid has ``new_size(n_whole, old, new)`` points at
    ``(n_whole - 1) / 2 + (k - (n_new - 1) / 2) * new / old`` in scan index units.
    """
    n_new = new_size(n_whole, old, new)
    pos = (n_whole - 1) / 2.0 + (np.arange(n_new) - (n_new - 1) / 2.0) * new / old - start
    # spacings stored in float32 (NIfTI) or derived from DICOM positions put points up to
    # 1e-6 voxel off the exact half-way positions; snapping to 1e-6 voxel keeps the mask
    # threshold's ties (value exactly 0.5) included whatever the float noise
    pos = np.round(pos, 6)
    pos = pos[(pos >= 0) & (pos <= n - 1)]
    if pos.size == 0:  # crop thinner than one new voxel: take its centre
        pos = np.array([(n - 1) / 2.0])
    return pos


def _reach(pos: np.ndarray, first: int, last: int, margin: int) -> tuple[int, int]:
    """The new points whose interpolated mask can be non-zero (``pos`` strictly between
    ``first - 1`` and ``last + 1``, the ROI's extent in crop indices), plus ``margin`` points
    on each side, as a half-open range of indices into ``pos``."""
    inside = np.flatnonzero((pos > first - 1) & (pos < last + 1))
    if inside.size == 0:
        return 0, pos.size
    return max(int(inside[0]) - margin, 0), min(int(inside[-1]) + 1 + margin, pos.size)


@numba.njit(cache=True, nogil=True)
def _extent(mask):  # pragma: no cover - compiled
    """First and last index of ``mask``'s voxels along each axis, ``(3, 2)``; ``(0, n - 1)``
    on an axis where ``mask`` is empty."""
    nz, ny, nx = mask.shape
    ext = np.empty((3, 2), np.int64)
    ext[0, 0], ext[1, 0], ext[2, 0] = nz, ny, nx
    ext[:, 1] = -1
    for z in range(nz):
        for y in range(ny):
            for x in range(nx):
                if mask[z, y, x]:
                    ext[0, 0] = min(ext[0, 0], z)
                    ext[0, 1] = max(ext[0, 1], z)
                    ext[1, 0] = min(ext[1, 0], y)
                    ext[1, 1] = max(ext[1, 1], y)
                    ext[2, 0] = min(ext[2, 0], x)
                    ext[2, 1] = max(ext[2, 1], x)
    if ext[0, 1] < 0:
        ext[0, 0], ext[1, 0], ext[2, 0] = 0, 0, 0
        ext[0, 1], ext[1, 1], ext[2, 1] = nz - 1, ny - 1, nx - 1
    return ext


@numba.njit(cache=True, nogil=True)
def _axis_grid(n, old, new, start, n_whole, n_new, first, last, margin):  # pragma: no cover
    """``axis_positions`` and ``_reach`` in one compiled call (the same float arithmetic):
    the new points within ``margin`` of the ROI's reach as crop index ``i0`` and weight
    ``pos - i0``, and the half-open range of the reach itself in that list."""
    pos = np.empty(n_new)
    m = 0
    for k in range(n_new):
        p = (n_whole - 1) / 2.0 + (k - (n_new - 1) / 2.0) * new / old - start
        p = np.rint(p * 1e6) / 1e6  # np.round(p, 6)
        if 0 <= p <= n - 1:
            pos[m] = p
            m += 1
    if m == 0:  # crop thinner than one new voxel: take its centre
        pos[0] = (n - 1) / 2.0
        m = 1
    lo, hi = 0, m  # reach: first-1 < pos < last+1
    while lo < m and not pos[lo] > first - 1:
        lo += 1
    while hi > lo and not pos[hi - 1] < last + 1:
        hi -= 1
    if lo == hi:
        a, b, m0, m1 = 0, m, 0, m
    else:
        a, b, m0, m1 = max(lo - margin, 0), min(hi + margin, m), lo, hi
    i0 = np.empty(b - a, np.int64)
    w = np.empty(b - a)
    for k in range(a, b):
        i0[k - a] = np.int64(math.floor(pos[k]))
        w[k - a] = pos[k] - i0[k - a]
    return i0, w, m0 - a, m1 - a


@numba.njit(cache=True, nogil=True, inline="always")
def _step_z(image, z0, fz, along_z):  # pragma: no cover - compiled
    """``along_z`` = the crop interpolated between planes ``z0`` and ``z0 + 1`` at ``fz``."""
    nz, ny, nx = image.shape
    z1 = min(z0 + 1, nz - 1)
    for y in range(ny):
        for k in range(nx):
            lo = np.float64(image[z0, y, k])
            along_z[y, k] = lo + (np.float64(image[z1, y, k]) - lo) * fz


@numba.njit(cache=True, nogil=True, inline="always")
def _step_y(along_z, y0, fy, along_y):  # pragma: no cover - compiled
    """``along_y`` = ``along_z`` interpolated between rows ``y0`` and ``y0 + 1`` at ``fy``."""
    y1 = min(y0 + 1, along_z.shape[0] - 1)
    for k in range(along_z.shape[1]):
        along_y[k] = along_z[y0, k] + (along_z[y1, k] - along_z[y0, k]) * fy


@numba.njit(cache=True, nogil=True)
def _trilinear(image, iz, wz, iy, wy, ix, wx, out, threshold, rounded):  # pragma: no cover
    """``image`` at the points ``(iz + wz, iy + wy, ix + wx)`` (crop indices and weights)
    into ``out``, interpolated along z, then y, then x, each step ``a + (b - a) w``: the
    arithmetic of three separable passes, to the bit. One new plane at a time: the z and y
    steps run over whole crop rows (contiguous, vectorised), the x step gathers. With a
    ``threshold`` (not NaN) ``out`` (bool) gets ``value >= threshold`` instead: the ROI's
    mask with no float64 array of its values (fewer fresh pages to fault in). ``rounded``:
    the values rounded to integers (``np.rint``, half to even) as they are stored."""
    nz, ny, nx = image.shape
    along_z = np.empty((ny, nx))
    along_y = np.empty(nx)
    values = threshold != threshold
    for a in range(iz.size):
        _step_z(image, iz[a], wz[a], along_z)
        for b in range(iy.size):
            _step_y(along_z, iy[b], wy[b], along_y)
            for c in range(ix.size):
                x0 = np.uint64(ix[c])  # unsigned: no negative-index wraparound
                x1 = min(x0 + np.uint64(1), np.uint64(nx - 1))
                v = along_y[x0] + (along_y[x1] - along_y[x0]) * wx[c]
                if values:
                    out[a, b, c] = np.rint(v) if rounded else v
                else:
                    out[a, b, c] = v >= threshold


@numba.njit(cache=True, nogil=True)
def _resample_kernel(
    image, roi, spacing, new, start, whole, n_new, ext, margin, rounded
):  # pragma: no cover
    """``resample_crop`` after its checks, in one compiled call: the three axes' grids
    (``_axis_grid``), the image's interpolation and the ROI's where it can be non-zero."""
    i0z, wz, z0, z1 = _axis_grid(
        image.shape[0], spacing[0], new, start[0], whole[0], n_new[0], ext[0, 0], ext[0, 1], margin
    )
    i0y, wy, y0, y1 = _axis_grid(
        image.shape[1], spacing[1], new, start[1], whole[1], n_new[1], ext[1, 0], ext[1, 1], margin
    )
    i0x, wx, x0, x1 = _axis_grid(
        image.shape[2], spacing[2], new, start[2], whole[2], n_new[2], ext[2, 0], ext[2, 1], margin
    )
    out = np.empty((i0z.size, i0y.size, i0x.size))
    _trilinear(image, i0z, wz, i0y, wy, i0x, wx, out, np.nan, rounded)
    # the ROI (0/1 read as float: the same arithmetic) only where it can be non-zero;
    # ties (exactly 0.5) are in the ROI (IBSI, MIRP)
    mask = np.zeros(out.shape, np.bool_)
    _trilinear(
        roi,
        i0z[z0:z1],
        wz[z0:z1],
        i0y[y0:y1],
        wy[y0:y1],
        i0x[x0:x1],
        wx[x0:x1],
        mask[z0:z1, y0:y1, x0:x1],
        0.5 - 1e-9,
        False,
    )
    reach = np.array(((z0, z1), (y0, y1), (x0, x1)), np.int64)
    return out, mask, reach


# crop types interpolated as they are (the rest is read as float64 first): CT's int16 and
# float64, each one compiled signature of ``_resample_kernel``
_NATIVE = (np.dtype(np.int16), np.dtype(np.float64))


def resample_crop(
    img: np.ndarray,
    roi: np.ndarray,
    spacing: np.ndarray,
    new: float,
    start: np.ndarray,
    whole: np.ndarray,
    margin_mm: float = 0.0,
    round_values: bool = False,
    extent: np.ndarray | None = None,
    with_reach: bool = False,
) -> tuple[np.ndarray, ...]:
    """Interpolate image (trilinear) and ROI (trilinear, then >= 0.5) to ``new`` mm voxels.

    Parameters
    ----------
    img, roi : ndarray, shape (z, y, x)
        The crop of the scan (any real type; read as float64) and the lesion's mask on it
        (bool).
    spacing : ndarray, shape (3,)
        The scan's voxel size in mm, (z, y, x).
    new : float
        The new isotropic voxel size in mm.
    start, whole : ndarray of int, shape (3,)
        The crop's first scan index and the scan's size, which fix the common grid.
    margin_mm : float
        How far beyond the ROI's reach the image is needed (the intensity-peak radius).
    round_values : bool
        Round the interpolated intensities to integers (``np.rint``; IBSI 2.4, CT).
    extent : ndarray of int, shape (3, 2), optional
        The first and last crop index of the ROI's voxels along each axis, when the caller
        knows it (the engine, from the label's box); found from ``roi`` otherwise.
    with_reach : bool
        Also return the box (first, last + 1 index along z, y, x of the output) of the
        points the ROI can reach: every voxel of ``mask`` lies in it.

    Returns
    -------
    (image, mask) or (image, mask, reach)
        On the new grid's points inside the crop that lie within ``margin_mm`` (rounded
        down to new voxels) of a point the ROI can reach; the same values there as a full
        interpolation of the crop.
    """
    margin = int(math.floor(margin_mm / new)) if margin_mm > 0 else 0
    roi = np.ascontiguousarray(roi)
    if extent is None:
        extent = _extent(roi)
    n_new = np.array([new_size(int(whole[a]), float(spacing[a]), new) for a in range(3)], np.int64)
    image = np.ascontiguousarray(img)
    if image.dtype not in _NATIVE:
        image = image.astype(np.float64)
    out = _resample_kernel(
        image,
        roi.view(np.uint8),
        np.asarray(spacing, dtype=np.float64),
        float(new),
        np.asarray(start, dtype=np.int64),
        np.asarray(whole, dtype=np.int64),
        n_new,
        np.asarray(extent, dtype=np.int64),
        margin,
        bool(round_values),
    )
    return out if with_reach else out[:2]
