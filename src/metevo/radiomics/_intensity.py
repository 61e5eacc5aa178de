"""Intensity features: statistics (IBSI-1 3.3), histogram (3.4), intensity-volume histogram
(3.5), and the discretisation they rely on (IBSI 2.7)."""

from __future__ import annotations

import math

import numpy as np

from metevo.radiomics._settings import RadiomicsSettings

__all__ = [
    "discretise",
    "intensity_histogram_features",
    "intensity_statistics",
    "ivh_features",
]


def discretise(x: np.ndarray, settings: RadiomicsSettings) -> np.ndarray:
    """Grey levels (integers from 1) of the intensities ``x`` (IBSI 2.7).

    Fixed bin size: ``floor((x - lower_bound) / bin_width) + 1`` with the lower bound fixed by
    the settings (so grey levels are comparable between lesions and visits). Fixed bin number:
    ``floor(n_bins (x - min) / (max - min)) + 1``, the maximum in bin ``n_bins``. ``"none"``:
    the intensities rounded to integers.
    """
    if settings.discretisation == "fixed_bin_size":
        lb = settings.lower_bound
        if lb is None:
            lb = float(x.min()) if x.size else 0.0
        return (np.floor((x - lb) / settings.bin_width) + 1).astype(np.int64)
    if settings.discretisation == "fixed_bin_number":
        if x.size == 0:
            return np.zeros(0, np.int64)
        lo, hi = float(x.min()), float(x.max())
        if hi == lo:
            return np.ones(x.shape, np.int64)
        g = np.floor(settings.n_bins * (x - lo) / (hi - lo)) + 1
        return np.minimum(g, settings.n_bins).astype(np.int64)
    return np.rint(x).astype(np.int64)


def _order_stat(cum: np.ndarray, values: np.ndarray, k: np.ndarray) -> np.ndarray:
    """The ``k``-th smallest (0-based) of the sample whose histogram has cumulative counts
    ``cum`` over ``values``."""
    return values[np.searchsorted(cum, k, side="right")]


