"""RECIST on hand-made lesion graphs: splits, merges, vanishing and reappearing lesions, events."""

from __future__ import annotations

import datetime as dt
import math

import pandas as pd
import pytest

from metevo.response import assess_patient, graph_measurements

START = dt.date(2021, 1, 4)
DATES = [START + dt.timedelta(days=56 * i) for i in range(6)]


def scans(n, **flags):
    df = pd.DataFrame(
        {
            "patient_id": "P1",
            "timepoint": [f"V{i}" for i in range(n)],
            "date": DATES[:n],
            "days": [56 * i for i in range(n)],
            "is_baseline": [i == 0 for i in range(n)],
            "phase": "portal",
        }
    )
    for col, values in flags.items():
        df[col] = values
    return df


def lesions(rows):
    """rows: (timepoint, lesion_id, ld_mm[, volume_ml, mean_hu])."""
    out = []
    for r in rows:
        tp, lid, ld = r[:3]
        vol = r[3] if len(r) > 3 else (ld / 10) ** 3 * 0.52
        hu = r[4] if len(r) > 4 else 60.0
        out.append(
            {
                "patient_id": "P1",
                "timepoint": tp,
                "lesion_id": lid,
                "axial_ld_mm": ld,
                "volume_ml": vol,
                "mean_hu": hu,
            }
        )
    return pd.DataFrame(out)


def edges(pairs):
    return pd.DataFrame(
        [
            {
                "patient_id": "P1",
                "timepoint_from": a,
                "lesion_id_from": b,
                "timepoint_to": c,
                "lesion_id_to": d,
                "skip": skip,
            }
            for a, b, c, d, *rest in pairs
            for skip in [bool(rest[0]) if rest else False]
        ],
        columns=[
            "patient_id",
            "timepoint_from",
            "lesion_id_from",
            "timepoint_to",
            "lesion_id_to",
            "skip",
        ],
    )


def run(les, edg, n, **kw):
    rec, pat, _ = assess_patient(
        "P1", scans(n, **kw.pop("flags", {})), les, edg, treatment_start=START, **kw
    )
    return rec, pat


def test_split_target_contributes_fragment_sum():
    les = lesions(
        [("V0", 1, 40.0), ("V0", 2, 20.0), ("V1", 1, 15.0), ("V1", 2, 13.0), ("V1", 3, 18.0)]
    )
    edg = edges([("V0", 1, "V1", 1), ("V0", 1, "V1", 3), ("V0", 2, "V1", 2)])
    rec, _ = run(les, edg, 2)
    # targets 40 and 20 -> 60; V1: (15 + 18) + 13 = 46 -> -23 % SD, no new lesion
    assert rec["target_sum_mm"].tolist() == [60.0, 46.0]
    assert rec["new_lesions"].iloc[1] == "N"
    assert rec["overall_response"].iloc[1] == "SD"


def test_merging_targets_measured_once():
    les = lesions([("V0", 1, 30.0), ("V0", 2, 25.0), ("V1", 1, 45.0)])
    edg = edges([("V0", 1, "V1", 1), ("V0", 2, "V1", 1)])
    rec, _ = run(les, edg, 2)
    assert rec["target_sum_mm"].tolist() == [55.0, 45.0]
    assert rec["overall_response"].iloc[1] == "SD"


def test_target_coalescing_with_non_target():
    # targets 1, 2; non-target 3 (8 mm) merges into target 1 at V1
    les = lesions(
        [("V0", 1, 30.0), ("V0", 2, 25.0), ("V0", 3, 8.0), ("V1", 1, 36.0), ("V1", 2, 25.0)]
    )
    edg = edges([("V0", 1, "V1", 1), ("V0", 3, "V1", 1), ("V0", 2, "V1", 2)])
    rec, _ = run(les, edg, 2)
    assert rec["target_sum_mm"].tolist() == [55.0, 61.0]
    assert rec["nontarget_response"].iloc[1] == "NON-CR/NON-PD"


