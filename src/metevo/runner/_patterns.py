"""``run_patterns``: the cohort-level patterns step with its figures (a face over
:func:`metevo.patterns.pattern_analysis`, which computes and writes the tables).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from metevo.patterns import pattern_analysis

__all__ = ["run_patterns"]


def run_patterns(
    analysis_dir: str | Path,
    clinical: Any = None,
    *,
    figures: bool = True,
    label: str = "",
    echo: Callable[[str], object] | None = None,
    **options: Any,
) -> dict[str, pd.DataFrame]:
    """Fit evolution patterns on an analysis folder and relate them to survival and response.

    Runs :func:`metevo.patterns.pattern_analysis` (same parameters: ``k``, ``landmark_days``,
    ``method``, ``endpoint``, ``representation``, ``n_bootstrap``, ``random_state``,
    ``time_varying``), then, with ``figures=True``, draws the figures (PNG and PDF) into
    ``analysis_dir/figures``, each titled with the fit it shows and headed by ``label`` (e.g.
    which cohort) when given.

    Returns
    -------
    dict of DataFrame
        ``patterns``, ``pattern_selection``, ``survival_km``, ``survival_cox``,
        ``response_association`` (also written as Parquet into ``analysis_dir``).
    """
    run = pattern_analysis(analysis_dir, clinical, echo=echo, **options)
    if figures:
        from metevo.plotting.patterns import write_pattern_figures

        folder = Path(analysis_dir) / "figures"
        paths = write_pattern_figures(
            folder, run.model, run.tables, run.survival_model, run.lesions, label=label
        )
        (echo or (lambda _msg: None))(f"figures: {len(paths)} files in {folder}")
    return run.tables
