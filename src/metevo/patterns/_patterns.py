"""Evolution patterns: cluster tumour-burden trajectories into typical courses of disease.

A *pattern* is a group of patients whose tumour burden evolves alike after treatment start
(deep response, response then relapse, progression, stable disease ...). The estimator
:class:`EvolutionPatterns` follows the scikit-learn contract (``fit`` returns ``self``, learned
state ends with ``_``, ``predict`` checks it is fitted); :func:`evolution_patterns` is its
one-call twin returning the tidy ``patterns`` table.

Representation (see :mod:`metevo.patterns._features`): log-ratio of the burden to baseline as a
function of days since treatment start, interpolated onto a common grid up to a horizon that
at least ``min_followup_fraction`` of the patients complete, masked after each patient's last
visit, plus the fraction of the window followed as a feature (dropout is informative: patients
leave at progression or death). The default method, masked k-means, compares two curves on the
days both are observed only; late centroid points are the mean of the members still followed
and their *support* (fraction observed) is kept in :attr:`EvolutionPatterns.trajectory_support_`.
Set ``dropout_weight=0`` to see the effect of ignoring dropout. The multivariate representation
adds the burden's rise over its running nadir as a channel, and a responding pattern whose
members mostly left follow-up at a rise of >= 20 % over their own nadir is named "response then
relapse".

Methods
-------
``"kmeans"`` (default)
    masked k-means on the grid (``representation="log_ratio"`` or ``"multivariate"``).
``"euclidean"``, ``"dtw"``, ``"softdtw"``
    tslearn ``TimeSeriesKMeans`` on the grid with the last value carried forward (tslearn
    ignores time stamps and rejects gaps except for DTW), or, for ``"dtw"``/``"softdtw"`` with
    ``representation="sequence"``, on the raw variable-length visit sequences.
``"kshape"``
    tslearn ``KShape`` (z-normalises each series: shape only, depth of response is lost).
``"gmm"``
    scikit-learn ``GaussianMixture`` on kinetics features (``representation="kinetics"``):
    depth of response, time to nadir, regrowth rate, early change.

The number of patterns (``n_patterns="auto"``) is chosen over ``k_range`` from silhouette,
Calinski-Harabasz, BIC (mixture only) and bootstrap stability (adjusted Rand index between the
fit on all patients and refits on bootstrap samples, predicted on all patients): the k with the
best silhouette among those whose mean stability reaches ``stability_threshold``. All figures
are in :attr:`EvolutionPatterns.selection_`.

Landmark mode (``landmark_days=D``) uses only scans up to ``D + visit_tolerance_days`` and a grid
ending at ``D``; patterns fitted that way can enter a survival model counted from the landmark
without guarantee-time bias (:mod:`metevo.survival` refuses a model whose horizon exceeds the
landmark).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd

from metevo.columns import PatternSelection
from metevo.patterns import _features as pf
from metevo.patterns._match import check_names
from metevo.patterns._names import (
    MIN_SUPPORT,
    MIXED_SPREAD,
    _unique_names,
    name_pattern,
    name_relapses,
)
from metevo.patterns._patterns_base import (
    _ALLOWED,
    _DEFAULT_REPRESENTATION,
    METHODS,
    REPRESENTATIONS,
    _PatternsBase,
)

__all__ = ["EvolutionPatterns", "evolution_patterns"]

SELECTION_COLUMNS = PatternSelection.COLUMNS



class EvolutionPatterns(_PatternsBase):
    """Typical patterns of tumour-burden evolution, fitted on ``patient_trajectories``.

    Parameters
    ----------
    n_patterns : int or "auto"
        Number of patterns, or ``"auto"`` to choose it over ``k_range`` (see module docstring).
    method : {"kmeans", "euclidean", "dtw", "softdtw", "kshape", "gmm"}
    representation : {"log_ratio", "multivariate", "kinetics", "sequence"} or None
        None picks ``"kinetics"`` for ``"gmm"`` and ``"log_ratio"`` otherwise.
    value_column : str
        Burden column of ``patient_trajectories`` (``"target_sum_mm"`` or
        ``"total_volume_ml"``); first channel of the multivariate representation.
    channels : tuple of str or None
        Columns of the multivariate representation (default: target sum, total volume and
        lesion count, where present, plus ``"log_ratio_over_nadir"``, the first channel's rise
        over its running nadir, and the lesion spread when ``lesion_trajectories`` are given).
        Size and count columns enter as log-ratios, others (texture summaries) as differences
        from baseline; each is scaled to the spread of the first channel. The over-nadir
        channel is what RECIST 1.1 progression is defined on (section 4.3.1); it tells a
        response that relapses (rise from a low nadir) from one that lasts, which the
        log-ratio to baseline alone confuses once relapsing patients leave follow-up.
    k_range : (int, int)
        Smallest and largest k tried when ``n_patterns="auto"``.
    horizon_days : float or "auto"
        End of the common window; ``"auto"``: the follow-up reached by at least
        ``min_followup_fraction`` of the patients. Ignored in landmark mode (horizon = landmark).
    grid_step_days : float
        Spacing of the common day grid (28 = every 4 weeks).
    landmark_days : float or None
        Landmark mode: only scans up to ``landmark_days + visit_tolerance_days`` are used.
    visit_tolerance_days : float
        Visit window after the landmark. 0 (default): only scans on or before the landmark,
        so nothing seen after it shapes a pattern used in a survival analysis from the
        landmark. A positive window lets a late "24-week CT" (day 175 for 168) count, at the
        price of look-ahead: a progression scan inside the window both shapes the pattern and
        is the event.
    min_followup_fraction : float
        Fraction of patients that must complete the automatic window: 0.25 ends it at the 75th
        percentile of the patients' last visit day (from the cohort, long enough to see a
        relapse; each curve is masked after its own last visit). The rule is in the
        ``horizon_rule`` column of ``selection_``.
    dropout_weight : float
        Weight of the "fraction of the window not followed" feature (0 ignores dropout). The
        default is small: leaving at progression is already visible in the over-nadir channel
        of the multivariate representation, and dropout also counts deaths and censoring,
        which are not pattern-specific (on the synthetic cohort, ARI of the planted patterns
        0.83 at 0.1, 0.82 at 0.25, 0.79 at 0.5).
    min_ratio : float or None
        Floor of the size ratio to baseline (0.25: shrinkage beyond 75 % counts as 75 %).
        Below it, sums are dominated by RECIST's 5 mm "too small to measure" default and
        disappeared lesions (RECIST 1.1 appendix I), and the spread of near-complete responses
        would otherwise split them into several patterns. None keeps the full depth.
    n_bootstrap : int
        Bootstrap refits per k for the stability index (0 skips stability).
    stability_threshold : float
        Minimum mean bootstrap adjusted Rand index for a k to be chosen.
    min_pattern_share, min_pattern_size : float, int
        With ``n_patterns="auto"``, a k is chosen only when its smallest pattern holds at least
        this share of the patients and this many patients (when no k qualifies, the k with the
        largest smallest pattern). Set both to 0 to allow tiny patterns.
    n_init : int
        Restarts of each clustering.
    silhouette_sample : int
        Patients (random, fixed) the silhouette is computed on.
    random_state : int or None

    Attributes
    ----------
    patient_ids_ : ndarray of str, shape (n_patients,)
        Patients with a trajectory, sorted; ``labels_`` and ``confidence_`` follow this order.
    labels_ : ndarray of int, shape (n_patients,)
        Pattern id, 0 = best outcome (lowest mean burden over the window).
    names_ : list of str
        Pattern names by id.
    confidence_ : ndarray of float, shape (n_patients,)
        Posterior probability of the assigned pattern (mixture) or its equal-weight Gaussian
        analogue from the distances to the centroids (k-means methods), in [1/k, 1].
    cluster_centers_ : ndarray
        Centroids in the method's space, by pattern id.
    trajectory_centers_, trajectory_support_ : ndarray, shape (k, n_grid)
        Mean log-ratio curve of each pattern's members on ``grid_days_`` and the fraction of
        members still followed at each grid day.
    grid_days_ : ndarray of float
        Days since treatment start of the grid.
    curves_ : ndarray, shape (n_patients, n_grid)
        Each patient's log-ratio of ``value_column`` on the grid (NaN after the last visit).
    selection_ : DataFrame
        One row per k tried (``pattern_selection`` table).
    excluded_ : DataFrame
        Patients without a trajectory and why (``patient_id``, ``n_visits``, ``reason``).

    Examples
    --------
    >>> from metevo.datasets import make_synthetic_trajectories
    >>> data = make_synthetic_trajectories(200, seed=0)
    >>> model = EvolutionPatterns(n_patterns=4, random_state=0).fit(
    ...     data["patient_trajectories"])
    >>> len(model.names_)
    4
    """

    def __init__(
        self,
        n_patterns: int | Literal["auto"] = "auto",
        *,
        method: str = "kmeans",
        representation: str | None = None,
        value_column: str = pf.TARGET_SUM_MM,
        channels: tuple[str, ...] | None = None,
        k_range: tuple[int, int] = (2, 8),
        horizon_days: float | Literal["auto"] = "auto",
        grid_step_days: float = 28.0,
        landmark_days: float | None = None,
        visit_tolerance_days: float = 0.0,
        min_followup_fraction: float = 0.25,
        dropout_weight: float = 0.1,
        min_ratio: float | None = 0.25,
        n_bootstrap: int = 10,
        stability_threshold: float = 0.75,
        min_pattern_share: float = 0.05,
        min_pattern_size: int = 5,
        n_init: int = 4,
        silhouette_sample: int = 2000,
        random_state: int | None = None,
    ) -> None:
        self.n_patterns = n_patterns
        self.method = method
        self.representation = representation
        self.value_column = value_column
        self.channels = channels
        self.k_range = k_range
        self.horizon_days = horizon_days
        self.grid_step_days = grid_step_days
        self.landmark_days = landmark_days
        self.visit_tolerance_days = visit_tolerance_days
        self.min_followup_fraction = min_followup_fraction
        self.dropout_weight = dropout_weight
        self.min_ratio = min_ratio
        self.n_bootstrap = n_bootstrap
        self.stability_threshold = stability_threshold
        self.min_pattern_share = min_pattern_share
        self.min_pattern_size = min_pattern_size
        self.n_init = n_init
        self.silhouette_sample = silhouette_sample
        self.random_state = random_state

    # ------------------------------------------------------------------ validation
    def _check_params(self) -> str:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}; found {self.method!r}.")
        rep = self.representation or _DEFAULT_REPRESENTATION.get(self.method, "log_ratio")
        if rep not in REPRESENTATIONS:
            raise ValueError(
                f"representation must be one of {REPRESENTATIONS} or None; found {rep!r}."
            )
        if rep not in _ALLOWED[self.method]:
            raise ValueError(
                f"method={self.method!r} cannot use representation={rep!r}; use one of "
                f"{_ALLOWED[self.method]}."
            )
        if self.n_patterns != "auto":
            if isinstance(self.n_patterns, bool) or not isinstance(
                self.n_patterns, int | np.integer
            ):
                raise TypeError(
                    f"n_patterns must be an int >= 2 or 'auto'; found {self.n_patterns!r}."
                )
            if self.n_patterns < 2:
                raise ValueError(f"n_patterns must be >= 2 or 'auto'; found {self.n_patterns}.")
        lo, hi = self.k_range
        if not (2 <= lo <= hi):
            raise ValueError(f"k_range must satisfy 2 <= low <= high; found {self.k_range}.")
        if self.landmark_days is not None and self.landmark_days <= 0:
            raise ValueError(
                f"landmark_days must be > 0 days after treatment start; found {self.landmark_days}."
            )
        if not 0 < self.min_followup_fraction <= 1:
            raise ValueError(
                f"min_followup_fraction must be in (0, 1]; found {self.min_followup_fraction}."
            )
        return rep

    def _channels(self, rep: str) -> tuple[str, ...]:
        if rep == "multivariate":
            return tuple(self.channels or pf.MULTIVARIATE_DEFAULT)
        return (self.value_column,)

    # ------------------------------------------------------------------ representation
    def _with_spread(
        self,
        trajectories: pd.DataFrame,
        lesion_trajectories: pd.DataFrame | None,
        *,
        fitted: bool,
    ) -> pd.DataFrame:
        """Add the lesion-spread column when the representation uses it."""
        if fitted:
            wanted = pf.LESION_SPREAD in self.channels_
        else:
            wanted = (
                lesion_trajectories is not None
                and self._representation_ == "multivariate"
                and (self.channels is None or pf.LESION_SPREAD in self.channels)
            )
            self._use_spread_ = wanted
        if not wanted:
            return trajectories
        if lesion_trajectories is None:
            raise ValueError(
                "this model was fitted with lesion_trajectories (lesion spread channel); pass "
                "lesion_trajectories= to predict/assign as well."
            )
        spread = pf.lesion_spread(lesion_trajectories, min_ratio=self.min_ratio)
        t = trajectories.copy()
        t[pf.PATIENT_ID] = t[pf.PATIENT_ID].astype(str)
        keys = [k for k in (pf.PATIENT_ID, pf.TIMEPOINT) if k in t.columns and k in spread]
        if len(keys) < 2:
            keys = [pf.PATIENT_ID, pf.STUDY_DAY]
        t = t.drop(columns=[pf.LESION_SPREAD], errors="ignore").merge(
            spread[[*keys, pf.LESION_SPREAD]], on=keys, how="left"
        )
        return t

    def _represent(self, trajectories: pd.DataFrame, *, fitted: bool) -> pf.Representation:
        if fitted:
            channels = self.channels_
        else:
            channels = self._channels(self._representation_)
            if self._representation_ == "multivariate" and self.channels is None:
                channels = tuple(c for c in channels if c in trajectories.columns)
                channels = channels or (self.value_column,)
                channels = (*channels, pf.OVER_NADIR)
                if self._use_spread_ and pf.LESION_SPREAD not in channels:
                    channels = (*channels, pf.LESION_SPREAD)
            self.channels_ = channels
        table = pf.check_trajectories(trajectories, channels)
        return pf.build_representation(
            table,
            channels,
            grid_days=self.grid_days_ if fitted else None,
            horizon_days=self.horizon_days,
            grid_step_days=self.grid_step_days,
            landmark_days=self.landmark_days,
            visit_tolerance_days=self.visit_tolerance_days,
            min_followup_fraction=self.min_followup_fraction,
            min_ratio=self.min_ratio,
        )

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        trajectories: pd.DataFrame,
        y: None = None,
        *,
        lesion_trajectories: pd.DataFrame | None = None,
    ) -> EvolutionPatterns:
        """Fit the patterns on a ``patient_trajectories`` table.

        Parameters
        ----------
        trajectories : DataFrame
            One row per patient x visit with ``patient_id``, ``study_day`` (or ``days``) and
            the burden column(s).
        y : None
            Ignored (scikit-learn signature).
        lesion_trajectories : DataFrame or None
            Lesion-level table (``trajectories.parquet``: ``patient_id``, ``track_id``,
            ``timepoint``, ``study_day``, ``axial_ld_mm``). With the multivariate
            representation it adds the within-patient spread of lesion log-ratios as a channel
            (dissociated response), and a pattern whose mean spread exceeds
            ``log(1.2 / 0.5)`` at its last supported grid day is named "mixed response".

        Returns
        -------
        self
        """
        from sklearn.metrics import adjusted_rand_score

        del y
        self._representation_ = self._check_params()
        trajectories = self._with_spread(trajectories, lesion_trajectories, fitted=False)
        rep = self._represent(trajectories, fitted=False)
        self.grid_days_ = rep.grid_days
        self.horizon_days_ = float(rep.grid_days[-1])
        if self.landmark_days is not None:
            self.horizon_rule_ = "landmark: the grid ends at the landmark day"
        elif self.horizon_days == "auto":
            self.horizon_rule_ = (
                f"{1 - self.min_followup_fraction:.0%} quantile of the patients' last visit day"
                f" (floored to the {self.grid_step_days:g}-day grid)"
            )
        else:
            self.horizon_rule_ = "fixed by horizon_days"
        self.excluded_ = rep.excluded
        n = rep.patient_ids.size
        if n < 3:
            raise ValueError(
                f"only {n} patient(s) have a trajectory (>= 2 visits from baseline"
                + (f" up to the landmark {self.landmark_days} d" if self.landmark_days else "")
                + f"); {len(rep.excluded)} excluded. Patterns need at least 3 patients."
            )
        primary = rep.values[:, 0, :]
        sd = np.nanstd(rep.values, axis=(0, 2))
        sd = np.where(np.isfinite(sd) & (sd > 0), sd, 1.0)
        self.channel_scales_ = sd / sd[0]
        if self.method == "gmm":
            feats = pf.kinetics_features(rep).to_numpy(float)
            self.feature_mean_ = feats.mean(axis=0)
            scale = feats.std(axis=0)
            self.feature_scale_ = np.where(scale > 0, scale, 1.0)
        data = self._design(rep)
        n_distinct = self._n_distinct(data)
        if n_distinct < 2:
            raise ValueError(
                f"all {n} patients have the same trajectory representation; there is only one "
                "pattern. Check value_column (constant burden?) or the input table."
            )
        if self.n_patterns == "auto":
            lo, hi = self.k_range
            ks = list(range(lo, min(hi, n - 1, n_distinct) + 1))
            if not ks:
                raise ValueError(
                    f"fewer patients with a trajectory ({n}, {n_distinct} distinct) than the "
                    f"smallest number of patterns tried ({lo}); lower k_range or add patients."
                )
        else:
            k = int(self.n_patterns)
            if n <= k or n_distinct < k:
                raise ValueError(
                    f"fewer patients with a trajectory ({n}, {n_distinct} distinct) than "
                    f"patterns requested (n_patterns={k}); lower n_patterns or use 'auto'."
                )
            ks = [k]
        rng = np.random.default_rng(self.random_state)
        sample = np.sort(rng.choice(n, size=min(n, self.silhouette_sample), replace=False))
        rows, fits = [], {}
        for k in ks:
            fitted = self._fit_k(data, k, rng, self.n_init)
            labels = self._labels(fitted, data)
            scores = self._scores(fitted, data, labels, sample)
            aris = []
            for _ in range(self.n_bootstrap):
                idx = rng.integers(n, size=n)
                boot = self._fit_k(self._take(data, idx), k, rng, 1)
                aris.append(adjusted_rand_score(labels, self._labels(boot, data)))
            sizes = np.bincount(labels, minlength=k)
            rows.append(
                {
                    "k": k,
                    **scores,
                    "inertia": float(fitted.inertia) if hasattr(fitted, "inertia") else np.nan,
                    "stability_ari_mean": float(np.mean(aris)) if aris else np.nan,
                    "stability_ari_low": float(np.quantile(aris, 0.05)) if aris else np.nan,
                    "min_pattern_size": int(sizes.min()),
                    "smallest_class_share": float(sizes.min() / n),
                    "n_patients": n,
                }
            )
            fits[k] = (fitted, labels)
        sel = pd.DataFrame(rows)
        best_k = self._choose_k(sel)
        sel["selected"] = sel["k"] == best_k
        fitted, labels = fits[best_k]
        self._finish(rep, data, fitted, labels, best_k, primary)
        sel.insert(0, "method", self.method)
        sel.insert(1, "representation", self._representation_)
        sel["landmark_days"] = np.nan if self.landmark_days is None else float(self.landmark_days)
        sel["horizon_days"] = self.horizon_days_
        sel["horizon_rule"] = self.horizon_rule_
        self.selection_ = sel.reindex(columns=list(SELECTION_COLUMNS))
        return self

    @staticmethod
    def _take(data: Any, idx: np.ndarray) -> Any:
        if isinstance(data, tuple):
            return tuple(d[idx] for d in data)
        return data[idx]

    def _n_distinct(self, data: Any) -> int:
        arr = data[0] if isinstance(data, tuple) else data
        flat = np.nan_to_num(np.asarray(arr, dtype=float).reshape(len(arr), -1), nan=-999.0)
        return int(np.unique(np.round(flat, 9), axis=0).shape[0])

    def _choose_k(self, sel: pd.DataFrame) -> int:
        """Choose k; adds ``eligible`` and ``reason`` (why each k was or was not chosen)."""
        n = int(sel["n_patients"].iloc[0])
        need = max(int(self.min_pattern_size), int(np.ceil(self.min_pattern_share * n)))
        big = sel["min_pattern_size"] >= need
        sel["eligible"] = big
        size_rule = f"smallest pattern >= {need} patients"
        if len(sel) == 1:
            sel["reason"] = "chosen: k fixed by n_patterns"
            return int(sel["k"].iloc[0])
        fallback = ""
        if not big.any():  # no k qualifies: the one whose smallest pattern is largest
            big = sel["min_pattern_size"] == sel["min_pattern_size"].max()
            fallback = f"no k has a {size_rule}; "
        score = sel["silhouette"].fillna(-np.inf).where(big, -np.inf)
        stab = sel["stability_ari_mean"]
        stable = (stab >= self.stability_threshold) & big
        if self.n_bootstrap > 0 and stable.any():
            best = int(sel.loc[score.where(stable, -np.inf).idxmax(), "k"])
            why = (
                f"chosen: best silhouette among k with bootstrap stability ARI >= "
                f"{self.stability_threshold:g} and {size_rule}"
            )
        elif self.n_bootstrap > 0:
            best = int(sel.loc[stab.where(big, -np.inf).idxmax(), "k"])
            why = (
                f"chosen (fallback): no k reached bootstrap stability ARI "
                f"{self.stability_threshold:g}; the most stable k with {size_rule}"
            )
        else:
            best = int(sel.loc[score.idxmax(), "k"])
            why = f"chosen: best silhouette among k with {size_rule}"
        if fallback:
            why = f"chosen (fallback): {fallback}the k with the largest smallest pattern"
        ref = sel.loc[sel["k"] == best].iloc[0]
        reasons = []
        for r in sel.itertuples():
            if r.k == best:
                reasons.append(why)
            elif r.min_pattern_size < need:
                reasons.append(f"not eligible: smallest pattern {r.min_pattern_size} < {need}")
            elif self.n_bootstrap > 0 and r.stability_ari_mean < self.stability_threshold:
                reasons.append(
                    f"bootstrap stability ARI {r.stability_ari_mean:.2f} < "
                    f"{self.stability_threshold:g}"
                )
            else:
                reasons.append(
                    f"silhouette {r.silhouette:.3f} vs {ref['silhouette']:.3f} for k={best}"
                )
        sel["reason"] = reasons
        return best

    def _finish(
        self,
        rep: pf.Representation,
        data: Any,
        fitted: Any,
        labels: np.ndarray,
        k: int,
        primary: np.ndarray,
    ) -> None:
        centers, support = _member_curves(primary, labels, k)
        # order patterns by outcome: lowest mean burden over the supported window first
        score = []
        for j in range(k):
            ok = support[j] >= MIN_SUPPORT
            ok[0] = True
            score.append(float(np.mean(centers[j, ok])))
        order = np.argsort(score, kind="stable")
        remap = np.empty(k, dtype=int)
        remap[order] = np.arange(k)
        self._fitted_ = fitted
        self._order_ = order
        self.n_patterns_ = k
        self.patient_ids_ = rep.patient_ids.astype(str)
        self.labels_ = remap[labels]
        self.trajectory_centers_ = centers[order]
        self.trajectory_support_ = support[order]
        names = [name_pattern(c, s) for c, s in zip(centers[order], support[order], strict=True)]
        if pf.LESION_SPREAD in self.channels_:
            spread, _ = _member_curves(
                rep.values[:, self.channels_.index(pf.LESION_SPREAD), :], labels, k
            )
            for i, j in enumerate(order):
                ok = support[j] >= MIN_SUPPORT
                ok[0] = True
                if spread[j, int(np.flatnonzero(ok)[-1])] >= MIXED_SPREAD:
                    names[i] = "mixed response"
        final_rise = np.array([float(y[-1] - np.min(y)) for y in rep.visit_values])
        names = name_relapses(names, [final_rise[labels == j] for j in order])
        self.own_nadir_ratio_ = np.exp([float(np.min(y)) for y in rep.visit_values])
        self.cluster_centers_ = self._method_centers(fitted)[order]
        dist = self._distances(fitted, data)[:, order]
        self._sigma2_ = self._pooled_variance(dist, self.labels_)
        self.probabilities_ = self._probabilities(dist)
        self.confidence_ = self.probabilities_.max(axis=1)
        self.names_, self.n_members_not_responding_ = check_names(
            _unique_names(names), self.labels_, self.confidence_, self.own_nadir_ratio_
        )
        self.n_visits_ = rep.n_visits
        self.followup_days_ = rep.followup_days
        self.curves_ = primary

def _member_curves(primary: np.ndarray, labels: np.ndarray, k: int) -> tuple[np.ndarray, ...]:
    """Masked mean curve and support (fraction observed) of each cluster on the grid."""
    centers = np.zeros((k, primary.shape[1]))
    support = np.zeros((k, primary.shape[1]))
    for j in range(k):
        m = primary[labels == j]
        obs = np.isfinite(m)
        cnt = obs.sum(axis=0)
        with np.errstate(invalid="ignore"):
            centers[j] = np.where(cnt > 0, np.nansum(m, axis=0) / np.maximum(cnt, 1), np.nan)
        support[j] = cnt / max(len(m), 1)
        row = centers[j]
        if np.isnan(row).any():  # carry forward where no member is followed
            idx = np.where(np.isfinite(row), np.arange(row.size), 0)
            np.maximum.accumulate(idx, out=idx)
            centers[j] = np.nan_to_num(row[idx])
    return centers, support


def evolution_patterns(
    trajectories: pd.DataFrame,
    n_patterns: int | Literal["auto"] = "auto",
    **options: Any,
) -> pd.DataFrame:
    """Fit :class:`EvolutionPatterns` and return its ``patterns`` table (functional twin).

    Parameters
    ----------
    trajectories : DataFrame
        ``patient_trajectories`` table.
    n_patterns : int or "auto"
    **options
        Keyword arguments of :class:`EvolutionPatterns`.

    Returns
    -------
    DataFrame
        One row per patient (``data_dictionary/patterns.schema.json``); patients without a
        trajectory have an empty pattern and an ``excluded_reason``.

    Examples
    --------
    >>> from metevo.datasets import make_synthetic_trajectories
    >>> data = make_synthetic_trajectories(100, seed=1)
    >>> table = evolution_patterns(data["patient_trajectories"], 3, random_state=0)
    >>> sorted(table["pattern_id"].dropna().unique().tolist())
    [0, 1, 2]
    """
    return EvolutionPatterns(n_patterns, **options).fit(trajectories).patterns_
