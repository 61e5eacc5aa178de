"""Descriptive names of evolution patterns from their centroid curves (RECIST 1.1 thresholds)."""

from __future__ import annotations

import numpy as np

__all__ = ["MIN_SUPPORT", "MIXED_SPREAD", "name_pattern", "name_relapses"]

# Thresholds for pattern names, on the ratio to baseline (RECIST 1.1 section 4.3.1: partial
# response = 30 % decrease, progression = 20 % increase over the nadir).
RESPONSE_RATIO = 0.7
DEEP_RESPONSE_RATIO = 0.5
PROGRESSION_RATIO = 1.2
MIN_SUPPORT = 0.5
#: lesion log-ratio spread of a dissociated response: one lesion at the progression threshold
#: (+20 %) while another has shrunk by half (deep response threshold)
MIXED_SPREAD = float(np.log(PROGRESSION_RATIO / DEEP_RESPONSE_RATIO))


def name_pattern(center: np.ndarray, support: np.ndarray | None = None) -> str:
    """Descriptive name of a pattern from its mean log-ratio curve on the grid.

    Only grid points where at least half of the members are still followed count
    (``support >= 0.5``). Thresholds follow RECIST 1.1 (section 4.3.1): response is a nadir at
    or below 70 % of baseline (``"deep response"`` at or below 50 %), relapse/progression a
    rise of 20 % over the nadir. A non-responding pattern whose members mostly left follow-up
    before the window ended with a burden above baseline is named ``"progression"`` as well
    (imaging follow-up stops at progression or death).

    Examples
    --------
    >>> import numpy as np
    >>> name_pattern(np.log([1.0, 0.6, 0.4, 0.35]))
    'deep response'
    >>> name_pattern(np.log([1.0, 0.6, 0.8, 1.1]))
    'response then relapse'
    >>> name_pattern(np.log([1.0, 1.3, 1.7, 2.2]))
    'progression'
    >>> name_pattern(np.log([1.0, 0.95, 1.0, 1.05]))
    'stable'
    """
    center = np.asarray(center, dtype=float)
    left_early = False
    if support is not None:
        ok = np.asarray(support) >= MIN_SUPPORT
        ok[0] = True
        left_early = not ok[-1]
        center = center[: int(np.flatnonzero(ok)[-1]) + 1]
    nadir = float(np.min(center))
    final = float(center[-1])
    rise = final - nadir
    # relapse: 20 % over the nadir *and* back above the response threshold, so that a deep
    # response with a small late regrowth keeps its name
    relapse = rise >= np.log(PROGRESSION_RATIO) and final > np.log(RESPONSE_RATIO)
    if nadir <= np.log(RESPONSE_RATIO):
        if relapse:
            return "response then relapse"
        return "deep response" if nadir <= np.log(DEEP_RESPONSE_RATIO) else "response"
    if final >= np.log(PROGRESSION_RATIO) or rise >= np.log(PROGRESSION_RATIO):
        return "progression"
    if left_early and final > 0:
        # most members left imaging follow-up before the window ended while growing: follow-up
        # stops at progression or death, so this is not stable disease
        return "progression"
    return "stable"


def name_relapses(names: list[str], final_rises: list[np.ndarray]) -> list[str]:
    """Rename a responding pattern "response then relapse" when its members relapsed.

    ``final_rises[i]`` holds, for each member of pattern ``i``, the log-ratio of the burden at
    its last visit over its own nadir. When the median member left follow-up at a rise of
    >= 20 % over the nadir (RECIST 1.1 section 4.3.1), the pattern relapsed, even though the
    masked centroid cannot show it once the relapsing members have left.
    """
    out = list(names)
    for i, rises in enumerate(final_rises):
        rises = np.asarray(rises, dtype=float)
        if (
            out[i] in ("deep response", "response")
            and rises.size
            and np.median(rises) >= np.log(PROGRESSION_RATIO)
        ):
            out[i] = "response then relapse"
    return out


def _unique_names(names: list[str]) -> list[str]:
    out, seen = [], {}
    counts = {n: names.count(n) for n in names}
    for n in names:
        if counts[n] == 1:
            out.append(n)
        else:
            seen[n] = seen.get(n, 0) + 1
            out.append(f"{n} {seen[n]}")
    return out
