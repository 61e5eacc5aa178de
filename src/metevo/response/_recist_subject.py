"""Assessment of one subject, visit by visit: target sums against baseline and nadir, non-target
states, new lesions, and the overall response of each visit (RECIST 1.1 sections 4.3-4.4).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from metevo.columns import Recist
from metevo.response._recist_rules import (
    _EPS,
    CR,
    NE,
    NON_CR_NON_PD,
    PD,
    PR,
    SD,
    RecistOptions,
    _parse_date,
    overall_response,
)

__all__ = []


# --------------------------------------------------------------------------------------------
# per-subject assessment
# --------------------------------------------------------------------------------------------
@dataclass
class _Visit:
    timepoint: str
    date: Any
    when: pd.Timestamp
    order: float
    reason: str | None = None
    progression_reason: str | None = None
    new_default: str | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)
    target_values: dict[str, float] = field(default_factory=dict)
    removed: set[str] = field(default_factory=set)
    nt_states: dict[str, str | None] = field(default_factory=dict)
    new_ids: dict[str, str] = field(default_factory=dict)


def _target_value(row: Mapping[str, Any], opts: RecistOptions) -> float:
    state = row["state"]
    if state == "absent":
        return 0.0
    if state == "not_done":
        return math.nan
    value = row["sa_mm"] if row["nodal"] else row["ld_mm"]
    if state == "too_small" and (value is None or math.isnan(value)):
        return float(opts.too_small_mm)
    return float(value)


def _nt_state(row: Mapping[str, Any], opts: RecistOptions) -> str | None:
    state = row["state"]
    if state in ("present", "absent", "progression", "not_done"):
        if state == "present" and row["nodal"] and row["sa_mm"] < opts.cr_node_mm:
            return "absent"  # a node back to normal size counts as gone (sect. 4.3.3)
        return state
    if state in ("equivocal", "too_small"):
        return "present"
    size = row["sa_mm"] if row["nodal"] else row["ld_mm"]
    if size is None or math.isnan(size):
        return "not_done"
    cut = opts.cr_node_mm if row["nodal"] else 0.0
    return "present" if size > cut else "absent"


def _pct(value: float, ref: float) -> float:
    if not (math.isfinite(value) and math.isfinite(ref)) or ref <= 0:
        return math.nan
    return 100.0 * (value - ref) / ref


def _margin(response: str | None, total: float, pd_at: float, pr_at: float) -> float:
    """How far (mm) the target sum ``total`` lies from the nearest sum that would change the
    target ``response`` (PD from ``pd_at`` up, PR up to ``pr_at``), the baseline and nadir
    being as measured; NaN for CR, NE and none."""
    if response == PD:
        return max(total - pd_at, 0.0)
    if response == PR:
        return max(min(pr_at, pd_at) - total, 0.0)
    if response == SD:
        return max(min(total - pr_at, pd_at - total), 0.0)
    return math.nan


def _assess_subject(
    visits: list[_Visit],
    targets: list[str],
    nodal: dict[str, bool],
    nontargets: list[str],
    opts: RecistOptions,
) -> list[dict[str, Any]]:
    """RECIST per assessment for one subject; ``visits[0]`` is the baseline."""
    out: list[dict[str, Any]] = []
    base = visits[0]
    removed: set[str] = set()
    history: list[tuple[dict[str, float], bool]] = [(base.target_values, True)]
    # equivocal new lesions confirmed unequivocal at the next assessment: PD at first appearance
    for i, v in enumerate(visits[1:-1], start=1):
        nxt = visits[i + 1]
        for lid, status in list(v.new_ids.items()):
            if status == "EQUIVOCAL" and nxt.new_ids.get(lid) == "Y":
                v.new_ids[lid] = "Y"
    for i, v in enumerate(visits):
        removed |= v.removed
        active = [t for t in targets if t not in removed]
        row: dict[str, Any] = {"timepoint": v.timepoint, "date": v.date}
        if i == 0:
            total = float(sum(v.target_values[t] for t in targets)) if targets else math.nan
            row.update(
                evaluable=True,
                not_evaluable_reason=None,
                target_sum_mm=total,
                pct_change_baseline=0.0 if targets else math.nan,
                pct_change_nadir=0.0 if targets else math.nan,
                target_response=None,
                target_response_margin_mm=math.nan,
                nontarget_response=None,
                new_lesions=None,
                overall_response=None,
                is_baseline=True,
            )
            out.append(row)
            continue
        values = {t: v.target_values.get(t, math.nan) for t in active}
        complete = all(math.isfinite(values[t]) for t in active)
        visit_ok = v.reason is None
        reason = v.reason
        # ----- targets
        margin = math.nan
        if not targets:
            trg, total, pct_b, pct_n = None, math.nan, math.nan, math.nan
        elif not active:
            trg, total, pct_b, pct_n = NE, math.nan, math.nan, math.nan
            reason = reason or "all_targets_treated_locally"
        else:
            base_sum = float(sum(base.target_values[t] for t in active))
            sums = [
                float(sum(vals[t] for t in active))
                for vals, ok in history
                if ok and all(math.isfinite(vals.get(t, math.nan)) for t in active)
            ]
            nadir = min(sums) if sums else base_sum
            partial = float(sum(values[t] for t in active if math.isfinite(values[t])))
            # PD: at least pd_abs_mm and pd_pct % over the nadir; the sums where PD starts
            # and where PR ends (under baseline)
            pd_step = max(opts.pd_abs_mm, opts.pd_pct / 100.0 * nadir)
            is_pd = partial - nadir >= pd_step - _EPS
            pd_at = nadir + pd_step
            pr_at = (1.0 - opts.pr_pct / 100.0) * base_sum
            if complete and visit_ok:
                total = partial
                is_cr = all(
                    (values[t] < opts.cr_node_mm) if nodal[t] else (values[t] == 0.0)
                    for t in active
                )
                if is_cr:
                    trg = CR
                elif is_pd:
                    trg = PD
                elif total <= pr_at + _EPS:
                    trg = PR
                else:
                    trg = SD
            else:
                trg = PD if is_pd else NE
                # every target measured: the sum is reported (trajectories need it) even when
                # the visit is not evaluable; the response stays NE
                total = partial if is_pd or complete else math.nan
                if reason is None:
                    missing = [t for t in active if not math.isfinite(values[t])]
                    reason = "target_not_assessed:" + ",".join(missing)
            pct_b = _pct(total, base_sum)
            pct_n = _pct(total, nadir)
            margin = _margin(trg, partial, pd_at, pr_at)
        # ----- non-targets
        nts = [t for t in nontargets if t not in removed]
        if not nts:
            ntr = None
        else:
            states = [v.nt_states.get(t) or "not_done" for t in nts]
            if "progression" in states:
                ntr = PD
            elif not visit_ok or "not_done" in states:
                ntr = NE
            elif all(s == "absent" for s in states):
                ntr = CR
            else:
                ntr = NON_CR_NON_PD
        # ----- new lesions
        statuses = set(v.new_ids.values())
        if "Y" in statuses:
            new = "Y"
        elif "EQUIVOCAL" in statuses:
            new = "EQUIVOCAL"
        elif not visit_ok and "registration_failed" in (v.reason or ""):
            new = "NE"  # lesions could not be matched: whether one is new is unknown
        else:
            new = v.new_default or opts.new_lesions_default
        ovr = overall_response(trg, ntr, new)
        if v.progression_reason:
            ovr = PD
        evaluable = ovr != NE
        if not evaluable and reason is None:
            reason = "not_all_lesions_assessed"
        history.append((values, bool(visit_ok and complete and trg not in (None, NE))))
        row.update(
            evaluable=evaluable,
            not_evaluable_reason=None if evaluable else reason,
            target_sum_mm=total,
            pct_change_baseline=pct_b,
            pct_change_nadir=pct_n,
            target_response=trg,
            target_response_margin_mm=margin,
            nontarget_response=ntr,
            new_lesions=new,
            overall_response=ovr,
            is_baseline=False,
        )
        out.append(row)
    return out


def _subject_visits(meas: list[dict[str, Any]], vis: list[dict[str, Any]]) -> list[_Visit]:
    """Ordered visits of one subject."""
    records: dict[str, _Visit] = {}

    def visit_of(r: dict[str, Any]) -> _Visit:
        """The row's visit, created on first sight; the first date and order seen are kept."""
        tp = r[Recist.TIMEPOINT]
        v = records.get(tp)
        if v is None:
            v = records[tp] = _Visit(tp, None, pd.NaT, math.nan)
        if v.date is None and _present(r.get("date")):
            v.date = r["date"]
            v.when = _parse_date(r["date"])
        if not math.isfinite(v.order) and _present(r.get("visit_order")):
            v.order = float(r["visit_order"])
        return v

    for r in meas:
        visit_of(r).rows.append(r)
    for r in vis:
        v = visit_of(r)
        reason = r.get("not_evaluable_reason")
        if isinstance(reason, str) and reason:
            v.reason = reason
        prog = r.get("progression_reason")
        if isinstance(prog, str) and prog:
            v.progression_reason = prog
        nl = r.get("new_lesions")
        if isinstance(nl, str) and nl:
            v.new_default = nl.upper()
    return sorted(
        records.values(),
        key=lambda v: (
            v.order if math.isfinite(v.order) else math.inf,
            v.when if not pd.isna(v.when) else pd.Timestamp.max,
        ),
    )


def _present(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return False
    return not (isinstance(value, float) and math.isnan(value))
