"""Dynamic prediction with the landmark super-model (metevo.followup.predict)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from metevo.datasets import make_synthetic_trajectories
from metevo.exceptions import NotFittedError, StatisticsWarning
from metevo.followup import LandmarkSupermodel, predict
from metevo.followup._features import visit_features
from metevo.followup._inputs import check_trajectories


def _gain(survival: str, seed: int) -> pd.DataFrame:
    c = make_synthetic_trajectories(400, seed=seed, max_visits=8, survival=survival)
    res = predict(
        c["patient_trajectories"],
        c["clinical"],
        endpoints=["os"],
        horizons_days=[365],
        max_landmark_days=280,
        n_boot=200,
    )
    perf = res.performance
    return perf[(perf.model == "gain") & (perf.metric.isin(["auc", "c_index"]))]


def test_dynamic_beats_static_when_survival_follows_the_course():
    gain = _gain("course", 21)
    pooled = gain[gain.scope == "after_first_follow_up"].set_index("metric")
    assert pooled.loc["auc", "landmark_days"] == 112.0
    assert pooled.loc["auc", "ci_lower"] > 0  # AUC gain, 95 % CI above 0
    assert pooled.loc["c_index", "ci_lower"] > 0
    per = gain[(gain.scope == "landmark") & (gain.metric == "auc")].set_index("landmark_days")
    assert (per.loc[112.0:, "estimate"] > 0).all()
    # at the baseline landmark both models know the same (burden; no response yet)
    assert per.loc[0.0, "ci_lower"] < 0 < per.loc[0.0, "ci_upper"]


def test_no_gain_is_claimed_when_survival_ignores_the_course():
    gain = _gain("independent", 21)
    pooled = gain[gain.scope == "after_first_follow_up"]
    assert ((pooled.ci_lower < 0) & (pooled.ci_upper > 0)).all()  # covers 0
    per = gain[gain.scope == "landmark"]
    assert (per.ci_lower < 0).all()  # no landmark claims a gain


def _one_patient_table():
    return pd.DataFrame(
        {
            "patient_id": "P1",
            "timepoint": ["V0", "V1", "V2", "V3"],
            "study_day": [-5.0, 56.0, 112.0, 168.0],
            "target_sum_mm": [100.0, 60.0, 50.0, 70.0],
            "n_new_lesions": [0, 0, 0, 1],
            "n_disappeared_lesions": [0, 1, 0, 0],
        }
    )


def test_visit_features_by_hand():
    f = visit_features(check_trajectories(_one_patient_table())).set_index("timepoint")
    assert f.loc["V1", "log_rel_baseline"] == pytest.approx(np.log(61 / 101))
    assert f.loc["V2", "log_rel_nadir"] == pytest.approx(0.0)
    assert f.loc["V3", "log_rel_nadir"] == pytest.approx(np.log(71 / 51))
    assert f.loc["V3", "growth_per_month"] == pytest.approx(np.log(71 / 51) / (56 / 30.4375))
    # -40 % at V1: response; +40 % and +20 mm over the nadir with a new lesion at V3: PD
    assert f["responded"].tolist() == [0, 1, 1, 1]
    assert f["progressed"].tolist() == [0, 0, 0, 1]
    assert f["bor_response"].tolist() == [0, 1, 1, 1]
    assert f["bor_pd"].tolist() == [0, 0, 0, 0]
    assert f.loc["V3", "log_new_lesions"] == pytest.approx(np.log(2))
    assert f.loc["V3", "log_gone_lesions"] == pytest.approx(np.log(2))


def test_supermodel_recovers_a_planted_effect_and_its_interval():
    rng = np.random.default_rng(5)
    n = 3000
    x = rng.normal(size=n)
    t = rng.exponential(1.0 / (0.002 * np.exp(0.7 * x)))
    stacked = pd.DataFrame(
        {
            "patient_id": np.arange(n).astype(str),
            "landmark_days": 0.0,
            "x": x,
            "_time": np.minimum(t, 365.0),
            "_event": (t <= 365.0).astype(int),
        }
    )
    model = LandmarkSupermodel(horizon_days=365.0, landmarks=[0.0], features=["x"], penalizer=0.0)
    with pytest.raises(NotFittedError, match="call fit"):
        model.predict_risk(stacked)
    model.fit(stacked)
    assert model.summary.loc["x", "coef"] == pytest.approx(0.7, abs=0.07)
    r = model.predict_risk(pd.DataFrame({"landmark_days": [0.0, 0.0], "x": [0.0, 1.0]}))
    truth = 1 - np.exp(-0.002 * 365 * np.exp(0.7 * np.array([0.0, 1.0])))
    assert r["risk"].to_numpy() == pytest.approx(truth, abs=0.03)
    assert (r["risk_lower"] < r["risk"]).all() and (r["risk"] < r["risk_upper"]).all()


def test_predictions_table_and_errors():
    c = make_synthetic_trajectories(120, seed=3, max_visits=6)
    with pytest.warns(
        StatisticsWarning, match=r"horizon: \d+ patients have an event .* are fragile"
    ):
        res = predict(
            c["patient_trajectories"],
            c["clinical"],
            horizons_days=[183, 365],
            n_boot=10,
            n_folds=3,
        )
    p = res.predictions
    assert list(p.columns) == [
        "patient_id",
        "timepoint",
        "landmark_days",
        "horizon_days",
        "endpoint",
        "risk",
        "risk_lower",
        "risk_upper",
        "static_risk",
    ]
    assert set(p.endpoint) == {"os", "pfs"} and set(p.horizon_days) == {183.0, 365.0}
    assert ((p.risk_lower <= p.risk) & (p.risk <= p.risk_upper)).all()
    wide = p.pivot_table(
        index=["patient_id", "timepoint", "endpoint"], columns="horizon_days", values="risk"
    )
    # a longer window holds more risk (on average: the two horizons are separate fits)
    assert (wide[365.0] >= wide[183.0]).mean() > 0.95
    # a visit is predicted only while the patient is still at risk for the endpoint
    os_days = c["clinical"].set_index("patient_id").os_days
    osp = p[p.endpoint == "os"]
    assert (osp.landmark_days.to_numpy() < os_days.loc[osp.patient_id].to_numpy()).all()
    assert set(res.calibration.decile) <= set(range(1, 11))
    with pytest.raises(ValueError, match="endpoints: expected values in"):
        predict(c["patient_trajectories"], c["clinical"], endpoints=["death"])
    with pytest.raises(ValueError, match="n_folds: expected an integer >= 2"):
        predict(c["patient_trajectories"], c["clinical"], n_folds=1)
    with pytest.raises(ValueError, match=r"missing column\(s\) \['study_day'\]"):
        predict(c["patient_trajectories"].drop(columns="study_day"), c["clinical"])


@pytest.mark.slow
def test_gain_at_every_landmark_after_the_first_follow_up_on_1000_patients():
    c = make_synthetic_trajectories(1000, seed=101, max_visits=8, measurement_cv=0.05)
    res = predict(
        c["patient_trajectories"], c["clinical"], endpoints=["os"], horizons_days=[365], n_boot=200
    )
    p = res.performance
    gain = p[(p.model == "gain") & (p.metric == "auc") & (p.scope == "landmark")]
    after = gain[gain.landmark_days >= 112].set_index("landmark_days")
    assert (after.ci_lower > 0).all(), after[["estimate", "ci_lower", "ci_upper"]]
