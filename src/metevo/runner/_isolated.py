"""One patient, one process: crash and timeout isolation for cohort runs.

:func:`run_isolated` starts ``python -m metevo.runner._isolated JOB`` for a :class:`PatientJob`. The
child runs every stage on the patient, writes the patient's shard itself (see
:mod:`metevo.runner._shards`) and reports its failures and warnings in a small JSON file, so the parent
never holds a patient's tables. When the child dies (segmentation fault, ``abort()``, the kernel's
out-of-memory SIGKILL) or runs past ``timeout`` seconds (then it is killed), the parent records a
failure naming the stage that was running and the reason, and the other patients go on.

A fresh process per patient also means no state (thread pools, caches, ITK's global settings)
carries over from one patient to the next. Its cost is one interpreter start and the imports
(about 1.5 s of CPU, measured in ``docs/reproducibility.md``), small against a full-size
patient's minutes. The child's peak resident memory (``ru_maxrss``) is recorded for each patient.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from metevo.columns import Failures

__all__ = ["JobOutcome", "PatientJob", "run_in_process", "run_isolated"]

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
_POLL_S = 0.05
_SIGNALS = {
    signal.SIGSEGV: "a segmentation fault (SIGSEGV)",
    signal.SIGABRT: "abort() (SIGABRT)",
    signal.SIGKILL: "SIGKILL (the kernel's out-of-memory killer sends it when memory runs out)",
    signal.SIGBUS: "a bus error (SIGBUS)",
    signal.SIGFPE: "a floating-point exception (SIGFPE)",
    signal.SIGILL: "an illegal instruction (SIGILL)",
    signal.SIGTERM: "SIGTERM",
}


@dataclass(frozen=True)
class PatientJob:
    """What a worker needs to analyse one patient and store its shard."""

    patient: object  # metevo.cohort.Patient (picklable: paths and options, no pixels)
    stages: tuple[str, ...]
    stage_options: Mapping[str, Mapping[str, object]]
    fingerprint: str
    out_dir: str  # analysis folder whose ``_shards`` receives the patient's shard

    @property
    def patient_id(self) -> str:
        return self.patient.patient_id


@dataclass
class JobOutcome:
    """How one patient's run ended (its tables are in its shard)."""

    patient_id: str
    failures: list[dict] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)
    complete: bool = False
    #: peak resident memory of the patient's process in MiB (``None`` when not measurable)
    peak_rss_mib: float | None = None


def run_in_process(job: PatientJob, *, on_stage=None) -> JobOutcome:
    """Analyse the patient in this process and commit its shard (no crash isolation)."""
    from metevo.runner._shards import ShardStore
    from metevo.runner.pipeline import analyze_patient

    result = analyze_patient(
        job.patient,
        stages=list(job.stages),
        stage_options=job.stage_options,
        keep_objects=False,
        reemit_warnings=False,
        on_stage=on_stage,
    )
    complete = result.ok
    failures = result.failures + result.excluded
    ShardStore(job.out_dir).commit(
        job.patient_id,
        fingerprint=job.fingerprint,
        tables=result.tables,
        failures=failures,
        warnings=result.warnings,
        complete=complete,
    )
    return JobOutcome(job.patient_id, failures, result.warnings, complete)


