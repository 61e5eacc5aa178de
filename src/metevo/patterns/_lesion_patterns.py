"""Lesion-level evolution patterns and the within-patient mix (dissociated response)."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd

from metevo.patterns._patterns import EvolutionPatterns

__all__ = ["PROGRESSING", "RESPONDING", "lesion_pattern_mix", "lesion_patterns"]

RESPONDING = ("deep response", "response")
PROGRESSING = ("progression", "response then relapse")


def lesion_patterns(
    lesion_trajectories: pd.DataFrame,
    n_patterns: int | Literal["auto"] = 3,
    *,
    value_column: str = "axial_ld_mm",
    **options: Any,
) -> tuple[pd.DataFrame, EvolutionPatterns]:
    """Cluster lesion tracks (each lesion's diameter over time) into lesion-level patterns.

    Each track is a trajectory of its own, from its first visit (the baseline, or the visit a
    new lesion appears); the same representation and options as :class:`EvolutionPatterns`.

    Returns
    -------
    table : DataFrame
        One row per track with a trajectory: ``patient_id``, ``track_id``, ``pattern``,
        ``pattern_id``, ``confidence``.
    model : EvolutionPatterns
    """
    track = "track_id" if "track_id" in lesion_trajectories.columns else "lesion_id"
    lt = lesion_trajectories.copy()
    lt["_patient"] = lt["patient_id"].astype(str)
    lt["patient_id"] = lt["_patient"] + "::" + lt[track].astype(str)
    options.setdefault("n_bootstrap", 0)
    model = EvolutionPatterns(n_patterns, value_column=value_column, **options).fit(lt)
    table = model.patterns_.dropna(subset=["pattern"])
    parts = table["patient_id"].str.split("::", n=1, expand=True)
    out = pd.DataFrame(
        {
            "patient_id": parts[0].to_numpy(),
            track: parts[1].to_numpy(),
            "pattern": table["pattern"].to_numpy(),
            "pattern_id": table["pattern_id"].to_numpy(),
            "confidence": table["confidence"].to_numpy(),
        }
    )
    return out.reset_index(drop=True), model


def lesion_pattern_mix(
    lesion_trajectories: pd.DataFrame, n_patterns: int = 3, **options: Any
) -> pd.DataFrame:
    """Within-patient mix of lesion-level patterns (dissociated / mixed response).

    Returns
    -------
    DataFrame
        One row per patient: ``patient_id``, ``n_lesions`` (tracks with a trajectory), one
        column per lesion pattern with the number of the patient's lesions in it,
        ``heterogeneity`` (1 - the fraction of lesions in the patient's most common pattern;
        0 when all lesions behave alike) and ``dissociated_response`` (at least one lesion in a
        responding pattern and one in a progressing pattern).
    """
    options.setdefault("random_state", 0)
    table, model = lesion_patterns(lesion_trajectories, n_patterns, **options)
    counts = pd.crosstab(table["patient_id"], table["pattern"]).reindex(
        columns=model.names_, fill_value=0
    )
    n = counts.sum(axis=1)
    mix = counts.reset_index()
    mix.columns.name = None
    mix.insert(1, "n_lesions", n.to_numpy())
    mix["heterogeneity"] = (1.0 - counts.max(axis=1) / n.replace(0, np.nan)).to_numpy()
    resp = [c for c in counts.columns if c.rstrip(" 0123456789") in RESPONDING]
    prog = [c for c in counts.columns if c.rstrip(" 0123456789") in PROGRESSING]
    mix["dissociated_response"] = (
        (counts[resp].sum(axis=1) > 0) & (counts[prog].sum(axis=1) > 0)
    ).to_numpy()
    return mix
