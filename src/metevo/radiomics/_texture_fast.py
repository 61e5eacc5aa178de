"""Texture features in one compiled pass per family, written into one float64 vector.

The same IBSI definitions as the NumPy formulas of ``_texture`` (which stay the readable
reference, and which the tests compare this path with to 1e-10), evaluated by numba on the
matrices of :func:`~metevo.radiomics._texture.texture_matrices`: no temporary (D, G, G)
arrays, no per-feature dict. The vector holds the features in the order of
:func:`texture_names` (the catalogue's order).

Grey levels are integers (the discretised levels), so the GLCM's difference and sum
histograms are dense arrays indexed by ``|i - j|`` and ``i + j - 2 min``.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numba
import numpy as np

from metevo.radiomics import _border, _texture_passes
from metevo.radiomics._border import _city_block
from metevo.radiomics._numba_cache import sources_fingerprint
from metevo.radiomics._texture import (
    _ALL,
    _GLCM_KEYS,
    _GLDZM_NAMES,
    _GLRLM_NAMES,
    _GLSZM_NAMES,
    _NGLDM_NAMES,
    _NGTDM_KEYS,
    check_run_length,
)
from metevo.radiomics._texture_passes import (
    _LOWBIT,
    OFFSETS,
    _plane_pass,
    _zone_labels,
    _zone_reps,
)

__all__ = ["texture_names", "texture_values", "texture_vector"]

_N_GLCM = 25
_N_ZONE = 17  # the generic features of a (grey level) x (size | length | ...) matrix
_N_NGTDM = 5


@lru_cache(maxsize=64)
def texture_names(families: tuple[str, ...] = _ALL) -> tuple[str, ...]:
    """Column names of :func:`texture_vector` for ``families``, in catalogue order."""
    out: list[str] = []
    if "glcm" in families:
        for agg in ("avg", "comb"):
            out += [f"cm_{k}_3d_{agg}" for k in _GLCM_KEYS]
    if "glrlm" in families:
        for agg in ("avg", "comb"):
            out += [f"rlm_{n}_3d_{agg}" for n in _GLRLM_NAMES.values()]
    if "glszm" in families:
        out += [f"szm_{n}_3d" for n in _GLSZM_NAMES.values()]
    if "gldzm" in families:
        out += [f"dzm_{n}_3d" for n in _GLDZM_NAMES.values()]
    if "ngtdm" in families:
        out += [f"ngt_{k}_3d" for k in _NGTDM_KEYS]
    if "ngldm" in families:
        out += [f"ngl_{n}_3d" for n in _NGLDM_NAMES.values()]
    return tuple(out)


_JIT = {"cache": True, "nogil": True, "error_model": "numpy"}


@numba.njit(**_JIT)
def _xlog2x(p):  # pragma: no cover - compiled
    return p * math.log2(p) if p > 0 else 0.0


@numba.njit(**_JIT)
def _glcm_one(c, lv, n_g, pd, ps, scratch, out):  # pragma: no cover - compiled
    """The 25 GLCM features (``_GLCM_KEYS`` order) of the symmetric counts ``c`` (G, G) into
    ``out``; ``pd`` / ``ps`` are scratch arrays for the difference / sum histograms,
    ``scratch`` (G + 4, G) for the joint and marginal probabilities and their logarithms.
    ``log2(p_i p_j)`` as ``log2 p_i + log2 p_j`` (2G logarithms, not G**2: the same value
    but for the last bit)."""
    g = lv.size
    tot = 0.0
    for a in range(g):
        for b in range(g):
            tot += c[a, b]
    if tot == 0:  # no pair: undefined, with the values the NumPy formulas give
        out[:] = np.nan
        out[3] = out[6] = out[9] = -0.0  # entropies of nothing
        if g == 1:
            out[17] = 0.0  # inverse variance: no difference > 0 to sum over
        return
    lo = lv[0]
    pm = scratch[:g]
    pi = scratch[g]
    pj = scratch[g + 1]
    lpi = scratch[g + 2]
    lpj = scratch[g + 3]
    pi[:] = 0.0
    pj[:] = 0.0
    pd[:] = 0.0
    ps[:] = 0.0
    pmax = 0.0
    hxy = 0.0
    energy = 0.0
    contrast = 0.0
    dissim = 0.0
    inv_diff = 0.0
    inv_diff_norm = 0.0
    inv_diff_mom = 0.0
    inv_diff_mom_norm = 0.0
    auto_corr = 0.0
    for a in range(g):
        for b in range(g):
            p = c[a, b] / tot
            pm[a, b] = p
            if p == 0.0:  # adds +0.0 to every sum below (the sums start at +0.0): skipped
                continue
            pi[a] += p
            pj[b] += p
            if p > pmax:
                pmax = p
            d = abs(lv[a] - lv[b])
            pd[int(d)] += p
            ps[int(lv[a] + lv[b] - 2.0 * lo)] += p
            hxy -= _xlog2x(p)
            energy += p * p
            contrast += d * d * p
            dissim += d * p
            inv_diff += p / (1.0 + d)
            inv_diff_norm += p / (1.0 + d / n_g)
            inv_diff_mom += p / (1.0 + d * d)
            inv_diff_mom_norm += p / (1.0 + d * d / (n_g * n_g))
            auto_corr += lv[a] * lv[b] * p
    mu_i = 0.0
    mu_j = 0.0
    hx = 0.0
    hy = 0.0
    for a in range(g):
        mu_i += pi[a] * lv[a]
        mu_j += pj[a] * lv[a]
        hx -= _xlog2x(pi[a])
        hy -= _xlog2x(pj[a])
        lpi[a] = math.log2(pi[a]) if pi[a] > 0 else 0.0
        lpj[a] = math.log2(pj[a]) if pj[a] > 0 else 0.0
    var_i = 0.0
    var_j = 0.0
    for a in range(g):
        var_i += pi[a] * (lv[a] - mu_i) ** 2
        var_j += pj[a] * (lv[a] - mu_j) ** 2
    joint_var = 0.0
    cov = 0.0
    tend = 0.0
    shade = 0.0
    prom = 0.0
    hxy1 = 0.0
    hxy2 = 0.0
    for a in range(g):
        for b in range(g):
            p = pm[a, b]
            joint_var += (lv[a] - mu_i) ** 2 * p
            cov += (lv[a] - mu_i) * (lv[b] - mu_j) * p
            ij = lv[a] + lv[b] - mu_i - mu_j
            tend += ij**2 * p
            shade += ij**3 * p
            prom += ij**4 * p
            pp = pi[a] * pj[b]
            if pp > 0:
                lg = lpi[a] + lpj[b]
                hxy1 -= p * lg
                hxy2 -= pp * lg
    diff_avg = 0.0
    diff_entr = 0.0
    inv_var = 0.0
    for k in range(pd.size):
        diff_avg += pd[k] * k
        diff_entr -= _xlog2x(pd[k])
        if k > 0:
            inv_var += pd[k] / (k * k)
    diff_var = 0.0
    for k in range(pd.size):
        diff_var += pd[k] * (k - diff_avg) ** 2
    sum_avg = 0.0
    sum_entr = 0.0
    for k in range(ps.size):
        sum_avg += ps[k] * (k + 2.0 * lo)
        sum_entr -= _xlog2x(ps[k])
    sum_var = 0.0
    for k in range(ps.size):
        sum_var += ps[k] * (k + 2.0 * lo - sum_avg) ** 2
    out[0] = pmax
    out[1] = mu_i
    out[2] = joint_var
    out[3] = hxy
    out[4] = diff_avg
    out[5] = diff_var
    out[6] = diff_entr
    out[7] = sum_avg
    out[8] = sum_var
    out[9] = sum_entr
    out[10] = energy
    out[11] = contrast
    out[12] = dissim
    out[13] = inv_diff
    out[14] = inv_diff_norm
    out[15] = inv_diff_mom
    out[16] = inv_diff_mom_norm
    out[17] = inv_var
    out[18] = cov / math.sqrt(var_i * var_j)
    out[19] = auto_corr
    out[20] = tend
    out[21] = shade
    out[22] = prom
    out[23] = (hxy - hxy1) / max(hx, hy)
    v = 1.0 - math.exp(-2.0 * (hxy2 - hxy))
    out[24] = math.sqrt(v if not v < 0 else 0.0)


@numba.njit(**_JIT)
def _glcm_values(glcm, lv, n_g, out):  # pragma: no cover - compiled
    """GLCM features of the 13 direction counts ``glcm`` (13, G, G + 1), not yet symmetric,
    column 0 the pairs with a voxel outside the ROI (not counted here, see ``_plane_pass``): the mean over the directions that hold a pair (``out[:25]``) and the merged matrix's
    (``out[25:50]``)."""
    g = lv.size
    span = int(lv[g - 1] - lv[0]) + 1
    pd = np.empty(span)
    ps = np.empty(2 * span - 1)
    sym = np.zeros((g, g))
    merged = np.zeros((g, g))
    one = np.empty(_N_GLCM)
    avg = np.zeros(_N_GLCM)
    scratch = np.empty((g + 4, g))
    n_valid = 0
    for k in range(13):
        tot = 0
        for a in range(g):
            for b in range(g):
                v = glcm[k, a, b + 1] + glcm[k, b, a + 1]
                sym[a, b] = v
                merged[a, b] += v
                tot += v
        if tot == 0:
            continue
        n_valid += 1
        _glcm_one(sym, lv, n_g, pd, ps, scratch, one)
        avg += one
    for f in range(_N_GLCM):
        out[f] = avg[f] / n_valid if n_valid else np.nan
    _glcm_one(merged, lv, n_g, pd, ps, scratch, out[_N_GLCM:])


@numba.njit(**_JIT)
def _zone_one(c, lv, jv, n_voxels, out):  # pragma: no cover - compiled
    """The 17 generic features (``_ZONE_KEYS`` order) of counts ``c`` (G, J) with row values
    ``lv`` and column values ``jv`` into ``out``."""
    g, nj = c.shape
    ns = 0.0
    for a in range(g):
        for b in range(nj):
            ns += c[a, b]
    if ns == 0:
        out[:] = np.nan
        out[12] = 0.0
        out[15] = 0.0
        return
    short = 0.0
    long_ = 0.0
    low = 0.0
    high = 0.0
    short_low = 0.0
    short_high = 0.0
    long_low = 0.0
    long_high = 0.0
    glnu = 0.0
    mu_i = 0.0
    mu_j = 0.0
    entr = 0.0
    energy = 0.0
    for a in range(g):
        i2 = lv[a] * lv[a]
        row = 0.0
        for b in range(nj):
            x = c[a, b]
            if x == 0:
                continue
            j2 = jv[b] * jv[b]
            row += x
            short += x / j2
            long_ += x * j2
            low += x / i2
            high += x * i2
            short_low += x / (i2 * j2)
            short_high += x * i2 / j2
            long_low += x * j2 / i2
            long_high += x * i2 * j2
            p = x / ns
            mu_i += p * lv[a]
            mu_j += p * jv[b]
            entr -= _xlog2x(p)
            energy += p * p
        glnu += row * row
    jnu = 0.0
    for b in range(nj):
        col = 0.0
        for a in range(g):
            col += c[a, b]
        jnu += col * col
    gl_var = 0.0
    j_var = 0.0
    for a in range(g):
        for b in range(nj):
            if c[a, b] == 0:
                continue
            p = c[a, b] / ns
            gl_var += p * (lv[a] - mu_i) ** 2
            j_var += p * (jv[b] - mu_j) ** 2
    out[0] = short / ns
    out[1] = long_ / ns
    out[2] = low / ns
    out[3] = high / ns
    out[4] = short_low / ns
    out[5] = short_high / ns
    out[6] = long_low / ns
    out[7] = long_high / ns
    out[8] = glnu / ns
    out[9] = glnu / (ns * ns)
    out[10] = jnu / ns
    out[11] = jnu / (ns * ns)
    out[12] = ns / n_voxels
    out[13] = gl_var
    out[14] = j_var
    out[15] = entr
    out[16] = energy


@numba.njit(**_JIT)
def _glrlm_values(rlm, lv, n_voxels, out):  # pragma: no cover - compiled
    """GLRLM features of the run counts ``rlm`` (13, G, L): the mean over the directions
    that hold a run (``out[:16]``) and the merged matrix's (``out[16:32]``)."""
    _, g, nl = rlm.shape
    used = 0
    for k in range(13):
        for a in range(g):
            for b in range(nl - 1, used - 1, -1):
                if rlm[k, a, b] != 0:
                    used = b + 1
                    break
    used = max(used, 1)
    jv = np.arange(1, used + 1).astype(np.float64)
    one = np.empty(_N_ZONE)
    c = np.empty((g, used))
    merged = np.zeros((g, used))
    avg = np.zeros(16)
    n_valid = 0
    for k in range(13):
        tot = 0
        for a in range(g):
            for b in range(used):
                c[a, b] = rlm[k, a, b]
                merged[a, b] += rlm[k, a, b]
                tot += rlm[k, a, b]
        if tot == 0:
            continue
        n_valid += 1
        _zone_one(c, lv, jv, n_voxels, one)
        avg += one[:16]
    for f in range(16):
        out[f] = avg[f] / n_valid if n_valid else np.nan
    _zone_one(merged, lv, jv, 13.0 * n_voxels, one)
    out[16:32] = one[:16]