def run_isolated(job: PatientJob, *, timeout: float | None = None) -> JobOutcome:
    """Analyse the patient in a fresh Python process; record a crash or a timeout as a failure."""
    with tempfile.TemporaryDirectory(prefix="metevo-job-") as tmp:
        work = Path(tmp)
        (work / "job.pkl").write_bytes(pickle.dumps(job))
        env = {**os.environ, **{v: "1" for v in _THREAD_VARS}}
        with open(work / "stderr.txt", "wb") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "metevo.runner._isolated", str(work / "job.pkl"),
                 str(os.getpid())],
                stdin=subprocess.DEVNULL, stdout=err, stderr=err, env=env,
            )
            status, rss, timed_out = _wait(proc, timeout)
        outcome_file = work / "outcome.json"
        if status == 0 and outcome_file.exists():
            data = json.loads(outcome_file.read_text())
            return JobOutcome(
                job.patient_id,
                data["failures"],
                [tuple(w) for w in data["warnings"]],
                data["complete"],
                rss,
            )
        stage_file = work / "stage"
        stage = stage_file.read_text().strip() if stage_file.exists() else "executor"
        failure = _process_failure(job.patient_id, stage, status, timed_out, timeout, work)
    from metevo.runner._shards import ShardStore

    ShardStore(job.out_dir).commit(
        job.patient_id, fingerprint=job.fingerprint, tables={}, failures=[failure],
        warnings=[], complete=False,
    )
    return JobOutcome(job.patient_id, [failure], [], False, rss)


def _wait(proc: subprocess.Popen, timeout: float | None) -> tuple[int, float | None, bool]:
    """Wait for the child: ``(exit status, peak RSS in MiB, timed out)``; kill it at the timeout."""
    deadline = None if timeout is None else time.monotonic() + timeout
    timed_out = False
    if not hasattr(os, "wait4"):  # pragma: no cover - Windows: no rusage
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            timed_out = True
        return proc.returncode, None, timed_out
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if deadline is not None and time.monotonic() > deadline:
            proc.kill()
            timed_out = True
            pid, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(_POLL_S)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_maxrss / 1024.0, timed_out


def _process_failure(
    patient_id: str, stage: str, status: int, timed_out: bool, timeout: float | None, work: Path
) -> dict:
    if timed_out:
        error_type = "PatientTimeout"
        error = (
            f"patient {patient_id} ran longer than the patient timeout ({timeout:g} s) during "
            f"stage {stage!r} and was stopped; raise --patient-timeout if such patients are "
            "expected to take that long."
        )
    elif status < 0:
        error_type = "WorkerCrashed"
        try:
            what = _SIGNALS.get(signal.Signals(-status), signal.Signals(-status).name)
        except ValueError:
            what = f"signal {-status}"
        error = (
            f"the process analysing patient {patient_id} was killed by {what} during stage "
            f"{stage!r}{_stderr_tail(work)}."
        )
    else:
        error_type = "WorkerCrashed"
        error = (
            f"the process analysing patient {patient_id} exited with status {status} during "
            f"stage {stage!r}{_stderr_tail(work)}."
        )
    return {
        Failures.PATIENT_ID: patient_id,
        Failures.STAGE: stage,
        Failures.ERROR_TYPE: error_type,
        Failures.ERROR: error,
    }


def _stderr_tail(work: Path) -> str:
    try:
        lines = [ln for ln in (work / "stderr.txt").read_text(errors="replace").splitlines() if ln]
    except OSError:
        return ""
    fatal = [ln for ln in lines if ln.startswith(("Fatal Python error", "MemoryError"))]
    last = (fatal or lines[-1:] or [""])[0].strip()
    return f" ({last[:300]})" if last else ""


def _die_with_parent(parent_pid: int) -> None:
    """End this process when the run that started it is killed (Linux), so no orphan goes on."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):  # pragma: no cover - no prctl: orphans finish their patient
            return
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def _child_main(job_file: str, parent_pid: int) -> int:
    import faulthandler

    _die_with_parent(parent_pid)
    faulthandler.enable()  # a segfault prints where it happened to stderr
    work = Path(job_file).parent
    job: PatientJob = pickle.loads(Path(job_file).read_bytes())
    stage_file = work / "stage"
    outcome = run_in_process(job, on_stage=stage_file.write_text)
    (work / "outcome.json").write_text(
        json.dumps(
            {"failures": outcome.failures, "warnings": outcome.warnings,
             "complete": outcome.complete},
            default=str,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1], int(sys.argv[2])))
