"""Human-readable axis labels for metevo's column names (units kept, names spelled out)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

__all__ = ["column_label", "fit_label"]

_COLUMNS = {
    "volume_ml": "volume (ml)",
    "axial_ld_mm": "axial longest diameter (mm)",
    "axial_sa_mm": "axial short axis (mm)",
    "mean_hu": "mean density (HU)",
    "std_hu": "density SD (HU)",
    "n_lesions": "number of lesions",
    "n_new_lesions": "number of new lesions",
    "n_disappeared_lesions": "number of disappeared lesions",
    "total_volume_ml": "total lesion volume (ml)",
    "sum_ld_mm": "sum of longest diameters (mm)",
    "target_sum_mm": "RECIST target sum (mm)",
    "liver_volume_ml": "liver volume (ml)",
    "tumour_burden_fraction": "tumour burden (fraction of liver)",
    "mean_hu_weighted": "volume-weighted mean density (HU)",
    "depth_mm": "depth below the liver surface (mm)",
    "pct_change_baseline": "change of target sum from baseline (%)",
    "baseline_target_sum_mm": "baseline RECIST target sum (mm)",
    "age": "age (years)",
    "ecog": "ECOG performance status",
}
_PREFIXES = {"main_": "largest lesion: ", "vw_": "volume-weighted ", "delta_": "change of "}
_SUFFIXES = {
    "_rel_baseline": ", change from baseline (fraction)",
    "_rel_nadir": ", change from nadir (fraction)",
}
_FAMILIES = {
    "glcm": "GLCM",
    "glrlm": "GLRLM",
    "glszm": "GLSZM",
    "gldzm": "GLDZM",
    "ngtdm": "NGTDM",
    "ngldm": "NGLDM",
}


@lru_cache(maxsize=1)
def _features() -> dict[str, str]:
    from metevo.radiomics import feature_catalog

    out = {}
    for row in feature_catalog().itertuples():
        text = str(row.description).split(" (")[0].split(":")[0].rstrip(".")
        family = _FAMILIES.get(row.family)
        if family:
            text += f" ({family})"
        unit = str(row.unit)
        if unit not in ("1", "", "nan"):
            text += f" ({unit.replace('HU2', 'HU²')})"
        out[row.feature] = text[0].lower() + text[1:] if not text[:2].isupper() else text
    return out


def column_label(name: str) -> str:
    """A readable label for a table column or radiomic feature name.

    Known table columns get their spelled-out name with unit (``volume_ml`` -> ``volume (ml)``);
    radiomic features the IBSI description (``cm_joint_entr_3d_avg`` -> ``joint entropy
    (GLCM)``); prefixes ``main_`` / ``vw_`` and suffixes ``_rel_baseline`` / ``_rel_nadir`` are
    spelled out. Unknown names come back with underscores replaced by spaces.

    Examples
    --------
    >>> column_label("total_volume_rel_baseline")
    'total lesion volume, change from baseline (fraction)'
    """
    for suffix, text in _SUFFIXES.items():
        if name.endswith(suffix):
            base = name[: -len(suffix)]
            stem = next((c for c in (base, base + "_ml", base + "_mm") if c in _COLUMNS), base)
            return column_label(stem).removesuffix(" (ml)").removesuffix(" (mm)") + text
    if name in _COLUMNS:
        return _COLUMNS[name]
    for prefix, text in _PREFIXES.items():
        if name.startswith(prefix):
            return text + column_label(name[len(prefix) :])
    features = _features()
    if name in features:
        return features[name]
    return name.replace("_", " ")


def fit_label(model: Any = None, *, landmark_days: float | None = None) -> str:
    """Which fit a figure shows: ``"full follow-up"`` or ``"landmark at day L"``."""
    if model is not None:
        landmark_days = getattr(model, "landmark_days", None)
    if landmark_days is None or not np.isfinite(float(landmark_days)):
        return "full follow-up"
    return f"landmark at day {float(landmark_days):g}"
