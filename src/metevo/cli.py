"""The ``metevo`` command line (typer). Thin: every command imports what it needs lazily.

Commands: ``demo``, ``analyze``, ``validate``, ``figures``, ``report`` (and the ones later
modules add).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Optional

import typer

from metevo._cli_common import echo_warnings, fail
from metevo._cli_dicom import export_dicom_command
from metevo._cli_segment import segment_command, segment_eval_command

app = typer.Typer(
    name="metevo",
    help="Longitudinal CT analysis of colorectal liver metastases.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("export-dicom")(export_dicom_command)
app.command("segment")(segment_command)
app.command("segment-eval")(segment_eval_command)


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
            fail(exc)
    echo_warnings(caught)
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
    force: bool = typer.Option(
        False, "--force", help="Recompute every patient, even those finished by an earlier run."
    ),
    patient_timeout: Optional[float] = typer.Option(
        None, "--patient-timeout", help="Seconds one patient may take before it is stopped."
    ),
    allow_failures: bool = typer.Option(
        False, "--allow-failures", help="Exit 0 even when some patients failed."
    ),
    isolate: bool = typer.Option(
        True, help="One process per patient (a crash costs one patient); --no-isolate for debugging."
    ),
    assessment_interval_days: Optional[float] = typer.Option(None, help="Protocol assessment interval (days) for the PFS missed-assessment rule (default: clinical column assessment_interval_days, else the cohort median gap)."),
) -> None:
    """Analyse a cohort: write one Parquet table per kind into OUT.

    Each patient's tables are kept under OUT/_shards as soon as the patient finishes; running the
    command again into the same OUT skips the patients whose inputs and options did not change
    (--force recomputes them). Exit status: 0 when every patient reached the tables, 1 when any
    failed (see OUT/failures.parquet) unless --allow-failures.
    """
    from metevo.runner import analyze as run

    options = _cohort_options(
        lesion_mask_kind, lesion_label, liver_label, phase, resample_masks, baseline_window_days
    )
    cohort = _open(manifest, clinical, events, options)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = run(
            cohort, out, workers=workers, dask_address=dask, progress=progress, force=force,
            patient_timeout=patient_timeout, isolate=isolate,
            stage_options=None if assessment_interval_days is None else {"recist": {"assessment_interval_days": assessment_interval_days}},
        )
    echo_warnings(caught)
    _summarise(result)
    if result.failed_patients and not allow_failures:
        raise typer.Exit(1)


def _summarise(result) -> None:
    typer.echo(
        f"{result.summary()}\ntables in {result.out_dir}: "
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
    pattern_patients: int = typer.Option(
        200,
        "--pattern-patients",
        help="Image-free synthetic patients for the patterns/survival part (0 skips it).",
    ),
) -> None:
    """Generate the synthetic cohort and run every analysis stage on it.

    Writes the cohort to OUT/cohort and the tables and figures to OUT/analysis; with --segment,
    the masks are predicted by the segmentation model into OUT/segmentation first. Evolution
    patterns and survival need more patients than the CT demo has: they run on an image-free
    synthetic cohort (--pattern-patients, default 200) into OUT/patterns.
    """
    from metevo.runner.demo import run_demo

    run_demo(
        out, n_patients=patients, seed=seed, size=size, workers=workers, progress=progress,
        segment=segment, model=model, pattern_patients=pattern_patients, echo=typer.echo,
    )


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
        fail(exc)
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
        fail(exc)
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
    echo_warnings(caught)
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
        fail(exc)
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
        "lcmm",
        "--method",
        help="lcmm (latent-class trajectory model, default), kmeans, euclidean, dtw, softdtw, "
        "kshape or gmm.",
    ),
    endpoint: str = typer.Option("os", "--endpoint", help="os, pfs or imaging_pfs."),
    figures: bool = typer.Option(True, help="Write the figures (PNG and PDF)."),
    time_varying: bool = typer.Option(
        False, "--time-varying", help="Add a time-varying Cox model on per-visit features."
    ),
) -> None:
    """Evolution patterns: cluster trajectories, relate them to survival and response.

    Writes patterns, pattern_selection, pattern_summary, pattern_posteriors, survival_km,
    survival_cox and response_association (Parquet) and the figures (FOLDER/figures) into
    FOLDER.
    """
    from metevo.exceptions import MetevoError
    from metevo.runner import run_patterns

    if k != "auto" and not k.isdigit():
        fail(f"--k must be 'auto' or an integer >= 1; found {k!r}.")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            tables = run_patterns(
                folder, clinical, k=k if k == "auto" else int(k), landmark_days=landmark_days,
                method=method, endpoint=endpoint, figures=figures,
                time_varying=time_varying, echo=typer.echo,
            )
        except (MetevoError, ValueError, TypeError, FileNotFoundError) as exc:
            fail(exc)
    echo_warnings(caught)
    typer.echo(f"tables in {folder}: {', '.join(n + '.parquet' for n in tables)}")


def _followup_call(call):
    """Run a follow-up command: errors exit 2 with their message, warnings are echoed."""
    from metevo.exceptions import MetevoError

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = call()
        except (MetevoError, ValueError, TypeError, FileNotFoundError) as exc:
            fail(exc)
    echo_warnings(caught)
    return result


def _numbers(text: str, name: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        fail(f"{name} expects comma-separated numbers; found {text!r}.")


@app.command("predict")
def predict_command(
    folder: Path = typer.Argument(..., help="Analysis folder with patient_trajectories.parquet."),
    clinical: Path = typer.Option(
        ..., "--clinical", help="Clinical table (CSV): os_days/os_event, pfs_days/pfs_event."
    ),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder (default FOLDER)."),
    endpoints: str = typer.Option("os,pfs", "--endpoints", help="Comma-separated: os, pfs."),
    horizons: str = typer.Option("183,365", "--horizons", help="Windows in days, comma-separated."),
    landmark_every_days: float = typer.Option(56.0, "--landmark-every-days"),
    max_landmark_days: float = typer.Option(336.0, "--max-landmark-days"),
    folds: int = typer.Option(5, "--folds", help="Patient-level cross-validation folds."),
    n_boot: int = typer.Option(200, "--n-boot", help="Bootstrap resamples for the intervals."),
    seed: int = typer.Option(0, help="Random seed (folds, bootstrap)."),
    figures: bool = typer.Option(True, help="Write the figures (PNG)."),
) -> None:
    """Dynamic prediction at every visit: risk of death and of progression within each horizon.

    Landmark super-model on the trajectory so far, cross-validated by patient. Writes
    predictions, prediction_performance and prediction_calibration (Parquet) into OUT (default
    FOLDER) and the figures into OUT/figures.
    """
    from metevo.followup._run import run_predict

    eps = [e.strip() for e in endpoints.split(",") if e.strip()]
    res, paths = _followup_call(
        lambda: run_predict(
            folder, clinical, out=out, echo=typer.echo, endpoints=eps,
            horizons_days=_numbers(horizons, "--horizons"),
            landmark_every_days=landmark_every_days, max_landmark_days=max_landmark_days,
            n_folds=folds, n_boot=n_boot, seed=seed,
        )
    )
    if figures:
        import pandas as pd

        from metevo.plotting.followup import save_prediction_figures

        traj = pd.read_parquet(Path(folder) / "patient_trajectories.parquet")
        paths += save_prediction_figures(res, traj, Path(out or folder) / "figures")
    typer.echo("written: " + ", ".join(str(p) for p in paths))


@app.command("follow-up")
def follow_up_command(
    folder: Path = typer.Argument(..., help="Analysis folder with patient_trajectories.parquet."),
    patterns: Optional[Path] = typer.Option(
        None, "--patterns", help="Table with patient_id, pattern (default FOLDER/patterns.parquet)."
    ),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder (default FOLDER)."),
    horizon_days: float = typer.Option(730.0, "--horizon-days"),
    measurement_cv: Optional[float] = typer.Option(
        None, "--measurement-cv", help="CV of a target-sum measurement (default: estimated)."
    ),
    simulations: int = typer.Option(20, "--simulations", help="Simulated futures per patient."),
    n_boot: int = typer.Option(200, "--n-boot", help="Bootstrap resamples for the intervals."),
    seed: int = typer.Option(0, help="Random seed."),
    figures: bool = typer.Option(True, help="Write the trade-off figure (PNG)."),
) -> None:
    """Imaging schedules per pattern: detection delay of progression and scans per year.

    Simulates every 6, 8, 9, 12 weeks and adaptive 6-then-12 weeks from each patient's fitted
    kinetics; writes follow_up.parquet into OUT (default FOLDER) and OUT/figures.
    """
    from metevo.followup._run import run_follow_up

    res, path = _followup_call(
        lambda: run_follow_up(
            folder, patterns=patterns, out=out, echo=typer.echo, horizon_days=horizon_days,
            measurement_cv=measurement_cv, n_simulations=simulations, n_boot=n_boot, seed=seed,
        )
    )
    paths = [path]
    if figures:
        from metevo.plotting.followup import save_follow_up_figure

        paths.append(save_follow_up_figure(res.table, Path(out or folder) / "figures"))
    typer.echo("written: " + ", ".join(str(p) for p in paths))


@app.command("figures")
def figures_command(
    folder: Path = typer.Argument(..., help="Analysis folder of `metevo analyze`."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder (default FOLDER/figures)."),
    events: Optional[Path] = typer.Option(None, "--events", help="Events table (CSV) for the swimmer plot."),
    patient: Optional[list[str]] = typer.Option(None, "--patient", "-p", help="Only these patients' figures (repeat)."),
    dpi: int = typer.Option(150, help="PNG resolution."),
) -> None:
    """Draw every figure the tables of FOLDER allow (PNG and PDF): waterfall, spider, swimmer,
    pattern and survival figures, and per patient the lesion graph, trajectory panel and timeline."""
    import matplotlib

    matplotlib.use("Agg")
    from metevo.report import draw_figures

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            table = draw_figures(folder, out, events=events, patient_ids=patient or None, dpi=dpi)
        except (ValueError, FileNotFoundError) as exc:
            fail(exc)
    echo_warnings(caught)
    target = out if out is not None else folder / "figures"
    written = table[table.status == "written"]
    typer.echo(f"{len(written)} figure(s) written to {target} (PNG and PDF)")
    for row in table[table.status == "skipped"].itertuples():
        who = f"{row.patient_id}: " if row.patient_id else ""
        typer.echo(f"  skipped {who}{row.figure}: {row.note}")


@app.command("report")
def report_command(
    folder: Path = typer.Argument(..., help="Analysis folder of `metevo analyze`."),
    out: Path = typer.Option(..., "--out", "-o", help="Report folder (index.html and one page per patient)."),
    manifest: Optional[Path] = typer.Option(
        None, "--manifest", help="Cohort manifest for the CT slices (default: the one `metevo analyze` recorded in FOLDER)."
    ),
    events: Optional[Path] = typer.Option(None, "--events", help="Events table (CSV) for the swimmer plots."),
    resample_masks: Optional[bool] = typer.Option(None, "--resample-masks", help="Override the recorded option."),
    lesion_mask_kind: Optional[str] = typer.Option(None, help=_MASK_HELP + " Default: as recorded."),
    lesion_label: Optional[int] = typer.Option(None, help="Lesion class in a multi-class mask."),
    liver_label: Optional[int] = typer.Option(None, help="Liver class in a multi-class mask."),
    phase: Optional[str] = typer.Option(None, help="Phase analysed on multi-phase dates."),
    baseline_window_days: Optional[int] = typer.Option(None, help="Baseline window before treatment start."),
) -> None:
    """Write a static HTML report of FOLDER into OUT: open OUT/index.html in any browser.

    The CT slices come from the cohort `metevo analyze` recorded in FOLDER (inputs.json); the
    options given here override the recorded ones."""
    import matplotlib

    matplotlib.use("Agg")
    from metevo.exceptions import MetevoError
    from metevo.report import write_report

    options = _cohort_options(
        lesion_mask_kind, lesion_label, liver_label, phase, resample_masks, baseline_window_days
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            index = write_report(folder, out, manifest=manifest, events=events, cohort_options=options, echo=typer.echo)
        except (MetevoError, ValueError, FileNotFoundError) as exc:
            fail(exc)
    echo_warnings(caught)
    typer.echo(f"open {index}")


def main() -> None:
    """Console entry point."""
    app(prog_name="metevo")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
