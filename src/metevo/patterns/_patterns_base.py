"""Back-ends and outputs shared by :class:`~metevo.patterns.EvolutionPatterns`.

The per-method pieces (k-means on masked curves, DTW / soft-DTW / k-Shape via tslearn, Gaussian
mixture on kinetics features): their design matrix, one fit for a given k, distances, labels and
the k-selection scores; and what a fitted model gives back (prediction, assignment with
confidence, the ``patterns_`` table, ``summary`` and reprs). Kept apart from the estimator's
parameters and ``fit`` so that each module holds one concept.
"""

from __future__ import annotations

import html
from typing import Any

import numpy as np
import pandas as pd

from metevo.exceptions import NotFittedError
from metevo.patterns import _features as pf
from metevo.patterns._masked_kmeans import (
    masked_calinski_harabasz,
    masked_kmeans,
    masked_pairwise_distances,
    masked_sq_distances,
)
from metevo.patterns._names import (
    MIN_SUPPORT,
)

__all__ = ["METHODS", "REPRESENTATIONS"]


METHODS = ("kmeans", "euclidean", "dtw", "softdtw", "kshape", "gmm")
REPRESENTATIONS = ("log_ratio", "multivariate", "kinetics", "sequence")
_DEFAULT_REPRESENTATION = {"gmm": "kinetics"}
_ALLOWED = {
    "kmeans": ("log_ratio", "multivariate"),
    "euclidean": ("log_ratio", "multivariate"),
    "dtw": ("log_ratio", "multivariate", "sequence"),
    "softdtw": ("log_ratio", "multivariate", "sequence"),
    "kshape": ("log_ratio",),
    "gmm": ("kinetics",),
}


def _import_tslearn(module: str) -> Any:
    """Import a tslearn module without its "h5py not installed" notice (not used here)."""
    import importlib
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="h5py not installed", category=UserWarning)
        return importlib.import_module(f"tslearn.{module}")




def clone_estimator(estimator: Any, **overrides: Any) -> Any:
    """A new unfitted estimator of the same class with ``estimator``'s constructor arguments and
    ``overrides`` applied (those the class accepts): refits, cross-validation, landmark fits."""
    import inspect

    params = inspect.signature(type(estimator).__init__).parameters
    kwargs = {p: getattr(estimator, p) for p in params if p != "self" and hasattr(estimator, p)}
    kwargs.update({k: v for k, v in overrides.items() if k in params})
    return type(estimator)(**kwargs)

