"""Image-free synthetic trajectories (private; see :func:`metevo.datasets.make_synthetic_trajectories`).

Vectorised over patients, lesions and visits, with the kinetics of ``_synthetic_kinetics``.
Options (the defaults give the cohort the package has always generated, draw for draw):

* ``visit_interval_days`` / ``jitter_days`` / ``missed_visit_prob``: the imaging schedule (the
  default is the 8-weekly schedule of the image cohort). With the same ``seed`` and
  ``max_visits``, two schedules give the *same patients* (same kinetics, new lesions, survival),
  only imaged at other days: the validation of :func:`metevo.followup.follow_up` relies on it.
* ``survival``: ``"course"`` (median overall survival by planted pattern, as the image cohort)
  or ``"independent"``: one median (:data:`INDEPENDENT_OS_MEDIAN_DAYS`) for every patient, so
  overall survival ignores the course of the disease (ECOG still acts).
* ``measurement_cv``: measurement error of the diameters: every diameter read on a scan is
  multiplied by one log-normal factor per scan (sd ``measurement_cv`` on the log scale), so the
  target sum has exactly that coefficient of variation; 0 (default) gives error-free sizes.
  Visibility (>= 5 mm) uses the true size.

Extra ground-truth columns (per patient):
``progression_true_day``: the study day of true RECIST 1.1 progression of the error-free sizes in
continuous time (target sum >= 120 % and >= +5 mm of its running minimum since baseline, or a
new lesion's onset), NaN when it does not happen before the last planned visit;
``progression_true_cause`` (``size``, ``new_lesion`` or None);
``progression_detected_day``: study day of the first attended visit (of all planned visits, had
imaging continued regardless of death or censoring) at which RECIST PD is met on the measured
sizes, NaN for none; ``visit_interval_days``.
"""

from __future__ import annotations

import numpy as np

from metevo.datasets import _synthetic_kinetics as sk

#: median overall survival of every patient when ``survival="independent"``: the median of the
#: per-pattern medians weighted by the pattern frequencies of the two arms (~700 days).
INDEPENDENT_OS_MEDIAN_DAYS = 700.0
SURVIVAL_MODELS = ("course", "independent")


def _os_times(rng, pattern, ecog, survival: str) -> np.ndarray:
    if survival == "course":
        return sk.os_times(rng, pattern, ecog)
    hr = np.asarray(sk.ECOG_HAZARD_RATIO)[np.asarray(ecog)]
    k = sk.OS_WEIBULL_SHAPE
    scale = INDEPENDENT_OS_MEDIAN_DAYS / np.log(2.0) ** (1.0 / k) * hr ** (-1.0 / k)
    u = rng.uniform(size=np.shape(pattern))
    return np.ceil(scale * (-np.log1p(-u)) ** (1.0 / k)).astype(int)


