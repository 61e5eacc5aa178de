"""The ``metevo`` command line (typer). Thin: every command imports what it needs lazily.

Commands: ``demo``, ``analyze``, ``validate`` (and the ones later modules add).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(
    name="metevo",
    help="Longitudinal CT analysis of colorectal liver metastases.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version_callback(value: bool) -> None:
    if value:
        from metevo._version import __version__

        typer.echo(f"metevo {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version."
    ),
) -> None:
    """metevo: lesion graph, RECIST, radiomics, trajectories and evolution patterns."""


_MASK_HELP = "binary (default), instances or labels"


def _cohort_options(
    lesion_mask_kind: str,
    lesion_label: Optional[int],
    liver_label: Optional[int],
    phase: Optional[str],
    resample_masks: bool,
    baseline_window_days: int,
) -> dict:
    return {
        "lesion_mask_kind": lesion_mask_kind,
        "lesion_label": lesion_label,
        "liver_label": liver_label,
        "phase": phase,
        "resample_masks": resample_masks,
        "baseline_window_days": baseline_window_days,
    }


def _open(manifest: Path, clinical: Optional[Path], events: Optional[Path], options: dict):
    from metevo.cohort import open_cohort
    from metevo.exceptions import CohortError

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            cohort = open_cohort(manifest, clinical=clinical, events=events, **options)
        except (CohortError, ValueError, TypeError) as exc:
            typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
            raise typer.Exit(2) from None
    for w in caught:
        typer.secho(f"warning: {w.message}", fg=typer.colors.YELLOW, err=True)
    return cohort


@app.command()
def analyze(
    manifest: Path = typer.Argument(..., help="Cohort manifest (CSV or Parquet)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder for the tables."),
    clinical: Optional[Path] = typer.Option(None, help="Clinical table (CSV)."),
    events: Optional[Path] = typer.Option(None, help="Events table (CSV)."),
    workers: Optional[int] = typer.Option(None, help="Local worker processes (default: CPUs)."),
    dask: Optional[str] = typer.Option(None, "--dask", help="Dask scheduler address (tcp://host:8786)."),
    resample_masks: bool = typer.Option(
        False, "--resample-masks", help="Resample masks onto the image grid instead of failing."
    ),
    lesion_mask_kind: str = typer.Option("binary", help=_MASK_HELP),
    lesion_label: Optional[int] = typer.Option(None, help="Lesion class in a multi-class mask."),
    liver_label: Optional[int] = typer.Option(None, help="Liver class in a multi-class mask."),
    phase: Optional[str] = typer.Option(None, help="Phase analysed on multi-phase dates."),
    baseline_window_days: int = typer.Option(28, help="Baseline window before treatment start."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Analyse a cohort: write one Parquet table per kind into OUT."""
    from metevo.runner import analyze as run

    options = _cohort_options(
        lesion_mask_kind, lesion_label, liver_label, phase, resample_masks, baseline_window_days
    )
    cohort = _open(manifest, clinical, events, options)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = run(cohort, out, workers=workers, dask_address=dask, progress=progress)
    for w in caught:
        typer.secho(f"warning: {w.message}", fg=typer.colors.YELLOW, err=True)
    _summarise(result)


def _summarise(result) -> None:
    typer.echo(
        f"analysed {result.n_patients} patient(s); tables in {result.out_dir}: "
        f"{', '.join(t + '.parquet' for t in result.tables)}, failures.parquet"
    )
    if len(result.failures):
        typer.secho(f"{len(result.failures)} failure(s):", fg=typer.colors.RED, err=True)
        for row in result.failures.itertuples():
            typer.secho(f"  {row.patient_id} [{row.stage}] {row.error_type}: {row.error}", err=True)