@numba.njit(**_JIT)
def _distinct(keys):  # pragma: no cover - compiled
    """The distinct values of the non-negative integers ``keys``, ascending (float), and the
    position of each value among them (-1: absent), indexed by value."""
    top = 0
    for v in keys:
        top = max(top, v)
    index = np.full(top + 1, -1, np.int64)
    for v in keys:
        index[v] = 0
    n = 0
    for v in range(top + 1):
        if index[v] == 0:
            index[v] = n
            n += 1
    distinct = np.empty(n)
    for v in range(top + 1):
        if index[v] >= 0:
            distinct[index[v]] = v
    return index, distinct


@numba.njit(**_JIT)
def _zone_values(level, key, g, lv, n_voxels, out):  # pragma: no cover - compiled
    """GLSZM / GLDZM features (16) of the zones' rows ``level`` and sizes or distances
    ``key``: the matrix over the distinct keys, built here."""
    column, jv = _distinct(key)
    nj = jv.size
    c = np.zeros((g, nj))
    for z in range(key.size):
        c[level[z], column[key[z]]] += 1.0
    one = np.empty(_N_ZONE)
    _zone_one(c, lv, jv, n_voxels, one)
    out[:16] = one[:16]


@numba.njit(**_JIT)
def _ngtdm_values(s, n, lv, out):  # pragma: no cover - compiled
    """NGTDM coarseness, contrast, busyness, complexity, strength from ``s_i`` and ``n_i``."""
    nvc = 0.0
    for a in range(n.size):
        nvc += n[a]
    if nvc == 0:
        out[:5] = np.nan
        return
    keep = np.flatnonzero(n > 0)
    m = keep.size
    p = np.empty(m)
    sk = np.empty(m)
    lk = np.empty(m)
    sum_ps = 0.0
    s_sum = 0.0
    for a in range(m):
        p[a] = n[keep[a]] / nvc
        sk[a] = s[keep[a]]
        lk[a] = lv[keep[a]]
        sum_ps += p[a] * sk[a]
        s_sum += sk[a]
    pp_dl2 = 0.0
    busy_den = 0.0
    complexity = 0.0
    strength = 0.0
    for a in range(m):
        for b in range(m):
            dl = lk[a] - lk[b]
            pp_dl2 += p[a] * p[b] * dl * dl
            busy_den += abs(lk[a] * p[a] - lk[b] * p[b])
            complexity += abs(dl) * (p[a] * sk[a] + p[b] * sk[b]) / (p[a] + p[b])
            strength += (p[a] + p[b]) * dl * dl
    out[0] = 1.0 / sum_ps if sum_ps > 0 else np.nan
    out[1] = pp_dl2 / (m * (m - 1)) * (s_sum / nvc) if m > 1 else 0.0
    out[2] = sum_ps / busy_den if busy_den > 0 else 0.0
    out[3] = complexity / nvc
    out[4] = strength / s_sum if s_sum > 0 else 0.0


