"""RECIST from SDTM TU/TR against the pharmaverse reference responses, and SDTM export."""

from __future__ import annotations

import pandas as pd
import pytest

from metevo.response import (
    best_overall_response,
    confirmed_response,
    overall_response,
    recist_from_sdtm,
)


@pytest.fixture(scope="module")
def sdtm(shared_data):
    d = shared_data / "recist_reference" / "pharmaversesdtm"
    if not (d / "tu_onco_recist.csv").is_file():
        pytest.skip(f"pharmaversesdtm reference tables are absent from {d}")
    return {name: pd.read_csv(d / f"{name}_onco_recist.csv") for name in ("tu", "tr", "rs")}


def test_reproduces_every_ovrlresp(sdtm):
    out = recist_from_sdtm(sdtm["tu"], sdtm["tr"])
    rs = sdtm["rs"]
    keys = ["USUBJID", "VISITNUM", "RSEVAL", "RSEVALID"]
    merged = rs.merge(out, on=keys, how="outer", indicator=True, suffixes=("_ref", ""))
    assert len(rs) == 66
    assert (merged["_merge"] == "both").all()
    mismatch = merged[merged["RSSTRESC"] != merged["OVRLRESP"]]
    assert mismatch.empty, mismatch[[*keys, "RSSTRESC", "OVRLRESP"]].to_string()
    # the partial date is passed through as given
    assert (merged["RSDTC_ref"] == merged["RSDTC"]).all()
    assert "2014-02" in set(out["RSDTC"])


def test_nodal_cr_and_nadir_zero_relapse(sdtm):
    out = recist_from_sdtm(sdtm["tu"], sdtm["tr"]).set_index(
        ["USUBJID", "VISITNUM", "RSEVAL", "RSEVALID"]
    )
    # 01-701-1115 week 9: nodal targets 7.0 and 3.06 mm (< 10 mm), chest 0 -> CR, sum 10.06 mm
    r = out.loc[("01-701-1115", 4, "INDEPENDENT ASSESSOR", "RADIOLOGIST 1")]
    assert r["OVRLRESP"] == "CR" and r["SUMDIAM"] == pytest.approx(7.0 + 0.0 + 3.06)
    # 01-701-1133 week 9 after a CR (nadir 0): +5.15 mm -> PD; +4.95 mm -> not PD
    assert out.loc[("01-701-1133", 4, "INDEPENDENT ASSESSOR", "RADIOLOGIST 1"), "OVRLRESP"] == "PD"
    assert out.loc[("01-701-1133", 4, "INDEPENDENT ASSESSOR", "RADIOLOGIST 2"), "OVRLRESP"] == "PR"


def test_bor_from_sdtm_matches_pharmaverseadam(sdtm, shared_data):
    adrs_path = shared_data / "recist_reference" / "pharmaverseadam" / "adrs_recist8_subset.csv"
    if not adrs_path.is_file():
        pytest.skip(f"{adrs_path} is absent")
    adrs = pd.read_csv(adrs_path)
    out = recist_from_sdtm(sdtm["tu"], sdtm["tr"])
    inv = out[out["RSEVAL"] == "INVESTIGATOR"]
    for subj, grp in inv.groupby("USUBJID"):
        ref = adrs[adrs["USUBJID"] == subj].set_index("PARAMCD")
        rand = ref["RANDDT"].iloc[0]
        for param, confirmed in (("BOR", False), ("CBOR", True)):
            got, when = best_overall_response(
                grp["RSDTC"], grp["OVRLRESP"], rand, confirmed=confirmed, ref_start_window=42
            )
            assert got == ref.loc[param, "AVALC"], (subj, param)
            assert str(when.date()) == ref.loc[param, "ADT"], (subj, param)
        crsp, _ = confirmed_response(grp["RSDTC"], grp["OVRLRESP"])
        assert ("Y" if crsp else "N") == ref.loc["CRSP", "AVALC"], subj


def test_combination_table_of_rs_onco(shared_data):
    path = shared_data / "recist_reference" / "pharmaversesdtm" / "rs_onco.csv"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    rs = pd.read_csv(path)
    rs["ev"] = rs["RSEVAL"].fillna("") + rs["RSEVALID"].fillna("")
    wide = rs.pivot_table(
        index=["USUBJID", "VISITNUM", "ev"], columns="RSTESTCD", values="RSSTRESC", aggfunc="first"
    ).reset_index()
    wide = wide[wide["OVRLRESP"] != "CHECK"].dropna(subset=["TRGRESP", "NTRGRESP", "OVRLRESP"])
    new = wide["NEWLPROG"].fillna("N")
    assert len(wide) > 1800
    got = [
        overall_response(t, n, x)
        for t, n, x in zip(wide["TRGRESP"], wide["NTRGRESP"], new, strict=True)
    ]
    assert got == wide["OVRLRESP"].tolist()


def test_bad_sdtm_input():
    tu = pd.DataFrame({"USUBJID": ["S1"], "TULNKID": ["T01"], "TUORRES": ["TARGETS"]})
    tr = pd.DataFrame(
        {"USUBJID": ["S1"], "TRLNKID": ["T01"], "TRTESTCD": ["LDIAM"], "VISITNUM": [1]}
    )
    with pytest.raises(ValueError, match="TUORRES must be TARGET"):
        recist_from_sdtm(tu, tr)
    with pytest.raises(ValueError, match="lacks SDTM variable"):
        recist_from_sdtm(tu.drop(columns="TULNKID"), tr)
    tu2 = pd.DataFrame({"USUBJID": ["S1"], "TULNKID": ["T02"], "TUORRES": ["TARGET"]})
    tr2 = tr.assign(TRSTRESN=[20.0], TRDTC=["2020-01-01"])
    with pytest.raises(ValueError, match="TR lesion 'T01' of subject 'S1'"):
        recist_from_sdtm(tu2, tr2)


