"""``predict``: dynamic prediction at every visit, with its cross-validated performance.

For each endpoint (``"os"``: death; ``"pfs"``: progression or death, from the clinical table) and
horizon, a :class:`~metevo.followup._landmark.LandmarkSupermodel` on the trajectory features and
a static comparator (the same super-model on the baseline burden and the best overall response
so far only) are

* fitted on all patients to give the risk at every visit (``predictions``: the visits at which
  the patient is still at risk for the endpoint; landmarks beyond the last fitted one use its
  coefficients);
* cross-validated by patient (``n_folds`` folds; a patient's every landmark falls in one fold):
  at each landmark, the out-of-fold risks give the time-dependent AUC, Brier score and Harrell's
  C of both models, and the gain (dynamic minus static; for the Brier score a negative gain is an
  improvement) with percentile-bootstrap 95 % intervals over the patients at risk (the folds'
  predictions are kept, the patients resampled with all their landmarks), also averaged over the
  landmarks after the first follow-up, and the calibration by decile of risk.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from metevo.exceptions import StatisticsWarning
from metevo.followup._features import DYNAMIC_FEATURES, STATIC_FEATURES, visit_features
from metevo.followup._inputs import PredictionCalibration as PC
from metevo.followup._inputs import PredictionPerformance as PP
from metevo.followup._inputs import Predictions as PR
from metevo.followup._inputs import check_trajectories
from metevo.followup._landmark import EVENT, LandmarkSupermodel, landmark_grid, stack
from metevo.followup._metrics import (
    brier_score,
    calibration_deciles,
    censoring_survival,
    concordance,
    cumulative_dynamic_auc,
)

ENDPOINTS = ("os", "pfs")
#: fewer distinct patients with an event per dynamic-model coefficient raise a StatisticsWarning
MIN_PATIENTS_WITH_EVENT_PER_PARAMETER = 5
METRICS = ("auc", "brier", "c_index")


@dataclass
class PredictionResult:
    """Result of :func:`predict`.

    Attributes
    ----------
    predictions : DataFrame
        ``predictions.parquet`` (columns in ``data_dictionary/predictions.schema.json``).
    performance : DataFrame
        ``prediction_performance.parquet``: cross-validated AUC, Brier score and C-index of the
        dynamic and static models and their difference (``model="gain"``) per landmark.
    calibration : DataFrame
        ``prediction_calibration.parquet``: predicted vs observed risk by decile, per landmark.
    models : dict
        ``{(endpoint, horizon_days, "dynamic" | "static"): LandmarkSupermodel}`` fitted on all.
    """

    predictions: pd.DataFrame
    performance: pd.DataFrame
    calibration: pd.DataFrame
    models: dict = field(repr=False, default_factory=dict)

    def save(self, out_dir) -> list:
        """Write ``predictions``, ``prediction_performance`` and ``prediction_calibration``
        Parquet tables into ``out_dir`` (created); returns their paths."""
        from pathlib import Path

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        tables = {
            "predictions": self.predictions,
            "prediction_performance": self.performance,
            "prediction_calibration": self.calibration,
        }
        paths = []
        for name, table in tables.items():
            paths.append(out / f"{name}.parquet")
            table.to_parquet(paths[-1], index=False)
        return paths

    def __repr__(self) -> str:
        n = self.predictions[PR.PATIENT_ID].nunique()
        return (
            f"PredictionResult({n} patients, {len(self.predictions)} predictions, "
            f"{self.performance[PP.LANDMARK_DAYS].nunique()} landmarks, "
            f"endpoints {sorted(self.predictions[PR.ENDPOINT].unique())})"
        )


def _warn_few_events(stacked: pd.DataFrame, endpoint: str, horizon: float, degree: int) -> None:
    n_params = len(DYNAMIC_FEATURES) * (degree + 1) + degree
    n_patients = stacked.loc[stacked[EVENT] == 1, "patient_id"].nunique()
    if n_patients < MIN_PATIENTS_WITH_EVENT_PER_PARAMETER * n_params:
        warnings.warn(
            f"{endpoint}, {horizon:g}-day horizon: {n_patients} patients have an event within "
            f"the horizon of a landmark, for {n_params} coefficients of the dynamic model "
            f"(expected >= {MIN_PATIENTS_WITH_EVENT_PER_PARAMETER} per coefficient); the "
            "predictions and their performance are fragile.",
            StatisticsWarning,
            stacklevel=3,
        )


def _folds(ids: np.ndarray, n_folds: int, seed: int) -> dict:
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0xF01D]))
    perm = rng.permutation(ids)
    return {pid: k % n_folds for k, pid in enumerate(perm)}


def _fit_pair(stacked, horizon, landmarks, options):
    return tuple(
        LandmarkSupermodel(
            horizon_days=horizon, landmarks=landmarks, features=features, **options
        ).fit(stacked)
        for features in (DYNAMIC_FEATURES, STATIC_FEATURES)
    )


def _metrics(t, e, r_dyn, r_sta, horizon, G) -> np.ndarray:
    """(auc, brier, c) of dynamic then static."""
    return np.array(
        [
            cumulative_dynamic_auc(t, e, r_dyn, horizon, G),
            brier_score(t, e, 1.0 - r_dyn, horizon, G),
            concordance(t, e, r_dyn, horizon),
            cumulative_dynamic_auc(t, e, r_sta, horizon, G),
            brier_score(t, e, 1.0 - r_sta, horizon, G),
            concordance(t, e, r_sta, horizon),
        ]
    )


def _performance_rows(oof, endpoint, horizon, n_boot, pooled_from, rng):
    """Per-landmark metrics, their mean over the landmarks >= ``pooled_from`` (scope
    ``"after_first_follow_up"``), and patient-cluster bootstrap intervals for both."""
    groups = []
    for s, grp in oof.groupby("landmark_days", sort=True):
        t = grp["_t_full"].to_numpy(float)
        e = grp["_e_full"].to_numpy(int)
        n_ev = int(((e == 1) & (t <= horizon)).sum())
        if n_ev == 0 or (t > horizon).sum() == 0:
            continue
        groups.append((float(s), grp, t, e, n_ev, censoring_survival(t, e)))
    if not groups:
        return [], []
    ids = np.asarray(sorted(oof["patient_id"].unique()))
    pos = {pid: i for i, pid in enumerate(ids)}
    est = np.array(
        [
            _metrics(t, e, g["risk_dynamic"].to_numpy(), g["risk_static"].to_numpy(), horizon, G)
            for _, g, t, e, _, G in groups
        ]
    )
    boot = np.full((n_boot, len(groups), 6), np.nan)
    rows_of = [g["patient_id"].map(pos).to_numpy() for _, g, *_ in groups]
    for b in range(n_boot):
        counts = rng.multinomial(ids.size, np.full(ids.size, 1.0 / ids.size))
        for j, (_, g, t, e, _, G) in enumerate(groups):
            idx = np.repeat(np.arange(t.size), counts[rows_of[j]])
            if (
                idx.size
                and ((e[idx] == 1) & (t[idx] <= horizon)).any()
                and (t[idx] > horizon).any()
            ):
                rd = g["risk_dynamic"].to_numpy()[idx]
                rs = g["risk_static"].to_numpy()[idx]
                boot[b, j] = _metrics(t[idx], e[idx], rd, rs, horizon, G)
    landmarks = np.array([s for s, *_ in groups])
    pooled = landmarks >= pooled_from
    units = [
        ("landmark", s, est[j], boot[:, j], groups[j][2].size, groups[j][4])
        for j, s in enumerate(landmarks)
    ]
    if pooled.any():
        units.append(
            (
                "after_first_follow_up",
                float(landmarks[pooled].min()),
                est[pooled].mean(axis=0),
                boot[:, pooled].mean(axis=1),
                int(sum(groups[j][2].size for j in np.flatnonzero(pooled))),
                int(sum(groups[j][4] for j in np.flatnonzero(pooled))),
            )
        )
    rows = []
    for scope, s, value, reps, n_risk, n_ev in units:
        for m, metric in enumerate(METRICS):
            series = {
                "dynamic": (value[m], reps[:, m]),
                "static": (value[m + 3], reps[:, m + 3]),
                "gain": (value[m] - value[m + 3], reps[:, m] - reps[:, m + 3]),
            }
            for model, (v, r) in series.items():
                r = r[np.isfinite(r)]
                lo, hi = np.quantile(r, [0.025, 0.975]) if r.size else (np.nan, np.nan)
                rows.append(
                    {
                        PP.LANDMARK_DAYS: float(s),
                        PP.HORIZON_DAYS: float(horizon),
                        PP.ENDPOINT: endpoint,
                        PP.SCOPE: scope,
                        PP.MODEL: model,
                        PP.METRIC: metric,
                        PP.ESTIMATE: float(v),
                        PP.CI_LOWER: float(lo),
                        PP.CI_UPPER: float(hi),
                        PP.N_AT_RISK: int(n_risk),
                        PP.N_EVENTS: int(n_ev),
                    }
                )
    cal = []
    for s, g, t, e, _, _ in groups:
        for dec, n, pred, obs in calibration_deciles(t, e, g["risk_dynamic"].to_numpy(), horizon):
            cal.append(
                {
                    PC.LANDMARK_DAYS: s,
                    PC.HORIZON_DAYS: float(horizon),
                    PC.ENDPOINT: endpoint,
                    PC.DECILE: dec,
                    PC.N_PATIENTS: n,
                    PC.PREDICTED_RISK: pred,
                    PC.OBSERVED_RISK: obs,
                }
            )
    return rows, cal


def _visit_predictions(visits, surv, dyn, sta, endpoint, horizon, s_max):
    at = visits.merge(surv, on="patient_id", how="inner")
    at = at[at["time_days"] > at["study_day"]].copy()
    if at.empty:
        return pd.DataFrame()
    at["landmark_days"] = np.clip(at["study_day"].to_numpy(float), 0.0, s_max)
    at["months_since_scan"] = 0.0
    r = dyn.predict_risk(at)
    return pd.DataFrame(
        {
            PR.PATIENT_ID: at["patient_id"].to_numpy(),
            PR.TIMEPOINT: at["timepoint"].to_numpy(),
            PR.LANDMARK_DAYS: at["study_day"].to_numpy(float),
            PR.HORIZON_DAYS: float(horizon),
            PR.ENDPOINT: endpoint,
            PR.RISK: r["risk"].to_numpy(),
            PR.RISK_LOWER: r["risk_lower"].to_numpy(),
            PR.RISK_UPPER: r["risk_upper"].to_numpy(),
            PR.STATIC_RISK: sta.predict_risk(at)["risk"].to_numpy(),
        }
    )


def predict(
    trajectories: pd.DataFrame,
    clinical: pd.DataFrame,
    *,
    endpoints=ENDPOINTS,
    horizons_days=(183.0, 365.0),
    landmark_every_days: float = 56.0,
    max_landmark_days: float = 336.0,
    n_folds: int = 5,
    n_boot: int = 200,
    pooled_from_days: float = 112.0,
    penalizer: float = 0.2,
    degree: int = 1,
    seed: int = 0,
) -> PredictionResult:
    """Dynamic prediction of death and progression at every visit (landmark super-model).

    Parameters
    ----------
    trajectories : DataFrame
        ``patient_trajectories`` (patient x visit): ``patient_id``, ``timepoint``, ``study_day``
        (days from treatment start), ``target_sum_mm``, ``n_new_lesions``; ``sum_ld_mm`` and
        ``n_disappeared_lesions`` when present.
    clinical : DataFrame
        The clinical table: ``patient_id``, ``os_days``/``os_event`` and, for ``"pfs"``,
        ``pfs_days``/``pfs_event`` (days from treatment start).
    endpoints : sequence of {"os", "pfs"}
        ``"os"``: death from any cause; ``"pfs"``: progression or death.
    horizons_days : sequence of float, default (183, 365)
        Prediction windows after the visit (6 and 12 months).
    landmark_every_days, max_landmark_days : float
        Landmarks stacked in the super-model and scored: 0, 56, ..., 336 by default.
    n_folds : int, default 5
        Patient-level cross-validation folds (>= 2).
    n_boot : int, default 200
        Bootstrap resamples of the patients (clusters: a patient's every landmark together) for
        the 95 % intervals of the performance.
    pooled_from_days : float, default 112
        The performance is also averaged over the landmarks from this day on (scope
        ``"after_first_follow_up"``: with 8-weekly scans, landmarks after the first follow-up).
    penalizer : float, default 0.2
        Ridge penalty of the Cox fits (lifelines ``penalizer``; the dynamic model has many more
        coefficients than the static one, and an unpenalised fit loses out of fold what it gains
        in fold).
    degree : int, default 1
        Degree of the landmark-time interactions (1: linear, 2: quadratic, as van Houwelingen).
    seed : int, default 0

    Returns
    -------
    PredictionResult

    Examples
    --------
    >>> from metevo.datasets import make_synthetic_trajectories
    >>> from metevo.followup import predict
    >>> t = make_synthetic_trajectories(150, seed=1)
    >>> res = predict(t["patient_trajectories"], t["clinical"], endpoints=["os"],
    ...               horizons_days=[365], n_boot=20)
    >>> sorted(res.performance.model.unique())
    ['dynamic', 'gain', 'static']
    """
    from metevo.survival import survival_data

    traj = check_trajectories(trajectories)
    endpoints = list(endpoints)
    for ep in endpoints:
        if ep not in ENDPOINTS:
            raise ValueError(f"endpoints: expected values in {ENDPOINTS}, found {ep!r}.")
    horizons = [float(h) for h in horizons_days]
    if not horizons or min(horizons) <= 0:
        raise ValueError(f"horizons_days: expected positive day counts, found {horizons_days!r}.")
    if isinstance(n_folds, bool) or not isinstance(n_folds, (int, np.integer)) or n_folds < 2:
        raise ValueError(f"n_folds: expected an integer >= 2, found {n_folds!r}.")
    options = {"penalizer": float(penalizer), "degree": int(degree)}
    landmarks = landmark_grid(landmark_every_days, max_landmark_days)
    s_max = float(landmarks.max())
    visits = visit_features(traj)
    ids = np.asarray(sorted(traj["patient_id"].unique()))
    fold = _folds(ids, int(n_folds), seed)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0xB007]))

    preds, perf, cal, models = [], [], [], {}
    for ep in endpoints:
        surv = survival_data(clinical, endpoint=ep)
        surv = surv[surv["patient_id"].isin(ids)].reset_index(drop=True)
        if surv.empty:
            raise ValueError(
                f"clinical: no patient of the trajectories has a '{ep}' time; expected the "
                f"patient_id values of the trajectories (e.g. {ids[0]!r})."
            )
        for h in horizons:
            stacked = stack(visits, surv, landmarks, h)
            _warn_few_events(stacked, ep, h, options["degree"])
            dyn, sta = _fit_pair(stacked, h, landmarks, options)
            models[(ep, h, "dynamic")], models[(ep, h, "static")] = dyn, sta
            preds.append(_visit_predictions(visits, surv, dyn, sta, ep, h, s_max))
            oof = []
            k_of = stacked["patient_id"].map(fold).to_numpy()
            for k in range(int(n_folds)):
                train, test = stacked[k_of != k], stacked[k_of == k]
                if test.empty or train[EVENT].sum() == 0:
                    continue
                d_k, s_k = _fit_pair(train, h, landmarks, options)
                oof.append(
                    test.assign(
                        risk_dynamic=d_k.predict_risk(test)["risk"].to_numpy(),
                        risk_static=s_k.predict_risk(test)["risk"].to_numpy(),
                    )
                )
            rows, cal_rows = _performance_rows(
                pd.concat(oof), ep, h, int(n_boot), float(pooled_from_days), rng
            )
            perf.extend(rows)
            cal.extend(cal_rows)
    predictions = pd.concat(preds, ignore_index=True).sort_values(
        [PR.PATIENT_ID, PR.LANDMARK_DAYS, PR.ENDPOINT, PR.HORIZON_DAYS], ignore_index=True
    )
    return PredictionResult(predictions, pd.DataFrame(perf), pd.DataFrame(cal), models)
