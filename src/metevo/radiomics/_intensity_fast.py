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

__all__ = ["HISTOGRAM_NAMES", "STATISTICS_NAMES", "histogram_vector", "statistics_vector"]

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

_JIT = {"cache": True, "nogil": True, "error_model": "numpy"}


@numba.njit(**_JIT)
def _histogram(x):  # pragma: no cover - compiled
    """Counts of the integer-valued sample ``x`` over ``lo .. hi``; ``lo`` > ``hi`` when the
    sample is not integer-valued or its range exceeds what ``_moments`` would bin."""
    lo = math.inf
    hi = -math.inf
    for v in x:
        if v != math.floor(v) or not math.isfinite(v):
            return np.zeros(0, np.int64), 1, 0
        lo = min(lo, v)
        hi = max(hi, v)
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
