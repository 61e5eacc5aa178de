"""The compiled voxel passes that build the 3D texture matrices (IBSI-1 3.6-3.11).

Two passes over a ROI's cropped grey-level grid (numba, ``cache=True``): one over the 26
neighbours of every voxel (GLCM, NGTDM, NGLDM, and the GLRLM runs in the 13 directions) and
one union-find (GLSZM zones and their distance to the ROI border for the GLDZM); a run pass
for the GLRLM alone. The grid is flattened and padded by one voxel of -1 (outside the ROI),
so neighbours never need a bounds check. These voxel-by-voxel passes build the NumPy
reference's matrices (``_texture.texture_matrices``).

The fused kernel (``_texture_fast``) gets the same counts from ``_plane_pass``: all of them
and the zones' union-find in one visit, plane by plane, the per-neighbour work (counts,
sums, masks of equal neighbours, run lengths) in loops over the plane that vectorise, only
the matrix cells and the union-find voxel by voxel; ``tests/test_radiomics_texture_passes.py``
checks it against the passes above count for count.
"""

from __future__ import annotations

from functools import lru_cache

import numba
import numpy as np

__all__ = ["OFFSETS"]


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


def _flat_offsets(shape: tuple[int, ...]) -> np.ndarray:
    """Flat index steps of the 26 ``OFFSETS`` on a C-ordered grid of ``shape``."""
    strides = np.array([shape[1] * shape[2], shape[2], 1], np.int64)
    return (OFFSETS * strides).sum(axis=1)


@numba.njit(cache=True, nogil=True)
def _ring_mask(step):  # pragma: no cover - compiled
    """``size - 1`` for the smallest power-of-two ring longer than the largest backward step:
    flat index ``v & mask`` addresses a voxel's slot, never overwritten before ``v`` is
    read back from a later voxel."""
    reach = 1
    for k in range(13, 26):
        reach = max(reach, -step[k])
    size = 1
    while size <= reach:
        size *= 2
    return size - 1


@numba.njit(cache=True, nogil=True)
def _neighbour_pass(gp, vox, n_levels, levels, step, max_len):  # pragma: no cover - compiled
    """GLCM (13 forward directions), NGLDM and NGTDM sums in one visit of the ROI's voxels,
    and the GLRLM counts too when ``max_len > 0``: visiting the voxels in raster order, a
    voxel's run length in direction k is one more than that of the voxel behind it when
    they share a level (kept in a ring buffer over the largest backward step), and a run is
    counted at its last voxel, so no run is walked twice.

    ``gp`` is the flattened grey-level grid padded by one voxel of -1 (outside the ROI), so
    neighbours never need a bounds check; ``vox`` the flat indices of the ROI's voxels and
    ``step`` the flat steps of the 26 neighbours (13 forward directions first).
    """
    glcm = np.zeros((13, n_levels, n_levels), np.int64)
    ngldm = np.zeros((n_levels, 27), np.int64)
    rlm = np.zeros((13, n_levels, max(max_len, 1)), np.int32)
    # run lengths of the last voxels in raster order (a ring over the largest backward step)
    mask = _ring_mask(step)
    # run lengths in one byte when no run can reach 256 voxels (half the ring: it stays in
    # L2, ~15 % off this pass at 50k-110k voxels), else in int16 (runs < 32768 voxels)
    small = max_len < 256
    ring8 = np.zeros(13 * (mask + 1) if max_len > 0 and small else 1, np.uint8)
    ring16 = np.zeros(13 * (mask + 1) if max_len > 0 and not small else 1, np.int16)
    s = np.zeros(n_levels)
    n = np.zeros(n_levels, np.int64)
    nb = np.empty(26, np.int32)
    for v in vox:
        gi = gp[v]
        cnt = 0
        tot = 0.0
        eq = 0
        for k in range(26):
            gj = gp[v + step[k]]
            nb[k] = gj
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
        if max_len > 0:
            # run length so far in direction k: one more than the voxel behind's when it has
            # the same level; counted when the run ends (the voxel ahead differs)
            here = (v & mask) * 13
            if small:
                for k in range(13):
                    back = ((v + step[k + 13]) & mask) * 13 + k
                    length = 1 + np.int32(ring8[back]) * np.int32(nb[k + 13] == gi)
                    ring8[here + k] = np.uint8(length)
                    rlm[k, gi, length - 1] += np.int32(nb[k] != gi)  # no branch to mispredict
            else:
                for k in range(13):
                    back = ((v + step[k + 13]) & mask) * 13 + k
                    length = 1 + np.int32(ring16[back]) * np.int32(nb[k + 13] == gi)
                    ring16[here + k] = np.int16(length)
                    rlm[k, gi, length - 1] += np.int32(nb[k] != gi)
    return glcm, ngldm, s, n, rlm


