"""One-patient entry points that run the pipeline: :func:`recist` and :func:`trajectories`.

They take a :class:`~metevo.cohort.Patient` (or, for trajectories, a cohort or an analysis
folder), run :func:`~metevo.runner.analyze_patient` up to the stage they need and return its table.
They live in the runner because they run the stages; the stages themselves never import it.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from metevo.cohort import Cohort, Patient
from metevo.evolution._trajectories import _select_stored, to_long
from metevo.response._recist_stage import assess_patient
from metevo.runner._run import AnalysisResult
from metevo.runner.pipeline import analyze_patient

__all__ = ["recist", "trajectories"]


def recist(patient: Patient, **options: Any) -> pd.DataFrame:
    """Per-visit RECIST 1.1 table of one patient, from its masks (liver scope).

    Runs the pipeline stages up to the lesion graph for ``patient`` and then the ``recist``
    stage; see :func:`metevo.response.recist_stage` for the rules specific to masks and
    for ``options``.

    Parameters
    ----------
    patient : metevo.cohort.Patient
        A patient of an opened cohort.
    **options
        Keyword options of the recist stage (e.g. ``max_targets=2``, ``pfs_rules="ema"``).

    Returns
    -------
    DataFrame
        The ``recist`` table rows of this patient (columns in ``metevo.columns.Recist``).

    Examples
    --------
    >>> import metevo  # doctest: +SKIP
    >>> cohort = metevo.load_demo_cohort()  # doctest: +SKIP
    >>> metevo.recist(cohort[cohort.patient_ids[0]])  # doctest: +SKIP
    """
    allowed = [
        name
        for name, prm in inspect.signature(assess_patient).parameters.items()
        if prm.kind is inspect.Parameter.KEYWORD_ONLY and name not in ("treatment_start", "events")
    ]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise TypeError(
            f"recist() got unexpected keyword option(s) {unknown}; options are {allowed}."
        )
    return _run_stage(patient, "recist", options)["recist"]


def trajectories(
    obj: object,
    *,
    level: str = "lesion",
    features: str | Sequence[str] = "default",
    long: bool = False,
) -> pd.DataFrame:
    """Trajectories of a patient, a cohort, or an analysed cohort.

    Parameters
    ----------
    obj
        A :class:`~metevo.cohort.Patient` (computed now), a :class:`~metevo.cohort.Cohort`
        (computed patient by patient), or an analysed cohort — an
        :class:`~metevo.runner.AnalysisResult` or the folder ``metevo analyze`` wrote — whose
        ``trajectories.parquet`` / ``patient_trajectories.parquet`` are read, not recomputed.
    level
        ``"lesion"`` (one row per track × visit) or ``"patient"`` (one row per visit).
    features
        Radiomic features carried along: ``"default"`` (:data:`DEFAULT_FEATURES`), ``"all"``
        (every feature of :func:`metevo.feature_catalog`), or a list of feature names.
    long
        Return a long ``(feature, value)`` frame (keys kept), ready for seaborn.

    Returns
    -------
    pandas.DataFrame
        Columns described in ``data_dictionary/trajectories.schema.json`` and
        ``patient_trajectories.schema.json`` (module docstring for the rules).
    """
    if level not in ("lesion", "patient"):
        raise ValueError(f"level must be 'lesion' or 'patient'; got {level!r}.")
    table = "trajectories" if level == "lesion" else "patient_trajectories"
    if isinstance(obj, Patient):
        frame = _compute(obj, features)[table]
    elif isinstance(obj, Cohort):
        frames = [_compute(p, features)[table] for p in obj]
        frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    elif isinstance(obj, AnalysisResult | str | Path):
        folder = obj.out_dir if isinstance(obj, AnalysisResult) else Path(obj)
        path = folder / f"{table}.parquet"
        if not path.exists():
            raise FileNotFoundError(
                f"{path} not found: run `metevo analyze` on the cohort first (it writes "
                f"{table}.parquet), or pass a Patient/Cohort to compute the trajectories."
            )
        frame = _select_stored(pd.read_parquet(path), features, level)
    else:
        raise TypeError(
            "trajectories() takes a Patient, a Cohort, an AnalysisResult or an analysis folder; "
            f"got {type(obj).__name__}."
        )
    return to_long(frame, level) if long else frame


def _compute(patient: object, features: str | Sequence[str]) -> dict[str, pd.DataFrame]:
    return _run_stage(patient, "trajectories", {"features": features})


def _run_stage(patient: Any, stage: str, options: dict) -> dict[str, pd.DataFrame]:
    """The tables of one patient's run up to ``stage``; a failed stage raises RuntimeError."""
    result = analyze_patient(
        patient, stages=[stage], stage_options={stage: options} if options else None
    )
    if result.failures:
        f = result.failures[0]
        raise RuntimeError(
            f"patient {patient.patient_id!r}: stage {f['stage']!r} failed with {f['error_type']}: "
            f"{f['error']}"
        )
    return result.tables
