"""Intensity statistics (IBSI-1 3.3) and intensity histogram (3.4) features in numba.

The same definitions as :func:`~metevo.radiomics._intensity.intensity_statistics` and
:func:`~metevo.radiomics._intensity.intensity_histogram_features` (the readable reference;
the tests compare the two to 1e-10), on the histogram of integer-valued samples (HU of CT,
grey levels): one compiled call per family writes every value. Samples that are not
integers, or whose range is too wide for a histogram, return ``None`` and the caller uses
the reference.
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = [
    "HISTOGRAM_NAMES",
    "IVH_NAMES",
    "STATISTICS_NAMES",
    "block_arguments",
    "histogram_vector",
    "intensity_block",
    "ivh_vector",
    "resegment",
    "statistics_vector",
    "value_range",
]

_ORDER = (
    "mean",
    "var",
    "skew",
    "kurt",
    "median",
    "min",
    "p10",
    "p90",
    "max",
    "iqr",
    "range",
    "mad",
    "rmad",
    "medad",
    "cov",
    "qcod",
)
STATISTICS_NAMES = tuple(f"stat_{k}" for k in _ORDER) + ("stat_energy", "stat_rms")
HISTOGRAM_NAMES = tuple(f"ih_{k}" for k in _ORDER) + (
    "ih_mode",
    "ih_entropy",
    "ih_uniformity",
    "ih_max_grad",
    "ih_max_grad_g",
    "ih_min_grad",
    "ih_min_grad_g",
)
IVH_NAMES = ("ivh_v10", "ivh_v90", "ivh_i10", "ivh_i90", "ivh_diff_v10_v90", "ivh_diff_i10_i90")

_JIT = {"cache": True, "nogil": True, "error_model": "numpy"}


@numba.njit(**_JIT)
def _histogram(x):  # pragma: no cover - compiled
    """Counts of the integer-valued sample ``x`` over ``lo .. hi``; ``lo`` > ``hi`` when the
    sample is not integer-valued or its range exceeds what ``_moments`` would bin."""
    lo = math.inf
    hi = -math.inf
    bad = False
    for v in x:  # no early exit: the loop vectorises (integer-valued samples are the rule)
        bad |= (v != math.floor(v)) | (not math.isfinite(v))
        lo = min(lo, v)
        hi = max(hi, v)
    if bad:
        return np.zeros(0, np.int64), 1, 0
    if hi - lo > 4 * x.size + 65536:
        return np.zeros(0, np.int64), 1, 0
    ilo = int(lo)
    counts = np.zeros(int(hi) - ilo + 1, np.int64)
    for v in x:
        counts[int(v) - ilo] += 1
    return counts, ilo, int(hi)


@numba.njit(**_JIT)
def _order_stat(cum, values, k):  # pragma: no cover - compiled
    """The ``k``-th smallest (0-based) of the sample with cumulative counts ``cum``."""
    return values[np.searchsorted(cum, k, side="right")]


@numba.njit(**_JIT)
def _percentile(cum, values, q):  # pragma: no cover - compiled
    h = (cum[-1] - 1) * q / 100.0
    k = math.floor(h)
    lo = _order_stat(cum, values, k)
    hi = _order_stat(cum, values, min(k + 1, cum[-1] - 1))
    return lo + (h - k) * (hi - lo)


@numba.njit(**_JIT)
def _moments(counts, lo, out):  # pragma: no cover - compiled
    """The 16 values of ``_ORDER`` of the sample with ``counts`` over ``lo, lo + 1, ...``."""
    m = 0
    for i in range(counts.size):
        if counts[i] > 0:
            m += 1
    c = np.empty(m)
    v = np.empty(m)
    j = 0
    for i in range(counts.size):
        if counts[i] > 0:
            c[j] = counts[i]
            v[j] = lo + i
            j += 1
    n = c.sum()
    mu = (c * v).sum() / n
    m2 = 0.0
    m3 = 0.0
    m4 = 0.0
    mad = 0.0
    for i in range(m):
        d = v[i] - mu
        m2 += c[i] * d * d
        m3 += c[i] * d**3
        m4 += c[i] * d**4
        mad += c[i] * abs(d)
    m2 /= n
    out[0] = mu
    out[1] = m2
    if m2 > 0:
        out[2] = (m3 / n) / m2**1.5
        out[3] = (m4 / n) / m2**2 - 3.0
    else:
        out[2] = 0.0
        out[3] = 0.0
    cum = np.cumsum(c)
    p10 = _percentile(cum, v, 10.0)
    p25 = _percentile(cum, v, 25.0)
    med = _percentile(cum, v, 50.0)
    p75 = _percentile(cum, v, 75.0)
    p90 = _percentile(cum, v, 90.0)
    out[4] = med
    out[5] = v[0]
    out[6] = p10
    out[7] = p90
    out[8] = v[m - 1]
    out[9] = p75 - p25
    out[10] = v[m - 1] - v[0]
    out[11] = mad / n
    rn = 0.0
    rs = 0.0
    for i in range(m):
        if p10 <= v[i] <= p90:
            rn += c[i]
            rs += c[i] * v[i]
    if rn > 0:
        r_mu = rs / rn
        rmad = 0.0
        for i in range(m):
            if p10 <= v[i] <= p90:
                rmad += c[i] * abs(v[i] - r_mu)
        out[12] = rmad / rn
    else:
        out[12] = np.nan
    medad = 0.0
    for i in range(m):
        medad += c[i] * abs(v[i] - med)
    out[13] = medad / n
    out[14] = math.sqrt(m2) / mu if mu != 0 else np.nan
    out[15] = (p75 - p25) / (p75 + p25) if (p75 + p25) != 0 else np.nan


@numba.njit(**_JIT)
def _statistics(x):  # pragma: no cover - compiled
    counts, lo, hi = _histogram(x)
    out = np.empty(18)
    if lo > hi:
        out[0] = np.nan  # not binnable: the caller uses the reference
        return out, False
    _moments(counts, lo, out)
    energy = 0.0
    for i in range(counts.size):
        energy += counts[i] * float(lo + i) ** 2
    out[16] = energy
    out[17] = math.sqrt(energy / x.size)
    return out, True


@numba.njit(**_JIT)
def _histogram_values(g):  # pragma: no cover - compiled
    lo = g.min()
    hi = g.max()
    counts = np.zeros(hi - lo + 1, np.int64)
    for v in g:
        counts[v - lo] += 1
    out = np.empty(23)
    _moments(counts, lo, out)
    mean = out[0]
    top = counts.max()
    mode = -1
    best = math.inf
    for i in range(counts.size):  # several modes: the one closest to the mean, then the lowest
        if counts[i] == top and abs(lo + i - mean) < best:
            best = abs(lo + i - mean)
            mode = lo + i
    out[16] = mode
    n = g.size
    entropy = 0.0
    uniformity = 0.0
    for i in range(counts.size):
        if counts[i] > 0:
            p = counts[i] / n
            entropy -= p * math.log2(p)
            uniformity += p * p
    out[17] = entropy
    out[18] = uniformity
    k = counts.size
    if k >= 2:
        gmax = -math.inf
        gmin = math.inf
        imax = 0
        imin = 0
        for i in range(k):
            if i == 0:
                d = float(counts[1] - counts[0])
            elif i == k - 1:
                d = float(counts[k - 1] - counts[k - 2])
            else:
                d = (counts[i + 1] - counts[i - 1]) / 2.0
            if d > gmax:
                gmax = d
                imax = i
            if d < gmin:
                gmin = d
                imin = i
        out[19] = gmax
        out[20] = lo + imax
        out[21] = gmin
        out[22] = lo + imin
    else:
        out[19:23] = np.nan
    return out


def statistics_vector(x: np.ndarray) -> np.ndarray | None:
    """The values of ``STATISTICS_NAMES`` for the intensity-mask voxels ``x``, or ``None``
    when ``x`` is not integer-valued (the caller then uses ``intensity_statistics``)."""
    out, ok = _statistics(np.ascontiguousarray(x, dtype=np.float64))
    return out if ok else None


def histogram_vector(g: np.ndarray) -> np.ndarray:
    """The values of ``HISTOGRAM_NAMES`` for the grey levels ``g`` (integers >= 1)."""
    return _histogram_values(np.ascontiguousarray(g, dtype=np.int64))


@numba.njit(**_JIT)
def _ivh(values, step, lb, x_min, x_max, out):  # pragma: no cover - compiled
    """``ivh_features`` with a bin width (``step``) into ``out`` (``IVH_NAMES`` order), the
    same arithmetic; NaN ``lb``: the lowest value; NaN ``x_min``: the bin centres' range.
    False when a value is not finite (the caller uses the reference)."""
    if math.isnan(lb):
        lb = values.min()
    bins = np.empty(values.size, np.int64)
    finite = True
    for i in range(values.size):
        v = values[i]
        finite &= math.isfinite(v)
        bins[i] = np.int64(math.floor((v - lb) / step) + 1)
    if not finite:
        return False
    lo = bins.min()
    hi = bins.max()
    counts = np.zeros(hi - lo + 1, np.int64)
    for k in bins:
        counts[k - lo] += 1
    m = counts.size
    centres = np.empty(m)
    for i in range(m):
        centres[i] = lb + ((lo + i) - 0.5) * step
    if math.isnan(x_min):
        x_min, x_max = centres[0], centres[m - 1]
    if x_max <= x_min:
        out[:] = np.nan
        return True
    # nu[i]: fraction of voxels in bin lo + i or above (exact integer sums, then one division)
    nu = np.empty(m)
    above = 0.0
    for i in range(m - 1, -1, -1):
        above += counts[i]
        nu[i] = above
    nu /= above
    for j, frac in enumerate((0.1, 0.9)):  # volume at 10 % / 90 % of the intensity range
        out[j] = 0.0
        for i in range(m):
            if (centres[i] - x_min) / (x_max - x_min) >= frac:
                out[j] = nu[i]
                break
    for j, frac in enumerate((0.1, 0.9)):  # intensity at 10 % / 90 % of the volume
        out[2 + j] = centres[m - 1] + step
        for i in range(m):
            if nu[i] < frac:
                out[2 + j] = centres[i]
                break
    out[4] = out[0] - out[1]
    out[5] = out[2] - out[3]
    return True


def ivh_vector(
    values: np.ndarray,
    step: float,
    lower_bound: float | None,
    value_range: tuple[float, float] | None,
) -> np.ndarray | None:
    """The values of ``IVH_NAMES`` for the intensities ``values`` with bins of ``step``
    (``ivh_features(values, step, lower_bound=..., value_range=...)``), or ``None`` when a
    value is not finite (the caller then uses ``ivh_features``)."""
    out = np.empty(len(IVH_NAMES))
    lb = math.nan if lower_bound is None else float(lower_bound)
    x_min, x_max = (math.nan, math.nan) if value_range is None else value_range
    ok = _ivh(
        np.ascontiguousarray(values, dtype=np.float64),
        float(step),
        lb,
        float(x_min),
        float(x_max),
        out,
    )
    return out if ok else None


@numba.njit(**_JIT)
def _intensity_block(
    image, mask, n, statistics, ivh, ivh_step, ivh_lb, ivh_min, ivh_max, lb, width, histogram
):  # pragma: no cover
    """``intensity_block`` in one compiled call."""
    x = np.empty(n)
    i = 0
    nz, ny, nx = mask.shape
    for z in range(nz):
        for y in range(ny):
            for k in range(nx):
                if mask[z, y, k]:
                    x[i] = image[z, y, k]
                    i += 1
    constant = True  # min == max (False with a NaN, as there)
    for v in x:
        constant &= v == x[0]
    stats = np.empty(18)
    stats_ok = False
    if statistics:
        stats, stats_ok = _statistics(x)
    ivh_out = np.empty(6)
    ivh_ok = False
    if ivh:
        ivh_ok = _ivh(x, ivh_step, ivh_lb, ivh_min, ivh_max, ivh_out)
    grey = np.empty(n, np.int64)
    below = 0
    for j in range(n):  # (np.floor((x - lb) / width) + 1).astype(np.int64), then >= 1
        g = np.int64(np.floor((x[j] - lb) / width) + 1.0)
        below += g < 1
        grey[j] = max(g, 1)
    hist = _histogram_values(grey) if histogram else np.empty(23)
    return x, constant, stats, stats_ok, ivh_out, ivh_ok, grey, below, hist


def block_arguments(
    *,
    statistics: bool,
    ivh_step: float | None,
    ivh_lower_bound: float | None,
    ivh_range: tuple[float, float] | None,
    lower_bound: float,
    bin_width: float,
    histogram: bool,
) -> tuple:
    """The settings part of ``intensity_block``'s arguments (fixed per settings object)."""
    x_min, x_max = (math.nan, math.nan) if ivh_range is None else ivh_range
    return (
        bool(statistics),
        ivh_step is not None,
        math.nan if ivh_step is None else float(ivh_step),
        math.nan if ivh_lower_bound is None else float(ivh_lower_bound),
        float(x_min),
        float(x_max),
        float(lower_bound),
        float(bin_width),
        bool(histogram),
    )