def _percentiles_from_counts(counts: np.ndarray, values: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``np.percentile(sample, q)`` (linear interpolation) of the sample with histogram
    ``counts`` over ``values``, without expanding it."""
    cum = np.cumsum(counts)
    h = (cum[-1] - 1) * np.asarray(q, np.float64) / 100.0
    k = np.floor(h).astype(np.int64)
    lo = _order_stat(cum, values, k)
    hi = _order_stat(cum, values, np.minimum(k + 1, cum[-1] - 1))
    return lo + (h - k) * (hi - lo)


def _moments_of_counts(counts: np.ndarray, v: np.ndarray, prefix: str) -> dict[str, float]:
    """The statistics of ``_moments`` from a histogram: ``counts`` of the values ``v``.

    Exact for integer-valued samples (HU of CT, grey levels): every sum runs over the distinct
    values, so the cost is one ``bincount`` of the voxels plus the intensity range.
    """
    keep = counts > 0
    c, v = counts[keep].astype(np.float64), v[keep].astype(np.float64)
    n = c.sum()
    mu = float((c * v).sum() / n)
    d = v - mu
    m2 = float((c * d**2).sum() / n)
    out: dict[str, float] = {f"{prefix}_mean": mu, f"{prefix}_var": m2}
    if m2 > 0:
        out[f"{prefix}_skew"] = float((c * d**3).sum() / n) / m2**1.5
        out[f"{prefix}_kurt"] = float((c * d**4).sum() / n) / m2**2 - 3.0
    else:
        out[f"{prefix}_skew"] = 0.0
        out[f"{prefix}_kurt"] = 0.0
    p10, p25, med, p75, p90 = _percentiles_from_counts(c, v, np.array([10, 25, 50, 75, 90]))
    return _order_features(
        out,
        prefix,
        v[0],
        v[-1],
        (p10, p25, med, p75, p90),
        mu,
        m2,
        mad=float((c * np.abs(d)).sum() / n),
        robust=(c[(v >= p10) & (v <= p90)], v[(v >= p10) & (v <= p90)]),
        medad=float((c * np.abs(v - med)).sum() / n),
    )


def _order_features(
    out: dict[str, float],
    prefix: str,
    x_min: float,
    x_max: float,
    pct: tuple[float, ...],
    mu: float,
    m2: float,
    *,
    mad: float,
    robust: tuple[np.ndarray, np.ndarray],
    medad: float,
) -> dict[str, float]:
    p10, p25, med, p75, p90 = (float(p) for p in pct)
    out[f"{prefix}_median"] = med
    out[f"{prefix}_min"] = float(x_min)
    out[f"{prefix}_p10"] = p10
    out[f"{prefix}_p90"] = p90
    out[f"{prefix}_max"] = float(x_max)
    out[f"{prefix}_iqr"] = p75 - p25
    out[f"{prefix}_range"] = float(x_max - x_min)
    out[f"{prefix}_mad"] = mad
    rc, rv = robust
    # with very few voxels no voxel may lie between the interpolated 10th and 90th percentiles
    if rc.sum() > 0:
        r_mu = (rc * rv).sum() / rc.sum()
        out[f"{prefix}_rmad"] = float((rc * np.abs(rv - r_mu)).sum() / rc.sum())
    else:
        out[f"{prefix}_rmad"] = math.nan
    out[f"{prefix}_medad"] = medad
    out[f"{prefix}_cov"] = math.sqrt(m2) / mu if mu != 0 else math.nan
    out[f"{prefix}_qcod"] = (p75 - p25) / (p75 + p25) if (p75 + p25) != 0 else math.nan
    return out


def _moments(x: np.ndarray, prefix: str) -> dict[str, float]:
    if x.dtype.kind in "iu" or np.array_equal(x, np.rint(x)):
        lo = int(x.min())
        hi = int(x.max())
        if hi - lo <= 4 * x.size + 65536:
            counts = np.bincount((x - lo).astype(np.int64), minlength=hi - lo + 1)
            return _moments_of_counts(counts, np.arange(lo, hi + 1), prefix)
    out: dict[str, float] = {}
    mu = float(x.mean())
    d = x - mu
    m2 = float(np.mean(d**2))
    out[f"{prefix}_mean"] = mu
    out[f"{prefix}_var"] = m2
    if m2 > 0:
        out[f"{prefix}_skew"] = float(np.mean(d**3)) / m2**1.5
        out[f"{prefix}_kurt"] = float(np.mean(d**4)) / m2**2 - 3.0
    else:  # constant ROI: IBSI sets skewness and kurtosis to 0
        out[f"{prefix}_skew"] = 0.0
        out[f"{prefix}_kurt"] = 0.0
    pct = np.percentile(x, [10, 25, 50, 75, 90])
    robust = x[(x >= pct[0]) & (x <= pct[4])]
    return _order_features(
        out,
        prefix,
        x.min(),
        x.max(),
        tuple(pct),
        mu,
        m2,
        mad=float(np.mean(np.abs(d))),
        robust=(np.ones(robust.size), robust),
        medad=float(np.mean(np.abs(x - pct[2]))),
    )


def intensity_statistics(x: np.ndarray) -> dict[str, float]:
    """IBSI intensity-based statistics of the intensity-mask voxels ``x``."""
    x64 = x.astype(np.float64)
    out = _moments(x64, "stat")
    out["stat_energy"] = float(np.dot(x64, x64))
    out["stat_rms"] = math.sqrt(out["stat_energy"] / x.size)
    return out


def intensity_histogram_features(g: np.ndarray) -> dict[str, float]:
    """IBSI intensity histogram features of the grey levels ``g`` (integers >= 1).

    The histogram runs over the grey levels from the lowest to the highest present; its
    gradient uses central differences inside and one-sided differences at both ends.
    """
    out = _moments(g.astype(np.float64), "ih")
    lo, hi = int(g.min()), int(g.max())
    counts = np.bincount(g - lo, minlength=hi - lo + 1).astype(np.float64)
    levels = np.arange(lo, hi + 1)
    present = counts > 0
    best = np.flatnonzero(counts == counts.max())
    # several modes: the one closest to the mean, then the lowest
    out["ih_mode"] = float(levels[best[np.argmin(np.abs(levels[best] - out["ih_mean"]))]])
    p = counts[present] / counts.sum()
    out["ih_entropy"] = float(-(p * np.log2(p)).sum())
    out["ih_uniformity"] = float((p**2).sum())
    if counts.size >= 2:
        grad = np.gradient(counts)
        out["ih_max_grad"] = float(grad.max())
        out["ih_max_grad_g"] = float(levels[np.argmax(grad)])
        out["ih_min_grad"] = float(grad.min())
        out["ih_min_grad_g"] = float(levels[np.argmin(grad)])
    else:
        for k in ("ih_max_grad", "ih_max_grad_g", "ih_min_grad", "ih_min_grad_g"):
            out[k] = math.nan
    # order the keys like the catalogue (mode sits after max)
    return out


def ivh_features(
    values: np.ndarray,
    step: float | None,
    *,
    lower_bound: float | None = None,
    value_range: tuple[float, float] | None = None,
) -> dict[str, float]:
    """Intensity-volume histogram features (IBSI 3.5).

    Parameters
    ----------
    values : ndarray
        Grey levels (``step=None``) or intensities of the intensity-mask voxels.
    step : float or None
        Bin width for intensities: bin ``k = floor((x - lower_bound) / step) + 1`` stands for
        its centre ``lower_bound + (k - 0.5) step`` (IBSI 2.7). ``None``: the grey levels as they are.
    lower_bound : float, optional
        Lower edge of the first bin (default: the lowest value).
    value_range : (float, float), optional
        ``(X_min, X_max)`` of the intensity fraction ``(i - X_min) / (X_max - X_min)``: the
        re-segmentation range when there is one (IBSI), else the ROI's lowest and highest value.

    The volume fraction ``nu(i)`` is the fraction of voxels with value >= i.
    """
    names = ("ivh_v10", "ivh_v90", "ivh_i10", "ivh_i90", "ivh_diff_v10_v90", "ivh_diff_i10_i90")
    if step is None:
        k = np.rint(values).astype(np.int64)
        lo, hi = int(k.min()), int(k.max())
        centres = np.arange(lo, hi + 1, dtype=np.float64)
    else:
        lb = float(values.min()) if lower_bound is None else lower_bound
        k = (np.floor((values - lb) / step) + 1).astype(np.int64)
        lo, hi = int(k.min()), int(k.max())
        centres = lb + (np.arange(lo, hi + 1) - 0.5) * step
    x_min, x_max = value_range if value_range is not None else (centres[0], centres[-1])
    if x_max <= x_min:
        return dict.fromkeys(names, math.nan)
    counts = np.bincount(k - lo, minlength=hi - lo + 1).astype(np.float64)
    # nu[i] = fraction of voxels in bin lo + i or above
    nu = np.cumsum(counts[::-1])[::-1] / counts.sum()
    gamma = (centres - x_min) / (x_max - x_min)

    def v_at(frac: float) -> float:
        at = gamma >= frac
        return float(nu[np.argmax(at)]) if at.any() else 0.0

    def i_at(frac: float) -> float:
        below = nu < frac
        return float(centres[np.argmax(below)]) if below.any() else float(centres[-1] + (step or 1))

    out = {
        "ivh_v10": v_at(0.1),
        "ivh_v90": v_at(0.9),
        "ivh_i10": i_at(0.1),
        "ivh_i90": i_at(0.9),
    }
    out["ivh_diff_v10_v90"] = out["ivh_v10"] - out["ivh_v90"]
    out["ivh_diff_i10_i90"] = out["ivh_i10"] - out["ivh_i90"]
    return out