def test_vanished_target_reappears_by_skip_edge_not_new():
    les = lesions(
        [("V0", 1, 30.0), ("V0", 2, 20.0), ("V1", 1, 20.0), ("V2", 1, 20.0), ("V2", 2, 12.0)]
    )
    edg = edges([("V0", 1, "V1", 1), ("V1", 1, "V2", 1), ("V0", 2, "V2", 2, True)])
    rec, _ = run(les, edg, 3)
    assert rec["target_sum_mm"].tolist() == [50.0, 20.0, 32.0]
    assert rec["new_lesions"].tolist()[1:] == ["N", "N"]
    # V2: 32 vs nadir 20: +12 mm, +60 % -> PD by the reappearing target, not by a new lesion
    assert rec["overall_response"].tolist()[1:] == ["PR", "PD"]


def test_new_lesion_flagged_and_equivocal_confirmed():
    les = lesions(
        [
            ("V0", 1, 30.0),
            ("V1", 1, 20.0),
            ("V1", 5, 6.0),
            ("V2", 1, 20.0),
            ("V2", 5, 12.0),
            ("V3", 1, 20.0),
            ("V3", 5, 14.0),
        ]
    )
    edg = edges(
        [
            ("V0", 1, "V1", 1),
            ("V1", 1, "V2", 1),
            ("V2", 1, "V3", 1),
            ("V1", 5, "V2", 5),
            ("V2", 5, "V3", 5),
        ]
    )
    rec, pat = run(les, edg, 4)
    # lesion 5 appears at V1 with 6 mm (equivocal), 12 mm at V2 -> confirmed, PD dated V1
    assert rec["new_lesions"].tolist()[1:] == ["Y", "Y", "Y"]
    assert rec["overall_response"].tolist()[1:] == ["PD", "PD", "PD"]
    assert pat["first_pd_date"].iloc[0] == DATES[1]
    assert pat["imaging_pfs_event"].iloc[0]
    assert pat["imaging_pfs_days"].iloc[0] == 57


def test_cr_then_new_lesion():
    les = lesions([("V0", 1, 30.0), ("V2", 7, 15.0)])
    rec, pat = run(les, edges([]), 3)
    assert rec["overall_response"].tolist()[1:] == ["CR", "PD"]
    assert pat["best_response"].iloc[0] == "CR"
    assert pat["best_response_confirmed"].iloc[0] == "SD"  # the CR was not confirmed


def test_not_evaluable_scan_and_registration_failure():
    les = lesions(
        [("V0", 1, 30.0), ("V0", 2, 20.0), ("V1", 1, 25.0), ("V2", 1, 24.0), ("V2", 2, 18.0)]
    )
    edg = edges([("V0", 1, "V1", 1), ("V1", 1, "V2", 1), ("V0", 2, "V2", 2, True)])
    rec, _ = run(
        les,
        edg,
        3,
        flags={"liver_in_fov": [True, False, True], "registration_ok": [True, True, True]},
    )
    assert rec["overall_response"].tolist()[1:] == ["NE", "SD"]
    assert rec["not_evaluable_reason"].iloc[1] == "liver_outside_fov"
    assert not rec["evaluable"].iloc[1]
    rec, _ = run(les, edg, 3, flags={"registration_ok": [True, False, True]})
    assert rec["not_evaluable_reason"].iloc[1] == "registration_failed"
    # a failed registration where the measured targets already prove PD stays PD:
    # V1 25 mm is the nadir (lesion 2 vanished), V2 42 mm = +17 mm, +68 %
    rec, _ = run(les, edg, 3, flags={"registration_ok": [True, True, False]})
    assert rec["overall_response"].iloc[2] == "PD" and rec["evaluable"].iloc[2]


def test_resection_removes_target_and_is_not_a_response():
    les = lesions(
        [("V0", 1, 30.0), ("V0", 2, 20.0), ("V1", 1, 28.0), ("V1", 2, 20.0), ("V2", 1, 27.0)]
    )
    edg = edges([("V0", 1, "V1", 1), ("V0", 2, "V1", 2), ("V1", 1, "V2", 1)])
    ev = pd.DataFrame(
        {
            "patient_id": "P1",
            "date": [DATES[1] + dt.timedelta(days=20)],
            "event": ["resection"],
            "note": [""],
        }
    )
    rec, _ = run(les, edg, 3, events=ev)
    # lesion 2 resected: V2 compares 27 with 30 (-10 %), SD, not a PR from 50 -> 27
    assert rec["pct_change_baseline"].iloc[2] == pytest.approx(-10.0)
    assert rec["overall_response"].tolist()[1:] == ["SD", "SD"]


