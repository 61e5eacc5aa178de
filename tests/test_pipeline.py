from __future__ import annotations

import os

import pandas as pd
import pytest

from metevo import analyze, analyze_patient, open_cohort
from metevo.dictionary import validate_table
from metevo.runner import STAGES


def _tables(out):
    return {p.stem: pd.read_parquet(p) for p in sorted(out.glob("*.parquet"))}


def test_analyze_scans_and_failures(mini_cohort, tmp_path):
    # corrupt a baseline image: that patient fails at the scans stage, the others complete
    # (an unreadable follow-up costs one visit only: tests/test_cohort_run.py)
    bad = mini_cohort["root"] / "P003" / "V0" / "ct.nii.gz"
    bad.write_bytes(bad.read_bytes()[:200])
    cohort = open_cohort(mini_cohort["manifest"], clinical=mini_cohort["clinical"])
    res = analyze(cohort, tmp_path / "out", workers=1, stages=["scans"], progress=False)
    scans = res.read("scans")
    assert sorted(scans.patient_id.unique()) == ["P001", "P002"]
    for row in scans.itertuples():
        assert row.lesion_voxels == mini_cohort["expected"][(row.patient_id, row.timepoint)]
        assert row.lesion_volume_ml == pytest.approx(row.lesion_voxels * 2 * 2 * 3 / 1000)
        assert row.liver_volume_ml == pytest.approx(8 * 20 * 20 * 12 / 1000)
    assert scans.liver_in_fov.all() and (scans.qc_flag == "ok").all()
    assert scans.is_baseline.sum() == 2
    fails = res.failures
    assert fails.patient_id.tolist() == ["P003"]
    assert fails.stage.tolist() == ["scans"] and fails.error_type.tolist() == ["ImageReadError"]
    assert "patient P003, timepoint V0 (image)" in fails.error[0]
    validate_table(scans, "scans")
    validate_table(pd.read_parquet(tmp_path / "out" / "failures.parquet"), "failures")


def test_set_aside_patients_reach_failures(mini_cohort, tmp_path):
    (mini_cohort["root"] / "P001" / "V2" / "liver.nii.gz").unlink()
    with pytest.warns(Warning, match="set aside"):
        cohort = open_cohort(mini_cohort["manifest"])
    res = analyze(cohort, tmp_path / "o", workers=1, stages=["scans"], progress=False)
    assert res.failures.stage.tolist() == ["validate"]
    assert sorted(res.read("scans").patient_id.unique()) == ["P002", "P003"]


def test_analyze_patient_keeps_objects_and_reports_stage(mini_cohort):
    cohort = open_cohort(mini_cohort["manifest"])
    result = analyze_patient(cohort["P001"], stages=["scans"])
    assert result.ok and len(result.tables["scans"]) == 3
    # the repr is a summary: table shapes, not the tables (issue 16)
    assert repr(result) == (
        f"PatientResult(P001, ok, tables: scans 3x{result.tables['scans'].shape[1]}; objects: none; "
        f"{len(result.warnings)} warning(s))"
    )
    assert "<table" not in result._repr_html_() and "scans 3x" in result._repr_html_()
    result.failures.append({"stage": "graph", "error_type": "GeometryError", "error": "bad <grid>"})
    assert "1 failure(s) in graph" in repr(result)
    assert "bad &lt;grid&gt;" in result._repr_html_()
    with pytest.raises(ValueError, match=r"unknown stage\(s\) \['nope'\]"):
        analyze_patient(cohort["P001"], stages=["nope"])
    with pytest.raises(ValueError, match="stage_options names unknown stage"):
        analyze_patient(cohort["P001"], stage_options={"nope": {}})


@pytest.mark.slow
def test_local_pool_and_dask_give_identical_tables_full_pipeline(tiny_cohort, tmp_path):
    cohort = open_cohort(
        tiny_cohort.manifest, clinical=tiny_cohort.clinical, events=tiny_cohort.events
    )
    a = analyze(cohort, tmp_path / "local", workers=2, progress=False)
    b = analyze(cohort, tmp_path / "dask", executor="dask", workers=2, progress=False)
    ta, tb = _tables(a.out_dir), _tables(b.out_dir)
    assert ta.keys() == tb.keys()
    for name in ta:
        pd.testing.assert_frame_equal(ta[name], tb[name], check_exact=False, rtol=1e-6)


def test_local_pool_and_dask_give_identical_tables(mini_cohort, tmp_path, monkeypatch):
    """... and the Dask run leaves this process's environment as it was (issue 18: a
    LocalCluster wrote MALLOC_TRIM_THRESHOLD_, *_NUM_THREADS and PYTHONHASHSEED into it for good,
    and every patient process started later inherited them)."""
    cohort = open_cohort(
        mini_cohort["manifest"], clinical=mini_cohort["clinical"], events=mini_cohort["events"]
    )
    names = [name for name, _ in STAGES]
    one = analyze(cohort, tmp_path / "one", workers=1, progress=False)
    pool = analyze(cohort, tmp_path / "pool", workers=2, progress=False)
    for key in ("MALLOC_TRIM_THRESHOLD_", "PYTHONHASHSEED", "__DASK_PARENT_PID"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    environ = dict(os.environ)
    dask = analyze(cohort, tmp_path / "dask", executor="dask", workers=2, progress=False)
    assert dict(os.environ) == environ
    t1, t2, t3 = _tables(one.out_dir), _tables(pool.out_dir), _tables(dask.out_dir)
    assert "scans" in t1 and set(t1) == set(t2) == set(t3)
    for name in t1:  # exactly the same tables (issue 11)
        pd.testing.assert_frame_equal(t1[name], t2[name], check_exact=True)
        pd.testing.assert_frame_equal(t1[name], t3[name], check_exact=True)
    assert len(names) >= 1
