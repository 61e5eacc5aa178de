"""RECIST 1.1 engine on hand-made measurement tables (known answers computed by hand)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from metevo.response import overall_response, recist_from_measurements, select_targets


def table(rows, pid="P1"):
    """rows: list of (timepoint, date, lesion_id, ld_mm, extra dict)."""
    out = []
    for r in rows:
        tp, date, lid, ld = r[:4]
        extra = r[4] if len(r) > 4 else {}
        out.append(
            {
                "patient_id": pid,
                "timepoint": tp,
                "date": date,
                "lesion_id": lid,
                "ld_mm": ld,
                **extra,
            }
        )
    return pd.DataFrame(out)


D = ["2020-01-01", "2020-02-26", "2020-04-22", "2020-06-17", "2020-08-12"]


def responses(res):
    return res["overall_response"].tolist()[1:]


# baseline 30+20 = 50; V1 35 (-30 %); V2 36 (-28 %, +1 mm over the nadir 35); V3 42 (+7 mm, +20 %)
PR_SD_PD = [
    ("V0", D[0], "a", 30.0),
    ("V0", D[0], "b", 20.0),
    ("V1", D[1], "a", 20.0),
    ("V1", D[1], "b", 15.0),
    ("V2", D[2], "a", 21.0),
    ("V2", D[2], "b", 15.0),
    ("V3", D[3], "a", 27.0),
    ("V3", D[3], "b", 15.0),
]


def test_pr_sd_pd_by_hand():
    # baseline 30+20 = 50; V1 35 (-30 % -> PR); V2 36 (-28 %, +1 mm over nadir -> SD);
    # V3 42 (+7 mm and +20 % over the nadir 35 -> PD)
    m = table(PR_SD_PD)
    res = recist_from_measurements(m)
    assert res["target_sum_mm"].tolist() == [50.0, 35.0, 36.0, 42.0]
    assert responses(res) == ["PR", "SD", "PD"]
    assert res["pct_change_baseline"].iloc[1] == pytest.approx(-30.0)
    assert res["pct_change_nadir"].iloc[3] == pytest.approx(100 * 7 / 35)


def test_pd_needs_both_20_percent_and_5_mm():
    # nadir 20 -> 24.5: +22.5 % but only +4.5 mm -> SD ; small lesion
    m = table([("V0", D[0], "a", 20.0), ("V1", D[1], "a", 24.5), ("V2", D[2], "a", 25.0)])
    assert responses(recist_from_measurements(m)) == ["SD", "PD"]


def test_pd_checked_before_pr():
    # baseline 100, nadir 40 (PR), then 55: -45 % from baseline but +37.5 % / +15 mm over nadir
    m = table([("V0", D[0], "a", 100.0), ("V1", D[1], "a", 40.0), ("V2", D[2], "a", 55.0)])
    res = recist_from_measurements(m)
    assert responses(res) == ["PR", "PD"]


def test_target_response_margin_by_hand():
    # the distance (mm) of the target sum from the nearest sum that changes the response:
    # PD from nadir + max(5 mm, 20 % nadir), PR up to 70 % of baseline
    # baseline 50; V1 35 = 70 % of 50: PR exactly on its threshold -> 0;
    # V2 36: SD, 1 mm above PR's 35 and 6 mm below PD's 35 + 7 = 42 -> 1; V3 42: PD at 42 -> 0
    m = table(PR_SD_PD)
    margin = recist_from_measurements(m)["target_response_margin_mm"].tolist()
    assert math.isnan(margin[0]) and margin[1:] == pytest.approx([0.0, 1.0, 0.0])
    # baseline 20, V1 24.5: SD, 0.5 mm under PD's 20 + 5 (5 mm beats 20 % = 4 mm) and 10.5 mm
    # over PR's 14; V2 25: PD exactly at 25 -> 0
    m = table([("V0", D[0], "a", 20.0), ("V1", D[1], "a", 24.5), ("V2", D[2], "a", 25.0)])
    assert recist_from_measurements(m)["target_response_margin_mm"].tolist()[1:] == pytest.approx(
        [0.5, 0.0]
    )
    # baseline 100, V1 40: PR, 30 mm under PR's 70 (PD from 120); V2 55: PD, 7 mm over
    # 40 + max(5, 8) = 48; V3 all gone: CR, no margin; V4 not measured: NE, no margin
    m = table(
        [
            ("V0", D[0], "a", 100.0),
            ("V1", D[1], "a", 40.0),
            ("V2", D[2], "a", 55.0),
            ("V3", D[3], "a", 0.0),
            ("V4", D[4], "a", math.nan),
        ]
    )
    res = recist_from_measurements(m)
    assert res["target_response"].tolist()[1:] == ["PR", "PD", "CR", "NE"]
    margin = res["target_response_margin_mm"].tolist()
    assert margin[1:3] == pytest.approx([30.0, 7.0]) and all(math.isnan(v) for v in margin[3:])


def test_target_selection_largest_two_per_organ_five_total():
    b = pd.DataFrame(
        {
            "ld_mm": [50, 40, 30, 25, 24, 23, 22, 9.0],
            "organ": ["liver", "liver", "liver", "lung", "lung", "lung", "bone", "bone"],
        }
    )
    roles = select_targets(b).tolist()
    assert roles == [
        "target",
        "target",
        "non-target",
        "target",
        "target",
        "non-target",
        "target",
        "non-target",
    ]
    # thick slices: 2x slice thickness (7 mm -> 14 mm) is the measurability cut-off
    b2 = pd.DataFrame({"ld_mm": [13.0, 15.0]})
    assert select_targets(b2, slice_thickness_mm=7.0).tolist() == ["non-target", "target"]
    # nodes: SA >= 15 measurable, 10-15 pathological non-target, < 10 normal (not a lesion)
    b3 = pd.DataFrame({"ld_mm": [30.0, 25.0, 20.0], "sa_mm": [16.0, 12.0, 8.0], "nodal": True})
    assert select_targets(b3).tolist() == ["target", "non-target", None]
    with pytest.raises(ValueError, match="max_targets must be an integer"):
        recist_from_measurements(table([("V0", D[0], "a", 20.0)]), max_targets=0)


def test_target_that_splits_sums_fragments():
    # adapter convention: a split target contributes its fragments' sum (a1 + a2 rows are
    # given the target's lesion id by the graph adapter); here 12 + 10 = 22 vs baseline 30
    m = table([("V0", D[0], "a", 30.0), ("V1", D[1], "a", 22.0)])
    assert responses(recist_from_measurements(m)) == ["SD"]


def test_nodal_cr_with_nonzero_sum():
    m = table(
        [
            ("V0", D[0], "n", 30.0, {"sa_mm": 20.0, "nodal": True}),
            ("V0", D[0], "a", 25.0),
            ("V1", D[1], "n", 12.0, {"sa_mm": 8.0, "nodal": True}),
            ("V1", D[1], "a", 0.0),
        ]
    )
    res = recist_from_measurements(m)
    assert res["target_sum_mm"].tolist() == [45.0, 8.0]
    assert responses(res) == ["CR"]


def test_cr_then_new_lesion_is_pd():
    m = table(
        [
            ("V0", D[0], "a", 25.0),
            ("V1", D[1], "a", 0.0),
            ("V2", D[2], "a", 0.0),
            ("V2", D[2], "x", 8.0, {"role": "new"}),
        ]
    )
    res = recist_from_measurements(m)
    assert responses(res) == ["CR", "PD"]
    assert res["new_lesions"].tolist()[1:] == ["N", "Y"]


def test_equivocal_new_lesion_confirmed_next_visit_dates_pd_back():
    m = table(
        [
            ("V0", D[0], "a", 25.0),
            ("V1", D[1], "a", 20.0),
            ("V1", D[1], "x", 4.0, {"role": "new", "state": "equivocal"}),
            ("V2", D[2], "a", 20.0),
            ("V2", D[2], "x", 9.0, {"role": "new"}),
            ("V3", D[3], "a", 20.0),
            ("V3", D[3], "y", 3.0, {"role": "new", "state": "equivocal"}),
        ]
    )
    res = recist_from_measurements(m)
    assert responses(res) == ["PD", "PD", "SD"]  # x: PD dated to V1; y: never confirmed


def test_pd_by_non_target_only():
    m = table(
        [
            ("V0", D[0], "a", 25.0, {"role": "target"}),
            ("V0", D[0], "nt", 8.0, {"role": "non-target"}),
            ("V1", D[1], "a", 24.0),
            ("V1", D[1], "nt", math.nan, {"state": "progression"}),
        ]
    )
    res = recist_from_measurements(m)
    assert res["target_response"].iloc[1] == "SD"
    assert res["nontarget_response"].iloc[1] == "PD"
    assert responses(res) == ["PD"]


def test_non_measurable_only_baseline_uses_table_2():
    m = table(
        [
            ("V0", D[0], "a", 8.0),
            ("V0", D[0], "b", 6.0),
            ("V1", D[1], "a", 7.0),
            ("V1", D[1], "b", 0.0),
            ("V2", D[2], "a", 0.0),
            ("V2", D[2], "b", 0.0),
        ]
    )
    res = recist_from_measurements(m)
    assert not res["measurable_at_baseline"].iloc[0]
    assert res["target_response"].isna().all()
    assert responses(res) == ["NON-CR/NON-PD", "CR"]


def test_all_ne_visit_and_ne_below_nadir_does_not_set_nadir():
    # V1 not evaluable (reason); V2 has a missing target with a partial sum below the nadir;
    # V3: 36 vs nadir 30 (baseline-based nadir would be 50) -> +6 mm, +20 % -> PD only if
    # the NE visits did not lower the nadir: nadir = min(50, V1? no, V2? no) = 50 -> SD.
    m = table(
        [
            ("V0", D[0], "a", 30.0),
            ("V0", D[0], "b", 20.0),
            ("V1", D[1], "a", 10.0),
            ("V1", D[1], "b", 10.0),
            ("V2", D[2], "a", 20.0),
            ("V3", D[3], "a", 25.0),
            ("V3", D[3], "b", 11.0),
        ]
    )
    visits = pd.DataFrame(
        {"patient_id": "P1", "timepoint": ["V1"], "not_evaluable_reason": ["liver_outside_fov"]}
    )
    res = recist_from_measurements(m, visits)
    assert responses(res) == ["NE", "NE", "SD"]
    assert res["not_evaluable_reason"].tolist()[1:3] == [
        "liver_outside_fov",
        "target_not_assessed:b",
    ]
    assert res["pct_change_nadir"].iloc[3] == pytest.approx(100 * (36 - 50) / 50)


def test_ne_visit_that_already_proves_pd():
    # nadir 40; visit with b missing but a alone = 50 >= 1.2 * 40 and +10 mm -> PD
    m = table([("V0", D[0], "a", 25.0), ("V0", D[0], "b", 15.0), ("V1", D[1], "a", 50.0)])
    res = recist_from_measurements(m)
    assert responses(res) == ["PD"]
    assert res["evaluable"].iloc[1]


def test_nadir_zero_relapse():
    m = table(
        [
            ("V0", D[0], "a", 20.0),
            ("V1", D[1], "a", 0.0),
            ("V2", D[2], "a", 5.0),
            ("V3", D[3], "a", 4.0),
        ]
    )
    res = recist_from_measurements(m)
    assert responses(res) == ["CR", "PD", "PR"]
    assert math.isnan(res["pct_change_nadir"].iloc[2])


def test_extra_progression_and_local_treatment():
    m = table(
        [
            ("V0", D[0], "a", 30.0),
            ("V0", D[0], "b", 20.0),
            ("V1", D[1], "a", 28.0),
            ("V1", D[1], "b", 0.0, {"state": "removed"}),
            ("V2", D[2], "a", 18.0),
        ]
    )
    visits = pd.DataFrame(
        {
            "patient_id": "P1",
            "timepoint": ["V1", "V2"],
            "progression_reason": [None, "extrahepatic_progression"],
        }
    )
    res = recist_from_measurements(m, visits)
    # b resected: the baseline sum becomes 30; V1 28 -> SD (not a PR from the resection)
    assert res["pct_change_baseline"].iloc[1] == pytest.approx(100 * (28 - 30) / 30)
    assert responses(res) == ["SD", "PD"]
    assert res["target_response"].iloc[2] == "PR"


def test_overall_response_table():
    assert overall_response("CR", "CR", "N") == "CR"
    assert overall_response("CR", "NE", "N") == "PR"
    assert overall_response("PR", "NE", "N") == "PR"
    assert overall_response("SD", "NON-CR/NON-PD", "EQUIVOCAL") == "SD"
    assert overall_response("NE", "NON-CR/NON-PD", "N") == "NE"
    assert overall_response("SD", "NON-CR/NON-PD", "UNEQUIVOCAL") == "PD"
    assert overall_response(None, "CR", "N") == "CR"
    assert overall_response(None, "NE", "N") == "NE"
    assert overall_response("CR", None, "NE") == "NE"


def test_bad_input_errors():
    with pytest.raises(ValueError, match="lacks column"):
        recist_from_measurements(pd.DataFrame({"patient_id": ["P"], "timepoint": ["V0"]}))
    with pytest.raises(TypeError, match="pandas DataFrame"):
        recist_from_measurements([1, 2])
    with pytest.raises(ValueError, match="must be >= 0 mm; patient 'P1'"):
        recist_from_measurements(table([("V0", D[0], "a", -3.0)]))
    with pytest.raises(ValueError, match="'role' must be one of"):
        recist_from_measurements(table([("V0", D[0], "a", 20.0, {"role": "tgt"})]))
    with pytest.raises(ValueError, match="baseline timepoint 'V9'"):
        recist_from_measurements(table([("V0", D[0], "a", 20.0)]), baseline={"P1": "V9"})
    with pytest.raises(ValueError, match="target lesion"):
        recist_from_measurements(table([("V0", D[0], "a", math.nan, {"role": "target"})]))


def test_before_baseline_rows_kept():
    m = table([("S", "2019-12-01", "a", 28.0), ("V0", D[0], "a", 30.0), ("V1", D[1], "a", 20.0)])
    res = recist_from_measurements(m, baseline={"P1": "V0"})
    assert res["not_evaluable_reason"].iloc[0] == "before_baseline"
    assert res["overall_response"].tolist() == [None, None, "PR"]
