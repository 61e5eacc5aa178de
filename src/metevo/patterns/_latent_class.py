"""Latent-class trajectory model of tumour burden (estimator; numerics in :mod:`metevo._lcmm`).

:class:`LatentClassTrajectories` fits a finite mixture of linear mixed models (R
``lcmm::hlme``) to the log tumour burden against time in months since treatment start: each
class has its own polynomial mean course, patients vary around it by a random intercept (and
slope), and the visits are used at the times they happened (irregular schedules, missed visits
and dropout need no interpolation grid). It is fitted by EM from several starts and polished
by L-BFGS on the marginal likelihood. The number of classes is chosen by BIC (or ICL, AIC,
SABIC) among the k whose smallest class holds at least ``min_class_share`` of the patients and
``min_class_size`` patients; every k tried is reported with the statistics biostatisticians
expect (log-likelihood, parameters, AIC, BIC, SABIC, entropy, ICL, APPA, shares of confident
assignments) in :attr:`LatentClassTrajectories.selection_`.
"""

from __future__ import annotations

import html
from typing import Literal

import numpy as np
import pandas as pd

from metevo.exceptions import NotFittedError
from metevo.patterns import _features as pf
from metevo.patterns import _lcmm as lc
from metevo.patterns._latent_class_tables import (
    RANDOM_EFFECTS,
    SELECTION_COLUMNS,
    describe_classes,
    selection_table,
)
from metevo.patterns._patterns_base import clone_estimator

__all__ = ["SELECTION_COLUMNS", "LatentClassTrajectories", "latent_class_trajectories"]

DAYS_PER_MONTH = 365.25 / 12.0
CRITERIA = ("bic", "icl", "aic", "sabic")
OUTCOMES = ("log_ratio", "log")
METHOD = "lcmm"

