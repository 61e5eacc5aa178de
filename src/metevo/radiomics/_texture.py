"""Texture matrices and features in 3D (IBSI-1 sections 3.6-3.11).

All matrices of one ROI are built in two compiled passes over its cropped grey-level grid
(``_texture_passes``): one over the 26 neighbours of every voxel (GLCM, NGTDM, NGLDM, and the
runs in the 13 directions for the GLRLM, each counted at its last voxel) and one union-find
(GLSZM zones and their distance to the ROI border for the GLDZM). The features here are the
NumPy reference, computed on all directions at once; the engine evaluates the same formulas
compiled (``_texture_fast``). Grey levels are kept compact: only the levels present form
matrix rows, and features use their actual values.

Neighbourhoods: Chebyshev distance 1 (26-connectivity) for GLCM, GLRLM, GLSZM, NGTDM and
NGLDM; distance to the border for the GLDZM in 6-connectivity (city block), the border voxels
being at distance 1 (IBSI 3.9).
"""

from __future__ import annotations

import math

import numpy as np

from metevo.radiomics._border import border_distance
from metevo.radiomics._texture_passes import (
    _flat_offsets,
    _neighbour_pass,
    _run_pass,
    _zone_pass,
)

__all__ = ["texture_features", "texture_matrices"]


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


# GLCM feature keys, in the order of ``glcm_features``
_GLCM_KEYS = (
    "joint_max",
    "joint_avg",
    "joint_var",
    "joint_entr",
    "diff_avg",
    "diff_var",
    "diff_entr",
    "sum_avg",
    "sum_var",
    "sum_entr",
    "energy",
    "contrast",
    "dissimilarity",
    "inv_diff",
    "inv_diff_norm",
    "inv_diff_mom",
    "inv_diff_mom_norm",
    "inv_var",
    "corr",
    "auto_corr",
    "clust_tend",
    "clust_shade",
    "clust_prom",
    "info_corr1",
    "info_corr2",
)
_NGTDM_KEYS = ("coarseness", "contrast", "busyness", "complexity", "strength")

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
    if nvc == 0:
        return dict.fromkeys(_NGTDM_KEYS, math.nan)
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


def _aggregate(feats: dict[str, np.ndarray], valid: np.ndarray) -> tuple[list[float], list[float]]:
    """Per feature: the mean over the 13 directions that hold at least one pair or run (NaN
    when none does), and the value of the merged matrix (entry 13)."""
    table = np.array(list(feats.values()))  # (features, 14)
    per_dir = table[:, :13][:, valid]
    avg = per_dir.mean(axis=1) if per_dir.shape[1] else np.full(len(table), math.nan)
    return avg.tolist(), table[:, 13].tolist()


_ALL = ("glcm", "glrlm", "glszm", "gldzm", "ngtdm", "ngldm")


def check_run_length(shape: tuple[int, ...]) -> None:
    """Raise a ValueError when a ROI of ``shape`` can hold runs longer than the GLRLM's
    int16 run lengths."""
    if max(shape) >= 32767:
        raise ValueError(
            f"the ROI spans {max(shape)} voxels along an axis; GLRLM counts runs of up "
            "to 32,766 voxels. Crop or resample the ROI."
        )


def texture_matrices(
    grey: np.ndarray, roi: np.ndarray, families: tuple[str, ...] = _ALL
) -> dict[str, np.ndarray]:
    """The 3D texture matrices of one ROI, before normalisation.

    Returns a dict with ``levels`` (the grey levels present, ascending: the rows of every
    matrix), ``n_voxels`` (the ROI's voxel count), ``glcm`` (13, G, G) symmetric
    co-occurrence counts per direction (``glcm_raw``: the forward pairs only), ``glrlm``
    (13, G, max run) run counts per direction, ``zone_level`` / ``zone_size`` /
    ``zone_distance`` (one entry per 26-connected zone: row index, voxels, distance to the ROI
    border), ``ngtdm_s`` / ``ngtdm_n`` (G,) and ``ngldm`` (G, 27) dependence counts
    (column j for dependence j + 1). Only the passes that ``families`` need are run (the
    neighbour pass for GLCM, NGTDM and NGLDM; the run pass for GLRLM; the zone pass for
    GLSZM and GLDZM), and only the matrices they make are returned.
    """
    values = grey[roi]
    present = np.bincount(values) > 0
    lv_int = np.flatnonzero(present)
    lookup = np.cumsum(present) - 1  # grey level -> row of the compact matrices
    lv = lv_int.astype(np.float64)
    n_levels = lv.size
    shape = tuple(int(n) + 2 for n in roi.shape)
    inner = (slice(1, -1),) * 3
    gp = np.full(shape, -1, np.int32)
    gp[inner][roi] = lookup[values]
    gp = gp.ravel()
    vox = np.flatnonzero(gp >= 0)
    step = _flat_offsets(shape)
    out: dict[str, np.ndarray] = {"levels": lv, "n_voxels": vox.size}
    # the run counts keep run lengths in int16
    runs = "glrlm" in families
    if runs:
        check_run_length(roi.shape)
    if {"glcm", "ngtdm", "ngldm"} & set(families):
        # the run pass rides along when GLRLM is wanted too
        glcm, ngldm, s, n, rlm = _neighbour_pass(
            gp, vox, n_levels, lv, step, max(roi.shape) if runs else 0
        )
        out.update(glcm_raw=glcm, ngtdm_s=s, ngtdm_n=n, ngldm=ngldm)
        if "glcm" in families:
            out["glcm"] = glcm + glcm.transpose(0, 2, 1)
        if runs:
            out["glrlm"] = rlm
    if runs and "glrlm" not in out:
        out["glrlm"] = _run_pass(gp, vox, n_levels, max(roi.shape), step)
    if {"glszm", "gldzm"} & set(families):
        if "gldzm" in families:
            # distance to the ROI border in 6-connectivity, border voxels at 1 (IBSI 3.9)
            dp = border_distance(roi).ravel()
        else:
            dp = np.ones(1, np.int32)  # no distances needed: every zone gets 1
        out["zone_level"], out["zone_size"], out["zone_distance"] = _zone_pass(gp, dp, vox, step)
    return out


