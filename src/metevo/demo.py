"""``metevo demo``: the whole chain on the bundled synthetic cohort."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

__all__ = ["run_demo"]


def run_demo(
    out: str | Path,
    *,
    n_patients: int = 8,
    seed: int = 0,
    size: str = "tiny",
    workers: int | None = None,
    progress: bool = True,
    echo: Callable[[str], object] = print,
) -> Path:
    """Generate the synthetic cohort into ``out/cohort`` and analyse it into ``out/analysis``.

    Returns the analysis folder.
    """
    from metevo.cohort import open_cohort
    from metevo.datasets import make_synthetic_cohort
    from metevo.pipeline import analyze

    out = Path(out)
    echo(f"generating a synthetic cohort of {n_patients} patients (seed {seed}, {size} grid)")
    synth = make_synthetic_cohort(out / "cohort", n_patients=n_patients, seed=seed, size=size)
    cohort = open_cohort(synth.manifest, clinical=synth.clinical, events=synth.events)
    analysis = out / "analysis"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = analyze(cohort, analysis, workers=workers, progress=progress)
    for w in caught:
        echo(f"warning: {w.message}")
    echo(
        f"tables in {analysis}: {', '.join(t + '.parquet' for t in result.tables)}, failures.parquet"
        f" ({len(result.failures)} failure(s))"
    )
    return analysis
