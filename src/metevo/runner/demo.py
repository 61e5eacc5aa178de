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

__all__ = ["MIN_PATTERN_PATIENTS", "demo_patterns", "post_analysis", "run_demo"]

#: fewest patients on which the demo fits evolution patterns and their survival: below it the
#: patterns step of an analysis folder is skipped with one line (8 CT patients cannot support
#: a pattern model, let alone a Cox model with >= 10 events per parameter)
MIN_PATTERN_PATIENTS = 150
#: size of the image-free cohort on which the demo shows patterns and survival
DEMO_PATTERN_PATIENTS = 200


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
    pattern_patients: int = DEMO_PATTERN_PATIENTS,
    echo: Callable[[str], object] = print,
) -> Path:
    """Generate the synthetic cohort into ``out/cohort`` and analyse it into ``out/analysis``.

    With ``segment=True`` the whole chain runs from the CT scans alone: ``model`` (default the
    bundled demo model; a model card path for your own) segments liver and lesions of every scan
    into ``out/segmentation``, and the analysis reads those predicted masks instead of the
    synthetic reference masks.

    The CT cohort is too small for evolution patterns and survival, so those run on
    ``pattern_patients`` (default 200) image-free patients from the synthetic kinetics
    generator (:func:`demo_patterns`, into ``out/patterns``; every figure is labelled as
    such); ``pattern_patients=0`` skips them.

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
        written = post_analysis(analysis, clinical=synth.clinical, events=synth.events, echo=echo)
        from metevo.report import write_report

        index = write_report(analysis, out / "report", manifest=manifest, events=synth.events)
        if pattern_patients:
            demo_patterns(out / "patterns", n_patients=pattern_patients, seed=seed, echo=echo)
    for message in dict.fromkeys(str(w.message) for w in caught):
        echo(f"warning: {message}")
    tables = sorted({*result.tables, *(p.stem for p in analysis.glob("*.parquet"))})
    echo(f"tables in {analysis}: {', '.join(t + '.parquet' for t in tables)}")
    echo(f"{len(written)} figure files (PNG and PDF) in {analysis / 'figures'}")
    echo(f"HTML report: open {index}")
    return analysis


def demo_patterns(
    out: str | Path,
    *,
    n_patients: int = DEMO_PATTERN_PATIENTS,
    seed: int = 0,
    echo: Callable[[str], object] = print,
    **options: object,
) -> dict:
    """Evolution patterns and survival on an image-free synthetic cohort, with figures.

    Writes ``n_patients`` patients of :func:`metevo.datasets.make_synthetic_trajectories`
    (the kinetics generator of the CT cohort, without images) into ``out``
    (``patient_trajectories.parquet``, ``trajectories.parquet``, ``clinical.csv``), then runs
    :func:`metevo.run_patterns` there: tables in ``out``, figures in ``out/figures``, each
    headed "synthetic image-free cohort" (``options`` go to :func:`metevo.run_patterns`, e.g.
    ``method="kmeans"``). Returns the tables.
    """
    from metevo.datasets import make_synthetic_trajectories
    from metevo.runner import run_patterns

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = make_synthetic_trajectories(n_patients, seed=seed)
    data["patient_trajectories"].to_parquet(out / "patient_trajectories.parquet", index=False)
    data["lesion_trajectories"].to_parquet(out / "trajectories.parquet", index=False)
    data["clinical"].to_csv(out / "clinical.csv", index=False)
    label = (
        f"Synthetic image-free cohort: {n_patients} patients from metevo's kinetics generator "
        "(no CT)"
    )
    echo(f"patterns and survival on {n_patients} image-free synthetic patients -> {out}")
    tables = run_patterns(out, clinical=out / "clinical.csv", label=label, echo=echo, **options)
    return tables


def post_analysis(
    analysis: str | Path,
    *,
    clinical: str | Path | None = None,
    events: str | Path | None = None,
    min_pattern_patients: int = MIN_PATTERN_PATIENTS,
    echo: Callable[[str], object] | None = None,
) -> list[Path]:
    """Cohort-level steps over an analysis folder: patterns, survival, SDTM export, figures.

    The patterns step (with survival) runs only with at least ``min_pattern_patients``
    patients in ``patient_trajectories``; otherwise it is skipped with one line.

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
    import pandas as pd

    n = pd.read_parquet(analysis / "patient_trajectories.parquet", columns=["patient_id"])
    n = n["patient_id"].nunique()
    if n >= min_pattern_patients:
        run_patterns(analysis, clinical=clinical)  # pattern figures from the fitted model
    elif echo is not None:
        echo(
            f"patterns and survival skipped on these {n} CT patients (fewer than "
            f"{min_pattern_patients}: too few for a pattern model or a Cox model)"
        )
    export_sdtm(analysis)  # tu.csv, tr.csv, rs.csv in analysis/sdtm (metevo as the evaluator)
    # every figure the tables allow (cohort and per patient), as `metevo figures` draws them
    draw_figures(analysis, figures, events=events)
    return sorted(p for p in figures.rglob("*") if p.is_file())