class LatentClassTrajectories:
    """Latent classes of tumour-burden trajectories (mixture of linear mixed models).

    Parameters
    ----------
    n_classes : int or "auto"
        Number of classes, or ``"auto"`` to choose it over ``k_range`` by ``criterion`` among
        the k whose smallest class is large enough (``min_class_share``, ``min_class_size``).
    value_column : str
        Burden column of ``patient_trajectories``.
    outcome : {"log_ratio", "log"}
        Modelled response: ``log(value + log_offset)`` minus its value at the patient's first
        visit (log-ratio to baseline: the course, not the size, tells classes apart), or the
        log burden itself.
    degree : int
        Degree of the class-specific polynomial in time (2: quadratic, a nadir then regrowth).
    n_knots : int
        Interior knots of a regression spline (truncated power basis of ``degree`` at the
        visit-time quantiles); 0 is the plain polynomial. The first two columns stay the
        intercept and the slope, so random effects mean the same with or without knots.
    random_effects : {"intercept", "slope", "none"}
        Patient random effects: intercept, intercept + slope (in time), or none (latent-class
        regression: flexmix ``y ~ poly(t) | patient``).
    class_variance : bool
        Residual variance per class (flexmix's default) instead of shared (hlme's default).
    class_random_cov : bool
        Random-effect covariance per class instead of shared (patients of a fast course vary
        more in rate than those of a flat one).
    k_range : (int, int)
        Smallest and largest k tried when ``n_classes="auto"`` (k = 1 is the plain mixed model).
    criterion : {"bic", "icl", "aic", "sabic"}
    min_class_share, min_class_size : float, int
        A k is eligible only when every class (maximum-posterior assignment) holds at least
        this share of the patients and this many patients. Set both to 0 to allow tiny classes.
    horizon_days : float, "auto" or None
        Visits after this day since treatment start are not used. ``"auto"``: the
        ``horizon_quantile`` quantile of the patients' last visit day (long enough to see a
        relapse, short enough that the polynomial is not driven by the few long survivors).
        None uses every visit.
    horizon_quantile : float
    landmark_days : float or None
        Landmark mode: only visits on or before this day since treatment start are used (no
        look-ahead) and the horizon is the landmark; the patterns can then enter a survival
        model counted from the landmark.
    log_offset : float
        Added before the logarithm (same unit as ``value_column``; a target sum of 0 after a
        complete response stays finite).
    n_init : int
        Starts per k (one from k-means on the patients' own regression coefficients, the others
        from random k-means++ seeds, as many random partitions, and splits of each class of the
        (k-1)-class fit); each runs
        ``n_short_iter`` EM iterations (screening, as lcmm's ``gridsearch`` and flexmix's
        ``stepFlexmix`` do), the ``n_converge`` best are run to convergence. Round 3: 30 starts
        (10 before); 100 starts x 10 iterations with 5 converged was tried and did not help
        the ARI on unseen seeds (``docs/patterns.md``).
    max_iter, tol : int, float
        EM iterations and relative log-likelihood tolerance before the L-BFGS polish.
    random_state : int or None

    Attributes
    ----------
    patient_ids_ : ndarray of str, shape (n_patients,)
    labels_ : ndarray of int
        Class by maximum posterior; 0 = best outcome (lowest mean change of the class course
        over the horizon).
    posterior_ : ndarray, shape (n_patients, n_classes_)
        Posterior class-membership probabilities.
    confidence_ : ndarray
        Maximum posterior per patient.
    n_classes_ : int
    names_ : list of str
        Descriptive names from the class mean courses (:func:`metevo.patterns.name_pattern`:
        nadir depth, regrowth over the nadir, final ratio), checked against the members: a
        responding class with a member assigned with confidence > 0.5 whose own course never
        reached -30 % (``own_nadir_ratio`` > 0.7) is named "mixed ..." instead.
    coef_ : ndarray, shape (n_classes_, degree + 1)
        Fixed effects per class in the basis ``(t / time_scale_months_) ** j``.
    proportions_ : ndarray
    random_cov_ : ndarray, shape (n_classes_, q, q)
        Random-effect covariance per class (equal blocks unless ``class_random_cov``).
    residual_var_ : ndarray, shape (n_classes_,)
    log_likelihood_ : float
    horizon_days_ : float or None
    selection_ : DataFrame
        One row per k tried (columns ``SELECTION_COLUMNS``), ``reason`` says why a k was or was
        not chosen.
    classes_ : DataFrame
        One row per class of the chosen model: ``pattern_id``, ``pattern``, ``proportion``,
        ``n_patients``, ``appa``, ``nadir_ratio``, ``time_to_nadir_days``, ``final_ratio``
        (of the class mean course), ``n_members_not_responding`` (the patient-level check).
    patterns_ : DataFrame
        One row per patient (``patterns`` table layout).
    excluded_ : DataFrame
        Patients not modelled and why.

    Examples
    --------
    >>> from metevo.datasets import make_synthetic_trajectories
    >>> data = make_synthetic_trajectories(150, seed=0)
    >>> model = LatentClassTrajectories(k_range=(1, 3), n_init=3, random_state=0).fit(
    ...     data["patient_trajectories"])
    >>> model.selection_["k"].tolist()
    [1, 2, 3]
    """

    def __init__(
        self,
        n_classes: int | Literal["auto"] = "auto",
        *,
        value_column: str = pf.TARGET_SUM_MM,
        outcome: str = "log_ratio",
        degree: int = 2,
        n_knots: int = 0,
        random_effects: str = "intercept",
        class_variance: bool = True,
        class_random_cov: bool = False,
        k_range: tuple[int, int] = (1, 6),
        criterion: str = "icl",
        min_class_share: float = 0.05,
        min_class_size: int = 5,
        horizon_days: float | Literal["auto"] | None = "auto",
        horizon_quantile: float = 0.75,
        landmark_days: float | None = None,
        log_offset: float = 1.0,
        n_init: int = 30,
        n_short_iter: int = 20,
        n_converge: int = 3,
        max_iter: int = 100,
        tol: float = 1e-7,
        random_state: int | None = None,
    ) -> None:
        self.n_classes = n_classes
        self.value_column = value_column
        self.outcome = outcome
        self.degree = degree
        self.n_knots = n_knots
        self.random_effects = random_effects
        self.class_variance = class_variance
        self.class_random_cov = class_random_cov
        self.k_range = k_range
        self.criterion = criterion
        self.min_class_share = min_class_share
        self.min_class_size = min_class_size
        self.horizon_days = horizon_days
        self.horizon_quantile = horizon_quantile
        self.landmark_days = landmark_days
        self.log_offset = log_offset
        self.n_init = n_init
        self.n_short_iter = n_short_iter
        self.n_converge = n_converge
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state

    # ------------------------------------------------------------------ checks
    def _check_params(self) -> tuple[int, int]:
        if self.random_effects not in RANDOM_EFFECTS:
            raise ValueError(
                f"random_effects must be one of {tuple(RANDOM_EFFECTS)}; "
                f"found {self.random_effects!r}."
            )
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}; found {self.outcome!r}.")
        if self.criterion not in CRITERIA:
            raise ValueError(f"criterion must be one of {CRITERIA}; found {self.criterion!r}.")
        if isinstance(self.degree, bool) or not isinstance(self.degree, int | np.integer):
            raise TypeError(f"degree must be an int >= 1; found {self.degree!r}.")
        if self.degree < 1:
            raise ValueError(f"degree must be >= 1; found {self.degree}.")
        if self.random_effects == "slope" and self.degree < 1:
            raise ValueError("random_effects='slope' needs degree >= 1.")
        if self.n_classes == "auto":
            lo, hi = self.k_range
            if not (1 <= lo <= hi):
                raise ValueError(f"k_range must satisfy 1 <= low <= high; found {self.k_range}.")
            return int(lo), int(hi)
        if isinstance(self.n_classes, bool) or not isinstance(self.n_classes, int | np.integer):
            raise TypeError(f"n_classes must be an int >= 1 or 'auto'; found {self.n_classes!r}.")
        if self.n_classes < 1:
            raise ValueError(f"n_classes must be >= 1 or 'auto'; found {self.n_classes}.")
        if self.landmark_days is not None and not self.landmark_days > 0:
            raise ValueError(
                f"landmark_days must be > 0 days after treatment start; found {self.landmark_days}."
            )
        if self.log_offset < 0:
            raise ValueError(f"log_offset must be >= 0; found {self.log_offset}.")
        return int(self.n_classes), int(self.n_classes)

    # ------------------------------------------------------------------ data
    def _table(self, trajectories: pd.DataFrame, *, fitted: bool) -> tuple[pd.DataFrame, list]:
        table = pf.check_trajectories(trajectories, (self.value_column,))
        value = table[self.value_column]
        excluded = []
        if (value < 0).any():
            bad = table.loc[value < 0].iloc[0]
            raise ValueError(
                f"{self.value_column} must be >= 0; found {bad[self.value_column]} for patient "
                f"{bad[pf.PATIENT_ID]!r} on day {bad['_t']:g}."
            )
        if self.log_offset == 0 and (value == 0).any():
            bad = table.loc[value == 0].iloc[0]
            raise ValueError(
                f"{self.value_column} is 0 for patient {bad[pf.PATIENT_ID]!r} on day "
                f"{bad['_t']:g}; log(0) is undefined: set log_offset > 0 (e.g. 1.0 mm)."
            )
        table = table.loc[value.notna()]
        if not fitted:
            last = table.groupby(pf.PATIENT_ID)["_t"].max()
            if self.landmark_days is not None:
                self.horizon_days_ = float(self.landmark_days)
                self.horizon_rule_ = "landmark: visits on or before the landmark day"
            elif self.horizon_days == "auto":
                self.horizon_days_ = float(np.quantile(last, self.horizon_quantile))
                self.horizon_rule_ = (
                    f"{self.horizon_quantile:.0%} quantile of the patients' last visit day"
                )
            elif self.horizon_days is None:
                self.horizon_days_ = None
                self.horizon_rule_ = "every visit (no horizon)"
            else:
                self.horizon_days_ = float(self.horizon_days)
                self.horizon_rule_ = "fixed by horizon_days"
        if self.horizon_days_ is not None:
            table = table.loc[table["_t"] <= self.horizon_days_]
        counts = table.groupby(pf.PATIENT_ID).size()
        all_ids = pd.Index(trajectories[pf.PATIENT_ID].astype(str).unique())
        for pid in all_ids.difference(counts.index[counts >= 2]):
            n = int(counts.get(pid, 0))
            excluded.append((pid, n, "fewer than 2 visits with a value within the horizon"))
        table = table.loc[table[pf.PATIENT_ID].map(counts) >= 2].reset_index(drop=True)
        return table, excluded

    def _stats(self, table: pd.DataFrame) -> tuple[lc.Stats, np.ndarray, np.ndarray]:
        t_months = table["_t"].to_numpy(float) / DAYS_PER_MONTH
        X = self._basis(t_months)  # noqa: N806
        y = np.log(table[self.value_column].to_numpy(float) + self.log_offset)
        ids = table[pf.PATIENT_ID].to_numpy()
        starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
        if self.outcome == "log_ratio":
            y = y - np.repeat(y[starts], np.diff(np.append(starts, len(ids))))
        stats = lc.sufficient_stats(starts, X, y, RANDOM_EFFECTS[self.random_effects])
        return stats, ids[starts], np.diff(np.append(starts, len(ids)))

    def _basis(self, t_months: np.ndarray) -> np.ndarray:
        u = np.asarray(t_months, float) / self.time_scale_months_
        poly = np.vander(u, self.degree + 1, increasing=True)
        knots = self.knots_days_ / DAYS_PER_MONTH / self.time_scale_months_
        spline = np.clip(u[:, None] - knots[None, :], 0.0, None) ** self.degree
        return np.hstack([poly, spline])

    # ------------------------------------------------------------------ fitting
    def fit(
        self,
        trajectories: pd.DataFrame,
        y: None = None,
        *,
        lesion_trajectories: pd.DataFrame | None = None,
    ) -> LatentClassTrajectories:
        """Fit on ``patient_trajectories`` (one row per patient x visit); returns ``self``.

        ``y`` and ``lesion_trajectories`` are ignored (same signature as
        :class:`~metevo.patterns.EvolutionPatterns`).
        """
        del y, lesion_trajectories
        lo, hi = self._check_params()
        table, excluded = self._table(trajectories, fitted=False)
        if table.empty:
            raise ValueError(
                "no patient has 2 or more visits with a value of "
                f"{self.value_column!r} within the horizon; nothing to model."
            )
        horizon = self.horizon_days_ or float(table["_t"].max())
        self.time_scale_months_ = max(horizon / DAYS_PER_MONTH, 1e-6)
        inner = np.linspace(0.0, 1.0, int(self.n_knots) + 2)[1:-1]
        self.knots_days_ = (
            np.quantile(table["_t"].to_numpy(float), inner) if inner.size else np.zeros(0)
        )
        stats, ids, n_visits = self._stats(table)
        N = len(ids)  # noqa: N806
        if lo > N:
            raise ValueError(
                f"only {N} patient(s) can be modelled (2 or more visits within the horizon); "
                f"fewer than the {lo} classes asked for. Lower n_classes or add patients."
            )
        hi = min(hi, N)  # a k above the number of patients cannot be fitted
        rng = np.random.default_rng(self.random_state)
        var_floor = 1e-8 * max(
            float(np.var(np.log(table[self.value_column] + self.log_offset))), 1e-12
        )
        one = self._fit_one(stats, var_floor)
        fits = {}
        for k in range(lo, hi + 1):
            prev = fits.get(k - 1)
            fits[k] = one if k == 1 else self._fit_k(stats, k, one.params, rng, var_floor, prev)
        self.selection_ = selection_table(fits, self, N)
        best = fits[self.n_classes_]
        order = self._order(best.params)
        par = best.params
        self.fits_ = fits
        self.coef_ = par.beta[order]
        self.proportions_ = np.exp(par.log_pi[order])
        self.random_cov_ = par.D[order]
        self.residual_var_ = par.sigma2[order]
        self.log_likelihood_ = best.loglik
        self.posterior_ = best.posterior[:, order]
        self.labels_ = self.posterior_.argmax(axis=1)
        self.confidence_ = self.posterior_.max(axis=1)
        self.patient_ids_ = ids.astype(str)
        self.n_visits_ = n_visits
        self.followup_days_ = table.groupby(pf.PATIENT_ID)["_t"].max().loc[ids].to_numpy()
        logv = np.log(table[self.value_column] + self.log_offset)
        own = logv - logv.groupby(table[pf.PATIENT_ID]).transform("first")
        self.own_nadir_ratio_ = np.exp(own.groupby(table[pf.PATIENT_ID]).min().loc[ids].to_numpy())
        self.excluded_ = pd.DataFrame(excluded, columns=[pf.PATIENT_ID, "n_visits", "reason"])
        describe_classes(self, table)
        return self

    def _fit_one(self, s: lc.Stats, var_floor: float) -> lc.EMResult:
        A = s.XX.sum(axis=0)  # noqa: N806
        beta = np.linalg.solve(A + 1e-10 * np.trace(A) * np.eye(len(A)), s.Xy.sum(axis=0))
        rss = s.yy.sum() - beta @ s.Xy.sum(axis=0)
        s2 = max(rss / s.n.sum(), var_floor)
        q = s.q
        par = lc.Params(np.zeros(1), beta[None], 0.5 * s2 * np.eye(q)[None], np.array([s2]))
        par.sigma2 = np.array([0.5 * s2])
        return self._converge(s, par, var_floor)

    def _converge(self, s: lc.Stats, par: lc.Params, var_floor: float) -> lc.EMResult:
        em = lc.run_em(
            s,
            par,
            class_variance=self.class_variance,
            var_floor=var_floor,
            max_iter=self.max_iter,
            tol=self.tol,
            class_cov=self.class_random_cov,
        )
        polished, ll = lc.polish(
            s, em.params, class_variance=self.class_variance, class_cov=self.class_random_cov
        )
        if np.isfinite(ll) and ll > em.loglik:
            em = lc.EMResult(polished, ll, lc.posterior(s, polished), em.n_iter, True)
        return em

    def _fit_k(
        self,
        s: lc.Stats,
        k: int,
        one: lc.Params,
        rng: np.random.Generator,
        var_floor: float,
        prev: lc.EMResult | None,
    ) -> lc.EMResult:
        from sklearn.cluster import KMeans, kmeans_plusplus

        feats = self._patient_coefficients(s)
        starts = []
        for start in range(max(int(self.n_init), 1)):
            seed = int(rng.integers(2**31 - 1))
            if start == 0:
                labels = KMeans(k, n_init=3, random_state=seed).fit_predict(feats)
            else:
                centers, _ = kmeans_plusplus(feats, k, random_state=seed)
                labels = ((feats[:, None, :] - centers[None]) ** 2).sum(axis=2).argmin(axis=1)
            starts.append(labels)
            # and a random partition, as flexmix starts (the feature-space seeds miss optima
            # where classes differ in level or variance rather than course)
            starts.append(np.random.default_rng(seed).integers(0, k, len(feats)))
        if prev is not None and prev.params.k == k - 1:
            # split each class of the (k-1)-class solution in two along the patients' own
            # courses: the k-class fit can then not end below the (k-1)-class one
            base = prev.posterior.argmax(axis=1)
            for c in range(k - 1):
                members = np.flatnonzero(base == c)
                if members.size < 4:
                    continue
                seed = int(rng.integers(2**31 - 1))
                sub = KMeans(2, n_init=2, random_state=seed).fit_predict(feats[members])
                labels = base.copy()
                labels[members[sub == 1]] = k - 1
                starts.append(labels)
        short = []
        for labels in starts:
            par = self._start_from_labels(s, labels, k, one)
            short.append(
                lc.run_em(
                    s,
                    par,
                    class_variance=self.class_variance,
                    var_floor=var_floor,
                    max_iter=self.n_short_iter,
                    tol=self.tol,
                    class_cov=self.class_random_cov,
                )
            )
        # run the best few starts to convergence (one is not enough: flexmix cross-check)
        short.sort(key=lambda em: -em.loglik)
        best = None
        for em in short[: max(int(self.n_converge), 1)]:
            em = self._converge(s, em.params, var_floor)
            if best is None or em.loglik > best.loglik:
                best = em
        return best

    def _patient_coefficients(self, s: lc.Stats) -> np.ndarray:
        """Each patient's own (ridge) regression coefficients, standardised: start features."""
        p = s.XX.shape[1]
        scale = np.trace(s.XX.mean(axis=0)) / p
        coefs = np.linalg.solve(s.XX + 0.05 * scale * np.eye(p), s.Xy[..., None])[..., 0]
        if self.random_effects != "none":
            coefs = coefs[:, 1:]  # the level is a random effect: cluster on the course
        sd = coefs.std(axis=0)
        return (coefs - coefs.mean(axis=0)) / np.where(sd > 0, sd, 1.0)

    def _start_from_labels(
        self, s: lc.Stats, labels: np.ndarray, k: int, one: lc.Params
    ) -> lc.Params:
        w = np.eye(k)[labels] * 0.9 + 0.1 / k
        A = np.einsum("nk,npr->kpr", w, s.XX)  # noqa: N806
        p = A.shape[1]
        beta = np.stack(
            [
                np.linalg.solve(A[c] + 1e-8 * np.trace(A[c]) * np.eye(p), w[:, c] @ s.Xy)
                for c in range(k)
            ]
        )
        pi = w.mean(axis=0)
        D = np.broadcast_to(one.D[0], (k, *one.D.shape[1:])).copy()  # noqa: N806
        return lc.Params(np.log(pi), beta, D, np.full(k, one.sigma2[0]))

    # ------------------------------------------------------------------ description
    def _curve(self, beta: np.ndarray, days: np.ndarray) -> np.ndarray:
        """Mean log burden of each class (rows of ``beta``) at ``days`` since treatment start."""
        return np.atleast_2d(beta) @ self._basis(days / DAYS_PER_MONTH).T

    def _grid(self) -> np.ndarray:
        end = self.horizon_days_ or self.time_scale_months_ * DAYS_PER_MONTH
        return np.linspace(0.0, end, 50)

    def _order(self, par: lc.Params) -> np.ndarray:
        curves = self._curve(par.beta, self._grid())
        return np.argsort((curves - curves[:, :1]).mean(axis=1), kind="stable")

    @property
    def n_patterns_(self) -> int:
        """Number of classes (the name :class:`EvolutionPatterns` uses)."""
        self._check_fitted()
        return self.n_classes_

    def summary_table(self) -> pd.DataFrame:
        """One row per class (``pattern_summary`` layout): size, course, name check."""
        self._check_fitted()
        c = self.classes_
        return pd.DataFrame(
            {
                "pattern_id": c["pattern_id"],
                "pattern": c["pattern"],
                "n_patients": c["n_patients"],
                "proportion": c["proportion"],
                "mean_confidence": c["appa"],
                "nadir_ratio": c["nadir_ratio"],
                "time_to_nadir_days": c["time_to_nadir_days"],
                "regrowth_over_nadir": c["regrowth_over_nadir"],
                "final_ratio": c["final_ratio"],
                "n_members_not_responding": c["n_members_not_responding"],
                "method": METHOD,
                "landmark_days": np.nan if self.landmark_days is None else self.landmark_days,
                "horizon_days": np.nan if self.horizon_days_ is None else self.horizon_days_,
            }
        )

    def fixed_k_copy(self) -> LatentClassTrajectories:
        """An unfitted copy with the fitted k and horizon fixed (refits, cross-validation)."""
        self._check_fitted()
        return clone_estimator(self, n_classes=self.n_classes_, horizon_days=self.horizon_days_)

    # ------------------------------------------------------------------ prediction
    def _check_fitted(self) -> None:
        if not hasattr(self, "coef_"):
            raise NotFittedError(
                "this LatentClassTrajectories is not fitted yet; call fit(trajectories) first."
            )

    def predict_proba(self, trajectories: pd.DataFrame) -> pd.DataFrame:
        """Posterior class probabilities of the patients of ``trajectories`` (rows: patient,
        columns: pattern id), with the fitted parameters and horizon."""
        self._check_fitted()
        table, _ = self._table(trajectories, fitted=True)
        stats, ids, _ = self._stats(table)
        par = lc.Params(np.log(self.proportions_), self.coef_, self.random_cov_, self.residual_var_)
        w = lc.posterior(stats, par)
        return pd.DataFrame(w, index=pd.Index(ids.astype(str), name=pf.PATIENT_ID))

    def predict(
        self, trajectories: pd.DataFrame, *, lesion_trajectories: pd.DataFrame | None = None
    ) -> pd.Series:
        """Most probable class per patient of ``trajectories`` (-1: not modelled, e.g. fewer
        than 2 visits within the horizon); indexed by ``patient_id``, sorted."""
        del lesion_trajectories
        proba = self.predict_proba(trajectories)
        out = pd.Series(proba.to_numpy().argmax(axis=1), index=proba.index, name="pattern_id")
        every = pd.Index(trajectories[pf.PATIENT_ID].astype(str).unique(), name=pf.PATIENT_ID)
        return out.reindex(every, fill_value=-1).sort_index()

    def summary(self) -> pd.DataFrame:
        """The ``selection_`` table (one row per k tried)."""
        self._check_fitted()
        return self.selection_

    def __repr__(self) -> str:
        if not hasattr(self, "coef_"):
            return f"LatentClassTrajectories(n_classes={self.n_classes!r}, not fitted)"
        return (
            f"LatentClassTrajectories({self.n_classes_} classes on {len(self.patient_ids_)} "
            f"patients, log-likelihood {self.log_likelihood_:.2f}, horizon "
            f"{self.horizon_days_} days: {', '.join(self.names_)})"
        )

    def _repr_html_(self) -> str:
        return f"<p>{html.escape(repr(self))}</p>" + self.summary().to_html(index=False)



def latent_class_trajectories(trajectories: pd.DataFrame, **options) -> pd.DataFrame:
    """One-call twin of :class:`LatentClassTrajectories`: the fitted ``patterns_`` table."""
    return LatentClassTrajectories(**options).fit(trajectories).patterns_