def intensity_block(image: np.ndarray, mask: np.ndarray, n: int, arguments: tuple) -> tuple:
    """The intensity families of one lesion with fixed-size bins, in one compiled pass over
    its intensity mask (``mask``, ``n`` voxels, on the ``image`` box); ``arguments`` from
    ``block_arguments``: whether to compute the statistics, the IVH's bin width, lower bound
    and range, the grey levels' lower bound and bin width, whether to compute the histogram.

    Returns ``(x, constant, statistics, statistics_ok, ivh, ivh_ok, grey, n_below,
    histogram)``: the voxels' intensities in raster order (``image[mask]``); whether they are
    all equal; the values of ``STATISTICS_NAMES`` (``statistics_ok`` False: not
    integer-valued or not asked, where ``statistics_vector`` returns ``None``); those of
    ``IVH_NAMES`` (``ivh_ok`` False: a value not finite or not asked, as ``ivh_vector``);
    the grey levels ``floor((x - lower_bound) / bin_width) + 1`` (``discretise``) with the
    ``n_below`` of them below 1 put in bin 1; the values of ``HISTOGRAM_NAMES`` of the grey
    levels. The same arithmetic as those functions: the same values to the bit.
    """
    return _intensity_block(image, mask, n, *arguments)


@numba.njit(**_JIT)
def _value_range(values):  # pragma: no cover - compiled
    """Lowest and highest of ``values`` (flat, not empty) in one vectorised pass; NaN and NaN
    when one is NaN (as ``np.min`` / ``np.max``)."""
    lo = values[0]
    hi = values[0]
    nan = False
    for v in values:
        lo = min(lo, v)
        hi = max(hi, v)
        nan |= v != v
    if nan:
        return np.nan, np.nan
    return float(lo), float(hi)


