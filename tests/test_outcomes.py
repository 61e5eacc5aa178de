"""Best overall response (admiralonco fixtures), imaging PFS censoring rules, ETS, depth, nadir."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from metevo.response import (
    best_overall_response,
    confirmed_response,
    depth_of_response,
    early_tumour_shrinkage,
    imaging_pfs,
    time_to_nadir,
)


@pytest.fixture(scope="module")
def admiral(shared_data):
    d = shared_data / "recist_reference" / "admiralonco"
    if not (d / "ovr_input.csv").is_file():
        pytest.skip(f"admiralonco fixtures are absent from {d}")
    return {
        name: pd.read_csv(d / f"{name}.csv", dtype=str)
        for name in ("ovr_input", "subjects", "expected_bor", "expected_cbor", "expected_crsp")
    }


def _adt(ts):
    return "" if pd.isna(ts) else str(ts.date())


@pytest.mark.parametrize("param", ["bor", "cbor"])
def test_admiralonco_bor_and_confirmed_bor(admiral, param):
    ovr, subj = admiral["ovr_input"], admiral["subjects"].set_index("USUBJID")
    expected = admiral[f"expected_{param}"].fillna("")
    assert len(expected) == (8 if param == "bor" else 9)
    for _, e in expected.iterrows():
        o = ovr[ovr["USUBJID"] == e["USUBJID"]]
        s = subj.loc[e["USUBJID"]]
        got, when = best_overall_response(
            o["ADT"],
            o["AVALC"],
            s["TRTSDT"],
            confirmed=param == "cbor",
            ref_start_window=28,
            ref_confirm=28,
            max_nr_ne=1,
            accept_sd=False,
            pd_date=s["PD_DATE"] if param == "cbor" and isinstance(s["PD_DATE"], str) else None,
        )
        assert (got, _adt(when)) == (e["AVALC"], e["ADT"]), e["USUBJID"]


def test_admiralonco_confirmed_response(admiral):
    ovr, subj = admiral["ovr_input"], admiral["subjects"].set_index("USUBJID")
    for _, e in admiral["expected_crsp"].fillna("").iterrows():
        o = ovr[ovr["USUBJID"] == e["USUBJID"]]
        pd_date = subj.loc[e["USUBJID"], "PD_DATE"]
        ok, when = confirmed_response(
            o["ADT"], o["AVALC"], pd_date=pd_date if isinstance(pd_date, str) else None
        )
        assert ("Y" if ok else "N", _adt(when)) == (e["AVALC"], e["ADT"]), e["USUBJID"]


def test_bor_hand_cases():
    # SD before the 42-day window is NE; after PD nothing counts
    assert best_overall_response(["2020-01-20"], ["SD"], "2020-01-01")[0] == "NE"
    assert best_overall_response(["2020-02-20"], ["SD"], "2020-01-01")[0] == "SD"
    assert (
        best_overall_response(["2020-02-20", "2020-04-01"], ["PD", "PR"], "2020-01-01")[0] == "PD"
    )
    assert best_overall_response([], [], "2020-01-01")[0] == "MISSING"
    with pytest.raises(ValueError, match="reference_date is missing"):
        best_overall_response(["2020-02-20"], ["SD"], None)
    with pytest.raises(ValueError, match="overall response 'XX'"):
        best_overall_response(["2020-02-20"], ["XX"], "2020-01-01")


D = ["2020-02-12", "2020-04-08", "2020-06-03", "2020-07-29", "2020-09-23"]  # every 56 days


def test_pfs_event_at_first_pd():
    r = imaging_pfs(D[:3], ["SD", "PR", "PD"], "2020-01-01")
    assert (r.days, r.event, r.censor_reason) == (
        (pd.Timestamp(D[2]) - pd.Timestamp("2020-01-01")).days + 1,
        True,
        None,
    )


def test_pfs_death_is_event_and_no_event_censored_at_last_adequate():
    r = imaging_pfs(D[:2], ["SD", "SD"], "2020-01-01", death_date="2020-05-01")
    assert r.event and r.date == pd.Timestamp("2020-05-01")
    r = imaging_pfs(D[:3], ["SD", "SD", "NE"], "2020-01-01")
    assert (r.event, r.censor_reason, r.date) == (False, "no_event", pd.Timestamp(D[1]))


def test_pfs_pd_after_two_missed_assessments():
    # SD at D0, then NE, NE, PD at D3: 168 days > 2.5 x 56 -> FDA: censored at D0; EMA: event
    resp = ["SD", "NE", "NE", "PD"]
    r = imaging_pfs(D[:4], resp, "2020-01-01", assessment_interval_days=56)
    assert (r.event, r.censor_reason, r.date) == (
        False,
        "event_after_missed_assessments",
        pd.Timestamp(D[0]),
    )
    assert imaging_pfs(D[:4], resp, "2020-01-01", assessment_interval_days=56, rules="ema").event
    # one missed assessment: still an event
    r = imaging_pfs(D[:3], ["SD", "NE", "PD"], "2020-01-01", assessment_interval_days=56)
    assert r.event


def test_pfs_no_baseline_or_no_post_baseline():
    r = imaging_pfs(D[:2], ["SD", "PD"], "2020-01-01", has_baseline=False)
    assert (r.days, r.event, r.censor_reason) == (1, False, "no_baseline_assessment")
    r = imaging_pfs([], [], "2020-01-01")
    assert (r.days, r.event, r.censor_reason) == (1, False, "no_post_baseline_assessment")
    # death soon after start without an assessment is an event (FDA Table A)
    r = imaging_pfs([], [], "2020-01-01", death_date="2020-02-01", assessment_interval_days=56)
    assert r.event and r.days == 32


def test_pfs_new_treatment_before_pd():
    r = imaging_pfs(D[:4], ["SD", "SD", "SD", "PD"], "2020-01-01", new_treatment_date="2020-06-20")
    assert (r.event, r.censor_reason, r.date) == (
        False,
        "new_anticancer_treatment",
        pd.Timestamp(D[2]),
    )
    assert imaging_pfs(
        D[:4], ["SD", "SD", "SD", "PD"], "2020-01-01", new_treatment_date="2020-06-20", rules="ema"
    ).event
    with pytest.raises(ValueError, match="rules must be one of"):
        imaging_pfs(D[:1], ["SD"], "2020-01-01", rules="fda")


def test_pfs_extrahepatic_progression_without_scan():
    r = imaging_pfs(D[:2], ["SD", "SD"], "2020-01-01", extra_pd_date="2020-05-01")
    assert r.event and r.date == pd.Timestamp("2020-05-01")


def test_ets_depth_nadir():
    assert early_tumour_shrinkage([0, 56], [0.0, -19.9]) is False
    assert early_tumour_shrinkage([0, 30, 60], [0.0, -5.0, -20.0]) is True
    assert early_tumour_shrinkage([0, 30, 80], [0.0, -40.0, -40.0]) is None
    assert depth_of_response([0.0, -12.5, -50.0]) == 50.0
    assert depth_of_response([0.0, 10.0]) == 0.0
    assert math.isnan(depth_of_response([]))
    assert time_to_nadir([0, 56, 112, 168], [50.0, 40.0, 30.0, 30.0]) == 112.0
    assert time_to_nadir([0, 56], [50.0, 60.0]) == 0.0
