"""Imaging schedules per pattern (metevo.followup.follow_up)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from metevo.datasets import make_synthetic_trajectories
from metevo.followup import AdaptiveSchedule, follow_up
from metevo.followup._kinetics import DEFAULT_MEASUREMENT_CV, measurement_cv


def _growing_patient(s0=50.0, g=0.005, days=(0, 56, 112)):
    days = np.asarray(days, float)
    return pd.DataFrame(
        {
            "patient_id": "P1",
            "timepoint": [f"V{i}" for i in range(days.size)],
            "study_day": days,
            "target_sum_mm": s0 * np.exp(g * days),
            "n_new_lesions": 0,
        }
    )


def test_delay_by_hand_for_exponential_growth_without_error():
    # S = 50 exp(0.005 t): +20 % at t = ln(1.2)/0.005 = 36.5 days (and +10 mm > 5 mm), first
    # day on the daily grid 37; scans every 42 days call it on day 42, every 84 on day 84.
    res = follow_up(
        _growing_patient(),
        schedules={"q6w": 42, "q12w": 84},
        measurement_cv=0.0,
        n_simulations=3,
        n_boot=0,
    )
    assert res.patients.loc[0, "true_size_progression_day"] == 37.0
    tab = res.table.set_index("schedule")
    assert tab.loc["q6w", "median_delay_days"] == 5.0
    assert tab.loc["q12w", "median_delay_days"] == 47.0
    assert tab.loc["q6w", "detected_8w_share"] == 1.0
    assert tab.loc["q12w", "detected_8w_share"] == 1.0  # 47 days <= 8 weeks
    assert tab.loc["q6w", "early_call_share"] == 0.0  # no measurement error: never early
    # scans until the call: one scan in 42 days, one in 84 days
    assert tab.loc["q6w", "scans_per_year"] == pytest.approx(365.25 / 42)
    assert tab.loc["q12w", "scans_per_year"] == pytest.approx(365.25 / 84)


def test_stable_patient_scan_counts_and_adaptive_schedule():
    flat = _growing_patient(g=0.0)
    res = follow_up(
        flat,
        schedules={"q8w": 56, "adaptive": AdaptiveSchedule(42, 84, 0.10)},
        horizon_days=730.0,
        measurement_cv=0.0,
        n_simulations=2,
        n_boot=0,
    )
    tab = res.table.set_index("schedule")
    assert tab.loc["q8w", "n_progressions"] == 0
    assert np.isnan(tab.loc["q8w", "median_delay_days"])
    assert tab.loc["q8w", "scans_per_year"] == pytest.approx(13 / (730 / 365.25))  # days 56..728
    # adaptive: 42, then stable -> every 84: 42, 126, ..., 714 -> 9 scans in 2 years
    assert tab.loc["adaptive", "scans_per_year"] == pytest.approx(9 / (730 / 365.25))


def test_measurement_error_calls_stable_disease_early():
    # a flat sum never truly progresses by size; a new lesion appears at rate 1/1000 days; with
    # a 10 % CV, +20 % over the (noisy, biased low) nadir is soon reached by chance
    rows = []
    for i in range(20):
        t = _growing_patient(g=0.0).assign(patient_id=f"P{i}")
        t.loc[t.index[-1], "n_new_lesions"] = int(i == 0)  # one appearance in 20 x ~84 days
        rows.append(t)
    res = follow_up(
        pd.concat(rows), schedules={"q6w": 42}, measurement_cv=0.10, n_simulations=10, n_boot=0
    )
    row = res.table.set_index("schedule").loc["q6w"]
    assert row["n_progressions"] > 0
    assert row["early_call_share"] > 0.5
    assert row["median_delay_days"] < 0
    quiet = follow_up(
        pd.concat(rows), schedules={"q6w": 42}, measurement_cv=0.0, n_simulations=10, n_boot=0
    )
    assert quiet.table["early_call_share"].iloc[0] == 0.0


def test_measurement_cv_from_close_visits_and_default():
    rng = np.random.default_rng(0)
    rows = []
    for i in range(60):
        s = 40.0 * np.exp(rng.normal(0, 0.07, 2))  # two reads 7 days apart, CV 7 %
        rows += [(f"P{i}", "V0", 0.0, s[0]), (f"P{i}", "V1", 7.0, s[1])]
    t = pd.DataFrame(rows, columns=["patient_id", "timepoint", "study_day", "target_sum_mm"])
    cv, source, n = measurement_cv(t)
    assert n == 60 and "60 visit pairs" in source
    assert cv == pytest.approx(0.07, rel=0.25)
    far = t.assign(study_day=t.study_day * 10)
    cv, source, n = measurement_cv(far)
    assert (cv, n) == (DEFAULT_MEASUREMENT_CV, 0) and "Oxnard" in source


def _observed(cohort, horizon):
    g = cohort["ground_truth"]
    sel = g.progression_true_day <= horizon
    return (g.progression_detected_day - g.progression_true_day)[sel].fillna(np.inf).to_numpy()


def _boot_ci(delays, stat, rng, n_boot=300):
    reps = [stat(delays[rng.integers(0, delays.size, delays.size)]) for _ in range(n_boot)]
    return np.quantile(reps, [0.025, 0.975])


@pytest.mark.parametrize(
    "n", [150, pytest.param(600, marks=pytest.mark.slow)], ids=["150_patients", "600_patients"]
)
def test_simulated_delays_match_the_cohort_imaged_with_each_schedule(n):
    """Fit on the 8-weekly cohort, predict the 6- and 12-weekly delays; generate the same patients
    imaged 6- and 12-weekly and compare (overlapping 95 % intervals)."""
    seed, cv, horizon = 11, 0.05, 365.0
    base = make_synthetic_trajectories(
        n, seed=seed, max_visits=40, missed_visit_prob=0.0, measurement_cv=cv
    )
    res = follow_up(
        base["patient_trajectories"],
        patterns=base["ground_truth"],
        schedules={"q6w": 42, "q12w": 84},
        horizon_days=horizon,
        n_boot=150,
        jitter_days=7,  # as the generator's visits
        seed=1,
    )
    assert res.measurement_cv == DEFAULT_MEASUREMENT_CV  # no close visits: the literature value
    sim = res.table[res.table.pattern == "all"].set_index("schedule")
    rng = np.random.default_rng(0)
    stats = {
        "median_delay": lambda d: np.quantile(d, 0.5, method="inverted_cdf"),
        "detected_8w": lambda d: np.mean(d <= 56),
    }
    cols = {"median_delay": "median_delay", "detected_8w": "detected_8w"}
    for name, interval in (("q6w", 42), ("q12w", 84)):
        other = make_synthetic_trajectories(
            n,
            seed=seed,
            max_visits=40,
            visit_interval_days=interval,
            missed_visit_prob=0.0,
            measurement_cv=cv,
        )
        obs = _observed(other, horizon)
        assert obs.size > n // 2
        for stat, fn in stats.items():
            lo, hi = _boot_ci(obs, fn, rng)
            prefix = cols[stat]
            s_lo = sim.loc[name, f"{prefix}_ci_lower"]
            s_hi = sim.loc[name, f"{prefix}_ci_upper"]
            assert s_lo <= hi and lo <= s_hi, (name, stat, (lo, hi), (s_lo, s_hi))
    # and the schedules are told apart: 12-weekly scans see progression weeks later
    assert sim.loc["q12w", "median_delay_ci_lower"] > sim.loc["q6w", "median_delay_ci_upper"] + 14


def test_bad_input_is_named():
    t = _growing_patient()
    with pytest.raises(ValueError, match=r"missing column\(s\) \['target_sum_mm'\]"):
        follow_up(t.drop(columns="target_sum_mm"))
    with pytest.raises(ValueError, match=r"schedules\['weekly'\]: expected a positive interval"):
        follow_up(t, schedules={"weekly": -7})
    bad = t.copy()
    bad.loc[1, "study_day"] = np.nan
    with pytest.raises(ValueError, match="patient 'P1', timepoint 'V1' has no 'study_day'"):
        follow_up(bad)
    with pytest.raises(ValueError, match=r"jitter_days: expected an integer in \[0, 21\)"):
        follow_up(t, schedules={"q6w": 42}, jitter_days=30)
    with pytest.raises(ValueError, match="AdaptiveSchedule: expected 0 < fast_days"):
        AdaptiveSchedule(84, 42)
