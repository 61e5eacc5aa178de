"""Trajectory representations for :mod:`metevo.patterns` (irregular visits, informative dropout).

Everything here is about turning the ``patient_trajectories`` table (one row per patient x
visit) into arrays a clustering method can use, honestly:

* time is days since treatment start (``study_day``), never the visit index;
* after a resection or ablation the burden is read with the treated lesions taken out of the
  baseline, as RECIST 1.1 does (``<burden>_adjusted`` columns of ``patient_trajectories``, used
  in place of ``<burden>`` when present; :mod:`metevo.evolution._resection`), so that surgery is
  not read as a response; a lesion track's rows flagged ``resected`` are left out (its course
  ends before the resection);
* tumour burden is the log-ratio to baseline, ``log((v + eps) / (v0 + eps))``, so depth of
  response is kept (no per-series z-normalisation);
* each patient's curve is linearly interpolated onto a common grid ``0, step, ..., horizon`` and
  is *masked* (NaN) after the patient's last visit: dropout at progression or death is never
  filled in;
* the fraction of the window a patient was followed is kept as a feature, because leaving
  early is itself informative;
* the derived channel :data:`OVER_NADIR` is the primary log-ratio minus its running minimum over
  the visits (the rise over the nadir that defines RECIST 1.1 progression), so a relapse after a
  response is seen in the patient's own curve before the patient leaves.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from metevo.columns import PatientTrajectories
from metevo.exceptions import DataQualityWarning

PATIENT_ID = "patient_id"
TIMEPOINT = "timepoint"
DAYS = "days"
STUDY_DAY = "study_day"
TARGET_SUM_MM = "target_sum_mm"
TOTAL_VOLUME_ML = "total_volume_ml"
N_LESIONS = "n_lesions"
N_NEW_LESIONS = "n_new_lesions"
#: burden column -> its resection-adjusted twin, read in its place when the table has it
RESECTION_ADJUSTED = PatientTrajectories.RESECTION_ADJUSTED
#: lesion-trajectory flag of a track removed by a resection or ablation (rows left out)
RESECTED = "resected"

MULTIVARIATE_DEFAULT = (TARGET_SUM_MM, TOTAL_VOLUME_ML, N_LESIONS)
#: derived channel: log-ratio of the primary burden over its running nadir (the quantity RECIST
#: 1.1 section 4.3.1 progression is defined on), 0 while the burden keeps falling
OVER_NADIR = "log_ratio_over_nadir"
KINETICS_FEATURES = (
    "depth_log_ratio",
    "time_to_nadir_days",
    "regrowth_log_ratio_per_100_days",
    "early_log_ratio",
)
EXCLUSION_REASONS = (
    "one visit only: no trajectory",
    "baseline value missing or zero: log-ratio undefined",
    "no follow-up visit up to the landmark",
)


def _eps_for(column: str) -> float:
    if column.endswith("_ml"):
        return 0.1
    if column.startswith("n_"):
        return 1.0
    return 1.0  # millimetres and other positive sizes


def _is_ratio_column(column: str) -> bool:
    return column.endswith(("_mm", "_ml")) or column.startswith("n_")


@dataclass
class Representation:
    """Arrays built from a trajectories table for a set of included patients."""

    patient_ids: np.ndarray  # (n,) included patients, sorted
    grid_days: np.ndarray  # (T,)
    channels: tuple[str, ...]
    values: np.ndarray  # (n, C, T) log-ratio (or delta) on the grid, NaN after the last visit
    followup_days: np.ndarray  # (n,) last visit day used (days since treatment start)
    n_visits: np.ndarray  # (n,) visits used, baseline included
    visit_days: list[np.ndarray] = field(default_factory=list)  # per patient, visits used
    visit_values: list[np.ndarray] = field(default_factory=list)  # per patient, primary channel
    excluded: pd.DataFrame = field(default_factory=pd.DataFrame)  # patient_id, n_visits, reason
    time_column: str = STUDY_DAY


def check_trajectories(trajectories: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """Validate the trajectories table once and return the columns the patterns need."""
    if not isinstance(trajectories, pd.DataFrame):
        raise TypeError(
            "trajectories must be a pandas DataFrame (patient_trajectories.parquet, one row per "
            f"patient x visit); found {type(trajectories).__name__}."
        )
    columns = tuple(c for c in columns if c != OVER_NADIR)  # derived, not a table column
    needed = (PATIENT_ID, *columns)
    missing = [c for c in needed if c not in trajectories.columns]
    if missing:
        raise ValueError(
            f"patient_trajectories lacks column(s) {missing}; expected {list(needed)} plus "
            f"'{STUDY_DAY}' or '{DAYS}'. Found columns {list(trajectories.columns)}. Pass a "
            "table from metevo.trajectories (patient_trajectories.parquet) or choose "
            "value_column= among the columns present."
        )
    if STUDY_DAY not in trajectories.columns and DAYS not in trajectories.columns:
        raise ValueError(
            f"patient_trajectories has neither '{STUDY_DAY}' (days since treatment start) nor "
            f"'{DAYS}' (days since the first scan); one time column is needed."
        )
    if RESECTED in trajectories.columns:  # lesion tracks: the course ends at the resection
        trajectories = trajectories[~trajectories[RESECTED].fillna(False).astype(bool)]
    keep = [c for c in (PATIENT_ID, STUDY_DAY, DAYS, *columns) if c in trajectories.columns]
    out = trajectories[keep].copy()
    out[PATIENT_ID] = out[PATIENT_ID].astype(str)
    for col in columns:  # after a resection: treated lesions out of the baseline, as RECIST does
        adjusted = RESECTION_ADJUSTED.get(col)
        if adjusted in trajectories.columns:
            out[col] = trajectories[adjusted]
    for col in columns:
        out[col] = pd.to_numeric(out[col], errors="coerce").astype(float)
    time = _time_axis(out)
    out["_t"] = time
    bad = out["_t"].isna()
    if bad.any():
        raise ValueError(
            f"{int(bad.sum())} row(s) of patient_trajectories have no visit time (e.g. patient "
            f"{out.loc[bad, PATIENT_ID].iloc[0]!r}); '{STUDY_DAY}' or '{DAYS}' must be filled."
        )
    return out.sort_values([PATIENT_ID, "_t"], kind="stable").reset_index(drop=True)


def _time_axis(table: pd.DataFrame) -> pd.Series:
    study = (
        pd.to_numeric(table[STUDY_DAY], errors="coerce")
        if STUDY_DAY in table
        else pd.Series(np.nan, index=table.index)
    )
    if study.notna().all():
        return study.astype(float)
    if DAYS not in table:
        return study.astype(float)
    no_start = table.loc[study.isna(), PATIENT_ID].unique()
    warnings.warn(
        f"{len(no_start)} patient(s) have no '{STUDY_DAY}' (no treatment_start in the clinical "
        f"table, e.g. {no_start[0]!r}); their time axis is '{DAYS}' since the first scan, "
        "which only matches days since treatment start when the baseline scan is on day 0. "
        "Add treatment_start to the clinical table to fix this.",
        DataQualityWarning,
        stacklevel=3,
    )
    return study.fillna(pd.to_numeric(table[DAYS], errors="coerce")).astype(float)


def _transform(
    values: np.ndarray, base: float, column: str, min_ratio: float | None = None
) -> np.ndarray:
    if _is_ratio_column(column):
        eps = _eps_for(column)
        out = np.log((values + eps) / (base + eps))
        if min_ratio is not None and not column.startswith("n_"):
            out = np.maximum(out, np.log(min_ratio))
        return out
    return values - base


def build_representation(
    table: pd.DataFrame,
    channels: tuple[str, ...],
    *,
    grid_days: np.ndarray | None,
    horizon_days: float | str,
    grid_step_days: float,
    landmark_days: float | None,
    visit_tolerance_days: float,
    min_followup_fraction: float,
    min_ratio: float | None = None,
) -> Representation:
    """Interpolate every patient's channels onto a common day grid (see module docstring).

    ``table`` comes from :func:`check_trajectories`. With ``grid_days`` given (a fitted model's
    grid) the horizon is not re-estimated.
    """
    primary = channels[0]
    limit = np.inf if landmark_days is None else landmark_days + visit_tolerance_days
    pid = table[PATIENT_ID].to_numpy()
    t_all = table["_t"].to_numpy()
    # the derived over-nadir channel is computed from the primary column
    vals_all = table[[primary if c == OVER_NADIR else c for c in channels]].to_numpy(float)
    starts = np.flatnonzero(np.r_[True, pid[1:] != pid[:-1]])
    ends = np.r_[starts[1:], len(pid)]

    included, excluded = [], []
    per_patient = []
    for s, e in zip(starts, ends, strict=True):
        p = pid[s]
        t = t_all[s:e]
        v = vals_all[s:e]
        on_or_before = np.flatnonzero(t <= 0)
        b = on_or_before[-1] if on_or_before.size else 0
        t, v = t[b:], v[b:]
        keep = t <= limit
        t, v = t[keep], v[keep]
        ok = np.isfinite(v[:, 0])
        ok[0] = True
        t, v = t[ok], v[ok]
        n_vis = int(t.size)
        if n_vis < 2:
            reason = (
                EXCLUSION_REASONS[2]
                if landmark_days is not None and (e - s) > 1
                else (EXCLUSION_REASONS[0])
            )
            excluded.append((p, int(e - s), reason))
            continue
        base = v[0]
        if not np.isfinite(base[0]) or base[0] <= 0:
            excluded.append((p, int(e - s), EXCLUSION_REASONS[1]))
            continue
        included.append(p)
        per_patient.append((t, v, base))

    excluded_df = pd.DataFrame(excluded, columns=[PATIENT_ID, "n_visits", "reason"])
    n = len(included)
    if grid_days is None:
        if landmark_days is not None:
            horizon = float(landmark_days)
        elif horizon_days == "auto":
            last = np.array([pp[0][-1] for pp in per_patient]) if n else np.array([grid_step_days])
            horizon = float(np.quantile(last, 1.0 - min_followup_fraction))
        else:
            horizon = float(horizon_days)
        n_steps = max(int(np.floor(horizon / grid_step_days + 1e-9)), 1)
        grid_days = np.arange(n_steps + 1) * float(grid_step_days)
        if landmark_days is not None and grid_days[-1] < landmark_days:
            grid_days = np.r_[grid_days, float(landmark_days)]
    grid_days = np.asarray(grid_days, dtype=float)

    values = np.full((n, len(channels), grid_days.size), np.nan)
    followup = np.zeros(n)
    n_visits = np.zeros(n, dtype=int)
    visit_days, visit_values = [], []
    for i, (t, v, base) in enumerate(per_patient):
        followup[i] = t[-1]
        n_visits[i] = t.size
        inside = grid_days <= t[-1] + 1e-9
        for c, col in enumerate(channels):
            ok = np.isfinite(v[:, c])
            if not np.isfinite(base[c]) or ok.sum() < 1:
                continue
            if col == OVER_NADIR:
                y = _transform(v[ok, c], base[c], primary, min_ratio)
                y = y - np.minimum.accumulate(y)
            else:
                y = _transform(v[ok, c], base[c], col, min_ratio)
            values[i, c, inside] = np.interp(grid_days[inside], t[ok], y)
        visit_days.append(t)
        visit_values.append(_transform(v[:, 0], base[0], primary, min_ratio))
    return Representation(
        patient_ids=np.asarray(included, dtype=object),
        grid_days=grid_days,
        channels=tuple(channels),
        values=values,
        followup_days=followup,
        n_visits=n_visits,
        visit_days=visit_days,
        visit_values=visit_values,
        excluded=excluded_df,
    )


def kinetics_features(rep: Representation, *, early_day: float = 56.0) -> pd.DataFrame:
    """Per-patient kinetics summaries of the primary log-ratio, from the visits used.

    Columns: ``depth_log_ratio`` (nadir, <= 0), ``time_to_nadir_days``,
    ``regrowth_log_ratio_per_100_days`` (slope from nadir to the last visit, 0 when the nadir is
    the last visit), ``early_log_ratio`` (interpolated at ``early_day``, or at the last visit
    when follow-up is shorter).
    """
    rows = []
    for t, y in zip(rep.visit_days, rep.visit_values, strict=True):
        j = int(np.argmin(y))
        depth = min(float(y[j]), 0.0)
        nadir_t = float(t[j] - t[0]) if y[j] < 0 else 0.0
        regrowth = 0.0
        if j < t.size - 1 and t[-1] > t[j]:
            regrowth = 100.0 * float(y[-1] - y[j]) / float(t[-1] - t[j])
        early = float(np.interp(min(early_day, t[-1]), t, y))
        rows.append((depth, nadir_t, regrowth, early))
    return pd.DataFrame(rows, columns=list(KINETICS_FEATURES), index=rep.patient_ids)


def flatten(
    rep: Representation, scales: np.ndarray, dropout_weight: float
) -> tuple[np.ndarray, np.ndarray]:
    """(n, C*T [+1]) values with 0 where unobserved, and the matching 0/1 weights."""
    n, c, t = rep.values.shape
    scaled = rep.values / scales[None, :, None]
    x = scaled.reshape(n, c * t)
    w = np.isfinite(x).astype(float)
    x = np.where(w > 0, x, 0.0)
    if dropout_weight > 0:
        horizon = rep.grid_days[-1]
        observed = np.clip(rep.followup_days / horizon, 0.0, 1.0) if horizon > 0 else np.ones(n)
        # one always-observed column: how much of the window was *not* followed, in the same
        # units as the log-ratio (a patient lost at 1/2 the window is 0.5 * weight apart)
        extra = dropout_weight * (1.0 - observed) * np.sqrt(c * t)
        x = np.column_stack([x, extra])
        w = np.column_stack([w, np.ones(n)])
    return x, w


def forward_filled(rep: Representation, scales: np.ndarray) -> np.ndarray:
    """(n, T, C) grid values with the last observed value carried forward (for tslearn)."""
    vals = rep.values / scales[None, :, None]
    out = np.empty_like(vals)
    for c in range(vals.shape[1]):
        v = vals[:, c, :]
        mask = np.isfinite(v)
        idx = np.where(mask, np.arange(v.shape[1])[None, :], 0)
        np.maximum.accumulate(idx, axis=1, out=idx)
        filled = v[np.arange(v.shape[0])[:, None], idx]
        out[:, c, :] = np.where(np.isfinite(filled), filled, 0.0)
    return np.transpose(out, (0, 2, 1))


def sequences(rep: Representation) -> np.ndarray:
    """Variable-length visit sequences of the primary log-ratio, NaN-padded (n, max_visits, 1)."""
    longest = max((len(v) for v in rep.visit_values), default=1)
    out = np.full((len(rep.visit_values), longest, 1), np.nan)
    for i, v in enumerate(rep.visit_values):
        out[i, : len(v), 0] = v
    return out


LESION_SPREAD = "lesion_log_ratio_spread"


def lesion_spread(
    lesion_trajectories: pd.DataFrame,
    value_column: str = "axial_ld_mm",
    *,
    min_ratio: float | None = 0.25,
) -> pd.DataFrame:
    """Within-patient heterogeneity of lesion response per visit.

    For each lesion present at the patient's baseline visit, the log-ratio of its size to its
    baseline size (``log((v + 1) / (v0 + 1))``, mm, floored at ``log(min_ratio)`` so that two
    lesions that both (nearly) vanished do not differ); the *spread* at a visit is the largest
    minus the smallest of these log-ratios (0 with one lesion). A dissociated (mixed) response
    (some lesions shrink while others grow) has a large spread.

    Returns
    -------
    DataFrame with ``patient_id``, ``timepoint`` (when present), ``study_day`` and
    ``lesion_log_ratio_spread``.
    """
    track = "track_id" if "track_id" in lesion_trajectories.columns else "lesion_id"
    need = ["patient_id", track, value_column]
    time = STUDY_DAY if STUDY_DAY in lesion_trajectories.columns else DAYS
    missing = [c for c in (*need, time) if c not in lesion_trajectories.columns]
    if missing:
        raise ValueError(
            f"lesion trajectories lack column(s) {missing}; expected patient_id, track_id, "
            f"study_day and {value_column!r} (trajectories.parquet). Found "
            f"{list(lesion_trajectories.columns)}."
        )
    keys = (
        ["patient_id", "timepoint"]
        if "timepoint" in lesion_trajectories.columns
        else ["patient_id", time]
    )
    lt = lesion_trajectories
    if RESECTED in lt.columns:  # a resected lesion is not a response: its course ends there
        lt = lt[~lt[RESECTED].fillna(False).astype(bool)]
    lt = lt[list(dict.fromkeys([*need, time, *keys]))].copy()
    lt["patient_id"] = lt["patient_id"].astype(str)
    lt[value_column] = pd.to_numeric(lt[value_column], errors="coerce")
    lt = lt.sort_values(["patient_id", time], kind="stable")
    first_day = lt.groupby("patient_id")[time].transform("min")
    base = lt[lt[time] == first_day].groupby(["patient_id", track])[value_column].first()
    lt = lt.join(base.rename("_base"), on=["patient_id", track]).dropna(subset=["_base"])
    lt["_lr"] = np.log((lt[value_column] + 1.0) / (lt["_base"] + 1.0))
    if min_ratio is not None:
        lt["_lr"] = lt["_lr"].clip(lower=np.log(min_ratio))
    g = lt.groupby(keys, sort=True)
    out = (g["_lr"].max() - g["_lr"].min()).rename(LESION_SPREAD).reset_index()
    if time not in out.columns:
        out[time] = g[time].first().to_numpy()
    return out
