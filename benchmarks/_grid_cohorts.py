"""Independent generator of image-free target-sum trajectories for the pattern benchmarks.

Written apart from :mod:`metevo.datasets` on purpose (issue 13): the patterns are measured on
courses the package was not tuned on. Each patient follows one planted *course* (ratio of the
target sum to baseline as a function of days since treatment start), with patient-level
variation of its rates, multiplicative measurement noise, a visit every ``schedule_weeks``
(+/- 7 days), missed visits, and informative dropout: imaging stops at the first RECIST 1.1
progression seen at a visit (+20 % and +5 mm over the nadir), or at death/censoring.

Courses (ratio to baseline ``r(t)``, rates per day, each multiplied per patient by a
log-normal factor with sd 0.25)::

    deep_response      0.35 + 0.65 exp(-t / 50)            nadir -65 %, durable
    relapse            0.9 exp(-0.015 t) + 0.1 exp(0.008 t) nadir about -60 % near day 130,
                                                            back to baseline by about day 290
    stable             exp(0.0002 t)                         flat
    progression        exp(0.003 t)                          +20 % by about day 60
    partial_response   0.72 + 0.28 exp(-t / 40)            plateau -28 %, durable
    slow_progression   exp(0.0011 t)                         +20 % by about day 165

3 courses use the first three of (deep_response, stable, progression); 4 add relapse; 5 add
partial_response; 6 add slow_progression.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

COURSES = (
    "deep_response",
    "stable",
    "progression",
    "relapse",
    "partial_response",
    "slow_progression",
)
NOISE_SD = 0.06  # log-scale sd of the measured target sum at noise x1 (RECIST reader CV ~6 %)


def _ratio(course: str, t: np.ndarray, f: np.ndarray) -> np.ndarray:
    if course == "deep_response":
        return 0.35 + 0.65 * np.exp(-t * f / 50.0)
    if course == "relapse":
        return 0.9 * np.exp(-0.015 * f * t) + 0.1 * np.exp(0.008 * f * t)
    if course == "stable":
        return np.exp(0.0002 * f * t)
    if course == "progression":
        return np.exp(0.003 * f * t)
    if course == "partial_response":
        return 0.72 + 0.28 * np.exp(-t * f / 40.0)
    if course == "slow_progression":
        return np.exp(0.0011 * f * t)
    raise ValueError(course)


def make_cohort(
    n_patients: int,
    *,
    n_courses: int = 4,
    schedule_weeks: int = 8,
    missed: float = 0.25,
    noise: float = 1.0,
    seed: int = 0,
    max_days: float = 720.0,
) -> tuple[pd.DataFrame, pd.Series]:
    """(trajectories, truth): ``patient_id, timepoint, study_day, days, target_sum_mm`` rows
    and the planted course per patient (index ``patient_id``)."""
    if not 3 <= n_courses <= len(COURSES):
        raise ValueError(f"n_courses must be in 3..{len(COURSES)}; found {n_courses}.")
    rng = np.random.default_rng(seed)
    courses = np.array(COURSES[:n_courses])
    assigned = courses[rng.permutation(np.arange(n_patients) % n_courses)]
    n_visits = int(max_days // (7 * schedule_weeks)) + 1
    rows = []
    for i, course in enumerate(assigned):
        pid = f"G{i:05d}"
        f = float(np.exp(rng.normal(0.0, 0.25)))
        base = float(np.exp(rng.normal(np.log(60.0), 0.5)))
        end = rng.uniform(300.0, max_days)  # death or administrative censoring
        planned = np.arange(n_visits) * 7.0 * schedule_weeks
        days = planned + np.r_[0.0, rng.integers(-7, 8, n_visits - 1)]
        keep = np.r_[True, rng.random(n_visits - 1) >= missed] & (days <= end)
        days = days[keep]
        true = base * _ratio(course, days, np.full(days.shape, f))
        meas = true * np.exp(rng.normal(0.0, NOISE_SD * noise, days.size))
        nadir = np.minimum.accumulate(meas)
        pd_hit = (meas >= 1.2 * nadir) & (meas - nadir >= 5.0)
        pd_hit[0] = False
        last = int(np.argmax(pd_hit)) if pd_hit.any() else days.size - 1
        for j in range(last + 1):
            rows.append((pid, f"V{j}", float(days[j]), float(days[j]), float(meas[j])))
    traj = pd.DataFrame(
        rows, columns=["patient_id", "timepoint", "study_day", "days", "target_sum_mm"]
    )
    truth = pd.Series(assigned, index=[f"G{i:05d}" for i in range(n_patients)], name="course")
    truth.index.name = "patient_id"
    return traj, truth
