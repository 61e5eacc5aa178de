"""Per-patient outcomes from per-visit responses: best overall response, PFS, DoR, ETS, depth.

* Best overall response (BOR), unconfirmed and confirmed, follows the derivations of the R
  package admiralonco (``derive_param_bor``, ``derive_param_confirmed_bor``,
  ``derive_param_confirmed_resp``; pharmaverse, Apache-2.0) with RECIST 1.1 sect. 4.6:
  assessments after the first PD are ignored; SD and NON-CR/NON-PD count only from
  ``ref_start_window`` days after the reference date (treatment start), earlier ones are NE.
  Confirmed CR: a CR followed at least ``ref_confirm`` days later by a CR with only CR or NE in
  between (at most ``max_nr_ne`` NE). Confirmed PR: a PR followed at least ``ref_confirm`` days
  later by a CR or PR, with only CR, PR or NE in between (at most ``max_nr_ne`` NE, at most one
  SD when ``accept_sd``) and no PR after a CR. An unconfirmed CR/PR on or after the window is SD.
* Imaging progression-free survival with censoring rule sets after the FDA guidance "Clinical
  Trial Endpoints for the Approval of Cancer Drugs and Biologics" (2018, Table A) — default — or
  the EMA "Guideline on the evaluation of anticancer medicinal products" (2017, Appendix 1):

  ============================================  =======================  ====================
  situation                                     ``fda2018``              ``ema``
  ============================================  =======================  ====================
  PD or death                                   event                    event
  PD / death after >= 2 missed assessments      censored at last         event
                                                adequate assessment
  no baseline / no post-baseline assessment     censored at day 1        censored at day 1
  (death within 2 intervals without one)        (event)                  (event)
  new anticancer treatment before PD            censored at last         event if PD or death
                                                adequate assessment      follows, else censored
                                                before it                at last adequate
  neither                                       censored at last         censored at last
                                                adequate assessment      adequate assessment
  ============================================  =======================  ====================

  An adequate assessment is one whose overall response is not NE. Days count from the start
  date (treatment start, else the baseline scan) with the start as day 1 (ADaM convention
  ``ADT - STARTDT + 1``).
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "PfsResult",
    "best_overall_response",
    "confirmed_response",
    "depth_of_response",
    "early_tumour_shrinkage",
    "imaging_pfs",
    "time_to_nadir",
]

_ORDER = {"CR": 1, "PR": 2, "SD": 3, "NON-CR/NON-PD": 4, "PD": 5, "NE": 6, "MISSING": 7}
_RULES = ("fda2018", "ema")


def _to_date(value: Any) -> pd.Timestamp:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return pd.NaT
    if isinstance(value, str) and len(value) < 10:
        value = (value + "-01-01")[:10] if len(value) == 4 else value + "-01"
    return pd.Timestamp(value)


def _series(dates: Sequence[Any], responses: Sequence[Any]) -> tuple[list[pd.Timestamp], list[str]]:
    if len(dates) != len(responses):
        raise ValueError(
            f"dates and responses must have the same length; got {len(dates)} and {len(responses)}."
        )
    pairs = []
    for d, r in zip(dates, responses, strict=True):
        if r is None or (isinstance(r, float) and math.isnan(r)):
            continue
        r = str(r).upper()
        if r not in _ORDER:
            raise ValueError(
                f"overall response {r!r} at {d} is not one of {list(_ORDER)[:-1]}; recode it "
                "(e.g. SDTM OVRLRESP values)."
            )
        pairs.append((_to_date(d), r))
    pairs.sort(key=lambda p: p[0])
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _cut_at_pd(dates: list[pd.Timestamp], resp: list[str], pd_date: Any = None):
    limit = _to_date(pd_date) if pd_date is not None else None
    if limit is None or pd.isna(limit):
        limit = next((d for d, r in zip(dates, resp, strict=True) if r == "PD"), None)
    if limit is None:
        return dates, resp
    keep = [i for i, d in enumerate(dates) if d <= limit]
    return [dates[i] for i in keep], [resp[i] for i in keep]


def best_overall_response(
    dates: Sequence[Any],
    responses: Sequence[Any],
    reference_date: Any,
    *,
    confirmed: bool = False,
    ref_start_window: int = 42,
    ref_confirm: int = 28,
    max_nr_ne: int = 1,
    accept_sd: bool = False,
    pd_date: Any = None,
) -> tuple[str, pd.Timestamp]:
    """Best overall response of one patient (admiralonco rules, RECIST 1.1 sect. 4.6).

    Parameters
    ----------
    dates, responses : sequence
        Assessment dates and overall responses (CR, PR, SD, NON-CR/NON-PD, PD, NE).
    reference_date : date-like
        Treatment start (or randomisation).
    confirmed : bool
        Require confirmation of CR and PR (``derive_param_confirmed_bor``).
    ref_start_window : int
        SD and NON-CR/NON-PD count only from this many days after ``reference_date``
        (42 days by default for metevo; admiralonco's tests use 28).
    ref_confirm : int
        Minimum days between a response and its confirmation (28).
    max_nr_ne : int
        NE assessments allowed between a response and its confirmation (1).
    accept_sd : bool
        Allow one SD between a PR and its confirmation.
    pd_date : date-like, optional
        Date of first PD; later assessments are ignored. Default: the first PD among
        ``responses``.

    Returns
    -------
    (str, Timestamp)
        The best response ("MISSING" when there is no assessment) and the date of the first
        assessment reaching it (NaT when missing).

    Examples
    --------
    >>> best_overall_response(["2020-01-01", "2020-02-01", "2020-03-01"], ["PR", "CR", "CR"],
    ...                       "2019-12-01", confirmed=True)[0]
    'CR'
    """
    ref = _to_date(reference_date)
    if pd.isna(ref):
        raise ValueError(
            "reference_date is missing; best overall response needs the treatment start (or the "
            "baseline scan date when the treatment start is unknown)."
        )
    d, r = _cut_at_pd(*_series(dates, responses), pd_date)
    if not d:
        return "MISSING", pd.NaT
    window = ref + pd.Timedelta(days=ref_start_window)
    candidates: list[tuple[int, pd.Timestamp, str]] = []
    if confirmed:
        for i in _confirmed_indices(d, r, "CR", ref_confirm, max_nr_ne, accept_sd):
            candidates.append((1, d[i], "CR"))
        for i in _confirmed_indices(d, r, "PR", ref_confirm, max_nr_ne, accept_sd):
            candidates.append((2, d[i], "PR"))
        for di, ri in zip(d, r, strict=True):
            if ri in ("CR", "PR", "SD") and di >= window:
                candidates.append((3, di, "SD"))
    else:
        for di, ri in zip(d, r, strict=True):
            if ri in ("CR", "PR"):
                candidates.append((_ORDER[ri], di, ri))
            elif ri == "SD" and di >= window:
                candidates.append((3, di, "SD"))
    for di, ri in zip(d, r, strict=True):
        if ri == "NON-CR/NON-PD" and di >= window:
            candidates.append((4, di, ri))
        elif ri == "PD":
            candidates.append((5, di, ri))
        elif ri == "NE" or (ri in ("CR", "PR", "SD", "NON-CR/NON-PD") and di < window):
            candidates.append((6, di, "NE"))
    if not candidates:
        return "MISSING", pd.NaT
    best = min(candidates, key=lambda c: (c[0], c[1]))
    return best[2], best[1]


def _confirmed_indices(
    d: list[pd.Timestamp],
    r: list[str],
    kind: str,
    ref_confirm: int,
    max_nr_ne: int,
    accept_sd: bool,
) -> list[int]:
    """Indices of ``kind`` (CR or PR) assessments confirmed as admiralonco's filter_joined."""
    found = []
    for i, (di, ri) in enumerate(zip(d, r, strict=True)):
        if ri != kind:
            continue
        upto = None
        for j in range(i + 1, len(d)):
            ok = r[j] == "CR" if kind == "CR" else r[j] in ("CR", "PR")
            if ok and d[j] >= di + pd.Timedelta(days=ref_confirm):
                upto = j
                break
        if upto is None:
            continue
        joined = r[i + 1 : upto + 1]
        n_ne = joined.count("NE")
        if kind == "CR":
            good = all(x in ("CR", "NE") for x in joined) and n_ne <= max_nr_ne
        else:
            n_sd = joined.count("SD")
            jd = d[i + 1 : upto + 1]
            cr_dates = [x for x, y in zip(jd, joined, strict=True) if y == "CR"]
            pr_dates = [x for x, y in zip(jd, joined, strict=True) if y == "PR"]
            order_ok = not cr_dates or not pr_dates or min(cr_dates) > max(pr_dates)
            good = (
                all(x in ("CR", "PR", "SD", "NE") for x in joined)
                and n_ne <= max_nr_ne
                and n_sd <= (1 if accept_sd else 0)
                and order_ok
            )
        if good:
            found.append(i)
    return found


def confirmed_response(
    dates: Sequence[Any],
    responses: Sequence[Any],
    *,
    ref_confirm: int = 28,
    max_nr_ne: int = 1,
    accept_sd: bool = False,
    pd_date: Any = None,
) -> tuple[bool, pd.Timestamp]:
    """Whether the patient has a confirmed CR or PR, and the date of the first one.

    Follows admiralonco ``derive_param_confirmed_resp`` (same rules as the confirmed BOR).

    Examples
    --------
    >>> confirmed_response(["2020-01-01", "2020-02-01"], ["PR", "CR"])
    (True, Timestamp('2020-01-01 00:00:00'))
    """
    d, r = _cut_at_pd(*_series(dates, responses), pd_date)
    idx = _confirmed_indices(d, r, "CR", ref_confirm, max_nr_ne, accept_sd)
    idx += _confirmed_indices(d, r, "PR", ref_confirm, max_nr_ne, accept_sd)
    if not idx:
        return False, pd.NaT
    return True, min(d[i] for i in idx)


@dataclass(frozen=True)
class PfsResult:
    """Imaging PFS of one patient: ``days`` (start = day 1), ``event``, ``censor_reason``
    (None for an event), ``date`` of the event or censoring."""

    days: float
    event: bool
    censor_reason: str | None
    date: pd.Timestamp


def imaging_pfs(
    dates: Sequence[Any],
    responses: Sequence[Any],
    start_date: Any,
    *,
    has_baseline: bool = True,
    death_date: Any = None,
    new_treatment_date: Any = None,
    extra_pd_date: Any = None,
    rules: str = "fda2018",
    assessment_interval_days: float | None = None,
    max_missed: int = 2,
) -> PfsResult:
    """Imaging progression-free survival with a censoring rule set (see module docstring).

    Parameters
    ----------
    dates, responses : sequence
        Post-baseline assessment dates and overall responses.
    start_date : date-like
        Treatment start (day 1).
    has_baseline : bool
        False when there was no baseline assessment (censored at day 1).
    death_date, new_treatment_date, extra_pd_date : date-like, optional
        Death; start of a new anticancer treatment; progression documented outside the imaged
        scope (e.g. extrahepatic) with no assessment on or after it.
    rules : {"fda2018", "ema"}
        Censoring rule set.
    assessment_interval_days : float, optional
        Planned interval between assessments; default the median interval of the patient's
        assessments (56 days when fewer than two).
    max_missed : int
        Number of consecutively missed assessments before an event is censored (FDA: 2).

    Returns
    -------
    PfsResult

    Examples
    --------
    >>> r = imaging_pfs(["2020-02-12", "2020-04-08"], ["SD", "PD"], "2020-01-01")
    >>> (r.days, r.event)
    (99, True)
    """
    if rules not in _RULES:
        raise ValueError(f"rules must be one of {list(_RULES)}; got {rules!r}.")
    start = _to_date(start_date)
    if pd.isna(start):
        raise ValueError("start_date is missing; imaging PFS needs a start date (day 1).")
    d, r = _series(dates, responses)
    keep = [i for i, x in enumerate(d) if x > start]
    d, r = [d[i] for i in keep], [r[i] for i in keep]
    death = _to_date(death_date)
    newtx = _to_date(new_treatment_date)
    extra = _to_date(extra_pd_date)
    if assessment_interval_days is None:
        gaps = np.diff([start.value] + [x.value for x in d]) / 8.64e13
        assessment_interval_days = float(np.median(gaps)) if len(gaps) >= 2 else 56.0

    def days(x: pd.Timestamp) -> int:
        return int((x - start).days) + 1

    adequate = [(x, y) for x, y in zip(d, r, strict=True) if y != "NE"]
    pd_dates = [x for x, y in adequate if y == "PD"]
    first_pd = min(pd_dates) if pd_dates else pd.NaT
    if not pd.isna(extra) and (pd.isna(first_pd) or extra < first_pd):
        first_pd = extra
    candidates = [x for x in (first_pd, death) if not pd.isna(x)]
    event_date = min(candidates) if candidates else pd.NaT
    limit = 2 * assessment_interval_days
    if not has_baseline or not adequate or adequate[0][0] > event_date:
        # no baseline / no adequate post-baseline assessment before the event
        if (
            not pd.isna(death)
            and death == event_date
            and (death - start).days <= limit
            and has_baseline
        ):
            return PfsResult(days(death), True, None, death)
        if not pd.isna(event_date) and has_baseline and rules == "ema":
            return PfsResult(days(event_date), True, None, event_date)
        reason = "no_baseline_assessment" if not has_baseline else "no_post_baseline_assessment"
        return PfsResult(1, False, reason, start)

    def last_adequate_before(x: pd.Timestamp) -> pd.Timestamp:
        prior = [a for a, _ in adequate if a <= x]
        return max(prior) if prior else start

    if rules == "fda2018" and not pd.isna(newtx) and (pd.isna(event_date) or newtx < event_date):
        last = last_adequate_before(newtx)
        return PfsResult(days(last), False, "new_anticancer_treatment", last)
    if pd.isna(event_date):
        last = adequate[-1][0]
        return PfsResult(days(last), False, "no_event", last)
    if rules == "fda2018":
        prior = [a for a, _ in adequate if a < event_date]
        last = max(prior) if prior else start
        if (event_date - last).days > (max_missed + 0.5) * assessment_interval_days:
            return PfsResult(days(last), False, "event_after_missed_assessments", last)
    return PfsResult(days(event_date), True, None, event_date)


def early_tumour_shrinkage(
    study_days: Sequence[float],
    pct_change: Sequence[float],
    *,
    window_days: tuple[float, float] = (42, 70),
    threshold_pct: float = 20.0,
) -> bool | None:
    """Early tumour shrinkage: >= ``threshold_pct`` % decrease of the target sum at the first
    follow-up inside ``window_days`` (days from treatment start; default 6-10 weeks).

    Returns None (missing, not "no") when no assessed follow-up falls in the window
    (Piessevaux et al., J Clin Oncol 2013; Cremolini et al., Ann Oncol 2015).

    Examples
    --------
    >>> early_tumour_shrinkage([0, 56, 112], [0.0, -25.0, -40.0])
    True
    >>> early_tumour_shrinkage([0, 112], [0.0, -40.0]) is None
    True
    """
    lo, hi = window_days
    for day, pct in sorted(zip(study_days, pct_change, strict=True)):
        if day is None or pct is None or not (math.isfinite(day) and math.isfinite(pct)):
            continue
        if lo <= day <= hi:
            return bool(pct <= -threshold_pct + 1e-9)
    return None


def depth_of_response(pct_change: Sequence[float]) -> float:
    """Depth of response: maximal shrinkage of the target sum from baseline, in % (positive;
    0 when nothing shrinks), over assessments at or before the first PD — pass only those
    (Mansmann et al., Br J Cancer 2013; Heinemann et al., Eur J Cancer 2015).

    Examples
    --------
    >>> depth_of_response([-10.0, -45.0, -30.0, 25.0])
    45.0
    >>> depth_of_response([5.0, 12.0])
    0.0
    """
    values = [p for p in pct_change if p is not None and math.isfinite(p)]
    if not values:
        return math.nan
    return float(max(0.0, -min(values)))


def time_to_nadir(study_days: Sequence[float], sums: Sequence[float]) -> float:
    """Days from the start to the assessment with the smallest target sum (the first one when
    tied); pass the baseline (day 0 or its study day) and the assessments up to first PD.

    Examples
    --------
    >>> time_to_nadir([0, 56, 112], [50.0, 30.0, 35.0])
    56.0
    """
    pairs = [
        (s, d)
        for d, s in zip(study_days, sums, strict=True)
        if d is not None and s is not None and math.isfinite(s) and math.isfinite(d)
    ]
    if not pairs:
        return math.nan
    best = min(s for s, _ in pairs)
    return float(min(d for s, d in pairs if s <= best + 1e-9))


def _date(value: Any) -> _dt.date | None:
    ts = _to_date(value)
    return None if pd.isna(ts) else ts.date()
