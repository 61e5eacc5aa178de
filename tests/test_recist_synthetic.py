"""RECIST on the synthetic cohort against its ground truth (true lesion sizes and graph)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from metevo.response import assess_patient


def _gt_inputs(gt, pid):
    """Ground-truth lesion table on components (a component's diameter is the sum of its true
    lesions' diameters), ground-truth edges and scans of one patient."""
    les = gt["lesions"][gt["lesions"]["patient_id"] == pid]
    comp = (
        les.groupby(["timepoint", "component"])
        .agg(axial_ld_mm=("axial_ld_mm", "sum"), volume_ml=("volume_ml", "sum"))
        .reset_index()
        .rename(columns={"component": "lesion_id"})
        .assign(mean_hu=60.0)
    )
    edges = gt["edges"][gt["edges"]["patient_id"] == pid].rename(
        columns={"component_from": "lesion_id_from", "component_to": "lesion_id_to"}
    )
    scans = gt["scans"][gt["scans"]["patient_id"] == pid].copy()
    scans["is_baseline"] = scans["timepoint"] == scans["timepoint"].iloc[0]
    # the generator cuts only lesion-free liver (dome or tip): every lesion region is imaged
    scans["lesions_in_fov"] = True
    return scans, comp, edges


def _independent_target_sums(gt, pid):
    """Target sums from the true lesions directly (no graph): the two largest baseline
    components >= 10 mm; each target is the set of its true lesions, summed at every scan
    (0 when invisible); a resected true lesion leaves its target from the next scan on."""
    les = gt["lesions"][gt["lesions"]["patient_id"] == pid]
    tps = gt["scans"].loc[gt["scans"]["patient_id"] == pid, "timepoint"].tolist()
    base = (
        les[les["timepoint"] == tps[0]]
        .groupby("component")
        .agg(ld=("axial_ld_mm", "sum"), ids=("true_lesion_id", list))
    )
    base = base[base["ld"] >= 10].sort_values("ld", ascending=False).head(2)
    true = gt["true_lesions"][gt["true_lesions"]["patient_id"] == pid].set_index("true_lesion_id")
    study_day = dict(zip(les["timepoint"], les["study_day"], strict=False))
    sums = {}
    for tp in tps:
        values = les[les["timepoint"] == tp].set_index("true_lesion_id")["axial_ld_mm"]
        total = 0.0
        for ids in base["ids"]:
            resected = [i for i in ids if np.isfinite(true.loc[i, "resected_study_day"])]
            if (
                resected
                and tp in study_day
                and study_day[tp] > true.loc[resected[0], "resected_study_day"]
            ):
                continue
            total += float(sum(values.get(i, 0.0) for i in ids))
        sums[tp] = total
    return sums, list(base["ids"])


@pytest.fixture(scope="module")
def gt(tiny_cohort):
    return {
        name: tiny_cohort.table(name)
        for name in ("scans", "lesions", "edges", "patients", "true_lesions")
    } | {
        "clinical": pd.read_csv(tiny_cohort.clinical),
        "events": pd.read_csv(tiny_cohort.events),
    }


def test_graph_adapter_on_ground_truth_matches_true_sizes(gt):
    clinical = gt["clinical"].set_index("patient_id")
    checked = 0
    removed_checked: list[str] = []
    for pid in gt["patients"]["patient_id"]:
        scans, comp, edges = _gt_inputs(gt, pid)
        start = pd.Timestamp(clinical.loc[pid, "treatment_start"]).date()
        events = gt["events"][gt["events"]["patient_id"] == pid]
        rec, _, lesions = assess_patient(
            pid, scans, comp, edges, treatment_start=start, events=events
        )
        expected, _ = _independent_target_sums(gt, pid)
        for _, r in rec.iterrows():
            if np.isfinite(r["target_sum_mm"]) and r["evaluable"]:
                assert r["target_sum_mm"] == pytest.approx(expected[r["timepoint"]], abs=1e-6), (
                    pid,
                    r["timepoint"],
                )
                checked += 1
        # planted new lesions are flagged at their first appearance, and nowhere else
        true_new = gt["lesions"][(gt["lesions"]["patient_id"] == pid) & gt["lesions"]["is_new"]]
        first = set(true_new.loc[true_new["appearance"] == "first", "timepoint"])
        flagged = rec.loc[rec["new_lesions"].isin(["Y", "EQUIVOCAL"]), "timepoint"].tolist()
        if first:
            assert flagged and flagged[0] == min(
                first, key=lambda t: rec["timepoint"].tolist().index(t)
            ), pid
        else:
            assert not flagged, pid  # splits, reappearances and merges are not new lesions
        # a resected lesion still visible before its resection leaves the assessment (state
        # removed), it is not a response; one that had already vanished was a response
        true = gt["true_lesions"][gt["true_lesions"]["patient_id"] == pid]
        les = gt["lesions"][gt["lesions"]["patient_id"] == pid]
        for _, t in true[np.isfinite(true["resected_study_day"])].iterrows():
            seen = les[
                (les["true_lesion_id"] == t["true_lesion_id"])
                & (les["study_day"] < t["resected_study_day"])
            ]
            last_scan = gt["scans"][
                (gt["scans"]["patient_id"] == pid)
                & (gt["scans"]["study_day"] < t["resected_study_day"])
            ]
            if (
                len(seen)
                and len(last_scan)
                and seen["timepoint"].iloc[-1] == last_scan["timepoint"].iloc[-1]
            ):
                assert (lesions["state"] == "removed").any(), pid
                removed_checked.append(pid)
    assert checked >= 15
    assert removed_checked  # at least one resection of a visible lesion was exercised


def test_pipeline_tables_against_ground_truth(tiny_analysis, gt):
    from metevo.dictionary import coerce_table, validate_table

    recist = tiny_analysis.read("recist")
    patients = tiny_analysis.read("patients")
    scans = tiny_analysis.read("scans")
    assert len(recist) == len(scans)
    assert set(recist["scope"]) == {"liver"}
    assert sorted(patients["patient_id"]) == sorted(scans["patient_id"].unique())
    for name, table in (
        ("recist", recist),
        ("patients", patients),
        ("recist_lesions", tiny_analysis.read("recist_lesions")),
    ):
        validate_table(coerce_table(table, name), name)
    clinical = gt["clinical"].set_index("patient_id")
    diffs, agree = [], []
    for pid in gt["patients"]["patient_id"]:
        s, comp, edges = _gt_inputs(gt, pid)
        start = pd.Timestamp(clinical.loc[pid, "treatment_start"]).date()
        events = gt["events"][gt["events"]["patient_id"] == pid]
        truth, _, _ = assess_patient(pid, s, comp, edges, treatment_start=start, events=events)
        mine = recist[recist["patient_id"] == pid]
        m = mine.merge(truth, on="timepoint", suffixes=("", "_gt"))
        diffs += (m["target_sum_mm"] - m["target_sum_mm_gt"]).abs().dropna().tolist()
        post = m[m["overall_response_gt"].notna()]
        agree += (post["overall_response"] == post["overall_response_gt"]).tolist()
        # planted new lesions flagged at the right scan by the automated pipeline too
        true_new = gt["lesions"][(gt["lesions"]["patient_id"] == pid) & gt["lesions"]["is_new"]]
        for tp in set(true_new.loc[true_new["appearance"] == "first", "timepoint"]):
            assert mine.loc[mine["timepoint"] == tp, "new_lesions"].iloc[0] in ("Y", "EQUIVOCAL"), (
                pid,
                tp,
            )
    # tiny grid (3 x 3 x 5 mm voxels): per-lesion diameters carry about +/- 3 mm of error, and
    # target selection can differ between measured and true sizes (see benchmarks/recist_synthetic.py)
    assert np.median(diffs) < 5.0
    # 25/27 on the 3 x 3 x 5 mm grid: the two misses are voxelisation (a non-target volume
    # borderline of the burden rule; a 27.4 mm lesion whose mask is 33.2 mm, the generator's
    # segmentation noise of ~1.5 mm per border on 3 mm pixels, and a target choice between
    # 10.18 and 10.07 mm lesions); the default >= 0.95 test runs on the 1.5 mm grid
    # (test_end_to_end_agreement_on_a_1_5_mm_grid)
    assert np.mean(agree) >= 0.9, f"overall-response agreement {np.mean(agree):.3f}"


def _end_to_end_agreement(tmp_path, n_patients):
    """Overall-response agreement of masks -> lesions -> graph -> RECIST with RECIST on the true
    lesion graph and sizes, on the 1.5 x 1.5 x 3 mm synthetic cohort (seed 0)."""
    import warnings

    from metevo import analyze, open_cohort
    from metevo.datasets import make_synthetic_cohort

    synth = make_synthetic_cohort(tmp_path / "cohort", n_patients=n_patients, seed=0, size="small")
    cohort = open_cohort(synth.manifest, clinical=synth.clinical, events=synth.events)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = analyze(cohort, tmp_path / "out", stages=["recist"], workers=1, progress=False)
    recist = res.read("recist")
    g = {n: synth.table(n) for n in ("scans", "lesions", "edges")}
    clinical = pd.read_csv(synth.clinical).set_index("patient_id")
    events = pd.read_csv(synth.events)
    agree = []
    for pid in sorted(recist["patient_id"].unique()):
        s, comp, edges = _gt_inputs(g, pid)
        start = pd.Timestamp(clinical.loc[pid, "treatment_start"]).date()
        ev = events[events["patient_id"] == pid]
        truth, _, _ = assess_patient(pid, s, comp, edges, treatment_start=start, events=ev)
        m = recist[recist["patient_id"] == pid].merge(truth, on="timepoint", suffixes=("", "_gt"))
        post = m[m["overall_response_gt"].notna()]
        agree += (post["overall_response"] == post["overall_response_gt"]).tolist()
    return agree


def test_end_to_end_agreement_on_a_1_5_mm_grid(tmp_path):
    """Masks -> lesions -> graph -> RECIST on three patients of the 1.5 mm synthetic cohort
    agrees with RECIST on the true lesion graph and sizes at >= 95 % of follow-up assessments,
    i.e. all 14 (a 1-voxel diameter bias gives 13/14). Issue 18 item 8: the default suite's
    end-to-end test runs on a grid where a diameter is meaningful (the tiny grid's segmentation
    noise is ~1.5 mm per border, see test_pipeline_tables_against_ground_truth). Round 4 saw
    13/14 inside the full suite: the registration QC read freed memory (SYN002 V2->V3 fell back
    to identity); fixed, and tests/test_registration_search.py checks it."""
    agree = _end_to_end_agreement(tmp_path, 3)
    assert len(agree) >= 12
    assert np.mean(agree) >= 0.95, f"overall-response agreement {np.mean(agree):.3f}"


@pytest.mark.slow
def test_end_to_end_agreement_on_the_small_grid(tmp_path):
    """Masks -> lesions -> graph -> RECIST on the 1.5 mm synthetic cohort agrees with RECIST on
    the true lesion graph and sizes at >= 95 % of follow-up assessments (27/27 measured)."""
    agree = _end_to_end_agreement(tmp_path, 6)
    assert len(agree) >= 20
    assert np.mean(agree) >= 0.95, f"overall-response agreement {np.mean(agree):.3f}"
