from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

import metevo
from metevo.evolution import (
    DEFAULT_FEATURES,
    lesion_trajectories,
    patient_trajectories,
    resolve_features,
    to_long,
    trajectory_schemas,
)


def _scans(tps, days, baseline=0, liver_ml=1000.0):
    return pd.DataFrame(
        {
            "patient_id": "P1",
            "timepoint": tps,
            "date": pd.to_datetime("2020-01-01") + pd.to_timedelta(days, unit="D"),
            "days": days,
            "study_day": [d - 3 for d in days],
            "is_baseline": [i == baseline for i in range(len(tps))],
            "liver_total_volume_ml": liver_ml,
        }
    )


def _lesions(rows):
    cols = [
        "timepoint",
        "lesion_id",
        "track_id",
        "change",
        "volume_ml",
        "axial_ld_mm",
        "axial_sa_mm",
        "mean_hu",
    ]
    frame = pd.DataFrame(rows, columns=cols)
    frame.insert(0, "patient_id", "P1")
    return frame


def _edges(rows):
    return pd.DataFrame(
        rows, columns=["timepoint_from", "lesion_id_from", "timepoint_to", "lesion_id_to", "skip"]
    )


@pytest.fixture()
def split_vanish_case():
    # track 1 splits at V1 into lesions 1 and 2; track 2 (lesion 2 at V0) vanishes at V1 and
    # reappears at V2 (skip edge); track 3 is new at V2. V0 -> V1 -> V2 (a missed visit is simply
    # absent from the scans table).
    scans = _scans(["V0", "V1", "V3"], [0, 56, 170])
    lesions = _lesions(
        [
            ("V0", 1, 1, "split", 4.0, 20.0, 15.0, 40.0),
            ("V0", 2, 2, "persistent", 1.0, 12.0, 10.0, 30.0),
            ("V1", 1, 1, "persistent", 1.0, 12.0, 9.0, 35.0),
            ("V1", 2, 1, "persistent", 3.0, 16.0, 12.0, 45.0),
            ("V3", 1, 1, "persistent", 0.5, 10.0, 8.0, 35.0),
            ("V3", 2, 1, "persistent", 2.5, 15.0, 11.0, 45.0),
            ("V3", 3, 2, "persistent", 0.8, 11.0, 9.0, 28.0),
            ("V3", 4, 3, "new", 2.0, 14.0, 12.0, 33.0),
        ]
    )
    edges = _edges(
        [
            ("V0", 1, "V1", 1, False),
            ("V0", 1, "V1", 2, False),
            ("V1", 1, "V3", 1, False),
            ("V1", 2, "V3", 2, False),
            ("V0", 2, "V3", 3, True),
        ]
    )
    recist = pd.DataFrame({"timepoint": ["V0", "V1", "V3"], "target_sum_mm": [32.0, 28.0, 25.0]})
    return scans, lesions, edges, recist


def test_lesion_level_split_and_vanish(split_vanish_case):
    scans, lesions, edges, _ = split_vanish_case
    traj = lesion_trajectories(lesions, edges, scans, None, features=())
    t1 = traj[traj.track_id == 1].set_index("timepoint")
    # the split track sums its fragments: 1 + 3 ml, 12 + 16 mm
    assert t1.loc["V1", "volume_ml"] == pytest.approx(4.0)
    assert t1.loc["V1", "axial_ld_mm"] == pytest.approx(28.0)
    assert t1.loc["V1", "n_lesions"] == 2
    assert t1.loc["V1", "mean_hu"] == pytest.approx((35 * 1 + 45 * 3) / 4)
    assert t1.loc["V3", "delta_axial_ld_mm"] == pytest.approx(25.0 - 20.0)
    assert t1.loc["V3", "rel_change_volume_ml"] == pytest.approx(3.0 / 4.0 - 1)
    t2 = traj[traj.track_id == 2].set_index("timepoint")
    # vanished at V1: a row with size 0, not missing; back at V3
    assert (
        not t2.loc["V1", "present"]
        and t2.loc["V1", "volume_ml"] == 0.0
        and t2.loc["V1", "change"] == "absent"
    )
    assert t2.loc["V1", "rel_change_axial_ld_mm"] == pytest.approx(-1.0)
    assert t2.loc["V3", "volume_ml"] == pytest.approx(0.8)
    # the new track starts at its first appearance; its deltas are 0 there
    t3 = traj[traj.track_id == 3]
    assert t3.timepoint.tolist() == ["V3"] and t3.delta_volume_ml.iloc[0] == 0.0
    # no row is invented for a visit without a scan (V2 was missed)
    assert set(traj.timepoint) == {"V0", "V1", "V3"}


