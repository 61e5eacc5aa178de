"""What an analysis folder was made from: the manifest and cohort options, in ``inputs.json``.

:func:`metevo.analyze` records them next to the tables (:func:`record_inputs`), so the commands
that need the images again (``metevo report`` for its CT slices, ``metevo export-dicom``) reopen
the cohort from the folder alone (:func:`recorded_cohort`); a manifest given to them overrides it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from metevo.exceptions import CohortError

__all__ = ["INPUTS_FILE", "record_inputs", "recorded_cohort", "recorded_inputs"]

INPUTS_FILE = "inputs.json"


def record_inputs(cohort, folder: str | Path) -> Path:
    """Write ``folder/inputs.json``: the cohort's manifest path (absolute) and options.

    A cohort opened from a DataFrame records no manifest path (``null``); its users pass one.
    """
    source = getattr(cohort, "source", None)
    manifest = str(Path(source).resolve()) if source and Path(source).is_file() else None
    options = getattr(cohort, "options", None)
    record = {
        "manifest": manifest,
        "options": dataclasses.asdict(options) if dataclasses.is_dataclass(options) else {},
    }
    path = Path(folder) / INPUTS_FILE
    path.write_text(json.dumps(record, indent=1), encoding="utf-8")
    return path


def recorded_inputs(folder: str | Path) -> dict[str, Any]:
    """``{"manifest": str | None, "options": dict}`` recorded in ``folder`` (empty when none)."""
    path = Path(folder) / INPUTS_FILE
    if not path.is_file():
        return {"manifest": None, "options": {}}
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise CohortError(f"{path} is not valid JSON ({exc}); delete it and pass the manifest.") from exc
    return {"manifest": record.get("manifest"), "options": dict(record.get("options") or {})}


def recorded_cohort(
    folder: str | Path,
    *,
    manifest: str | Path | None = None,
    options: Mapping[str, Any] | None = None,
):
    """Reopen the cohort an analysis folder was made from.

    Parameters
    ----------
    folder
        Analysis folder (``inputs.json`` written by :func:`metevo.analyze`).
    manifest
        Overrides the recorded manifest.
    options
        Cohort options that override the recorded ones (e.g. ``liver_label``).

    Returns
    -------
    Cohort | None
        None when neither a manifest was given nor one is recorded.
    """
    from metevo.cohort._cohort import open_cohort

    record = recorded_inputs(folder)
    manifest = manifest or record["manifest"]
    if manifest is None:
        return None
    merged = {**record["options"], **{k: v for k, v in dict(options or {}).items() if v is not None}}
    return open_cohort(manifest, **merged)
