"""Running per-patient analyses over a cohort, locally or on Dask.

The unit of work is one patient: :func:`analyze_patient` runs every stage of :data:`STAGES` in
order on a :class:`~metevo.cohort.Patient` and returns its tables. :func:`analyze` maps it over a
cohort with a progress bar, on a local process pool (default) or a Dask cluster, writes each
patient's tables as shards, gathers one Parquet file per table, and records failures in
``failures.parquet`` without stopping the other patients.

A stage is ``stage(patient, result, **options) -> None``; it reads what earlier stages left in
``result`` and adds its own tables (``result.tables``) and in-memory hand-offs
(``result.objects``). Options reach a stage through ``stage_options={"stage name": {...}}``.

Determinism: every stage runs with ITK, BLAS/OpenMP and numba pinned to one thread, so the local
and Dask paths give the same tables.
"""

from __future__ import annotations

import contextlib
import dataclasses
import traceback
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import pandas as pd

from metevo.cohort import Patient, ScanReads, scans_stage
from metevo.columns import Failures
from metevo.evolution import trajectories_stage
from metevo.radiomics import radiomics_stage
from metevo.response import recist_stage
from metevo.tracking import graph_stage

__all__ = ["STAGES", "PatientResult", "analyze_patient"]

#: Ordered ``(name, stage function)`` pairs; later stages read earlier stages' outputs. The
#: stage functions are imported here, so a reader (or a tool) follows ``analyze_patient`` into
#: each stage; ``stage_options`` stay keyed by the name.
STAGES: list[tuple[str, Callable[..., None]]] = [
    ("scans", scans_stage),
    ("graph", graph_stage),
    ("recist", recist_stage),
    ("radiomics", radiomics_stage),
    ("trajectories", trajectories_stage),
]


@dataclass(repr=False)
class PatientResult:
    """What the stages produced for one patient.

    Its repr is a summary (tables with their shapes, objects, failures, warnings); the tables
    themselves are in ``tables``.
    """

    patient_id: str
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    objects: dict[str, object] = field(default_factory=dict)
    failures: list[dict] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)
    #: images and masks decoded once per patient run, shared by the stages (emptied at the end)
    reads: ScanReads = field(default_factory=ScanReads, repr=False)
    #: follow-up scans left out (unreadable): failure records with ``timepoint`` and ``file``;
    #: the patient's other visits were analysed
    excluded: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No stage failed (excluded follow-up scans do not count: the patient was analysed)."""
        return not self.failures

    def _parts(self) -> tuple[str, str, str]:
        tables = (
            ", ".join(f"{k} {v.shape[0]}x{v.shape[1]}" for k, v in self.tables.items()) or "none"
        )
        objects = ", ".join(self.objects) or "none"
        status = (
            "ok"
            if self.ok
            else f"{len(self.failures)} failure(s) in "
            + ", ".join(str(f.get(Failures.STAGE, "?")) for f in self.failures)
        )
        return tables, objects, status

    def __repr__(self) -> str:
        tables, objects, status = self._parts()
        return (
            f"PatientResult({self.patient_id}, {status}, tables: {tables}; objects: {objects}; "
            f"{len(self.warnings)} warning(s))"
        )

    def _repr_html_(self) -> str:
        import html

        tables, objects, status = self._parts()
        failures = "".join(
            "<li>"
            + html.escape(
                f"{f.get(Failures.STAGE, '')}: {f.get(Failures.ERROR_TYPE, '')}: {f.get(Failures.ERROR, '')}"
            )
            + "</li>"
            for f in self.failures
        )
        return (
            f"<div><b>PatientResult</b> {html.escape(self.patient_id)}: {html.escape(status)}<br>"
            f"tables: {html.escape(tables)}<br>objects: {html.escape(objects)}<br>"
            f"{len(self.warnings)} warning(s){'<ul>' + failures + '</ul>' if failures else ''}</div>"
        )


def analyze_patient(
    patient: Patient,
    *,
    stages: Iterable[str] | None = None,
    stage_options: Mapping[str, Mapping[str, object]] | None = None,
    keep_objects: bool = True,
    reemit_warnings: bool = True,
    on_stage: Callable[[str], object] | None = None,
) -> PatientResult:
    """Run the analysis stages on one patient.

    Parameters
    ----------
    patient
        The patient.
    stages
        Names of the stages to run (default: all of :data:`STAGES`, in order). Asking for a stage
        runs the stages it follows in :data:`STAGES` too, since they feed it.
    stage_options
        ``{stage name: {option: value}}`` passed to the stage functions.
    keep_objects
        Keep the in-memory hand-offs (label images, graph) in the result; the cohort runner drops
        them before shipping results between processes.
    reemit_warnings
        Warnings raised by the stages are recorded in ``result.warnings`` (one per distinct
        message); with ``True`` they are also re-issued here, prefixed with the patient id.

    Returns
    -------
    PatientResult
        Its ``failures`` list holds at most one record: the first stage that raised (the later
        stages are skipped, the tables of the earlier ones are kept).
    """
    selected = _select_stages(stages)
    options = check_stage_options(stage_options)
    result = PatientResult(patient_id=patient.patient_id)
    with _pinned_threads(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for name, stage in selected:
            if on_stage is not None:
                on_stage(name)
            try:
                stage(patient, result, **dict(options.get(name, {})))
                patient = _without_excluded(patient, result)
            except Exception as exc:  # one stage failing must not lose the patient's other tables
                result.failures.append(
                    {
                        Failures.PATIENT_ID: patient.patient_id,
                        Failures.STAGE: name,
                        Failures.ERROR_TYPE: type(exc).__name__,
                        Failures.ERROR: _error_text(exc),
                    }
                )
                break
    result.reads.clear()
    result.excluded = list(dict(result.objects.get("excluded_scans", {})).values())
    result.warnings = _dedupe(
        (w.category.__name__, str(w.message)) for w in caught if issubclass(w.category, Warning)
    )
    if not keep_objects:
        result.objects = {}
    if reemit_warnings:
        _reemit(result)
    return result


def check_stage_options(
    stage_options: Mapping[str, Mapping[str, object]] | None,
) -> dict[str, dict[str, object]]:
    """``stage_options`` as plain dicts, after checking that each names a stage."""
    options = {k: dict(v) for k, v in (stage_options or {}).items()}
    unknown = set(options) - {name for name, _ in STAGES}
    if unknown:
        raise ValueError(
            f"stage_options names unknown stage(s) {sorted(unknown)}; stages: "
            f"{[name for name, _ in STAGES]}."
        )
    return options


def reemit_warnings(patient_id: str, items: Iterable[tuple[str, str]]) -> None:
    """Re-issue a patient's recorded warnings, naming the patient once."""
    for category, message in items:
        text = message if f"patient {patient_id}" in message else f"patient {patient_id}: {message}"
        warnings.warn(text, _warning_class(category), stacklevel=3)


