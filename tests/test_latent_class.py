"""Tests of the latent-class trajectory model (metevo.patterns._lcmm, metevo.patterns._latent_class)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.stats import multivariate_normal
from sklearn.metrics import adjusted_rand_score

from metevo.exceptions import NotFittedError
from metevo.patterns import _lcmm as lc
from metevo.patterns._latent_class import SELECTION_COLUMNS, LatentClassTrajectories

DPM = 365.25 / 12.0


def _table(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["patient_id", "study_day", "target_sum_mm"])


def _planted(n_per_class: int, seed: int, outlier: bool = False) -> tuple[pd.DataFrame, pd.Series]:
    """Three courses of the log-ratio (response, stable, progression), irregular visits,
    missed visits and dropout after the last planned visit of each patient."""
    rng = np.random.default_rng(seed)
    slopes = {"response": -0.25, "stable": 0.0, "progression": 0.2}  # log-ratio per month
    rows, truth = [], {}
    i = 0
    for course, slope in slopes.items():
        for _ in range(n_per_class):
            pid = f"P{i:04d}"
            truth[pid] = course
            n = int(rng.integers(3, 9))
            days = np.r_[0.0, np.sort(rng.uniform(20, 400, n - 1))]
            base = np.exp(rng.normal(np.log(60), 0.4))
            y = np.log(base) + (slope + rng.normal(0, 0.03)) * days / DPM
            y = y + rng.normal(0, 0.05, n)
            rows += [(pid, d, float(np.exp(v))) for d, v in zip(days, y, strict=True)]
            i += 1
    if outlier:
        days = np.array([0.0, 60, 120, 180, 240, 300])
        rows += [("Z9999", d, 60.0 * np.exp(1.5 * np.sin(d / 40))) for d in days]
        truth["Z9999"] = "outlier"
    return _table(rows), pd.Series(truth)


# ---------------------------------------------------------------------- known likelihoods
def test_loglik_matches_explicit_multivariate_normal_mixture():
    """Woodbury + sufficient statistics give the same marginal likelihood as the explicit
    n_i x n_i covariance Z D Z' + sigma_c^2 I (scipy), for 2 classes and random slope."""
    rng = np.random.default_rng(0)
    sizes = [2, 5, 3, 7]
    X = []  # noqa: N806
    ys = []
    for n in sizes:
        t = np.sort(rng.uniform(0, 3, n))
        X.append(np.c_[np.ones(n), t, t * t])
        ys.append(rng.normal(0, 1, n))
    par = lc.Params(
        np.log([0.3, 0.7]),
        np.array([[0.1, -0.2, 0.05], [-0.3, 0.4, -0.1]]),
        np.array([[[0.5, 0.1], [0.1, 0.2]], [[0.3, -0.1], [-0.1, 0.4]]]),
        np.array([0.3, 0.6]),
    )
    expected = 0.0
    for Xi, yi in zip(X, ys, strict=True):  # noqa: N806
        Zi = Xi[:, :2]  # noqa: N806
        dens = sum(
            np.exp(par.log_pi[c])
            * multivariate_normal(
                Xi @ par.beta[c], Zi @ par.D[c] @ Zi.T + par.sigma2[c] * np.eye(len(yi))
            ).pdf(yi)
            for c in range(2)
        )
        expected += np.log(dens)
    starts = np.cumsum([0, *sizes[:-1]])
    s = lc.sufficient_stats(starts, np.vstack(X), np.concatenate(ys), [0, 1])
    assert lc.loglik(s, par) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("class_cov", [False, True])
def test_gradient_matches_finite_differences(class_cov):
    rng = np.random.default_rng(1)
    sizes = rng.integers(2, 7, 30)
    t = rng.uniform(0, 2, sizes.sum())
    X = np.c_[np.ones_like(t), t, t * t]  # noqa: N806
    y = rng.normal(0, 1, t.size)
    s = lc.sufficient_stats(np.cumsum(np.r_[0, sizes[:-1]]), X, y, [0, 1])
    par = lc.Params(
        np.log([0.4, 0.6]),
        np.array([[0.1, 0.2, 0.0], [-0.2, 0.1, 0.1]]),
        np.array([[[0.3, 0.05], [0.05, 0.1]], [[0.2, -0.02], [-0.02, 0.3]]]),
        np.array([0.4, 0.7]),
    )
    if not class_cov:
        par.D[1] = par.D[0]
    _, grad = lc.gradient(s, par, True, class_cov)
    theta = lc.pack(par, True, class_cov)
    h = 1e-6
    num = [
        (
            lc.loglik(s, lc.unpack(theta + h * e, 2, 3, 2, True, class_cov))
            - lc.loglik(s, lc.unpack(theta - h * e, 2, 3, 2, True, class_cov))
        )
        / (2 * h)
        for e in np.eye(theta.size)
    ]
    np.testing.assert_allclose(grad, num, rtol=1e-5, atol=1e-5)