@app.command()
def validate(
    manifest: Path = typer.Argument(..., help="Cohort manifest (CSV or Parquet)."),
    clinical: Optional[Path] = typer.Option(None, help="Clinical table (CSV)."),
    events: Optional[Path] = typer.Option(None, help="Events table (CSV)."),
    resample_masks: bool = typer.Option(False, "--resample-masks"),
    lesion_mask_kind: str = typer.Option("binary", help=_MASK_HELP),
    lesion_label: Optional[int] = typer.Option(None),
    liver_label: Optional[int] = typer.Option(None),
    phase: Optional[str] = typer.Option(None),
    baseline_window_days: int = typer.Option(28),
) -> None:
    """Check a cohort (tables, dates, files readable, mask geometry and values) without analysing.

    Exit status 0 when every scan passes, 1 otherwise.
    """
    from metevo.cohort import validate_cohort

    options = _cohort_options(
        lesion_mask_kind, lesion_label, liver_label, phase, resample_masks, baseline_window_days
    )
    cohort = _open(manifest, clinical, events, options)
    report = validate_cohort(cohort)
    bad = report[report.status != "ok"]
    n_pat = report.patient_id.nunique()
    typer.echo(
        f"{len(report)} scan(s) of {n_pat} patient(s) checked; {len(bad)} problem(s)."
    )
    for row in bad.itertuples():
        where = row.patient_id + (f" {row.timepoint}" if row.timepoint else "")
        typer.secho(f"  {where}: {row.message}", fg=typer.colors.RED)
    if len(bad):
        raise typer.Exit(1)