def test_events_new_treatment_extrahepatic_death():
    les = lesions([("V0", 1, 30.0), ("V1", 1, 28.0), ("V2", 1, 27.0), ("V3", 1, 26.0)])
    edg = edges([("V0", 1, "V1", 1), ("V1", 1, "V2", 1), ("V2", 1, "V3", 1)])
    ev = pd.DataFrame(
        {
            "patient_id": "P1",
            "date": [DATES[2] - dt.timedelta(days=3)],
            "event": ["extrahepatic_progression"],
            "note": [""],
        }
    )
    rec, pat = run(les, edg, 4, events=ev)
    assert rec["overall_response"].tolist()[1:] == ["SD", "PD", "SD"]
    assert pat["first_pd_date"].iloc[0] == DATES[2]
    ev = pd.DataFrame(
        {
            "patient_id": "P1",
            "date": [DATES[1] + dt.timedelta(days=5)],
            "event": ["new_treatment_line"],
            "note": [""],
        }
    )
    rec, pat = run(les, edg, 4, events=ev)
    assert rec["not_evaluable_reason"].tolist()[2:] == ["after_new_treatment_line"] * 2
    assert rec["overall_response"].tolist()[2:] == [None, None]
    assert (pat["imaging_pfs_event"].iloc[0], pat["imaging_pfs_censor_reason"].iloc[0]) == (
        False,
        "new_anticancer_treatment",
    )


def test_non_measurable_baseline_excluded_from_shrinkage():
    les = lesions([("V0", 1, 8.0), ("V1", 1, 6.0), ("V2", 1, 5.0)])
    edg = edges([("V0", 1, "V1", 1), ("V1", 1, "V2", 1)])
    rec, pat = run(les, edg, 3)
    assert rec["overall_response"].tolist()[1:] == ["NON-CR/NON-PD", "NON-CR/NON-PD"]
    p = pat.iloc[0]
    assert not p["measurable_at_baseline"]
    assert p["exclusion_reason"] == "non_measurable_baseline"
    assert (
        p["tgk_status"] == "excluded" and math.isnan(p["depth_of_response"]) and pd.isna(p["ets"])
    )


def test_nontarget_progression_needs_burden_growth():
    # targets shrink strongly while a small non-target doubles: total burden falls -> not PD
    les = lesions(
        [
            ("V0", 1, 40.0, 30.0),
            ("V0", 2, 30.0, 14.0),
            ("V0", 3, 9.0, 2.0),
            ("V1", 1, 20.0, 4.0),
            ("V1", 2, 15.0, 2.0),
            ("V1", 3, 12.0, 5.0),
        ]
    )
    edg = edges([("V0", 1, "V1", 1), ("V0", 2, "V1", 2), ("V0", 3, "V1", 3)])
    rec, _ = run(les, edg, 2)
    assert rec["nontarget_response"].iloc[1] == "NON-CR/NON-PD"
    # the same non-target growth with stable targets: burden 46 -> 49 ml is not >= 1.728x
    # but a large non-target growth with stable targets is PD
    les2 = lesions(
        [
            ("V0", 1, 40.0, 30.0),
            ("V0", 2, 30.0, 14.0),
            ("V0", 3, 9.0, 10.0),
            ("V1", 1, 40.0, 30.0),
            ("V1", 2, 30.0, 14.0),
            ("V1", 3, 30.0, 60.0),
        ]
    )
    rec2, _ = run(les2, edg, 2)
    assert rec2["nontarget_response"].iloc[1] == "PD"
    assert rec2["overall_response"].iloc[1] == "PD"


