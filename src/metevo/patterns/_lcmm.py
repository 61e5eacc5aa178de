"""Numerics of the latent-class trajectory model: a finite mixture of linear mixed models.

Model (R ``lcmm::hlme`` with ``mixture=`` and ``random=``; ``flexmix`` with a patient grouping
when there are no random effects). For patient ``i`` with ``n_i`` visits, design ``X_i``
(``n_i x p``, fixed effects) and ``Z_i`` (``n_i x q``, random effects, columns of ``X_i``)::

    y_i | class c  ~  N(X_i beta_c,  Z_i D_c Z_i' + sigma_c^2 I),     P(class c) = pi_c

``D_c`` is shared by the classes (``hlme``'s default) or class-specific (a free covariance
per class, more general than ``hlme``'s ``nwg=TRUE`` proportional one); ``sigma_c`` is shared
or class-specific. Visits are used where they are: irregular times and dropout need no grid.

Everything is computed from per-patient sufficient statistics (``y'y``, ``X'y``, ``X'X``,
``Z'y``, ``Z'X``, ``Z'Z``), so one EM iteration costs ``O(N k p^2)`` batched numpy operations
whatever the number of visits: no loop over patients. The marginal density uses Woodbury's
identity with ``H_i = sigma^2 I + Z_i'Z_i D`` (``q x q``)::

    log|V_i| = (n_i - q) log sigma^2 + log|H_i|
    r'V_i^-1 r = (r'r - (Z'r)' m) / sigma^2,   m = D H_i^-1 Z'r = E[b_i | y_i, c]
    Cov[b_i | y_i, c] = sigma^2 D H_i^-1

EM treats both the class and the random effects as missing data (McLachlan & Peel 2000, ch. 2
and 8): every iteration increases the likelihood.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LOG_2PI = float(np.log(2.0 * np.pi))


@dataclass
class Stats:
    """Per-patient sufficient statistics (N patients, p fixed effects, q random effects)."""

    n: np.ndarray  # (N,)
    yy: np.ndarray  # (N,)
    Xy: np.ndarray  # (N, p)
    XX: np.ndarray  # (N, p, p)
    z_cols: np.ndarray  # (q,) indices of the random-effect columns in X

    @property
    def q(self) -> int:
        return int(self.z_cols.size)

    @property
    def Zy(self) -> np.ndarray:  # noqa: N802
        return self.Xy[:, self.z_cols]

    @property
    def ZX(self) -> np.ndarray:  # noqa: N802
        return self.XX[:, self.z_cols, :]

    @property
    def ZZ(self) -> np.ndarray:  # noqa: N802
        return self.XX[:, self.z_cols][:, :, self.z_cols]

    def subset(self, idx: np.ndarray) -> Stats:
        return Stats(self.n[idx], self.yy[idx], self.Xy[idx], self.XX[idx], self.z_cols)


def sufficient_stats(starts: np.ndarray, X: np.ndarray, y: np.ndarray, z_cols) -> Stats:  # noqa: N803
    """Sum the visit rows of each patient; rows are sorted by patient, ``starts`` their offsets."""
    n = np.diff(np.append(starts, len(y)))
    yy = np.add.reduceat(y * y, starts)
    Xy = np.add.reduceat(X * y[:, None], starts, axis=0)  # noqa: N806
    XX = np.add.reduceat(X[:, :, None] * X[:, None, :], starts, axis=0)  # noqa: N806
    return Stats(n.astype(float), yy, Xy, XX, np.asarray(z_cols, dtype=int))


@dataclass
class Params:
    """Parameters of a k-class model."""

    log_pi: np.ndarray  # (k,)
    beta: np.ndarray  # (k, p)
    D: np.ndarray  # (k, q, q) (equal blocks when the random-effect covariance is shared)
    sigma2: np.ndarray  # (k,) (equal entries when the residual variance is shared)

    @property
    def k(self) -> int:
        return int(self.beta.shape[0])

    def copy(self) -> Params:
        return Params(self.log_pi.copy(), self.beta.copy(), self.D.copy(), self.sigma2.copy())


def n_parameters(k: int, p: int, q: int, class_variance: bool, class_cov: bool = False) -> int:
    """Free parameters: class proportions, fixed effects, random-effect covariance, residuals."""
    return (
        (k - 1) + k * p + (k if class_cov else 1) * q * (q + 1) // 2 + (k if class_variance else 1)
    )


def _class_terms(s: Stats, par: Params) -> tuple[np.ndarray, ...]:
    """Log-density (N, k), E[b] (N, k, q), Cov[b] (N, k, q, q) and Z'r (N, k, q) per class."""
    beta = par.beta  # (k, p)
    rr = (
        s.yy[:, None]
        - 2.0 * s.Xy @ beta.T
        + np.einsum("kp,npr,kr->nk", beta, s.XX, beta, optimize=True)
    )
    N, k = rr.shape  # noqa: N806
    q = s.q
    sig2 = par.sigma2[None, :]  # (1, k)
    if q == 0:
        logdet = s.n[:, None] * np.log(sig2)
        quad = rr / sig2
        m = np.zeros((N, k, 0))
        S = np.zeros((N, k, 0, 0))  # noqa: N806
        zr = np.zeros((N, k, 0))
    else:
        zr = s.Zy[:, None, :] - np.einsum("nqp,kp->nkq", s.ZX, beta, optimize=True)
        ZZD = np.einsum("nab,kbc->nkac", s.ZZ, par.D, optimize=True)  # noqa: N806
        eye = np.eye(q)
        H = ZZD + par.sigma2[None, :, None, None] * eye  # (N, k, q, q)  # noqa: N806
        Hinv = np.linalg.inv(H)  # noqa: N806
        v = np.einsum("nkab,nkb->nka", Hinv, zr)
        m = np.einsum("kab,nkb->nka", par.D, v)  # m = D_c v
        _, logdet_h = np.linalg.slogdet(H)
        logdet = (s.n[:, None] - q) * np.log(sig2) + logdet_h
        quad = (rr - np.einsum("nkq,nkq->nk", zr, m)) / sig2
        S = par.sigma2[None, :, None, None] * np.einsum("kab,nkbc->nkac", par.D, Hinv)  # noqa: N806
    logf = -0.5 * (s.n[:, None] * LOG_2PI + logdet + quad)
    return logf, m, S, zr