@numba.njit(cache=True, nogil=True)
def _run_pass(gp, vox, n_levels, max_len, step):  # pragma: no cover - compiled
    """GLRLM counts of the 13 directions alone, as in ``_neighbour_pass``: run lengths from
    the voxel behind (ring buffer, raster order), each run counted at its last voxel."""
    rlm = np.zeros((13, n_levels, max_len), np.int32)
    mask = _ring_mask(step)
    small = max_len < 256  # one-byte run lengths, as in ``_neighbour_pass``
    ring8 = np.zeros(13 * (mask + 1) if small else 1, np.uint8)
    ring16 = np.zeros(1 if small else 13 * (mask + 1), np.int16)
    for v in vox:
        gi = gp[v]
        here = (v & mask) * 13
        for k in range(13):
            back = ((v + step[k + 13]) & mask) * 13 + k
            same = np.int32(gp[v + step[k + 13]] == gi)
            if small:
                length = 1 + np.int32(ring8[back]) * same
                ring8[here + k] = np.uint8(length)
            else:
                length = 1 + np.int32(ring16[back]) * same
                ring16[here + k] = np.int16(length)
            rlm[k, gi, length - 1] += np.int32(gp[v + step[k]] != gi)
    return rlm


@numba.njit(cache=True, nogil=True)
def _find(parent, i):  # pragma: no cover - compiled
    while parent[i] != i:
        parent[i] = parent[parent[i]]  # path halving
        i = parent[i]
    return i


def _backward_tables() -> tuple[np.ndarray, int]:
    """For the zone pass: the lowest set bit of every 13-bit mask, and the mask of the
    backward neighbours that are not 26-adjacent to the voxel before in x (``dx = +1``)."""
    masks = np.arange(1 << 13)
    lowbit = np.zeros(1 << 13, np.int64)
    lowbit[1:] = np.log2(masks[1:] & -masks[1:]).astype(np.int64)
    right = sum(1 << (k - 13) for k in range(13, 26) if OFFSETS[k][2] == 1)
    assert tuple(OFFSETS[13]) == (0, 0, -1)  # bit 0: the voxel before in x
    return lowbit, right


_LOWBIT, _RIGHT_BITS = _backward_tables()


@lru_cache(maxsize=1)
def _zone_reps() -> np.ndarray:
    """For every 13-bit mask of backward neighbours, the mask of one neighbour (the first)
    of each group of them connected by 26-adjacency among themselves (built on first use,
    ~10 ms)."""
    back = OFFSETS[13:]
    near = np.abs(back[:, None] - back[None]).max(axis=2) == 1
    adj = (near.astype(np.int64) << np.arange(13)).sum(axis=1)  # neighbours as bit masks
    masks = np.arange(1 << 13)
    bit = 1 << np.arange(13)[:, None]
    reach = np.where(masks[None] & bit, bit, 0)  # (13, 8192): each set bit's group so far
    while True:
        grown = reach.copy()
        for i in range(13):
            grown |= np.where((reach >> i) & 1, adj[i], 0)
        grown &= masks[None]
        if (grown == reach).all():
            break
        reach = grown
    first = reach & -reach  # a group's first neighbour
    reps = np.bitwise_or.reduce(np.where(first == bit, first, 0), axis=0)
    reps.setflags(write=False)
    return reps


