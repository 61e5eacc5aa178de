"""Moran's I and Geary's C above the exact limit (IBSI-1 3.1.26-27 allow approximating them on
large ROIs): the pairs within one voxel (Chebyshev distance) summed exactly, a shell of pairs
within a few voxels importance-sampled by offset, the far pairs from uniformly drawn partners,
each stratum estimating only the residual of a polynomial fit of the weight whose sums over all
pairs are exact from moments of the voxels' positions.
"""

from __future__ import annotations

import math
import threading
from functools import lru_cache

import numba
import numpy as np

__all__ = ["approximate_autocorrelation", "pair_sums"]


# the approximation's strata of voxel pairs, by Chebyshev distance in voxels: up to _NEAR
# summed exactly; _NEAR < . <= _SHELL sampled by offset (_SHELL_DRAWS offsets per voxel, 1 above
# _SHELL_TOTAL / 2 voxels, times the spacing's anisotropy up to _SHELL_DRAWS_MAX: the shell then
# holds closer pairs); the rest by uniform partners, about _FAR_TOTAL in all, _FAR_DRAWS to
# _FAR_DRAWS_MAX per voxel
_NEAR = 1
_SHELL = 4
_SHELL_DRAWS = 2
_SHELL_DRAWS_MAX = 8
_SHELL_TOTAL = 200_000
_FAR_DRAWS = 2
_FAR_DRAWS_MAX = 64
_FAR_TOTAL = 400_000
_SEED = 0x9E3779B97F4A7C15


@numba.njit(cache=True, nogil=True)
def _points(values, mask, pad):  # pragma: no cover - compiled
    """The ROI's voxels in raster order: ``index`` (the mask's grid padded by ``pad``,
    -1 outside the ROI, else the voxel's number), ``pts`` rows ``(z, y, x, d)`` in float32,
    ``d`` (deviation from the ROI mean) in float64 and ``pos``, each voxel's position in the
    flattened ``index``."""
    nz, ny, nx = mask.shape
    n = 0
    total = 0.0
    for z in range(nz):
        for y in range(ny):
            for x in range(nx):
                if mask[z, y, x]:
                    n += 1
                    total += values[z, y, x]
    mean = total / n
    index = np.full((nz + 2 * pad, ny + 2 * pad, nx + 2 * pad), -1, np.int32)
    pts = np.empty((n, 4), np.float32)
    d = np.empty(n)
    pos = np.empty(n, np.int64)
    sy, sx = ny + 2 * pad, nx + 2 * pad
    i = 0
    for z in range(nz):
        for y in range(ny):
            for x in range(nx):
                if mask[z, y, x]:
                    index[z + pad, y + pad, x + pad] = i
                    d[i] = values[z, y, x] - mean
                    pts[i, 0] = z
                    pts[i, 1] = y
                    pts[i, 2] = x
                    pts[i, 3] = d[i]
                    pos[i] = ((z + pad) * sy + y + pad) * sx + x + pad
                    i += 1
    return index, pts, d, pos