def true_progression_day(
    base_day: np.ndarray,
    end_day: float,
    d0: np.ndarray,
    d_b: np.ndarray,
    g_b: np.ndarray,
    ld_factor: np.ndarray,
    is_target: np.ndarray,
    onset_first: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """True progression day (continuous time, daily grid) of each patient, and its cause.

    ``base_day`` (P,) is the baseline scan's study day (<= 0); the target sum
    ``sum_k d0 f(t) ld_factor`` over the target lesions (a lesion below 5 mm counts 0, as in the
    measured sums) is evaluated every day from the baseline to ``end_day``; ``onset_first`` (P,) is the first new lesion's onset (inf without one).
    """
    days = np.arange(int(np.min(base_day)), int(end_day) + 1, dtype=float)
    P = len(base_day)
    size_day = np.full(P, np.inf)
    chunk = max(1, 2_000_000 // max(1, days.size * d0.shape[1]))
    for lo in range(0, P, chunk):
        sl = slice(lo, lo + chunk)
        f = sk.stein_factor(days[None, None, :], d_b[sl, :, None], g_b[sl, :, None])
        diam = d0[sl, :, None] * f
        ld = np.where(diam >= sk.VISIBLE_MM, diam * ld_factor[sl, :, None], 0.0)
        s = (ld * is_target[sl, :, None]).sum(axis=1)
        before = days[None, :] < base_day[sl, None]
        s = np.where(before, np.nan, s)
        nadir = np.fmin.accumulate(s, axis=1)
        with np.errstate(invalid="ignore"):
            grow = (s >= 1.2 * nadir) & (s - nadir >= 5.0)
        grow &= is_target[sl].any(axis=1)[:, None]
        hit = grow.any(axis=1)
        size_day[sl] = np.where(hit, days[np.argmax(grow, axis=1)], np.inf)
    true_day = np.minimum(size_day, onset_first)
    true_day = np.where(true_day <= end_day, true_day, np.nan)
    cause = np.where(
        np.isnan(true_day), None, np.where(onset_first < size_day, "new_lesion", "size")
    )
    return true_day, cause


def simulate_trajectories(
    n_patients: int,
    seed: int,
    max_visits: int,
    *,
    visit_interval_days: int = sk.VISIT_INTERVAL_DAYS,
    jitter_days: int = sk.VISIT_JITTER_DAYS,
    missed_visit_prob: float = sk.MISSED_VISIT_PROB,
    survival: str = "course",
    measurement_cv: float = 0.0,
) -> dict:
    """Vectorised image-free cohort; see the module docstring and
    :func:`metevo.datasets.make_synthetic_trajectories`."""
    import pandas as pd

    if survival not in SURVIVAL_MODELS:
        raise ValueError(f"survival: expected one of {SURVIVAL_MODELS}, found {survival!r}.")
    if not visit_interval_days > 0:
        raise ValueError(f"visit_interval_days: expected > 0, found {visit_interval_days!r}.")
    if not 0 <= jitter_days < visit_interval_days / 2:
        raise ValueError(
            f"jitter_days: expected 0 <= jitter_days < visit_interval_days / 2, found "
            f"{jitter_days!r} with an interval of {visit_interval_days}."
        )
    if not 0 <= missed_visit_prob < 1:
        raise ValueError(f"missed_visit_prob: expected in [0, 1), found {missed_visit_prob!r}.")
    if not 0 <= measurement_cv < 1:
        raise ValueError(f"measurement_cv: expected in [0, 1), found {measurement_cv!r}.")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x7EA]))
    P, V = n_patients, max_visits
    LB, LN = sk.MAX_BASELINE_LESIONS, sk.MAX_NEW_LESIONS
    L = LB + LN
    cov = sk.covariates(rng, P)
    pattern = sk.patterns_for_arms(rng, cov["arm"])
    d_p, g_p = sk.patient_rates(rng, pattern)
    mixed = pattern == "mixed_response"

    n_base = np.clip(1 + rng.poisson(2.0, size=P), 1, LB)
    n_base = np.where(mixed, np.maximum(n_base, 2), n_base)
    slot = np.arange(LB)[None, :]
    exists_b = slot < n_base[:, None]
    d0 = np.clip(np.exp(rng.normal(np.log(17.0), 0.45, size=(P, LB))), 6.0, 60.0)
    offset = rng.integers(0, 2, size=P)[:, None]
    progressing = mixed[:, None] & ((slot + offset) % 2 == 1)
    d_b, g_b = sk.lesion_rates(rng, d_p[:, None], g_p[:, None], progressing, (P, LB))

    # new lesions: present with pattern-dependent probability, appear at onset with 5 mm
    probs = np.array([sk.NEW_LESION_PROBS[p] for p in pattern])
    onset_lo = np.array([sk.NEW_LESION_ONSET[p][0] for p in pattern], dtype=float)
    onset_hi = np.array([sk.NEW_LESION_ONSET[p][1] for p in pattern], dtype=float)
    u = rng.uniform(size=(P, LN))
    exists_n = u < probs
    exists_n[:, 1] &= exists_n[:, 0]
    onset = onset_lo[:, None] + rng.uniform(size=(P, LN)) * (onset_hi - onset_lo)[:, None]
    onset = np.sort(onset, axis=1)
    (pdl, pdh), (pgl, pgh) = sk.MIXED_PROGRESSING_RATES
    g_n = np.maximum(g_p[:, None], sk.log_uniform(rng, pgl, pgh, size=(P, LN)))
    d_n = sk.log_uniform(rng, 0.001, 0.003, size=(P, LN))

    base_offset = rng.integers(2, 11, size=P)
    k = np.arange(V)
    jitter = rng.integers(-jitter_days, jitter_days + 1, size=(P, V))
    sday = visit_interval_days * k[None, :] + jitter
    sday[:, 0] = -base_offset
    missed = rng.uniform(size=(P, V)) < missed_visit_prob
    missed[:, 0] = False
    analysed = ~missed

    t = sday[:, None, :].astype(float)
    diam_b = d0[:, :, None] * sk.stein_factor(t, d_b[:, :, None], g_b[:, :, None])
    tau = t - onset[:, :, None]
    diam_n = np.where(
        tau >= 0, sk.VISIBLE_MM * sk.stein_factor(tau, d_n[:, :, None], g_n[:, :, None]), 0.0
    )
    diam = np.concatenate([diam_b, diam_n], axis=1)  # (P, L, V)
    exists = np.concatenate([exists_b, exists_n], axis=1)
    ld_factor = rng.uniform(1.0, 1.2, size=(P, L))
    visible = exists[:, :, None] & (diam >= sk.VISIBLE_MM) & analysed[:, None, :]
    ld_true = np.where(visible, diam * ld_factor[:, :, None], 0.0)
    vol = np.where(visible, np.pi / 6.0 * diam**3 / 1000.0, 0.0)

    vis_cum = np.cumsum(visible, axis=2)
    first_seen = visible & (vis_cum == 1)
    n_new = (first_seen & (np.arange(V) > 0)[None, None, :]).sum(axis=1)
    last_analysed = np.maximum.accumulate(np.where(analysed, np.arange(V)[None, :], -1), axis=1)
    prev = np.concatenate([np.full((P, 1), -1), last_analysed[:, :-1]], axis=1)
    prev_visible = np.take_along_axis(visible, np.maximum(prev, 0)[:, None, :], axis=2)
    prev_visible &= (prev >= 0)[:, None, :]
    n_disappeared = (prev_visible & ~visible & analysed[:, None, :]).sum(axis=1)

    # RECIST 1.1 targets: up to 2 measurable (>= 10 mm) baseline lesions per organ (liver)
    base_ld = np.where(visible[:, :, 0], ld_true[:, :, 0], 0.0)
    order = np.argsort(-base_ld, axis=1, kind="stable")[:, :2]
    is_target = np.zeros((P, L), bool)
    np.put_along_axis(is_target, order, True, axis=1)
    is_target &= base_ld >= 10.0
    has_target = is_target.any(axis=1)

    os_true = _os_times(rng, pattern, cov["ecog"], survival)
    censor = rng.integers(*sk.ADMIN_CENSOR_DAYS, size=P)
    ids = np.asarray(sk.patient_ids(P))
    base_date = sk.FIRST_BASELINE_DATE + rng.integers(0, 2000, size=P).astype("timedelta64[D]")
    if measurement_cv > 0:  # drawn last: the draws above do not depend on it
        err = np.exp(rng.normal(0.0, measurement_cv, size=(P, V)))
        err[~analysed] = 1.0
        ld = ld_true * err[:, None, :]
    else:
        ld = ld_true
    target_sum = np.where(has_target[:, None], (ld * is_target[:, :, None]).sum(axis=1), np.nan)

    pd_visit = sk.recist_progression(np.nan_to_num(target_sum, nan=0.0), n_new, analysed)
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
    end = np.minimum(os_days, np.where(pd_seen, pd_day, 10**6))
    in_follow_up = sday <= end[:, None]
    tstart = base_date + base_offset.astype("timedelta64[D]")
    days = sday - sday[:, :1]
    labels = np.asarray([f"V{v}" for v in range(V)])

    onset_first = np.where(exists_n[:, 0], onset[:, 0], np.inf)
    true_day, true_cause = true_progression_day(
        sday[:, 0].astype(float),
        float(sday[:, -1].max()),
        d0,
        d_b,
        g_b,
        ld_factor[:, :LB],
        is_target[:, :LB],
        onset_first,
    )

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
            "progression_true_day": true_day,
            "progression_true_cause": true_cause,
            "progression_detected_day": np.where(pd_visit >= 0, pd_day, np.nan).astype(float),
            "visit_interval_days": np.full(P, int(visit_interval_days)),
        }
    )
    return {
        "patient_trajectories": patient_traj,
        "lesion_trajectories": lesion_traj,
        "clinical": clinical,
        "ground_truth": truth,
    }