# image types whose range ``value_range`` takes in one compiled pass (CT's int16, float64)
_RANGE_TYPES = (np.dtype(np.int16), np.dtype(np.float64))


def value_range(image: np.ndarray) -> tuple[float, float]:
    """``(float(image.min()), float(image.max()))`` of a non-empty array, in one pass where
    the type allows."""
    if image.size and image.dtype in _RANGE_TYPES and image.flags.c_contiguous:
        return _value_range(image.reshape(-1))
    return float(np.min(image)), float(np.max(image))


@numba.njit(**_JIT)
def _resegment(image, roi, lo, hi, out, write, reach):  # pragma: no cover - compiled
    """One pass: ``out`` = ``roi & (lo <= image <= hi)`` (written when ``write``); the
    bounding boxes ``(3, 2)`` (first, last + 1) and voxel counts of ``roi`` and of that.
    Each row's first/last voxels and counts are found without branches (the loop
    vectorises); the boxes are updated once per row. Only the box ``reach`` (first, last + 1
    along z, y, x), which holds every ROI voxel, is read (``out`` is zero elsewhere)."""
    nz, ny, nx = roi.shape
    box = np.empty((2, 3, 2), np.int64)
    for b in range(2):
        box[b, 0, 0], box[b, 1, 0], box[b, 2, 0] = nz, ny, nx
        box[b, :, 1] = 0
    n = np.zeros(2, np.int64)
    x0, x1 = reach[2, 0], reach[2, 1]
    for z in range(reach[0, 0], reach[0, 1]):
        for y in range(reach[1, 0], reach[1, 1]):
            first_r, last_r, first_k, last_k = nx, -1, nx, -1
            count_r, count_k = 0, 0
            roi_row = roi[z, y, x0:x1]  # rows from 0: no negative-index wraparound
            image_row = image[z, y, x0:x1]
            out_row = out[z, y, x0:x1] if write else out[0, 0, 0:0]
            for k in range(x1 - x0):
                x = x0 + k
                r = roi_row[k]
                v = image_row[k]
                keep = r & (lo <= v) & (v <= hi)
                if write:
                    out_row[k] = keep
                count_r += r
                count_k += keep
                first_r = min(first_r, x if r else nx)
                last_r = max(last_r, x if r else -1)
                first_k = min(first_k, x if keep else nx)
                last_k = max(last_k, x if keep else -1)
            for b, count, first, last in (
                (0, count_r, first_r, last_r),
                (1, count_k, first_k, last_k),
            ):
                if count:
                    n[b] += count
                    box[b, 0, 0] = min(box[b, 0, 0], z)
                    box[b, 0, 1] = max(box[b, 0, 1], z + 1)
                    box[b, 1, 0] = min(box[b, 1, 0], y)
                    box[b, 1, 1] = max(box[b, 1, 1], y + 1)
                    box[b, 2, 0] = min(box[b, 2, 0], first)
                    box[b, 2, 1] = max(box[b, 2, 1], last + 1)
    return box, n


