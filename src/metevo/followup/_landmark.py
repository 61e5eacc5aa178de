"""Landmark super-model for dynamic prediction (van Houwelingen, Scand J Stat 2007;34:70-85).

For landmarks ``s`` (study days, every ``landmark_every_days`` up to ``max_landmark_days``), the
patients still at risk at ``s`` enter with the features of the trajectory seen by ``s``
(:mod:`metevo.followup._features`), time counted from ``s`` and administratively censored at the
horizon ``w``. The stacked data sets are fitted by one Cox model (lifelines ``CoxPHFitter``,
sandwich variance clustered on the patient) with landmark-time interactions,

    h(t | x, s) = h0(t) exp( x'(b0 + b1 s' + b2 s'^2) + c1 s' + c2 s'^2 ),   s' = s / s_max,

(``degree=2``; the default ``degree=1`` keeps the linear terms)

so that the effect of every feature and the baseline risk change smoothly with the time of the
visit ("ipl*" super-model). The risk of an event within ``w`` days of a visit at ``s`` is
``1 - exp(-H0(w) exp(lp))``. Intervals are pointwise 95 % delta-method intervals on the linear
predictor (its variance ``x'Vx`` from the robust covariance; the Breslow baseline hazard is taken
as known), mapped through the same formula.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from metevo.exceptions import NotFittedError, StatisticsWarning
from metevo.followup._features import DYNAMIC_FEATURES, landmark_features

TIME, EVENT = "_time", "_event"
Z95 = 1.959963984540054
#: design columns with less variance are dropped (lifelines' own low-variance threshold)
MIN_VARIANCE = 1e-4


def landmark_grid(every_days: float, max_days: float) -> np.ndarray:
    """Landmarks 0, every, 2 every, ... <= max (study days)."""
    if not every_days > 0:
        raise ValueError(f"landmark_every_days: expected > 0, found {every_days!r}.")
    if not max_days >= 0:
        raise ValueError(f"max_landmark_days: expected >= 0, found {max_days!r}.")
    return np.arange(0.0, float(max_days) + 1e-9, float(every_days))


def stack(visits: pd.DataFrame, surv: pd.DataFrame, landmarks, horizon: float) -> pd.DataFrame:
    """Stacked landmark data: patients at risk at each landmark, time from it, cut at horizon.

    ``surv`` has ``patient_id``, ``time_days``, ``event``; returns features plus ``landmark_days``,
    ``_time`` (days from the landmark, <= horizon), ``_event`` (event within the horizon) and
    ``_t_full`` / ``_e_full`` (untruncated, from the landmark).
    """
    parts = []
    s_idx = surv.set_index("patient_id")
    for s in landmarks:
        at_risk = s_idx.index[s_idx["time_days"].to_numpy() > s]
        lf = landmark_features(visits, s, ids=at_risk)
        if lf.empty:
            continue
        t = s_idx.loc[lf["patient_id"], "time_days"].to_numpy(float) - s
        e = s_idx.loc[lf["patient_id"], "event"].to_numpy(int)
        lf["_t_full"], lf["_e_full"] = t, e
        lf[TIME] = np.minimum(t, horizon)
        lf[EVENT] = ((e == 1) & (t <= horizon)).astype(int)
        parts.append(lf)
    if not parts:
        raise ValueError("no patient is at risk at any landmark; check the survival times.")
    return pd.concat(parts, ignore_index=True)


class LandmarkSupermodel:
    """Cox landmark super-model for one endpoint and horizon (scikit-learn estimator contract).

    Parameters
    ----------
    horizon_days : float
        Prediction window ``w`` (days after the landmark).
    landmarks : array-like of float
        Landmarks (study days) stacked for fitting; ``s_max`` is the largest.
    features : sequence of str
        Feature columns (:data:`metevo.followup._features.DYNAMIC_FEATURES` by default; the static
        comparator passes :data:`~metevo.followup._features.STATIC_FEATURES`).
    penalizer : float, default 0.2
        Ridge penalty of the Cox fit (lifelines ``penalizer``).
    degree : int, default 1
        Degree of the polynomial in landmark time of the interactions (2 is van Houwelingen's
        quadratic super-model).

    Attributes
    ----------
    cox_ : lifelines.CoxPHFitter
    columns_ : list of str
        Design columns kept (those with variance < 1e-4 in the training data, e.g. ``progressed``
        for progression-free survival, are dropped).
    summary : DataFrame
        The Cox coefficients, robust standard errors and p-values.
    """

    def __init__(
        self,
        *,
        horizon_days: float = 365.0,
        landmarks=(0.0, 56.0, 112.0, 168.0, 224.0, 280.0, 336.0),
        features=DYNAMIC_FEATURES,
        penalizer: float = 0.2,
        degree: int = 1,
    ):
        self.horizon_days = horizon_days
        self.landmarks = landmarks
        self.features = features
        self.penalizer = penalizer
        self.degree = degree

    def __repr__(self) -> str:
        state = "fitted" if hasattr(self, "cox_") else "not fitted"
        return (
            f"LandmarkSupermodel(horizon_days={self.horizon_days:g}, "
            f"{len(self.landmarks)} landmarks, {len(self.features)} features, {state})"
        )

    def _design(self, data: pd.DataFrame) -> pd.DataFrame:
        s = data["landmark_days"].to_numpy(float) / max(float(np.max(self.landmarks)), 1.0)
        cols = {}
        for f in self.features:
            x = data[f].to_numpy(float)
            cols[f] = x
            for p in range(1, self.degree + 1):
                cols[f"{f}:s{p}"] = x * s**p
        for p in range(1, self.degree + 1):
            cols[f"s{p}"] = s**p
        return pd.DataFrame(cols, index=data.index)

    def fit(self, stacked: pd.DataFrame) -> LandmarkSupermodel:
        """Fit on stacked landmark data (:func:`stack`)."""
        from lifelines import CoxPHFitter

        X = self._design(stacked)
        keep = [c for c in X.columns if np.nanvar(X[c].to_numpy()) >= MIN_VARIANCE]
        df = X[keep].copy()
        df[TIME] = np.maximum(stacked[TIME].to_numpy(float), 1e-3)
        df[EVENT] = stacked[EVENT].to_numpy(int)
        df["_cluster"] = stacked["patient_id"].to_numpy()
        if df[EVENT].sum() == 0:
            raise ValueError(
                f"no event within {self.horizon_days:g} days of any landmark; the model cannot be "
                "fitted. Use a longer horizon or more patients."
            )
        cph = CoxPHFitter(penalizer=self.penalizer)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            cph.fit(df, duration_col=TIME, event_col=EVENT, cluster_col="_cluster", robust=True)
        if caught:
            warnings.warn(
                f"landmark super-model (horizon {self.horizon_days:g} days): lifelines said: "
                f"{caught[0].message}",
                StatisticsWarning,
                stacklevel=2,
            )
        self.cox_ = cph
        self.columns_ = keep
        base = cph.baseline_cumulative_hazard_
        self.h0_times_ = base.index.to_numpy(float)
        self.h0_values_ = base.iloc[:, 0].to_numpy(float)
        return self

    @property
    def summary(self) -> pd.DataFrame:
        self._check()
        return self.cox_.summary

    def _check(self):
        if not hasattr(self, "cox_"):
            raise NotFittedError("LandmarkSupermodel: call fit(stacked) before predict or summary.")

    def predict_risk(self, data: pd.DataFrame) -> pd.DataFrame:
        """Risk of the event within the horizon, with 95 % delta-method bounds.

        ``data`` holds the feature columns and ``landmark_days``; returns ``risk``,
        ``risk_lower``, ``risk_upper`` aligned with it.
        """
        self._check()
        X = self._design(data)[self.columns_].to_numpy(float)
        beta = self.cox_.params_.loc[self.columns_].to_numpy(float)
        mean = self.cox_._norm_mean.loc[self.columns_].to_numpy(float)
        V = self.cox_.variance_matrix_.loc[self.columns_, self.columns_].to_numpy(float)
        Xc = X - mean
        lp = Xc @ beta
        se = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", Xc, V, Xc), 0.0))
        idx = np.searchsorted(self.h0_times_, self.horizon_days, side="right") - 1
        h0 = self.h0_values_[idx] if idx >= 0 else 0.0

        def risk(x):
            return -np.expm1(-h0 * np.exp(np.clip(x, -50, 50)))

        return pd.DataFrame(
            {
                "risk": risk(lp),
                "risk_lower": risk(lp - Z95 * se),
                "risk_upper": risk(lp + Z95 * se),
            },
            index=data.index,
        )