def test_patient_level_counts_and_burden(split_vanish_case):
    scans, lesions, edges, recist = split_vanish_case
    pt = patient_trajectories(lesions, edges, scans, recist, None, features=()).set_index(
        "timepoint"
    )
    assert pt.n_lesions.tolist() == [2, 2, 4]
    # V1: lesion 2 of V0 has no edge to V1 -> disappeared; fragments of the split are not new
    assert pt.n_disappeared_lesions.tolist() == [0, 1, 0]
    # V3: lesion 4 is new; lesion 3 came back through a skip edge, so it is not new
    assert pt.n_new_lesions.tolist() == [0, 0, 1]
    assert pt.total_volume_ml.tolist() == pytest.approx([5.0, 4.0, 5.8])
    assert pt.sum_ld_mm.tolist() == pytest.approx([32.0, 28.0, 50.0])
    assert pt.tumour_burden_fraction.tolist() == pytest.approx([0.005, 0.004, 0.0058])
    assert pt.target_sum_rel_baseline.tolist() == pytest.approx([0.0, 28 / 32 - 1, 25 / 32 - 1])
    # nadir: the smallest earlier value (V1: 28), NaN at baseline
    assert np.isnan(pt.target_sum_rel_nadir["V0"])
    assert pt.total_volume_rel_nadir["V3"] == pytest.approx(5.8 / 4.0 - 1)
    # main lesion: the largest at baseline (track 1), summed over its fragments
    assert pt.main_volume_ml.tolist() == pytest.approx([4.0, 4.0, 3.0])


def test_single_visit_and_empty_visit():
    scans = _scans(["V0"], [0])
    lesions = _lesions(
        [("V0", 1, 1, "lone", 2.0, 14.0, 11.0, 40.0), ("V0", 2, 2, "lone", 1.0, 11.0, 9.0, 42.0)]
    )
    traj = lesion_trajectories(lesions, _edges([]), scans, None, features=())
    assert (
        len(traj) == 2
        and traj.delta_volume_ml.isna().all()
        and traj.rel_change_axial_ld_mm.isna().all()
    )
    # a visit with no lesion at all: every track has a zero-size row there
    scans = _scans(["V0", "V1"], [0, 60])
    traj = lesion_trajectories(lesions, _edges([]), scans, None, features=())
    v1 = traj[traj.timepoint == "V1"]
    assert len(v1) == 2 and (v1.volume_ml == 0).all() and (~v1.present).all()
    pt = patient_trajectories(lesions, _edges([]), scans, None, None, features=())
    assert pt.n_lesions.tolist() == [2, 0] and pt.n_disappeared_lesions.tolist() == [0, 2]
    assert pt.total_volume_rel_baseline.tolist() == pytest.approx([0.0, -1.0])


def test_unknown_feature_lists_the_known_ones():
    with pytest.raises(
        ValueError, match=r"unknown radiomic feature\(s\) \['glcm_magic'\].*ih_entropy"
    ):
        resolve_features(["glcm_magic"])
    assert resolve_features("default") == DEFAULT_FEATURES
    assert len(resolve_features("all")) > 100


def test_long_format(split_vanish_case):
    scans, lesions, edges, _ = split_vanish_case
    long = to_long(lesion_trajectories(lesions, edges, scans, None, features=()))
    assert {"patient_id", "track_id", "timepoint", "days", "feature", "value"} <= set(long.columns)
    row = long[(long.track_id == 1) & (long.timepoint == "V1") & (long.feature == "volume_ml")]
    assert row.value.item() == pytest.approx(4.0)


def test_schemas_are_generated_from_the_catalog():
    from metevo.dictionary import dictionary_dir

    for name, schema in trajectory_schemas().items():
        committed = json.loads((dictionary_dir() / f"{name}.schema.json").read_text())
        assert committed == schema, f"run metevo.evolution.write_schemas() to refresh {name}"


