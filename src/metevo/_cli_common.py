"""What the CLI modules (:mod:`metevo.cli`, ``_cli_segment``, ``_cli_dicom``) share."""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import NoReturn

import typer


def fail(message: object) -> NoReturn:
    """End the command: ``error: <message>`` in red on stderr, exit status 2."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2) from None


def echo_warnings(caught: Iterable[warnings.WarningMessage]) -> None:
    """``warning: <message>`` in yellow on stderr for each warning a command recorded."""
    for w in caught:
        typer.secho(f"warning: {w.message}", fg=typer.colors.YELLOW, err=True)
