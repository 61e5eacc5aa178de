"""K-means on partially observed curves (masked values are skipped, never imputed).

Patients leave follow-up at progression or death, so the tail of a trajectory is missing *for a
reason*. Filling it (last value carried forward, zeros, interpolation) would invent data;
dropping late time points would throw away the responders' long-term behaviour. Here every
distance uses only the time points both sides observe, rescaled to the full length so that a
short trajectory is not automatically "close" to everything::

    d(x, c)^2 = T / |O_x| * sum_{t in O_x} (x_t - c_t)^2

and a centroid value at time ``t`` is the mean of the members that are observed at ``t``
(its *support* is kept, so late centroid points that only a few survivors shape can be shown
as such). scikit-learn's ``KMeans`` rejects NaN, hence this small implementation (Lloyd
iterations with k-means++ seeding, all vectorised with NumPy).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class MaskedKMeansResult:
    centers: np.ndarray  # (k, T), centroid values (filled forward where no member is observed)
    support: np.ndarray  # (k, T), fraction of members observed at each time point
    labels: np.ndarray  # (n,)
    inertia: float  # sum of squared (rescaled) distances to the own centroid
    n_iter: int


def masked_sq_distances(x: np.ndarray, w: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Squared rescaled distances between masked rows ``x`` (n, T) and full ``centers`` (k, T).

    ``x`` holds 0 where ``w`` is 0 (unobserved). Returns (n, k).
    """
    n_obs = w.sum(axis=1)
    a = (w * x * x).sum(axis=1)[:, None]
    b = x @ centers.T  # x is already 0 where unobserved
    c = w @ (centers * centers).T
    d = np.maximum(a - 2.0 * b + c, 0.0)
    return d * (x.shape[1] / np.maximum(n_obs, 1.0))[:, None]


def masked_pairwise_distances(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Euclidean distances between masked rows, on jointly observed points, rescaled (n, n)."""
    x2 = w * x * x
    d = x2 @ w.T + w @ x2.T - 2.0 * (x @ x.T)
    n_joint = w @ w.T
    d = np.maximum(d, 0.0) * (x.shape[1] / np.maximum(n_joint, 1.0))
    np.fill_diagonal(d, 0.0)
    return np.sqrt(d)


def _update_centers(
    x: np.ndarray, w: np.ndarray, labels: np.ndarray, k: int, previous: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    onehot = np.zeros((labels.size, k))
    onehot[np.arange(labels.size), labels] = 1.0
    sums = onehot.T @ x
    counts = onehot.T @ w
    members = onehot.sum(axis=0)[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        centers = sums / counts
        support = counts / np.maximum(members, 1.0)
    empty = members[:, 0] == 0
    centers[empty] = previous[empty]
    # time points without any observed member: carry the centroid's last value forward
    for j in range(k):
        row = centers[j]
        bad = ~np.isfinite(row)
        if bad.any():
            idx = np.where(~bad, np.arange(row.size), 0)
            np.maximum.accumulate(idx, out=idx)
            row[:] = row[idx]
            row[~np.isfinite(row)] = 0.0
    return centers, support


def _kmeanspp(x: np.ndarray, w: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    n = x.shape[0]
    first = rng.integers(n)
    # a seed row's unobserved tail is set to its last observed value (seeding only)
    filled = _forward_fill(np.where(w > 0, x, np.nan))
    centers = [filled[first]]
    d2 = masked_sq_distances(x, w, filled[[first]])[:, 0]
    for _ in range(1, k):
        total = d2.sum()
        probs = d2 / total if total > 0 else np.full(n, 1.0 / n)
        nxt = rng.choice(n, p=probs)
        centers.append(filled[nxt])
        d2 = np.minimum(d2, masked_sq_distances(x, w, filled[[nxt]])[:, 0])
    return np.vstack(centers)


def _forward_fill(values: np.ndarray) -> np.ndarray:
    """Carry the last finite value of each row forward (NaNs before the first value become 0)."""
    out = values.copy()
    mask = np.isfinite(out)
    idx = np.where(mask, np.arange(out.shape[1])[None, :], 0)
    np.maximum.accumulate(idx, axis=1, out=idx)
    out = out[np.arange(out.shape[0])[:, None], idx]
    out[~np.isfinite(out)] = 0.0
    return out


def masked_kmeans(
    x: np.ndarray,
    w: np.ndarray,
    k: int,
    *,
    n_init: int = 4,
    max_iter: int = 100,
    rng: np.random.Generator,
) -> MaskedKMeansResult:
    """Fit k-means on rows ``x`` (NaN-free, 0 where ``w`` is 0) with observation weights ``w``."""
    best: MaskedKMeansResult | None = None
    for _ in range(n_init):
        centers = _kmeanspp(x, w, k, rng)
        labels = np.full(x.shape[0], -1)
        support = np.ones_like(centers)
        n_iter = 0
        for n_iter in range(1, max_iter + 1):  # noqa: B007
            d = masked_sq_distances(x, w, centers)
            new = d.argmin(axis=1)
            if np.array_equal(new, labels):
                break
            labels = new
            centers, support = _update_centers(x, w, labels, k, centers)
        d = masked_sq_distances(x, w, centers)
        inertia = float(d[np.arange(x.shape[0]), labels].sum())
        if best is None or inertia < best.inertia:
            best = MaskedKMeansResult(centers, support, labels.copy(), inertia, n_iter)
    assert best is not None
    return best


def masked_calinski_harabasz(
    x: np.ndarray, w: np.ndarray, labels: np.ndarray, centers: np.ndarray
) -> float:
    """Calinski-Harabasz index with the within-cluster dispersion on observed points only."""
    n, k = x.shape[0], centers.shape[0]
    if k < 2 or n <= k:
        return float("nan")
    within = masked_sq_distances(x, w, centers)[np.arange(n), labels].sum()
    overall, _ = _update_centers(x, w, np.zeros(n, dtype=int), 1, centers[:1])
    sizes = np.bincount(labels, minlength=k)
    between = float((sizes * ((centers - overall) ** 2).sum(axis=1)).sum())
    if within <= 0:
        return float("inf")
    return float((between / (k - 1)) / (within / (n - k)))
