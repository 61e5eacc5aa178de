"""Tests of metevo.survival: every statistic equals lifelines / SciPy called directly."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter, CoxTimeVaryingFitter, KaplanMeierFitter
from lifelines.statistics import multivariate_logrank_test, proportional_hazard_test
from lifelines.utils import concordance_index
from scipy.stats import chi2_contingency, false_discovery_control, fisher_exact
from scipy.stats.contingency import association

from metevo.exceptions import ClinicalTableError, DataQualityWarning, StatisticsWarning
from metevo.patterns import EvolutionPatterns
from metevo.survival import (
    cox_model,
    cross_validated_patterns,
    kaplan_meier,
    landmark_data,
    pattern_survival,
    response_association,
    survival_data,
    time_varying_cox,
)


@pytest.fixture(scope="module")
def cohort():
    from metevo.datasets import make_synthetic_trajectories

    return make_synthetic_trajectories(300, seed=7)


def _surv_frame(seed=0, n=120):
    rng = np.random.default_rng(seed)
    group = rng.choice(["a", "b", "c"], size=n)
    scale = pd.Series(group).map({"a": 900, "b": 500, "c": 250}).to_numpy()
    time = np.ceil(rng.exponential(scale))
    cens = rng.uniform(100, 1200, size=n)
    return pd.DataFrame(
        {
            "patient_id": [f"P{i:03d}" for i in range(n)],
            "pattern": group,
            "time_days": np.minimum(time, cens),
            "event": (time <= cens).astype(int),
            "age": rng.normal(60, 8, size=n),
        }
    )


def test_survival_data_and_its_errors():
    clin = pd.DataFrame({"patient_id": ["A", "B"], "os_days": [10, 20], "os_event": [1, 0]})
    out = survival_data(clin)
    assert out["time_days"].tolist() == [10.0, 20.0] and out["event"].tolist() == [1, 0]
    with pytest.raises(ClinicalTableError, match="lacks column"):
        survival_data(clin, endpoint="pfs")
    with pytest.raises(ClinicalTableError, match="negative time for patient 'B'"):
        survival_data(clin.assign(os_days=[10, -3]))
    with pytest.raises(ClinicalTableError, match="patient 'A' has 'maybe'"):
        survival_data(clin.assign(os_event=["maybe", "yes"]))
    with pytest.raises(ClinicalTableError, match="needs the patients.parquet"):
        survival_data(clin, endpoint="imaging_pfs")
    with pytest.raises(ValueError, match="endpoint must be one of"):
        survival_data(clin, endpoint="dfs")


def test_landmark_keeps_patients_alive_at_landmark_and_shifts_time():
    d = pd.DataFrame({"time_days": [50.0, 100.0, 101.0, 300.0], "event": [1, 0, 1, 0]})
    out = landmark_data(d, 100)
    assert out["time_days"].tolist() == [1.0, 200.0] and out["event"].tolist() == [1, 0]


def test_kaplan_meier_and_logrank_equal_lifelines():
    d = _surv_frame()
    table, fitters, lr = kaplan_meier(d, "pattern", endpoint="os", landmark_days=None)
    for g in ("a", "b", "c"):
        sub = d[d["pattern"] == g]
        kmf = KaplanMeierFitter().fit(sub["time_days"], sub["event"])
        rows = table[table["group"] == g].set_index("time_days")
        np.testing.assert_allclose(
            rows["survival"], kmf.survival_function_.loc[rows.index, "KM_estimate"]
        )
        ci = kmf.confidence_interval_survival_function_.loc[rows.index]
        np.testing.assert_allclose(rows["ci_lower"], ci.iloc[:, 0])
        np.testing.assert_allclose(rows["ci_upper"], ci.iloc[:, 1])
        np.testing.assert_array_equal(rows["at_risk"], kmf.event_table.loc[rows.index, "at_risk"])
        assert rows["events"].sum() == sub["event"].sum()
    direct = multivariate_logrank_test(d["time_days"], d["pattern"], d["event"])
    assert lr.p_value == pytest.approx(direct.p_value)
    assert table["logrank_statistic"].iloc[0] == pytest.approx(direct.test_statistic)
    assert table["analysis"].str.contains("treatment start").all()


def test_cox_equals_lifelines_with_dummies_and_ph_test():
    d = _surv_frame(1)
    table, cph = cox_model(d, ["pattern", "age"], reference={"pattern": "a"})
    x = pd.DataFrame(
        {
            "b": (d["pattern"] == "b").astype(float),
            "c": (d["pattern"] == "c").astype(float),
            "age": d["age"],
            "T": d["time_days"],
            "E": d["event"],
        }
    )
    ref = CoxPHFitter().fit(x, "T", "E")
    np.testing.assert_allclose(table["hazard_ratio"], ref.summary["exp(coef)"].to_numpy())
    np.testing.assert_allclose(table["ci_lower"], ref.summary["exp(coef) lower 95%"].to_numpy())
    np.testing.assert_allclose(table["p_value"], ref.summary["p"].to_numpy())
    assert table["concordance_in_sample"].iloc[0] == pytest.approx(ref.concordance_index_)
    # out-of-fold concordance, recomputed with lifelines: 5 folds of a seeded permutation,
    # each fold's risk predicted by a model fitted on the other four, pooled once
    folds = np.random.default_rng(0).permutation(len(x)) % 5
    risk = np.empty(len(x))
    for f in range(5):
        fold = CoxPHFitter().fit(x[folds != f], "T", "E")
        risk[folds == f] = fold.predict_log_partial_hazard(x[folds == f]).to_numpy()
    oof = concordance_index(x["T"], -risk, x["E"])
    assert table["concordance"].iloc[0] == pytest.approx(oof, rel=1e-9)
    assert (table["concordance_method"] == "out-of-fold (5-fold)").all() and table["fitted"].all()
    assert oof < ref.concordance_index_  # the in-sample value is optimistic
    ph = proportional_hazard_test(ref, x, time_transform="rank").summary["p"].loc[["b", "c", "age"]]
    np.testing.assert_allclose(table["ph_test_p_value"], ph.to_numpy())
    assert table["term"].tolist() == ["pattern: b vs a", "pattern: c vs a", "age"]
    # planted ordering: hazard of c > b > a
    assert 1 < table["hazard_ratio"].iloc[0] < table["hazard_ratio"].iloc[1]


def test_pattern_without_events_uses_penalised_fit():
    d = _surv_frame(2)
    d.loc[d["pattern"] == "c", "event"] = 0
    with pytest.warns(StatisticsWarning, match="no os events in"):
        table, cph = cox_model(d, ["pattern"], reference={"pattern": "a"})
    assert (table["penalizer"] == 0.1).all() and cph.penalizer == 0.1
    assert table["note"].str.contains("penalised").all()
    with pytest.raises(ValueError, match="no os events among"):
        cox_model(d.assign(event=0), ["pattern"])


def test_few_events_per_parameter_are_not_fitted_and_say_why():
    d = _surv_frame(3, n=30)  # 3 parameters, ~20 events: < 10 per parameter
    n_events = int(d["event"].sum())
    assert n_events < 30
    table, cph = cox_model(d, ["pattern", "age"], reference={"pattern": "a"})  # no warning
    assert cph is None and not table["fitted"].any()
    assert table["term"].tolist() == ["pattern: b vs a", "pattern: c vs a", "age"]
    assert table["hazard_ratio"].isna().all() and table["concordance"].isna().all()
    assert table["note"].str.startswith(
        f"not fitted: {n_events} os events for 3 Cox parameters ({n_events / 3:.1f} per "
        "parameter; at least 10 needed)"
    ).all()
    table, cph = cox_model(
        d, ["pattern", "age"], reference={"pattern": "a"}, min_events_per_parameter=5
    )
    assert cph is not None and table["fitted"].all()


def test_out_of_fold_concordance_is_not_fooled_by_noise():
    """With 12 pure-noise covariates the in-sample concordance is optimistic; out of fold it is
    near 0.5 (no signal); with a real covariate both agree."""
    rng = np.random.default_rng(5)
    n = 150
    noise = pd.DataFrame(rng.normal(size=(n, 12)), columns=[f"x{i}" for i in range(12)])
    signal = rng.normal(size=n)
    time = rng.exponential(np.exp(-1.0 * signal) * 300)
    d = noise.assign(time_days=np.ceil(time), event=1, s=signal)
    table, _ = cox_model(d, list(noise.columns))
    c_oof, c_in = table["concordance"].iloc[0], table["concordance_in_sample"].iloc[0]
    assert c_in > 0.55 and abs(c_oof - 0.5) < 0.05 and c_in - c_oof > 0.04
    table, _ = cox_model(d, ["s"])
    assert table["concordance"].iloc[0] > 0.7
    assert abs(table["concordance"].iloc[0] - table["concordance_in_sample"].iloc[0]) < 0.01


def test_response_association_equals_scipy():
    rng = np.random.default_rng(0)
    n = 200
    pats = pd.DataFrame(
        {
            "patient_id": [f"P{i}" for i in range(n)],
            "pattern": rng.choice(["deep response", "stable", "progression"], n),
        }
    )
    resp = pats["pattern"].map({"deep response": "PR", "stable": "SD", "progression": "PD"})
    resp = resp.where(rng.uniform(size=n) > 0.3, "SD")
    patients = pd.DataFrame(
        {"patient_id": pats["patient_id"], "best_response": resp, "ets": rng.uniform(size=n) > 0.5}
    )
    clinical = pd.DataFrame({"patient_id": pats["patient_id"], "arm": rng.choice(["A", "B"], n)})
    two = pats.assign(pattern=np.where(np.arange(n) % 2, "stable", "progression"))
    out = response_association(pats, patients, clinical)
    assert set(out["variable"]) == {"best_response", "ets", "arm"}
    br = out[out["variable"] == "best_response"]
    ct = pd.crosstab(pats["pattern"], resp)
    res = chi2_contingency(ct.to_numpy(), correction=False)
    assert br["test"].iloc[0] == "chi_square"
    assert br["p_value"].iloc[0] == pytest.approx(res.pvalue)
    assert br["cramers_v"].iloc[0] == pytest.approx(association(ct.to_numpy()))
    assert br["same_measurements"].all() and br["note"].str.startswith("descriptive").all()
    assert not out.loc[out["variable"] == "arm", "same_measurements"].any()
    pv = out.drop_duplicates("variable").set_index("variable")["p_value"]
    adj = out.drop_duplicates("variable").set_index("variable")["p_adjusted"]
    np.testing.assert_allclose(adj.to_numpy(), false_discovery_control(pv.to_numpy()))
    two_out = response_association(two, patients, None, variables=("ets",))
    ct2 = pd.crosstab(two["pattern"], patients["ets"].map({True: "yes", False: "no"}))
    assert two_out["test"].iloc[0] == "fisher_exact"
    assert two_out["p_value"].iloc[0] == pytest.approx(fisher_exact(ct2.to_numpy()).pvalue)
    assert np.allclose(br.groupby("pattern")["row_fraction"].sum(), 1.0)


def test_cox_rows_share_the_schema_layout(cohort):
    """Fitted, not fitted and time-varying Cox rows: the schema's columns, in its order (the
    landmark exclusion count is added by pattern_survival and is NA for the time-varying model)."""
    from metevo.dictionary import load_schema

    schema = [f["name"] for f in load_schema("survival_cox")["fields"]]
    fitted, _ = cox_model(_surv_frame(1), ["pattern"], reference={"pattern": "a"})
    not_fitted, _ = cox_model(_surv_frame(3, n=30), ["pattern", "age"], reference={"pattern": "a"})
    tv, _ = time_varying_cox(
        cohort["patient_trajectories"], cohort["clinical"], features=("log_ratio_target_sum",)
    )
    assert list(tv.columns) == schema and tv["n_excluded_landmark"].isna().all()
    assert list(fitted.columns) == list(not_fitted.columns) == [
        c for c in schema if c != "n_excluded_landmark"
    ]
    assert fitted.dtypes.equals(not_fitted.dtypes)
    assert fitted["fitted"].all() and not not_fitted["fitted"].any() and tv["fitted"].all()
    assert not_fitted["penalizer"].isna().all() and (fitted["penalizer"] == 0.0).all()
    assert (tv["penalizer"] == 0.0).all() and tv["landmark_days"].isna().all()
    assert tv["analysis"].iloc[0] == "time-varying: per-visit features from treatment start"
    assert fitted["analysis"].str.contains("treatment start").all()


def test_time_varying_cox_equals_lifelines(cohort):
    traj, clin = cohort["patient_trajectories"], cohort["clinical"]
    table, ctv = time_varying_cox(traj, clin, features=("log_ratio_target_sum",))
    assert table["model"].eq("cox_time_varying").all()
    ref = CoxTimeVaryingFitter().fit(
        _long(traj, clin),
        id_col="patient_id",
        event_col="event",
        start_col="start",
        stop_col="stop",
    )
    assert table["hazard_ratio"].iloc[0] == pytest.approx(ref.summary["exp(coef)"].iloc[0])
    assert table["hazard_ratio"].iloc[0] > 1  # growing tumours, higher hazard


def _long(traj, clin):
    t = traj.sort_values(["patient_id", "study_day"])
    surv = clin.set_index("patient_id")
    rows = []
    for pid, g in t.groupby("patient_id"):
        base = g[g["study_day"] <= 0]
        b = (base if len(base) else g).iloc[-1 if len(base) else 0]["target_sum_mm"]
        days = np.maximum(g["study_day"].to_numpy(float), 0)
        lr = np.log((g["target_sum_mm"].to_numpy() + 1) / (b + 1))
        end, ev = float(surv.at[pid, "os_days"]), int(surv.at[pid, "os_event"])
        for j in range(len(days)):
            stop = min(days[j + 1] if j + 1 < len(days) else end, end)
            if stop <= days[j]:
                continue
            last = stop == end
            rows.append((pid, days[j], stop, ev if last else 0, lr[j]))
            if last:
                break
    return pd.DataFrame(
        rows, columns=["patient_id", "start", "stop", "event", "log_ratio_target_sum"]
    ).dropna()


def test_pattern_survival_landmark_cv_and_planted_ordering(cohort):
    traj, clin = cohort["patient_trajectories"], cohort["clinical"]
    model = EvolutionPatterns(3, landmark_days=112, n_bootstrap=0, random_state=0).fit(traj)
    cv = cross_validated_patterns(model, traj, n_splits=3)
    assert set(cv["patient_id"]) == set(model.patient_ids_)
    agree = (
        cv.set_index("patient_id")["pattern_id"].loc[model.patient_ids_].to_numpy() == model.labels_
    ).mean()
    assert agree >= 0.8
    with pytest.raises(ValueError, match="without a landmark"):
        pattern_survival(cv, clin)
    cv["landmark_days"] = 112.0
    with pytest.raises(ValueError, match="can never exceed the landmark"):
        pattern_survival(cv, clin, landmark_days=56)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticsWarning)  # PH/EPV notes on small cohorts
        res = pattern_survival(cv, clin, trajectories=traj)
    assert (res.data["time_days"] > 0).all()
    assert res.km["analysis"].str.startswith("landmark at day 112").all()
    pat = res.cox[res.cox["term"].str.startswith("pattern: ")]
    # planted: deep responders live longest (median OS 1300 d vs <= 820 d for the others), so
    # every other pattern has a hazard ratio above 1 against the deep-response pattern
    assert model.names_[0] == "deep response"
    assert pat["term"].str.endswith("vs deep response").all()
    assert (pat["ci_lower"] > 1.0).all()
    direct = multivariate_logrank_test(
        res.data["time_days"], res.data["pattern"], res.data["event"]
    )
    assert res.km["logrank_p_value"].iloc[0] == pytest.approx(direct.p_value)


def test_pattern_survival_edge_cases(cohort):
    traj, clin = cohort["patient_trajectories"], cohort["clinical"]
    model = EvolutionPatterns(2, landmark_days=112, n_bootstrap=0, random_state=0).fit(traj)
    pats = model.patterns_
    with pytest.warns(StatisticsWarning, match="survival skipped: no os events"):
        res = pattern_survival(pats, clin.assign(os_event=0))
    assert res.km.empty and "no os events" in res.message
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticsWarning)
        with pytest.warns(DataQualityWarning, match="have no os time"):
            pattern_survival(pats, clin.iloc[20:])
    with pytest.raises(ClinicalTableError, match="covariate"):
        pattern_survival(pats, clin, covariates=["bmi"])


def test_small_rxc_table_uses_monte_carlo_fisher():
    from scipy.stats import MonteCarloMethod

    pats = pd.DataFrame(
        {"patient_id": [f"P{i}" for i in range(9)], "pattern": ["a"] * 3 + ["b"] * 3 + ["c"] * 3}
    )
    patients = pd.DataFrame(
        {
            "patient_id": pats["patient_id"],
            "best_response": ["PR", "PR", "SD", "SD", "SD", "PD", "PD", "PD", "SD"],
        }
    )
    out = response_association(pats, patients, variables=("best_response",), random_state=3)
    assert out["test"].iloc[0] == "fisher_exact_monte_carlo"
    ct = pd.crosstab(pats["pattern"], patients["best_response"]).to_numpy()
    ref = fisher_exact(ct, method=MonteCarloMethod(n_resamples=9999, rng=3))
    assert out["p_value"].iloc[0] == pytest.approx(float(np.ravel(ref.pvalue)[0]))


def test_planted_survival_ordering_in_the_cox_model():
    """Issue 7: the planted survival ordering appears in the Cox model of cross-validated patterns.

    2,000 synthetic patients, five patterns at a landmark after the 24-week visit window (day 182:
    visits are planned every 56 days +/- 7 and only scans on or before the landmark count, so
    the landmark comes after the latest 24-week CT, day 175): each found pattern is mapped
    to the planted pattern most of its members carry, and the Cox hazard ratios (vs the best
    pattern) must rank the patterns exactly as the planted median survivals do.
    """
    from scipy.stats import spearmanr

    from metevo.datasets import make_synthetic_trajectories
    from metevo.datasets._synthetic_kinetics import OS_MEDIAN_DAYS

    data = make_synthetic_trajectories(2000, seed=0)
    traj, lesions = data["patient_trajectories"], data["lesion_trajectories"]
    model = EvolutionPatterns(
        5, representation="multivariate", landmark_days=182, n_bootstrap=0, random_state=0
    ).fit(traj, lesion_trajectories=lesions)
    cv = cross_validated_patterns(model, traj, n_splits=5)
    cv["landmark_days"] = 182.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticsWarning)
        res = pattern_survival(cv, data["clinical"], trajectories=traj, covariates=[])
    planted = cv.merge(
        data["ground_truth"][["patient_id", "pattern"]], on="patient_id", suffixes=("", "_planted")
    )
    majority = planted.groupby("pattern")["pattern_planted"].agg(
        lambda s: s.value_counts().index[0]
    )
    assert sorted(majority.index) == sorted(model.names_) and majority.nunique() == 5
    hr = {model.names_[0]: 1.0}
    for row in res.cox[res.cox["term"].str.startswith("pattern: ")].itertuples():
        hr[row.term.removeprefix("pattern: ").split(" vs ")[0]] = row.hazard_ratio
    names = list(hr)
    rho = spearmanr(
        [hr[n] for n in names], [-OS_MEDIAN_DAYS[majority[n]] for n in names]
    ).correlation
    assert rho == pytest.approx(1.0), {n: (majority[n], round(hr[n], 2)) for n in names}
