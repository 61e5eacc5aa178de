"""Features of the trajectory observed up to a landmark (what a clinician knows at a visit).

Per visit (running over the patient's visits up to and including it), on the tumour size ``S``
(the RECIST target sum, or the sum of all diameters for a patient without a measurable target;
sizes enter as ``log(S + 1 mm)`` so that a complete response is finite):

========================  ==================================================================
``log_burden_baseline``   ``log(S0 + 1)``, the baseline burden
``log_rel_baseline``      ``log((S + 1) / (S0 + 1))``, size relative to baseline
``log_rel_nadir``         ``log((S + 1) / (nadir + 1))``, size relative to the nadir so far
``growth_per_month``      ``log((S + 1) / (S_prev + 1))`` per month over the last interval
``log_new_lesions``       ``log(1 + new lesions seen so far)``
``log_gone_lesions``      ``log(1 + lesions disappeared so far)``
``progressed``            RECIST PD reached so far (target sum >= 120 % and >= +5 mm over the
                          nadir of the earlier visits, or a new lesion; RECIST 1.1 section 4.3)
``responded``             partial or complete response reached so far (<= -30 % from baseline)
``months_since_scan``     months from the last scan to the landmark
========================  ==================================================================

The static comparator uses ``log_burden_baseline`` and the best overall response so far
(``bor_response``: PR/CR; ``bor_pd``: the first follow-up was PD), computed on the sums without
the confirmation and minimum-duration rules.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from metevo.followup._inputs import N_GONE, N_NEW, PATIENT_ID, STUDY_DAY, SUM_LD, TARGET_SUM

DAYS_PER_MONTH = 30.4375
DYNAMIC_FEATURES = (
    "log_burden_baseline",
    "log_rel_baseline",
    "log_rel_nadir",
    "growth_per_month",
    "log_new_lesions",
    "log_gone_lesions",
    "progressed",
    "responded",
    "months_since_scan",
)
STATIC_FEATURES = ("log_burden_baseline", "bor_response", "bor_pd")


def visit_features(traj: pd.DataFrame) -> pd.DataFrame:
    """Running features at each visit of a checked trajectory table (sorted by patient, day)."""
    t = traj.copy()
    pid = t[PATIENT_ID]
    g = t.groupby(PATIENT_ID, sort=False)
    no_target = g[TARGET_SUM].transform("first").isna()
    size = np.where(no_target, t[SUM_LD], t[TARGET_SUM])
    size = pd.Series(size, index=t.index).groupby(pid).ffill().fillna(0.0)
    t["_size"] = size
    g = t.groupby(PATIENT_ID, sort=False)
    s0 = g["_size"].transform("first")
    nadir = g["_size"].cummin()
    nadir_before = nadir.groupby(pid).shift(1)
    first_visit = g.cumcount() == 0
    prev = g["_size"].shift(1)
    prev_day = g[STUDY_DAY].shift(1)
    grow = (size >= 1.2 * nadir_before) & (size - nadir_before >= 5.0)
    pd_now = ~first_visit & (grow.fillna(False) | (t[N_NEW] > 0))
    pr_now = ~first_visit & (size <= 0.7 * s0) & (s0 > 0)
    progressed = pd_now.groupby(pid).cummax()
    responded = pr_now.groupby(pid).cummax()
    # best overall response so far: PR before the first PD, PD when the first follow-up is PD
    follow_idx = g.cumcount()
    first_fu_pd = (pd_now & (follow_idx == 1)).groupby(pid).cummax()
    pr_before_pd = (
        (pr_now & ~progressed.groupby(pid).shift(1, fill_value=False)).groupby(pid).cummax()
    )
    out = pd.DataFrame(
        {
            PATIENT_ID: pid.to_numpy(),
            "timepoint": t["timepoint"].to_numpy(),
            STUDY_DAY: t[STUDY_DAY].to_numpy(float),
            "log_burden_baseline": np.log(s0 + 1.0).to_numpy(),
            "log_rel_baseline": np.log((size + 1.0) / (s0 + 1.0)).to_numpy(),
            "log_rel_nadir": np.log((size + 1.0) / (nadir + 1.0)).to_numpy(),
            "growth_per_month": (
                np.log((size + 1.0) / (prev + 1.0))
                / ((t[STUDY_DAY] - prev_day).clip(lower=1.0) / DAYS_PER_MONTH)
            )
            .fillna(0.0)
            .to_numpy(),
            "log_new_lesions": np.log1p(
                t[N_NEW].where(~first_visit, 0).groupby(pid).cumsum()
            ).to_numpy(),
            "log_gone_lesions": np.log1p(t[N_GONE].groupby(pid).cumsum()).to_numpy(),
            "progressed": progressed.to_numpy(float),
            "responded": responded.to_numpy(float),
            "bor_response": pr_before_pd.to_numpy(float),
            "bor_pd": (first_fu_pd & ~pr_before_pd).to_numpy(float),
        }
    )
    return out


def landmark_features(visits: pd.DataFrame, landmark: float, ids=None) -> pd.DataFrame:
    """Features at ``landmark`` (study day) from the last visit on or before it, per patient.

    Patients without a visit on or before the landmark are left out; ``ids`` restricts the
    patients. ``months_since_scan`` is added.
    """
    v = visits if ids is None else visits[visits[PATIENT_ID].isin(ids)]
    v = v[v[STUDY_DAY] <= landmark]
    last = v.groupby(PATIENT_ID, sort=True).tail(1).reset_index(drop=True)
    last["months_since_scan"] = (landmark - last[STUDY_DAY]) / DAYS_PER_MONTH
    last["landmark_days"] = float(landmark)
    return last
