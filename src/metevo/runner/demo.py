"""``metevo demo``: the whole chain on the bundled synthetic cohort.

:func:`run_demo` generates the synthetic cohort, analyses it (every per-patient stage), then runs
the cohort-level steps of :func:`post_analysis`: evolution patterns with their survival and
response association, and the figures (response waterfall/spider/swimmer, a trajectory panel).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import pandas as pd

__all__ = ["post_analysis", "run_demo"]


def run_demo(
    out: str | Path,
    *,
    n_patients: int = 8,
    seed: int = 0,
    size: str = "tiny",
    workers: int | None = None,
    progress: bool = True,
    segment: bool = False,
    model: str = "demo",
    echo: Callable[[str], object] = print,
) -> Path:
    """Generate the synthetic cohort into ``out/cohort`` and analyse it into ``out/analysis``.

    With ``segment=True`` the whole chain runs from the CT scans alone: ``model`` (default the
    bundled demo model; a model card path for your own) segments liver and lesions of every scan
    into ``out/segmentation``, and the analysis reads those predicted masks instead of the
    synthetic reference masks.

    Returns the analysis folder (tables ``*.parquet`` and ``figures/``).
    """
    from metevo.cohort import open_cohort
    from metevo.datasets import make_synthetic_cohort
    from metevo.runner.pipeline import analyze

    out = Path(out)
    echo(f"generating a synthetic cohort of {n_patients} patients (seed {seed}, {size} grid)")
    synth = make_synthetic_cohort(out / "cohort", n_patients=n_patients, seed=seed, size=size)
    manifest = synth.manifest
    if segment:
        from metevo.segmentation import segment as run_segmentation

        echo(f"segmenting every CT with the {model!r} model (once; reused on a rerun)")
        seg_dir = out / "segmentation"
        run_segmentation(synth.manifest, model, seg_dir, progress=progress)
        manifest = seg_dir / "manifest.csv"
    cohort = open_cohort(manifest, clinical=synth.clinical, events=synth.events)
    analysis = out / "analysis"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = analyze(cohort, analysis, workers=workers, progress=progress)
        if len(result.failures):
            echo(f"{len(result.failures)} patient(s) failed:")
            for row in result.failures.itertuples():
                echo(f"  {row.patient_id} [{row.stage}] {row.error_type}: {row.error}")
        missing = [t for t in ("patient_trajectories", "recist", "patients") if t not in result.tables]
        if missing:
            raise RuntimeError(
                f"the analysis wrote no {', '.join(missing)} table (every patient failed before "
                "those stages; see the failures above): the cohort-level steps cannot run."
            )
        written = post_analysis(analysis, clinical=synth.clinical, events=synth.events)
    for w in caught:
        echo(f"warning: {w.message}")
    tables = sorted({*result.tables, *(p.stem for p in analysis.glob("*.parquet"))})
    echo(f"tables in {analysis}: {', '.join(t + '.parquet' for t in tables)}")
    echo(f"figures in {analysis / 'figures'}: {', '.join(p.name for p in written)}")
    return analysis


def post_analysis(
    analysis: str | Path,
    *,
    clinical: str | Path | None = None,
    events: str | Path | None = None,
) -> list[Path]:
    """Cohort-level steps over an analysis folder: patterns, survival, SDTM export, figures.

    Returns the figure files written under ``analysis/figures``.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from metevo.plotting.response import spider, swimmer, waterfall
    from metevo.plotting.trajectories import plot_trajectory_panel

    analysis = Path(analysis)
    figures = analysis / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    from metevo.runner import run_patterns

    run_patterns(analysis, clinical=clinical)
    written += sorted(figures.glob("*"))

    def save(fig, name: str) -> None:
        for suffix in (".png", ".pdf"):
            path = figures / f"{name}{suffix}"
            fig.savefig(path, dpi=150, bbox_inches="tight")
            written.append(path)
        plt.close(fig)

    from metevo.response import export_sdtm

    export_sdtm(analysis)  # tu.csv, tr.csv, rs.csv in analysis/sdtm (metevo as the evaluator)
    recist = pd.read_parquet(analysis / "recist.parquet")
    patients = pd.read_parquet(analysis / "patients.parquet")
    ev = pd.read_csv(events) if events is not None else None
    for name, draw in (("waterfall", waterfall), ("spider", spider)):
        fig, ax = plt.subplots(figsize=(8, 4.5))
        draw(recist, patients, ax=ax)
        save(fig, name)
    fig, ax = plt.subplots(figsize=(8, 5))
    swimmer(recist, patients, ev, ax=ax)
    save(fig, "swimmer")
    lesion_traj = pd.read_parquet(analysis / "trajectories.parquet")
    patient_traj = pd.read_parquet(analysis / "patient_trajectories.parquet")
    if len(lesion_traj):
        axes = plot_trajectory_panel(lesion_traj, patient_traj)
        save(axes[0].figure, "trajectory_panel")
    return sorted(set(written))