@numba.njit(cache=True, nogil=True)
def _near_sums(index, pos, d, spacing, inv_scale2):  # pragma: no cover - compiled
    """Exact sums over the unordered pairs within Chebyshev distance ``_NEAR`` (a lookup in
    ``index`` over the forward offsets, all offsets in one sweep over the voxels: the
    voxel's neighbourhood stays in cache; each offset's sums still run over the voxels in
    order): rows ``f = 1, d_i d_j, (d_i - d_j)^2``, columns ``w f, f, s f, s^2 f`` with ``w``
    the inverse distance (mm) and ``s`` the squared distance times ``inv_scale2``."""
    r = _NEAR
    sy, sx = index.shape[1], index.shape[2]
    flat = index.ravel()
    n = d.size
    steps = np.empty((2 * r + 1) ** 3 // 2, np.int64)
    r2s = np.empty(steps.size)
    k = 0
    for oz in range(0, r + 1):
        for oy in range(-r, r + 1):
            for ox in range(-r, r + 1):
                if oz == 0 and (oy < 0 or (oy == 0 and ox <= 0)):
                    continue  # forward offsets only: each pair once
                r2s[k] = (oz * spacing[0]) ** 2 + (oy * spacing[1]) ** 2 + (ox * spacing[2]) ** 2
                steps[k] = (oz * sy + oy) * sx + ox
                k += 1
    count = np.zeros(steps.size, np.int64)
    prod = np.zeros(steps.size)
    sq = np.zeros(steps.size)
    for i in range(n):
        at = pos[i]
        di = d[i]
        for k in range(steps.size):
            # unsigned indices (no negative-index wrap code)
            j = flat[np.uint64(at + steps[k])]
            if j >= 0:
                dj = d[np.uint64(j)]
                count[k] += 1
                prod[k] += di * dj
                sq[k] += (di - dj) ** 2
    out = np.zeros((3, 4))
    for k in range(steps.size):
        w = 1.0 / math.sqrt(r2s[k])
        s = r2s[k] * inv_scale2
        for f, total in ((0, float(count[k])), (1, prod[k]), (2, sq[k])):
            out[f, 0] += w * total
            out[f, 1] += total
            out[f, 2] += s * total
            out[f, 3] += s * s * total
    return out


@numba.njit(cache=True, nogil=True)
def _shell_samples(index, pos, d, steps, values, draws, seed):  # pragma: no cover
    """Sums of ``values[k] f`` (``f = 1, d_p d_q, (d_p - d_q)^2``) over ordered pairs
    ``(p, q = p + steps[k])`` (flat steps into ``index``): every voxel ``p`` with ``draws``
    entries ``k`` of the table, a random start then evenly spaced through it, so each entry
    is drawn with probability ``draws / len(steps)``."""
    flat = index.ravel()
    n_off = steps.size
    stride = n_off // draws
    state = np.uint64(seed)
    a0 = a1 = a2 = 0.0
    for p in range(d.size):
        state ^= state >> np.uint64(12)
        state ^= state << np.uint64(25)
        state ^= state >> np.uint64(27)
        u = state * np.uint64(0x2545F4914F6CDD1D)
        k = np.int64(((u >> np.uint64(32)) * np.uint64(n_off)) >> np.uint64(32))
        dp = d[p]
        at = pos[p]
        for _ in range(draws):
            q = flat[np.uint64(at + steps[k])]  # unsigned: no negative-index wrap code
            if q >= 0:
                e = values[k]
                dq = d[np.uint64(q)]
                a0 += e
                a1 += e * dp * dq
                a2 += e * (dp - dq) ** 2
            k += stride
            if k >= n_off:
                k -= n_off
    return np.array([a0, a1, a2])


def _weight_table(shape: tuple[int, ...], spacing: np.ndarray) -> np.ndarray:
    """With isotropic voxels, the inverse distance (mm) by integer squared distance (voxels)
    within a box of ``shape`` (0 at 0); else a placeholder."""
    if not spacing[0] == spacing[1] == spacing[2]:
        return np.zeros(1)
    top = sum((k - 1) ** 2 for k in shape)
    h = float(spacing[0])
    with _lock:
        table = _weight_tables.get(h)
        if table is None or table.size <= top:
            # elementwise: a prefix of a longer table holds the same values; a quarter to spare
            size = top + top // 4 + 1
            table = np.zeros(size)
            table[1:] = 1.0 / (h * np.sqrt(np.arange(1, size, dtype=np.float64)))
            _weight_tables[h] = table
            while len(_weight_tables) > 4:
                del _weight_tables[next(iter(_weight_tables))]
    return table[: top + 1]


# the weight tables by voxel size (the 4 latest), grown as larger boxes come; callers may run
# lesions in threads
_weight_tables: dict[float, np.ndarray] = {}
_lock = threading.Lock()


@numba.njit(cache=True, nogil=True)
def _pair(pts, p, q, spacing, table, iso):  # pragma: no cover - compiled
    """Chebyshev distance (voxels), inverse distance and squared distance (mm) of voxels
    ``p`` and ``q``."""
    dz = pts[p, 0] - pts[q, 0]
    dy = pts[p, 1] - pts[q, 1]
    dx = pts[p, 2] - pts[q, 2]
    cheb = max(abs(dz), max(abs(dy), abs(dx)))
    if iso:
        k2 = int(dz * dz + dy * dy + dx * dx)
        return cheb, table[k2], k2 * spacing[0] ** 2
    r2 = (dz * spacing[0]) ** 2 + (dy * spacing[1]) ** 2 + (dx * spacing[2]) ** 2
    return cheb, (1.0 / math.sqrt(r2) if r2 > 0 else 0.0), r2


@numba.njit(cache=True, nogil=True)
def _pilot_fit(pts, spacing, table, step, seed, inv_scale2):  # pragma: no cover - compiled
    """Normal equations of the least-squares fit of ``w`` by ``(1, s, s^2)`` over pairs
    beyond ``_NEAR``: every ``step``-th voxel with one uniform partner. Returns the Gram
    matrix and the right-hand side."""
    n = pts.shape[0]
    iso = spacing[0] == spacing[1] == spacing[2]
    state = np.uint64(seed)
    m = np.zeros(5)
    b = np.zeros(3)
    for p in range(0, n, step):
        state ^= state >> np.uint64(12)
        state ^= state << np.uint64(25)
        state ^= state >> np.uint64(27)
        u = state * np.uint64(0x2545F4914F6CDD1D)
        q = np.int64(((u >> np.uint64(32)) * np.uint64(n - 1)) >> np.uint64(32))
        if q >= p:
            q += 1
        cheb, w, r2 = _pair(pts, p, q, spacing, table, iso)
        if cheb <= _NEAR:
            continue
        s = r2 * inv_scale2
        m[0] += 1.0
        m[1] += s
        m[2] += s * s
        m[3] += s * s * s
        m[4] += s * s * s * s
        b[0] += w
        b[1] += w * s
        b[2] += w * s * s
    gram = np.empty((3, 3))
    for i in range(3):
        for j in range(3):
            gram[i, j] = m[i + j]
    return gram, b


@numba.njit(cache=True, nogil=True)
def _far_residual(pts, p, q, spacing, table, iso, inv_scale2, coef):  # pragma: no cover
    """``w - P(s)`` of the pair ``(p, q)``, 0 within Chebyshev distance ``_SHELL``."""
    cheb, w, r2 = _pair(pts, p, q, spacing, table, iso)
    if cheb <= _SHELL:
        return 0.0  # near or shell pair: its own stratum
    s = r2 * inv_scale2
    return w - (coef[0] + s * (coef[1] + s * coef[2]))


@numba.njit(cache=True, nogil=True)
def _residual_table(table, spacing, inv_scale2, coef):  # pragma: no cover - compiled
    """With isotropic voxels, ``w - P(s)`` by integer squared distance (voxels), the very
    expression ``_far_residual`` evaluates per pair (the same bits)."""
    out = np.empty(table.size)
    for k in range(table.size):
        s = k * spacing[0] ** 2 * inv_scale2
        out[k] = table[k] - (coef[0] + s * (coef[1] + s * coef[2]))
    return out


@numba.njit(cache=True, nogil=True)
def _far_samples(pts, spacing, table, draws, seed, inv_scale2, coef):  # pragma: no cover
    """Sums of ``(w - P(s)) f`` (``f = 1, d_p d_q, (d_p - d_q)^2``, ``P`` the polynomial
    ``coef`` in ``s``) over ordered pairs ``(p, q)`` beyond Chebyshev distance ``_SHELL``:
    every voxel ``p`` with ``draws`` (even) partners ``q`` drawn uniformly among the others,
    two per step of xorshift64* (fixed ``seed``; the high and low 32 bits by multiply-shift,
    no division). ``pts`` rows are ``(z, y, x, d)`` in float32. With isotropic voxels the
    residual is read from ``_residual_table`` by the pair's squared distance (Chebyshev
    distance only looked at below ``3 _SHELL^2``): 35-40 % less time, the same sums."""
    n = pts.shape[0]
    iso = spacing[0] == spacing[1] == spacing[2]
    residual = _residual_table(table, spacing, inv_scale2, coef) if iso else np.zeros(1)
    near2 = 3 * _SHELL * _SHELL
    state = np.uint64(seed)
    low = np.uint64(0xFFFFFFFF)
    m = np.uint64(n - 1)
    a0 = a1 = a2 = 0.0  # scalar accumulators: kept in registers
    for _ in range(draws // 2):
        for p in range(n):
            state ^= state >> np.uint64(12)
            state ^= state << np.uint64(25)
            state ^= state >> np.uint64(27)
            u = state * np.uint64(0x2545F4914F6CDD1D)
            dp = pts[p, 3]
            for q in (
                np.int64(((u >> np.uint64(32)) * m) >> np.uint64(32)),
                np.int64(((u & low) * m) >> np.uint64(32)),
            ):
                if q >= p:
                    q += 1  # a uniform partner among the other voxels
                if iso:
                    dz = pts[p, 0] - pts[q, 0]
                    dy = pts[p, 1] - pts[q, 1]
                    dx = pts[p, 2] - pts[q, 2]
                    k2 = np.uint64(dz * dz + dy * dy + dx * dx)
                    e = residual[k2]
                    if k2 <= near2 and max(abs(dz), max(abs(dy), abs(dx))) <= _SHELL:
                        e = 0.0  # near or shell pair: its own stratum
                else:
                    e = _far_residual(pts, p, q, spacing, table, iso, inv_scale2, coef)
                a0 += e
                a1 += e * (dp * pts[q, 3])
                a2 += e * (dp - pts[q, 3]) ** 2
    return np.array([a0, a1, a2])


@numba.njit(cache=True, nogil=True)
def _moments(pts, d, spacing, centre, scale):  # pragma: no cover - compiled
    """Moments ``sum f g(u)`` for ``f = 1, d, d^2`` (rows) and ``g = 1, u_k, A, u_k u_l
    (k <= l), A u_k, A^2`` (15 columns), ``u`` the voxel's position in mm less ``centre``,
    divided by ``scale``, and ``A = |u|^2``. Summed along each x-line of the raster first
    (powers of ``u_2`` up to 4), then spread over the columns with the line's ``u_0, u_1``."""
    out = np.zeros((3, 15))
    r = np.zeros((3, 5))
    n = d.size
    i = 0
    while i < n:
        z = pts[i, 0]
        y = pts[i, 1]
        # scalar line sums (registers): f^e v^k for e = 0, 1, 2 and k = 0..4
        c0 = c1 = c2 = c3 = c4 = e0 = e1 = e2 = e3 = e4 = g0 = g1 = g2 = g3 = g4 = 0.0
        while i < n and pts[i, 0] == z and pts[i, 1] == y:
            v = (pts[i, 2] * spacing[2] - centre[2]) / scale
            v2 = v * v
            f1 = d[i]
            f2 = f1 * f1
            c0 += 1.0
            c1 += v
            c2 += v2
            c3 += v2 * v
            c4 += v2 * v2
            e0 += f1
            e1 += f1 * v
            e2 += f1 * v2
            e3 += f1 * v2 * v
            e4 += f1 * v2 * v2
            g0 += f2
            g1 += f2 * v
            g2 += f2 * v2
            g3 += f2 * v2 * v
            g4 += f2 * v2 * v2
            i += 1
        r[0, 0], r[0, 1], r[0, 2], r[0, 3], r[0, 4] = c0, c1, c2, c3, c4
        r[1, 0], r[1, 1], r[1, 2], r[1, 3], r[1, 4] = e0, e1, e2, e3, e4
        r[2, 0], r[2, 1], r[2, 2], r[2, 3], r[2, 4] = g0, g1, g2, g3, g4
        a = (z * spacing[0] - centre[0]) / scale
        b = (y * spacing[1] - centre[1]) / scale
        c = a * a + b * b
        for f in range(3):
            r0, r1, r2, r3, r4 = r[f, 0], r[f, 1], r[f, 2], r[f, 3], r[f, 4]
            out[f, 0] += r0
            out[f, 1] += a * r0
            out[f, 2] += b * r0
            out[f, 3] += r1
            out[f, 4] += c * r0 + r2
            out[f, 5] += a * a * r0
            out[f, 6] += a * b * r0
            out[f, 7] += a * r1
            out[f, 8] += b * b * r0
            out[f, 9] += b * r1
            out[f, 10] += r2
            out[f, 11] += a * (c * r0 + r2)
            out[f, 12] += b * (c * r0 + r2)
            out[f, 13] += c * r1 + r3
            out[f, 14] += c * c * r0 + 2.0 * c * r2 + r4
    return out


def _bilinear(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``sum_ij a_i b_j s_ij^k`` for ``k = 0, 1, 2`` over all ordered pairs (``i = j``
    included) from the moment rows ``a``, ``b`` of ``_moments``: ``s = |u_i - u_j|^2 =
    A_i + A_j - 2 u_i . u_j``, expanded."""
    u = slice(1, 4)
    aa = slice(11, 14)
    t0 = a[0] * b[0]
    t1 = a[0] * b[4] + a[4] * b[0] - 2.0 * float(np.dot(a[u], b[u]))
    # sum_kl (sum a u_k u_l)(sum b u_k u_l): the off-diagonal products twice
    quad = a[5:11] * b[5:11]
    uu = quad[0] + quad[3] + quad[5] + 2.0 * (quad[1] + quad[2] + quad[4])
    t2 = (
        a[14] * b[0]
        + a[0] * b[14]
        + 2.0 * a[4] * b[4]
        + 4.0 * uu
        - 4.0 * float(np.dot(a[aa], b[u]))
        - 4.0 * float(np.dot(a[u], b[aa]))
    )
    return np.array([t0, t1, t2])


def _solve(gram: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """The polynomial's coefficients from its normal equations (scaled to unit diagonal);
    with fewer terms when they are (nearly) singular, e.g. every pilot pair at one distance,
    where the constant alone fits ``w`` exactly; 0 without pilot pairs."""
    coef = np.zeros(3)
    if gram[0, 0] <= 0:
        return coef
    for k in (3, 2, 1):
        scale = np.sqrt(np.diag(gram[:k, :k]))
        if k > 1 and (
            scale.min() <= 0 or np.linalg.det(gram[:k, :k] / np.outer(scale, scale)) < 1e-12
        ):
            continue
        coef[:k] = np.linalg.solve(gram[:k, :k] / np.outer(scale, scale), rhs[:k] / scale) / scale
        return coef
    return coef


def _stream(seed: int, k: int) -> int:
    """The ``k``-th generator state derived from ``seed`` (never 0: xorshift's fixed point)."""
    return (seed + k * 0x632BE59BD9B4E019) % (1 << 64) or 1


@lru_cache(maxsize=32)
def _shell_offsets(
    spacing: tuple[float, ...], shape: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """The ordered offsets of Chebyshev distance ``_NEAR + 1 .. _SHELL`` voxels: flat steps in
    an index grid of ``shape`` and squared distances (mm). Cached: a scan's lesions share
    the spacing."""
    r = np.arange(-_SHELL, _SHELL + 1)
    oz, oy, ox = (a.ravel() for a in np.meshgrid(r, r, r, indexing="ij"))
    keep = np.maximum(np.maximum(abs(oz), abs(oy)), abs(ox)) > _NEAR
    oz, oy, ox = oz[keep], oy[keep], ox[keep]
    r2 = (oz * spacing[0]) ** 2 + (oy * spacing[1]) ** 2 + (ox * spacing[2]) ** 2
    steps = ((oz * shape[1] + oy) * shape[2] + ox).astype(np.int64)
    steps.setflags(write=False)
    r2.setflags(write=False)
    return steps, r2


def _shell_table(
    spacing: np.ndarray, shape: tuple[int, ...], inv_scale2: float, coef: np.ndarray, draws: int
) -> tuple[np.ndarray, np.ndarray]:
    """The shell's offsets (``_shell_offsets``) as a table for ``_shell_samples``: each
    offset repeated in proportion to its ``|w - P(s)|`` (at least once; about 4,096 entries),
    with its flat step and the value ``(w - P(s)) / E`` per entry, ``E = draws * copies /
    len(table)`` the expected number of its draws per voxel (importance sampling: every draw
    weighs about the same)."""
    steps, r2 = _shell_offsets(tuple(float(h) for h in spacing), tuple(shape))
    sv = r2 * inv_scale2
    residual = 1.0 / np.sqrt(r2) - (coef[0] + sv * (coef[1] + sv * coef[2]))
    size = abs(residual)
    copies = np.maximum(1, np.rint(size / size.sum() * 4096)).astype(np.int64)
    length = int(copies.sum())
    draws = min(draws, length)
    expected = draws * copies / length
    return np.repeat(steps, copies), np.repeat(residual / expected, copies)


def pair_sums(
    values: np.ndarray,
    mask: np.ndarray,
    spacing: np.ndarray,
    far_draws: int | None = None,
    seed: int = _SEED,
    shell_draws: int | None = None,
) -> tuple[float, float, float, float]:
    """Sums over unordered pairs of ROI voxels of ``w``, ``w d_i d_j`` and
    ``w (d_i - d_j)^2`` with ``w = 1 / |r_i - r_j|`` (mm) and ``d`` the deviation from the
    ROI mean, and ``sum d^2``.

    Pairs are split by Chebyshev distance (voxels): within ``_NEAR`` summed exactly; within
    ``_SHELL`` estimated from ``shell_draws`` offsets per voxel (importance-sampled by
    ``|w - P(s)|``); beyond from ``far_draws`` uniform partners per voxel (``None``: the
    module's defaults). Every voxel is the first of its draws (stratified), and the
    draws estimate only the residual ``w - P(s)`` of a fit of the weight by a polynomial
    ``P`` in ``s``, the squared distance: the sums of ``f s^k`` (k <= 2) over all pairs are
    exact from moments of the voxels' positions (``s_ij = A_i + A_j - 2 u_i . u_j``), less
    the near pairs. Fixed seed: the same ROI always gives the same sums.
    """
    spacing = np.asarray(spacing, np.float64)
    index, pts, d, pos = _points(
        np.ascontiguousarray(values, dtype=np.float64), np.ascontiguousarray(mask), _SHELL
    )
    n = d.size
    ss = float(np.dot(d, d))
    # positions relative to the box's centre, in half its diagonal: |u| <= 1, s <= 4
    extent = (np.array(mask.shape) - 1.0) * spacing
    centre = extent / 2.0
    scale = max(float(np.sqrt((extent**2).sum())) / 2.0, float(spacing.max()))
    inv_scale2 = 1.0 / scale**2
    near = _near_sums(index, pos, d, spacing, inv_scale2)
    n_far = n * (n - 1) / 2.0 - near[0, 1]
    if n_far <= 0 or (far_draws == 0 and shell_draws == 0):
        return float(near[0, 0]), float(near[1, 0]), float(near[2, 0]), ss
    # exact ordered sums of f s^k over the far pairs (rows f = 1, d_i d_j, (d_i - d_j)^2)
    m = _moments(pts, d, spacing, centre, scale)
    exact = (
        np.array(
            [
                _bilinear(m[0], m[0]) - [n, 0.0, 0.0],
                _bilinear(m[1], m[1]) - [ss, 0.0, 0.0],
                2.0 * _bilinear(m[2], m[0]) - 2.0 * _bilinear(m[1], m[1]),
            ]
        )
        - 2.0 * near[:, 1:]
    )
    # the polynomial P(s) fitted to w on a pilot sample (its own stream, about 2,000 pairs)
    table = _weight_table(mask.shape, spacing)
    gram, rhs = _pilot_fit(
        pts, spacing, table, max(1, n // 2048), np.uint64(_stream(seed, 1)), inv_scale2
    )
    coef = _solve(gram, rhs)
    # sum w f = sum P(s) f (exact) + sum (w - P(s)) f (each stratum estimated from its draws,
    # scaled by the inverse of their inclusion probability: unbiased, P being fixed by then)
    total = exact @ coef
    if shell_draws is None:
        ratio = float(spacing.max() / spacing.min())
        base = min(_SHELL_DRAWS, max(1, _SHELL_TOTAL // n))
        shell_draws = min(_SHELL_DRAWS_MAX, math.ceil(base * ratio - 1e-9))
    if shell_draws > 0:
        steps, values = _shell_table(spacing, index.shape, inv_scale2, coef, int(shell_draws))
        total += _shell_samples(
            index,
            pos,
            d,
            steps,
            values,
            min(int(shell_draws), steps.size),
            np.uint64(_stream(seed, 2)),
        )
    if far_draws is None:
        far_draws = min(max(_FAR_DRAWS, _FAR_TOTAL // n), _FAR_DRAWS_MAX)
    far_draws = 2 * ((int(far_draws) + 1) // 2)  # drawn two at a time
    if far_draws > 0:
        sums = _far_samples(
            pts, spacing, table, far_draws, np.uint64(_stream(seed, 3)), inv_scale2, coef
        )
        total += sums * ((n - 1) / far_draws)
    w_sum, cross, sq = near[:, 0] + 0.5 * total  # unordered: half the ordered sums
    return float(w_sum), float(cross), float(sq), ss


def approximate_autocorrelation(
    values: np.ndarray, mask: np.ndarray, spacing: np.ndarray
) -> tuple[float, float]:
    """Moran's I and Geary's C from the pair sums of ``pair_sums``: exact for the pairs of
    neighbouring voxels (where the weights are largest), estimated for the others from
    ``_SHELL_DRAWS + _FAR_DRAWS`` drawn pairs per voxel with a polynomial control variate
    (fixed seed: the same ROI gives the same value); the ROI's mean and variance are exact. The IBSI-1 manual (3.1.26) allows approximating these
    O(N^2) features on large ROIs; MIRP averages exact values on random subsets of 100
    voxels instead."""
    n = int(np.count_nonzero(mask))
    if n < 2:
        return math.nan, math.nan
    w_sum, cross, sq, ss = pair_sums(values, mask, spacing)
    if ss <= 0 or w_sum <= 0:
        return math.nan, math.nan
    # unordered pair sums: the ordered sums of IBSI 3.1.26-27 are twice these
    return n / w_sum * cross / ss, (n - 1) * sq / (2.0 * w_sum * ss)