def resegment(
    image: np.ndarray,
    roi: np.ndarray,
    value_range: tuple[float, float] | None,
    reach: np.ndarray | None = None,
) -> tuple[np.ndarray, tuple[slice, ...], int, tuple[slice, ...] | None, int]:
    """Re-segmentation (IBSI 2.5) and the boxes the features work on, in one pass.

    Returns ``(intensity_mask, box, n_roi, intensity_box, n_intensity)``: the ROI voxels with
    intensities in ``value_range`` (``roi`` itself when it is ``None``), the bounding box and
    voxel count of ``roi`` and of the intensity mask (``None`` when it is empty). ``reach``
    (first, last + 1 index along z, y, x): a box known to hold every ROI voxel, the only
    part read (default: the whole array).
    """
    mask = np.zeros(roi.shape, bool) if value_range is not None else None
    lo, hi = value_range if value_range is not None else (-math.inf, math.inf)
    if reach is None:
        reach = np.zeros((3, 2), np.int64)
        reach[:, 1] = roi.shape
    box, n = _resegment(
        np.ascontiguousarray(image, dtype=np.float64),
        np.ascontiguousarray(roi),
        float(lo),
        float(hi),
        mask if mask is not None else np.zeros((1, 1, 1), bool),
        mask is not None,
        reach,
    )
    (rz, ry, rx), (kz, ky, kx) = box.tolist()
    roi_box = (slice(*rz), slice(*ry), slice(*rx))
    n_roi, n_int = n.tolist()
    if mask is None:  # no range: the intensity mask is the ROI
        return roi, roi_box, n_roi, roi_box, n_roi
    return mask, roi_box, n_roi, (slice(*kz), slice(*ky), slice(*kx)) if n_int else None, n_int
