"""Resections and ablations: lesions named in the events table (ids or a point), the inference
without naming, RECIST by hand across a resection, and trajectories/patterns that do not read
surgery as a response."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from metevo import open_cohort
from metevo.evolution import patient_trajectories
from metevo.exceptions import EventsTableError
from metevo.patterns._features import check_trajectories
from metevo.patterns._names import name_pattern
from metevo.response import assess_patient

START = dt.date(2021, 1, 4)
DATES = [START + dt.timedelta(days=56 * i) for i in range(5)]


def _scans(n):
    return pd.DataFrame(
        {
            "patient_id": "P1",
            "timepoint": [f"V{i}" for i in range(n)],
            "date": DATES[:n],
            "days": [56 * i for i in range(n)],
            "study_day": [56 * i for i in range(n)],
            "is_baseline": [i == 0 for i in range(n)],
        }
    )


def _lesions(rows):
    """rows: (timepoint, lesion_id, track_id, ld_mm, volume_ml, centroid xyz)."""
    cols = ["timepoint", "lesion_id", "track_id", "axial_ld_mm", "volume_ml"]
    out = pd.DataFrame([r[:5] for r in rows], columns=cols)
    centroids = np.array([r[5] if len(r) > 5 else (0.0, 0.0, 0.0) for r in rows], dtype=float)
    out[["centroid_x_mm", "centroid_y_mm", "centroid_z_mm"]] = centroids
    out["equivalent_diameter_mm"] = out["axial_ld_mm"]
    out["axial_sa_mm"] = out["axial_ld_mm"] / 2
    out["mean_hu"] = 60.0
    return out.assign(patient_id="P1", change="persistent")


def _edges(pairs):
    return pd.DataFrame(
        [
            {"timepoint_from": a, "lesion_id_from": b, "timepoint_to": c, "lesion_id_to": d}
            for a, b, c, d in pairs
        ],
        columns=["timepoint_from", "lesion_id_from", "timepoint_to", "lesion_id_to"],
    ).assign(patient_id="P1", skip=False)


def _event(kind="resection", day=DATES[1] + dt.timedelta(days=20), line=2, **naming):
    row = {"date": day, "event": kind, "note": None, "line": line}
    row.update(naming)
    return pd.DataFrame([row])


# A patient with a resected target (ids change from visit to visit, as in the lesions table):
# V0: L1 30 mm, L2 20 mm (targets), L3 8 mm (non-target)
# V1: 7 <- L1 24 mm, 8 <- L2 18 mm, 9 <- L3 8 mm; resection of lesion 8 between V1 and V2
# V2: 1 <- 7 20 mm, 2 <- 9 8 mm;  V3: 1 <- 1 27 mm, 2 <- 2 8 mm
RESECTED = _lesions(
    [
        ("V0", 1, 1, 30.0, 10.0), ("V0", 2, 2, 20.0, 4.0), ("V0", 3, 3, 8.0, 0.5),
        ("V1", 7, 1, 24.0, 6.0), ("V1", 8, 2, 18.0, 3.0), ("V1", 9, 3, 8.0, 0.5),
        ("V2", 1, 1, 20.0, 4.0), ("V2", 2, 3, 8.0, 0.5),
        ("V3", 1, 1, 27.0, 8.0), ("V3", 2, 3, 8.0, 0.5),
    ]
)  # fmt: skip
RESECTED_EDGES = _edges(
    [
        ("V0", 1, "V1", 7), ("V0", 2, "V1", 8), ("V0", 3, "V1", 9),
        ("V1", 7, "V2", 1), ("V1", 9, "V2", 2), ("V2", 1, "V3", 1), ("V2", 2, "V3", 2),
    ]
)  # fmt: skip


def _assess(les, edg, n, events):
    return assess_patient("P1", _scans(n), les, edg, treatment_start=START, events=events)


def test_resected_target_named_by_id_recist_by_hand():
    """By hand: V1 42 mm (-16 %, SD). From V2 lesion 2 is out: baseline 30, nadir over L1 24;
    V2 20 mm -> -33.3 % vs 30 (PR), -16.7 % vs 24; V3 27 mm -> +35 % over the nadir 20 (PD)."""
    rec, _, rl = _assess(RESECTED, RESECTED_EDGES, 4, _event(lesion_ids=(8,)))
    assert rec["target_sum_mm"].tolist() == [50.0, 42.0, 20.0, 27.0]
    assert rec["pct_change_baseline"].tolist() == pytest.approx([0.0, -16.0, -100 / 3, -10.0])
    assert rec["pct_change_nadir"].tolist() == pytest.approx([0.0, -16.0, -50 / 3, 35.0])
    assert rec["target_response"].tolist()[1:] == ["SD", "PR", "PD"]
    assert rec["nontarget_response"].tolist()[1:] == ["NON-CR/NON-PD"] * 3
    assert rec["new_lesions"].tolist()[1:] == ["N", "N", "N"]
    assert rec["overall_response"].tolist()[1:] == ["SD", "PR", "PD"]
    l2 = rl[rl["lesion_id"] == "L2"].set_index("timepoint")
    assert l2["state"].tolist() == ["present", "present", "removed", "removed"]
    assert l2["removal_reason"].tolist()[2:] == ["events_lesion_ids"] * 2
    assert rl.loc[rl["lesion_id"] != "L2", "removal_reason"].isna().all()
    # the same lesion named by its track, or left unnamed (gone, not shrinking to zero)
    for naming, reason in (({"track_ids": (2,)}, "events_track_ids"), ({}, "gone_after_local_therapy")):
        rec2, _, rl2 = _assess(RESECTED, RESECTED_EDGES, 4, _event(**naming))
        assert rec2["overall_response"].tolist() == rec["overall_response"].tolist()
        assert rl2.set_index(["lesion_id", "timepoint"]).loc[("L2", "V2"), "removal_reason"] == reason


def test_naming_overrides_the_inference_both_ways():
    """Named lesions leave whatever their course; unnamed lesions gone at the same visit stay in
    (they responded): here the non-target L3 vanishes at V2 too."""
    les = RESECTED[~(RESECTED["timepoint"].isin(["V2", "V3"]) & (RESECTED["track_id"] == 3))]
    edg = RESECTED_EDGES[~RESECTED_EDGES["timepoint_from"].isin(["V1", "V2"])
                         | (RESECTED_EDGES["lesion_id_to"] == 1)]  # fmt: skip
    _, _, named = _assess(les, edg, 4, _event(lesion_ids=(8,)))
    _, _, inferred = _assess(les, edg, 4, _event())
    at_v2 = lambda t: t[t["timepoint"] == "V2"].set_index("lesion_id")  # noqa: E731
    assert at_v2(named).loc["L3", "state"] == "absent"
    assert pd.isna(at_v2(named).loc["L3", "removal_reason"])
    assert at_v2(inferred).loc["L3", "state"] == "removed"
    assert at_v2(inferred).loc["L3", "removal_reason"] == "gone_after_local_therapy"


def test_ablation_zone_named_by_point_is_not_progression():
    """An ablated lesion leaves a 35 mm ablation zone: unnamed it is a false PD (62 mm over the
    nadir 48), named by a point 5 mm off its surface it leaves the assessment (27 vs 30, SD)."""
    les = _lesions(
        [
            ("V0", 1, 1, 30.0, 10.0, (0, 0, 0)), ("V0", 2, 2, 20.0, 4.0, (50, 20, 30)),
            ("V1", 1, 1, 28.0, 9.0, (0, 0, 0)), ("V1", 2, 2, 20.0, 4.0, (52, 20, 30)),
            ("V2", 1, 1, 27.0, 8.0, (0, 0, 0)), ("V2", 2, 2, 35.0, 20.0, (52, 20, 30)),
        ]
    )  # fmt: skip
    edg = _edges([("V0", 1, "V1", 1), ("V0", 2, "V1", 2), ("V1", 1, "V2", 1), ("V1", 2, "V2", 2)])
    rec, _, _ = _assess(les, edg, 3, _event("ablation"))
    assert rec["target_sum_mm"].iloc[2] == 62.0 and rec["overall_response"].iloc[2] == "PD"
    # 15 mm from the centroid (52, 20, 30) = 5 mm from the 20 mm lesion's surface
    point = {"point_x_mm": 52.0, "point_y_mm": 20.0, "point_z_mm": 45.0}
    rec, _, rl = _assess(les, edg, 3, _event("ablation", **point))
    assert rec["target_sum_mm"].iloc[2] == 27.0
    assert rec["pct_change_baseline"].iloc[2] == pytest.approx(-10.0)
    assert rec["overall_response"].iloc[2] == "SD"
    row = rl[(rl["timepoint"] == "V2") & (rl["lesion_id"] == "L2")].iloc[0]
    assert (row["state"], row["removal_reason"]) == ("removed", "events_point")
    far = {"point_x_mm": 52.0, "point_y_mm": 20.0, "point_z_mm": 62.0}  # 32 - 10 = 22 mm
    with pytest.raises(
        ValueError,
        match=r"patient 'P1', events table line 5, columns point_x_mm/point_y_mm/point_z_mm: no "
        r"lesion of the last scan \(V1\) before the ablation on 2021-03-21 lies within 10 mm of "
        r"the point \(52, 20, 62\) mm; the nearest is lesion 2 \(centroid \(52.0, 20.0, 30.0\) "
        r"mm, 22.0 mm from its surface\)",
    ):
        _assess(les, edg, 3, _event("ablation", line=5, **far))
    rec, _, _ = assess_patient(
        "P1", _scans(3), les, edg, treatment_start=START,
        events=_event("ablation", **far), resection_point_tolerance_mm=25.0,
    )  # fmt: skip
    assert rec["overall_response"].iloc[2] == "SD"


def test_named_ids_not_at_the_previous_scan_are_an_error():
    with pytest.raises(
        ValueError,
        match=r"patient 'P1', events table line 2, column lesion_ids: 1, 4 not found among the "
        r"lesion_ids of the last scan \(V1\) before the resection on 2021-03-21; found 7, 8, 9",
    ):
        _assess(RESECTED, RESECTED_EDGES, 4, _event(lesion_ids=(1, 4)))


def test_events_table_checks_the_naming_columns(mini_cohort):
    base = pd.read_csv(mini_cohort["events"], dtype=str)
    path = mini_cohort["root"] / "events_named.csv"

    def opened(**cols):
        table = base.copy()
        for k, v in cols.items():
            table[k] = [v]
        table.to_csv(path, index=False)
        return open_cohort(mini_cohort["manifest"], events=path, errors="raise")

    ev = opened(lesion_ids="3; 1").events
    assert ev["lesion_ids"].iloc[0] == (1, 3) and ev["line"].iloc[0] == 2
    ev = opened(point_x_mm="-12.5", point_y_mm="40", point_z_mm="7").events
    assert ev[["point_x_mm", "point_y_mm", "point_z_mm"]].iloc[0].tolist() == [-12.5, 40.0, 7.0]
    cases = [
        ({"lesion_ids": "3;b"}, r"line 2 \(patient P001\), column lesion_ids: '3;b' is not a list"),
        ({"point_x_mm": "1", "point_y_mm": "2"}, r"line 2 \(patient P001\): a point needs "
         r"point_x_mm, point_y_mm, point_z_mm together; point_x_mm, point_y_mm given, "
         r"point_z_mm empty"),
        ({"point_x_mm": "1", "point_y_mm": "2", "point_z_mm": "top"}, r"column point_z_mm: "
         r"'top' is not a coordinate in mm"),
        ({"lesion_ids": "3", "point_x_mm": "1", "point_y_mm": "2", "point_z_mm": "3"},
         r"named more than one way \(lesion_ids, point\)"),
        ({"event": "death", "track_ids": "2"}, r"track_ids names treated lesions, which only a "
         r"resection or ablation row may do; this row's event is 'death'"),
    ]  # fmt: skip
    for cols, message in cases:
        with pytest.raises(EventsTableError, match=message):
            opened(**cols)


def _trajectories(events):
    rec, _, rl = _assess(RESECTED, RESECTED_EDGES, 4, events)
    return patient_trajectories(
        RESECTED, RESECTED_EDGES, _scans(4), rec, recist_lesions=rl, events=events
    )


def test_trajectories_flag_and_adjust_the_burden_after_a_resection():
    """By hand: target sum over L1 alone from V2 (baseline 30 of 50): 20 -> 20 * 50 / 30; total
    volume over the lesions left (baseline 14.5 - 4 = 10.5 ml): 4.5 -> 4.5 * 14.5 / 10.5;
    2 of 3 baseline lesions left: 2 -> 3. rel_baseline equals RECIST's pct_change_baseline."""
    pt = _trajectories(_event(lesion_ids=(8,))).set_index("timepoint")
    assert pt["post_resection"].tolist() == [False, False, True, True]
    assert pt["target_sum_mm"].tolist() == [50.0, 42.0, 20.0, 27.0]
    assert pt["target_sum_adjusted_mm"].tolist() == pytest.approx([50, 42, 100 / 3, 45])
    assert pt["target_sum_rel_baseline"].tolist() == pytest.approx([0, -0.16, -1 / 3, -0.1])
    assert pt["total_volume_ml"].tolist() == [14.5, 9.5, 4.5, 8.5]
    assert pt["total_volume_adjusted_ml"].tolist() == pytest.approx(
        [14.5, 9.5, 4.5 * 14.5 / 10.5, 8.5 * 14.5 / 10.5]
    )
    assert pt["sum_ld_adjusted_mm"].tolist() == pytest.approx([58, 50, 28 * 58 / 38, 35 * 58 / 38])
    assert pt["n_lesions_adjusted"].tolist() == pytest.approx([3, 3, 3, 3])
    # the pattern features read the adjusted burden: PR then PD as RECIST says, where the raw
    # sum (50 -> 20, -60 %, then 27 still below 70 %) reads as a deep response
    table = check_trajectories(pt.reset_index(), ("target_sum_mm", "n_lesions"))
    assert table["target_sum_mm"].tolist() == pytest.approx([50, 42, 100 / 3, 45])
    curve = np.log(table["target_sum_mm"].to_numpy() / 50.0)
    assert name_pattern(curve) == "response then relapse"
    assert name_pattern(np.log(pt["target_sum_mm"].to_numpy() / 50.0)) == "deep response"
    # no resection: the flag stays off and the adjusted columns equal the raw ones
    plain = _trajectories(None)
    assert not plain["post_resection"].any()
    assert plain["target_sum_adjusted_mm"].tolist() == [50.0, 42.0, 20.0, 27.0]


