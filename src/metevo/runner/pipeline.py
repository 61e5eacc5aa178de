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
import os
import shutil
import traceback
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from metevo.cohort import Cohort, Patient, ScanReads, scans_stage
from metevo.columns import Failures
from metevo.evolution import trajectories_stage
from metevo.radiomics import radiomics_stage
from metevo.response import recist_stage
from metevo.tracking import graph_stage

__all__ = ["STAGES", "AnalysisResult", "PatientResult", "analyze", "analyze_patient"]

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

_SHARDS = "_shards"


@dataclass
class PatientResult:
    """What the stages produced for one patient."""

    patient_id: str
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    objects: dict[str, object] = field(default_factory=dict)
    failures: list[dict] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)
    #: images and masks decoded once per patient run, shared by the stages (emptied at the end)
    reads: ScanReads = field(default_factory=ScanReads, repr=False)

    @property
    def ok(self) -> bool:
        return not self.failures


@dataclass(frozen=True)
class AnalysisResult:
    """Where a cohort analysis wrote its tables, and which patients failed."""

    out_dir: Path
    tables: tuple[str, ...]
    failures: pd.DataFrame
    n_patients: int

    def read(self, table: str) -> pd.DataFrame:
        """Read one gathered table, e.g. ``result.read("scans")``."""
        if table not in self.tables and table != "failures":
            raise KeyError(f"no table {table!r}; tables written: {', '.join(self.tables)}.")
        return pd.read_parquet(self.out_dir / f"{table}.parquet")

    def __repr__(self) -> str:
        return (
            f"AnalysisResult({self.n_patients} patients, {len(self.failures)} failures, "
            f"tables {', '.join(self.tables)} in {self.out_dir})"
        )


def analyze_patient(
    patient: Patient,
    *,
    stages: Iterable[str] | None = None,
    stage_options: Mapping[str, Mapping[str, object]] | None = None,
    keep_objects: bool = True,
    reemit_warnings: bool = True,
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
    options = dict(stage_options or {})
    unknown = set(options) - {name for name, _ in STAGES}
    if unknown:
        raise ValueError(
            f"stage_options names unknown stage(s) {sorted(unknown)}; stages: "
            f"{[name for name, _ in STAGES]}."
        )
    result = PatientResult(patient_id=patient.patient_id)
    with _pinned_threads(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for name, stage in selected:
            try:
                stage(patient, result, **dict(options.get(name, {})))
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
    result.warnings = _dedupe(
        (w.category.__name__, str(w.message))
        for w in caught
        if issubclass(w.category, Warning)
    )
    if not keep_objects:
        result.objects = {}
    if reemit_warnings:
        _reemit(result)
    return result


def _reemit(result: PatientResult) -> None:
    for category, message in result.warnings:
        warnings.warn(
            f"patient {result.patient_id}: {message}", _warning_class(category), stacklevel=3
        )


def analyze(
    cohort: Cohort,
    out_dir: str | Path,
    *,
    workers: int | None = None,
    executor: str = "local",
    dask_address: str | object | None = None,
    stages: Iterable[str] | None = None,
    stage_options: Mapping[str, Mapping[str, object]] | None = None,
    progress: bool = True,
) -> AnalysisResult:
    """Analyse every patient of a cohort and write one Parquet table per kind.

    Parameters
    ----------
    cohort
        From :func:`metevo.open_cohort`.
    out_dir
        Output folder; ``<table>.parquet`` files and ``failures.parquet`` are written there.
    workers
        Local processes (default: the number of CPUs, at most the number of patients); ``1`` runs
        in this process. With Dask and no address, the size of the ``LocalCluster``.
    executor
        ``"local"`` (process pool) or ``"dask"``.
    dask_address
        A scheduler address (``"tcp://host:8786"``) or a ``distributed.Client``; implies
        ``executor="dask"``.
    stages, stage_options
        As in :func:`analyze_patient`.
    progress
        Show a tqdm progress bar.

    Returns
    -------
    AnalysisResult

    Examples
    --------
    >>> import metevo
    >>> demo = metevo.datasets.load_demo_cohort()                        # doctest: +SKIP
    >>> cohort = metevo.open_cohort(demo.manifest, clinical=demo.clinical)  # doctest: +SKIP
    >>> res = metevo.analyze(cohort, "out", workers=2)                   # doctest: +SKIP
    >>> res.read("scans").head()                                        # doctest: +SKIP
    """
    if dask_address is not None:
        executor = "dask"
    if executor not in ("local", "dask"):
        raise ValueError(f"executor must be 'local' or 'dask'; got {executor!r}.")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out / _SHARDS, ignore_errors=True)
    stage_names = [name for name, _ in _select_stages(stages)]
    patients = list(cohort)
    kwargs = {"stages": stage_names, "stage_options": dict(stage_options or {})}
    if executor == "dask":
        results = _run_dask(patients, kwargs, workers, dask_address, progress)
    else:
        results = _run_local(patients, kwargs, workers, progress)

    failures = [cohort.failures()]
    for res in results:
        for table, frame in res.tables.items():
            shard = out / _SHARDS / table / f"{res.patient_id}.parquet"
            shard.parent.mkdir(parents=True, exist_ok=True)
            _to_parquet(frame, shard, table)
        if res.failures:
            failures.append(pd.DataFrame(res.failures))
        _reemit(res)
    written = _gather(out)
    fail = pd.concat([f for f in failures if len(f)], ignore_index=True) if any(
        len(f) for f in failures
    ) else cohort.failures()
    fail = fail.sort_values([Failures.PATIENT_ID, Failures.STAGE], kind="stable").reset_index(drop=True)
    _to_parquet(fail, out / "failures.parquet", "failures")
    return AnalysisResult(out_dir=out, tables=tuple(written), failures=fail, n_patients=len(patients))


# --------------------------------------------------------------------------- executors


def _run_one(patient: Patient, stages: list[str], stage_options: dict) -> PatientResult:
    return analyze_patient(
        patient,
        stages=stages,
        stage_options=stage_options,
        keep_objects=False,
        reemit_warnings=False,
    )


def _progress(total: int, enabled: bool, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not enabled, desc=desc, unit="patient")


def _run_local(
    patients: list[Patient], kwargs: dict, workers: int | None, progress: bool
) -> list[PatientResult]:
    n = len(patients)
    workers = max(1, min(workers or os.cpu_count() or 1, n or 1))
    results: list[PatientResult] = []
    bar = _progress(n, progress, "metevo analyze")
    if workers == 1:
        for patient in patients:
            results.append(_run_one(patient, **kwargs))
            bar.update()
        bar.close()
        return results
    from concurrent.futures import as_completed

    # loky (shipped with joblib) starts clean worker processes without re-running the caller's
    # main module, so scripts and notebooks need no ``if __name__ == "__main__"`` guard.
    from joblib.externals.loky import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker) as pool:
        futures = {pool.submit(_run_one, p, **kwargs): p.patient_id for p in patients}
        for fut in as_completed(futures):
            results.append(_collect(fut, futures[fut]))
            bar.update()
    bar.close()
    return results


