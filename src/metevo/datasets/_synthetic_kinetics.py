"""Tumour growth kinetics, visit schedules and survival of the synthetic cohorts (private).

Shared by the image cohort (:func:`metevo.datasets.make_synthetic_cohort`) and the image-free
trajectories (:func:`metevo.datasets.make_synthetic_trajectories`), so both plant the same
patterns with the same kinetics. Everything here is vectorised over patients and lesions.

Kinetics: the Stein regression-growth model (Stein et al., Clin Cancer Res 2008;14:7464-7470,
"Tumor growth rates derived from data for patients in a clinical trial correlate strongly with
patient survival"), applied to each lesion's diameter,

    D(t) = D0 * (exp(-d * t) + exp(g * t) - 1)      for study day t >= 0 (treatment start),
    D(t) = D0 * exp(g * t)                          before treatment (t < 0, growth only).

The rate ranges are anchored on Maitland et al., Clin Cancer Res 2020;26:6464-6474 ("Enhanced
detection of treatment effects on metastatic colorectal cancer with volumetric CT measurements
for tumor burden growth rate evaluation"; two phase III trials of aflibercept or panitumumab added to chemotherapy in advanced
colorectal cancer, 988 patients):
median volumetric regression half-lives of ~37-45 days and doubling times of ~156-301 days, i.e.
on the diameter scale (volume ~ diameter**3) d ~ 0.005-0.006/day and g ~ 0.0008-0.0015/day for
the median patient. The planted patterns sit in the tails of those distributions so that they
are separable: deep response d 0.02-0.04/day, progression g 0.005-0.008/day, and so on
(:data:`PATTERN_RATES`), inside the ranges the Stein-model literature reports for individual
patients (d ~ 0.005-0.04/day, g ~ 0.0005-0.01/day). Progression is (nearly) growth-only,
d 0.001-0.003/day, the patients Stein et al. fit with the growth-only model: without it the
first scan of a progressor (an early shrinkage of 10-20 %) and of a response-then-relapse
patient overlapped, and since follow-up stops at the first RECIST progression the two patterns
were indistinguishable in the data (a supervised classifier reached ARI ~0.8). Response then
relapse keeps its fast regression (d 0.015-0.03/day: nadir 33-74 % below baseline at ~60-120
days) and regrows at g 0.002-0.004/day (diameter doubling 170-350 days, volume doubling 60-115
days, around and below the median doubling times of Maitland et al.), so the response is seen
on the 8-week scan and the relapse on the 16- to 28-week scans. Stable disease
uses slower rates on both sides so the diameter stays within RECIST SD bounds over a year.
Lesion-to-lesion variation: each lesion's d and g are the patient's rates times a log-normal
factor (sd 0.25 on the log scale); mixed response draws half of the lesions from a responding
and half from a progressing regime.
"""

from __future__ import annotations

import numpy as np

PATTERNS = ("deep_response", "progression", "response_then_relapse", "stable", "mixed_response")

#: per pattern: (d_low, d_high), (g_low, g_high) in 1/day, uniform on the log scale.
PATTERN_RATES = {
    "deep_response": ((0.02, 0.04), (0.0003, 0.001)),
    "progression": ((0.001, 0.003), (0.005, 0.008)),
    "response_then_relapse": ((0.015, 0.03), (0.002, 0.004)),
    "stable": ((0.002, 0.004), (0.0008, 0.0015)),
    "mixed_response": ((0.015, 0.03), (0.0005, 0.0015)),
}
#: mixed response: the progressing half of the lesions uses these rates.
MIXED_PROGRESSING_RATES = ((0.003, 0.006), (0.004, 0.007))

#: median overall survival (days from treatment start) per pattern, before covariates.
OS_MEDIAN_DAYS = {
    "deep_response": 1300.0,
    "stable": 820.0,
    "response_then_relapse": 650.0,
    "mixed_response": 560.0,
    "progression": 360.0,
}
OS_WEIBULL_SHAPE = 1.4
ECOG_HAZARD_RATIO = (1.0, 1.35, 1.9)
#: pattern probabilities per arm (arm B is the more active treatment).
ARM_PATTERN_PROBS = {
    "A": (0.12, 0.28, 0.22, 0.22, 0.16),
    "B": (0.22, 0.18, 0.22, 0.22, 0.16),
}

