"""The cohort run: fingerprint each patient, skip the finished ones, run the rest, gather.

:func:`analyze` (re-exported as :func:`metevo.analyze`) is resumable and crash-proof:

- each patient's tables are written as a shard the moment the patient finishes (atomically, see
  :mod:`metevo.runner._shards`), so a run killed at any point loses at most the patients in flight;
- a rerun into the same folder skips every patient whose shard fingerprint matches (same input
  files, options, stages and metevo version) and completed; ``force=True`` recomputes all;
- by default each patient runs in its own process (:mod:`metevo.runner._isolated`): a segmentation
  fault, ``abort()``, an out-of-memory kill or ``patient_timeout`` costs that patient only, and
  is recorded in ``failures.parquet`` with the stage and the reason;
- the parent holds no patient's tables: workers write their own shards (with Dask, each result
  is written as soon as it arrives and dropped), and the final tables are gathered one at a time.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from metevo.cohort import record_inputs
from metevo.columns import Failures
from metevo.response._recist_stage import cohort_assessment_interval
from metevo.runner._isolated import JobOutcome, PatientJob, run_in_process, run_isolated
from metevo.runner._shards import ShardStore, atomic_parquet, patient_fingerprint
from metevo.runner.pipeline import _error_text, _select_stages, check_stage_options, reemit_warnings

__all__ = ["AnalysisResult", "analyze"]


@dataclass(frozen=True)
class AnalysisResult:
    """Where a cohort analysis wrote its tables, and which patients failed."""

    out_dir: Path
    tables: tuple[str, ...]
    failures: pd.DataFrame
    n_patients: int
    #: patients taken from the shards of an earlier run (fingerprint unchanged)
    reused: tuple[str, ...] = ()
    #: peak resident memory (MiB) of each patient's worker process computed in this run
    peak_rss_mib: Mapping[str, float] | None = None

    def read(self, table: str) -> pd.DataFrame:
        """Read one gathered table, e.g. ``result.read("scans")``."""
        if table not in self.tables and table != "failures":
            raise KeyError(f"no table {table!r}; tables written: {', '.join(self.tables)}.")
        return pd.read_parquet(self.out_dir / f"{table}.parquet")

    @property
    def failed_patients(self) -> list[str]:
        """Patients with a failure that cost them the tables of a stage (sorted)."""
        return sorted(self._patient_level()[Failures.PATIENT_ID].unique())

    @property
    def excluded_scans(self) -> pd.DataFrame:
        """The follow-up scans left out as unreadable (their patients were analysed)."""
        if Failures.TIMEPOINT not in self.failures.columns:
            return self.failures.iloc[:0]
        return self.failures[self.failures[Failures.TIMEPOINT].notna()]

    def _patient_level(self) -> pd.DataFrame:
        if Failures.TIMEPOINT not in self.failures.columns:
            return self.failures
        return self.failures[self.failures[Failures.TIMEPOINT].isna()]

    def summary(self) -> str:
        """``"3 of 4 patients reached the tables (1 from earlier shards); 1 failed: ..."``."""
        failed = self.failed_patients
        level = self._patient_level()
        set_aside = int((level[Failures.STAGE] == "validate").sum())
        total = self.n_patients + set_aside
        text = f"{total - len(failed)} of {total} patient(s) reached the tables"
        if self.reused:
            text += f" ({len(self.reused)} from the shards of an earlier run)"
        excluded = self.excluded_scans
        if len(excluded):
            visits = ", ".join(f"{r.patient_id} {r.timepoint}" for r in excluded.itertuples())
            text += f"; {len(excluded)} unreadable follow-up scan(s) left out ({visits})"
        if failed:
            where = sorted(set(level[Failures.STAGE]))
            text += f"; {len(failed)} failed (stage {', '.join(where)})"
        if failed or len(excluded):
            text += f": see {self.out_dir / 'failures.parquet'}"
        return text

    def __repr__(self) -> str:
        return (
            f"AnalysisResult({self.n_patients} patients, {len(self.failures)} failures, "
            f"tables {', '.join(self.tables)} in {self.out_dir})"
        )


def analyze(
    cohort,
    out_dir: str | Path,
    *,
    workers: int | None = None,
    executor: str = "local",
    dask_address: str | object | None = None,
    stages: Iterable[str] | None = None,
    stage_options: Mapping[str, Mapping[str, object]] | None = None,
    progress: bool = True,
    force: bool = False,
    patient_timeout: float | None = None,
    isolate: bool = True,
) -> AnalysisResult:
    """Analyse every patient of a cohort and write one Parquet table per kind.

    Parameters
    ----------
    cohort
        From :func:`metevo.open_cohort`.
    out_dir
        Output folder; ``<table>.parquet`` files and ``failures.parquet`` are written there,
        each patient's shard under ``out_dir/_shards/<patient>/``.
    workers
        Patients analysed at once (default: the number of CPUs, at most the number of
        patients). With Dask and no address, the size of the ``LocalCluster``.
    executor
        ``"local"`` (processes on this machine) or ``"dask"``.
    dask_address
        A scheduler address (``"tcp://host:8786"``) or a ``distributed.Client``; implies
        ``executor="dask"``.
    stages, stage_options
        As in :func:`metevo.analyze_patient`.
    progress
        Show a tqdm progress bar.
    force
        Recompute every patient, even those whose shard from an earlier run into ``out_dir``
        matches their inputs (default: reuse them; see :mod:`metevo.runner._shards` for the fingerprint).
    patient_timeout
        Seconds one patient may take; a patient still running then is stopped and recorded as a
        failure (``PatientTimeout``). Needs ``isolate=True``.
    isolate
        Run each patient in its own process (default), so a crash or a timeout costs only that
        patient. ``False`` runs the patients one after another in this process (for debuggers
        and profilers; a crash then ends the run, and the shards written so far remain).

    Returns
    -------
    AnalysisResult

    Examples
    --------
    >>> import metevo
    >>> demo = metevo.datasets.load_demo_cohort()                        # doctest: +SKIP
    >>> cohort = metevo.open_cohort(demo.manifest, clinical=demo.clinical)  # doctest: +SKIP
    >>> res = metevo.analyze(cohort, "out", workers=2)                   # doctest: +SKIP
    >>> print(res.summary())                                            # doctest: +SKIP
    """

    if dask_address is not None:
        executor = "dask"
    if executor not in ("local", "dask"):
        raise ValueError(f"executor must be 'local' or 'dask'; got {executor!r}.")
    if patient_timeout is not None and not isolate:
        raise ValueError("patient_timeout needs isolate=True (a patient in this process cannot be stopped).")
    if patient_timeout is not None and not patient_timeout > 0:
        raise ValueError(f"patient_timeout must be a positive number of seconds; got {patient_timeout!r}.")
    options = check_stage_options(stage_options)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    record_inputs(cohort, out)  # manifest + options: `metevo report`/`export-dicom` reopen the cohort
    store = ShardStore(out)
    store.clean_leftovers()
    stage_names = tuple(name for name, _ in _select_stages(stages))
    patients = list(cohort)
    if "recist" in stage_names:  # the protocol interval of the PFS rule, when nothing gives one
        options.setdefault("recist", {}).setdefault(
            "cohort_assessment_interval_days", cohort_assessment_interval(patients)
        )
    jobs, reused = [], []
    for patient in patients:
        fp = patient_fingerprint(patient, stages=stage_names, stage_options=options)
        if not force and store.is_current(patient.patient_id, fp):
            reused.append(patient.patient_id)
        else:
            jobs.append(PatientJob(patient, stage_names, options, fp, str(out)))

    rss: dict[str, float] = {}
    bar = _progress(len(patients), progress, "metevo analyze")
    bar.update(len(reused))

    def done(outcome: JobOutcome) -> None:
        if outcome.peak_rss_mib is not None:
            rss[outcome.patient_id] = outcome.peak_rss_mib
        reemit_warnings(outcome.patient_id, outcome.warnings)
        bar.update()

    if executor == "dask":
        _run_dask(jobs, workers, dask_address, patient_timeout, isolate, store, done)
    else:
        _run_local(jobs, workers, patient_timeout, isolate, done)
    bar.close()

    ids = [p.patient_id for p in patients]
    written = store.gather(ids)
    records = store.failures(ids)
    frames = [f for f in (cohort.failures(), pd.DataFrame(records)) if len(f)]
    fail = pd.concat(frames, ignore_index=True) if frames else cohort.failures()
    for col in (Failures.TIMEPOINT, Failures.FILE):
        if col not in fail.columns:
            fail[col] = None
    columns = [Failures.PATIENT_ID, Failures.TIMEPOINT, Failures.FILE, Failures.STAGE,
               Failures.ERROR_TYPE, Failures.ERROR]
    fail = fail[columns].sort_values(
        [Failures.PATIENT_ID, Failures.STAGE, Failures.TIMEPOINT], kind="stable", na_position="first"
    ).reset_index(drop=True)
    from metevo.dictionary import coerce_table

    atomic_parquet(coerce_table(fail, "failures"), out / "failures.parquet")
    return AnalysisResult(
        out_dir=out, tables=tuple(written), failures=fail,
        n_patients=len(patients), reused=tuple(reused),
        peak_rss_mib=rss,
    )


# --------------------------------------------------------------------------- executors


def _progress(total: int, enabled: bool, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not enabled, desc=desc, unit="patient")


def _run_local(
    jobs: list[PatientJob],
    workers: int | None,
    timeout: float | None,
    isolate: bool,
    done: Callable[[JobOutcome], None],
) -> None:
    if not isolate:
        for job in jobs:
            done(run_in_process(job))
        return
    if not jobs:
        return
    from concurrent.futures import ThreadPoolExecutor, as_completed

    n = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
    # each thread only waits on its patient's process: the work happens in the children
    with ThreadPoolExecutor(max_workers=n, thread_name_prefix="metevo-patient") as pool:
        futures = [pool.submit(run_isolated, job, timeout=timeout) for job in jobs]
        for fut in as_completed(futures):
            done(fut.result())


def _dask_task(job: PatientJob, timeout: float | None, isolate: bool):
    """On a Dask worker: run the patient into a local scratch shard, return outcome + tables."""
    import dataclasses
    import shutil
    import tempfile

    scratch = tempfile.mkdtemp(prefix="metevo-dask-")
    try:
        local = dataclasses.replace(job, out_dir=scratch)
        outcome = run_isolated(local, timeout=timeout) if isolate else run_in_process(local)
        return outcome, ShardStore(scratch).read_tables(job.patient_id)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _run_dask(
    jobs: list[PatientJob],
    workers: int | None,
    address: str | object | None,
    timeout: float | None,
    isolate: bool,
    store: ShardStore,
    done: Callable[[JobOutcome], None],
) -> None:
    if not jobs:
        return
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError as exc:  # pragma: no cover - dask is a core dependency
        from metevo.exceptions import MissingDependencyError

        raise MissingDependencyError(
            "the Dask executor needs dask[distributed]: pip install 'dask[distributed]'."
        ) from exc
    owned: list = []  # closed in this order: the client, then the cluster
    environ = dict(os.environ) if address is None else None
    try:
        if address is None:
            cluster = LocalCluster(
                n_workers=max(1, workers or 2), threads_per_worker=1, processes=True,
                dashboard_address=None,
            )
            owned.append(cluster)
            client = Client(cluster)
            owned.insert(0, client)
        elif isinstance(address, str):
            client = Client(address)
            owned.append(client)
        else:
            client = address
        futures = client.map(_dask_task, jobs, timeout=timeout, isolate=isolate, pure=False)
        by_key = {f.key: job for f, job in zip(futures, jobs, strict=True)}
        for fut in as_completed(futures):
            job = by_key[fut.key]
            try:
                outcome, tables = fut.result()
            except Exception as exc:  # the Dask worker itself was lost
                outcome, tables = _lost(job, exc), {}
            store.commit(
                job.patient_id, fingerprint=job.fingerprint, tables=tables,
                failures=outcome.failures, warnings=outcome.warnings, complete=outcome.complete,
            )
            fut.release()
            del tables
            done(outcome)
    finally:
        for obj in owned:
            obj.close()
        if environ is not None:
            _restore_environ(environ)


def _restore_environ(saved: dict[str, str]) -> None:
    """Put ``os.environ`` back: a ``LocalCluster`` writes ``MALLOC_TRIM_THRESHOLD_``, the
    ``*_NUM_THREADS`` variables and ``PYTHONHASHSEED`` into this process's environment for good,
    and every process started later inherited them (issue 18: the first one fixes glibc's malloc
    thresholds in the patient processes; the registration QC then read different freed memory)."""
    for key in set(os.environ) - set(saved):
        del os.environ[key]
    os.environ.update({k: v for k, v in saved.items() if os.environ.get(k) != v})


def _lost(job: PatientJob, exc: BaseException) -> JobOutcome:
    failure = {
        Failures.PATIENT_ID: job.patient_id,
        Failures.STAGE: "executor",
        Failures.ERROR_TYPE: type(exc).__name__,
        Failures.ERROR: _error_text(exc),
    }
    return JobOutcome(job.patient_id, [failure], [], False)
