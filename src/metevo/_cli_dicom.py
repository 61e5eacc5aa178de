"""The ``metevo export-dicom`` command, registered on the CLI app by :mod:`metevo.cli`.

Kept apart so ``cli.py`` stays thin; like the CLI it imports what it needs lazily. ``metevo
analyze`` records its manifest and cohort options in ``DIR/inputs.json`` (:func:`record_inputs`)
so that ``export-dicom DIR`` can reopen the cohort without being told the manifest again.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Optional

import typer

INPUTS = "inputs.json"


def record_inputs(out: Path, manifest: Path, options: dict) -> None:
    """Remember the manifest and cohort options next to the tables (for ``export-dicom``)."""
    record = {"manifest": str(Path(manifest).resolve()), "options": options}
    (Path(out) / INPUTS).write_text(json.dumps(record, indent=1))


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


def export_dicom_command(
    analysis: Path = typer.Argument(..., help="Analysis folder written by `metevo analyze`."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder for the SEG and SR files."),
    manifest: Optional[Path] = typer.Option(
        None, help="Cohort manifest (default: the one `metevo analyze` recorded in ANALYSIS)."
    ),
    liver_label: Optional[int] = typer.Option(None, help="Liver class in a multi-class mask."),
    lesion_label: Optional[int] = typer.Option(None, help="Lesion class in a multi-class mask."),
) -> None:
    """Write one DICOM SEG (lesions by track + liver) and one TID 1500 SR per visit."""
    from metevo.cohort import open_cohort
    from metevo.exceptions import MetevoError
    from metevo.export import export_dicom

    options: dict = {}
    recorded = analysis / INPUTS
    if recorded.exists():
        saved = json.loads(recorded.read_text())
        options = dict(saved.get("options", {}))
        manifest = manifest or Path(saved["manifest"])
    if manifest is None:
        _fail(f"{analysis} has no {INPUTS} (written by `metevo analyze`); pass --manifest.")
    for key, value in (("liver_label", liver_label), ("lesion_label", lesion_label)):
        if value is not None:
            options[key] = value
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # `metevo validate` reports the cohort's warnings
            cohort = open_cohort(manifest, **options)
        written = export_dicom(cohort, analysis, out)
    except (MetevoError, ValueError, FileNotFoundError) as exc:
        _fail(str(exc))
    typer.echo(f"wrote {len(written)} SEG + {len(written)} SR file(s) under {out}")