def e_step(s: Stats, par: Params) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """Log-likelihood, posteriors (N, k), and the random effects' posterior moments."""
    logf, m, S, _ = _class_terms(s, par)  # noqa: N806
    joint = logf + par.log_pi[None, :]
    top = joint.max(axis=1, keepdims=True)
    lse = top[:, 0] + np.log(np.exp(joint - top).sum(axis=1))
    w = np.exp(joint - lse[:, None])
    return float(lse.sum()), w, m, S


def loglik(s: Stats, par: Params) -> float:
    return e_step(s, par)[0]


def m_step(
    s: Stats,
    w: np.ndarray,
    m: np.ndarray,
    S: np.ndarray,  # noqa: N803
    par: Params,
    *,
    class_variance: bool,
    var_floor: float,
    class_cov: bool = False,
) -> Params:
    """Maximise the expected complete-data log-likelihood."""
    N, k = w.shape  # noqa: N806
    nk = w.sum(axis=0)
    pi = np.clip(nk / N, 1e-300, None)
    q = s.q
    A = np.einsum("nk,npr->kpr", w, s.XX, optimize=True)  # noqa: N806
    b = w.T @ s.Xy
    if q:
        b = b - np.einsum("nk,nqp,nkq->kp", w, s.ZX, m, optimize=True)
    beta = par.beta.copy()
    p = beta.shape[1]
    for c in range(k):
        if nk[c] > 1e-8:
            ridge = 1e-10 * np.trace(A[c]) / p * np.eye(p)
            beta[c] = np.linalg.solve(A[c] + ridge, b[c])
    # residual sum of squares given E[b], plus the trace term of Cov[b]
    rss = (
        s.yy[:, None]
        - 2.0 * s.Xy @ beta.T
        + np.einsum("kp,npr,kr->nk", beta, s.XX, beta, optimize=True)
    )
    if q:
        zr = s.Zy[:, None, :] - np.einsum("nqp,kp->nkq", s.ZX, beta, optimize=True)
        ZZ = s.ZZ  # noqa: N806
        rss = (
            rss
            - 2.0 * np.einsum("nkq,nkq->nk", m, zr)
            + np.einsum("nka,nab,nkb->nk", m, ZZ, m, optimize=True)
            + np.einsum("nkab,nba->nk", S, ZZ, optimize=True)
        )
        Ebb = np.einsum("nk,nka,nkb->kab", w, m, m, optimize=True) + np.einsum(  # noqa: N806
            "nk,nkab->kab", w, S, optimize=True
        )
        if class_cov:
            D = np.where(  # noqa: N806
                nk[:, None, None] > 1e-8, Ebb / np.maximum(nk, 1e-300)[:, None, None], par.D
            )
        else:
            D = np.broadcast_to(Ebb.sum(axis=0) / N, (k, q, q)).copy()  # noqa: N806
        D = 0.5 * (D + np.swapaxes(D, 1, 2))  # noqa: N806
    else:
        D = par.D  # noqa: N806
    rss = np.maximum(rss, 0.0)
    if class_variance:
        denom = w.T @ s.n
        sigma2 = np.where(
            denom > 1e-8, (w * rss).sum(axis=0) / np.maximum(denom, 1e-300), par.sigma2
        )
    else:
        sigma2 = np.full(k, (w * rss).sum() / s.n.sum())
    sigma2 = np.maximum(sigma2, var_floor)
    return Params(np.log(pi), beta, D, sigma2)


