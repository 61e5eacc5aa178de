"""Same inputs, same options, same version -> identical tables (issue 11).

Runs are separate ``metevo analyze`` processes, so state that differs between processes
(string hash seeds, ITK's wall-clock sampling seed, thread pools) cannot hide behind a shared
interpreter. Tables are compared exactly (``check_exact=True``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pandas as pd
import pytest

SRC = Path(__file__).resolve().parents[1] / "src"


def metevo_cli(*args: str, env: dict | None = None, **kwargs) -> subprocess.CompletedProcess:
    """Run ``python -m metevo.cli ARGS`` in a fresh process with this checkout first on the path."""
    path = os.pathsep.join(p for p in (str(SRC), os.environ.get("PYTHONPATH", "")) if p)
    full = {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "metevo.cli", *args], env=full, capture_output=True, text=True,
        **kwargs,
    )


def analyze_args(cohort: dict, out: Path, *extra: str) -> list[str]:
    return [
        "analyze", str(cohort["manifest"]), "--clinical", str(cohort["clinical"]),
        "--events", str(cohort["events"]), "--out", str(out), "--no-progress", *extra,
    ]


def read_tables(out: Path) -> dict[str, pd.DataFrame]:
    return {p.stem: pd.read_parquet(p) for p in sorted(Path(out).glob("*.parquet"))}


def assert_same_tables(a: dict[str, pd.DataFrame], b: dict[str, pd.DataFrame]) -> None:
    assert sorted(a) == sorted(b)
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name], check_exact=True, obj=f"table {name}")


@pytest.fixture(scope="module")
def two_patient_cohort(tmp_path_factory) -> dict:
    """Two synthetic patients (4 and 5 visits) whose registrations move: the sampling seed matters."""
    from metevo.datasets import make_synthetic_cohort

    c = make_synthetic_cohort(tmp_path_factory.mktemp("syn2"), n_patients=2, seed=3)
    return {"manifest": c.manifest, "clinical": c.clinical, "events": c.events, "root": c.root}


@pytest.fixture(scope="module")
def reference_run(two_patient_cohort, tmp_path_factory) -> dict[str, pd.DataFrame]:
    """The cohort analysed once by ``metevo analyze --workers 1`` in its own process."""
    out = tmp_path_factory.mktemp("reference")
    done = metevo_cli(*analyze_args(two_patient_cohort, out, "--workers", "1"),
                      env={"PYTHONHASHSEED": "1"})
    assert done.returncode == 0, done.stderr
    return read_tables(out)


def test_two_processes_and_worker_counts_give_identical_tables(
    two_patient_cohort, reference_run, tmp_path
):
    # another process, another string-hash seed, two workers: every table exactly the same
    done = metevo_cli(*analyze_args(two_patient_cohort, tmp_path / "again", "--workers", "2"),
                      env={"PYTHONHASHSEED": "2"})
    assert done.returncode == 0, done.stderr
    assert {"registrations", "lesion_edges", "recist", "radiomics", "trajectories"} <= set(
        reference_run
    )
    regs = reference_run["registrations"]
    assert len(regs) == 7 and (regs.iterations > 0).all()  # 3 + 4 follow-ups, each optimised
    assert_same_tables(reference_run, read_tables(tmp_path / "again"))


@pytest.mark.slow  # the default suite compares local and Dask on the mini cohort (test_pipeline)
def test_dask_gives_the_local_tables_exactly(two_patient_cohort, reference_run, tmp_path):
    from metevo import analyze, open_cohort

    c = two_patient_cohort
    cohort = open_cohort(c["manifest"], clinical=c["clinical"], events=c["events"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the stages' warnings are the stages' tests' business
        res = analyze(cohort, tmp_path / "dask", executor="dask", workers=2, stages=["graph"],
                      progress=False)
    got = read_tables(res.out_dir)
    assert {"scans", "lesions", "lesion_edges", "registrations", "failures"} == set(got)
    # later stages add columns to some tables (e.g. lesions): compare the graph stage's columns
    assert_same_tables({k: reference_run[k][list(got[k].columns)] for k in got}, got)
