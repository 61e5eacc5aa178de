"""Tests of metevo.patterns (evolution patterns) and its representation/k-means helpers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from metevo.exceptions import NotFittedError
from metevo.patterns import EvolutionPatterns, evolution_patterns, name_pattern
from metevo.patterns import _features as pf
from metevo.patterns._masked_kmeans import (
    masked_kmeans,
    masked_pairwise_distances,
    masked_sq_distances,
)


def _traj(rows):
    return pd.DataFrame(rows, columns=["patient_id", "study_day", "target_sum_mm"])


def _toy(n_per=6, seed=0):
    """Three clean shapes (shrink, grow, flat), visits every 56 d, some early dropout."""
    rng = np.random.default_rng(seed)
    rows = []
    for shape, f in (
        ("down", lambda t: 0.3 + 0.7 * np.exp(-t / 40)),
        ("up", lambda t: np.exp(t / 150)),
        ("flat", lambda t: np.ones_like(t)),
    ):
        for i in range(n_per):
            days = np.array([0, 56, 112, 168, 224])
            if i % 3 == 0:
                days = days[:3]  # leaves early
            vals = 80 * f(days.astype(float)) * rng.lognormal(0, 0.02, days.size)
            rows += [(f"{shape}{i}", int(d), float(v)) for d, v in zip(days, vals, strict=True)]
    return _traj(rows)


# ---------------------------------------------------------------- masked k-means
def test_masked_distances_match_a_loop():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(7, 5))
    w = (rng.uniform(size=(7, 5)) > 0.3).astype(float)
    w[:, 0] = 1
    xz = np.where(w > 0, x, 0.0)
    c = rng.normal(size=(3, 5))
    d = masked_sq_distances(xz, w, c)
    for i in range(7):
        o = w[i] > 0
        for j in range(3):
            expect = 5 / o.sum() * ((x[i, o] - c[j, o]) ** 2).sum()
            assert d[i, j] == pytest.approx(expect)
    p = masked_pairwise_distances(xz, w)
    for i in range(7):
        for j in range(7):
            o = (w[i] > 0) & (w[j] > 0)
            expect = np.sqrt(5 / o.sum() * ((x[i, o] - x[j, o]) ** 2).sum()) if i != j else 0.0
            assert p[i, j] == pytest.approx(expect, abs=1e-6)


def test_masked_kmeans_ignores_missing_tails():
    # two groups that differ early; the late values of group A are missing, not zero
    a = np.array([[0.0, -1.0, np.nan, np.nan]] * 5)
    b = np.array([[0.0, 1.0, 1.0, 1.0]] * 5)
    x = np.vstack([a, b])
    w = np.isfinite(x).astype(float)
    res = masked_kmeans(np.nan_to_num(x), w, 2, rng=np.random.default_rng(0))
    assert adjusted_rand_score(res.labels, [0] * 5 + [1] * 5) == 1.0
    ja = res.labels[0]
    assert res.support[ja].tolist() == [1.0, 1.0, 0.0, 0.0]
    assert res.centers[ja, 1] == pytest.approx(-1.0)


# ---------------------------------------------------------------- representation
def test_representation_interpolates_log_ratio_and_masks_after_dropout():
    t = _traj(
        [("A", -10, 100.0), ("A", 46, 50.0), ("A", 102, 50.0), ("B", 0, 60.0), ("B", 56, 60.0)]
    )
    table = pf.check_trajectories(t, ("target_sum_mm",))
    rep = pf.build_representation(
        table,
        ("target_sum_mm",),
        grid_days=None,
        horizon_days=112.0,
        grid_step_days=28.0,
        landmark_days=None,
        visit_tolerance_days=14,
        min_followup_fraction=0.75,
    )
    assert rep.grid_days.tolist() == [0, 28, 56, 84, 112]
    a = rep.values[0, 0]
    r = np.log(51 / 101)
    # day 0 lies 10/56 of the way from the baseline (day -10) to day 46
    assert a[0] == pytest.approx(r * 10 / 56)
    assert a[1] == pytest.approx(r * 38 / 56)
    assert a[2] == pytest.approx(r) and a[3] == pytest.approx(r)
    assert np.isnan(a[4])  # after the last visit (day 102): masked, never filled
    b = rep.values[1, 0]
    assert b[:3].tolist() == [0, 0, 0] and np.isnan(b[3:]).all()
    assert rep.followup_days.tolist() == [102, 56]


def test_one_visit_and_zero_baseline_are_excluded_with_reasons():
    t = pd.concat([_toy(), _traj([("solo", 0, 50.0), ("zero", 0, 0.0), ("zero", 56, 10.0)])])
    m = EvolutionPatterns(3, n_bootstrap=0, random_state=0).fit(t)
    table = m.patterns_
    solo = table.set_index("patient_id").loc["solo"]
    assert solo["excluded_reason"] == "one visit only: no trajectory"
    assert pd.isna(solo["pattern"]) and pd.isna(solo["pattern_id"])
    assert "log-ratio undefined" in table.set_index("patient_id").loc["zero", "excluded_reason"]
    assert len(table) == t["patient_id"].nunique()


def test_landmark_mode_ignores_scans_after_the_landmark():
    t = _toy()
    late = t.copy()
    late.loc[late["study_day"] > 70, "target_sum_mm"] *= 5.0  # changes after the landmark only
    kw = dict(n_bootstrap=0, random_state=0, landmark_days=56, visit_tolerance_days=14)
    m1 = EvolutionPatterns(2, **kw).fit(t)
    m2 = EvolutionPatterns(2, **kw).fit(late)
    assert m1.grid_days_[-1] == 56 and m1.horizon_days_ == 56
    np.testing.assert_array_equal(m1.labels_, m2.labels_)
    assert (m1.patterns_["landmark_days"] == 56).all()


# ---------------------------------------------------------------- names
@pytest.mark.parametrize(
    ("ratios", "name"),
    [
        ([1.0, 0.6, 0.4, 0.35], "deep response"),
        ([1.0, 0.8, 0.65, 0.62], "response"),
        ([1.0, 0.6, 0.8, 1.1], "response then relapse"),
        ([1.0, 0.3, 0.3, 0.4], "deep response"),  # regrowth from a deep nadir stays below 70 %
        ([1.0, 1.3, 1.7, 2.2], "progression"),
        ([1.0, 0.95, 1.0, 1.05], "stable"),
    ],
)
def test_name_pattern(ratios, name):
    assert name_pattern(np.log(ratios)) == name


def test_name_relapses_uses_each_members_rise_over_its_own_nadir():
    from metevo.patterns._names import name_relapses

    names = ["deep response", "deep response", "progression"]
    rises = [np.log([1.0, 1.05, 1.1]), np.log([1.3, 1.5, 1.1]), np.log([1.5, 1.6, 2.0])]
    # only a responding pattern whose median member left >= 20 % over its nadir is renamed
    assert name_relapses(names, rises) == ["deep response", "response then relapse", "progression"]


def test_over_nadir_channel_is_the_rise_over_the_running_nadir():
    t = pd.DataFrame(
        {
            "patient_id": ["a"] * 4 + ["b"] * 4,
            "study_day": [0, 56, 112, 168] * 2,
            "target_sum_mm": [39.0, 19.0, 29.0, 14.0, 39.0, 49.0, 59.0, 79.0],
        }
    )
    table = pf.check_trajectories(t, ("target_sum_mm", pf.OVER_NADIR))
    rep = pf.build_representation(
        table,
        ("target_sum_mm", pf.OVER_NADIR),
        grid_days=np.array([0.0, 56.0, 112.0, 168.0]),
        horizon_days=168,
        grid_step_days=56,
        landmark_days=None,
        visit_tolerance_days=14,
        min_followup_fraction=0.5,
        min_ratio=None,
    )
    # log((v + 1) / (nadir + 1)) with the nadir of the visits so far (hand calculation)
    np.testing.assert_allclose(rep.values[0, 1], np.log([1.0, 1.0, 30 / 20, 1.0]))
    np.testing.assert_allclose(rep.values[1, 1], np.log([1.0, 50 / 40, 60 / 40, 80 / 40]))


def test_name_pattern_ignores_unsupported_tail():
    c = np.log([1.0, 0.6, 0.5, 2.0])  # the 2.0 is shaped by 10 % of the members only
    assert name_pattern(c, np.array([1, 1, 0.9, 0.1])) == "deep response"


# ---------------------------------------------------------------- estimator
def test_fit_recovers_toy_shapes_names_and_order():
    t = _toy()
    m = EvolutionPatterns(
        n_patterns="auto", k_range=(2, 4), n_bootstrap=5, dropout_weight=0, random_state=0
    ).fit(t)
    assert m.n_patterns_ == 3
    truth = [pid.rstrip("0123456789") for pid in m.patient_ids_]
    assert adjusted_rand_score(truth, m.labels_) == 1.0
    assert m.names_ == ["deep response", "stable", "progression"]  # ordered by outcome
    sel = m.selection_
    assert sel["k"].tolist() == [2, 3, 4] and sel["selected"].sum() == 1
    assert sel.loc[sel["selected"], "k"].item() == 3
    assert ((sel["stability_ari_mean"] >= -1) & (sel["stability_ari_mean"] <= 1)).all()
    assert ((m.confidence_ >= 1 / 3 - 1e-9) & (m.confidence_ <= 1)).all()
    pred = m.predict(t)
    np.testing.assert_array_equal(pred.loc[m.patient_ids_].to_numpy(), m.labels_)
    assert "progression" in repr(m) and "<table" in m._repr_html_()
    assert m.summary["n_patients"].sum() == len(m.labels_)


def test_functional_twin_equals_estimator():
    t = _toy()
    a = evolution_patterns(t, 3, n_bootstrap=0, random_state=3)
    b = EvolutionPatterns(3, n_bootstrap=0, random_state=3).fit(t).patterns_
    pd.testing.assert_frame_equal(a, b)


def test_dropout_weight_separates_early_leavers():
    # identical curves while observed; half of the patients leave at day 56
    rows = []
    for i in range(10):
        days = [0, 56] if i < 5 else [0, 56, 112, 168]
        rows += [(f"P{i}", d, 100.0) for d in days]
    t = _traj(rows)
    with pytest.raises(ValueError, match="same trajectory"):
        EvolutionPatterns(2, n_bootstrap=0, dropout_weight=0, horizon_days=168).fit(t)
    m = EvolutionPatterns(
        2, n_bootstrap=0, dropout_weight=1.0, horizon_days=168, random_state=0
    ).fit(t)
    assert adjusted_rand_score(m.labels_, [0] * 5 + [1] * 5) == 1.0


@pytest.mark.parametrize(
    ("method", "representation"),
    [
        ("euclidean", None),
        pytest.param("dtw", "sequence", marks=pytest.mark.slow),  # numba compilation: ~10 s
        pytest.param("softdtw", None, marks=pytest.mark.slow),
        pytest.param("kshape", None, marks=pytest.mark.slow),  # ~30 s
        ("gmm", None),
        ("kmeans", "multivariate"),
    ],
)
def test_other_methods_run_and_separate_toy_shapes(method, representation):
    t = _toy()
    t["total_volume_ml"] = (t["target_sum_mm"] / 20) ** 3
    t["n_lesions"] = 3
    m = EvolutionPatterns(
        3, method=method, representation=representation, n_bootstrap=2, n_init=2, random_state=0
    ).fit(t)
    truth = [pid.rstrip("0123456789") for pid in m.patient_ids_]
    # kshape z-normalises (shape only): flat vs. shrink is a weaker contrast for it
    assert adjusted_rand_score(truth, m.labels_) >= (0.3 if method == "kshape" else 0.8)
    assert len(m.selection_) == 1 and m.patterns_["method"].eq(method).all()
    if method == "gmm":
        assert np.isfinite(m.selection_["bic"]).all()


# ---------------------------------------------------------------- bad input
def test_bad_parameters_and_inputs_raise_clear_errors():
    t = _toy()
    with pytest.raises(ValueError, match="method must be one of"):
        EvolutionPatterns(method="hdbscan").fit(t)
    with pytest.raises(ValueError, match="cannot use representation='kinetics'"):
        EvolutionPatterns(method="kmeans", representation="kinetics").fit(t)
    with pytest.raises(TypeError, match="n_patterns must be an int"):
        EvolutionPatterns(n_patterns="five").fit(t)
    with pytest.raises(ValueError, match="lacks column"):
        EvolutionPatterns().fit(t.drop(columns="target_sum_mm"))
    with pytest.raises(TypeError, match="must be a pandas DataFrame"):
        EvolutionPatterns().fit(t.to_numpy())
    small = t[t["patient_id"].isin(["up0", "down0", "flat0", "up1"])]
    with pytest.raises(ValueError, match="fewer patients with a trajectory"):
        EvolutionPatterns(5, n_bootstrap=0).fit(small)
    with pytest.raises(NotFittedError, match="not fitted"):
        EvolutionPatterns().predict(t)
    with pytest.raises(ValueError, match="only 1 patient"):
        EvolutionPatterns().fit(t[t["patient_id"] == "up1"])


# ---------------------------------------------------------------- synthetic cohort
@pytest.fixture(scope="module")
def synthetic():
    from metevo.datasets import make_synthetic_trajectories

    return make_synthetic_trajectories(2000, seed=0)


def test_planted_patterns_recovery_on_the_synthetic_cohort(synthetic):
    """Adjusted Rand index >= 0.8 against the planted patterns (issue 7 validation).

    The multivariate representation with lesion spread and the burden's rise over its running
    nadir (the RECIST progression quantity) separates response-then-relapse from deep response
    and progression; measured 0.83 (seeds 1 and 2: 0.83, 0.85).
    """
    truth = synthetic["ground_truth"].set_index("patient_id")["pattern"]
    m = EvolutionPatterns(5, representation="multivariate", n_bootstrap=0, random_state=0).fit(
        synthetic["patient_trajectories"], lesion_trajectories=synthetic["lesion_trajectories"]
    )
    table = m.patterns_.dropna(subset=["pattern"])
    ari = adjusted_rand_score(truth.loc[table["patient_id"]], table["pattern"])
    assert ari >= 0.8
    # the deep responders are found as one pattern, with the best outcome rank
    deep = table[truth.loc[table["patient_id"]].to_numpy() == "deep_response"]
    assert (deep["pattern_id"] == 0).mean() >= 0.9
    assert m.names_[0] == "deep response"
    # the lesion spread channel singles out the mixed responses
    mixed = table[truth.loc[table["patient_id"]].to_numpy() == "mixed_response"]
    assert mixed["pattern"].str.startswith("mixed response").mean() >= 0.6
    # the relapse is seen per patient (rise over the own nadir at the end of follow-up)
    # (named "mixed response then relapse" when a confidently assigned member never fell by
    # 30 % itself: the patient-level name check of issue 13)
    relapse = table[truth.loc[table["patient_id"]].to_numpy() == "response_then_relapse"]
    assert relapse["pattern"].str.contains("response then relapse").mean() >= 0.7


def _selection(stability: list[float]) -> pd.DataFrame:
    """A pattern_selection table of k = 2..4 (silhouette rising, k = 4 has a 1-patient
    pattern)."""
    return pd.DataFrame(
        {
            "k": [2, 3, 4],
            "silhouette": [0.40, 0.55, 0.70],
            "stability_ari_mean": stability,
            "min_pattern_size": [30, 6, 1],
            "n_patients": 100,
        }
    )


def test_k_with_a_tiny_pattern_is_not_chosen_unless_asked():
    """Issue 13: k = 5 had been chosen with a 1-patient pattern (best silhouette)."""
    sel = _selection([0.90, 0.85, 0.80])
    assert EvolutionPatterns()._choose_k(sel) == 3  # k = 4 has a 1-patient pattern
    # 5 % of 100 is 5 patients: k = 3's smallest pattern (6) passes, with 150 patients it fails
    assert EvolutionPatterns()._choose_k(sel.assign(n_patients=150)) == 2
    loose = EvolutionPatterns(min_pattern_share=0.0, min_pattern_size=0)
    assert loose._choose_k(sel) == 4
    # no k stable enough: the most stable among the k with large enough patterns
    unstable = sel.assign(stability_ari_mean=[0.5, 0.6, 0.7])
    assert EvolutionPatterns()._choose_k(unstable) == 3


def test_pattern_selection_says_why_k_was_chosen():
    """Issue 13 item 2: the reason column of the k-means path, for each rule and fallback."""
    sel = _selection([0.90, 0.70, 0.80])
    first = sel.copy()
    assert EvolutionPatterns()._choose_k(first) == 2
    assert first["eligible"].tolist() == [True, True, False]
    assert first["reason"].tolist() == [
        "chosen: best silhouette among k with bootstrap stability ARI >= 0.75 and smallest "
        "pattern >= 5 patients",
        "bootstrap stability ARI 0.70 < 0.75",
        "not eligible: smallest pattern 1 < 5",
    ]
    unstable = sel.assign(stability_ari_mean=[0.5, 0.6, 0.7])
    assert EvolutionPatterns()._choose_k(unstable) == 3
    assert unstable.loc[1, "reason"].startswith("chosen (fallback): no k reached bootstrap")
    tiny = sel.assign(min_pattern_size=[2, 3, 1])  # no k has 5 patients in its smallest
    assert EvolutionPatterns()._choose_k(tiny) == 3
    assert tiny.loc[1, "reason"] == (
        "chosen (fallback): no k has a smallest pattern >= 5 patients; the k with the "
        "largest smallest pattern"
    )
    no_boot = sel.copy()
    assert EvolutionPatterns(n_bootstrap=0)._choose_k(no_boot) == 3
    assert no_boot.loc[0, "reason"] == "silhouette 0.400 vs 0.550 for k=3"


def test_kmeans_horizon_is_the_75th_percentile_of_follow_up():
    """Issue 13 item 3: the automatic horizon comes from the cohort (75th percentile of the
    patients' last visit day, floored to the 28-day grid) and is in the output tables."""
    rows = []
    for i, last in enumerate([112, 168, 224, 280, 336, 392, 448, 504]):
        days = np.arange(0, last + 1, 56)
        ratio = np.exp((-1) ** i * 0.002 * days)
        rows += [(f"P{i}", int(d), 50.0 * r) for d, r in zip(days, ratio, strict=True)]
    t = pd.DataFrame(rows, columns=["patient_id", "study_day", "target_sum_mm"])
    m = EvolutionPatterns(2, n_bootstrap=0, random_state=0).fit(t)
    expected = np.quantile([112, 168, 224, 280, 336, 392, 448, 504], 0.75)  # 406
    assert m.horizon_days_ == 28 * np.floor(expected / 28) == 392
    assert m.selection_["horizon_days"].eq(392).all()
    assert m.selection_["horizon_rule"].iloc[0].startswith("75% quantile")
    assert m.patterns_["horizon_days"].eq(392).all()
    # dropout stays masked: the curve of the patient followed to day 112 ends there
    assert np.isnan(m.curves_[0, m.grid_days_ > 112]).all()