@dataclass
class EMResult:
    params: Params
    loglik: float
    posterior: np.ndarray  # (N, k)
    n_iter: int
    converged: bool


def run_em(
    s: Stats,
    par: Params,
    *,
    class_variance: bool,
    var_floor: float,
    max_iter: int,
    tol: float,
    class_cov: bool = False,
) -> EMResult:
    """EM from ``par`` until the relative change of the log-likelihood is below ``tol``."""
    ll, w, m, S = e_step(s, par)  # noqa: N806
    converged = False
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007
        par = m_step(
            s,
            w,
            m,
            S,
            par,
            class_variance=class_variance,
            var_floor=var_floor,
            class_cov=class_cov,
        )
        new, w, m, S = e_step(s, par)  # noqa: N806
        if abs(new - ll) <= tol * (abs(ll) + 1.0):
            ll = new
            converged = True
            break
        ll = new
    return EMResult(par, ll, w, it, converged)


def posterior(s: Stats, par: Params) -> np.ndarray:
    return e_step(s, par)[1]


def classification_summary(w: np.ndarray) -> dict[str, float | np.ndarray]:
    """Entropy, APPA per class and the shares of confident assignments of posteriors ``w``.

    Relative entropy ``1 - sum(-w log w) / (N log k)`` (1: perfectly separated classes); APPA
    of class c: mean posterior of c among patients assigned to c (Nagin 2005; values >= 0.7
    are usually asked for).
    """
    N, k = w.shape  # noqa: N806
    labels = w.argmax(axis=1)
    ent = float(-(w * np.log(np.clip(w, 1e-300, None))).sum())
    rel = 1.0 - ent / (N * np.log(k)) if k > 1 else 1.0
    appa = np.array([w[labels == c, c].mean() if np.any(labels == c) else np.nan for c in range(k)])
    sizes = np.bincount(labels, minlength=k)
    conf = w.max(axis=1)
    return {
        "entropy_sum": ent,
        "relative_entropy": float(rel),
        "appa": appa,
        "sizes": sizes,
        "share_ge_0_7": float(np.mean(conf >= 0.7)),
        "share_ge_0_8": float(np.mean(conf >= 0.8)),
        "share_ge_0_9": float(np.mean(conf >= 0.9)),
    }


def criteria(ll: float, n_par: int, n_patients: int, entropy_sum: float) -> dict[str, float]:
    """AIC, BIC, sample-size adjusted BIC and ICL (all: lower is better; N = patients)."""
    bic = -2.0 * ll + n_par * np.log(n_patients)
    return {
        "aic": -2.0 * ll + 2.0 * n_par,
        "bic": bic,
        "sabic": -2.0 * ll + n_par * np.log((n_patients + 2.0) / 24.0),
        "icl": bic + 2.0 * entropy_sum,
    }


# ---------------------------------------------------------------------- quasi-Newton polish
def _tril(q: int) -> tuple[np.ndarray, np.ndarray]:
    return np.tril_indices(q)


def pack(par: Params, class_variance: bool, class_cov: bool = False) -> np.ndarray:
    """Unconstrained vector: class logits (k-1), beta, Cholesky of D, log residual variance."""
    q = par.D.shape[1]
    logits = par.log_pi[1:] - par.log_pi[0]
    blocks = par.D if class_cov else par.D[:1]
    chols = [np.linalg.cholesky(b + 1e-12 * np.eye(q))[_tril(q)] for b in blocks] if q else []
    ls2 = np.log(par.sigma2 if class_variance else par.sigma2[:1])
    return np.concatenate([logits, par.beta.ravel(), *chols, ls2])


def unpack(
    theta: np.ndarray, k: int, p: int, q: int, class_variance: bool, class_cov: bool = False
) -> Params:
    i = 0
    logits = np.concatenate([[0.0], theta[i : i + k - 1]])
    i += k - 1
    log_pi = logits - (logits.max() + np.log(np.exp(logits - logits.max()).sum()))
    beta = theta[i : i + k * p].reshape(k, p)
    i += k * p
    nq = q * (q + 1) // 2
    n_blocks = k if class_cov else 1
    D = np.zeros((n_blocks, q, q))  # noqa: N806
    for b in range(n_blocks):
        chol = np.zeros((q, q))
        chol[_tril(q)] = theta[i : i + nq]
        i += nq
        D[b] = chol @ chol.T
    if not class_cov:
        D = np.broadcast_to(D, (k, q, q)).copy()  # noqa: N806
    ls2 = theta[i:]
    sigma2 = np.exp(ls2) if class_variance else np.full(k, np.exp(ls2[0]))
    return Params(log_pi, beta.copy(), D, sigma2)


