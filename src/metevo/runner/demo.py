"""``metevo demo``: the whole chain on the bundled synthetic cohort.

:func:`run_demo` generates the synthetic cohort, analyses it (every per-patient stage), then runs
the cohort-level steps of :func:`post_analysis`: evolution patterns with their survival and
response association, SDTM export and every figure the tables allow
(:func:`metevo.report.draw_figures`), and writes the HTML report (:func:`metevo.report.write_report`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

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

    Returns the analysis folder (tables ``*.parquet`` and ``figures/``); the HTML report is
    written to ``out/report`` (``index.html``).
    """
    from metevo.cohort import open_cohort
    from metevo.datasets import make_synthetic_cohort
    from metevo.runner._run import analyze

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
        echo(result.summary())
        if len(result.failures):  # the demo goes on with the patients that reached the tables
            for row in result.failures.itertuples():
                echo(f"  {row.patient_id} [{row.stage}] {row.error_type}: {row.error}")
        missing = [t for t in ("patient_trajectories", "recist", "patients") if t not in result.tables]
        if missing:
            raise RuntimeError(
                f"the analysis wrote no {', '.join(missing)} table (every patient failed before "
                "those stages; see the failures above): the cohort-level steps cannot run."
            )
        written = post_analysis(analysis, clinical=synth.clinical, events=synth.events)
        from metevo.report import write_report

        index = write_report(analysis, out / "report", manifest=manifest, events=synth.events)
    for w in caught:
        echo(f"warning: {w.message}")
    tables = sorted({*result.tables, *(p.stem for p in analysis.glob("*.parquet"))})
    echo(f"tables in {analysis}: {', '.join(t + '.parquet' for t in tables)}")
    echo(f"{len(written)} figure files (PNG and PDF) in {analysis / 'figures'}")
    echo(f"HTML report: open {index}")
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

    from metevo.report import draw_figures
    from metevo.response import export_sdtm
    from metevo.runner import run_patterns

    analysis = Path(analysis)
    figures = analysis / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    run_patterns(analysis, clinical=clinical)  # pattern figures from the fitted model
    export_sdtm(analysis)  # tu.csv, tr.csv, rs.csv in analysis/sdtm (metevo as the evaluator)
    # every figure the tables allow (cohort and per patient), as `metevo figures` draws them
    draw_figures(analysis, figures, events=events)
    return sorted(p for p in figures.rglob("*") if p.is_file())
