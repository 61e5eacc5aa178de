"""Ground-truth, clinical and events tables of the synthetic image cohort (private).

Assembled from the patients' plans (:mod:`metevo.datasets._synthetic_cohort`) and the rows collected
while their scans were rendered; the columns are documented in :mod:`metevo.datasets`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from metevo.datasets._synthetic_kinetics import os_times

if TYPE_CHECKING:
    from metevo.datasets._synthetic_cohort import PatientPlan


def assemble_truth(plans: list[PatientPlan], parts: list[dict], rng_seed: int) -> dict:
    """Ground-truth tables, clinical and events tables for the realised cohort."""
    manifest = pd.DataFrame([r for p in parts for r in p["manifest"]])
    scans = pd.DataFrame([r for p in parts for r in p["scans"]])
    lesions = pd.DataFrame([r for p in parts for r in p["lesions"]])
    lesions = _appearance(lesions, scans)
    edges = _edges(lesions, scans)
    clinical, events, patients = [], [], []
    for plan in plans:
        rng = np.random.default_rng(np.random.SeedSequence([int(rng_seed), 0xE7, len(clinical)]))
        sc = scans[scans.patient_id == plan.patient_id]
        le = lesions[lesions.patient_id == plan.patient_id]
        ed = edges[edges.patient_id == plan.patient_id]
        clin, ev = _outcomes(rng, plan, sc, le)
        clinical.append(clin)
        events += ev
        patients.append(_patient_row(plan, sc, le, ed))
    clinical = pd.DataFrame(clinical)
    events = pd.DataFrame(events, columns=["patient_id", "date", "event", "note"])
    events = events.sort_values(["patient_id", "date", "event"], kind="stable", ignore_index=True)
    true_lesions = pd.DataFrame(
        [
            {
                "patient_id": plan.patient_id,
                "true_lesion_id": les.lesion_id,
                "role": les.role,
                "diameter0_mm": les.d0_mm,
                "d_per_day": les.d,
                "g_per_day": les.g,
                "onset_study_day": les.onset_day,
                "resected_study_day": les.resected_day,
                "center_x_mm": float(les.center[0]),
                "center_y_mm": float(les.center[1]),
                "center_z_mm": float(les.center[2]),
            }
            for plan in plans
            for les in plan.lesions
        ]
    )
    for col in ("onset_study_day", "resected_study_day"):
        true_lesions[col] = true_lesions[col].astype(float)
    return {
        "manifest": manifest,
        "clinical": clinical,
        "events": events,
        "scans": scans,
        "lesions": lesions,
        "edges": edges,
        "patients": pd.DataFrame(patients),
        "true_lesions": true_lesions,
    }


def _appearance(lesions: pd.DataFrame, scans: pd.DataFrame) -> pd.DataFrame:
    order = {(r.patient_id, r.timepoint): i for i, r in enumerate(scans.itertuples())}
    lesions = lesions.assign(
        _o=[order[(p, t)] for p, t in zip(lesions.patient_id, lesions.timepoint, strict=False)]
    )
    lesions = lesions.sort_values(["patient_id", "_o", "true_lesion_id"], kind="stable")
    first_tp = scans.groupby("patient_id").timepoint.first()
    # index of each scan within its patient, to detect gaps in visibility
    scan_idx = {
        (r.patient_id, r.timepoint): i
        for _, g in scans.groupby("patient_id")
        for i, r in enumerate(g.itertuples())
    }
    idx = np.array(
        [scan_idx[(p, t)] for p, t in zip(lesions.patient_id, lesions.timepoint, strict=False)]
    )
    lesions["_i"] = idx
    prev = lesions.groupby(["patient_id", "true_lesion_id"])["_i"].shift()
    appearance = np.where(
        prev.isna(), "first", np.where(idx - prev > 1, "reappeared", "continuing")
    )
    lesions["appearance"] = appearance
    lesions["is_new"] = (appearance == "first") & (
        lesions.timepoint.to_numpy() != first_tp.reindex(lesions.patient_id).to_numpy()
    )
    cols = [
        "patient_id",
        "timepoint",
        "days",
        "study_day",
        "true_lesion_id",
        "component",
        "volume_ml",
        "axial_ld_mm",
        "diameter_mm",
        "centroid_x_mm",
        "centroid_y_mm",
        "centroid_z_mm",
        "n_voxels",
        "nearest_gap_mm",
        "is_new",
        "appearance",
        "role",
    ]
    return lesions[cols].reset_index(drop=True)


def _edges(lesions: pd.DataFrame, scans: pd.DataFrame) -> pd.DataFrame:
    scan_idx = {
        (r.patient_id, r.timepoint): i
        for _, g in scans.groupby("patient_id")
        for i, r in enumerate(g.itertuples())
    }
    rows = []
    for (pid, _lid), g in lesions.groupby(["patient_id", "true_lesion_id"], sort=False):
        recs = list(zip(g.timepoint, g.component, strict=False))
        for (ta, ca), (tb, cb) in zip(recs[:-1], recs[1:], strict=False):
            skip = scan_idx[(pid, tb)] - scan_idx[(pid, ta)] > 1
            rows.append((pid, ta, int(ca), tb, int(cb), bool(skip)))
    edges = pd.DataFrame(
        rows,
        columns=[
            "patient_id",
            "timepoint_from",
            "component_from",
            "timepoint_to",
            "component_to",
            "skip",
        ],
    ).drop_duplicates(ignore_index=True)
    key = edges.apply(lambda r: (r.patient_id, scan_idx[(r.patient_id, r.timepoint_from)]), axis=1)
    edges["_k"] = [k[1] for k in key] if len(edges) else []
    edges = edges.sort_values(["patient_id", "_k", "component_from", "component_to"], kind="stable")
    return edges.drop(columns="_k").reset_index(drop=True)


def _groups_change(le: pd.DataFrame) -> tuple[bool, bool]:
    """(has_merge, has_split): two true lesions go from separate to shared components, or back."""
    merge = split = False
    tps = list(dict.fromkeys(le.timepoint))
    comp = {
        tp: dict(zip(g.true_lesion_id, g.component, strict=False))
        for tp, g in le.groupby("timepoint", sort=False)
    }
    for a, b in zip(tps[:-1], tps[1:], strict=False):
        ca, cb = comp[a], comp[b]
        common = sorted(set(ca) & set(cb))
        for i, x in enumerate(common):
            for y in common[i + 1 :]:
                same_a, same_b = ca[x] == ca[y], cb[x] == cb[y]
                merge |= (not same_a) and same_b
                split |= same_a and not same_b
    return merge, split


def _patient_row(plan: PatientPlan, sc, le, ed) -> dict:
    merge, split = _groups_change(le)
    vanished = False
    for _lid, g in le.groupby("true_lesion_id"):
        last = sc.timepoint.tolist().index(g.timepoint.iloc[-1])
        vanished |= last < len(sc) - 1
    return {
        "patient_id": plan.patient_id,
        "pattern": plan.pattern,
        "d_per_day": plan.d,
        "g_per_day": plan.g,
        "n_visits": len(sc),
        "n_planned_visits": len(plan.planned),
        "n_missed_visits": len(plan.missed),
        "n_true_lesions": int(le.true_lesion_id.nunique()),
        "has_resection": any(e[1] == "resection" for e in plan.events),
        "has_merge": merge,
        "has_split": split,
        "has_new_lesion": bool(le.is_new.any()),
        "has_vanish": bool(vanished),
        "has_reappearance": bool((le.appearance == "reappeared").any()),
        "has_truncated_fov": bool((~sc.liver_in_fov).any()),
        "min_gap_mm": float(le.nearest_gap_mm[le.nearest_gap_mm > 0].min())
        if (le.nearest_gap_mm > 0).any()
        else np.nan,
    }


def _outcomes(rng, plan: PatientPlan, sc: pd.DataFrame, le: pd.DataFrame):
    """Clinical row and events: OS by pattern, PFS from the true lesion sizes (RECIST 1.1)."""
    pid = plan.patient_id
    tstart = plan.baseline_date + np.timedelta64(plan.base_offset, "D")
    sdays = sc.study_day.to_numpy()
    base = le[le.timepoint == sc.timepoint.iloc[0]]
    targets = base[base.axial_ld_mm >= 10.0].nlargest(2, "axial_ld_mm").true_lesion_id.tolist()
    sums, new = [], []
    for tp in sc.timepoint:
        cur = le[le.timepoint == tp]
        sums.append(cur[cur.true_lesion_id.isin(targets)].axial_ld_mm.sum())
        new.append(bool(cur.is_new.any()))
    pd_day = None
    nadir = np.inf
    for i, (s, n) in enumerate(zip(sums, new, strict=False)):
        grew = bool(targets) and s >= 1.2 * nadir and s - nadir >= 5.0
        if i > 0 and (grew or n):
            pd_day = int(sdays[i])
            break
        nadir = min(nadir, s)
    events = []
    for day, kind, note in plan.events:
        events.append((pid, str(tstart + np.timedelta64(int(day), "D")), kind, note))
    last = int(sdays[-1])
    if plan.pattern == "progression" and rng.uniform() < 0.5:
        day = int(rng.integers(max(sdays[1], 1), last + 1))
        events.append(
            (
                pid,
                str(tstart + np.timedelta64(day, "D")),
                "extrahepatic_progression",
                "new lung nodules",
            )
        )
        pd_day = day if pd_day is None else min(pd_day, day)
    os_true = int(os_times(rng, np.array([plan.pattern]), np.array([plan.ecog]))[0])
    os_true = max(os_true, last + int(rng.integers(20, 90)))
    censor = last + int(rng.integers(60, 900))
    os_event = int(os_true <= censor)
    os_days = min(os_true, censor)
    if pd_day is not None:
        day = last + int(rng.integers(7, 29))
        if day < os_days:
            events.append(
                (
                    pid,
                    str(tstart + np.timedelta64(day, "D")),
                    "new_treatment_line",
                    "second-line chemotherapy",
                )
            )
        pfs_days, pfs_event = pd_day, 1
    elif os_event:
        pfs_days, pfs_event = os_days, 1
    else:
        pfs_days, pfs_event = max(last, 0), 0
    if os_event:
        events.append((pid, str(tstart + np.timedelta64(os_days, "D")), "death", ""))
    clin = {
        "patient_id": pid,
        "treatment_start": str(tstart),
        "os_days": int(os_days),
        "os_event": os_event,
        "pfs_days": int(pfs_days),
        "pfs_event": int(pfs_event),
        "arm": plan.arm,
        "age": plan.age,
        "ecog": plan.ecog,
        "ras_status": plan.ras_status,
    }
    return clin, events
