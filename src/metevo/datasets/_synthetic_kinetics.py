"""Tumour growth kinetics, visit schedules and survival of the synthetic cohorts (private).

Shared by the image cohort (:func:`metevo.datasets.make_synthetic_cohort`) and the image-free
trajectories (:func:`metevo.datasets.make_synthetic_trajectories`, simulated in
``_synthetic_trajectories``), so both plant the same patterns with the same kinetics. Everything
here is vectorised over patients and lesions.

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
