"""Run prediction and schedule simulation on an analysis folder (what the CLI calls).

``run_predict(folder, clinical)`` reads ``folder/patient_trajectories.parquet`` and the clinical
CSV and writes ``predictions``, ``prediction_performance`` and ``prediction_calibration``
(Parquet); ``run_follow_up(folder)`` reads the trajectories and, when present,
``folder/patterns.parquet``, and writes ``follow_up.parquet``. Both return the result object too,
so that a face (the CLI) can draw the figures with :mod:`metevo.plotting.followup`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd


def _read_trajectories(folder: Path) -> pd.DataFrame:
    path = folder / "patient_trajectories.parquet"
    if not path.is_file():
        raise FileNotFoundError(
            f"expected {path} (the patient_trajectories table of `metevo analyze`), found "
            "nothing; run `metevo analyze` into this folder first."
        )
    return pd.read_parquet(path)


def run_predict(
    folder: str | Path,
    clinical: str | Path,
    *,
    out: str | Path | None = None,
    echo: Callable[[str], None] = print,
    **options,
):
    """Predict at every visit of the trajectories in ``folder``; returns (result, paths)."""
    from metevo.followup._predict import predict

    folder = Path(folder)
    out = Path(out) if out is not None else folder
    traj = _read_trajectories(folder)
    clin_path = Path(clinical)
    if not clin_path.is_file():
        raise FileNotFoundError(f"clinical table: expected a CSV at {clin_path}, found nothing.")
    clin = pd.read_csv(clin_path)
    start = time.perf_counter()
    res = predict(traj, clin, **options)
    echo(f"{res!r} in {time.perf_counter() - start:.1f} s")
    return res, res.save(out)


def run_follow_up(
    folder: str | Path,
    *,
    patterns: str | Path | None = None,
    out: str | Path | None = None,
    echo: Callable[[str], None] = print,
    **options,
):
    """Simulate the imaging schedules for the patients in ``folder``; returns (result, path).

    ``patterns`` is a Parquet/CSV table with ``patient_id`` and ``pattern``; default
    ``folder/patterns.parquet`` when it exists, else every patient is in the group ``"all"``.
    """
    from metevo.followup._schedules import follow_up

    folder = Path(folder)
    out = Path(out) if out is not None else folder
    traj = _read_trajectories(folder)
    path = Path(patterns) if patterns is not None else folder / "patterns.parquet"
    table = None
    if path.is_file():
        table = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    elif patterns is not None:
        raise FileNotFoundError(f"patterns: expected a table at {path}, found nothing.")
    start = time.perf_counter()
    res = follow_up(traj, patterns=table, **options)
    echo(f"{res!r} ({res.measurement_cv_source}) in {time.perf_counter() - start:.1f} s")
    return res, res.save(out)
