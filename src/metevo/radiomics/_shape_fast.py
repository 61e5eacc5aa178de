"""Morphological features without spatial autocorrelation (IBSI-1 3.1), as one vector.

The same definitions as :func:`~metevo.radiomics._morphology.morphology_features` (the
readable reference; the tests compare the two to 1e-10): the compiled mesh, moment and
hull-candidate passes, Qhull on the candidates, then every formula (principal axes,
ellipsoid area, densities) in one numba call writing the 23 values in catalogue order.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from scipy.spatial import ConvexHull, QhullError

from metevo.radiomics._mesh import hull_candidates, mesh_area_volume
from metevo.radiomics._morphology import _mask_moments, _max_distance

__all__ = ["SHAPE_NAMES", "shape_vector"]

SHAPE_NAMES = (
    "morph_volume_mm3",
    "morph_vol_approx_mm3",
    "morph_area_mesh_mm2",
    "morph_av_per_mm",
    "morph_comp_1",
    "morph_comp_2",
    "morph_sph_dispr",
    "morph_sphericity",
    "morph_asphericity",
    "morph_com_mm",
    "morph_diam_mm",
    "morph_pca_maj_axis_mm",
    "morph_pca_min_axis_mm",
    "morph_pca_least_axis_mm",
    "morph_pca_elongation",
    "morph_pca_flatness",
    "morph_vol_dens_aabb",
    "morph_area_dens_aabb",
    "morph_vol_dens_aee",
    "morph_area_dens_aee",
    "morph_vol_dens_conv_hull",
    "morph_area_dens_conv_hull",
    "morph_integ_int",
)

_JIT = {"cache": True, "nogil": True, "error_model": "numpy"}


@numba.njit(**_JIT)
def _div(a, b):  # pragma: no cover - compiled
    return a / b if (b != 0 and math.isfinite(b)) else np.nan


@numba.njit(**_JIT)
def _ellipsoid_area(a, b, c):  # pragma: no cover - compiled
    """Surface of an ellipsoid with semi-axes a >= b >= c (IBSI 3.1.19, 20 terms of the
    Legendre series; P_n by the three-term recurrence)."""
    if not a > 0:
        return np.nan
    alpha = math.sqrt(max(1.0 - b * b / (a * a), 0.0))
    beta = math.sqrt(max(1.0 - c * c / (a * a), 0.0))
    if alpha == 0 and beta == 0:
        return 4.0 * math.pi * a * b
    x = (alpha**2 + beta**2) / (2.0 * alpha * beta) if alpha * beta > 0 else 1.0
    ab = alpha * beta
    p_prev = 1.0  # P_0
    p = x  # P_1
    total = 1.0  # nu = 0: (ab)^0 / 1 * P_0
    power = 1.0
    for nu in range(1, 21):
        power *= ab
        if nu > 1:
            p_prev, p = p, ((2 * nu - 1) * x * p - (nu - 1) * p_prev) / nu
        total += power / (1.0 - 4.0 * nu * nu) * p
    return 4.0 * math.pi * a * b * total


@numba.njit(**_JIT)
def _shape_formulas(
    area, volume, n_morph, spacing, n, s1, s2, w, w1, n_int, diam, hull_volume, hull_area, ext
):  # pragma: no cover - compiled
    out = np.empty(23)
    out[0] = volume
    out[1] = n_morph * spacing[0] * spacing[1] * spacing[2]
    out[2] = area
    out[3] = area / volume
    out[4] = volume / (math.sqrt(math.pi) * area**1.5)
    out[5] = 36.0 * math.pi * volume**2 / area**3
    sph = (36.0 * math.pi * volume**2) ** (1.0 / 3.0)
    out[6] = area / sph
    out[7] = sph / area
    out[8] = (area**3 / (36.0 * math.pi * volume**2)) ** (1.0 / 3.0) - 1.0
    if n_int and w != 0:
        d = 0.0
        for a in range(3):
            d += ((s1[a] / n - w1[a] / w) * spacing[a]) ** 2
        out[9] = math.sqrt(d)
    else:
        out[9] = np.nan
    out[10] = diam
    lam = np.full(3, np.nan)
    if n_morph >= 2:
        cov = np.empty((3, 3))
        for a in range(3):
            for b in range(3):
                cov[a, b] = (
                    (s2[a, b] - n * (s1[a] / n) * (s1[b] / n)) / (n - 1) * spacing[a] * spacing[b]
                )
        ev = np.linalg.eigvalsh(cov)  # ascending
        for a in range(3):
            lam[a] = max(ev[2 - a], 0.0)
    out[11] = 4.0 * math.sqrt(lam[0])
    out[12] = 4.0 * math.sqrt(lam[1])
    out[13] = 4.0 * math.sqrt(lam[2])
    out[14] = math.sqrt(_div(lam[1], lam[0]))
    out[15] = math.sqrt(_div(lam[2], lam[0]))
    out[16] = _div(volume, ext[0] * ext[1] * ext[2])
    out[17] = _div(area, 2.0 * (ext[0] * ext[1] + ext[1] * ext[2] + ext[0] * ext[2]))
    sa = 2.0 * math.sqrt(lam[0])
    sb = 2.0 * math.sqrt(lam[1])
    sc = 2.0 * math.sqrt(lam[2])
    out[18] = _div(volume, 4.0 * math.pi * sa * sb * sc / 3.0)
    out[19] = _div(area, _ellipsoid_area(sa, sb, sc)) if sc > 0 else np.nan
    out[20] = _div(volume, hull_volume)
    out[21] = _div(area, hull_area)
    out[22] = volume * w / n_int if n_int else np.nan
    return out


def shape_vector(
    morph: np.ndarray, intensity_mask: np.ndarray, image: np.ndarray, spacing: np.ndarray
) -> np.ndarray:
    """The 23 morphological features of ``SHAPE_NAMES`` of one ROI cropped to its bounding
    box (``morph`` holds a voxel on every face of the array); arguments as
    :func:`~metevo.radiomics._morphology.morphology_features`. Run under
    ``np.errstate(all="ignore")`` (degenerate ROIs give NaN)."""
    spacing = np.asarray(spacing, dtype=np.float64)
    morph = np.ascontiguousarray(morph)
    area, volume = mesh_area_volume(morph, spacing)
    n, s1, s2, w, w1 = _mask_moments(
        morph,
        np.ascontiguousarray(intensity_mask),
        np.ascontiguousarray(image, dtype=np.float64),
    )
    n_int = int(np.count_nonzero(intensity_mask))
    candidates = hull_candidates(morph, spacing)
    try:
        hull = ConvexHull(candidates)
        diam = _max_distance(np.ascontiguousarray(candidates[hull.vertices]))
        hull_volume, hull_area = float(hull.volume), float(hull.area)
    except (QhullError, ValueError):
        diam = _max_distance(candidates) if len(candidates) > 1 else math.nan
        hull_volume = hull_area = math.nan
    ext = spacing * np.array(morph.shape, dtype=np.float64)
    return _shape_formulas(
        area, volume, n, spacing, n, s1, s2, w, w1, n_int, diam, hull_volume, hull_area, ext
    )
