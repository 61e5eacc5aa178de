"""Image-free trajectories: schedule, survival and measurement-error options
(metevo.datasets.make_synthetic_trajectories)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from metevo.datasets import make_synthetic_trajectories


def test_schedules_image_the_same_patients_at_other_days():
    a = make_synthetic_trajectories(
        200, seed=1, max_visits=20, visit_interval_days=42, missed_visit_prob=0.0
    )
    b = make_synthetic_trajectories(
        200, seed=1, max_visits=20, visit_interval_days=84, missed_visit_prob=0.0
    )
    ga, gb = a["ground_truth"], b["ground_truth"]
    for col in ("pattern", "d_per_day", "g_per_day", "os_true_days"):
        pd.testing.assert_series_equal(ga[col], gb[col])
    # true progression is defined up to the last planned visit (day ~798 at 6-weekly)
    early = gb.progression_true_day <= 42 * 19 - 7
    assert early.sum() > 100
    pd.testing.assert_series_equal(ga.progression_true_day[early], gb.progression_true_day[early])
    follow = a["patient_trajectories"].query("study_day > 0")
    gaps = follow.groupby("patient_id")["study_day"].diff().dropna()
    assert gaps.between(42 - 14, 42 + 14).all()
    # coarser imaging sees the same progression later
    da = (ga.progression_detected_day - ga.progression_true_day).dropna()
    db = (gb.progression_detected_day - gb.progression_true_day).dropna()
    assert (da >= 0).all() and (db >= 0).all()  # error-free sizes never call PD early
    assert db.median() > da.median() + 14


def test_survival_can_ignore_the_course():
    def medians(survival):
        g = make_synthetic_trajectories(4000, seed=0, max_visits=4, survival=survival)[
            "ground_truth"
        ]
        return g.groupby("pattern").os_true_days.median()

    course, independent = medians("course"), medians("independent")
    assert course.max() / course.min() > 2.5
    assert independent.max() / independent.min() < 1.2


def test_measurement_error_has_the_requested_cv():
    a = make_synthetic_trajectories(500, seed=2, max_visits=6, missed_visit_prob=0.0)
    b = make_synthetic_trajectories(
        500, seed=2, max_visits=6, missed_visit_prob=0.0, measurement_cv=0.08
    )
    key = ["patient_id", "timepoint"]
    m = a["patient_trajectories"].merge(b["patient_trajectories"], on=key, suffixes=("", "_n"))
    m = m[m.target_sum_mm > 0]
    ratio = np.log(m.target_sum_mm_n / m.target_sum_mm)
    assert ratio.std() == pytest.approx(0.08, rel=0.1)


def test_bad_options_are_named():
    with pytest.raises(ValueError, match="survival: expected one of"):
        make_synthetic_trajectories(5, seed=0, max_visits=4, survival="pattern")
    with pytest.raises(ValueError, match="jitter_days"):
        make_synthetic_trajectories(5, seed=0, max_visits=4, visit_interval_days=10, jitter_days=7)