def test_lesion_tracks_end_at_their_resection():
    """Track 2 (lesion L2) is resected after V1: its rows from V2 on are flagged and left out
    of the lesion spread, which would otherwise read 20 -> 0 mm as the deepest response. At V2
    L1 is 20 of 30 mm (log(21/31)) and L3 8 of 8 mm (0): spread 0 - log(21/31) = 0.39; with L2
    read as gone (floored at log 0.25) it would be 0 - log(0.25) = 1.39."""
    from metevo.evolution import lesion_trajectories
    from metevo.patterns._features import lesion_spread

    _, _, rl = _assess(RESECTED, RESECTED_EDGES, 4, _event(lesion_ids=(8,)))
    lt = lesion_trajectories(RESECTED, RESECTED_EDGES, _scans(4), recist_lesions=rl)
    flags = lt.set_index(["track_id", "timepoint"])["resected"]
    assert flags.loc[2].tolist() == [False, False, True, True]
    assert not flags.loc[[1, 3]].any()
    spread = lesion_spread(lt).set_index("timepoint")["lesion_log_ratio_spread"]
    assert spread["V2"] == pytest.approx(-np.log(21 / 31))
    unflagged = lesion_spread(lt.drop(columns="resected")).set_index("timepoint")
    assert unflagged.loc["V2", "lesion_log_ratio_spread"] == pytest.approx(-np.log(0.25))