def test_one_class_equals_statsmodels_mixedlm_ml():
    """k = 1 is a linear mixed model: maximum likelihood as statsmodels MixedLM (reml=False)."""
    sm = pytest.importorskip("statsmodels.formula.api")
    table, _ = _planted(25, seed=3)
    model = LatentClassTrajectories(
        1,
        outcome="log",
        random_effects="slope",
        n_knots=0,
        degree=2,
        horizon_days=None,
        class_variance=False,
    ).fit(table)
    df = table.assign(y=np.log(table["target_sum_mm"] + 1.0), t=table["study_day"] / DPM)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsmodels' own convergence notes
        ref = sm.mixedlm("y ~ t + I(t**2)", df, groups=df["patient_id"], re_formula="~t").fit(
            reml=False, method="lbfgs"
        )
    # metevo's optimum is at least statsmodels' and not more than rounding above it
    assert model.log_likelihood_ == pytest.approx(ref.llf, rel=1e-6, abs=1e-4)
    assert model.log_likelihood_ >= ref.llf - 1e-6
    assert model.residual_var_[0] == pytest.approx(ref.scale, rel=1e-3)


# ---------------------------------------------------------------------- recovery and selection
def test_planted_classes_recovered_and_k_chosen_by_bic():
    # patients vary in level and rate around their course: the random intercept + slope model
    # is the true one; k = 4 has a lower BIC but a 2-patient class, so it is refused
    table, truth = _planted(30, seed=5)
    model = LatentClassTrajectories(
        k_range=(1, 5),
        random_effects="slope",
        criterion="bic",
        n_init=4,
        n_converge=1,
        random_state=0,
    ).fit(table)
    assert model.n_classes_ == 3
    ari = adjusted_rand_score(truth.loc[model.patient_ids_], model.labels_)
    assert ari >= 0.95
    # pattern 0 is the best outcome, the last the worst
    best = truth.loc[model.patient_ids_[model.labels_ == 0]].mode()[0]
    worst = truth.loc[model.patient_ids_[model.labels_ == 2]].mode()[0]
    assert (best, worst) == ("response", "progression")
    sel = model.selection_
    assert list(sel.columns) == list(SELECTION_COLUMNS)
    assert sel.loc[sel["selected"], "k"].tolist() == [3]
    assert sel.loc[sel["eligible"], "bic"].idxmin() == sel.index[sel["selected"]][0]
    assert sel["reason"].str.startswith("chosen").sum() == 1


def test_selection_statistics_follow_their_definitions():
    table, _ = _planted(20, seed=6)
    model = LatentClassTrajectories(3, n_init=3, random_state=0).fit(table)
    row = model.selection_.iloc[0]
    w = model.posterior_
    n, k = w.shape
    ent = -(w * np.log(np.clip(w, 1e-300, None))).sum()
    p = model.degree + 1 + model.n_knots
    q = {"none": 0, "intercept": 1, "slope": 2}[model.random_effects]
    n_par = (k - 1) + k * p + q * (q + 1) // 2 + k  # proportions, fixed effects, D, sigma_c
    assert row["n_parameters"] == n_par
    assert row["bic"] == pytest.approx(-2 * row["log_likelihood"] + n_par * np.log(n))
    assert row["aic"] == pytest.approx(-2 * row["log_likelihood"] + 2 * n_par)
    assert row["sabic"] == pytest.approx(-2 * row["log_likelihood"] + n_par * np.log((n + 2) / 24))
    assert row["icl"] == pytest.approx(row["bic"] + 2 * ent)
    assert row["relative_entropy"] == pytest.approx(1 - ent / (n * np.log(k)))
    labels = w.argmax(axis=1)
    appa = [w[labels == c, c].mean() for c in range(k)]
    assert row["appa_min"] == pytest.approx(min(appa))
    np.testing.assert_allclose(model.classes_["appa"], appa)
    assert row["share_posterior_ge_0_8"] == pytest.approx(np.mean(w.max(axis=1) >= 0.8))
    np.testing.assert_allclose(w.sum(axis=1), 1.0)


def test_no_one_patient_class_unless_asked():
    table, truth = _planted(15, seed=7, outlier=True)
    model = LatentClassTrajectories(k_range=(1, 5), n_init=4, n_converge=1, random_state=0).fit(
        table
    )
    sel = model.selection_.set_index("k")
    assert sel.loc[model.n_classes_, "min_pattern_size"] >= 5
    tiny = sel.loc[sel["min_pattern_size"] < 5]
    assert len(tiny) >= 1  # some k isolates the outlier ...
    assert not tiny["eligible"].any()  # ... and is refused
    assert tiny["reason"].str.contains("not eligible: smallest class").all()
    loose = LatentClassTrajectories(
        k_range=(1, 5), n_init=4, random_state=0, min_class_size=0, min_class_share=0.0
    ).fit(table)
    assert loose.selection_["eligible"].all()