def test_choi_density_response():
    les = lesions(
        [("V0", 1, 40.0, 30.0, 80.0), ("V1", 1, 38.0, 27.0, 60.0), ("V2", 1, 38.0, 27.0, 78.0)]
    )
    edg = edges([("V0", 1, "V1", 1), ("V1", 1, "V2", 1)])
    rec, _ = run(les, edg, 3)
    # size -5 % (SD by RECIST) but density -25 % -> Choi PR; then -2.5 % -> SD
    assert rec["overall_response"].tolist()[1:] == ["SD", "SD"]
    assert rec["choi_response"].tolist()[1:] == ["PR", "SD"]
    rec, _ = run(les, edg, 3, flags={"phase": ["portal", "arterial", "portal"]})
    assert rec["choi_response"].iloc[1] == "NE"


def test_graph_measurements_errors():
    with pytest.raises(ValueError, match="baseline timepoint 'V9'"):
        graph_measurements(lesions([("V0", 1, 30.0)]), edges([]), timepoints=["V0"], baseline="V9")
    with pytest.raises(ValueError, match="not assessments"):
        graph_measurements(lesions([("V5", 1, 30.0)]), edges([]), timepoints=["V0"], baseline="V0")


def test_metevo_recist_on_a_patient(mini_cohort):
    import warnings

    import metevo

    cohort = metevo.open_cohort(
        mini_cohort["manifest"], clinical=mini_cohort["clinical"], events=mini_cohort["events"]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # registration/graph warnings are the graph tests' business
        rec = metevo.recist(cohort["P002"])
    assert rec.columns.tolist() == list(metevo.columns.Recist.COLUMNS)
    assert rec["timepoint"].tolist() == ["V0", "V1", "V2"]
    assert set(rec["scope"]) == {"liver"}
    # one growing lesion: 2 mm voxels, radius 2, 3, 4 voxels -> about 10, 14, 18 mm
    assert (
        rec["target_sum_mm"].iloc[2] > rec["target_sum_mm"].iloc[1] > rec["target_sum_mm"].iloc[0]
    )
    assert rec["overall_response"].iloc[2] == "PD"
    with pytest.raises(TypeError, match="unexpected keyword"):
        metevo.recist(cohort["P002"], max_target=2)


def test_without_treatment_start_baseline_is_the_reference():
    les = lesions([("V0", 1, 30.0), ("V1", 1, 20.0), ("V2", 1, 19.0)])
    edg = edges([("V0", 1, "V1", 1), ("V1", 1, "V2", 1)])
    rec, pat, _ = assess_patient("P1", scans(3), les, edg)
    assert rec["study_day"].isna().all()
    assert rec["overall_response"].tolist()[1:] == ["PR", "PR"]
    # PR at day 56 confirmed at day 112; censored at the last scan: DoR = 112 - 56 + 1
    p = pat.iloc[0]
    assert p["best_response_confirmed"] == "PR"
    assert (p["imaging_pfs_event"], p["imaging_pfs_censor_reason"], p["imaging_pfs_days"]) == (
        False,
        "no_event",
        113.0,
    )
    assert p["duration_of_response_days"] == 57.0
    assert p["ets"]  # -33 % at day 56 (inside 42-70)
    assert p["depth_of_response"] == pytest.approx(100 * 11 / 30)
    assert p["time_to_nadir_days"] == 112.0


def test_single_scan_and_disease_free_baseline():
    rec, pat = run(lesions([("V0", 1, 30.0)]), edges([]), 1)
    assert len(rec) == 1 and rec["overall_response"].isna().all()
    p = pat.iloc[0]
    assert (p["best_response"], p["imaging_pfs_days"], p["imaging_pfs_censor_reason"]) == (
        "MISSING",
        1.0,
        "no_post_baseline_assessment",
    )
    assert p["tgk_status"] == "excluded"
    # nothing at baseline: not measurable; a lesion appearing later is a new lesion (PD)
    rec, pat = run(lesions([("V2", 3, 12.0)]), edges([]), 3)
    assert rec["overall_response"].tolist()[1:] == ["NE", "PD"]
    assert not pat["measurable_at_baseline"].iloc[0]