def texture_features(
    grey: np.ndarray, roi: np.ndarray, families: tuple[str, ...] = _ALL
) -> dict[str, float]:
    """3D texture features of one ROI.

    Parameters
    ----------
    grey : ndarray of int, shape (z, y, x)
        Discretised grey levels (>= 1) on the crop; values outside ``roi`` are ignored.
    roi : ndarray of bool, same shape
        The intensity mask.
    families : tuple of str
        The families to compute (default: all six).

    Returns
    -------
    dict
        Column name -> value, GLCM and GLRLM in both 3D aggregations, the others in 3D.
    """
    out: dict[str, float] = {}
    mats = texture_matrices(grey, roi, families)
    lv = mats["levels"]
    n_levels = lv.size
    n_voxels = float(roi.sum())
    n_g = float(lv.max())  # number of grey levels of the discretisation in use (1..max)

    with np.errstate(divide="ignore", invalid="ignore"):
        if "glcm" in families:  # symmetric, 13 directions averaged and merged
            sym = mats["glcm"].astype(np.float64)
            # the 13 directions and their merged matrix in one evaluation
            both = np.concatenate([sym, sym.sum(axis=0, keepdims=True)])
            feats = glcm_features(both, lv, n_g)
            avg, comb = _aggregate(feats, sym.sum(axis=(1, 2)) > 0)
            out.update((f"cm_{name}_3d_avg", v) for name, v in zip(feats, avg, strict=True))
            out.update((f"cm_{name}_3d_comb", v) for name, v in zip(feats, comb, strict=True))

        if "glrlm" in families:
            rlm = mats["glrlm"]
            used = np.flatnonzero(rlm.sum(axis=(0, 1)))
            rlm = rlm[:, :, : (used.max() + 1 if used.size else 1)].astype(np.float64)
            jv = np.arange(1, rlm.shape[2] + 1, dtype=np.float64)
            both = np.concatenate([rlm, rlm.sum(axis=0, keepdims=True)])
            n_both = np.full(14, n_voxels)
            n_both[13] = 13.0 * n_voxels
            feats = zone_features(both, lv, jv, n_both)
            feats = {key: feats[key] for key in _GLRLM_NAMES}
            avg, comb = _aggregate(feats, rlm.sum(axis=(1, 2)) > 0)
            names = _GLRLM_NAMES.values()
            out.update((f"rlm_{name}_3d_avg", v) for name, v in zip(names, avg, strict=True))
            out.update((f"rlm_{name}_3d_comb", v) for name, v in zip(names, comb, strict=True))

        # GLSZM and GLDZM from the same zones
        for family, key, names, prefix in (
            ("glszm", "zone_size", _GLSZM_NAMES, "szm"),
            ("gldzm", "zone_distance", _GLDZM_NAMES, "dzm"),
        ):
            if family not in families:
                continue
            z_level = mats["zone_level"]
            jv_int, jidx = np.unique(mats[key], return_inverse=True)
            mat = (
                np.bincount(z_level * jv_int.size + jidx.ravel(), minlength=n_levels * jv_int.size)
                .reshape(1, n_levels, jv_int.size)
                .astype(np.float64)
            )
            feats = zone_features(mat, lv, jv_int.astype(np.float64), n_voxels)
            for k, name in names.items():
                out[f"{prefix}_{name}_3d"] = float(feats[k][0])

        if "ngtdm" in families:
            for name, value in ngtdm_features(mats["ngtdm_s"], mats["ngtdm_n"], lv).items():
                out[f"ngt_{name}_3d"] = value

        if "ngldm" in families:  # dependence count j = 1 + number of equal neighbours
            feats = zone_features(
                mats["ngldm"][None].astype(np.float64),
                lv,
                np.arange(1, 28, dtype=np.float64),
                n_voxels,
            )
            for key, name in _NGLDM_NAMES.items():
                out[f"ngl_{name}_3d"] = float(feats[key][0])
    return out
