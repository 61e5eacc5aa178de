"""Texture matrices and features in 3D (IBSI-1 sections 3.6-3.11).

All matrices of one ROI are built in three compiled passes over its cropped grey-level grid
(numba, ``cache=True``): one over the 26 neighbours of every voxel (GLCM, NGTDM, NGLDM), one
over the runs in the 13 directions (GLRLM) and one flood fill (GLSZM zones and their distance
to the ROI border for the GLDZM). Features are then computed on all directions at once with
numpy. Grey levels are kept compact: only the levels present form matrix rows, and features
use their actual values.

Neighbourhoods: Chebyshev distance 1 (26-connectivity) for GLCM, GLRLM, GLSZM, NGTDM and
NGLDM; distance to the border for the GLDZM in 6-connectivity (city block), the border voxels
being at distance 1 (IBSI 3.9).
"""

from __future__ import annotations

import math

import numba
import numpy as np
from scipy import ndimage

__all__ = ["texture_features", "texture_matrices"]


def _offsets() -> np.ndarray:
    fwd = [
        (dz, dy, dx)
        for dz in (-1, 0, 1)
        for dy in (-1, 0, 1)
        for dx in (-1, 0, 1)
        if (dz, dy, dx) > (0, 0, 0)
    ]
    return np.array(fwd + [(-a, -b, -c) for a, b, c in fwd], dtype=np.int64)


OFFSETS = _offsets()  # (26, 3): the 13 forward directions, then their opposites


@numba.njit(cache=True, nogil=True)
def _neighbour_pass(g, n_levels, levels, offs):  # pragma: no cover - compiled
    nz, ny, nx = g.shape
    glcm = np.zeros((13, n_levels, n_levels), np.int64)
    ngldm = np.zeros((n_levels, 27), np.int64)
    s = np.zeros(n_levels)
    n = np.zeros(n_levels, np.int64)
    for z in range(nz):
        for y in range(ny):
            for x in range(nx):
                gi = g[z, y, x]
                if gi < 0:
                    continue
                cnt = 0
                tot = 0.0
                eq = 0
                for k in range(26):
                    zz = z + offs[k, 0]
                    yy = y + offs[k, 1]
                    xx = x + offs[k, 2]
                    if zz < 0 or zz >= nz or yy < 0 or yy >= ny or xx < 0 or xx >= nx:
                        continue
                    gj = g[zz, yy, xx]
                    if gj < 0:
                        continue
                    cnt += 1
                    tot += levels[gj]
                    if gj == gi:
                        eq += 1
                    if k < 13:
                        glcm[k, gi, gj] += 1
                ngldm[gi, eq] += 1
                if cnt > 0:
                    s[gi] += abs(levels[gi] - tot / cnt)
                    n[gi] += 1
    return glcm, ngldm, s, n


@numba.njit(cache=True, nogil=True)
def _run_pass(g, n_levels, offs):  # pragma: no cover - compiled
    nz, ny, nx = g.shape
    max_len = max(nz, max(ny, nx))
    rlm = np.zeros((13, n_levels, max_len), np.int64)
    for k in range(13):
        dz = offs[k, 0]
        dy = offs[k, 1]
        dx = offs[k, 2]
        for z in range(nz):
            for y in range(ny):
                for x in range(nx):
                    gi = g[z, y, x]
                    if gi < 0:
                        continue
                    pz = z - dz
                    py = y - dy
                    px = x - dx
                    if 0 <= pz < nz and 0 <= py < ny and 0 <= px < nx and g[pz, py, px] == gi:
                        continue  # not the start of a run
                    length = 1
                    qz = z + dz
                    qy = y + dy
                    qx = x + dx
                    while 0 <= qz < nz and 0 <= qy < ny and 0 <= qx < nx and g[qz, qy, qx] == gi:
                        length += 1
                        qz += dz
                        qy += dy
                        qx += dx
                    rlm[k, gi, length - 1] += 1
    return rlm