@numba.njit(**_JIT)
def _ngldm_values(ngldm, lv, n_voxels, out):  # pragma: no cover - compiled
    """NGLDM features (17) of the dependence counts ``ngldm`` (G, 27)."""
    jv = np.arange(1, 28).astype(np.float64)
    _zone_one(ngldm.astype(np.float64), lv, jv, n_voxels, out)


_SIZES = {"glcm": 50, "glrlm": 32, "glszm": 16, "gldzm": 16, "ngtdm": 5, "ngldm": 17}


@numba.njit(**_JIT)
def _padded_grid(values, roi):  # pragma: no cover - compiled
    """As :func:`~metevo.radiomics._texture.texture_matrices`: the grey levels present
    (float, ascending), the flattened grid padded by one voxel of -1 holding each ROI voxel's
    row of the compact matrices (int32), the same grid of the levels' values less the lowest
    level plus 1 (int32, 0 outside, >= 1 inside), the flat indices of the ROI's voxels
    (raster order) and the flat steps of the 26 ``OFFSETS``; ``values`` are the ROI's
    levels (>= 0) in raster order."""
    lookup, lv = _distinct(values)  # grey level -> row of the compact matrices
    nz, ny, nx = roi.shape
    py, px = ny + 2, nx + 2
    gp = np.full((nz + 2) * py * px, -1, np.int32)
    lp = np.zeros(gp.size, np.int32)
    lo = np.int64(lv[0]) - 1 if lv.size else 0
    vox = np.empty(values.size + 1, np.int64)
    i = 0
    for z in range(nz):  # no branch: every voxel written, the next slot taken when in the ROI
        for y in range(ny):
            base = ((z + 1) * py + y + 1) * px + 1
            row = roi[z, y]
            for x in range(nx):
                vox[np.uint64(i)] = base + x
                i += row[x]
    vox = vox[: values.size]
    for t in range(values.size):
        at = np.uint64(vox[t])
        gp[at] = lookup[np.uint64(values[t])]
        lp[at] = values[t] - lo
    step = np.empty(26, np.int64)
    for k in range(26):
        step[k] = OFFSETS[k, 0] * py * px + OFFSETS[k, 1] * px + OFFSETS[k, 2]
    return lv, gp, lp, vox, step


