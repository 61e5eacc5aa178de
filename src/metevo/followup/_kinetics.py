"""What the schedule simulation needs from each patient's data.

* **Tumour kinetics** of the RECIST target sum: the growth-decay family of
  :func:`metevo.response.fit_growth_kinetics` (Stein/Wilkerson, selected as ``tumgr`` does) on
  the patient's target sums against days since the baseline scan. A patient that model cannot
  describe (fewer than three assessments, or no significant fit; progressors often stop after two
  scans) gets the log-linear fit through their assessments (``gx`` for growth, ``dx`` for
  shrinkage, both Stein models with one rate); a single assessment keeps the size constant.
* **Measurement error** of the target sum, as a coefficient of variation: from pairs of
  assessments of the same patient at most ``close_days`` apart (within-patient sd of the log
  sizes, ``sd(log(S2/S1)) / sqrt(2)``) when there are at least ``min_pairs`` of them, else the
  literature default :data:`DEFAULT_MEASUREMENT_CV`.
* **New-lesion appearance rate** per group (pattern): first new lesions per patient-day of
  observation, an exponential (constant hazard) model; the appearance is placed halfway between
  the visit that showed it and the visit before.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from metevo.followup._inputs import N_NEW, PATIENT_ID, STUDY_DAY, TARGET_SUM

#: Coefficient of variation of a repeated diameter measurement. Oxnard et al., J Clin Oncol
#: 2011;29:3114-3119 (two CT scans within 15 minutes, three radiologists): 84 % of the repeat
#: changes in diameter lay within +/- 10 %; for normally distributed changes that is an sd of the
#: difference of 10 % / 1.405 = 7.1 %, i.e. 7.1 % / sqrt(2) = 5 % per measurement.
DEFAULT_MEASUREMENT_CV = 0.05
DEFAULT_CV_SOURCE = "Oxnard et al., J Clin Oncol 2011;29:3114 (repeat CT within 15 min)"


def patient_kinetics(traj: pd.DataFrame) -> pd.DataFrame:
    """Per patient: baseline day and size, Stein rates ``g``/``d`` (1/day) and how they came.

    Returns a DataFrame indexed by ``patient_id`` with ``base_day``, ``base_size_mm``,
    ``g_per_day``, ``d_per_day``, ``kinetics`` (``"growth_decay_fit"``, ``"log_linear"``,
    ``"constant"`` or ``"no_target"``), ``last_day`` (last assessment).
    """
    from metevo.response import fit_growth_kinetics

    rows = []
    for pid, grp in traj.groupby(PATIENT_ID, sort=True):
        days = grp[STUDY_DAY].to_numpy(float)
        size = grp[TARGET_SUM].to_numpy(float)
        ok = np.isfinite(size)
        row = {
            PATIENT_ID: pid,
            "base_day": float(days[0]),
            "last_day": float(days[-1]),
            "base_size_mm": float(size[0]) if ok[0] else np.nan,
            "g_per_day": 0.0,
            "d_per_day": 0.0,
        }
        if not ok[0] or size[0] <= 0:
            row["kinetics"] = "no_target"
            rows.append(row)
            continue
        t, y = days[ok] - days[0], size[ok]
        fit = fit_growth_kinetics(t, y) if t.size >= 3 else None
        if fit is not None and fit.status == "fit":
            row["g_per_day"] = 0.0 if np.isnan(fit.g_per_day) else fit.g_per_day
            row["d_per_day"] = 0.0 if np.isnan(fit.d_per_day) else fit.d_per_day
            row["kinetics"] = "growth_decay_fit"
        elif t.size >= 2 and np.all(y > 0):
            slope = (
                float(np.polyfit(t, np.log(y / y[0]), 1)[0])
                if t.size > 2
                else float(np.log(y[-1] / y[0]) / t[-1])
            )
            row["g_per_day" if slope > 0 else "d_per_day"] = abs(slope)
            row["kinetics"] = "log_linear"
        else:
            row["kinetics"] = "constant"
        rows.append(row)
    return pd.DataFrame(rows).set_index(PATIENT_ID)


def measurement_cv(
    traj: pd.DataFrame, *, close_days: float = 14.0, min_pairs: int = 10
) -> tuple[float, str, int]:
    """Coefficient of variation of the target sum: (value, source, number of close pairs)."""
    pairs = []
    for _, grp in traj.groupby(PATIENT_ID, sort=False):
        d = grp[STUDY_DAY].to_numpy(float)
        s = grp[TARGET_SUM].to_numpy(float)
        gap = np.diff(d)
        ok = (gap <= close_days) & (s[1:] > 0) & (s[:-1] > 0)
        pairs.extend(np.log(s[1:][ok] / s[:-1][ok]))
    if len(pairs) >= min_pairs:
        cv = float(np.std(pairs, ddof=1) / np.sqrt(2.0))
        return cv, f"{len(pairs)} visit pairs <= {close_days:g} days apart", len(pairs)
    return DEFAULT_MEASUREMENT_CV, DEFAULT_CV_SOURCE, len(pairs)


def new_lesion_rates(traj: pd.DataFrame, groups: pd.Series) -> pd.Series:
    """First-new-lesion appearance rate (per day) of each group, from day 0 on."""
    events, exposure = {}, {}
    for pid, grp in traj.groupby(PATIENT_ID, sort=False):
        g = groups.loc[pid]
        d = grp[STUDY_DAY].to_numpy(float)
        new = grp[N_NEW].to_numpy(int) > 0
        new[0] = False
        if new.any():
            k = int(np.argmax(new))
            end = 0.5 * (d[k - 1] + d[k])
            events[g] = events.get(g, 0) + 1
        else:
            end = d[-1]
        exposure[g] = exposure.get(g, 0.0) + max(end, 0.0)
    out = {g: events.get(g, 0) / exposure[g] if exposure[g] > 0 else 0.0 for g in exposure}
    return pd.Series(out, name="new_lesion_rate_per_day")