def test_export_round_trip_reproduces_metevo_responses():
    import datetime as dt

    from metevo.response import assess_patient, to_sdtm

    start = dt.date(2021, 1, 4)
    tps = [f"V{i}" for i in range(5)]
    scans = pd.DataFrame(
        {
            "timepoint": tps,
            "date": [start + dt.timedelta(days=56 * i) for i in range(5)],
            "days": [56 * i for i in range(5)],
            "is_baseline": [True] + [False] * 4,
        }
    )
    rows = [
        ("V0", 1, 30.0),
        ("V0", 2, 22.0),
        ("V0", 3, 8.0),
        ("V1", 1, 12.0),
        ("V1", 4, 9.0),
        ("V1", 2, 15.0),
        ("V1", 3, 6.0),
        ("V2", 1, 10.0),
        ("V2", 2, 14.0),
        ("V3", 1, 11.0),
        ("V3", 2, 14.0),
        ("V3", 6, 6.0),
        ("V4", 1, 12.0),
        ("V4", 2, 15.0),
        ("V4", 6, 13.0),
    ]
    les = pd.DataFrame(
        [
            {
                "timepoint": t,
                "lesion_id": i,
                "axial_ld_mm": d,
                "volume_ml": d**3 / 2000,
                "mean_hu": 60.0,
            }
            for t, i, d in rows
        ]
    )
    pairs = [
        ("V0", 1, "V1", 1),
        ("V0", 1, "V1", 4),
        ("V0", 2, "V1", 2),
        ("V0", 3, "V1", 3),
        ("V1", 1, "V2", 1),
        ("V1", 4, "V2", 1),
        ("V1", 2, "V2", 2),
        ("V2", 1, "V3", 1),
        ("V2", 2, "V3", 2),
        ("V3", 1, "V4", 1),
        ("V3", 2, "V4", 2),
        ("V3", 6, "V4", 6),
    ]
    edges = pd.DataFrame(
        pairs, columns=["timepoint_from", "lesion_id_from", "timepoint_to", "lesion_id_to"]
    )
    rec, _, lesions = assess_patient("P9", scans, les, edges, treatment_start=start)
    assert rec["overall_response"].tolist()[1:] == [
        "PR",
        "PR",
        "PD",
        "PD",
    ]  # V3: equivocal new lesion confirmed at V4
    tables = to_sdtm(rec, lesions)
    assert set(tables["TU"]["TUORRES"]) == {"TARGET", "NON-TARGET", "NEW"}
    assert {"TRGRESP", "NTRGRESP", "OVRLRESP"} <= set(tables["RS"]["RSTESTCD"])
    back = recist_from_sdtm(tables["TU"], tables["TR"])
    assert back["OVRLRESP"].tolist() == rec["overall_response"].tolist()[1:]
    assert back["SUMDIAM"].tolist() == pytest.approx(rec["target_sum_mm"].tolist()[1:])
    rs = tables["RS"]
    assert (
        rs.loc[rs["RSTESTCD"] == "OVRLRESP", "RSSTRESC"].tolist()
        == rec["overall_response"].tolist()[1:]
    )


def test_cli_recist_sdtm_and_export(sdtm, tmp_path, shared_data):
    from typer.testing import CliRunner

    from metevo.cli import app

    d = shared_data / "recist_reference" / "pharmaversesdtm"
    out = tmp_path / "rs.csv"
    res = CliRunner().invoke(
        app,
        [
            "recist-sdtm",
            str(d / "tu_onco_recist.csv"),
            str(d / "tr_onco_recist.csv"),
            "-o",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    assert len(pd.read_csv(out)) == 66
    res = CliRunner().invoke(app, ["export-sdtm", str(tmp_path / "missing")])
    assert res.exit_code == 2 and "recist.parquet not found" in res.output


def test_resected_lesion_survives_the_round_trip():
    import datetime as dt

    from metevo.response import assess_patient
    from metevo.response._sdtm import LOCAL_THERAPY_REASON, to_sdtm

    start = dt.date(2021, 1, 4)
    scans = pd.DataFrame(
        {
            "timepoint": ["V0", "V1", "V2"],
            "date": [start + dt.timedelta(days=56 * i) for i in range(3)],
            "days": [0, 56, 112],
            "is_baseline": [True, False, False],
        }
    )
    les = pd.DataFrame(
        {
            "timepoint": ["V0", "V0", "V1", "V1", "V2"],
            "lesion_id": [1, 2, 1, 2, 1],
            "axial_ld_mm": [30.0, 20.0, 28.0, 20.0, 27.0],
            "volume_ml": 1.0,
            "mean_hu": 60.0,
        }
    )
    edges = pd.DataFrame(
        {
            "timepoint_from": ["V0", "V0", "V1"],
            "lesion_id_from": [1, 2, 1],
            "timepoint_to": ["V1", "V1", "V2"],
            "lesion_id_to": [1, 2, 1],
        }
    )
    events = pd.DataFrame(
        {"date": [start + dt.timedelta(days=80)], "event": ["resection"], "note": [""]}
    )
    rec, _, lesions = assess_patient("P1", scans, les, edges, treatment_start=start, events=events)
    tables = to_sdtm(rec, lesions)
    assert (tables["TR"]["TRREASND"] == LOCAL_THERAPY_REASON).sum() == 1
    back = recist_from_sdtm(tables["TU"], tables["TR"])
    assert back["OVRLRESP"].tolist() == rec["overall_response"].tolist()[1:] == ["SD", "SD"]
    assert back["PCHG"].iloc[1] == pytest.approx(-10.0)