def _make_texture_kernel(fingerprint: int):  # a numba dispatcher
    """``_texture_kernel``, cached under the ``fingerprint`` of the modules it calls
    (``_numba_cache``)."""

    @numba.njit(**_JIT)
    def _texture_kernel(values, roi, want, lowbit, reps, out):  # pragma: no cover
        """``texture_vector`` in one compiled call: the padded grid, the passes the families
        ``want`` (flags in ``_ALL`` order) need, and their features into ``out``."""
        lv, gp, lp, vox, step = _padded_grid(values, roi)
        g = lv.size
        n_voxels = float(vox.size)
        max_len = max(roi.shape[0], roi.shape[1], roi.shape[2]) if want[0] or want[1] else 0
        zones = want[2] or want[3]
        px = roi.shape[2] + 2
        glcm, ngldm, s, n, rlm, parent = _plane_pass(
            gp,
            lp,
            vox,
            g,
            lv,
            step,
            px,
            (roi.shape[1] + 2) * px,
            max_len,
            want[4] or want[5],
            zones,
            lowbit,
            reps,
        )
        if zones:
            # distance to the ROI border in 6-connectivity, border voxels at 1 (IBSI 3.9)
            dp = _city_block(roi).ravel() if want[3] else np.ones(1, np.int32)
            zone_level, zone_size, zone_distance = _zone_labels(parent, gp, dp, vox)
        else:
            zone_level = zone_size = zone_distance = np.zeros(0, np.int64)
        at = 0
        if want[0]:
            _glcm_values(glcm, lv, lv[g - 1], out[at : at + 50])
            at += 50
        if want[1]:
            _glrlm_values(rlm, lv, n_voxels, out[at : at + 32])
            at += 32
        if want[2]:
            _zone_values(zone_level, zone_size, g, lv, n_voxels, out[at : at + 16])
            at += 16
        if want[3]:
            _zone_values(zone_level, zone_distance, g, lv, n_voxels, out[at : at + 16])
            at += 16
        if want[4]:
            _ngtdm_values(s, n, lv, out[at : at + 5])
            at += 5
        if want[5]:
            _ngldm_values(ngldm, lv, n_voxels, out[at : at + 17])
        if fingerprint == 0:  # never (the fingerprint is odd): it only keys the cache
            out[:] = np.nan

    return _texture_kernel