def test_unnamed_lesion_already_shrinking_to_zero_is_a_response_and_says_so():
    """L2 shrank 20 -> 12 -> 6 mm (smaller twice, <= half its largest) before the unnamed
    resection and is gone after it: absent (a response, counts 0), reason shrinking_to_zero."""
    les = _lesions(
        [
            ("V0", 1, 1, 30.0, 10.0), ("V0", 2, 2, 20.0, 4.0), ("V1", 1, 1, 29.0, 9.0),
            ("V1", 2, 2, 12.0, 1.0), ("V2", 1, 1, 28.0, 8.0), ("V2", 2, 2, 6.0, 0.2),
            ("V3", 1, 1, 27.0, 8.0),
        ]
    )  # fmt: skip
    edg = _edges([("V0", 1, "V1", 1), ("V0", 2, "V1", 2), ("V1", 1, "V2", 1),
                  ("V1", 2, "V2", 2), ("V2", 1, "V3", 1)])  # fmt: skip
    rec, _, rl = _assess(les, edg, 4, _event(day=DATES[2] + dt.timedelta(days=20)))
    row = rl[(rl["timepoint"] == "V3") & (rl["lesion_id"] == "L2")].iloc[0]
    assert (row["state"], row["removal_reason"]) == ("absent", "shrinking_to_zero")
    assert rec["target_sum_mm"].iloc[3] == 27.0
    assert rec["pct_change_baseline"].iloc[3] == pytest.approx(-46.0)  # 27 vs 50
