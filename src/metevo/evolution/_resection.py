"""Burden trajectories across a resection or ablation (local therapy).

A resected lesion is not a response. After a local therapy the patient-level trajectories
(``patient_trajectories``) carry

* ``post_resection``: True at every visit after the patient's first ``resection`` or
  ``ablation`` event (events table), or from the first visit where RECIST removed a treated
  lesion (``recist_lesions.state == "removed"``);
* ``<burden>_adjusted`` (``target_sum_adjusted_mm``, ``total_volume_adjusted_ml``,
  ``sum_ld_adjusted_mm``, ``n_lesions_adjusted``): the burden with the treated lesions **taken
  out of the baseline, as RECIST 1.1 does** -- ``value * B / (B - R)``, where ``B`` is the
  baseline value and ``R`` the baseline share of the baseline lesions removed by then (their
  target diameters for the target sum, their volumes, diameters or count for the others), so
  that ``adjusted / B = value / (B - R)``, the ratio to the remaining baseline disease (for the
  target sum exactly RECIST's ``pct_change_baseline``). Equal to the raw value before any
  removal; empty when nothing of the baseline is left.

The ``<burden>_rel_baseline`` / ``_rel_nadir`` columns and the evolution-pattern features
(:func:`metevo.patterns`, which read ``<burden>_adjusted`` in place of ``<burden>`` when present)
use the adjusted values, so a resection reads neither as a response nor as a drop-out.

At lesion level (``trajectories``) the rows of a removed lesion's track from its removal on are
flagged ``resected`` (sizes 0, ``present`` False); lesion-level patterns and the lesion spread
end the track's course before its removal.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from metevo.columns import Events as EV
from metevo.columns import PatientTrajectories as PT
from metevo.columns import parse_recist_lesion_id

__all__ = ["add_resection_columns", "resected_tracks"]

#: lesion-level column: the track's lesion was removed by a resection or ablation by this visit
RESECTED = "resected"


def _baseline_lesion(value: object) -> int | None:
    """The baseline lesion a RECIST target or non-target follows (None for a new lesion)."""
    parsed = parse_recist_lesion_id(value)
    return parsed[1] if parsed is not None and parsed[0] is None else None


def add_resection_columns(
    frame: pd.DataFrame,
    lesions: pd.DataFrame,
    recist_lesions: pd.DataFrame | None,
    events: pd.DataFrame | None,
    baseline_tp: str,
) -> pd.DataFrame:
    """Add ``post_resection`` and the ``*_adjusted`` columns to one patient's visit rows.

    ``frame`` holds the visits in date order (``timepoint``, ``date`` and the raw burden
    columns); ``lesions`` the patient's lesion table; ``recist_lesions`` the RECIST stage's
    per-lesion rows (``state`` ``removed`` marks treated lesions); ``events`` the patient's
    events table.
    """
    frame = frame.copy()
    removed: dict[str, set[int]] = {}
    target_ld: dict[int, float] = {}
    if recist_lesions is not None and len(recist_lesions):
        rl = recist_lesions.assign(_base=recist_lesions["lesion_id"].map(_baseline_lesion))
        rl = rl[rl["_base"].notna()]
        for tp, grp in rl[rl["state"] == "removed"].groupby("timepoint"):
            removed[str(tp)] = {int(v) for v in grp["_base"]}
        base_rows = rl[(rl["timepoint"].astype(str) == str(baseline_tp)) & (rl["role"] == "target")]
        target_ld = dict(zip(base_rows["_base"].astype(int), base_rows["ld_mm"].astype(float), strict=True))
    first_event = None
    if events is not None and len(events):
        local = events[events[EV.EVENT].isin(EV.LOCAL_THERAPY)]
        if len(local):
            first_event = pd.to_datetime(local[EV.DATE]).min()
    dates = pd.to_datetime(frame["date"])
    flag = dates > first_event if first_event is not None else pd.Series(False, index=frame.index)
    flag = flag.to_numpy(bool) | frame["timepoint"].astype(str).map(lambda tp: bool(removed.get(tp))).to_numpy(bool)
    frame[PT.POST_RESECTION] = np.logical_or.accumulate(flag) if len(flag) else flag
    base_les = lesions[lesions["timepoint"].astype(str) == str(baseline_tp)] if len(lesions) else lesions
    share = {
        "total_volume_ml": _by_lesion(base_les, "volume_ml"),
        "sum_ld_mm": _by_lesion(base_les, "axial_ld_mm"),
        "n_lesions": {lid: 1.0 for lid in _by_lesion(base_les, "volume_ml")},
        "target_sum_mm": target_ld,
    }
    is_base = (frame["timepoint"].astype(str) == str(baseline_tp)).to_numpy()
    so_far: set[int] = set()
    cumulative = []  # a removed lesion stays removed (also where RECIST stops, e.g. a new line)
    for tp in frame["timepoint"].astype(str):
        so_far |= removed.get(tp, set())
        cumulative.append(set(so_far))
    for col, adjusted in PT.RESECTION_ADJUSTED.items():
        values = frame[col].to_numpy(float)
        base = float(values[is_base][0]) if is_base.any() else np.nan
        out = values.copy()
        for i, gone_ids in enumerate(cumulative):
            gone = sum(share[col].get(lid, 0.0) for lid in gone_ids)
            if gone > 0:
                left = base - gone
                out[i] = values[i] * base / left if left > 1e-9 else np.nan
        frame[adjusted] = out
    return frame


def _by_lesion(lesions: pd.DataFrame, column: str) -> dict[int, float]:
    if lesions is None or len(lesions) == 0 or column not in lesions.columns:
        return {}
    return {
        int(lid): float(v) for lid, v in zip(lesions["lesion_id"], lesions[column], strict=True)
    }


def resected_tracks(
    lesions: pd.DataFrame, recist_lesions: pd.DataFrame | None, baseline_tp: str
) -> dict[int, str]:
    """``track_id -> timepoint`` of the first visit where RECIST removed the track's baseline
    lesion (``recist_lesions`` state ``removed``)."""
    if recist_lesions is None or len(recist_lesions) == 0 or len(lesions) == 0:
        return {}
    base = lesions[lesions["timepoint"].astype(str) == str(baseline_tp)]
    track_of = {int(k): int(t) for k, t in zip(base["lesion_id"], base["track_id"], strict=True)}
    gone = recist_lesions[recist_lesions["state"] == "removed"]
    out: dict[int, str] = {}
    for lid, tp in zip(gone["lesion_id"], gone["timepoint"].astype(str), strict=True):
        k = _baseline_lesion(lid)
        if k is not None and k in track_of:
            out.setdefault(track_of[k], tp)  # rows come in visit order
    return out
