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


def _reach(pos: np.ndarray, first: int, last: int, n: int, margin: int) -> tuple[int, int]:
    """The new points whose interpolated mask can be non-zero (``pos`` strictly between
    ``first - 1`` and ``last + 1``, the ROI's extent in crop indices), plus ``margin`` points
    on each side, as a half-open range of indices into ``pos``."""
    inside = np.flatnonzero((pos > first - 1) & (pos < last + 1))
    if inside.size == 0:
        return 0, pos.size
    return max(int(inside[0]) - margin, 0), min(int(inside[-1]) + 1 + margin, pos.size)


@numba.njit(cache=True, nogil=True)
def _trilinear(image, roi, iz, wz, iy, wy, ix, wx, mlo, mhi):  # pragma: no cover - compiled
    """Image and ROI at the points ``(iz + wz, iy + wy, ix + wx)`` of the crop, interpolated
    along z, then y, then x (``a + (b - a) w`` at each step: the arithmetic of a separable
    pass, to the bit). The ROI is interpolated in ``[mlo, mhi)`` only (0 elsewhere); its
    interpolated values are returned, the caller thresholds them."""
    nz, ny, nx = image.shape
    oz, oy, ox = iz.size, iy.size, ix.size
    img = np.empty((oz, oy, ox))
    msk = np.zeros((oz, oy, ox))
    for a in range(oz):
        z0 = iz[a]
        z1 = min(z0 + 1, nz - 1)
        fz = wz[a]
        in_z = mlo[0] <= a < mhi[0]
        for b in range(oy):
            y0 = iy[b]
            y1 = min(y0 + 1, ny - 1)
            fy = wy[b]
            in_zy = in_z and mlo[1] <= b < mhi[1]
            for c in range(ox):
                x0 = ix[c]
                x1 = min(x0 + 1, nx - 1)
                fx = wx[c]
                # along z at the four (y, x) corners, then along y, then along x
                v00 = image[z0, y0, x0] + (image[z1, y0, x0] - image[z0, y0, x0]) * fz
                v01 = image[z0, y0, x1] + (image[z1, y0, x1] - image[z0, y0, x1]) * fz
                v10 = image[z0, y1, x0] + (image[z1, y1, x0] - image[z0, y1, x0]) * fz
                v11 = image[z0, y1, x1] + (image[z1, y1, x1] - image[z0, y1, x1]) * fz
                u0 = v00 + (v10 - v00) * fy
                u1 = v01 + (v11 - v01) * fy
                img[a, b, c] = u0 + (u1 - u0) * fx
                if in_zy and mlo[2] <= c < mhi[2]:
                    m00 = roi[z0, y0, x0] + (roi[z1, y0, x0] - roi[z0, y0, x0]) * fz
                    m01 = roi[z0, y0, x1] + (roi[z1, y0, x1] - roi[z0, y0, x1]) * fz
                    m10 = roi[z0, y1, x0] + (roi[z1, y1, x0] - roi[z0, y1, x0]) * fz
                    m11 = roi[z0, y1, x1] + (roi[z1, y1, x1] - roi[z0, y1, x1]) * fz
                    t0 = m00 + (m10 - m00) * fy
                    t1 = m01 + (m11 - m01) * fy
                    msk[a, b, c] = t0 + (t1 - t0) * fx
    return img, msk


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
    nz = np.flatnonzero(roi.any(axis=(1, 2)))
    ny = np.flatnonzero(roi.any(axis=(0, 2)))
    nx = np.flatnonzero(roi.any(axis=(0, 1)))
    keep, mlo, mhi = [], np.zeros(3, np.int64), np.zeros(3, np.int64)
    for axis, hit in enumerate((nz, ny, nx)):
        pos = axis_positions(
            img.shape[axis], float(spacing[axis]), new, int(start[axis]), int(whole[axis])
        )
        first, last = (int(hit[0]), int(hit[-1])) if hit.size else (0, img.shape[axis] - 1)
        a, b = _reach(pos, first, last, img.shape[axis], margin)
        m0, m1 = _reach(pos, first, last, img.shape[axis], 0)
        mlo[axis], mhi[axis] = m0 - a, m1 - a
        keep.append(pos[a:b])
    args = []
    for pos in keep:
        i0 = np.floor(pos).astype(np.int64)
        args += [i0, pos - i0]
    out, m = _trilinear(
        np.ascontiguousarray(img, dtype=np.float64),
        np.ascontiguousarray(roi, dtype=np.float64),
        *args,
        mlo,
        mhi,
    )
    return out, m >= 0.5 - 1e-9  # ties (exactly 0.5) are in the ROI (IBSI, MIRP)