def _without_excluded(patient: Patient, result: PatientResult) -> Patient:
    """The patient without the scans a stage excluded, for the stages that follow."""
    excluded = result.objects.get("excluded_scans") or {}
    if not any(s.timepoint in excluded for s in patient.scans):
        return patient
    kept = tuple(s for s in patient.scans if s.timepoint not in excluded)
    return dataclasses.replace(patient, scans=kept)


def _reemit(result: PatientResult) -> None:
    reemit_warnings(result.patient_id, result.warnings)


@contextlib.contextmanager
def _pinned_threads(threads: int = 1):
    import SimpleITK as sitk
    from threadpoolctl import threadpool_limits

    previous = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)
    numba_prev = None
    try:
        import numba

        numba_prev = numba.get_num_threads()
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    except Exception:  # numba absent or its threading layer unavailable
        numba_prev = None
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(previous)
        if numba_prev is not None:
            import numba

            numba.set_num_threads(numba_prev)


# --------------------------------------------------------------------------- tables


def _select_stages(stages: Iterable[str] | None) -> list[tuple[str, str]]:
    if stages is None:
        return list(STAGES)
    wanted = list(stages)
    names = [name for name, _ in STAGES]
    unknown = [s for s in wanted if s not in names]
    if unknown:
        raise ValueError(f"unknown stage(s) {unknown}; stages: {names}.")
    last = max(names.index(s) for s in wanted) if wanted else -1
    return list(STAGES[: last + 1])


def _error_text(exc: BaseException) -> str:
    text = f"{exc}"
    if not text:
        text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return text


def _dedupe(items: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    seen: dict[tuple[str, str], None] = {}
    for item in items:
        seen.setdefault(item, None)
    return list(seen)


def _warning_class(name: str) -> type[Warning]:
    from metevo import exceptions

    cls = getattr(exceptions, name, None)
    if isinstance(cls, type) and issubclass(cls, Warning):
        return cls
    builtin = (
        getattr(__builtins__, name, None)
        if not isinstance(__builtins__, dict)
        else __builtins__.get(name)
    )
    if isinstance(builtin, type) and issubclass(builtin, Warning):
        return builtin
    return UserWarning
