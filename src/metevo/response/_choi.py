"""Choi response criteria (size and density), per assessment against baseline.

Choi et al., "Correlation of computed tomography and positron emission tomography in patients
with metastatic gastrointestinal stromal tumor treated at a single institution with imatinib
mesylate: proposal of new computed tomography response criteria", J Clin Oncol 2007;25:1753-1759
(Table 2), applied to colorectal liver metastases e.g. by Chun et al., JAMA 2009 and Shindoh et
al., J Clin Oncol 2012:

* CR: disappearance of all lesions, no new lesion.
* PR: size (sum of longest diameters of the targets) decreased by >= 10 % **or** density
  (mean attenuation, HU) decreased by >= 15 %; no new lesion.
* PD: size increased by >= 10 % without meeting the density criterion of PR, or a new lesion.
* SD: none of the above.

Density is the volume-weighted mean HU of the target lesions and is compared only when both
assessments were acquired in the same contrast phase; otherwise the density criteria cannot be
assessed and the response is NE unless CR, a new lesion (PD) or the size criterion of PR decides.
"""

from __future__ import annotations

import math

__all__ = ["choi_response"]


def choi_response(
    size_baseline_mm: float,
    size_mm: float,
    density_baseline_hu: float | None = None,
    density_hu: float | None = None,
    *,
    new_lesions: bool = False,
    same_phase: bool = True,
    size_pct: float = 10.0,
    density_pct: float = 15.0,
) -> str | None:
    """Choi response of one assessment against baseline.

    Parameters
    ----------
    size_baseline_mm, size_mm : float
        Sum of target longest diameters at baseline and now (mm); NaN when not evaluable.
    density_baseline_hu, density_hu : float, optional
        Volume-weighted mean attenuation of the targets (HU).
    new_lesions : bool
        An unequivocal new lesion was found.
    same_phase : bool
        Both scans were acquired in the same contrast phase (density is compared only then).
    size_pct, density_pct : float
        Thresholds (10 % and 15 %).

    Returns
    -------
    {"CR", "PR", "SD", "PD", "NE"} or None
        None when there is no baseline size (no target lesion).

    Examples
    --------
    >>> choi_response(50.0, 47.0, 80.0, 60.0)   # size -6 %, density -25 % -> PR
    'PR'
    >>> choi_response(50.0, 56.0, 80.0, 75.0)   # size +12 %, density -6 % -> PD
    'PD'
    """
    if size_baseline_mm is None or not math.isfinite(size_baseline_mm) or size_baseline_mm <= 0:
        return None
    if new_lesions:
        return "PD"
    if size_mm is None or not math.isfinite(size_mm):
        return "NE"
    if size_mm == 0:
        return "CR"
    size_change = 100.0 * (size_mm - size_baseline_mm) / size_baseline_mm
    density_ok = (
        same_phase
        and density_baseline_hu is not None
        and density_hu is not None
        and math.isfinite(density_baseline_hu)
        and math.isfinite(density_hu)
        and density_baseline_hu > 0
    )
    density_pr = False
    if density_ok:
        density_change = 100.0 * (density_hu - density_baseline_hu) / density_baseline_hu
        density_pr = density_change <= -density_pct + 1e-9
    if size_change <= -size_pct + 1e-9 or density_pr:
        return "PR"
    if not density_ok:
        return "NE"
    if size_change >= size_pct - 1e-9:
        return "PD"
    return "SD"
