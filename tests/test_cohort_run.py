"""The cohort runner: crash and timeout isolation, resume after SIGKILL, exit status (issue 11)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import make_mini_cohort
from test_reproducibility import SRC, analyze_args, assert_same_tables, metevo_cli, read_tables

FAULT_HOOK = Path(__file__).resolve().parent / "fault_hook"


def _fault_env(spec: str) -> dict:
    path = os.pathsep.join([str(FAULT_HOOK), str(SRC), os.environ.get("PYTHONPATH", "")])
    return {"METEVO_TEST_FAULTS": spec, "PYTHONPATH": path.rstrip(os.pathsep)}


def test_crashes_and_timeout_cost_only_their_patient(tmp_path, monkeypatch):
    from metevo import analyze, open_cohort

    c = make_mini_cohort(tmp_path / "cohort", n_patients=6, n_visits=2)
    faults = "P001:scans:segfault,P002:scans:abort,P003:graph:oomkill,P004:scans:sleep,P005:scans:raise"
    for key, value in _fault_env(faults).items():
        monkeypatch.setenv(key, value)
    cohort = open_cohort(c["manifest"], clinical=c["clinical"], events=c["events"])
    res = analyze(cohort, tmp_path / "out", workers=2, stages=["graph"], patient_timeout=20,
                  progress=False)
    fails = res.failures.set_index("patient_id")
    assert list(fails.index) == ["P001", "P002", "P003", "P004", "P005"]
    assert fails.stage.to_dict() == {"P001": "scans", "P002": "scans", "P003": "graph",
                                     "P004": "scans", "P005": "scans"}
    assert fails.error_type.to_dict() == {
        "P001": "WorkerCrashed", "P002": "WorkerCrashed", "P003": "WorkerCrashed",
        "P004": "PatientTimeout", "P005": "RuntimeError"}
    assert "killed by a segmentation fault (SIGSEGV) during stage 'scans'" in fails.error["P001"]
    assert "Fatal Python error: Segmentation fault" in fails.error["P001"]
    assert "killed by abort() (SIGABRT)" in fails.error["P002"]
    assert "SIGKILL (the kernel's out-of-memory killer" in fails.error["P003"]
    assert "longer than the patient timeout (20 s) during stage 'scans'" in fails.error["P004"]
    assert fails.error["P005"] == "injected failure"
    # the sixth patient is complete, and its tables equal an undisturbed run's
    scans = res.read("scans")
    assert set(scans.patient_id) == {"P006"}  # P003's scans died with its process; P005 kept none
    assert set(res.read("registrations").patient_id) == {"P006"}
    assert res.summary().startswith("1 of 6 patient(s) reached the tables; 5 failed")
    monkeypatch.delenv("METEVO_TEST_FAULTS")
    ref = analyze(open_cohort(c["manifest"], clinical=c["clinical"], events=c["events"]),
                  tmp_path / "ref", workers=1, stages=["graph"], progress=False, isolate=False)
    for table in ("scans", "lesions", "registrations"):
        expected = ref.read(table)
        pd.testing.assert_frame_equal(
            res.read(table), expected[expected.patient_id == "P006"].reset_index(drop=True),
            check_exact=True,
        )
    assert ref.failures.empty


def _shard_stats(out: Path) -> dict[str, tuple[int, int]]:
    stats = {}
    for meta in (out / "_shards").glob("*/shard.json"):
        for f in meta.parent.iterdir():
            st = f.stat()
            stats[f"{meta.parent.name}/{f.name}"] = (st.st_ino, st.st_mtime_ns)
    return stats


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (Linux /proc; empty elsewhere)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_resume_after_sigkill_recomputes_nothing_finished(tmp_path):
    c = make_mini_cohort(tmp_path / "cohort", n_patients=3, n_visits=3)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "metevo.cli", *analyze_args(c, out, "--workers", "1")],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while not list((out / "_shards").glob("*/shard.json")) and time.monotonic() < deadline:
        assert proc.poll() is None, "the run finished before it could be killed"
        time.sleep(0.02)
    workers = _children(proc.pid)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in workers)  # the patient worker died with its run
    first = _shard_stats(out)
    finished = sorted({k.split("/")[0] for k in first})
    assert finished and len(finished) < 3
    assert not (out / "scans.parquet").exists()  # killed before gathering

    again = metevo_cli(*analyze_args(c, out, "--workers", "2"))
    assert again.returncode == 0, again.stderr
    assert f"3 of 3 patient(s) reached the tables ({len(finished)} from the shards" in again.stdout
    after = _shard_stats(out)
    for key, stat in first.items():  # same inode, same mtime: not rewritten
        assert after[key] == stat, key
    # an uninterrupted run (in this process) writes exactly the same tables
    from metevo import analyze, open_cohort

    cohort = open_cohort(c["manifest"], clinical=c["clinical"], events=c["events"])
    analyze(cohort, tmp_path / "fresh", workers=1, isolate=False, progress=False)
    assert_same_tables(read_tables(tmp_path / "fresh"), read_tables(out))


def test_changed_input_or_force_recomputes(mini_cohort, tmp_path):
    from metevo import analyze, open_cohort

    def run(**kw):
        cohort = open_cohort(mini_cohort["manifest"])
        return analyze(cohort, tmp_path / "out", stages=["scans"], workers=1, isolate=False,
                       progress=False, **kw)

    assert run().reused == ()
    assert run().reused == ("P001", "P002", "P003")
    os.utime(mini_cohort["root"] / "P002" / "V1" / "ct.nii.gz")  # a new mtime: P002 again
    assert run().reused == ("P001", "P003")
    assert run(force=True).reused == ()
    other = analyze(open_cohort(mini_cohort["manifest"]), tmp_path / "out", stages=["graph"],
                    workers=1, isolate=False, progress=False)
    assert other.reused == ()  # other stages, other fingerprint


def test_exit_status_and_summary(tmp_path):
    c = make_mini_cohort(tmp_path / "cohort", n_patients=2, n_visits=2)
    bad = c["root"] / "P002" / "V0" / "ct.nii.gz"
    bad.write_bytes(bad.read_bytes()[:300])
    done = metevo_cli(*analyze_args(c, tmp_path / "out", "--workers", "1"))
    assert done.returncode == 1
    assert "1 of 2 patient(s) reached the tables; 1 failed (stage scans)" in done.stdout
    assert "P002 [scans] ImageReadError: patient P002, timepoint V0 (image)" in done.stderr
    allowed = metevo_cli(*analyze_args(c, tmp_path / "out", "--workers", "1", "--allow-failures"))
    assert allowed.returncode == 0, allowed.stderr
    assert "(1 from the shards of an earlier run)" in allowed.stdout  # P001 reused, P002 retried


def test_unreadable_follow_up_costs_one_visit(tmp_path):
    from metevo import analyze, open_cohort

    c = make_mini_cohort(tmp_path / "cohort", n_patients=3, n_visits=4)
    clean = analyze(open_cohort(c["manifest"], clinical=c["clinical"], events=c["events"]),
                    tmp_path / "clean", workers=1, stages=["recist"], isolate=False,
                    progress=False)
    bad = c["root"] / "P002" / "V2" / "ct.nii.gz"
    bad.write_bytes(bad.read_bytes()[:-200])  # a truncated follow-up CT
    base = c["root"] / "P003" / "V0" / "ct.nii.gz"
    base.write_bytes(base.read_bytes()[:-200])  # a truncated baseline CT
    cohort = open_cohort(c["manifest"], clinical=c["clinical"], events=c["events"])
    res = analyze(cohort, tmp_path / "out", workers=1, stages=["recist"], isolate=False,
                  progress=False)

    fails = res.failures
    assert fails[["patient_id", "timepoint", "stage", "error_type"]].astype(object).where(
        fails[["patient_id", "timepoint", "stage", "error_type"]].notna(), None
    ).values.tolist() == [["P002", "V2", "scans", "ImageReadError"],
                          ["P003", None, "scans", "ImageReadError"]]
    assert fails.file[0] == str(bad)
    assert "patient P002, timepoint V2 (image)" in fails.error[0] and "truncated" in fails.error[0]
    assert "patient P003, timepoint V0 (image)" in fails.error[1]
    assert res.failed_patients == ["P003"]
    assert "2 of 3 patient(s) reached the tables; 1 unreadable follow-up scan(s) left out " \
           "(P002 V2); 1 failed (stage scans)" in res.summary()

    scans = res.read("scans").set_index(["patient_id", "timepoint"])
    assert scans.loc[("P002", "V2"), "qc_flag"] == "excluded"
    assert scans.loc[("P002", "V2"), "qc_note"].startswith("scan not analysed (visit not evaluable)")
    assert (scans.drop(("P002", "V2")).qc_flag == "ok").all()
    assert "P003" not in scans.index.get_level_values(0)
    # the other visits of P002 are analysed: lesions at V0, V1, V3, matched across the gap
    lesions = res.read("lesions")
    assert sorted(lesions[lesions.patient_id == "P002"].timepoint.unique()) == ["V0", "V1", "V3"]
    edges = res.read("lesion_edges")
    pairs = edges[edges.patient_id == "P002"][["timepoint_from", "timepoint_to"]]
    assert pairs.values.tolist() == [["V0", "V1"], ["V1", "V3"]]
    recist = res.read("recist").set_index(["patient_id", "timepoint"])
    assert recist.loc[("P002", "V2"), "overall_response"] == "NE"
    assert recist.loc[("P002", "V2"), "not_evaluable_reason"] == "scan_unreadable"
    ref = clean.read("recist").set_index(["patient_id", "timepoint"])
    for tp in ("V1", "V3"):  # the readable visits keep their responses
        assert recist.loc[("P002", tp), "overall_response"] == ref.loc[("P002", tp), "overall_response"]
    # P001 is untouched by either fault
    for table in ("scans", "lesions", "recist"):
        got, want = res.read(table), clean.read(table)
        pd.testing.assert_frame_equal(
            got[got.patient_id == "P001"].reset_index(drop=True),
            want[want.patient_id == "P001"].reset_index(drop=True), check_exact=True,
        )
    from metevo.dictionary import validate_table

    validate_table(res.read("scans"), "scans")
    validate_table(res.failures, "failures")


def test_warnings_name_the_patient_once():
    from metevo.exceptions import DataQualityWarning, RegistrationWarning
    from metevo.runner.pipeline import reemit_warnings

    with pytest.warns(Warning) as caught:
        reemit_warnings("REAL03", [
            ("RegistrationWarning", "patient REAL03 V1->V2: registration failed quality control"),
            ("DataQualityWarning", "empty lesion mask at V3"),
        ])
    assert [str(w.message) for w in caught] == [
        "patient REAL03 V1->V2: registration failed quality control",
        "patient REAL03: empty lesion mask at V3",
    ]
    assert [w.category for w in caught] == [RegistrationWarning, DataQualityWarning]


@pytest.mark.slow
def test_dask_worker_survives_a_crashing_patient(tmp_path, monkeypatch):
    from metevo import analyze, open_cohort

    c = make_mini_cohort(tmp_path / "cohort", n_patients=3, n_visits=2)
    for key, value in _fault_env("P001:scans:segfault").items():
        monkeypatch.setenv(key, value)
    cohort = open_cohort(c["manifest"])
    res = analyze(cohort, tmp_path / "out", executor="dask", workers=2, stages=["scans"],
                  progress=False)
    assert res.failures.patient_id.tolist() == ["P001"]
    assert res.failures.error_type.tolist() == ["WorkerCrashed"]
    assert "SIGSEGV" in res.failures.error[0]
    assert sorted(res.read("scans").patient_id.unique()) == ["P002", "P003"]
    assert sorted(p.name for p in (tmp_path / "out" / "_shards").iterdir()) == ["P001", "P002", "P003"]
