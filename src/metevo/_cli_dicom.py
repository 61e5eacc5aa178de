"""The ``metevo export-dicom`` command, registered on the CLI app by :mod:`metevo.cli`.

Kept apart so ``cli.py`` stays thin; like the CLI it imports what it needs lazily.
:func:`metevo.analyze` records its manifest and cohort options in ``DIR/inputs.json``
(:func:`metevo.cohort.record_inputs`) so that ``export-dicom DIR`` reopens the cohort without
being told the manifest again.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Optional

import typer

from metevo._cli_common import fail


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
    from metevo.cohort import recorded_cohort
    from metevo.cohort._inputs import INPUTS_FILE
    from metevo.exceptions import MetevoError
    from metevo.export import export_dicom

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # `metevo validate` reports the cohort's warnings
            cohort = recorded_cohort(
                analysis, manifest=manifest, options={"liver_label": liver_label, "lesion_label": lesion_label}
            )
        if cohort is None:
            fail(f"{analysis} records no manifest ({INPUTS_FILE}, written by `metevo analyze`); pass --manifest.")
        written = export_dicom(cohort, analysis, out)
    except (MetevoError, ValueError, FileNotFoundError) as exc:
        fail(str(exc))
    typer.echo(f"wrote {len(written)} SEG + {len(written)} SR file(s) under {out}")