_texture_kernel = _make_texture_kernel(sources_fingerprint(_texture_passes, _border))


@lru_cache(maxsize=64)
def _wanted(families: tuple[str, ...]) -> tuple[np.ndarray, int]:
    """The families' flags in ``_ALL`` order and the length of their vector."""
    want = np.array([f in families for f in _ALL], np.bool_)
    want.setflags(write=False)
    return want, sum(_SIZES[f] for f in _ALL if f in families)


def texture_values(
    values: np.ndarray, roi: np.ndarray, families: tuple[str, ...] = _ALL
) -> np.ndarray:
    """:func:`texture_vector` from the ROI's grey levels ``values`` (int, >= 1, the voxels of
    ``roi`` in raster order, i.e. ``grey[roi]``)."""
    if "glrlm" in families:
        check_run_length(roi.shape)
    want, size = _wanted(families)
    out = np.empty(size)
    _texture_kernel(
        np.ascontiguousarray(values, dtype=np.int64),
        np.ascontiguousarray(roi, dtype=np.bool_),
        want,
        _LOWBIT,
        _zone_reps(),
        out,
    )
    return out


def texture_vector(
    grey: np.ndarray, roi: np.ndarray, families: tuple[str, ...] = _ALL
) -> np.ndarray:
    """The texture features of ``families`` as one vector (order of :func:`texture_names`).

    Same arguments and values as :func:`~metevo.radiomics._texture.texture_features`.
    """
    return texture_values(grey[roi], roi, families)