def _run_dask(
    patients: list[Patient],
    kwargs: dict,
    workers: int | None,
    address: str | object | None,
    progress: bool,
) -> list[PatientResult]:
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError as exc:  # pragma: no cover - dask is a core dependency
        from metevo.exceptions import MissingDependencyError

        raise MissingDependencyError(
            "the Dask executor needs dask[distributed]: pip install 'dask[distributed]'."
        ) from exc
    owned: list = []
    if address is None:
        cluster = LocalCluster(
            n_workers=max(1, workers or 2), threads_per_worker=1, processes=True,
            dashboard_address=None,
        )
        client = Client(cluster)
        owned = [client, cluster]
    elif isinstance(address, str):
        client = Client(address)
        owned = [client]
    else:
        client = address
    try:
        client.run(_init_worker)
        futures = client.map(_run_one, patients, pure=False, **kwargs)
        ids = {f.key: p.patient_id for f, p in zip(futures, patients, strict=True)}
        bar = _progress(len(patients), progress, "metevo analyze (dask)")
        results = []
        for fut in as_completed(futures):
            results.append(_collect(fut, ids[fut.key]))
            bar.update()
        bar.close()
        return results
    finally:
        for obj in owned:
            obj.close()


def _collect(future, patient_id: str) -> PatientResult:
    """The result of a future, or a failure record when the worker itself broke."""
    try:
        return future.result()
    except Exception as exc:  # a crashed worker, an unpicklable result...
        return PatientResult(
            patient_id=patient_id,
            failures=[
                {
                    Failures.PATIENT_ID: patient_id,
                    Failures.STAGE: "executor",
                    Failures.ERROR_TYPE: type(exc).__name__,
                    Failures.ERROR: _error_text(exc),
                }
            ],
        )


def _init_worker() -> None:
    # numba's pool size is pinned per call by _pinned_threads: changing NUMBA_NUM_THREADS after
    # numba's threads started raises, so only the BLAS/OpenMP variables are set here.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"


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



def _to_parquet(frame: pd.DataFrame, path: Path, table: str) -> None:
    from metevo.dictionary import coerce_table

    coerce_table(frame, table).to_parquet(path, index=False)


def _gather(out: Path) -> list[str]:
    root = out / _SHARDS
    written = []
    if not root.exists():
        return written
    for table_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        shards = sorted(table_dir.glob("*.parquet"))
        frames = [pd.read_parquet(s) for s in shards]
        frames = [f for f in frames if len(f.columns)]
        frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        if Failures.PATIENT_ID in frame.columns:
            frame = frame.sort_values(Failures.PATIENT_ID, kind="stable").reset_index(drop=True)
        _to_parquet(frame, out / f"{table_dir.name}.parquet", table_dir.name)
        written.append(table_dir.name)
    return written


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
    builtin = getattr(__builtins__, name, None) if not isinstance(__builtins__, dict) else __builtins__.get(name)
    if isinstance(builtin, type) and issubclass(builtin, Warning):
        return builtin
    return UserWarning