def _zone_pass(
    gp: np.ndarray, dp: np.ndarray, vox: np.ndarray, step: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """26-connected zones of equal grey level: level, size and smallest distance ``dp`` (flat,
    aligned with ``gp``; of size 1 when no distance is wanted: all 1) of each zone."""
    return _zones(gp, dp, vox, step, _LOWBIT, _RIGHT_BITS)


@numba.njit(cache=True, nogil=True)
def _zones(gp, dp, vox, step, lowbit, right_bits):  # pragma: no cover - compiled
    """``_zone_pass``: one raster pass of union-find on the flat grid indices, each voxel
    joining the zones of its 13 neighbours met before it (the backward half of the 26), so
    every neighbour pair is looked at once. The equal neighbours are read into a bit mask
    without branching; when the voxel before in x is equal, the neighbours adjacent to it
    are already in its zone and only the 4 others (``dx = +1``) are looked at."""
    parent = np.empty(gp.size, np.int32)
    for v in vox:
        gi = gp[v]
        m = 0
        for k in range(13):
            m |= np.int64(gp[v + step[13 + k]] == gi) << k
        root = v
        parent[v] = v
        if m & 1:
            root = _find(parent, v - 1)
            parent[v] = root
            m &= right_bits
        while m:
            b = _find(parent, v + step[13 + lowbit[m]])
            m &= m - 1
            if b == root:
                continue
            if root == v:  # v alone so far: it joins b's zone
                parent[v] = b
                root = b
            elif root < b:
                parent[b] = root
            else:
                parent[root] = b
                root = b
    # labelling in raster order: a voxel's parent lies before it (unions keep the smaller
    # index as the root), so when ``v`` is reached its parent already holds its zone's code
    # ``-(zone + 1)``; no second find, no voxel-sized zone table
    n_vox = vox.size
    zone_level = np.empty(n_vox, np.int64)
    zone_size = np.zeros(n_vox, np.int64)
    zone_dist = np.ones(n_vox, np.int64)
    with_dist = dp.size == gp.size  # else no distance wanted (all 1)
    n_zones = 0
    for v in vox:
        p = parent[v]
        if p == v:
            z = n_zones
            zone_level[z] = gp[v]
            if with_dist:
                zone_dist[z] = dp[v]
            n_zones += 1
        else:
            z = -parent[p] - 1
        parent[v] = -(z + 1)
        zone_size[z] += 1
        if with_dist and dp[v] < zone_dist[z]:
            zone_dist[z] = dp[v]
    return zone_level[:n_zones], zone_size[:n_zones], zone_dist[:n_zones]


@numba.njit(cache=True, nogil=True)
def _plane_pass(
    gp, lp, vox, n_levels, levels, step, px, ppl, max_len, sums, zones, lowbit, reps
):  # pragma: no cover - compiled
    """The counts of ``_neighbour_pass`` and the zones' union-find of ``_zones`` in one visit
    of the ROI's voxels, plane by plane, the per-neighbour work vectorised along the plane.
    Returns ``(glcm, ngldm, s, n, rlm, parent)``: the GLCM and GLRLM counts when
    ``max_len > 0``, the NGLDM and NGTDM sums when ``sums``, and when ``zones`` the
    union-find forest ``parent`` as ``_zones`` leaves it before its labelling (for
    ``_zone_labels``). ``glcm`` is (13, G, G + 1), its column 0 counting the neighbours
    outside the ROI (no branch to mispredict).

    ``lp`` is the padded grid of the grey levels' values less ``levels[0] - 1`` (int32, 0
    outside, >= 1 inside): a neighbour is inside when its value is > 0 and has the voxel's
    level when the values are equal; the values' sum over the neighbours inside, plus
    ``levels[0] - 1`` per neighbour, is the NGTDM's neighbourhood sum (integers: exact, as the
    float sums of ``_neighbour_pass``). For each plane, one loop per neighbour
    direction over the plane's span (its first ROI voxel to its last; ``_fill``) gives every
    voxel's counts and the bit mask of its backward neighbours with the same level; the
    plane's ROI voxels are then visited in raster order (``_voxel_counts``), as in
    ``_neighbour_pass`` and ``_zones``, for the scattered counts, so every float sum is
    accumulated in the same order. A run (GLRLM) is counted at its last voxel, where the
    voxel ahead differs; its length is one more than the voxel behind's when they share a
    level, kept for two planes (the voxel behind lies in this plane or the one before).
    The union-find joins a voxel with one neighbour of each group of adjacent backward
    neighbours of its level (``reps``, from ``_zone_reps``): two adjacent voxels of one
    level met before are in one zone already.
    """
    g = n_levels
    lo = np.int64(levels[0]) - 1 if g else 0  # ``lp``'s offset
    runs = max_len > 0
    glcm = np.zeros((13, g, g + 1), np.int64)
    ngldm = np.zeros((g, 27), np.int64)
    s = np.zeros(g)
    n = np.zeros(g, np.int64)
    rlm = np.zeros((13, g, max(max_len, 1)), np.int32)
    ring = np.zeros((13, 2 * ppl if runs else 1), np.int16)
    parent = np.empty(gp.size if zones else 1, np.int32)
    cnt = np.empty(ppl, np.int32)
    tot = np.empty(ppl, np.int64)
    eq = np.empty(ppl, np.int32)
    back = np.empty(ppl, np.int32)  # bit k: the voxel behind in direction k has the same level
    n_vox = vox.size
    p = 0
    while p < n_vox:
        b = vox[p]  # a plane: its ROI voxels vox[p:q], its span b .. vox[q - 1]
        z = b // ppl
        q = p + 1
        while q < n_vox and vox[q] < (z + 1) * ppl:
            q += 1
        width = vox[q - 1] + 1 - b
        _fill(lp, b, width, px, ppl, sums, runs or zones, cnt, tot, eq, back)
        here = (z & 1) * ppl + b - z * ppl  # the span's first slot in the two-plane ring
        if runs:
            _run_lengths(ring, back, step, b, width, here, px, ppl)
        _voxel_counts(
            gp, levels, lo, step, px, ppl, vox[p:q], b, here, sums, runs, zones, cnt, tot, eq,
            back, ring, glcm, ngldm, s, n, rlm, parent, lowbit, reps,
        )  # fmt: skip
        p = q
    return glcm, ngldm, s, n, rlm, parent


@numba.njit(cache=True, nogil=True, inline="always")
def _fill(lp, b, width, px, ppl, sums, masks, cnt, tot, eq, back):  # pragma: no cover
    """``_plane_pass``' per-voxel counts of the ``width`` voxels from flat index ``b`` into
    ``cnt``, ``tot``, ``eq`` (when ``sums``) and ``back`` (when ``masks``): one loop over
    the voxels, the 27 voxels of the 3 x 3 x 3 block (the voxel itself taken out after)
    unrolled, their flat steps from ``px`` and ``ppl`` (no memory) and unsigned indices
    (no negative-index wrap), so the loop vectorises. The block's voxel ``j`` (raster
    order) before the voxel (``j < 13``) is backward neighbour ``k = 12 - j`` (``OFFSETS``:
    the forward directions in raster order, the backward ones their opposites)."""
    for x in range(width):
        v = b + x
        centre = lp[np.uint64(v)]
        c = 0
        t = 0
        e = 0
        m = 0
        j = 0
        for dz in range(-1, 2):
            for dy in range(-1, 2):
                for dx in range(-1, 2):
                    q = lp[np.uint64(v + dz * ppl + dy * px + dx)]
                    c += q > 0
                    t += q
                    e += q == centre
                    if j < 13:
                        m |= np.int32(q == centre) << (12 - j)
                    j += 1
        if sums:  # the voxel itself out
            cnt[x] = c - (centre > 0)
            tot[x] = t - centre
            eq[x] = e - 1
        if masks:
            back[x] = m


@numba.njit(cache=True, nogil=True, inline="always")
def _find_u(parent, i):  # pragma: no cover - compiled
    """``_find`` on unsigned indices (no negative-index wrap)."""
    i = np.int64(i)
    while True:
        p = np.int64(parent[np.uint64(i)])
        if p == i:
            return i
        gp = np.int64(parent[np.uint64(p)])
        parent[np.uint64(i)] = gp  # path halving
        i = gp


@numba.njit(cache=True, nogil=True, inline="always")
def _count(gp, ring, glcm, rlm, v, x, here, gi, k, step):  # pragma: no cover - compiled
    """``_voxel_counts``' GLCM pair and GLRLM run (counted at its last voxel: the voxel ahead
    differs) of voxel ``v`` in forward direction ``k`` (flat ``step``); unsigned indices."""
    gj = gp[np.uint64(v + step)]
    glcm[np.uint64(k), np.uint64(gi), np.uint64(gj + 1)] += 1
    length = ring[np.uint64(k), np.uint64(here) + x]
    rlm[np.uint64(k), np.uint64(gi), np.uint64(length - 1)] += np.int32(gj != gi)


@numba.njit(cache=True, nogil=True, inline="always")
def _run_lengths(ring, back, step, b, width, here, px, ppl):  # pragma: no cover - compiled
    """``_plane_pass``' run lengths of the span of ``width`` voxels from flat index ``b``
    in the 13 directions, into the ring's slots from ``here``: one more than the voxel
    behind's when it has the same level (bit k of ``back``), else 1."""
    z = b // ppl
    length = 0  # direction (0, 0, 1): the voxel behind is the one before in x
    mine = ring[0, here : here + width]
    for x in range(width):
        length = 1 + length * (back[x] & 1)
        mine[x] = length
    for k in range(1, 13):
        o = b + step[13 + k]
        zb = o // ppl
        at = (zb & 1) * ppl + o - zb * ppl
        if zb < z:  # behind: the plane before, in the other slot; one loop
            lo, hi = 0, width
        else:  # behind: the row before; row by row, the row's last (padding) voxel left out
            lo, hi = 0, min(width, px - 1 - b % px)
        while lo < width:
            behind = ring[k, at + lo : at + hi]
            mine = ring[k, here + lo : here + hi]
            bits = back[lo:hi]
            for x in range(hi - lo):
                mine[x] = 1 + behind[x] * ((bits[x] >> k) & 1)
            if zb < z:
                break
            lo = hi + 1
            hi = min(width, lo + px - 1)


@numba.njit(cache=True, nogil=True, inline="always")
def _voxel_counts(
    gp, levels, lo, step, px, ppl, vox, b, here, sums, runs, zones, cnt, tot, eq, back, ring,
    glcm, ngldm, s, n, rlm, parent, lowbit, reps,
):  # fmt: skip  # pragma: no cover - compiled
    """``_plane_pass``' scattered counts of one plane's ROI voxels ``vox`` in raster order
    (``x``: a voxel's place in the span from flat index ``b``)."""
    for v in vox:  # unsigned indices: no negative-index wrap
        x = np.uint64(v - b)
        gi = np.int64(gp[np.uint64(v)])
        if sums:
            ngldm[np.uint64(gi), np.uint64(eq[x])] += 1
            if cnt[x] > 0:
                total = tot[x] + cnt[x] * lo  # the neighbours' grey levels
                s[np.uint64(gi)] += abs(levels[np.uint64(gi)] - total / cnt[x])
                n[np.uint64(gi)] += 1
        if runs:  # the 13 forward directions unrolled, as in ``_fill``
            _count(gp, ring, glcm, rlm, v, x, here, gi, 0, 1)
            for dx in range(-1, 2):
                _count(gp, ring, glcm, rlm, v, x, here, gi, 2 + dx, px + dx)
            for dy in range(-1, 2):
                for dx in range(-1, 2):
                    k = 4 + 3 * (dy + 1) + dx + 1
                    _count(gp, ring, glcm, rlm, v, x, here, gi, k, ppl + dy * px + dx)
        if zones:
            # one find per group of adjacent equal neighbours: they share a zone already
            m = np.uint64(reps[np.uint64(back[x])])
            root = np.int64(v)
            parent[np.uint64(v)] = v
            while m:
                c = _find_u(parent, v + step[np.uint64(13 + lowbit[m])])
                m &= m - np.uint64(1)
                if c == root:
                    continue
                if root == v:
                    parent[np.uint64(v)] = c
                    root = c
                elif root < c:
                    parent[np.uint64(c)] = root
                else:
                    parent[np.uint64(root)] = c
                    parent[root] = c
                    root = c


@numba.njit(cache=True, nogil=True)
def _zone_labels(parent, gp, dp, vox):  # pragma: no cover - compiled
    """Level, size and smallest distance ``dp`` of each zone of the union-find forest
    ``parent`` (``_zones``' labelling, in raster order; ``dp`` of size 1: all 1), on
    unsigned indices (no negative-index wrap)."""
    n_vox = vox.size
    zone_level = np.empty(n_vox, np.int64)
    zone_size = np.zeros(n_vox, np.int64)
    zone_dist = np.ones(n_vox, np.int64)
    with_dist = dp.size == gp.size
    n_zones = 0
    for v in vox:
        u = np.uint64(v)
        p = parent[u]
        if p == v:
            z = np.uint64(n_zones)
            zone_level[z] = gp[u]
            if with_dist:
                zone_dist[z] = dp[u]
            n_zones += 1
        else:
            z = np.uint64(-parent[np.uint64(p)] - 1)
        parent[u] = -(np.int64(z) + 1)
        zone_size[z] += 1
        if with_dist and dp[u] < zone_dist[z]:
            zone_dist[z] = dp[u]
    return zone_level[:n_zones], zone_size[:n_zones], zone_dist[:n_zones]