VISIBLE_MM = 5.0  # a lesion whose diameter is below this is not visible (complete response)
VISIT_INTERVAL_DAYS = 56  # every ~8 weeks
VISIT_JITTER_DAYS = 7
LESION_RATE_SD = 0.25


def stein_factor(t: np.ndarray, d: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Diameter factor D(t)/D0 of the Stein model; broadcasts; ``t`` in study days."""
    t = np.asarray(t, dtype=float)
    pos = np.maximum(t, 0.0)
    after = np.exp(-d * pos) + np.expm1(g * pos)
    before = np.exp(g * np.minimum(t, 0.0))
    return np.where(t >= 0, after, before)


def log_uniform(rng: np.random.Generator, lo: float, hi: float, size=None) -> np.ndarray:
    return np.exp(rng.uniform(np.log(lo), np.log(hi), size=size))


def patient_rates(rng: np.random.Generator, patterns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Patient-level regression rate d and growth rate g (1/day) for each pattern name."""
    patterns = np.asarray(patterns)
    d = np.empty(patterns.shape)
    g = np.empty(patterns.shape)
    u_d = rng.uniform(size=patterns.shape)
    u_g = rng.uniform(size=patterns.shape)
    for name, ((dl, dh), (gl, gh)) in PATTERN_RATES.items():
        sel = patterns == name
        d[sel] = np.exp(np.log(dl) + u_d[sel] * (np.log(dh) - np.log(dl)))
        g[sel] = np.exp(np.log(gl) + u_g[sel] * (np.log(gh) - np.log(gl)))
    return d, g


def lesion_rates(
    rng: np.random.Generator,
    d_patient: np.ndarray,
    g_patient: np.ndarray,
    progressing: np.ndarray,
    shape: tuple[int, ...],
) -> tuple[np.ndarray, np.ndarray]:
    """Per-lesion rates: the patient's rates times log-normal variation.

    ``d_patient``/``g_patient`` broadcast against ``shape``; where ``progressing`` is True
    (mixed response), the lesion uses :data:`MIXED_PROGRESSING_RATES` instead.
    """
    (pdl, pdh), (pgl, pgh) = MIXED_PROGRESSING_RATES
    d_prog = log_uniform(rng, pdl, pdh, size=shape)
    g_prog = log_uniform(rng, pgl, pgh, size=shape)
    d = np.where(progressing, d_prog, np.broadcast_to(d_patient, shape))
    g = np.where(progressing, g_prog, np.broadcast_to(g_patient, shape))
    d = d * np.exp(rng.normal(0.0, LESION_RATE_SD, size=shape))
    g = g * np.exp(rng.normal(0.0, LESION_RATE_SD, size=shape))
    return d, g


def visit_study_days(
    rng: np.random.Generator, n_patients: int, n_visits: int, baseline_offset: np.ndarray
) -> np.ndarray:
    """Planned visit days (study days, from treatment start), shape (n_patients, n_visits).

    Visit 0 is the baseline scan, ``baseline_offset`` days before treatment start; visit k >= 1
    is at 56*k days with integer jitter of up to +/- 7 days.
    """
    k = np.arange(n_visits)
    jitter = rng.integers(-VISIT_JITTER_DAYS, VISIT_JITTER_DAYS + 1, size=(n_patients, n_visits))
    days = VISIT_INTERVAL_DAYS * k[None, :] + jitter
    days[:, 0] = -np.asarray(baseline_offset)
    return days


def os_times(rng: np.random.Generator, patterns: np.ndarray, ecog: np.ndarray) -> np.ndarray:
    """Overall survival times (days from treatment start): Weibull, median by pattern and ECOG."""
    median = np.array([OS_MEDIAN_DAYS[p] for p in np.asarray(patterns).ravel()]).reshape(
        np.shape(patterns)
    )
    hr = np.asarray(ECOG_HAZARD_RATIO)[np.asarray(ecog)]
    k = OS_WEIBULL_SHAPE
    # hazard ratio hr scales the Weibull scale by hr**(-1/k)
    scale = median / np.log(2.0) ** (1.0 / k) * hr ** (-1.0 / k)
    u = rng.uniform(size=np.shape(patterns))
    return np.ceil(scale * (-np.log1p(-u)) ** (1.0 / k)).astype(int)


def covariates(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Clinical covariates: arm (A/B 1:1), age, ECOG (0-2), RAS status."""
    arm = np.where(rng.uniform(size=n) < 0.5, "A", "B")
    age = np.clip(np.round(rng.normal(63.0, 10.0, size=n)), 28, 88).astype(int)
    ecog = rng.choice(3, size=n, p=(0.55, 0.38, 0.07))
    ras = np.where(rng.uniform(size=n) < 0.48, "mutant", "wild_type")
    return {"arm": arm, "age": age, "ecog": ecog, "ras_status": ras}


def patterns_for_arms(rng: np.random.Generator, arm: np.ndarray) -> np.ndarray:
    """Draw each patient's pattern with the probabilities of their arm."""
    u = rng.uniform(size=len(arm))
    out = np.empty(len(arm), dtype=object)
    for a, probs in ARM_PATTERN_PROBS.items():
        sel = arm == a
        edges = np.cumsum(probs)
        idx = np.minimum(
            np.searchsorted(edges, u[sel] * edges[-1], side="right"), len(PATTERNS) - 1
        )
        out[sel] = np.asarray(PATTERNS, dtype=object)[idx]
    return out.astype(str)


def recist_progression(
    target_sum: np.ndarray, n_new: np.ndarray, analysed: np.ndarray
) -> np.ndarray:
    """First progression per patient from per-visit target sums (RECIST 1.1 section 4.3.1-4.3.4).

    ``target_sum``/``n_new``/``analysed`` have shape (n_patients, n_visits); a visit progresses
    when the target sum rises >= 20 % and >= 5 mm over the nadir of the earlier analysed visits,
    or a new lesion appears. Returns the visit index of the first progression, -1 for none.
    """
    ts = np.where(analysed, target_sum, np.nan)
    ts_filled = np.where(np.isnan(ts), np.inf, ts)
    nadir_before = np.minimum.accumulate(ts_filled, axis=1)
    nadir_before = np.concatenate([np.full((ts.shape[0], 1), np.inf), nadir_before[:, :-1]], axis=1)
    grow = (ts >= 1.2 * nadir_before) & (ts - nadir_before >= 5.0) & np.isfinite(nadir_before)
    pd_visit = analysed & (grow | (n_new > 0))
    pd_visit[:, 0] = False
    first = np.where(pd_visit.any(axis=1), np.argmax(pd_visit, axis=1), -1)
    return first


# ---------------------------------------------------------------------------------------------
# image-free trajectories
# ---------------------------------------------------------------------------------------------
MAX_BASELINE_LESIONS = 6
MAX_NEW_LESIONS = 2
NEW_LESION_PROBS = {  # probability of a first and of a second new lesion
    "deep_response": (0.03, 0.0),
    "progression": (0.6, 0.3),
    "response_then_relapse": (0.5, 0.2),
    "stable": (0.08, 0.0),
    "mixed_response": (0.35, 0.1),
}
NEW_LESION_ONSET = {  # uniform window of onset (study days)
    "deep_response": (150, 500),
    "progression": (40, 250),
    "response_then_relapse": (150, 400),
    "stable": (100, 450),
    "mixed_response": (100, 350),
}
MISSED_VISIT_PROB = 0.25
ADMIN_CENSOR_DAYS = (700, 1600)
FIRST_BASELINE_DATE = np.datetime64("2016-01-04")


def patient_ids(n: int) -> list[str]:
    width = max(3, len(str(n)))
    return [f"SYN{i + 1:0{width}d}" for i in range(n)]


def simulate_trajectories(n_patients: int, seed: int, max_visits: int) -> dict:
    """Vectorised image-free cohort: see :func:`metevo.datasets.make_synthetic_trajectories`."""
    import pandas as pd

    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x7EA]))
    P, V = n_patients, max_visits
    LB, LN = MAX_BASELINE_LESIONS, MAX_NEW_LESIONS
    L = LB + LN
    cov = covariates(rng, P)
    pattern = patterns_for_arms(rng, cov["arm"])
    d_p, g_p = patient_rates(rng, pattern)
    mixed = pattern == "mixed_response"

    n_base = np.clip(1 + rng.poisson(2.0, size=P), 1, LB)
    n_base = np.where(mixed, np.maximum(n_base, 2), n_base)
    slot = np.arange(LB)[None, :]
    exists_b = slot < n_base[:, None]
    d0 = np.clip(np.exp(rng.normal(np.log(17.0), 0.45, size=(P, LB))), 6.0, 60.0)
    offset = rng.integers(0, 2, size=P)[:, None]
    progressing = mixed[:, None] & ((slot + offset) % 2 == 1)
    d_b, g_b = lesion_rates(rng, d_p[:, None], g_p[:, None], progressing, (P, LB))

    # new lesions: present with pattern-dependent probability, appear at onset with 5 mm
    probs = np.array([NEW_LESION_PROBS[p] for p in pattern])
    onset_lo = np.array([NEW_LESION_ONSET[p][0] for p in pattern], dtype=float)
    onset_hi = np.array([NEW_LESION_ONSET[p][1] for p in pattern], dtype=float)
    u = rng.uniform(size=(P, LN))
    exists_n = u < probs
    exists_n[:, 1] &= exists_n[:, 0]
    onset = onset_lo[:, None] + rng.uniform(size=(P, LN)) * (onset_hi - onset_lo)[:, None]
    onset = np.sort(onset, axis=1)
    (pdl, pdh), (pgl, pgh) = MIXED_PROGRESSING_RATES
    g_n = np.maximum(g_p[:, None], log_uniform(rng, pgl, pgh, size=(P, LN)))
    d_n = log_uniform(rng, 0.001, 0.003, size=(P, LN))

    base_offset = rng.integers(2, 11, size=P)
    sday = visit_study_days(rng, P, V, base_offset)  # (P, V)
    missed = rng.uniform(size=(P, V)) < MISSED_VISIT_PROB
    missed[:, 0] = False
    analysed = ~missed

    t = sday[:, None, :].astype(float)
    diam_b = d0[:, :, None] * stein_factor(t, d_b[:, :, None], g_b[:, :, None])
    tau = t - onset[:, :, None]
    diam_n = np.where(
        tau >= 0, VISIBLE_MM * stein_factor(tau, d_n[:, :, None], g_n[:, :, None]), 0.0
    )
    diam = np.concatenate([diam_b, diam_n], axis=1)  # (P, L, V)
    exists = np.concatenate([exists_b, exists_n], axis=1)
    ld_factor = rng.uniform(1.0, 1.2, size=(P, L))
    visible = exists[:, :, None] & (diam >= VISIBLE_MM) & analysed[:, None, :]
    ld = np.where(visible, diam * ld_factor[:, :, None], 0.0)
    vol = np.where(visible, np.pi / 6.0 * diam**3 / 1000.0, 0.0)

    vis_cum = np.cumsum(visible, axis=2)
    first_seen = visible & (vis_cum == 1)
    n_new = (first_seen & (np.arange(V) > 0)[None, None, :]).sum(axis=1)
    # disappeared: visible at the previous analysed visit, not visible at this one
    last_analysed = np.maximum.accumulate(np.where(analysed, np.arange(V)[None, :], -1), axis=1)
    prev = np.concatenate([np.full((P, 1), -1), last_analysed[:, :-1]], axis=1)
    prev_visible = np.take_along_axis(visible, np.maximum(prev, 0)[:, None, :], axis=2)
    prev_visible &= (prev >= 0)[:, None, :]
    n_disappeared = (prev_visible & ~visible & analysed[:, None, :]).sum(axis=1)

    # RECIST 1.1 targets: up to 2 measurable (>= 10 mm) baseline lesions per organ (liver)
    base_ld = np.where(visible[:, :, 0], ld[:, :, 0], 0.0)
    order = np.argsort(-base_ld, axis=1, kind="stable")[:, :2]
    is_target = np.zeros((P, L), bool)
    np.put_along_axis(is_target, order, True, axis=1)
    is_target &= base_ld >= 10.0
    has_target = is_target.any(axis=1)
    target_sum = np.where(has_target[:, None], (ld * is_target[:, :, None]).sum(axis=1), np.nan)

    pd_visit = recist_progression(np.nan_to_num(target_sum, nan=0.0), n_new, analysed)
    os_true = os_times(rng, pattern, cov["ecog"])
    censor = rng.integers(*ADMIN_CENSOR_DAYS, size=P)
    os_event = (os_true <= censor).astype(int)
    os_days = np.minimum(os_true, censor)

    vidx = np.arange(V)[None, :]
    kept = analysed & (sday <= os_days[:, None])
    kept &= np.where(pd_visit[:, None] >= 0, vidx <= pd_visit[:, None], True)
    kept[:, 0] = True
    pd_day = np.where(
        pd_visit >= 0, np.take_along_axis(sday, np.maximum(pd_visit, 0)[:, None], 1)[:, 0], -1
    )
    pd_seen = (pd_visit >= 0) & (pd_day <= os_days)
    last_kept = np.where(kept, sday, -(10**6)).max(axis=1)
    pfs_days = np.where(pd_seen, pd_day, np.where(os_event == 1, os_days, np.maximum(last_kept, 0)))
    pfs_event = (pd_seen | (os_event == 1)).astype(int)
    reason = np.where(
        pd_seen,
        "progression",
        np.where(
            (os_event == 1) & (last_kept < sday[:, -1]),
            "death",
            np.where(last_kept < sday[:, -1], "censored", "completed"),
        ),
    )

    # planned visits while the patient was under follow-up (alive, not yet progressed)
    end = np.minimum(os_days, np.where(pd_seen, pd_day, 10**6))
    in_follow_up = sday <= end[:, None]
    ids = np.asarray(patient_ids(P))
    base_date = FIRST_BASELINE_DATE + rng.integers(0, 2000, size=P).astype("timedelta64[D]")
    tstart = base_date + base_offset.astype("timedelta64[D]")
    days = sday - sday[:, :1]
    labels = np.asarray([f"V{v}" for v in range(V)])

    pi, vi = np.nonzero(kept)
    patient_traj = pd.DataFrame(
        {
            "patient_id": ids[pi],
            "timepoint": labels[vi],
            "date": (base_date[pi] + days[pi, vi].astype("timedelta64[D]")).astype(
                "datetime64[ns]"
            ),
            "days": days[pi, vi].astype(int),
            "study_day": sday[pi, vi].astype(int),
            "n_lesions": visible.sum(axis=1)[pi, vi].astype(int),
            "n_new_lesions": n_new[pi, vi].astype(int),
            "n_disappeared_lesions": n_disappeared[pi, vi].astype(int),
            "total_volume_ml": vol.sum(axis=1)[pi, vi],
            "sum_ld_mm": ld.sum(axis=1)[pi, vi],
            "target_sum_mm": target_sum[pi, vi],
        }
    )

    tracked = kept[:, None, :] & (np.cumsum(visible, axis=2) > 0)
    pi, li, vi = np.nonzero(tracked)
    # track ids: baseline lesions first, new lesions after, numbered per patient in slot order
    rank = np.cumsum(exists, axis=1) - 1
    lesion_traj = pd.DataFrame(
        {
            "patient_id": ids[pi],
            "track_id": np.char.add("L", np.char.zfill((rank[pi, li] + 1).astype(str), 2)),
            "timepoint": labels[vi],
            "days": days[pi, vi].astype(int),
            "study_day": sday[pi, vi].astype(int),
            "volume_ml": vol[pi, li, vi],
            "axial_ld_mm": ld[pi, li, vi],
        }
    )
    lesion_traj = lesion_traj.sort_values(
        ["patient_id", "track_id", "days"], kind="stable", ignore_index=True
    )

    clinical = pd.DataFrame(
        {
            "patient_id": ids,
            "treatment_start": pd.to_datetime(tstart).strftime("%Y-%m-%d"),
            "os_days": os_days.astype(int),
            "os_event": os_event,
            "pfs_days": pfs_days.astype(int),
            "pfs_event": pfs_event,
            "arm": cov["arm"],
            "age": cov["age"],
            "ecog": cov["ecog"].astype(int),
            "ras_status": cov["ras_status"],
        }
    )
    truth = pd.DataFrame(
        {
            "patient_id": ids,
            "pattern": pattern,
            "d_per_day": d_p,
            "g_per_day": g_p,
            "n_baseline_lesions": n_base.astype(int),
            "n_new_lesions": exists_n.sum(axis=1).astype(int),
            "n_planned_visits": in_follow_up.sum(axis=1).astype(int),
            "n_missed_visits": (missed & in_follow_up).sum(axis=1).astype(int),
            "progression_timepoint": np.where(
                pd_seen, np.char.add("V", np.maximum(pd_visit, 0).astype(str)), None
            ),
            "dropout": reason,
            "os_true_days": os_true.astype(int),
        }
    )
    return {
        "patient_trajectories": patient_traj,
        "lesion_trajectories": lesion_traj,
        "clinical": clinical,
        "ground_truth": truth,
    }