# ----------------------------------------------------------------- the synthetic cohort


def _gt_counts(gt: str) -> pd.DataFrame:
    """Per-visit counts from the ground-truth component graph, with the same rules."""
    import pathlib

    root = pathlib.Path(gt)
    scans = pd.read_parquet(root / "scans.parquet").sort_values(["patient_id", "days"])
    edges = pd.read_parquet(root / "edges.parquet")
    rows = []
    for pid, s in scans.groupby("patient_id"):
        e = edges[edges.patient_id == pid]
        incoming = set(zip(e.timepoint_to, e.component_to, strict=True))
        out = set(zip(e.timepoint_from, e.component_from, e.timepoint_to, strict=True))
        tps = s.timepoint.tolist()
        for i, row in enumerate(s.itertuples()):
            inst = sitk.GetArrayFromImage(sitk.ReadImage(str(root / row.instance_mask)))
            comps = [c for c in np.unique(inst) if c]
            voxel_ml = np.prod(sitk.ReadImage(str(root / row.instance_mask)).GetSpacing()) / 1000
            new = sum((row.timepoint, c) not in incoming for c in comps) if i else 0
            gone = 0
            if i:
                prev = scans[(scans.patient_id == pid) & (scans.timepoint == tps[i - 1])].iloc[0]
                prev_inst = sitk.GetArrayFromImage(sitk.ReadImage(str(root / prev.instance_mask)))
                gone = sum(
                    (tps[i - 1], c, row.timepoint) not in out for c in np.unique(prev_inst) if c
                )
            rows.append(
                {
                    "patient_id": pid,
                    "timepoint": row.timepoint,
                    "gt_n": len(comps),
                    "gt_new": new,
                    "gt_gone": gone,
                    "gt_volume_ml": float((inst > 0).sum() * voxel_ml),
                }
            )
    return pd.DataFrame(rows)


def test_patient_trajectories_match_ground_truth(tiny_analysis, tiny_cohort):
    pt = metevo.trajectories(tiny_analysis, level="patient")
    gt = _gt_counts(tiny_cohort.ground_truth)
    both = pt.merge(gt, on=["patient_id", "timepoint"], how="outer", indicator=True)
    assert (both._merge == "both").all(), "every analysed visit has a ground-truth row and back"
    assert (both.n_lesions == both.gt_n).all(), both.loc[
        both.n_lesions != both.gt_n, ["patient_id", "timepoint", "n_lesions", "gt_n"]
    ]
    assert (both.n_new_lesions == both.gt_new).all(), both.loc[
        both.n_new_lesions != both.gt_new, ["patient_id", "timepoint", "n_new_lesions", "gt_new"]
    ]
    assert (both.n_disappeared_lesions == both.gt_gone).all(), both.loc[
        both.n_disappeared_lesions != both.gt_gone,
        ["patient_id", "timepoint", "n_disappeared_lesions", "gt_gone"],
    ]
    np.testing.assert_allclose(both.total_volume_ml, both.gt_volume_ml, rtol=1e-9)
    # the true (noise-free) lesion volumes: boundary noise of about a voxel on a 3 x 3 x 5 mm grid
    true = (
        pd.read_parquet(f"{tiny_cohort.ground_truth}/lesions.parquet")
        .groupby(["patient_id", "timepoint"])
        .volume_ml.sum()
    )
    merged = (
        pt.set_index(["patient_id", "timepoint"])
        .total_volume_ml.to_frame()
        .join(true.rename("true_ml"), how="left")
        .fillna(0.0)
    )
    big = merged[merged.true_ml > 2.0]
    assert np.median(np.abs(big.total_volume_ml / big.true_ml - 1)) < 0.2


