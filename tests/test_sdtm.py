"""RECIST from SDTM TU/TR against the pharmaverse reference responses, and SDTM export."""

from __future__ import annotations

import pandas as pd
import pytest

from metevo.outcomes import best_overall_response, confirmed_response
from metevo.recist import overall_response
from metevo.sdtm import recist_from_sdtm


@pytest.fixture(scope="module")
def sdtm(shared_data):
    d = shared_data / "recist_reference" / "pharmaversesdtm"
    if not (d / "tu_onco_recist.csv").is_file():
        pytest.skip(f"pharmaversesdtm reference tables are absent from {d}")
    return {
        name: pd.read_csv(d / f"{name}_onco_recist.csv") for name in ("tu", "tr", "rs")
    }


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
    out = recist_from_sdtm(sdtm["tu"], sdtm["tr"]).set_index(["USUBJID", "VISITNUM", "RSEVAL", "RSEVALID"])
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
            got, when = best_overall_response(grp["RSDTC"], grp["OVRLRESP"], rand, confirmed=confirmed, ref_start_window=42)
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
    tr = pd.DataFrame({"USUBJID": ["S1"], "TRLNKID": ["T01"], "TRTESTCD": ["LDIAM"], "VISITNUM": [1]})
    with pytest.raises(ValueError, match="TUORRES must be TARGET"):
        recist_from_sdtm(tu, tr)
    with pytest.raises(ValueError, match="lacks SDTM variable"):
        recist_from_sdtm(tu.drop(columns="TULNKID"), tr)
    tu2 = pd.DataFrame({"USUBJID": ["S1"], "TULNKID": ["T02"], "TUORRES": ["TARGET"]})
    tr2 = tr.assign(TRSTRESN=[20.0], TRDTC=["2020-01-01"])
    with pytest.raises(ValueError, match="TR lesion 'T01' of subject 'S1'"):
        recist_from_sdtm(tu2, tr2)