def gradient(
    s: Stats, par: Params, class_variance: bool, class_cov: bool = False
) -> tuple[float, np.ndarray]:
    """Log-likelihood and its gradient in the packed parametrisation (Fisher's identity:
    the score of the observed data is the expected complete-data score)."""
    ll, w, m, S = e_step(s, par)  # noqa: N806
    N, k = w.shape  # noqa: N806
    q = s.q
    pi = np.exp(par.log_pi)
    g_logits = (w.sum(axis=0) - N * pi)[1:]
    # beta: sum_i w_ic X'(y - X beta_c - Z m_ic) / sigma_c^2
    res = s.Xy[:, None, :] - np.einsum("npr,kr->nkp", s.XX, par.beta, optimize=True)
    if q:
        res = res - np.einsum("nqp,nkq->nkp", s.ZX, m, optimize=True)
    g_beta = np.einsum("nk,nkp->kp", w, res) / par.sigma2[:, None]
    # residual variance
    rss = (
        s.yy[:, None]
        - 2.0 * s.Xy @ par.beta.T
        + np.einsum("kp,npr,kr->nk", par.beta, s.XX, par.beta, optimize=True)
    )
    if q:
        zr = s.Zy[:, None, :] - np.einsum("nqp,kp->nkq", s.ZX, par.beta, optimize=True)
        rss = (
            rss
            - 2.0 * np.einsum("nkq,nkq->nk", m, zr)
            + np.einsum("nka,nab,nkb->nk", m, s.ZZ, m, optimize=True)
            + np.einsum("nkab,nba->nk", S, s.ZZ, optimize=True)
        )
    g_s2 = 0.5 * (-(w * s.n[:, None]).sum(axis=0) + (w * rss).sum(axis=0) / par.sigma2)
    g_ls2 = g_s2 if class_variance else np.array([g_s2.sum()])
    parts = [g_logits, g_beta.ravel()]
    if q:
        Dinv = np.linalg.inv(par.D)  # (k, q, q)  # noqa: N806
        Ebb = np.einsum("nk,nka,nkb->kab", w, m, m, optimize=True) + np.einsum(  # noqa: N806
            "nk,nkab->kab", w, S, optimize=True
        )
        nk = w.sum(axis=0)
        G = -0.5 * nk[:, None, None] * Dinv + 0.5 * Dinv @ Ebb @ Dinv  # noqa: N806
        if class_cov:
            for c in range(k):
                parts.append((2.0 * G[c] @ np.linalg.cholesky(par.D[c]))[_tril(q)])
        else:
            parts.append((2.0 * G.sum(axis=0) @ np.linalg.cholesky(par.D[0]))[_tril(q)])
    parts.append(g_ls2)
    return ll, np.concatenate(parts)


def polish(
    s: Stats,
    par: Params,
    *,
    class_variance: bool,
    class_cov: bool = False,
    max_iter: int = 500,
    tol: float = 1e-10,
) -> tuple[Params, float]:
    """L-BFGS on the marginal log-likelihood from an EM solution (EM is slow near the optimum
    of variance components)."""
    from scipy.optimize import minimize

    k, p = par.beta.shape
    q = s.q
    if q:
        # keep D positive definite for the Cholesky parametrisation
        ev = np.linalg.eigvalsh(par.D)
        if ev.min() <= 1e-10 * max(ev.max(), 1e-300):
            par = par.copy()
            par.D = par.D + (1e-8 * max(ev.max(), 1e-8)) * np.eye(q)
    theta0 = pack(par, class_variance, class_cov)
    n_tot = float(s.n.sum())

    def fun(theta: np.ndarray) -> tuple[float, np.ndarray]:
        try:
            with np.errstate(all="ignore"):
                cand = unpack(theta, k, p, q, class_variance, class_cov)
                ll, g = gradient(s, cand, class_variance, class_cov)
        except np.linalg.LinAlgError:
            return np.inf, np.zeros_like(theta)
        if not (np.isfinite(ll) and np.all(np.isfinite(g))):
            return np.inf, np.zeros_like(theta)
        return -ll / n_tot, -g / n_tot

    res = minimize(
        fun,
        theta0,
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": max_iter, "ftol": tol, "gtol": 1e-9, "maxcor": 20},
    )
    with np.errstate(all="ignore"):
        best = unpack(res.x, k, p, q, class_variance, class_cov)
        ll = loglik(s, best)
    if not np.all(np.isfinite(best.sigma2)) or np.any(best.sigma2 <= 0):
        return par, -np.inf
    return best, ll