def test_planted_responders_shrink_and_progressors_grow(tiny_analysis, tiny_cohort):
    traj = metevo.trajectories(tiny_analysis)
    patterns = (
        pd.read_parquet(f"{tiny_cohort.ground_truth}/patients.parquet")
        .set_index("patient_id")
        .pattern
    )
    last = traj.sort_values("days").groupby(["patient_id", "track_id"]).tail(1)
    first_present = traj[traj.days == traj.groupby("patient_id").days.transform("min")]
    baseline_tracks = set(zip(first_present.patient_id, first_present.track_id, strict=True))
    last = last[[k in baseline_tracks for k in zip(last.patient_id, last.track_id, strict=True)]]
    checked = 0
    for pid, pattern in patterns.items():
        rel = last[last.patient_id == pid].rel_change_volume_ml.dropna()
        if pattern == "deep_response":
            assert (rel < 0).mean() >= 0.75, (pid, rel.tolist())
            checked += 1
        elif pattern == "progression":
            assert (rel > 0).mean() >= 0.75, (pid, rel.tolist())
            checked += 1
    assert checked >= 2


def test_lesion_positions_in_the_liver(tiny_analysis):
    les = tiny_analysis.read("lesions")
    assert les.liver_pos_x.between(0, 1).all() and les.liver_pos_z.between(0, 1).all()
    assert set(les.liver_side.dropna()) <= {"right", "left"}
    assert (les.depth_mm >= 0).all()
    traj = metevo.trajectories(tiny_analysis)
    assert traj.loc[traj.present, "depth_mm"].notna().all()


def test_trajectories_of_a_patient_equal_the_stored_table(tiny_analysis, tiny_cohort):
    cohort = metevo.open_cohort(
        tiny_cohort.manifest, clinical=tiny_cohort.clinical, events=tiny_cohort.events
    )
    pid = cohort.patient_ids[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # registration notes are tested in test_graph
        fresh = metevo.trajectories(cohort[pid], level="patient")
    stored = metevo.trajectories(tiny_analysis.out_dir, level="patient")
    stored = stored[stored.patient_id == pid].reset_index(drop=True)
    from metevo.dictionary import coerce_table

    pd.testing.assert_frame_equal(
        coerce_table(fresh, "patient_trajectories"), stored, check_exact=False, rtol=1e-6
    )
    with pytest.raises(FileNotFoundError, match="run `metevo analyze`"):
        metevo.trajectories(tiny_cohort.root, level="patient")
    with pytest.raises(TypeError, match="takes a Patient, a Cohort"):
        metevo.trajectories(42)


def test_a_resection_is_not_read_as_a_response(tiny_analysis, tiny_cohort):
    """The demo's SYN001 (planted ``stable``) has a 22 mm target resected on day 113: its raw
    target sum falls to a third of baseline, which the pattern names read as a "deep response"
    (the demo labelled it so). With the resected target out of the baseline, as RECIST does,
    its own course is stable, and the relative change equals RECIST's ``pct_change_baseline``."""
    from metevo.patterns._features import check_trajectories
    from metevo.patterns._names import name_pattern

    truth = pd.read_parquet(f"{tiny_cohort.ground_truth}/patients.parquet")
    pid = truth.loc[truth.has_resection & (truth.pattern == "stable"), "patient_id"].iloc[0]
    assert pid == "SYN001"
    pt = metevo.trajectories(tiny_analysis, level="patient")
    pt = pt[pt.patient_id == pid].sort_values("days")
    events = pd.read_csv(tiny_cohort.events)
    cut = pd.Timestamp(events[(events.patient_id == pid) & (events.event == "resection")].date.iloc[0])
    assert pt.post_resection.tolist() == (pd.to_datetime(pt.date) > cut).tolist()
    assert pt.post_resection.any() and not pt.post_resection.all()
    removed = tiny_analysis.read("recist_lesions")
    removed = removed[(removed.patient_id == pid) & (removed.state == "removed")]
    assert set(removed.removal_reason) == {"gone_after_local_therapy"}
    raw = np.log(pt.target_sum_mm.to_numpy() / pt.target_sum_mm.iloc[0])
    assert name_pattern(raw) == "deep response"
    used = check_trajectories(pt, ("target_sum_mm",))
    adjusted = np.log(used.target_sum_mm.to_numpy() / used.target_sum_mm.iloc[0])
    assert name_pattern(adjusted) == "stable"
    rec = tiny_analysis.read("recist")
    rec = rec[rec.patient_id == pid].set_index("timepoint").loc[pt.timepoint]
    np.testing.assert_allclose(
        100 * pt.target_sum_rel_baseline.to_numpy(), rec.pct_change_baseline.to_numpy()
    )
