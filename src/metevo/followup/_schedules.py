"""Imaging schedules per evolution pattern: when would RECIST progression be seen?

For every patient, :func:`follow_up` simulates ``n_simulations`` futures from what the data say
about them (see :mod:`metevo.followup._kinetics`):

1. the true target sum follows the patient's fitted kinetics ``S(t) = S0 f(t)`` (Stein model,
   ``t`` days since the baseline scan); its **true size progression** is the first day at which
   ``S`` is >= 120 % and >= 5 mm above its running minimum since baseline (RECIST 1.1 section
   4.3.1 in continuous time);
2. a first **new lesion** appears after an exponential time with the appearance rate of the
   patient's pattern; true progression is the earlier of the two;
3. each scan **measures** ``S`` with a multiplicative log-normal error (the coefficient of
   variation estimated from close visits, else the literature default); RECIST PD is
   **called** at the first scan whose measured sum is >= 120 % and >= 5 mm over the nadir of the
   earlier measured sums (baseline included), or that follows the new lesion's appearance;
4. the **detection delay** is the day PD is called minus the day of true progression (negative
   when measurement error calls PD early: the share of such calls is reported too); only true
   progressions within ``horizon_days`` count.

Scans are counted from treatment start (day 0, the baseline scan excluded) to the scan that calls
PD or to the horizon, whichever comes first; scans per patient-year is the ratio of the sums over
patients. Confidence intervals: percentile bootstrap over patients (resampled within each
pattern, with their simulated futures).

Schedules: an integer is a fixed interval in days; :class:`AdaptiveSchedule` scans at
``fast_days`` while the target sum changes by at least ``band`` (relative to the previous scan,
shrinking or growing) and at ``slow_days`` once it is stable ("every 6 weeks while shrinking,
every 12 once stable"); its first follow-up scan comes after ``fast_days``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from metevo.followup._inputs import ALL, PATIENT_ID, PATTERN, check_patterns, check_trajectories
from metevo.followup._inputs import FollowUp as F
from metevo.followup._kinetics import measurement_cv as estimate_cv
from metevo.followup._kinetics import new_lesion_rates, patient_kinetics

EIGHT_WEEKS = 56.0
#: (estimate, lower, upper) columns of the four statistics of :func:`_summary`, in its order
_STAT_COLUMNS = (
    (F.MEDIAN_DELAY_DAYS, F.MEDIAN_DELAY_CI_LOWER, F.MEDIAN_DELAY_CI_UPPER),
    (F.P90_DELAY_DAYS, F.P90_DELAY_CI_LOWER, F.P90_DELAY_CI_UPPER),
    (F.SCANS_PER_YEAR, F.SCANS_PER_YEAR_CI_LOWER, F.SCANS_PER_YEAR_CI_UPPER),
    (F.DETECTED_8W_SHARE, F.DETECTED_8W_CI_LOWER, F.DETECTED_8W_CI_UPPER),
    (F.EARLY_CALL_SHARE, F.EARLY_CALL_CI_LOWER, F.EARLY_CALL_CI_UPPER),
)
DAYS_PER_YEAR = 365.25


@dataclass(frozen=True)
class AdaptiveSchedule:
    """Scan every ``fast_days`` while the target sum changes by >= ``band`` between scans (either
    way), every ``slow_days`` once it changes by less."""

    fast_days: int = 42
    slow_days: int = 84
    band: float = 0.10

    def __post_init__(self):
        if not (0 < self.fast_days <= self.slow_days):
            raise ValueError(
                f"AdaptiveSchedule: expected 0 < fast_days <= slow_days, found "
                f"{self.fast_days} and {self.slow_days}."
            )
        if not 0 < self.band < 1:
            raise ValueError(f"AdaptiveSchedule: band expected in (0, 1), found {self.band}.")


#: the schedules of the issue: 6/8/9/12-weekly and the pattern-adapted 6-then-12-weekly one.
DEFAULT_SCHEDULES: dict[str, int | AdaptiveSchedule] = {
    "every_6_weeks": 42,
    "every_8_weeks": 56,
    "every_9_weeks": 63,
    "every_12_weeks": 84,
    "adaptive_6_12_weeks": AdaptiveSchedule(42, 84, 0.10),
}


@dataclass
class FollowUpResult:
    """Result of :func:`follow_up`.

    Attributes
    ----------
    table : DataFrame
        ``follow_up.parquet``: one row per pattern (and ``"all"``) x schedule; columns in
        :class:`metevo.followup._inputs.FollowUp` and ``data_dictionary/follow_up.schema.json``.
    patients : DataFrame
        Per patient: pattern, baseline, kinetics (``g_per_day``, ``d_per_day``, how obtained).
    measurement_cv : float
        Coefficient of variation of a target-sum measurement used in the simulation.
    measurement_cv_source : str
        Where it came from (close visit pairs, or the literature default).
    new_lesion_rates : Series
        First-new-lesion appearance rate per day, per pattern.
    delays : dict
        ``{schedule: (P, n_simulations) array}`` of simulated delays (NaN: no true progression
        within the horizon; inf: not called within a year after the horizon).
    """

    table: pd.DataFrame
    patients: pd.DataFrame
    measurement_cv: float
    measurement_cv_source: str
    new_lesion_rates: pd.Series
    delays: dict = field(repr=False, default_factory=dict)

    def save(self, out_dir):
        """Write ``follow_up.parquet`` into ``out_dir`` (created); returns its path."""
        from pathlib import Path

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        path = out / "follow_up.parquet"
        self.table.to_parquet(path, index=False)
        return path

    def __repr__(self) -> str:
        return (
            f"FollowUpResult({len(self.patients)} patients, "
            f"{self.table[F.SCHEDULE].nunique()} schedules, "
            f"{self.table[F.PATTERN].nunique()} pattern rows, "
            f"measurement CV {self.measurement_cv:.3f})"
        )


def _stein(t, g, d):
    t = np.maximum(t, 0.0)
    return np.exp(-d * t) + np.expm1(g * t)


def _true_size_progression(kin: pd.DataFrame, end_day: float) -> np.ndarray:
    """First day of true size progression of each patient's fitted curve (inf for none)."""
    out = np.full(len(kin), np.inf)
    base = kin["base_day"].to_numpy(float)
    s0 = kin["base_size_mm"].to_numpy(float)
    g, d = kin["g_per_day"].to_numpy(float), kin["d_per_day"].to_numpy(float)
    grid = np.arange(0.0, end_day - base.min() + 1.0)
    for lo in range(0, len(kin), 500):
        sl = slice(lo, lo + 500)
        s = s0[sl, None] * _stein(grid[None, :], g[sl, None], d[sl, None])
        nadir = np.minimum.accumulate(s, axis=1)
        grow = (s >= 1.2 * nadir) & (s - nadir >= 5.0) & np.isfinite(s0[sl, None])
        hit = grow.any(axis=1)
        out[sl] = np.where(hit, base[sl] + grid[np.argmax(grow, axis=1)], np.inf)
    return out


