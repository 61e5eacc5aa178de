"""The ``metevo segment`` and ``metevo segment-eval`` commands, registered on the CLI app by
:mod:`metevo.cli`.

Kept apart so ``cli.py`` stays under the module-size limit; like the CLI they import what they
need lazily (torch and MONAI only when something is to be segmented).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Optional

import typer

from metevo._cli_common import echo_warnings, fail

_MASK_HELP = "binary (default), instances or labels"


def segment_command(
    manifest: Path = typer.Argument(..., help="Manifest of the CTs (patient_id, timepoint, image)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder for masks and the new manifest."),
    model: str = typer.Option(
        "demo", "--model", "-m",
        help="'demo', a model card path, nnunet:PATH (trained nnU-Net v2 folder) or "
        "totalsegmentator:TASK (its local weights).",
    ),
    configuration: Optional[str] = typer.Option(
        None, "--configuration", "-c", help="nnU-Net plans configuration (default: the folder's)."
    ),
    folds: Optional[list[str]] = typer.Option(
        None, "--folds", "-f", help="nnU-Net folds to ensemble (repeat: -f 0 -f 1; default all)."
    ),
    mirroring: Optional[bool] = typer.Option(
        None, "--mirroring/--no-mirroring", help="nnU-Net test-time mirroring (default: on)."
    ),
    liver_labels: Optional[list[str]] = typer.Option(
        None, "--liver-label", help="Model label (name or value) read as liver (repeatable)."
    ),
    lesion_labels: Optional[list[str]] = typer.Option(
        None, "--lesion-label", help="Model label (name or value) read as lesion (repeatable)."
    ),
    device: str = typer.Option("auto", help="auto (CUDA when available), cpu or cuda[:n]."),
    batch_size: int = typer.Option(4, "--batch-size", help="Sliding windows per forward pass."),
    cts_per_batch: Optional[int] = typer.Option(
        None, "--cts-per-batch",
        help="CTs segmented at once by the demo/card models; their windows share forward passes "
        "(default: --batch-size on CUDA, 1 on the CPU).",
    ),
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
        fail(exc)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            new = run(
                manifest, model, out, device=device, batch_size=batch_size, overlap=overlap,
                precision=precision, num_workers=workers, overwrite=overwrite, progress=progress,
                cts_per_batch=cts_per_batch,
                model_options={
                    "configuration": configuration, "folds": folds or None,
                    "mirroring": mirroring, "liver": liver_labels or None,
                    "lesion": lesion_labels or None,
                },
            )
        except (MetevoError, ValueError, FileNotFoundError) as exc:
            fail(exc)
    echo_warnings(caught)
    counts = new.attrs["log"].status.value_counts()
    typer.echo(
        f"{len(new)} scan(s): {counts.get('computed', 0)} segmented, {counts.get('reused', 0)} "
        f"up to date, {counts.get('failed', 0)} failed; new manifest {out / 'manifest.csv'}"
    )
    if counts.get("failed", 0):
        raise typer.Exit(1)


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
    """Dice, volume error and per-lesion detection (IoU >= 0.1 / 0.5, by size) vs reference masks."""
    from metevo.exceptions import MetevoError

    try:
        from metevo.segmentation import detection_summary, evaluate, evaluation_summary
    except ImportError as exc:
        fail(exc)
    options = {"lesion_mask_kind": lesion_mask_kind, "lesion_label": lesion_label, "liver_label": liver_label}
    try:
        table, lesions = evaluate(predicted, reference, per_lesion=True, **options)
    except (MetevoError, ValueError, FileNotFoundError) as exc:
        fail(exc)
    summary = evaluation_summary(table)
    detection = detection_summary(lesions)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        table.to_parquet(out / "segmentation_eval.parquet", index=False)
        summary.to_parquet(out / "segmentation_eval_summary.parquet", index=False)
        lesions.to_parquet(out / "segmentation_eval_lesions.parquet", index=False)
        detection.to_parquet(out / "segmentation_eval_detection.parquet", index=False)
    typer.echo(summary.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    typer.echo("\nPer-lesion detection (size: equivalent-sphere diameter):")
    typer.echo(detection.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
