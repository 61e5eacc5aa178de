"""RECIST 1.1 vocabulary and rules shared by the engine: response categories, the options of an
assessment, and the overall response of one visit from its target, non-target and new-lesion
responses (RECIST 1.1 tables 1-2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["RESPONSES", "RecistOptions", "overall_response"]


CR, PR, SD, PD, NE, NON_CR_NON_PD = "CR", "PR", "SD", "PD", "NE", "NON-CR/NON-PD"
#: Overall response categories, best first (admiralonco ordering).
RESPONSES = (CR, PR, SD, NON_CR_NON_PD, PD, NE)

_STATES = ("present", "absent", "too_small", "not_done", "progression", "equivocal", "removed")
_ROLES = ("target", "non-target", "new")
_EPS = 1e-9


# --------------------------------------------------------------------------------------------
# options
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RecistOptions:
    """Thresholds of the engine (RECIST 1.1 defaults)."""

    max_targets: int = 5
    max_targets_per_organ: int = 2
    min_measurable_mm: float = 10.0
    min_measurable_node_mm: float = 15.0
    min_pathological_node_mm: float = 10.0
    cr_node_mm: float = 10.0
    too_small_mm: float = 5.0
    pd_pct: float = 20.0
    pd_abs_mm: float = 5.0
    pr_pct: float = 30.0
    new_lesions_default: str = "N"

    def __post_init__(self) -> None:
        for name in ("max_targets", "max_targets_per_organ"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1; got {value!r}.")
        for name in (
            "min_measurable_mm",
            "min_measurable_node_mm",
            "min_pathological_node_mm",
            "cr_node_mm",
            "too_small_mm",
            "pd_pct",
            "pd_abs_mm",
            "pr_pct",
        ):
            value = getattr(self, name)
            if (
                not isinstance(value, (int, float, np.number))
                or not math.isfinite(value)
                or value < 0
            ):
                raise ValueError(f"{name} must be a finite number >= 0; got {value!r}.")
        if self.new_lesions_default not in ("N", "NE"):
            raise ValueError(
                f"new_lesions_default must be 'N' (no new lesion unless recorded) or 'NE'; "
                f"got {self.new_lesions_default!r}."
            )


# --------------------------------------------------------------------------------------------
# the response tables
# --------------------------------------------------------------------------------------------
def overall_response(target: str | None, nontarget: str | None, new_lesions: str | None) -> str:
    """Combine target, non-target and new-lesion assessments (RECIST 1.1 Tables 1 and 2).

    Parameters
    ----------
    target : {"CR", "PR", "SD", "PD", "NE"} or None
        Target response; None when the patient had no target lesion at baseline (Table 2).
    nontarget : {"CR", "NON-CR/NON-PD", "PD", "NE"} or None
        Non-target response; None when there was no non-target lesion at baseline.
    new_lesions : {"Y", "N", "EQUIVOCAL", "NE"} or None
        Unequivocal new lesion ("Y", or SDTM's "UNEQUIVOCAL"); an equivocal one is not
        progression; None counts as "N"; "NE" (not assessed) prevents a CR.

    Returns
    -------
    str
        One of "CR", "PR", "SD", "PD", "NE", "NON-CR/NON-PD".

    Examples
    --------
    >>> overall_response("CR", "NON-CR/NON-PD", "N")
    'PR'
    >>> overall_response(None, "NON-CR/NON-PD", "N")
    'NON-CR/NON-PD'
    """
    if new_lesions == "UNEQUIVOCAL":  # SDTM NEWLPROG coding
        new_lesions = "Y"
    if target == PD or nontarget == PD or new_lesions == "Y":
        return PD
    new_unknown = new_lesions == "NE"
    if target is None:  # Table 2: non-target disease only
        if nontarget == CR:
            return NE if new_unknown else CR
        if nontarget == NON_CR_NON_PD:
            return NON_CR_NON_PD
        return NE
    if target == CR:
        if nontarget in (CR, None):
            return NE if new_unknown else CR
        return PR  # non-target NON-CR/NON-PD or NE (Table 1)
    if target == PR:
        return PR
    if target == SD:
        return SD
    return NE


def _num(value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return math.nan
    return v


def _flag(value: Any) -> bool:
    return bool(value) if value is not None and value == value else False


def _parse_date(value: Any) -> pd.Timestamp:
    """Parse a full or partial ISO date (``2014-02`` -> 2014-02-01); NaT when empty."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return pd.NaT
    if isinstance(value, pd.Timestamp):
        return value
    try:
        return pd.Timestamp(value)
    except (ValueError, TypeError):
        text = str(value)
        for fmt, size in (("%Y-%m", 7), ("%Y", 4)):
            try:
                return pd.to_datetime(text[:size], format=fmt)
            except ValueError:
                continue
        raise ValueError(
            f"cannot read date {value!r}; expected an ISO 8601 date such as 2014-02-27 or a "
            "partial date such as 2014-02."
        ) from None
