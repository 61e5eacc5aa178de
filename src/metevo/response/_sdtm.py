"""CDISC SDTM in and out: RECIST 1.1 from TU/TR, and SDTM-like TU/TR/RS export.

:func:`recist_from_sdtm` reads the Tumor Identification (TU) and Tumor Results (TR) domains as
a trial's data flow delivers them (one row per lesion, test and visit, several evaluators,
partial dates) and applies the engine of :mod:`metevo.response`. :func:`to_sdtm` writes metevo's
own measurements and responses back as SDTM-like TU, TR and RS tables, with metevo as the
evaluator.

Variables used (SDTMIG v3.3 / Oncology TU, TR, RS domains):

* TU: ``USUBJID``, ``TULNKID`` (lesion link id), ``TUORRES`` (TARGET / NON-TARGET / NEW),
  ``TULOC`` (location; ``LYMPH NODE`` marks nodal lesions), ``TUEVAL``, ``TUEVALID``,
  ``VISITNUM`` (visit of a NEW lesion).
* TR: ``USUBJID``, ``TRLNKID``, ``TRTESTCD`` (``LDIAM``, ``LPERP``, ``TUMSTATE``),
  ``TRSTRESN`` / ``TRSTRESC`` (result), ``TRSTAT`` (NOT DONE), ``VISITNUM``, ``VISIT``,
  ``TRDTC`` (ISO date, partial allowed), ``TREVAL``, ``TREVALID``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from metevo.response._recist import recist_from_measurements

__all__ = ["export_sdtm", "recist_from_sdtm", "to_sdtm"]

_NODAL_LOCATIONS = ("LYMPH NODE",)
#: ``TRREASND`` of a lesion treated locally (resection, ablation); such a lesion leaves the
#: assessment from that visit on (metevo's convention for the export, read back on input).
LOCAL_THERAPY_REASON = "LOCAL THERAPY (RESECTION OR ABLATION)"
_LOCAL_THERAPY_PATTERN = r"RESECT|ABLAT|LOCAL THERAPY"
_EVAL_SEP = "\x1f"


def _require(df: pd.DataFrame, name: str, columns: Sequence[str]) -> None:
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas DataFrame; got {type(df).__name__}.")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(
            f"the {name} table lacks SDTM variable(s) {missing}; found {list(df.columns)}. "
            f"Pass the {name} domain with standard variable names."
        )


def _evaluator(df: pd.DataFrame, prefix: str) -> pd.Series:
    ev = df.get(f"{prefix}EVAL")
    evid = df.get(f"{prefix}EVALID")
    ev = ev.fillna("").astype(str) if ev is not None else pd.Series("", index=df.index)
    evid = evid.fillna("").astype(str) if evid is not None else pd.Series("", index=df.index)
    return ev + _EVAL_SEP + evid


def recist_from_sdtm(
    tu: pd.DataFrame,
    tr: pd.DataFrame,
    *,
    nodal_locations: Sequence[str] = _NODAL_LOCATIONS,
    new_lesions_default: str = "N",
    **options: Any,
) -> pd.DataFrame:
    """RECIST 1.1 overall response per subject, visit and evaluator from SDTM TU and TR.

    Each evaluator (``TUEVAL``/``TUEVALID``) is assessed independently against its own
    baseline lesions. Non-nodal targets are measured by ``LDIAM``; lesions whose ``TULOC`` is a
    lymph node by ``LPERP`` (short axis), with CR when every nodal target is < 10 mm. A
    ``TRSTAT`` of NOT DONE, or a target without a result at a visit, makes the visit NE unless
    the measured targets already prove PD. ``TUMSTATE`` of non-targets: PRESENT, ABSENT,
    UNEQUIVOCAL (progression), EQUIVOCAL (not progression); a NEW lesion in TU is a new lesion at
    its visit (EQUIVOCAL ones only when confirmed UNEQUIVOCAL at the next visit). Result values
    ``TOO SMALL TO MEASURE`` count 5 mm (``too_small_mm``). Partial dates (``2014-02``) are kept
    as given in the output and read as the first day of the period for ordering.

    Parameters
    ----------
    tu, tr : DataFrame
        The TU and TR domains (variables listed in the module docstring).
    nodal_locations : sequence of str
        ``TULOC`` values that mark lymph nodes.
    new_lesions_default : {"N", "NE"}
        New-lesion status of a visit without a NEW lesion record.
    **options
        Thresholds of :func:`metevo.recist_from_measurements` (``pd_pct``, ``pr_pct``,
        ``cr_node_mm``, ``too_small_mm`` ...).

    Returns
    -------
    DataFrame
        One row per subject x post-baseline visit x evaluator: ``USUBJID``, ``VISITNUM``,
        ``VISIT``, ``RSDTC``, ``RSEVAL``, ``RSEVALID``, ``TRGRESP``, ``NTRGRESP``, ``NEWLPROG``,
        ``OVRLRESP``, plus ``SUMDIAM`` (mm), ``PCHG`` (% from baseline) and ``PCHGNAD``
        (% from nadir). Responses use CR, PR, SD, PD, NE and NON-CR/NON-PD; ``TRGRESP`` is
        empty for a subject without target lesions and ``NTRGRESP`` for one without
        non-targets.

    Examples
    --------
    >>> import pandas as pd, metevo  # doctest: +SKIP
    >>> tu = pd.read_csv("tu_onco_recist.csv"); tr = pd.read_csv("tr_onco_recist.csv")  # doctest: +SKIP
    >>> metevo.recist_from_sdtm(tu, tr)[["USUBJID", "VISITNUM", "OVRLRESP"]]  # doctest: +SKIP
    """
    _require(tu, "TU", ["USUBJID", "TULNKID", "TUORRES"])
    _require(tr, "TR", ["USUBJID", "TRLNKID", "TRTESTCD", "VISITNUM"])
    tu = tu.copy()
    tr = tr.copy()
    if tr["VISITNUM"].isna().any():
        bad = tr[tr["VISITNUM"].isna()].iloc[0]
        raise ValueError(
            f"TR.VISITNUM is empty for subject {bad['USUBJID']!r}, lesion {bad['TRLNKID']!r}; "
            "every TR record needs the visit number that orders the assessments."
        )
    tu["_ev"] = _evaluator(tu, "TU")
    tr["_ev"] = _evaluator(tr, "TR")
    nodal_set = {str(x).upper() for x in nodal_locations}
    role_map = {"TARGET": "target", "NON-TARGET": "non-target", "NEW": "new"}
    tu_roles = tu["TUORRES"].astype(str).str.upper().map(role_map)
    if tu_roles.isna().any():
        bad = tu.loc[tu_roles.isna()].iloc[0]
        raise ValueError(
            f"TU.TUORRES must be TARGET, NON-TARGET or NEW; subject {bad['USUBJID']!r}, lesion "
            f"{bad['TULNKID']!r} has {bad['TUORRES']!r}."
        )
    tu["_role"] = tu_roles
    loc = tu["TULOC"].astype(str).str.upper() if "TULOC" in tu else pd.Series("", index=tu.index)
    tu["_nodal"] = loc.isin(nodal_set)
    tu["_organ"] = loc
    lesion_info = tu.drop_duplicates(["USUBJID", "_ev", "TULNKID"]).set_index(
        ["USUBJID", "_ev", "TULNKID"]
    )
    # ---- one row per lesion x visit x evaluator
    key = ["USUBJID", "_ev", "TRLNKID", "VISITNUM"]
    tr["_done"] = ~(
        tr.get("TRSTAT", pd.Series(np.nan, index=tr.index)).astype(str).str.upper() == "NOT DONE"
    )
    reason = tr.get("TRREASND", pd.Series(np.nan, index=tr.index)).astype(str).str.upper()
    tr["_local"] = ~tr["_done"] & reason.str.contains(_LOCAL_THERAPY_PATTERN, regex=True)
    result_c = tr.get("TRSTRESC", tr.get("TRORRES", pd.Series(np.nan, index=tr.index)))
    tr["_resc"] = result_c.astype(object).where(result_c.notna(), None)
    tr["_resc"] = tr["_resc"].map(lambda v: str(v).strip().upper() if v is not None else None)
    num = tr.get("TRSTRESN")
    tr["_resn"] = (
        pd.to_numeric(num, errors="coerce")
        if num is not None
        else pd.to_numeric(tr["_resc"], errors="coerce")
    )
    info_by_key = {
        k: {"_nodal": r["_nodal"], "_organ": r["_organ"], "_role": r["_role"]}
        for k, r in zip(lesion_info.index, lesion_info.to_dict("records"), strict=True)
    }
    grouped: dict[tuple, dict[str, dict[str, Any]]] = {}
    firsts: dict[tuple, dict[str, Any]] = {}
    for r in tr[
        [
            *key,
            "TRTESTCD",
            "_done",
            "_local",
            "_resc",
            "_resn",
            *[c for c in ("TRDTC", "VISIT") if c in tr],
        ]
    ].to_dict("records"):
        k = tuple(r[c] for c in key)
        firsts.setdefault(k, r)
        grouped.setdefault(k, {}).setdefault(r["TRTESTCD"], r)
    rows: list[dict[str, Any]] = []
    for (subj, ev, lnk, visitnum), tests in grouped.items():
        info_key = (subj, ev, lnk)
        info = info_by_key.get(info_key)
        if info is None:
            raise ValueError(
                f"TR lesion {lnk!r} of subject {subj!r} (evaluator "
                f"{ev.replace(_EVAL_SEP, ' / ').strip(' /')!r}) has no TU record; every TRLNKID "
                "needs a TULNKID in TU for the same subject and evaluator."
            )
        first = firsts[(subj, ev, lnk, visitnum)]
        row: dict[str, Any] = {
            "patient_id": subj,
            "evaluator": ev,
            "timepoint": str(visitnum),
            "visit_order": float(visitnum),
            "date": first.get("TRDTC"),
            "VISIT": first.get("VISIT"),
            "lesion_id": str(lnk),
            "nodal": bool(info["_nodal"]),
            "organ": info["_organ"],
            "role": info["_role"],
            "ld_mm": math.nan,
            "sa_mm": math.nan,
            "state": None,
        }
        for test, col in (("LDIAM", "ld_mm"), ("LPERP", "sa_mm")):
            r = tests.get(test)
            if r is None:
                continue
            if not r["_done"]:
                row["state"] = "not_done"
            elif r["_resc"] == "TOO SMALL TO MEASURE":
                row["state"] = "too_small"
            else:
                row[col] = float(r["_resn"])
        r = tests.get("TUMSTATE")
        if r is not None:
            state = r["_resc"]
            if not r["_done"] or state is None:
                row["state"] = "not_done"
            else:
                row["state"] = {
                    "PRESENT": "present",
                    "ABSENT": "absent",
                    "UNEQUIVOCAL": "progression",
                    "EQUIVOCAL": "equivocal",
                }.get(state)
                if row["state"] is None:
                    raise ValueError(
                        f"TR TUMSTATE of subject {subj!r}, lesion {lnk!r}, visit {visitnum} is "
                        f"{state!r}; expected PRESENT, ABSENT, UNEQUIVOCAL or EQUIVOCAL."
                    )
        if any(t["_local"] for t in tests.values()):
            row["state"] = "removed"  # resected or ablated: leaves the assessment
        if row["role"] == "new" and row["state"] == "progression":
            row["state"] = "present"
        if row["role"] == "target" and row["state"] is None:
            needed = row["sa_mm"] if row["nodal"] else row["ld_mm"]
            if not math.isfinite(needed):
                row["state"] = "not_done"
        rows.append(row)
    # NEW lesions recorded in TU only (no TR row): a new lesion at the TU visit
    new_tu = tu[tu["_role"] == "new"]
    if len(new_tu) and "VISITNUM" in new_tu:
        have = {(r["patient_id"], r["evaluator"], r["lesion_id"], r["timepoint"]) for r in rows}
        for _, r in new_tu.iterrows():
            tp = str(r["VISITNUM"])
            if (r["USUBJID"], r["_ev"], str(r["TULNKID"]), tp) in have:
                continue
            rows.append(
                {
                    "patient_id": r["USUBJID"],
                    "evaluator": r["_ev"],
                    "timepoint": tp,
                    "visit_order": float(r["VISITNUM"]),
                    "date": r.get("TUDTC"),
                    "VISIT": r.get("VISIT"),
                    "lesion_id": str(r["TULNKID"]),
                    "nodal": bool(r["_nodal"]),
                    "organ": r["_organ"],
                    "role": "new",
                    "ld_mm": math.nan,
                    "sa_mm": math.nan,
                    "state": "present",
                }
            )
    meas = pd.DataFrame(rows)
    visit_names = meas.drop_duplicates(["patient_id", "evaluator", "timepoint"]).set_index(
        ["patient_id", "evaluator", "timepoint"]
    )["VISIT"]
    res = recist_from_measurements(
        meas.drop(columns=["VISIT"]),
        by=("evaluator",),
        new_lesions_default=new_lesions_default,
        **options,
    )
    res = res[~res["is_baseline"] & (res["not_evaluable_reason"] != "before_baseline")]
    ev = res["evaluator"].str.split(_EVAL_SEP, n=1, expand=True)
    out = pd.DataFrame(
        {
            "USUBJID": res["patient_id"].to_numpy(),
            "VISITNUM": pd.to_numeric(res["timepoint"]).to_numpy(),
            "VISIT": [
                visit_names.get((p, e, t))
                for p, e, t in zip(
                    res["patient_id"], res["evaluator"], res["timepoint"], strict=True
                )
            ],
            "RSDTC": res["date"].to_numpy(),
            "RSEVAL": ev[0].replace("", None).to_numpy(),
            "RSEVALID": ev[1].replace("", None).to_numpy(),
            "TRGRESP": res["target_response"].to_numpy(),
            "NTRGRESP": res["nontarget_response"].to_numpy(),
            "NEWLPROG": res["new_lesions"].to_numpy(),
            "OVRLRESP": res["overall_response"].to_numpy(),
            "SUMDIAM": res["target_sum_mm"].to_numpy(),
            "PCHG": res["pct_change_baseline"].to_numpy(),
            "PCHGNAD": res["pct_change_nadir"].to_numpy(),
        }
    )
    if np.issubdtype(out["VISITNUM"].dtype, np.floating) and (out["VISITNUM"] % 1 == 0).all():
        out["VISITNUM"] = out["VISITNUM"].astype(int)
    return out.sort_values(
        ["USUBJID", "VISITNUM", "RSEVAL", "RSEVALID"], na_position="first"
    ).reset_index(drop=True)


def to_sdtm(
    recist: pd.DataFrame,
    lesions: pd.DataFrame | None = None,
    *,
    study_id: str = "METEVO",
    evaluator: str = "METEVO",
    method: str = "CT SCAN",
    location: str = "LIVER",
) -> dict[str, pd.DataFrame]:
    """Export responses (and lesion measurements) as SDTM-like TU, TR and RS tables.

    Parameters
    ----------
    recist : DataFrame
        The ``recist`` table (one row per patient x scan).
    lesions : DataFrame, optional
        The ``recist_lesions`` table (one row per patient x scan x RECIST lesion: ``lesion_id``
        such as ``L3`` for baseline lesion 3 or ``NV2:5`` for a new lesion, ``role``, ``ld_mm``,
        ``state``). Without it TU and TR are empty.
    study_id, evaluator, method, location : str
        ``STUDYID``; ``TUEVAL``/``TREVAL``/``RSEVAL`` (metevo as the evaluator); ``TUMETHOD``;
        ``TULOC``.

    Returns
    -------
    dict of DataFrame
        ``{"TU": ..., "TR": ..., "RS": ...}`` with SDTM variable names; ``VISITNUM`` is the
        scan's rank (1 = first scan), ``VISIT`` its timepoint label, dates ISO 8601.

    Examples
    --------
    >>> tables = to_sdtm(recist_table, recist_lesions)  # doctest: +SKIP
    >>> tables["RS"].to_csv("rs.csv", index=False)  # doctest: +SKIP
    """
    need = ["patient_id", "timepoint", "date", "overall_response"]
    _require(recist, "recist", need)
    rec = recist.copy()
    rec["_date"] = pd.to_datetime(rec["date"])
    rec = rec.sort_values(["patient_id", "_date"], kind="stable")
    rec["VISITNUM"] = rec.groupby("patient_id").cumcount() + 1
    visitnum = dict(
        zip(
            zip(rec["patient_id"], rec["timepoint"].astype(str), strict=True),
            rec["VISITNUM"],
            strict=True,
        )
    )
    dates = dict(
        zip(
            zip(rec["patient_id"], rec["timepoint"].astype(str), strict=True),
            rec["_date"].dt.strftime("%Y-%m-%d"),
            strict=True,
        )
    )
    rs_rows = []
    tests = (
        ("TRGRESP", "Target Response", "target_response"),
        ("NTRGRESP", "Non-target Response", "nontarget_response"),
        ("NEWLPROG", "New Lesion Progression", "new_lesions"),
        ("OVRLRESP", "Overall Response", "overall_response"),
    )
    for _, r in rec.iterrows():
        for code, name, col in tests:
            value = r.get(col)
            if value is None or (isinstance(value, float) and math.isnan(value)):
                continue
            if code == "NEWLPROG":
                value = {"Y": "UNEQUIVOCAL", "EQUIVOCAL": "EQUIVOCAL"}.get(value)
                if value is None:
                    continue
            rs_rows.append(
                {
                    "STUDYID": study_id,
                    "DOMAIN": "RS",
                    "USUBJID": r["patient_id"],
                    "RSTESTCD": code,
                    "RSTEST": name,
                    "RSCAT": "RECIST 1.1",
                    "RSORRES": value,
                    "RSSTRESC": value,
                    "RSEVAL": evaluator,
                    "VISITNUM": r["VISITNUM"],
                    "VISIT": str(r["timepoint"]),
                    "RSDTC": r["_date"].strftime("%Y-%m-%d"),
                }
            )
    rs = pd.DataFrame(rs_rows)
    if len(rs):
        rs.insert(3, "RSSEQ", rs.groupby("USUBJID").cumcount() + 1)
    tu_rows: list[dict[str, Any]] = []
    tr_rows: list[dict[str, Any]] = []
    if lesions is not None and len(lesions):
        _require(
            lesions,
            "recist_lesions",
            ["patient_id", "timepoint", "lesion_id", "role", "ld_mm", "state"],
        )
        les = lesions.copy()
        les["timepoint"] = les["timepoint"].astype(str)
        les["_v"] = [
            visitnum.get((p, t)) for p, t in zip(les["patient_id"], les["timepoint"], strict=True)
        ]
        les = les.dropna(subset=["_v"]).sort_values(
            ["patient_id", "_v", "lesion_id"], kind="stable"
        )
        links: dict[tuple[str, str], str] = {}
        counters: dict[tuple[str, str], int] = {}
        for _, r in les.iterrows():
            key = (r["patient_id"], r["lesion_id"])
            if key in links or r["role"] not in ("target", "non-target", "new"):
                continue
            prefix = {"target": "T", "non-target": "NT", "new": "NEW"}[r["role"]]
            counters[(r["patient_id"], prefix)] = counters.get((r["patient_id"], prefix), 0) + 1
            links[key] = f"{prefix}{counters[(r['patient_id'], prefix)]:02d}"
            tu_rows.append(
                {
                    "STUDYID": study_id,
                    "DOMAIN": "TU",
                    "USUBJID": r["patient_id"],
                    "TULNKID": links[key],
                    "TUTESTCD": "TUMIDENT",
                    "TUTEST": "Tumor Identification",
                    "TUORRES": r["role"].upper(),
                    "TUSTRESC": r["role"].upper(),
                    "TULOC": location,
                    "TUMETHOD": method,
                    "TUEVAL": evaluator,
                    "TUREFID": str(r["lesion_id"]),
                    "VISITNUM": int(r["_v"]),
                    "VISIT": r["timepoint"],
                    "TUDTC": dates[(r["patient_id"], r["timepoint"])],
                }
            )
        state_map = {
            "present": "PRESENT",
            "absent": "ABSENT",
            "progression": "UNEQUIVOCAL",
            "equivocal": "EQUIVOCAL",
        }
        for _, r in les.iterrows():
            link = links.get((r["patient_id"], r["lesion_id"]))
            if link is None:
                continue
            base = {
                "STUDYID": study_id,
                "DOMAIN": "TR",
                "USUBJID": r["patient_id"],
                "TRLNKID": link,
                "TREVAL": evaluator,
                "VISITNUM": int(r["_v"]),
                "VISIT": r["timepoint"],
                "TRDTC": dates[(r["patient_id"], r["timepoint"])],
                "TRSTAT": None,
            }
            role = link.rstrip("0123456789")
            base["TRGRPID"] = {"T": "TARGET", "NT": "NON-TARGET", "NEW": "NEW"}[role]
            if r["state"] == "removed":
                test = ("LDIAM", "Longest Diameter") if role == "T" else ("TUMSTATE", "Tumor State")
                tr_rows.append(
                    {
                        **base,
                        "TRTESTCD": test[0],
                        "TRTEST": test[1],
                        "TRORRES": None,
                        "TRSTRESN": np.nan,
                        "TRORRESU": None,
                        "TRSTAT": "NOT DONE",
                        "TRREASND": LOCAL_THERAPY_REASON,
                    }
                )
                continue
            if role == "T":
                if r["state"] == "not_done" or not np.isfinite(r["ld_mm"]):
                    tr_rows.append(
                        {
                            **base,
                            "TRTESTCD": "LDIAM",
                            "TRTEST": "Longest Diameter",
                            "TRORRES": None,
                            "TRSTRESN": np.nan,
                            "TRORRESU": None,
                            "TRSTAT": "NOT DONE",
                        }
                    )
                else:
                    tr_rows.append(
                        {
                            **base,
                            "TRTESTCD": "LDIAM",
                            "TRTEST": "Longest Diameter",
                            "TRORRES": f"{r['ld_mm']:.1f}",
                            "TRSTRESN": round(float(r["ld_mm"]), 1),
                            "TRORRESU": "mm",
                        }
                    )
            else:
                value = state_map.get(r["state"]) if r["state"] != "not_done" else None
                tr_rows.append(
                    {
                        **base,
                        "TRTESTCD": "TUMSTATE",
                        "TRTEST": "Tumor State",
                        "TRORRES": value,
                        "TRSTRESN": np.nan,
                        "TRORRESU": None,
                        "TRSTAT": None if value else "NOT DONE",
                    }
                )
    tu = pd.DataFrame(tu_rows)
    tr = pd.DataFrame(tr_rows)
    for df, prefix in ((tu, "TU"), (tr, "TR")):
        if len(df):
            df.insert(3, f"{prefix}SEQ", df.groupby("USUBJID").cumcount() + 1)
    if len(tr):
        tr["TRSTRESC"] = tr["TRORRES"]
        tr["TRSTRESU"] = tr["TRORRESU"]
    return {"TU": tu, "TR": tr, "RS": rs}


def export_sdtm(
    analysis_dir: str | Path, out_dir: str | Path | None = None, **options: Any
) -> dict[str, Path]:
    """Write ``tu.csv``, ``tr.csv`` and ``rs.csv`` from an analysis folder.

    Reads ``recist.parquet`` and ``recist_lesions.parquet`` written by ``metevo analyze`` and
    writes the tables of :func:`to_sdtm` into ``out_dir`` (default ``<analysis_dir>/sdtm``).

    Returns
    -------
    dict
        ``{"TU": path, "TR": path, "RS": path}``.
    """
    analysis_dir = Path(analysis_dir)
    rec_path = analysis_dir / "recist.parquet"
    if not rec_path.is_file():
        raise FileNotFoundError(
            f"{rec_path} not found; run `metevo analyze` (with the recist stage) into "
            f"{analysis_dir} first."
        )
    les_path = analysis_dir / "recist_lesions.parquet"
    recist = pd.read_parquet(rec_path)
    lesions = pd.read_parquet(les_path) if les_path.is_file() else None
    tables = to_sdtm(recist, lesions, **options)
    out = Path(out_dir) if out_dir is not None else analysis_dir / "sdtm"
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, df in tables.items():
        paths[name] = out / f"{name.lower()}.csv"
        df.to_csv(paths[name], index=False)
    return paths