@numba.njit(cache=True, nogil=True)
def _zone_pass(g, dist, offs):  # pragma: no cover - compiled
    nz, ny, nx = g.shape
    total = nz * ny * nx
    seen = np.zeros(g.shape, np.bool_)
    stack = np.empty((total, 3), np.int64)
    zone_level = np.empty(total, np.int64)
    zone_size = np.empty(total, np.int64)
    zone_dist = np.empty(total, np.int64)
    n_zones = 0
    for z in range(nz):
        for y in range(ny):
            for x in range(nx):
                gi = g[z, y, x]
                if gi < 0 or seen[z, y, x]:
                    continue
                seen[z, y, x] = True
                top = 0
                stack[0, 0] = z
                stack[0, 1] = y
                stack[0, 2] = x
                top = 1
                size = 0
                dmin = dist[z, y, x]
                while top > 0:
                    top -= 1
                    cz = stack[top, 0]
                    cy = stack[top, 1]
                    cx = stack[top, 2]
                    size += 1
                    if dist[cz, cy, cx] < dmin:
                        dmin = dist[cz, cy, cx]
                    for k in range(26):
                        zz = cz + offs[k, 0]
                        yy = cy + offs[k, 1]
                        xx = cx + offs[k, 2]
                        if zz < 0 or zz >= nz or yy < 0 or yy >= ny or xx < 0 or xx >= nx:
                            continue
                        if seen[zz, yy, xx] or g[zz, yy, xx] != gi:
                            continue
                        seen[zz, yy, xx] = True
                        stack[top, 0] = zz
                        stack[top, 1] = yy
                        stack[top, 2] = xx
                        top += 1
                zone_level[n_zones] = gi
                zone_size[n_zones] = size
                zone_dist[n_zones] = dmin
                n_zones += 1
    return zone_level[:n_zones], zone_size[:n_zones], zone_dist[:n_zones]


def warm_up() -> float:
    """Compile (or load from the on-disk cache) the numba kernels; return the seconds spent."""
    import time

    t0 = time.perf_counter()
    g = np.zeros((2, 2, 2), np.int64)
    g[0, 0, 0] = -1
    _neighbour_pass(g, 1, np.ones(1), OFFSETS)
    _run_pass(g, 1, OFFSETS)
    _zone_pass(g, np.ones((2, 2, 2), np.int64), OFFSETS)
    from metevo.radiomics._morphology import _plane_hull_mask

    pts = np.array([0.0, 1.0, 0.0, 1.0])
    _plane_hull_mask(np.zeros(4, np.int64), pts, pts[::-1].copy())
    _plane_hull_mask(np.zeros(4, np.int64), pts[::2], pts[1::2])  # strided views, as in use
    return time.perf_counter() - t0


# ---------------------------------------------------------------------------------- features


def _entropy(p: np.ndarray, axis: tuple[int, ...] | int) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(p > 0, p * np.log2(np.where(p > 0, p, 1.0)), 0.0)
    return -t.sum(axis=axis)