@app.command()
def demo(
    out: Path = typer.Option(Path("metevo_demo"), "--out", "-o", help="Output folder."),
    patients: int = typer.Option(8, "--patients", help="Number of synthetic patients."),
    seed: int = typer.Option(0, help="Random seed of the synthetic cohort."),
    size: str = typer.Option("tiny", help="Synthetic grid: tiny, small or full."),
    workers: Optional[int] = typer.Option(None, help="Local worker processes."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
    segment: bool = typer.Option(
        False, "--segment", help="Segment the CTs first (CT -> masks -> analyses)."
    ),
    model: str = typer.Option("demo", "--model", help="Segmentation model: demo or a model card."),
) -> None:
    """Generate the synthetic cohort and run every analysis stage on it.

    Writes the cohort to OUT/cohort and the tables and figures to OUT/analysis; with --segment,
    the masks are predicted by the segmentation model into OUT/segmentation first.
    """
    from metevo.runner.demo import run_demo

    run_demo(
        out, n_patients=patients, seed=seed, size=size, workers=workers, progress=progress,
        segment=segment, model=model, echo=typer.echo,
    )


@app.command("segment")
def segment_command(
    manifest: Path = typer.Argument(..., help="Manifest of the CTs (patient_id, timepoint, image)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder for masks and the new manifest."),
    model: str = typer.Option("demo", "--model", "-m", help="'demo' or the path of a model card."),
    device: str = typer.Option("auto", help="auto (CUDA when available), cpu or cuda[:n]."),
    batch_size: int = typer.Option(4, "--batch-size", help="Sliding windows per forward pass."),
    overlap: float = typer.Option(0.25, help="Sliding-window overlap."),
    precision: str = typer.Option("auto", help="auto (bf16 on CUDA, fp32 on CPU), bf16 or fp32."),
    workers: Optional[int] = typer.Option(None, help="Reader processes (default 2 on CUDA, 0 on CPU)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Recompute masks even when up to date."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Segment liver and lesions of every CT in MANIFEST, once (needs the segmentation extra).

    Writes OUT/manifest.csv (ready for `metevo analyze`), the masks with their provenance and
    OUT/segmentation_log.parquet. Scans whose masks are up to date are not recomputed.
    """
    from metevo.exceptions import MetevoError

    try:
        from metevo.segmentation import segment as run
    except ImportError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            new = run(
                manifest, model, out, device=device, batch_size=batch_size, overlap=overlap,
                precision=precision, num_workers=workers, overwrite=overwrite, progress=progress,
            )
        except (MetevoError, ValueError, FileNotFoundError) as exc:
            typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
            raise typer.Exit(2) from None
    for w in caught:
        typer.secho(f"warning: {w.message}", fg=typer.colors.YELLOW, err=True)
    counts = new.attrs["log"].status.value_counts()
    typer.echo(
        f"{len(new)} scan(s): {counts.get('computed', 0)} segmented, {counts.get('reused', 0)} "
        f"up to date, {counts.get('failed', 0)} failed; new manifest {out / 'manifest.csv'}"
    )
    if counts.get("failed", 0):
        raise typer.Exit(1)


@app.command("segment-eval")
def segment_eval_command(
    predicted: Path = typer.Argument(..., help="Manifest of predicted masks (from metevo segment)."),
    reference: Path = typer.Argument(..., help="Reference cohort manifest."),
    out: Optional[Path] = typer.Option(
        None, "--out", "-o", help="Write segmentation_eval.parquet and segmentation_eval_summary.parquet here."
    ),
    lesion_mask_kind: str = typer.Option("binary", help=_MASK_HELP + " (reference masks)"),
    lesion_label: Optional[int] = typer.Option(None, help="Lesion class in a multi-class reference."),
    liver_label: Optional[int] = typer.Option(None, help="Liver class in a multi-class reference."),
) -> None:
    """Dice, lesion detection (IoU >= 0.5) and volume error of predicted vs reference masks."""
    from metevo.exceptions import MetevoError

    try:
        from metevo.segmentation import evaluate, evaluation_summary
    except ImportError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    options = {"lesion_mask_kind": lesion_mask_kind, "lesion_label": lesion_label, "liver_label": liver_label}
    try:
        table = evaluate(predicted, reference, **options)
    except (MetevoError, ValueError, FileNotFoundError) as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    summary = evaluation_summary(table)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        table.to_parquet(out / "segmentation_eval.parquet", index=False)
        summary.to_parquet(out / "segmentation_eval_summary.parquet", index=False)
    typer.echo(summary.to_string(index=False, float_format=lambda v: f"{v:.3f}"))


@app.command("export-sdtm")
def export_sdtm_command(
    analysis: Path = typer.Argument(..., help="Analysis folder written by `metevo analyze`."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder (default ANALYSIS/sdtm)."),
    study_id: str = typer.Option("METEVO", "--study-id", help="STUDYID of the exported rows."),
) -> None:
    """Export RECIST results as SDTM-like TU, TR and RS tables (CSV; metevo as the evaluator)."""
    from metevo.response import export_sdtm

    try:
        paths = export_sdtm(analysis, out, study_id=study_id)
    except (ValueError, FileNotFoundError) as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    typer.echo("wrote " + ", ".join(str(p) for p in paths.values()))


@app.command("recist-sdtm")
def recist_sdtm_command(
    tu: Path = typer.Argument(..., help="SDTM TU domain (CSV)."),
    tr: Path = typer.Argument(..., help="SDTM TR domain (CSV)."),
    out: Path = typer.Option(Path("rs_metevo.csv"), "--out", "-o", help="Output CSV."),
) -> None:
    """RECIST 1.1 responses per subject, visit and evaluator from SDTM TU/TR tables."""
    import pandas as pd

    from metevo.response import recist_from_sdtm

    try:
        table = recist_from_sdtm(pd.read_csv(tu), pd.read_csv(tr))
    except (ValueError, FileNotFoundError) as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    table.to_csv(out, index=False)
    typer.echo(f"{len(table)} assessment(s) written to {out}")


@app.command("lesion-graph")
def lesion_graph_command(
    manifest: Path = typer.Argument(..., help="Cohort manifest (CSV or Parquet)."),
    patient: str = typer.Option(..., "--patient", "-p", help="Patient id."),
    out: Path = typer.Option(Path("."), "--out", "-o", help="Output folder."),
    lesion_mask_kind: str = typer.Option("binary", help=_MASK_HELP),
    max_skip: int = typer.Option(
        -1, help="Visits a lesion may be missed at and still be linked (-1: any number)."
    ),
    max_dilation: int = typer.Option(7, help="Dilation rounds of the matcher."),
    min_overlap: float = typer.Option(0.10, help="Overlap that makes an edge."),
) -> None:
    """Build one patient's lesion graph: lesions, lesion_edges, registrations (Parquet) and a PNG."""
    from metevo.tracking import lesion_graph

    options = _cohort_options(lesion_mask_kind, None, None, None, False, 28)
    cohort = _open(manifest, None, None, options)
    if patient not in cohort.patient_ids:
        typer.secho(
            f"error: patient {patient!r} is not in {manifest}; patients: "
            f"{', '.join(cohort.patient_ids[:10])}{' ...' if len(cohort.patient_ids) > 10 else ''}",
            fg=typer.colors.RED,
            err=True,
        )
        raise typer.Exit(2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        graph = lesion_graph(
            cohort[patient],
            max_skip=None if max_skip < 0 else max_skip,
            max_dilation=max_dilation,
            min_overlap=min_overlap,
        )
    for w in caught:
        typer.secho(f"warning: {w.message}", fg=typer.colors.YELLOW, err=True)
    out.mkdir(parents=True, exist_ok=True)
    graph.nodes.to_parquet(out / "lesions.parquet", index=False)
    graph.edges.to_parquet(out / "lesion_edges.parquet", index=False)
    graph.registrations.to_parquet(out / "registrations.parquet", index=False)
    import matplotlib

    matplotlib.use("Agg")
    from metevo.plotting.graph import plot_lesion_graph

    ax = plot_lesion_graph(graph)
    ax.figure.savefig(out / f"lesion_graph_{patient}.png", dpi=120, bbox_inches="tight")
    typer.echo(repr(graph))
    typer.echo(graph.changes.drop(columns=["patient_id"]).to_string(index=False))
    typer.echo(f"tables and figure written to {out}")



@app.command("radiomics")
def radiomics_command(
    image: Path = typer.Argument(..., help="Scan (NIfTI/NRRD/MHA file or DICOM series folder), HU."),
    mask: Path = typer.Argument(..., help="Lesion mask on the image grid: binary or one label per lesion."),
    out: Path = typer.Option(Path("radiomics.csv"), "--out", "-o", help="Output table (.csv or .parquet)."),
    preset: str = typer.Option("ct_default", help="Settings preset: ct_default or ibsi_digital_phantom."),
    bin_width: Optional[float] = typer.Option(None, help="Fixed bin size (HU) instead of the preset's."),
    resample: Optional[bool] = typer.Option(None, "--resample/--no-resample", help="Interpolate to isotropic voxels (preset default)."),
) -> None:
    """IBSI radiomic features of every lesion of one scan (one row per lesion label)."""
    from metevo.radiomics import radiomic_features

    options = {k: v for k, v in {"bin_width": bin_width, "resample": resample}.items() if v is not None}
    try:
        table = radiomic_features(image, mask, settings=preset, context=str(image), **options)
    except (ValueError, TypeError, OSError) as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    if out.suffix == ".parquet":
        table.to_parquet(out, index=False)
    else:
        table.to_csv(out, index=False)
    typer.echo(f"{len(table)} lesion(s), {table.shape[1] - 2} features written to {out}")

@app.command("patterns")
def patterns_command(
    folder: Path = typer.Argument(..., help="Analysis folder of `metevo analyze`."),
    clinical: Optional[Path] = typer.Option(None, "--clinical", help="Clinical table (CSV)."),
    k: str = typer.Option("auto", "--k", help="Number of patterns, or auto."),
    landmark_days: Optional[float] = typer.Option(
        None, "--landmark-days", help="Landmark (days since treatment start) for the patterns."
    ),
    method: str = typer.Option(
        "kmeans", "--method", help="kmeans, euclidean, dtw, softdtw, kshape or gmm."
    ),
    endpoint: str = typer.Option("os", "--endpoint", help="os, pfs or imaging_pfs."),
    figures: bool = typer.Option(True, help="Write the figures (PNG and PDF)."),
    time_varying: bool = typer.Option(
        False, "--time-varying", help="Add a time-varying Cox model on per-visit features."
    ),
) -> None:
    """Evolution patterns: cluster trajectories, relate them to survival and response.

    Writes patterns, pattern_selection, survival_km, survival_cox and response_association
    (Parquet) and the figures (FOLDER/figures) into FOLDER.
    """
    from metevo.exceptions import MetevoError
    from metevo.runner import run_patterns

    if k != "auto" and not k.isdigit():
        typer.secho(f"error: --k must be 'auto' or an integer >= 2; found {k!r}.", err=True)
        raise typer.Exit(2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            tables = run_patterns(
                folder, clinical, k=k if k == "auto" else int(k), landmark_days=landmark_days,
                method=method, endpoint=endpoint, figures=figures,
                time_varying=time_varying, echo=typer.echo,
            )
        except (MetevoError, ValueError, TypeError, FileNotFoundError) as exc:
            typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
            raise typer.Exit(2) from None
    for w in caught:
        typer.secho(f"warning: {w.message}", fg=typer.colors.YELLOW, err=True)
    typer.echo(f"tables in {folder}: {', '.join(n + '.parquet' for n in tables)}")


def main() -> None:
    """Console entry point."""
    app(prog_name="metevo")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