def _simulate(
    kin: pd.DataFrame,
    appear: np.ndarray,
    noise: np.ndarray,
    schedule: int | AdaptiveSchedule,
    cv: float,
    stop_day: float,
    horizon: float,
    jitter: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Day PD is called (inf: never before ``stop_day``) and the scans made up to the call or
    the horizon, whichever is first, per (P, R)."""
    P, R = appear.shape
    base = np.repeat(kin["base_day"].to_numpy(float), R).reshape(P, R)
    s0 = np.repeat(kin["base_size_mm"].to_numpy(float), R).reshape(P, R)
    g = np.repeat(kin["g_per_day"].to_numpy(float), R).reshape(P, R)
    d = np.repeat(kin["d_per_day"].to_numpy(float), R).reshape(P, R)
    has_size = np.isfinite(s0)
    s0 = np.where(has_size, s0, 0.0)
    meas = s0 * np.exp(cv * noise[:, :, 0])
    nadir = meas.copy()
    prev = meas.copy()
    nominal = np.zeros((P, R))
    day = np.zeros((P, R))
    called = np.full((P, R), np.inf)
    scans = np.zeros((P, R), int)
    adaptive = isinstance(schedule, AdaptiveSchedule)
    interval = np.full((P, R), float(schedule.fast_days if adaptive else schedule))
    k = 0
    while True:
        k += 1
        active = np.isinf(called)
        nominal = np.where(active, nominal + interval, nominal)
        shift = 0.0 if jitter is None else jitter[:, :, min(k, jitter.shape[2] - 1)]
        day = np.where(active, nominal + shift, day)
        active &= day <= stop_day
        if not active.any():
            break
        z = noise[:, :, min(k, noise.shape[2] - 1)]
        true = s0 * _stein(day - base, g, d)
        m = true * np.exp(cv * z)
        scans += active & (day <= horizon)
        grow = has_size & (m >= 1.2 * nadir) & (m - nadir >= 5.0)
        pd_now = active & (grow | (day >= appear))
        called = np.where(pd_now, day, called)
        nadir = np.where(active, np.minimum(nadir, m), nadir)
        if adaptive:
            with np.errstate(divide="ignore", invalid="ignore"):
                change = np.abs(m / prev - 1.0)
            moving = has_size & (change >= schedule.band)
            interval = np.where(moving, schedule.fast_days, schedule.slow_days).astype(float)
        prev = np.where(active, m, prev)
    return called, scans


def _quantile(values: np.ndarray, q: float) -> float:
    v = values[~np.isnan(values)]
    if v.size == 0:
        return np.nan
    return float(np.quantile(v, q, method="inverted_cdf"))


def _summary(delays: np.ndarray, scans: np.ndarray, years: np.ndarray) -> np.ndarray:
    """(median delay, p90 delay, scans per year, share called within 8 weeks, share called
    before true progression) of a group."""
    flat = delays.ravel()
    prog = flat[~np.isnan(flat)]
    share = float(np.mean(prog <= EIGHT_WEEKS)) if prog.size else np.nan
    early = float(np.mean(prog < 0)) if prog.size else np.nan
    yrs = years.sum()
    return np.array(
        [
            _quantile(flat, 0.5),
            _quantile(flat, 0.9),
            scans.sum() / yrs if yrs > 0 else np.nan,
            share,
            early,
        ]
    )


def _bootstrap(delays, scans, years, n_boot, rng) -> tuple[np.ndarray, np.ndarray]:
    est = _summary(delays, scans, years)
    n = delays.shape[0]
    if n < 2 or n_boot == 0:
        return est, np.full((2, len(_STAT_COLUMNS)), np.nan)
    reps = np.empty((n_boot, len(_STAT_COLUMNS)))
    for b in range(n_boot):
        idx = rng.integers(0, n, n)
        reps[b] = _summary(delays[idx], scans[idx], years[idx])
    with np.errstate(invalid="ignore"):
        ci = np.vstack([_nanq(reps, 0.025), _nanq(reps, 0.975)])
    return est, ci


def _nanq(reps: np.ndarray, q: float) -> np.ndarray:
    out = np.full(reps.shape[1], np.nan)
    for j in range(reps.shape[1]):
        out[j] = _quantile(reps[:, j], q)
    return out


def follow_up(
    trajectories: pd.DataFrame,
    *,
    patterns: pd.DataFrame | dict | None = None,
    schedules: dict[str, int | AdaptiveSchedule] | None = None,
    horizon_days: float = 730.0,
    measurement_cv: float | None = None,
    close_days: float = 14.0,
    n_simulations: int = 20,
    n_boot: int = 200,
    jitter_days: int = 0,
    seed: int = 0,
) -> FollowUpResult:
    """Detection delay of RECIST progression and scan burden under imaging schedules.

    Parameters
    ----------
    trajectories : DataFrame
        ``patient_trajectories`` (one row per patient x visit) with ``patient_id``,
        ``timepoint``, ``study_day``, ``target_sum_mm``, ``n_new_lesions``.
    patterns : DataFrame or dict, optional
        Pattern of each patient (``patterns.parquet``: ``patient_id``, ``pattern``); every
        pattern gets its rows, and all patients together get the pattern ``"all"``.
    schedules : dict, optional
        Name -> fixed interval in days (int) or :class:`AdaptiveSchedule`; default
        :data:`DEFAULT_SCHEDULES` (6, 8, 9, 12 weeks and adaptive 6-then-12 weeks).
    horizon_days : float, default 730
        True progressions up to this study day count.
    measurement_cv : float, optional
        Coefficient of variation of a target-sum measurement; default: estimated from visit
        pairs at most ``close_days`` apart (>= 10 pairs), else 0.05 (Oxnard et al., J Clin Oncol
        2011;29:3114).
    n_simulations : int, default 20
        Simulated futures per patient.
    n_boot : int, default 200
        Bootstrap resamples of patients for the 95 % intervals (0: none).
    jitter_days : int, default 0
        Each scan happens a uniform whole number of days in ``[-jitter_days, jitter_days]``
        off its planned day (planned days stay on the schedule's grid), as clinics do.
    seed : int, default 0

    Returns
    -------
    FollowUpResult

    Examples
    --------
    >>> from metevo.datasets import make_synthetic_trajectories
    >>> from metevo.followup import follow_up
    >>> t = make_synthetic_trajectories(60, seed=2)
    >>> res = follow_up(t["patient_trajectories"], patterns=t["ground_truth"], n_boot=20)
    >>> sorted(res.table.schedule.unique())[:2]
    ['adaptive_6_12_weeks', 'every_12_weeks']
    """
    traj = check_trajectories(trajectories)
    schedules = dict(DEFAULT_SCHEDULES if schedules is None else schedules)
    if not schedules:
        raise ValueError("schedules: expected at least one schedule, found none.")
    for name, spec in schedules.items():
        if not isinstance(spec, AdaptiveSchedule) and not (
            isinstance(spec, (int, np.integer)) and spec > 0
        ):
            raise ValueError(
                f"schedules[{name!r}]: expected a positive interval in days or an "
                f"AdaptiveSchedule, found {spec!r}."
            )
    if not horizon_days > 0:
        raise ValueError(f"horizon_days: expected > 0, found {horizon_days!r}.")
    if n_simulations < 1:
        raise ValueError(f"n_simulations: expected >= 1, found {n_simulations!r}.")
    kin = patient_kinetics(traj)
    ids = kin.index.to_numpy()
    groups = check_patterns(patterns, ids)
    kin.insert(0, PATTERN, groups.to_numpy())
    if measurement_cv is None:
        cv, source, _ = estimate_cv(traj, close_days=close_days)
    else:
        if not 0 <= measurement_cv < 1:
            raise ValueError(f"measurement_cv: expected in [0, 1), found {measurement_cv!r}.")
        cv, source = float(measurement_cv), "given"
    rates = new_lesion_rates(traj, groups)

    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 17]))
    P, R = len(ids), int(n_simulations)
    stop_day = float(horizon_days) + DAYS_PER_YEAR
    lam = rates.reindex(groups.to_numpy()).fillna(0.0).to_numpy()
    with np.errstate(divide="ignore"):
        appear = rng.exponential(1.0, size=(P, R)) / lam[:, None]
    min_interval = min(
        s.fast_days if isinstance(s, AdaptiveSchedule) else s for s in schedules.values()
    )
    n_scans_max = int(stop_day // min_interval) + 2
    noise = rng.standard_normal((P, R, n_scans_max))
    if not (isinstance(jitter_days, (int, np.integer)) and 0 <= jitter_days < min_interval / 2):
        raise ValueError(
            f"jitter_days: expected an integer in [0, {min_interval / 2:g}) (half the shortest "
            f"interval), found {jitter_days!r}."
        )
    jitter = rng.integers(-jitter_days, jitter_days + 1, size=(P, R, n_scans_max)).astype(float)
    t_size = _true_size_progression(kin, stop_day)
    t_true = np.minimum(t_size[:, None], appear)
    progressed = t_true <= horizon_days
    kin["true_size_progression_day"] = np.where(np.isfinite(t_size), t_size, np.nan)

    rows, delays_out = [], {}
    boot_rng = np.random.default_rng(np.random.SeedSequence([int(seed), 18]))
    group_names = [ALL] + sorted(set(groups) - {ALL})
    for name, spec in schedules.items():
        called, n_scans = _simulate(kin, appear, noise, spec, cv, stop_day, horizon_days, jitter)
        with np.errstate(invalid="ignore"):  # inf - inf where neither happens: masked below
            delay = np.where(progressed, called - t_true, np.nan)
        end = np.minimum(called, horizon_days)
        delays_out[name] = delay
        for grp in group_names:
            sel = np.ones(P, bool) if grp == ALL else (groups.to_numpy() == grp)
            if not sel.any():
                continue
            est, ci = _bootstrap(
                delay[sel], n_scans[sel].astype(float), end[sel] / DAYS_PER_YEAR, n_boot, boot_rng
            )
            row = {
                F.PATTERN: grp,
                F.SCHEDULE: name,
                F.INTERVAL_DAYS: np.nan if isinstance(spec, AdaptiveSchedule) else float(spec),
                F.N_PATIENTS: int(sel.sum()),
                F.N_PROGRESSIONS: int(progressed[sel].sum()),
            }
            for j, (value, lower, upper) in enumerate(_STAT_COLUMNS):
                row.update({value: est[j], lower: ci[0, j], upper: ci[1, j]})
            row.update({F.MEASUREMENT_CV: cv, F.HORIZON_DAYS: float(horizon_days)})
            rows.append(row)
    table = pd.DataFrame(rows)
    patients = kin.reset_index().rename(columns={"index": PATIENT_ID})
    return FollowUpResult(table, patients, cv, source, rates, delays_out)
