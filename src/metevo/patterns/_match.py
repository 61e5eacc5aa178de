"""What a pattern's course says, checked against its members, and matching two fits' patterns.

A pattern is described by its mean course (log-ratio of the burden to baseline on a day grid):
nadir depth, time to nadir, regrowth over the nadir and final ratio (:func:`course_features`).
Its name (:func:`metevo.patterns.name_pattern`) is then checked against the members' own
courses (:func:`check_names`): a pattern named as a response cannot hold a confidently
assigned patient whose own burden never fell by 30 % (RECIST 1.1 partial response), or its
name says "mixed". :func:`match_patterns` pairs the patterns of two fits (full follow-up and
landmark, or two folds) by their mean courses over the days both cover, so that the same
course carries the same name in every table and figure (:func:`consistent_names`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from metevo.patterns._names import RESPONSE_RATIO, _unique_names

__all__ = ["check_names", "consistent_names", "course_features", "match_patterns"]

#: confidence above which an assignment counts in the patient-level name check
CHECK_CONFIDENCE = 0.5


def course_features(days: np.ndarray, log_ratio: np.ndarray) -> dict[str, float]:
    """Nadir depth, time to nadir, regrowth over the nadir and final ratio of one mean course.

    Parameters
    ----------
    days : array, shape (n,)
        Days since treatment start (increasing, starting at the baseline).
    log_ratio : array, shape (n,)
        Log of the burden's ratio to baseline at ``days`` (finite values only count).

    Returns
    -------
    dict with ``nadir_ratio`` (lowest ratio to baseline), ``time_to_nadir_days``,
    ``regrowth_over_nadir`` (final burden over the nadir, ratio) and ``final_ratio``.

    Examples
    --------
    >>> import numpy as np
    >>> f = course_features(np.array([0, 56, 112, 168]), np.log([1.0, 0.6, 0.5, 0.75]))
    >>> round(f["nadir_ratio"], 2), f["time_to_nadir_days"], round(f["regrowth_over_nadir"], 2)
    (0.5, 112.0, 1.5)
    """
    days = np.asarray(days, dtype=float)
    y = np.asarray(log_ratio, dtype=float)
    ok = np.isfinite(y)
    days, y = days[ok], y[ok]
    if y.size == 0:
        nan = float("nan")
        return dict.fromkeys(
            ("nadir_ratio", "time_to_nadir_days", "regrowth_over_nadir", "final_ratio"), nan
        )
    i = int(np.argmin(y))
    return {
        "nadir_ratio": float(np.exp(y[i])),
        "time_to_nadir_days": float(days[i]),
        "regrowth_over_nadir": float(np.exp(y[-1] - y[i])),
        "final_ratio": float(np.exp(y[-1])),
    }


def check_names(
    names: list[str],
    labels: np.ndarray,
    confidence: np.ndarray,
    own_nadir_ratio: np.ndarray,
) -> tuple[list[str], np.ndarray]:
    """Rename a "response" pattern "mixed ..." when a member contradicts it.

    A member contradicts a pattern whose name contains "response" when it is assigned with
    confidence > 0.5 and its own burden never fell to 70 % of baseline or below
    (``own_nadir_ratio > 0.7``, RECIST 1.1 section 4.3.1 partial response).

    Returns
    -------
    (names, n_contradicting): the checked names (made unique) and, per pattern, the number of
    contradicting members.

    Examples
    --------
    >>> import numpy as np
    >>> check_names(["response then relapse", "progression"], np.array([0, 0, 1]),
    ...             np.array([0.95, 0.9, 0.8]), np.array([0.4, 1.14, 1.5]))[0]
    ['mixed response then relapse', 'progression']
    """
    labels = np.asarray(labels)
    members = np.asarray(confidence, dtype=float) > CHECK_CONFIDENCE
    not_responding = np.asarray(own_nadir_ratio, dtype=float) > RESPONSE_RATIO
    out = list(names)
    counts = np.zeros(len(names), dtype=int)
    for j, name in enumerate(names):
        if "response" not in name:
            continue
        counts[j] = int(np.sum((labels == j) & members & not_responding))
        if counts[j] and not name.startswith("mixed"):
            out[j] = f"mixed {name}"
    return _unique_names(out), counts


def _course_on(model: Any, days: np.ndarray) -> np.ndarray:
    grid = np.asarray(model.grid_days_, dtype=float)
    return np.vstack([np.interp(days, grid, c) for c in np.asarray(model.trajectory_centers_)])


def match_patterns(reference: Any, other: Any, *, step_days: float = 7.0) -> pd.DataFrame:
    """Pair each pattern of ``other`` with the pattern of ``reference`` of the closest course.

    Both are fitted pattern models (:class:`~metevo.patterns.EvolutionPatterns` or
    :class:`~metevo.patterns.LatentClassTrajectories`: ``grid_days_``,
    ``trajectory_centers_``, ``names_``). Their mean log-ratio courses are compared on the days
    both cover (0 to the shorter horizon, every ``step_days``), by mean squared difference, and
    paired one to one by the Hungarian algorithm; with fewer reference patterns, the unpaired
    patterns of ``other`` get the closest reference pattern anyway (``one_to_one`` False).

    Returns
    -------
    DataFrame, one row per pattern of ``other``: ``pattern_id``, ``pattern`` (other's own
    name), ``reference_pattern_id``, ``reference_pattern``, ``distance`` (root mean squared
    difference of the log-ratio courses), ``one_to_one``, ``compared_until_days``.
    """
    from scipy.optimize import linear_sum_assignment

    end = min(float(reference.grid_days_[-1]), float(other.grid_days_[-1]))
    days = np.arange(0.0, end + 1e-9, float(step_days))
    ref, oth = _course_on(reference, days), _course_on(other, days)
    cost = ((oth[:, None, :] - ref[None]) ** 2).mean(axis=2)
    rows, cols = linear_sum_assignment(cost)
    pair = dict(zip(rows.tolist(), cols.tolist(), strict=True))
    ref_ids = np.array([pair.get(j, int(np.argmin(cost[j]))) for j in range(len(oth))])
    return pd.DataFrame(
        {
            "pattern_id": np.arange(len(oth)),
            "pattern": list(other.names_),
            "reference_pattern_id": ref_ids,
            "reference_pattern": [reference.names_[i] for i in ref_ids],
            "distance": np.sqrt(cost[np.arange(len(oth)), ref_ids]),
            "one_to_one": [j in pair for j in range(len(oth))],
            "compared_until_days": end,
        }
    )


def consistent_names(reference: Any, other: Any) -> list[str]:
    """Names for ``other``'s patterns taken from the matched patterns of ``reference``.

    A pattern paired one to one keeps the reference name (so full-follow-up and landmark
    figures say the same thing for the same course); an extra pattern of ``other`` keeps its
    own name. Names are made unique.
    """
    table = match_patterns(reference, other)
    names = [
        ref if one else own
        for own, ref, one in zip(
            table["pattern"], table["reference_pattern"], table["one_to_one"], strict=True
        )
    ]
    return _unique_names(names)