class _PatternsBase:
    """Method back-ends and fitted-model outputs of :class:`EvolutionPatterns` (a mixin)."""

    def _design(self, rep: pf.Representation) -> Any:
        """The method's input array(s) for the patients of ``rep``."""
        name = self._representation_
        if self.method == "kmeans":
            return pf.flatten(rep, self.channel_scales_, self.dropout_weight)
        if self.method == "gmm":
            feats = pf.kinetics_features(rep).to_numpy(float)
            return (feats - self.feature_mean_) / self.feature_scale_
        if name == "sequence":
            return pf.sequences(rep)
        return pf.forward_filled(rep, self.channel_scales_)

    # ------------------------------------------------------------------ one clustering
    def _fit_k(self, data: Any, k: int, rng: np.random.Generator, n_init: int) -> Any:
        if self.method == "kmeans":
            x, w = data
            return masked_kmeans(x, w, k, n_init=n_init, rng=rng)
        seed = int(rng.integers(2**31 - 1))
        if self.method == "gmm":
            from sklearn.mixture import GaussianMixture

            return GaussianMixture(
                k, covariance_type="full", n_init=n_init, random_state=seed, reg_covar=1e-4
            ).fit(data)
        if self.method == "kshape":
            KShape = _import_tslearn("clustering").KShape  # noqa: N806

            return KShape(n_clusters=k, n_init=n_init, random_state=seed).fit(data)
        TimeSeriesKMeans = _import_tslearn("clustering").TimeSeriesKMeans  # noqa: N806

        return TimeSeriesKMeans(
            n_clusters=k, metric=self.method, n_init=n_init, random_state=seed, max_iter=50
        ).fit(data)

    def _distances(self, fitted: Any, data: Any) -> np.ndarray:
        """Squared distances (n, k) to the centroids, or negative log-posteriors (mixture)."""
        if self.method == "kmeans":
            x, w = data
            return masked_sq_distances(x, w, fitted.centers)
        if self.method == "gmm":
            return -np.log(np.clip(fitted.predict_proba(data), 1e-300, None))
        if self.method in ("dtw", "softdtw"):
            cdist_dtw = _import_tslearn("metrics").cdist_dtw

            return cdist_dtw(data, fitted.cluster_centers_) ** 2
        if self.method == "kshape":
            return np.asarray(fitted._cross_dists(data)) ** 2
        centers = fitted.cluster_centers_.reshape(len(fitted.cluster_centers_), -1)
        flat = data.reshape(len(data), -1)
        return ((flat[:, None, :] - centers[None]) ** 2).sum(axis=2)

    def _labels(self, fitted: Any, data: Any) -> np.ndarray:
        return self._distances(fitted, data).argmin(axis=1)

    def _scores(self, fitted: Any, data: Any, labels: np.ndarray, sample: np.ndarray) -> dict:
        from sklearn.metrics import calinski_harabasz_score, silhouette_score

        k = int(labels.max()) + 1 if labels.size else 0
        out = {"silhouette": np.nan, "calinski_harabasz": np.nan, "bic": np.nan}
        ls = labels[sample]
        if np.unique(labels).size < 2:
            return out
        if self.method == "kmeans":
            x, w = data
            if np.unique(ls).size >= 2:
                d = masked_pairwise_distances(x[sample], w[sample])
                out["silhouette"] = float(silhouette_score(d, ls, metric="precomputed"))
            out["calinski_harabasz"] = masked_calinski_harabasz(x, w, labels, fitted.centers)
        elif self.method == "gmm":
            if np.unique(ls).size >= 2:
                out["silhouette"] = float(silhouette_score(data[sample], ls))
            out["calinski_harabasz"] = float(calinski_harabasz_score(data, labels))
            out["bic"] = float(fitted.bic(data))
        else:
            ts_silhouette = _import_tslearn("clustering").silhouette_score

            metric = "euclidean" if self.method in ("euclidean", "kshape") else self.method
            if np.unique(ls).size >= 2:
                out["silhouette"] = float(ts_silhouette(data[sample], ls, metric=metric))
            if self._representation_ != "sequence":
                out["calinski_harabasz"] = float(
                    calinski_harabasz_score(data.reshape(len(data), -1), labels)
                )
        del k
        return out


    def _method_centers(self, fitted: Any) -> np.ndarray:
        if self.method == "kmeans":
            return fitted.centers
        if self.method == "gmm":
            return fitted.means_
        return np.asarray(fitted.cluster_centers_)

    def _pooled_variance(self, dist: np.ndarray, labels: np.ndarray) -> float:
        if self.method == "gmm":
            return 1.0
        own = dist[np.arange(len(labels)), labels]
        dim = self.cluster_centers_[0].size
        v = float(own.mean() / max(dim, 1))
        return v if v > 0 else 1.0

    def _probabilities(self, dist: np.ndarray) -> np.ndarray:
        """Posterior (mixture) or equal-weight Gaussian analogue (k-means) per pattern."""
        if self.method == "gmm":
            logp = -dist
        else:
            dim = self.cluster_centers_[0].size
            logp = -dist / (2.0 * self._sigma2_ * max(dim, 1))
        logp = logp - logp.max(axis=1, keepdims=True)
        p = np.exp(logp)
        return p / p.sum(axis=1, keepdims=True)

    def _confidence(self, dist: np.ndarray) -> np.ndarray:
        return self._probabilities(dist).max(axis=1)

    # ------------------------------------------------------------------ predict
    def _check_fitted(self) -> None:
        if not hasattr(self, "labels_"):
            raise NotFittedError(
                "This EvolutionPatterns instance is not fitted yet; call fit(trajectories) first."
            )

    def _assign(
        self, trajectories: pd.DataFrame, lesion_trajectories: pd.DataFrame | None = None
    ) -> tuple[pf.Representation, np.ndarray, Any]:
        self._check_fitted()
        trajectories = self._with_spread(trajectories, lesion_trajectories, fitted=True)
        rep = self._represent(trajectories, fitted=True)
        if rep.patient_ids.size == 0:
            return rep, np.empty((0, self.n_patterns_)), None
        data = self._design(rep)
        dist = self._distances(self._fitted_, data)[:, self._order_]
        return rep, dist, data

    def predict(
        self, trajectories: pd.DataFrame, *, lesion_trajectories: pd.DataFrame | None = None
    ) -> pd.Series:
        """Pattern id of every patient in ``trajectories`` (-1: no trajectory).

        ``lesion_trajectories`` is needed when the model was fitted with it.

        Returns
        -------
        Series of int indexed by ``patient_id`` (sorted).
        """
        rep, dist, _ = self._assign(trajectories, lesion_trajectories)
        ids = pd.Series(dist.argmin(axis=1) if len(dist) else [], index=rep.patient_ids, dtype=int)
        extra = pd.Series(-1, index=rep.excluded[pf.PATIENT_ID].to_numpy(), dtype=int)
        out = pd.concat([ids, extra]).sort_index()
        out.index.name = pf.PATIENT_ID
        return out

    def assign(
        self, trajectories: pd.DataFrame, *, lesion_trajectories: pd.DataFrame | None = None
    ) -> pd.DataFrame:
        """The tidy ``patterns`` table for ``trajectories`` (one row per patient).

        Columns: see ``data_dictionary/patterns.schema.json``.
        """
        rep, dist, _ = self._assign(trajectories, lesion_trajectories)
        labels = dist.argmin(axis=1) if len(dist) else np.empty(0, dtype=int)
        conf = self._confidence(dist) if len(dist) else np.empty(0)
        return self._table(rep, labels, conf)

    def _table(self, rep: pf.Representation, labels: np.ndarray, conf: np.ndarray) -> pd.DataFrame:
        from metevo.columns import Patterns as P

        inc = pd.DataFrame(
            {
                P.PATIENT_ID: rep.patient_ids.astype(str),
                P.PATTERN: [self.names_[i] for i in labels],
                P.PATTERN_ID: pd.array(labels, dtype="Int64"),
                P.CONFIDENCE: conf.astype(float),
                P.N_VISITS: pd.array(rep.n_visits, dtype="Int64"),
                P.FOLLOWUP_DAYS: rep.followup_days.astype(float),
                P.OWN_NADIR_RATIO: (
                    np.exp([float(np.min(v)) for v in rep.visit_values])
                    if rep.visit_values
                    else self.own_nadir_ratio_
                ),
                P.EXCLUDED_REASON: pd.Series([None] * len(labels), dtype="string"),
            }
        )
        exc = rep.excluded
        exc_df = pd.DataFrame(
            {
                P.PATIENT_ID: exc[pf.PATIENT_ID].astype(str).to_numpy(),
                P.PATTERN: pd.Series([None] * len(exc), dtype=object),
                P.PATTERN_ID: pd.array([pd.NA] * len(exc), dtype="Int64"),
                P.CONFIDENCE: np.full(len(exc), np.nan),
                P.N_VISITS: exc["n_visits"].astype("Int64").to_numpy(),
                P.FOLLOWUP_DAYS: np.full(len(exc), np.nan),
                P.OWN_NADIR_RATIO: np.full(len(exc), np.nan),
                P.EXCLUDED_REASON: exc["reason"].astype("string").to_numpy(),
            }
        )
        frames = [f for f in (inc, exc_df) if len(f)]
        out = pd.concat(frames, ignore_index=True) if frames else inc
        out[P.PATTERN] = out[P.PATTERN].astype("string")
        out[P.EXCLUDED_REASON] = out[P.EXCLUDED_REASON].astype("string")
        out[P.LANDMARK_DAYS] = np.nan if self.landmark_days is None else float(self.landmark_days)
        out[P.HORIZON_DAYS] = self.horizon_days_
        out[P.METHOD] = self.method
        out[P.REPRESENTATION] = self._representation_
        return out.sort_values(P.PATIENT_ID, kind="stable").reset_index(drop=True)

    @property
    def patterns_(self) -> pd.DataFrame:
        """The ``patterns`` table of the training patients."""
        self._check_fitted()
        rep = pf.Representation(
            patient_ids=self.patient_ids_,
            grid_days=self.grid_days_,
            channels=(),
            values=np.empty((0, 0, 0)),
            followup_days=self.followup_days_,
            n_visits=self.n_visits_,
            excluded=self.excluded_,
        )
        return self._table(rep, self.labels_, self.confidence_)

    @property
    def posteriors_(self) -> pd.DataFrame:
        """``pattern_posteriors`` table: probability of each pattern per training patient."""
        self._check_fitted()
        from metevo.columns import PatternPosteriors as PP

        k = self.n_patterns_
        return pd.DataFrame(
            {
                PP.PATIENT_ID: np.repeat(self.patient_ids_, k),
                PP.PATTERN_ID: pd.array(np.tile(np.arange(k), len(self.patient_ids_)), "Int64"),
                PP.PATTERN: pd.array(self.names_ * len(self.patient_ids_), dtype="string"),
                PP.POSTERIOR: self.probabilities_.ravel(),
            }
        )

    def summary_table(self) -> pd.DataFrame:
        """One row per pattern (``pattern_summary`` layout): size, course, name check."""
        from metevo.patterns._match import course_features

        base = self.summary
        feats = [
            course_features(self.grid_days_, np.where(s >= MIN_SUPPORT, c, np.nan))
            for c, s in zip(self.trajectory_centers_, self.trajectory_support_, strict=True)
        ]
        out = base[["pattern_id", "pattern", "n_patients"]].copy()
        out["proportion"] = out["n_patients"] / len(self.labels_)
        out["mean_confidence"] = base["mean_confidence"]
        for key in feats[0]:
            out[key] = [f[key] for f in feats]
        out["n_members_not_responding"] = self.n_members_not_responding_
        out["method"] = self.method
        out["landmark_days"] = np.nan if self.landmark_days is None else self.landmark_days
        out["horizon_days"] = self.horizon_days_
        return out

    def fixed_k_copy(self) -> Any:
        """An unfitted copy with the fitted k and horizon fixed and no bootstrap (refits,
        cross-validation)."""
        self._check_fitted()
        return clone_estimator(
            self, n_patterns=self.n_patterns_, n_bootstrap=0, horizon_days=self.horizon_days_
        )

    @property
    def summary(self) -> pd.DataFrame:
        """One row per pattern: id, name, size, mean confidence, nadir and final log-ratio."""
        self._check_fitted()
        rows = []
        for j, name in enumerate(self.names_):
            members = self.labels_ == j
            c, s = self.trajectory_centers_[j], self.trajectory_support_[j]
            ok = s >= MIN_SUPPORT
            ok[0] = True
            last = int(np.flatnonzero(ok)[-1])
            rows.append(
                {
                    "pattern_id": j,
                    "pattern": name,
                    "n_patients": int(members.sum()),
                    "mean_confidence": float(self.confidence_[members].mean()),
                    "nadir_ratio": float(np.exp(np.min(c[: last + 1]))),
                    "final_ratio": float(np.exp(c[last])),
                    "supported_until_days": float(self.grid_days_[last]),
                }
            )
        return pd.DataFrame(rows)

    def __repr__(self) -> str:
        if not hasattr(self, "labels_"):
            return (
                f"EvolutionPatterns(n_patterns={self.n_patterns!r}, method={self.method!r}, "
                f"landmark_days={self.landmark_days!r}, not fitted)"
            )
        sizes = np.bincount(self.labels_, minlength=self.n_patterns_)
        parts = ", ".join(f"{n}: {s}" for n, s in zip(self.names_, sizes, strict=True))
        lm = f", landmark {self.landmark_days:g} d" if self.landmark_days else ""
        return (
            f"EvolutionPatterns({self.method}, {self._representation_}, k={self.n_patterns_}, "
            f"{len(self.labels_)} patients, horizon {self.horizon_days_:g} d{lm}; {parts})"
        )

    def _repr_html_(self) -> str:
        head = f"<p><code>{html.escape(repr(self))}</code></p>"
        if not hasattr(self, "labels_"):
            return head
        return head + self.summary.to_html(index=False, float_format=lambda v: f"{v:.3g}")
