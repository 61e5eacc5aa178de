"""Landmark analysis without look-ahead (metevo.survival.landmark_pattern_survival)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from metevo.patterns import EvolutionPatterns, LatentClassTrajectories, match_patterns
from metevo.survival import landmark_pattern_survival

L = 168.0


def _cohort(seed: int = 0, n: int = 80):
    """Two planted pre-landmark courses (ratio to baseline 0.5 or 1.6 by day 112, then flat).

    Scans on days 0, 56, 112, 150. Half of each course (the 'leak' patients) also have a scan on
    day L + 7 = 175 showing progression (3x their day-150 sum) and die soon after; the other
    half have no post-landmark scan. Patients 0-5 die before the landmark (day 100).
    """
    rng = np.random.default_rng(seed)
    rows, clin = [], []
    for i in range(n):
        pid = f"P{i:03d}"
        course = i % 2  # 0 responder, 1 progressor
        leak = (i // 2) % 2 == 1
        base = rng.uniform(40, 90)
        end = 0.5 if course == 0 else 1.6
        days = [0.0, 56.0, 112.0, 150.0]
        ratio = [1.0, 1.0 + (end - 1.0) * 0.6, end, end]
        if leak:
            days.append(L + 7)
            ratio.append(3.0 * end)
        noise = np.exp(rng.normal(0, 0.03, len(days)))
        noise[0] = 1.0
        for j, (d, r) in enumerate(zip(days, ratio, strict=True)):
            rows.append((pid, f"T{j}", d, d, base * r * noise[j]))
        os_days = 100.0 if i < 6 else (L + rng.uniform(20, 60) if leak else rng.uniform(400, 900))
        clin.append((pid, os_days, 1 if (i < 6 or leak) else int(rng.random() < 0.5)))
    traj = pd.DataFrame(
        rows, columns=["patient_id", "timepoint", "days", "study_day", "target_sum_mm"]
    )
    clinical = pd.DataFrame(clin, columns=["patient_id", "os_days", "os_event"])
    truth = pd.DataFrame(
        {
            "patient_id": [f"P{i:03d}" for i in range(n)],
            "course": [i % 2 for i in range(n)],
            "leak": [(i // 2) % 2 == 1 for i in range(n)],
        }
    )
    return traj, clinical, truth


def _estimators():
    return {
        "kmeans": EvolutionPatterns(k_range=(2, 4), n_bootstrap=5, random_state=0),
        "lcmm": LatentClassTrajectories(k_range=(2, 3), n_init=2, random_state=0),
    }


@pytest.mark.parametrize("kind", ["kmeans", "lcmm"])
def test_a_scan_after_the_landmark_cannot_shape_the_pattern(kind):
    traj, clin, truth = _cohort()
    before = traj[traj["study_day"] <= L]
    est = _estimators()[kind]
    res = landmark_pattern_survival(est, traj, clin, landmark_days=L, covariates=[], n_splits=4)
    cut = landmark_pattern_survival(est, before, clin, landmark_days=L, covariates=[], n_splits=4)
    a = res.assignment.set_index("patient_id")["pattern_id"]
    b = cut.assignment.set_index("patient_id")["pattern_id"].loc[a.index]
    assert (a == b).all()  # the day-175 PD scans changed nothing
    np.testing.assert_array_equal(res.model.grid_days_, cut.model.grid_days_)
    np.testing.assert_allclose(res.model.trajectory_centers_, cut.model.trajectory_centers_)
    # the pattern is the planted pre-landmark course, whatever happened on day 175
    merged = res.assignment.merge(truth, on="patient_id")
    assert merged.groupby("course")["pattern_id"].nunique().eq(1).all()
    assert merged.groupby("leak")["pattern_id"].nunique().eq(2).all()
    assert res.model.followup_days_.max() <= L


def test_patients_with_the_event_before_the_landmark_are_excluded_and_counted():
    traj, clin, _ = _cohort()
    res = landmark_pattern_survival(
        _estimators()["kmeans"], traj, clin, landmark_days=L, covariates=[], n_splits=4
    )
    early = {f"P{i:03d}" for i in range(6)}
    assert res.n_excluded == 6
    assert (res.km["n_excluded_landmark"] == 6).all() and (
        res.cox["n_excluded_landmark"] == 6
    ).all()
    assert not early & set(res.assignment["patient_id"]) and not early & set(res.model.patient_ids_)
    assert not early & set(res.data["patient_id"]) and len(res.data) == 74
    assert (res.data["time_days"] > 0).all()


def test_k_is_selected_within_the_landmark_data_and_names_follow_the_full_fit():
    traj, clin, truth = _cohort()
    # the full follow-up fit is forced to 3 patterns; before the landmark there are 2 courses
    full = EvolutionPatterns(3, n_bootstrap=0, random_state=0).fit(traj)
    res = landmark_pattern_survival(
        full, traj, clin, landmark_days=L, reference=full, covariates=[], n_splits=4
    )
    assert full.n_patterns_ == 3 and res.model.n_patterns_ == 2
    assert res.model.selection_["k"].tolist() == list(range(2, 9)) and res.model.landmark_days == L
    # each landmark pattern carries the name of the full-fit pattern it matches by centroid
    pairs = match_patterns(full, res.model)
    assert pairs["one_to_one"].all() and pairs["compared_until_days"].iloc[0] == L
    assert res.model.names_ == pairs["reference_pattern"].tolist()
    assert set(res.model.patterns_["pattern"].dropna()) == set(res.model.names_)
    # each planted course keeps one landmark name, one its patients carry in the full fit
    full_names = full.patterns_.merge(truth, on="patient_id").groupby("course")["pattern"].agg(set)
    lm_names = res.assignment.merge(truth, on="patient_id").groupby("course")["pattern"].agg(set)
    for course in (0, 1):
        assert len(lm_names[course]) == 1 and lm_names[course] <= full_names[course]


def test_a_renamed_landmark_model_names_every_table_alike():
    """The latent-class model stores its names in patterns_, classes_ and posteriors_; renaming
    the landmark fit after the full fit must reach all three."""
    from metevo.survival._landmark import _rename_like

    traj, _, _ = _cohort()
    full = LatentClassTrajectories(2, n_init=2, random_state=0).fit(traj)
    lm = LatentClassTrajectories(2, landmark_days=L, n_init=2, random_state=0).fit(traj)
    _rename_like(lm, full)
    assert lm.names_ == match_patterns(full, lm)["reference_pattern"].tolist()
    for table in (lm.patterns_, lm.classes_, lm.posteriors_):
        rows = table.dropna(subset=["pattern_id"])
        assert rows["pattern"].tolist() == [lm.names_[int(i)] for i in rows["pattern_id"]]


def test_landmark_errors():
    traj, clin, _ = _cohort()
    with pytest.raises(ValueError, match="landmark_days must be > 0"):
        landmark_pattern_survival(_estimators()["kmeans"], traj, clin, landmark_days=0)
    with pytest.raises(TypeError, match="no n_patterns / n_classes"):
        landmark_pattern_survival(object(), traj, clin, landmark_days=L)
