"""Local intensity features (IBSI-1 section 3.2): the local and global intensity peaks.

Both are means in a 1 cm^3 sphere: around the ROI's maximum-intensity voxel(s) (local peak,
the highest of their means) and around every ROI voxel (global peak, the highest mean). Every
voxel whose centre lies in the sphere counts, inside the ROI or not. Arrays are in (z, y, x)
order with the spacing in mm in the same order.

Two kernels give the same means: ``_peaks_integer`` for integer intensities (sums exact in
int32, in any order: one plane of the ROI at a time, few long loops) and ``_peaks`` (float64,
line by line, voxels outside the scan) for the rest.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numba
import numpy as np

__all__ = ["LOCAL_NAMES", "PEAK_RADIUS_MM", "local_intensity_features", "peak_vector"]

# radius of a 1 cm^3 sphere, in mm (IBSI 3.2)
PEAK_RADIUS_MM = 10.0 * (3.0 / (4.0 * math.pi)) ** (1.0 / 3.0)
LOCAL_NAMES = ("loc_peak_loc", "loc_peak_glob")


def _sphere_offsets(spacing: np.ndarray) -> np.ndarray:
    r = [int(math.floor(PEAK_RADIUS_MM / h)) for h in spacing]
    grid = np.stack(
        np.meshgrid(*[np.arange(-k, k + 1) for k in r], indexing="ij"), axis=-1
    ).reshape(-1, 3)
    keep = np.linalg.norm(grid * spacing, axis=1) <= PEAK_RADIUS_MM
    return grid[keep]


@lru_cache(maxsize=16)
def _sphere_rows(spacing: tuple[float, ...]) -> np.ndarray:
    """The 1 cm^3 sphere as x-runs: rows ``(dz, dy, half_width)`` of the voxel offsets whose
    centre lies within the radius (``dx`` from ``-half_width`` to ``half_width``)."""
    offsets = _sphere_offsets(np.asarray(spacing))
    rows = {}
    for dz, dy, dx in offsets:
        rows[(dz, dy)] = max(rows.get((dz, dy), 0), abs(int(dx)))
    return np.array([(dz, dy, w) for (dz, dy), w in sorted(rows.items())], np.int64)


@lru_cache(maxsize=16)
def _int32_limit(spacing: tuple[float, ...]) -> int:
    """The largest intensity magnitude whose sphere sums stay exact in int32."""
    rows = _sphere_rows(spacing)
    return (2**31 - 1) // int((2 * rows[:, 2] + 1).sum())


@numba.njit(cache=True, nogil=True, inline="always")
def _track(v, mean, top, loc, glob):  # pragma: no cover - compiled
    """The peaks after a voxel of intensity ``v`` and sphere mean ``mean``: ``top`` the
    highest intensity so far, ``loc`` the highest mean among its voxels, ``glob`` the
    highest mean."""
    if v > top:
        return v, mean, max(glob, mean)
    if v == top:
        return top, max(loc, mean), max(glob, mean)
    return top, loc, max(glob, mean)


@numba.njit(cache=True, nogil=True)
def _edge_mean(prefix, present, all_valid, rows, nz, z, y, x):  # pragma: no cover - compiled
    """Mean in the sphere around ``(z, y, x)`` when it reaches past the array or holds
    voxels outside the scan: those count neither in the sum nor in the count. ``prefix``
    and ``present`` hold plane ``zz`` in slot ``zz & (len(prefix) - 1)`` (a ring of planes,
    a power of two long)."""
    ring, ny, nx1 = prefix.shape
    nx = nx1 - 1
    total = 0.0
    count = 0.0
    for r in range(rows.shape[0]):
        zz = z + rows[r, 0]
        yy = y + rows[r, 1]
        if zz < 0 or zz >= nz or yy < 0 or yy >= ny:
            continue
        a = max(x - rows[r, 2], 0)
        b = min(x + rows[r, 2] + 1, nx)
        slot = zz & (ring - 1)
        total += prefix[slot, yy, b] - prefix[slot, yy, a]
        if all_valid:
            count += b - a
        else:
            count += present[slot, yy, b] - present[slot, yy, a]
    return total / count


@numba.njit(cache=True, nogil=True)
def _prefix_plane(image, valid, all_valid, z, prefix, present):  # pragma: no cover - compiled
    """Prefix sums along x of plane ``z`` (and counts of its valid voxels when some are not)
    into slot ``z & (len(prefix) - 1)``."""
    ny, nx = image.shape[1], image.shape[2]
    slot = z & (prefix.shape[0] - 1)
    for y in range(ny):
        acc = 0.0
        cnt = 0.0
        prefix[slot, y, 0] = 0.0
        if not all_valid:
            present[slot, y, 0] = 0.0
        for x in range(nx):
            if all_valid or valid[z, y, x]:
                acc += image[z, y, x]
                cnt += 1.0
            prefix[slot, y, x + 1] = acc
            if not all_valid:
                present[slot, y, x + 1] = cnt


@numba.njit(cache=True, nogil=True)
def _peaks(image, mask, valid, all_valid, rows):  # pragma: no cover - compiled
    """``(local peak, global peak)`` of the ROI ``mask`` (at least one voxel).

    Prefix sums along x make each x-run of the sphere two lookups. A line ``(z, y)`` of the
    ROI whose spheres all lie inside the array (and in the scan) gets the sphere sums of
    every voxel from its first to its last ROI voxel at once, run by run: contiguous loads
    the compiler vectorises. Other voxels take the bounds-checked path. Each voxel's sum
    adds the runs in the same order either way.
    """
    nz, ny, nx = image.shape
    rz = np.abs(rows[:, 0]).max()
    ry = np.abs(rows[:, 1]).max()
    rx = rows[:, 2].max()
    # the prefix sums of the 2 rz + 1 planes a sphere spans, plane zz in slot zz & (ring - 1)
    # (ring: a power of two): a small array that stays in cache, few fresh pages to fault in
    ring = 1
    while ring < min(2 * rz + 1, nz):
        ring *= 2
    prefix = np.empty((ring, ny, nx + 1))
    # counts of valid voxels, needed only where some voxel is not valid
    present = np.empty((ring, ny, nx + 1) if not all_valid else (1, 1, 1))
    done = 0  # planes below ``done`` have been summed
    full = 0.0
    for r in range(rows.shape[0]):
        full += 2 * rows[r, 2] + 1
    sums = np.empty(nx)
    top = -np.inf  # highest intensity in the ROI
    loc = -np.inf  # highest sphere mean among the voxels of intensity ``top``
    glob = -np.inf
    for z in range(nz):
        while done < min(z + rz + 1, nz):
            _prefix_plane(image, valid, all_valid, done, prefix, present)
            done += 1
        for y in range(ny):
            x0 = -1
            x1 = -1
            for x in range(nx):
                if mask[z, y, x]:
                    if x0 < 0:
                        x0 = x
                    x1 = x
            if x0 < 0:
                continue
            inside = all_valid and rz <= z < nz - rz and ry <= y < ny - ry
            inside = inside and rx <= x0 and x1 < nx - rx
            if inside:
                n = x1 + 1 - x0
                line = sums[:n]
                line[:] = 0.0
                for r in range(rows.shape[0]):
                    row = prefix[(z + rows[r, 0]) & (ring - 1), y + rows[r, 1]]
                    w = rows[r, 2]
                    # slices, not shifted indices: the loop then vectorises
                    right = row[x0 + w + 1 : x0 + w + 1 + n]
                    left = row[x0 - w : x0 - w + n]
                    for k in range(n):
                        line[k] += right[k] - left[k]
            for x in range(x0, x1 + 1):
                if not mask[z, y, x]:
                    continue
                if inside:
                    mean = sums[x - x0] / full
                else:
                    mean = _edge_mean(prefix, present, all_valid, rows, nz, z, y, x)
                top, loc, glob = _track(image[z, y, x], mean, top, loc, glob)
    return loc, glob


@numba.njit(cache=True, nogil=True)
def _plane_extents(mask, box):  # pragma: no cover - compiled
    """Per plane ``z`` of ``mask``: ``(y_first, y_last, x_first, x_last)`` of its voxels
    (``y_first`` = -1 where the plane is empty), looked for within ``box`` (first and last
    + 1 index along z, y, x: a box holding every voxel). Each row's first and last voxel are
    found without branches (the loop vectorises)."""
    nz = mask.shape[0]
    ext = np.full((nz, 4), -1, np.int64)
    x0, x1 = box[2, 0], box[2, 1]
    nx = x1 - x0
    for z in range(box[0, 0], box[0, 1]):
        x_first = mask.shape[2]
        x_last = -1
        for y in range(box[1, 0], box[1, 1]):
            row = mask[z, y, x0:x1]  # from 0: no negative-index wraparound per voxel
            first = nx
            last = -1
            for x in range(nx):
                first = min(first, x if row[x] else nx)
                last = max(last, x if row[x] else -1)
            if last >= 0:
                first += x0
                last += x0
                if ext[z, 0] < 0:
                    ext[z, 0] = y
                ext[z, 1] = y
                x_first = min(x_first, first)
                x_last = max(x_last, last)
        if ext[z, 0] >= 0:
            ext[z, 2] = x_first
            ext[z, 3] = x_last
    return ext


@numba.njit(cache=True, nogil=True)
def _padded_prefix(image, zz, y0, x0, plane, ny, stride, limit):  # pragma: no cover - compiled
    """Integer prefix sums along x of the rows ``y0 .. y0 + ny - 1`` of plane ``zz`` from
    column ``x0`` on (``stride - 1`` columns), voxels outside ``image`` read as 0, into
    ``plane`` (flattened, row ``r`` at ``r * stride``). False when a voxel is not an integer
    of magnitude <= ``limit`` (the sums would not be exact in int32)."""
    nz, nyi, nxi = image.shape
    # the columns inside the image: c0 <= c < c1
    c0 = min(max(-x0, 0), stride - 1)
    c1 = max(min(nxi - x0, stride - 1), c0)
    for r in range(ny):
        y = y0 + r
        base = r * stride
        if zz < 0 or zz >= nz or y < 0 or y >= nyi:
            plane[base : base + stride] = 0
            continue
        plane[base : base + c0 + 1] = 0
        bad = False
        values = image[zz, y, x0 + c0 : x0 + c1]
        sums = plane[base + c0 + 1 : base + c1 + 1]
        for k in range(c1 - c0):  # slices from 0: no negative-index wraparound per voxel
            v = values[k]
            # converted only within the limit (a select: defined for any value); checked below
            iv = np.int32(v) if abs(v) <= limit else np.int32(0)
            bad |= (iv != v) | (abs(v) > limit)
            sums[k] = iv
        if bad:
            return False
        # the running sum apart from the conversion: the conversion loop vectorises, this
        # one is a chain of integer adds
        acc = np.int32(0)
        for k in range(c1 - c0):
            acc += sums[k]
            sums[k] = acc
        plane[base + c1 + 1 : base + stride] = acc
    return True


@numba.njit(cache=True, nogil=True)
def _peaks_integer(image, mask, rows, limit, box):  # pragma: no cover - compiled
    """``(exact, local peak, global peak)`` for an integer-valued ``image``: the sphere sums
    are exact integers, so their order does not matter and one plane of the ROI gets all of
    them at once: with the prefix planes zero-padded by the radius and flattened, each x-run
    of the sphere is two shifted slices over the plane's span of the ROI (few long
    vectorised int32 loops, four runs per pass, instead of one per ROI line and run), the
    runs at -dz and +dz read together from the sum of their two planes. The means are the same
    float64 values as ``_peaks``' (exact sum / count). ``exact`` is False (nothing computed)
    when a voxel is not an integer within ``limit``. ``box``: first and last + 1 index along
    z, y, x of a box that holds the mask's voxels."""
    nz, ny, nx = image.shape
    rz = np.abs(rows[:, 0]).max()
    ry = np.abs(rows[:, 1]).max()
    rx = rows[:, 2].max()
    ext = _plane_extents(mask, box)
    zs = np.flatnonzero(ext[:, 0] >= 0)
    z_lo, z_hi = zs[0], zs[-1]
    y_lo, y_hi = ext[zs, 0].min(), ext[zs, 1].max()
    x_lo, x_hi = ext[zs, 2].min(), ext[zs, 3].max()
    # padded plane: rows y_lo - ry .. y_hi + ry, prefix columns from x_lo - rx
    nyp = y_hi - y_lo + 1 + 2 * ry
    stride = x_hi - x_lo + 2 * rx + 2
    ring = 1
    while ring < 2 * rz + 1:
        ring *= 2
    size = nyp * stride
    prefix = np.empty((ring, size), np.int32)
    acc = np.empty(size, np.int32)
    # the sphere is symmetric in z: a run at dz > 0 also stands for its mirror at -dz, both
    # read at once from pair[dz] = prefix(z + dz) + prefix(z - dz) (half the loads)
    pair = np.empty((rz + 1, size), np.int32)  # pair[0]: plane z itself
    reach = ry * stride + rx + 1  # how far a run reads from the voxel's index
    full = 0.0
    n_half = 0
    for r in range(rows.shape[0]):
        full += 2 * rows[r, 2] + 1
        n_half += rows[r, 0] >= 0
    # (dz, right, left) per run with dz >= 0, padded to a multiple of 4 with empty runs
    offsets = np.zeros(((n_half + 3) // 4 * 4, 3), np.int64)
    h = 0
    for r in range(rows.shape[0]):
        if rows[r, 0] >= 0:
            offsets[h, 0] = rows[r, 0]
            offsets[h, 1] = rows[r, 1] * stride + rows[r, 2] + 1
            offsets[h, 2] = rows[r, 1] * stride - rows[r, 2]
            h += 1
    done = z_lo - rz  # planes below ``done`` have their prefix sums
    top = -np.inf
    loc = -np.inf
    glob = -np.inf
    for z in range(z_lo, z_hi + 1):
        while done <= z + rz:
            plane = prefix[done & (ring - 1)]
            if not _padded_prefix(image, done, y_lo - ry, x_lo - rx, plane, nyp, stride, limit):
                return False, 0.0, 0.0
            done += 1
        if ext[z, 0] < 0:
            continue
        # the plane's span: padded index of (y, x) is (y - y_lo + ry) * stride + x - x_lo + rx
        i0 = (ext[z, 0] - y_lo + ry) * stride + ext[z, 2] - x_lo + rx
        i1 = (ext[z, 1] - y_lo + ry) * stride + ext[z, 3] - x_lo + rx + 1
        n = i1 - i0
        line = acc[:n]
        line[:] = 0
        lo, hi = max(i0 - reach, 0), min(i0 + n + reach, size)
        centre = prefix[z & (ring - 1)]
        pair[0, lo:hi] = centre[lo:hi]
        for dz in range(1, rz + 1):
            above = prefix[(z + dz) & (ring - 1), lo:hi]
            below = prefix[(z - dz) & (ring - 1), lo:hi]
            both = pair[dz, lo:hi]
            for k in range(hi - lo):  # slices from 0: the loop vectorises
                both[k] = above[k] + below[k]
        for r in range(0, offsets.shape[0], 4):  # four runs per pass over the line
            p0 = pair[offsets[r, 0]]
            p1 = pair[offsets[r + 1, 0]]
            p2 = pair[offsets[r + 2, 0]]
            p3 = pair[offsets[r + 3, 0]]
            a0 = p0[i0 + offsets[r, 1] : i0 + offsets[r, 1] + n]
            b0 = p0[i0 + offsets[r, 2] : i0 + offsets[r, 2] + n]
            a1 = p1[i0 + offsets[r + 1, 1] : i0 + offsets[r + 1, 1] + n]
            b1 = p1[i0 + offsets[r + 1, 2] : i0 + offsets[r + 1, 2] + n]
            a2 = p2[i0 + offsets[r + 2, 1] : i0 + offsets[r + 2, 1] + n]
            b2 = p2[i0 + offsets[r + 2, 2] : i0 + offsets[r + 2, 2] + n]
            a3 = p3[i0 + offsets[r + 3, 1] : i0 + offsets[r + 3, 1] + n]
            b3 = p3[i0 + offsets[r + 3, 2] : i0 + offsets[r + 3, 2] + n]
            for k in range(n):
                line[k] += (a0[k] - b0[k]) + (a1[k] - b1[k]) + (a2[k] - b2[k]) + (a3[k] - b3[k])
        z_in = rz <= z < nz - rz
        xf, xl = ext[z, 2], ext[z, 3] + 1
        for y in range(ext[z, 0], ext[z, 1] + 1):
            base = (y - y_lo + ry) * stride - x_lo + rx - i0
            if z_in and ry <= y < ny - ry and rx <= xf and xl <= nx - rx:
                # every sphere of the row inside the image (count = full): the highest
                # mean is the highest sum / full; two branch-free passes over the row
                m_row = mask[z, y, xf:xl]
                v_row = image[z, y, xf:xl]
                s_row = line[base + xf : base + xl]
                row_top = -np.inf
                for k in range(xl - xf):
                    row_top = max(row_top, v_row[k] if m_row[k] else -np.inf)
                if row_top == -np.inf:
                    continue
                none = np.int64(-(2**62))  # below every sum
                best = none
                best_top = none
                for k in range(xl - xf):
                    s = np.int64(s_row[k])
                    best = max(best, s if m_row[k] else none)
                    best_top = max(best_top, s if m_row[k] and v_row[k] == row_top else none)
                top, loc, glob = _track(row_top, best_top / full, top, loc, glob)
                glob = max(glob, best / full)
                continue
            for x in range(xf, xl):
                if not mask[z, y, x]:
                    continue
                if z_in and ry <= y < ny - ry and rx <= x < nx - rx:
                    count = full
                else:  # the sphere reaches past the image: count its voxels inside
                    count = 0.0
                    for r in range(rows.shape[0]):
                        zz = z + rows[r, 0]
                        yy = y + rows[r, 1]
                        if 0 <= zz < nz and 0 <= yy < ny:
                            count += min(x + rows[r, 2] + 1, nx) - max(x - rows[r, 2], 0)
                mean = line[base + x] / count
                top, loc, glob = _track(image[z, y, x], mean, top, loc, glob)
    return True, loc, glob


def local_intensity_features(
    image: np.ndarray,
    intensity_mask: np.ndarray,
    spacing: np.ndarray,
    valid: np.ndarray | None = None,
) -> dict[str, float]:
    """Local and global intensity peaks (IBSI 3.2): mean intensity in 1 cm^3 spheres.

    ``image`` must extend at least the sphere radius (6.2 mm) around the ROI, or to the scan's
    border; ``valid`` marks the voxels that exist in the scan (all of them when ``None``).
    Every voxel whose centre lies in the sphere counts, inside the ROI or not. The sphere sums
    run over the ROI's voxels only, on the ROI's box plus the radius: prefix sums along x make
    each x-run of the sphere two lookups (about 120 runs per voxel at 1 mm), exact in float64.
    Integer intensities (CT in HU, rounded after interpolation) with every voxel valid take
    ``_peaks_integer``: exact int32 sums a whole plane of the ROI at a time, the same means to
    the bit, 2-3x faster at 1k-110k voxels.
    """
    out = {"loc_peak_loc": math.nan, "loc_peak_glob": math.nan}
    if not intensity_mask.any():
        return out
    out["loc_peak_loc"], out["loc_peak_glob"] = _peak_pair(image, intensity_mask, spacing, valid)
    return out


def peak_vector(
    image: np.ndarray,
    intensity_mask: np.ndarray,
    spacing: np.ndarray,
    box: tuple[slice, slice, slice] | None = None,
) -> np.ndarray:
    """``local_intensity_features`` (every voxel valid) as the values of ``LOCAL_NAMES``, for
    an ``intensity_mask`` that holds at least one voxel, all of them within ``box`` (slices
    of ``image``; default: the whole array)."""
    return np.array(_peak_pair(image, intensity_mask, spacing, None, box))


def _peak_pair(
    image: np.ndarray,
    intensity_mask: np.ndarray,
    spacing: np.ndarray,
    valid: np.ndarray | None,
    box: tuple[slice, slice, slice] | None = None,
) -> tuple[float, float]:
    """Local and global intensity peak of a non-empty ``intensity_mask``."""
    key = (float(spacing[0]), float(spacing[1]), float(spacing[2]))
    rows = _sphere_rows(key)
    if valid is None:  # integer intensities (CT in HU): exact int32 sums, plane by plane
        if box is None:
            bounds = np.zeros((3, 2), np.int64)
            bounds[:, 1] = image.shape
        else:
            bounds = np.array([(b.start, b.stop) for b in box], np.int64)
        exact, loc, glob = _peaks_integer(
            np.ascontiguousarray(image, dtype=np.float64),
            np.ascontiguousarray(intensity_mask),
            rows,
            _int32_limit(key),
            bounds,
        )
        if exact:
            return float(loc), float(glob)
    spacing = np.asarray(spacing, dtype=np.float64)
    r = np.floor(PEAK_RADIUS_MM / spacing).astype(int)
    # only voxels within r of the ROI matter
    hits = [np.flatnonzero(intensity_mask.any(axis=other)) for other in ((1, 2), (0, 2), (0, 1))]
    lo = np.maximum(np.array([h[0] for h in hits]) - r, 0)
    hi = np.minimum(np.array([h[-1] + 1 for h in hits]) + r, image.shape)
    sub = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    all_valid = valid is None or bool(valid[sub].all())
    valid = np.ones((1, 1, 1), bool) if all_valid else np.ascontiguousarray(valid[sub])
    loc, glob = _peaks(
        np.ascontiguousarray(image[sub], dtype=np.float64),
        np.ascontiguousarray(intensity_mask[sub]),
        valid,
        all_valid,
        rows,
    )
    return float(loc), float(glob)
