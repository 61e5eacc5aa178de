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
def _trilinear(image, iz, wz, iy, wy, ix, wx, out, threshold):  # pragma: no cover - compiled
    """``image`` at the points ``(iz + wz, iy + wy, ix + wx)`` (crop indices and weights)
    into ``out``, interpolated along z, then y, then x, each step ``a + (b - a) w``: the
    arithmetic of three separable passes, to the bit. One new plane at a time: the z and y
    steps run over whole crop rows (contiguous, vectorised), the x step gathers. With a
    ``threshold`` (not NaN) ``out`` (bool) gets ``value >= threshold`` instead: the ROI's
    mask with no float64 array of its values (fewer fresh pages to fault in)."""
    nz, ny, nx = image.shape
    along_z = np.empty((ny, nx))
    along_y = np.empty(nx)
    values = threshold != threshold
    for a in range(iz.size):
        _step_z(image, iz[a], wz[a], along_z)
        for b in range(iy.size):
            _step_y(along_z, iy[b], wy[b], along_y)
            for c in range(ix.size):
                x0 = ix[c]
                x1 = min(x0 + 1, nx - 1)
                v = along_y[x0] + (along_y[x1] - along_y[x0]) * wx[c]
                if values:
                    out[a, b, c] = v
                else:
                    out[a, b, c] = v >= threshold


def resample_crop(
    img: np.ndarray,
    roi: np.ndarray,
    spacing: np.ndarray,
    new: float,
    start: np.ndarray,
    whole: np.ndarray,
    margin_mm: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Interpolate image (trilinear) and ROI (trilinear, then >= 0.5) to ``new`` mm voxels.

    Parameters
    ----------
    img, roi : ndarray, shape (z, y, x)
        The crop of the scan (float) and the lesion's mask on it (bool).
    spacing : ndarray, shape (3,)
        The scan's voxel size in mm, (z, y, x).
    new : float
        The new isotropic voxel size in mm.
    start, whole : ndarray of int, shape (3,)
        The crop's first scan index and the scan's size, which fix the common grid.
    margin_mm : float
        How far beyond the ROI's reach the image is needed (the intensity-peak radius).

    Returns
    -------
    (image, mask)
        On the new grid's points inside the crop that lie within ``margin_mm`` (rounded
        down to new voxels) of a point the ROI can reach; the same values there as a full
        interpolation of the crop.
    """
    margin = int(math.floor(margin_mm / new)) if margin_mm > 0 else 0
    hits = [np.flatnonzero(roi.any(axis=other)) for other in ((1, 2), (0, 2), (0, 1))]
    grid, inner = [], []
    for axis, hit in enumerate(hits):
        pos = axis_positions(
            img.shape[axis], float(spacing[axis]), new, int(start[axis]), int(whole[axis])
        )
        first, last = (int(hit[0]), int(hit[-1])) if hit.size else (0, img.shape[axis] - 1)
        a, b = _reach(pos, first, last, margin)
        m0, m1 = _reach(pos, first, last, 0)
        pos = pos[a:b]
        i0 = np.floor(pos).astype(np.int64)
        grid.append((i0, pos - i0))
        inner.append(slice(m0 - a, m1 - a))
    out = np.empty(tuple(i0.size for i0, _ in grid))
    _trilinear(np.ascontiguousarray(img, dtype=np.float64), *sum(grid, ()), out, math.nan)
    # the ROI (0/1 read as float: the same arithmetic) only where it can be non-zero;
    # ties (exactly 0.5) are in the ROI (IBSI, MIRP)
    mask = np.zeros(out.shape, bool)
    _trilinear(
        np.ascontiguousarray(roi).view(np.uint8),
        *(v[s] for (i0, w), s in zip(grid, inner, strict=True) for v in (i0, w)),
        mask[tuple(inner)],
        0.5 - 1e-9,
    )
    return out, mask