def _group(p2: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum ``p2`` (D, G, G) over cells that share a key; return (values, (D, n_keys))."""
    vals, inv = np.unique(keys.ravel(), return_inverse=True)
    onehot = np.zeros((inv.size, vals.size))
    onehot[np.arange(inv.size), inv] = 1.0
    return vals.astype(np.float64), p2.reshape(p2.shape[0], -1) @ onehot


def glcm_features(counts: np.ndarray, lv: np.ndarray, n_g: float) -> dict[str, np.ndarray]:
    """IBSI GLCM features of symmetric count matrices ``counts`` (D, G, G), grey levels ``lv``."""
    tot = counts.sum(axis=(1, 2))
    p = counts / np.where(tot > 0, tot, np.nan)[:, None, None]
    i = lv[None, :, None]
    j = lv[None, None, :]
    pi = p.sum(axis=2)
    pj = p.sum(axis=1)
    mu_i = (pi * lv).sum(axis=1)
    mu_j = (pj * lv).sum(axis=1)
    var_i = (pi * (lv[None, :] - mu_i[:, None]) ** 2).sum(axis=1)
    var_j = (pj * (lv[None, :] - mu_j[:, None]) ** 2).sum(axis=1)
    mu = mu_i
    kd, pd = _group(p, np.abs(lv[:, None] - lv[None, :]))
    ks, ps = _group(p, lv[:, None] + lv[None, :])
    diff_avg = (pd * kd).sum(axis=1)
    sum_avg = (ps * ks).sum(axis=1)
    hxy = _entropy(p, (1, 2))
    hx = _entropy(pi, 1)
    hy = _entropy(pj, 1)
    pipj = pi[:, :, None] * pj[:, None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        logpipj = np.log2(np.where(pipj > 0, pipj, 1.0))
        hxy1 = -(p * logpipj).sum(axis=(1, 2))
        hxy2 = -(pipj * logpipj).sum(axis=(1, 2))
        d = np.abs(i - j)
        inv_var = (np.where(kd > 0, pd / np.where(kd > 0, kd, 1.0) ** 2, 0.0)).sum(axis=1)
        corr = ((i - mu_i[:, None, None]) * (j - mu_j[:, None, None]) * p).sum(
            axis=(1, 2)
        ) / np.sqrt(var_i * var_j)
        info1 = (hxy - hxy1) / np.maximum(hx, hy)
        info2 = np.sqrt(np.clip(1.0 - np.exp(-2.0 * (hxy2 - hxy)), 0.0, None))
    ij = i + j - mu_i[:, None, None] - mu_j[:, None, None]
    return {
        "joint_max": p.max(axis=(1, 2)),
        "joint_avg": mu,
        "joint_var": ((i - mu[:, None, None]) ** 2 * p).sum(axis=(1, 2)),
        "joint_entr": hxy,
        "diff_avg": diff_avg,
        "diff_var": (pd * (kd[None, :] - diff_avg[:, None]) ** 2).sum(axis=1),
        "diff_entr": _entropy(pd, 1),
        "sum_avg": sum_avg,
        "sum_var": (ps * (ks[None, :] - sum_avg[:, None]) ** 2).sum(axis=1),
        "sum_entr": _entropy(ps, 1),
        "energy": (p**2).sum(axis=(1, 2)),
        "contrast": (d**2 * p).sum(axis=(1, 2)),
        "dissimilarity": (d * p).sum(axis=(1, 2)),
        "inv_diff": (p / (1.0 + d)).sum(axis=(1, 2)),
        "inv_diff_norm": (p / (1.0 + d / n_g)).sum(axis=(1, 2)),
        "inv_diff_mom": (p / (1.0 + d**2)).sum(axis=(1, 2)),
        "inv_diff_mom_norm": (p / (1.0 + d**2 / n_g**2)).sum(axis=(1, 2)),
        "inv_var": inv_var,
        "corr": corr,
        "auto_corr": (i * j * p).sum(axis=(1, 2)),
        "clust_tend": (ij**2 * p).sum(axis=(1, 2)),
        "clust_shade": (ij**3 * p).sum(axis=(1, 2)),
        "clust_prom": (ij**4 * p).sum(axis=(1, 2)),
        "info_corr1": info1,
        "info_corr2": info2,
    }


# generic features of a (grey level) x (run length | zone size | distance | dependence) matrix
_ZONE_KEYS = (
    "short",
    "long",
    "low_grey",
    "high_grey",
    "short_low",
    "short_high",
    "long_low",
    "long_high",
    "glnu",
    "glnu_norm",
    "jnu",
    "jnu_norm",
    "perc",
    "gl_var",
    "j_var",
    "j_entr",
    "j_energy",
)


def zone_features(
    counts: np.ndarray, lv: np.ndarray, jv: np.ndarray, n_voxels: float
) -> dict[str, np.ndarray]:
    """Features of count matrices ``counts`` (D, G, J) with row values ``lv``, column values
    ``jv`` (IBSI 3.7-3.9, 3.11 share these definitions)."""
    ns = counts.sum(axis=(1, 2))
    nsafe = np.where(ns > 0, ns, np.nan)
    i2 = (lv**2)[None, :, None]
    j2 = (jv**2)[None, None, :]
    p = counts / nsafe[:, None, None]
    mu_i = (p * lv[None, :, None]).sum(axis=(1, 2))
    mu_j = (p * jv[None, None, :]).sum(axis=(1, 2))
    rows = counts.sum(axis=2)
    cols = counts.sum(axis=1)
    return {
        "short": (counts / j2).sum(axis=(1, 2)) / nsafe,
        "long": (counts * j2).sum(axis=(1, 2)) / nsafe,
        "low_grey": (counts / i2).sum(axis=(1, 2)) / nsafe,
        "high_grey": (counts * i2).sum(axis=(1, 2)) / nsafe,
        "short_low": (counts / (i2 * j2)).sum(axis=(1, 2)) / nsafe,
        "short_high": (counts * i2 / j2).sum(axis=(1, 2)) / nsafe,
        "long_low": (counts * j2 / i2).sum(axis=(1, 2)) / nsafe,
        "long_high": (counts * i2 * j2).sum(axis=(1, 2)) / nsafe,
        "glnu": (rows**2).sum(axis=1) / nsafe,
        "glnu_norm": (rows**2).sum(axis=1) / nsafe**2,
        "jnu": (cols**2).sum(axis=1) / nsafe,
        "jnu_norm": (cols**2).sum(axis=1) / nsafe**2,
        "perc": ns / n_voxels,
        "gl_var": (p * (lv[None, :, None] - mu_i[:, None, None]) ** 2).sum(axis=(1, 2)),
        "j_var": (p * (jv[None, None, :] - mu_j[:, None, None]) ** 2).sum(axis=(1, 2)),
        "j_entr": _entropy(p, (1, 2)),
        "j_energy": (p**2).sum(axis=(1, 2)),
    }


def ngtdm_features(s: np.ndarray, n: np.ndarray, lv: np.ndarray) -> dict[str, float]:
    """IBSI NGTDM features from ``s_i`` (sum of absolute neighbourhood differences) and
    ``n_i`` (voxels with at least one neighbour) per grey level ``lv``."""
    nvc = float(n.sum())
    keys = ("coarseness", "contrast", "busyness", "complexity", "strength")
    if nvc == 0:
        return dict.fromkeys(keys, math.nan)
    keep = n > 0
    s, n, lv = s[keep], n[keep].astype(np.float64), lv[keep]
    p = n / nvc
    ngp = p.size
    ps = p * s
    sum_ps = ps.sum()
    dl = lv[:, None] - lv[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        coarseness = 1.0 / sum_ps if sum_ps > 0 else math.nan
        contrast = (
            ((p[:, None] * p[None, :] * dl**2).sum() / (ngp * (ngp - 1))) * (s.sum() / nvc)
            if ngp > 1
            else 0.0
        )
        busy_den = np.abs(lv[:, None] * p[:, None] - lv[None, :] * p[None, :]).sum()
        busyness = sum_ps / busy_den if busy_den > 0 else 0.0
        complexity = (
            np.abs(dl) * (ps[:, None] + ps[None, :]) / (p[:, None] + p[None, :])
        ).sum() / nvc
        strength = ((p[:, None] + p[None, :]) * dl**2).sum() / s.sum() if s.sum() > 0 else 0.0
    return {
        "coarseness": coarseness,
        "contrast": float(contrast),
        "busyness": float(busyness),
        "complexity": float(complexity),
        "strength": float(strength),
    }


_GLRLM_NAMES = dict(
    zip(
        _ZONE_KEYS[:16],
        (
            "sre",
            "lre",
            "lgre",
            "hgre",
            "srlge",
            "srhge",
            "lrlge",
            "lrhge",
            "glnu",
            "glnu_norm",
            "rlnu",
            "rlnu_norm",
            "r_perc",
            "gl_var",
            "rl_var",
            "rl_entr",
        ),
        strict=True,
    )
)
_GLSZM_NAMES = dict(
    zip(
        _ZONE_KEYS[:16],
        (
            "sze",
            "lze",
            "lgze",
            "hgze",
            "szlge",
            "szhge",
            "lzlge",
            "lzhge",
            "glnu",
            "glnu_norm",
            "zsnu",
            "zsnu_norm",
            "z_perc",
            "gl_var",
            "zs_var",
            "zs_entr",
        ),
        strict=True,
    )
)
_GLDZM_NAMES = dict(
    zip(
        _ZONE_KEYS[:16],
        (
            "sde",
            "lde",
            "lgze",
            "hgze",
            "sdlge",
            "sdhge",
            "ldlge",
            "ldhge",
            "glnu",
            "glnu_norm",
            "zdnu",
            "zdnu_norm",
            "z_perc",
            "gl_var",
            "zd_var",
            "zd_entr",
        ),
        strict=True,
    )
)
_NGLDM_NAMES = dict(
    zip(
        _ZONE_KEYS,
        (
            "lde",
            "hde",
            "lgce",
            "hgce",
            "ldlge",
            "ldhge",
            "hdlge",
            "hdhge",
            "glnu",
            "glnu_norm",
            "dcnu",
            "dcnu_norm",
            "dc_perc",
            "gl_var",
            "dc_var",
            "dc_entr",
            "dc_energy",
        ),
        strict=True,
    )
)


def _direction_mean(values: np.ndarray, valid: np.ndarray) -> float:
    """Mean over the directions that hold at least one pair or run (NaN when none does)."""
    v = values[valid]
    return float(v.mean()) if v.size else math.nan


def texture_matrices(grey: np.ndarray, roi: np.ndarray) -> dict[str, np.ndarray]:
    """The 3D texture matrices of one ROI, before normalisation.

    Returns a dict with ``levels`` (the grey levels present, ascending: the rows of every
    matrix), ``glcm`` (13, G, G) symmetric co-occurrence counts per direction, ``glrlm``
    (13, G, max run) run counts per direction, ``zone_level`` / ``zone_size`` /
    ``zone_distance`` (one entry per 26-connected zone: row index, voxels, distance to the ROI
    border), ``ngtdm_s`` / ``ngtdm_n`` (G,) and ``ngldm`` (G, 27) dependence counts
    (column j for dependence j + 1).
    """
    values = grey[roi]
    present = np.bincount(values) > 0
    lv_int = np.flatnonzero(present)
    lookup = np.cumsum(present) - 1  # grey level -> row of the compact matrices
    lv = lv_int.astype(np.float64)
    n_levels = lv.size
    g = np.full(roi.shape, -1, np.int64)
    g[roi] = lookup[values]
    glcm, ngldm, s, n = _neighbour_pass(g, n_levels, lv, OFFSETS)
    rlm = _run_pass(g, n_levels, OFFSETS)
    dist = ndimage.distance_transform_cdt(np.pad(roi, 1), metric="taxicab")[1:-1, 1:-1, 1:-1]
    z_level, z_size, z_dist = _zone_pass(g, dist.astype(np.int64), OFFSETS)
    return {
        "levels": lv,
        "glcm": glcm + glcm.transpose(0, 2, 1),
        "glrlm": rlm,
        "zone_level": z_level,
        "zone_size": z_size,
        "zone_distance": z_dist,
        "ngtdm_s": s,
        "ngtdm_n": n,
        "ngldm": ngldm,
    }


def texture_features(grey: np.ndarray, roi: np.ndarray) -> dict[str, float]:
    """All 3D texture features of one ROI.

    Parameters
    ----------
    grey : ndarray of int, shape (z, y, x)
        Discretised grey levels (>= 1) on the crop; values outside ``roi`` are ignored.
    roi : ndarray of bool, same shape
        The intensity mask.

    Returns
    -------
    dict
        Column name -> value, GLCM and GLRLM in both 3D aggregations, the others in 3D.
    """
    out: dict[str, float] = {}
    mats = texture_matrices(grey, roi)
    lv = mats["levels"]
    n_levels = lv.size
    n_voxels = float(roi.sum())
    n_g = float(lv.max())  # number of grey levels of the discretisation in use (1..max)
    rlm = mats["glrlm"]
    z_level, z_size, z_dist = mats["zone_level"], mats["zone_size"], mats["zone_distance"]
    s, n, ngldm = mats["ngtdm_s"], mats["ngtdm_n"], mats["ngldm"]

    with np.errstate(divide="ignore", invalid="ignore"):
        # GLCM: symmetric, 13 directions averaged and merged
        sym = mats["glcm"].astype(np.float64)
        valid = sym.sum(axis=(1, 2)) > 0
        per_dir = glcm_features(sym, lv, n_g)
        merged = glcm_features(sym.sum(axis=0, keepdims=True), lv, n_g)
        for name in per_dir:
            out[f"cm_{name}_3d_avg"] = _direction_mean(per_dir[name], valid)
        for name in merged:
            out[f"cm_{name}_3d_comb"] = float(merged[name][0])

        # GLRLM
        used = np.flatnonzero(rlm.sum(axis=(0, 1)))
        rlm = rlm[:, :, : (used.max() + 1 if used.size else 1)].astype(np.float64)
        jv = np.arange(1, rlm.shape[2] + 1, dtype=np.float64)
        per_dir = zone_features(rlm, lv, jv, n_voxels)
        merged = zone_features(rlm.sum(axis=0, keepdims=True), lv, jv, 13.0 * n_voxels)
        valid = rlm.sum(axis=(1, 2)) > 0
        for key, name in _GLRLM_NAMES.items():
            out[f"rlm_{name}_3d_avg"] = _direction_mean(per_dir[key], valid)
        for key, name in _GLRLM_NAMES.items():
            out[f"rlm_{name}_3d_comb"] = float(merged[key][0])

        # GLSZM and GLDZM from the same zones
        for values, names, prefix in (
            (z_size, _GLSZM_NAMES, "szm"),
            (z_dist, _GLDZM_NAMES, "dzm"),
        ):
            jv_int, jidx = np.unique(values, return_inverse=True)
            mat = (
                np.bincount(z_level * jv_int.size + jidx.ravel(), minlength=n_levels * jv_int.size)
                .reshape(1, n_levels, jv_int.size)
                .astype(np.float64)
            )
            feats = zone_features(mat, lv, jv_int.astype(np.float64), n_voxels)
            for key, name in names.items():
                out[f"{prefix}_{name}_3d"] = float(feats[key][0])

        # NGTDM
        for name, value in ngtdm_features(s, n, lv).items():
            out[f"ngt_{name}_3d"] = value

        # NGLDM (dependence count j = 1 + number of equal neighbours)
        feats = zone_features(
            ngldm[None].astype(np.float64), lv, np.arange(1, 28, dtype=np.float64), n_voxels
        )
        for key, name in _NGLDM_NAMES.items():
            out[f"ngl_{name}_3d"] = float(feats[key][0])
    return out