def test_horizon_is_the_75th_percentile_of_follow_up_and_later_visits_unused():
    table, _ = _planted(10, seed=8)
    last = table.groupby("patient_id")["study_day"].max()
    model = LatentClassTrajectories(2, n_init=2, random_state=0).fit(table)
    assert model.horizon_days_ == pytest.approx(np.quantile(last, 0.75))
    assert (model.selection_["horizon_days"] == model.horizon_days_).all()
    used = table.loc[table["study_day"] <= model.horizon_days_].groupby("patient_id").size()
    got = pd.Series(model.n_visits_, index=model.patient_ids_)
    pd.testing.assert_series_equal(got, used.loc[got.index], check_names=False)
    assert set(model.patterns_["horizon_days"]) == {model.horizon_days_}


def test_predict_proba_on_training_table_is_the_fitted_posterior():
    table, _ = _planted(10, seed=9)
    model = LatentClassTrajectories(3, n_init=2, random_state=0).fit(table)
    proba = model.predict_proba(table)
    np.testing.assert_allclose(proba.loc[model.patient_ids_].to_numpy(), model.posterior_)
    np.testing.assert_array_equal(model.predict(table).loc[model.patient_ids_], model.labels_)


def test_single_visit_patient_excluded_with_reason():
    table, _ = _planted(8, seed=10)
    table = pd.concat([table, _table([("X1", 0.0, 50.0)])], ignore_index=True)
    model = LatentClassTrajectories(2, n_init=2, random_state=0).fit(table)
    assert "X1" not in set(model.patient_ids_)
    row = model.patterns_.set_index("patient_id").loc["X1"]
    assert row["excluded_reason"].startswith("fewer than 2 visits")
    assert pd.isna(row["pattern_id"])


# ---------------------------------------------------------------------- errors
def test_errors_name_the_problem():
    table, _ = _planted(5, seed=11)
    with pytest.raises(ValueError, match="random_effects must be one of"):
        LatentClassTrajectories(random_effects="quadratic").fit(table)
    with pytest.raises(ValueError, match="outcome must be one of"):
        LatentClassTrajectories(outcome="ratio").fit(table)
    with pytest.raises(TypeError, match="n_classes must be an int"):
        LatentClassTrajectories(n_classes=2.5).fit(table)
    bad = table.copy()
    bad.loc[3, "target_sum_mm"] = -1.0
    with pytest.raises(ValueError, match=r"target_sum_mm must be >= 0; found -1.0 for patient"):
        LatentClassTrajectories(2).fit(bad)
    with pytest.raises(NotFittedError, match="not fitted yet"):
        LatentClassTrajectories().predict(table)
    with pytest.raises(ValueError, match="lacks column"):
        LatentClassTrajectories().fit(table.drop(columns="target_sum_mm"))


def test_selection_table_is_documented_in_the_data_dictionary():
    from metevo.dictionary import validate_table

    table, _ = _planted(8, seed=13)
    model = LatentClassTrajectories(k_range=(1, 3), n_init=2, random_state=0).fit(table)
    validate_table(model.selection_, "pattern_selection")
    bad = model.selection_.assign(extra=1)
    with pytest.raises(Exception, match="extra"):
        validate_table(bad, "pattern_selection")


def test_names_cannot_contradict_the_members_own_courses():
    """A responding class whose confident member never reached -30 % is called "mixed"."""
    table, truth = _planted(20, seed=14)
    model = LatentClassTrajectories(3, random_effects="slope", n_init=3, random_state=0).fit(table)
    assert model.names_[0] == "deep response"  # response course: -25 %/month
    assert model.classes_["n_members_not_responding"].tolist() == [0, 0, 0]
    # a response patient whose visits stop before -30 %: own nadir 0.75
    extra = _table([("Q1", 0.0, 60.0), ("Q1", 30.0, 51.0), ("Q1", 45.0, 45.0)])
    model2 = LatentClassTrajectories(3, random_effects="slope", n_init=3, random_state=0).fit(
        pd.concat([table, extra], ignore_index=True)
    )
    row = model2.patterns_.set_index("patient_id").loc["Q1"]
    assert row["own_nadir_ratio"] == pytest.approx(46.0 / 61.0)
    assert row["pattern_id"] == 0 and row["confidence"] > 0.5
    assert model2.names_[0] == "mixed deep response"
    assert model2.classes_["n_members_not_responding"].tolist() == [1, 0, 0]


def test_tiny_cohort_tries_no_more_classes_than_patients():
    """The demo's 3-patient cohort: k runs to 3 only (not the default 6), k = 1 is chosen
    (no class can hold 5 patients) and a fixed k above the patients is refused by name."""
    t = _table(
        [
            (p, d, v)
            for p, vals in (("a", (50, 40, 30)), ("b", (50, 55, 60)), ("c", (40, 40, 41)))
            for d, v in zip((0, 60, 120), vals, strict=True)
        ]
    )
    model = LatentClassTrajectories(random_state=0).fit(t)
    assert model.selection_["k"].tolist() == [1, 2, 3]
    assert model.n_classes_ == 1 and model.selection_["eligible"].tolist() == [True, False, False]
    with pytest.raises(ValueError, match="only 3 patient\\(s\\) can be modelled.*4 classes"):
        LatentClassTrajectories(4).fit(t)
