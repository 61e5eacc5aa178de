"""RECIST on metevo's own lesion graph: adapter, ``recist`` pipeline stage, patient summary.

Rules specific to mask-derived response (liver scope; see :mod:`metevo.recist` for RECIST):

* **Scope.** Masks cover the liver only: every row says ``scope = "liver"``. Extrahepatic
  progression comes from the events table (``extrahepatic_progression``) and makes the overall
  response PD at the first assessment on or after its date (or, with no such assessment, enters
  PFS at its own date).
* **Targets.** At the baseline scan, the largest measurable lesions (axial longest diameter
  >= 10 mm, and >= 2x slice thickness for slices thicker than 5 mm) become targets, at most
  ``max_targets`` (default 2, the RECIST per-organ maximum for the liver); the others are
  non-targets.
* **Follow-up values from the graph.** Each baseline lesion owns its descendants through the
  graph's edges (skip edges included). A target that splits contributes the sum of its
  fragments' diameters; a lesion reached from several baseline lesions (a coalescence) is
  measured once, for the first-ranked target among them (the other targets count 0), also when
  it absorbed a non-target; a target without descendant counts 0 (vanished), and re-enters the
  sum when a skip edge brings it back (it is not a new lesion). Measured diameters are used as
  measured.
* **Not evaluable.** A scan whose liver is not fully inside the field of view
  (``liver_in_fov`` False) or whose registration failed QC (``registration_ok`` False) is NE
  (vanished targets there are *not assessed* rather than 0), unless the measured targets already
  prove PD.
* **New lesions.** A lesion after baseline with no predecessor in the graph (not a split
  fragment, not a reappearance). It is unequivocal when its axial longest diameter is at least
  ``new_lesion_min_mm`` (default 10 mm, the measurability cut-off), equivocal otherwise; an
  equivocal new lesion whose descendants reach that size at the next assessment is confirmed,
  and PD is then dated to its first appearance (RECIST 1.1 sect. 4.3.4).
* **Unequivocal non-target progression** (quantitative rule, configurable): the non-target
  volume is at least ``nontarget_volume_factor`` (2.0) times its nadir and at least
  ``nontarget_min_increase_ml`` (1 ml) above it, **and**, when there are targets, the volume of
  all baseline disease (targets + non-targets) is at least ``burden_volume_factor`` (1.728 =
  1.2 cubed, the volume equivalent of RECIST's +20 % in diameter) times its nadir — so that
  non-target growth alone, offset by shrinking targets, is not progression. A non-target CR
  (all non-targets gone) cannot check tumour markers such as CEA.
* **Local therapy.** A ``resection`` or ``ablation`` event removes the treated lesions — those
  present at the last assessment before the event and gone at the first one after it — from the
  targets and non-targets from that assessment on, and the baseline sum and nadir are taken over
  the remaining targets, so that a resected lesion is not a response.
* **New treatment line.** Assessments after a ``new_treatment_line`` event are not assessed
  (``not_evaluable_reason`` "after_new_treatment_line") and PFS follows the censoring rules.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from metevo.choi import choi_response
from metevo.columns import LesionEdges as E
from metevo.columns import Lesions as L
from metevo.columns import Patients as P
from metevo.columns import Recist as R
from metevo.columns import Scans as S
from metevo.kinetics import fit_growth_kinetics, tumour_growth_rate
from metevo.outcomes import (
    best_overall_response,
    confirmed_response,
    depth_of_response,
    early_tumour_shrinkage,
    imaging_pfs,
    time_to_nadir,
)
from metevo.recist import recist_from_measurements, select_targets

if TYPE_CHECKING:
    from metevo.cohort import Patient

__all__ = ["assess_patient", "graph_measurements", "recist_for_patient", "recist_stage"]

SCOPE = "liver"
Node = tuple[str, int]


@dataclass
class GraphMeasurements:
    """Output of :func:`graph_measurements`.

    ``measurements`` is the engine's input (one row per baseline lesion or new lesion and
    assessment); ``burden`` has per assessment ``target_volume_ml``, ``target_density_hu``
    (volume-weighted mean HU of the target lesions), ``nontarget_volume_ml``,
    ``baseline_disease_volume_ml`` and ``total_volume_ml``; ``targets`` and ``nontargets`` list
    the baseline lesion ids.
    """

    measurements: pd.DataFrame
    burden: pd.DataFrame
    targets: list[int]
    nontargets: list[int]


def graph_measurements(
    lesions: pd.DataFrame,
    edges: pd.DataFrame,
    *,
    timepoints: Sequence[str],
    baseline: str,
    not_evaluable: Mapping[str, str] | None = None,
    local_therapy: Sequence[str] = (),
    max_targets: int = 2,
    max_targets_per_organ: int = 2,
    min_measurable_mm: float = 10.0,
    slice_thickness_mm: float | None = None,
    new_lesion_min_mm: float = 10.0,
    nontarget_volume_factor: float = 2.0,
    nontarget_min_increase_ml: float = 1.0,
    burden_volume_factor: float = 1.2**3,
) -> GraphMeasurements:
    """Turn one patient's lesion table and graph edges into RECIST measurements.

    Parameters
    ----------
    lesions : DataFrame
        The ``lesions`` table of one patient (``timepoint``, ``lesion_id``, ``axial_ld_mm``,
        ``volume_ml``, ``mean_hu``).
    edges : DataFrame
        The ``lesion_edges`` table (``timepoint_from``, ``lesion_id_from``, ``timepoint_to``,
        ``lesion_id_to``, ``skip``).
    timepoints : sequence of str
        Every assessment in date order (including ones without any lesion).
    baseline : str
        The baseline timepoint.
    not_evaluable : mapping, optional
        ``timepoint -> reason`` of assessments that are not evaluable.
    local_therapy : sequence of str
        Timepoints that are the first assessment after a resection or ablation.
    max_targets, max_targets_per_organ, min_measurable_mm, slice_thickness_mm
        Baseline target selection (:func:`metevo.recist.select_targets`).
    new_lesion_min_mm, nontarget_volume_factor, nontarget_min_increase_ml, burden_volume_factor
        New-lesion and non-target progression rules (module docstring).

    Returns
    -------
    GraphMeasurements
    """
    tps = [str(t) for t in timepoints]
    if baseline not in tps:
        raise ValueError(f"baseline timepoint {baseline!r} is not among the timepoints {tps}.")
    order = {tp: i for i, tp in enumerate(tps)}
    b_idx = order[baseline]
    not_evaluable = dict(not_evaluable or {})
    les = lesions.copy()
    les[L.TIMEPOINT] = les[L.TIMEPOINT].astype(str)
    unknown = sorted(set(les[L.TIMEPOINT]) - set(tps))
    if unknown:
        raise ValueError(
            f"lesions at timepoint(s) {unknown} that are not assessments {tps}; pass every "
            "scan's timepoint in `timepoints`."
        )
    les[L.LESION_ID] = les[L.LESION_ID].astype(int)
    info = {
        (tp, lid): rec
        for tp, lid, rec in zip(
            les[L.TIMEPOINT], les[L.LESION_ID], les.to_dict("records"), strict=True
        )
    }
    at: dict[str, list[Node]] = {tp: [] for tp in tps}
    for node in info:
        at[node[0]].append(node)
    preds: dict[Node, list[Node]] = {n: [] for n in info}
    for a, b, c, d in zip(
        edges.get(E.TIMEPOINT_FROM, []),
        edges.get(E.LESION_ID_FROM, []),
        edges.get(E.TIMEPOINT_TO, []),
        edges.get(E.LESION_ID_TO, []),
        strict=True,
    ):
        src, dst = (str(a), int(b)), (str(c), int(d))
        if src in info and dst in info:
            preds[dst].append(src)

    def ld(n: Node) -> float:
        return float(info[n].get(L.AXIAL_LD_MM, math.nan))

    def vol(n: Node) -> float:
        v = info[n].get(L.VOLUME_ML, math.nan)
        return float(v) if v is not None and math.isfinite(v) else 0.0

    # ---- baseline roles
    base_nodes = sorted(at[baseline], key=lambda n: n[1])
    base_df = pd.DataFrame(
        {
            "lesion_id": [n[1] for n in base_nodes],
            "ld_mm": [ld(n) for n in base_nodes],
            "organ": SCOPE,
        }
    )
    roles = select_targets(
        base_df,
        max_targets=max_targets,
        max_targets_per_organ=max_targets_per_organ,
        min_measurable_mm=min_measurable_mm,
        slice_thickness_mm=slice_thickness_mm,
    )
    ranked = base_df.assign(role=roles).sort_values("ld_mm", ascending=False, kind="stable")
    targets = [int(i) for i in ranked.loc[ranked["role"] == "target", "lesion_id"]]
    nontargets = [int(i) for i in ranked.loc[ranked["role"] != "target", "lesion_id"]]
    rank = {t: i for i, t in enumerate(targets)}
    # ---- ancestry: which baseline lesions / new-lesion families each node descends from
    anc: dict[Node, set[int]] = {}
    fam: dict[Node, set[Node]] = {}
    first_new: dict[Node, str] = {}
    for tp in tps[b_idx:]:
        for n in at[tp]:
            if tp == baseline:
                anc[n], fam[n] = {n[1]}, set()
                continue
            ps = [p for p in preds[n] if order[p[0]] >= b_idx]
            anc[n] = set().union(*(anc.get(p, set()) for p in ps)) if ps else set()
            fam[n] = set().union(*(fam.get(p, set()) for p in ps)) if ps else set()
            if not preds[n]:  # no predecessor at all: a new lesion
                fam[n] = {n}
                first_new[n] = tp
    rows: list[dict[str, Any]] = []
    burden: list[dict[str, Any]] = []
    removed: set[int] = set()
    nt_nadir = tot_nadir = math.nan
    prev_present: set[int] = set()
    for tp in tps[b_idx:]:
        i = order[tp]
        ne = tp in not_evaluable
        nodes = at[tp]
        owner: dict[Node, int | None] = {}
        for n in nodes:
            tgt = [a for a in anc.get(n, ()) if a in rank]
            owner[n] = min(tgt, key=rank.__getitem__) if tgt else None
        present = {a for n in nodes for a in anc.get(n, ())}
        if tp in local_therapy and i > b_idx:
            removed |= {a for a in prev_present - present if a not in removed}
        prev_present = present
        # targets
        t_vol = 0.0
        t_hu = 0.0
        for t in targets:
            mine = [n for n in nodes if owner[n] == t]
            row = {
                "timepoint": tp,
                "visit_order": i,
                "lesion_id": f"L{t}",
                "role": "target" if i == b_idx else None,
            }
            if t in removed:
                row.update(state="removed")
            elif mine:
                row.update(ld_mm=float(sum(ld(n) for n in mine)), state="present")
            elif t in present:  # coalesced into a higher-ranked target: measured there
                row.update(ld_mm=0.0, state="present")
            elif ne:
                row.update(state="not_done")
            else:
                row.update(ld_mm=0.0, state="absent")
            rows.append(row)
            if t not in removed:
                for n in mine:
                    t_vol += vol(n)
                    t_hu += vol(n) * float(info[n].get(L.MEAN_HU, math.nan))
        # non-targets
        nt_nodes = [n for n in nodes if owner[n] is None and anc.get(n) and (anc[n] - removed)]
        nt_vol = float(sum(vol(n) for n in nt_nodes))
        base_vol = t_vol + nt_vol
        total_vol = float(sum(vol(n) for n in nodes))
        nt_pd = False
        if i > b_idx and not ne and math.isfinite(nt_nadir):
            nt_pd = (
                nt_vol >= nontarget_volume_factor * nt_nadir
                and nt_vol - nt_nadir >= nontarget_min_increase_ml
                and (not targets or base_vol >= burden_volume_factor * tot_nadir)
            )
        for t in nontargets:
            row = {
                "timepoint": tp,
                "visit_order": i,
                "lesion_id": f"L{t}",
                "role": "non-target" if i == b_idx else None,
            }
            if t in removed:
                row["state"] = "removed"
            elif t in present:
                row["state"] = "progression" if nt_pd else "present"
            else:
                row["state"] = "not_done" if ne else "absent"
            row["ld_mm"] = (
                float(sum(ld(n) for n in nodes if t in anc.get(n, ()))) if t in present else 0.0
            )
            rows.append(row)
        if i == b_idx or not ne:
            nt_nadir = nt_vol if not math.isfinite(nt_nadir) else min(nt_nadir, nt_vol)
            tot_nadir = base_vol if not math.isfinite(tot_nadir) else min(tot_nadir, base_vol)
        # new lesions: every family present at this assessment
        n_new = 0
        if i > b_idx:
            families: dict[Node, list[Node]] = {}
            for n in nodes:
                if anc.get(n):
                    continue  # coalesced with baseline disease: measured there
                for f in fam.get(n, ()):
                    families.setdefault(f, []).append(n)
            for f, members in families.items():
                size = float(sum(ld(m) for m in members))
                n_new += 1
                rows.append(
                    {
                        "timepoint": tp,
                        "visit_order": i,
                        "lesion_id": f"N{f[0]}:{f[1]}",
                        "role": "new",
                        "ld_mm": size,
                        "state": "present" if size >= new_lesion_min_mm else "equivocal",
                    }
                )
        burden.append(
            {
                "timepoint": tp,
                "target_volume_ml": t_vol,
                "target_density_hu": t_hu / t_vol if t_vol > 0 else math.nan,
                "nontarget_volume_ml": nt_vol,
                "baseline_disease_volume_ml": base_vol,
                "total_volume_ml": total_vol,
                "n_new_lesions": n_new,
            }
        )
    for tp in tps[:b_idx]:  # before baseline: reported, not assessed
        rows.append(
            {
                "timepoint": tp,
                "visit_order": order[tp],
                "lesion_id": "-",
                "role": None,
                "state": "not_done",
            }
        )
    meas = pd.DataFrame(rows)
    if meas.empty:
        meas = pd.DataFrame(
            columns=["timepoint", "visit_order", "lesion_id", "role", "ld_mm", "state"]
        )
    return GraphMeasurements(meas, pd.DataFrame(burden), targets, nontargets)


# --------------------------------------------------------------------------------------------
# the per-patient assessment (tables in, tables out)
# --------------------------------------------------------------------------------------------
def _is_false(value: Any) -> bool:
    """True for an explicit False flag (None / NA mean unknown, not False)."""
    if value is None or value is pd.NA:
        return False
    if isinstance(value, float) and math.isnan(value):
        return False
    return not bool(value)


def _events_of(events: pd.DataFrame | None, kind: str) -> list[dt.date]:
    if events is None or len(events) == 0:
        return []
    sel = events[events["event"] == kind]
    return sorted(pd.to_datetime(sel["date"]).dt.date.tolist())


def assess_patient(
    patient_id: str,
    scans: pd.DataFrame,
    lesions: pd.DataFrame,
    edges: pd.DataFrame,
    *,
    treatment_start: dt.date | None = None,
    events: pd.DataFrame | None = None,
    slice_thickness_mm: float | None = None,
    max_targets: int = 2,
    max_targets_per_organ: int = 2,
    min_measurable_mm: float = 10.0,
    new_lesion_min_mm: float = 10.0,
    nontarget_volume_factor: float = 2.0,
    nontarget_min_increase_ml: float = 1.0,
    burden_volume_factor: float = 1.2**3,
    sd_min_days: int = 42,
    ref_confirm: int = 28,
    max_nr_ne: int = 1,
    pfs_rules: str = "fda2018",
    assessment_interval_days: float | None = None,
    ets_window_days: tuple[float, float] = (42, 70),
    ets_threshold_pct: float = 20.0,
    min_kinetics_assessments: int = 3,
    kinetics_pval: float = 0.05,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """RECIST, Choi and per-patient outcomes of one patient from its pipeline tables.

    Parameters
    ----------
    patient_id : str
    scans : DataFrame
        The patient's ``scans`` rows (``timepoint``, ``date``, ``days``, ``study_day``,
        ``is_baseline`` and, when known, ``phase``, ``liver_in_fov``, ``registration_ok``).
    lesions, edges : DataFrame
        The patient's ``lesions`` and ``lesion_edges`` rows.
    treatment_start : date, optional
        Start of treatment (reference of SD duration, ETS window, PFS); the baseline scan date
        when unknown.
    events : DataFrame, optional
        The patient's events (``date``, ``event``).
    slice_thickness_mm : float, optional
        Baseline slice thickness (measurability).
    max_targets ... burden_volume_factor
        See :func:`graph_measurements`.
    sd_min_days, ref_confirm, max_nr_ne
        Best-response rules (:func:`metevo.outcomes.best_overall_response`).
    pfs_rules, assessment_interval_days
        Imaging PFS censoring (:func:`metevo.outcomes.imaging_pfs`).
    ets_window_days, ets_threshold_pct
        Early tumour shrinkage.
    min_kinetics_assessments, kinetics_pval
        Growth kinetics (:func:`metevo.kinetics.fit_growth_kinetics`).

    Returns
    -------
    (recist, patients, recist_lesions) : tuple of DataFrame
        The ``recist`` rows (one per scan), the ``patients`` row and the ``recist_lesions``
        rows (one per scan x RECIST lesion: ``lesion_id`` ``L<id>`` for baseline lesion
        ``<id>``, ``N<timepoint>:<id>`` for a new lesion first seen as ``<id>`` at
        ``<timepoint>``; ``role``; ``ld_mm``, the value entering RECIST; ``state``).
    """
    sc = scans.copy()
    sc[S.TIMEPOINT] = sc[S.TIMEPOINT].astype(str)
    sc["_date"] = pd.to_datetime(sc[S.DATE])
    sc = sc.sort_values("_date", kind="stable").reset_index(drop=True)
    tps = sc[S.TIMEPOINT].tolist()
    if not tps:
        raise ValueError(
            f"patient {patient_id!r} has no scan; RECIST needs at least a baseline scan."
        )
    if S.IS_BASELINE in sc and sc[S.IS_BASELINE].fillna(False).astype(bool).any():
        baseline = sc.loc[sc[S.IS_BASELINE].fillna(False).astype(bool), S.TIMEPOINT].iloc[0]
    else:
        baseline = tps[0]
    b_date = sc.loc[sc[S.TIMEPOINT] == baseline, "_date"].iloc[0].date()
    start = treatment_start or b_date
    # not evaluable assessments
    reasons: dict[str, str] = {}
    for _, r in sc.iterrows():
        why = []
        if _is_false(r.get(S.LIVER_IN_FOV)):
            why.append("liver_outside_fov")
        if _is_false(r.get(S.REGISTRATION_OK)):
            why.append("registration_failed")
        if r.get(S.QC_FLAG) == "excluded":
            why = ["scan_unreadable"]
        if why and r[S.TIMEPOINT] != baseline:
            reasons[r[S.TIMEPOINT]] = "+".join(why)
    dates = dict(zip(sc[S.TIMEPOINT], sc["_date"].dt.date, strict=True))
    after_local = []
    for d in _events_of(events, "resection") + _events_of(events, "ablation"):
        later = [tp for tp in tps if dates[tp] > d]
        if later:
            after_local.append(later[0])
    gm = graph_measurements(
        lesions,
        edges,
        timepoints=tps,
        baseline=baseline,
        not_evaluable=reasons,
        local_therapy=after_local,
        max_targets=max_targets,
        max_targets_per_organ=max_targets_per_organ,
        min_measurable_mm=min_measurable_mm,
        slice_thickness_mm=slice_thickness_mm,
        new_lesion_min_mm=new_lesion_min_mm,
        nontarget_volume_factor=nontarget_volume_factor,
        nontarget_min_increase_ml=nontarget_min_increase_ml,
        burden_volume_factor=burden_volume_factor,
    )
    # events acting on assessments
    new_tx = _events_of(events, "new_treatment_line")
    new_tx_date = new_tx[0] if new_tx else None
    stopped = {tp for tp in tps if new_tx_date is not None and dates[tp] > new_tx_date}
    extra = _events_of(events, "extrahepatic_progression")
    extra_tp: dict[str, str] = {}
    extra_unscanned = None
    for d in extra:
        later = [tp for tp in tps if dates[tp] >= d and dates[tp] > b_date and tp not in stopped]
        if later:
            extra_tp.setdefault(later[0], "extrahepatic_progression")
        elif extra_unscanned is None:
            extra_unscanned = d
    visits = pd.DataFrame(
        {
            R.PATIENT_ID: patient_id,
            R.TIMEPOINT: tps,
            "visit_order": range(len(tps)),
            "not_evaluable_reason": [reasons.get(tp) for tp in tps],
            "progression_reason": [extra_tp.get(tp) for tp in tps],
        }
    )
    meas = gm.measurements.assign(**{R.PATIENT_ID: patient_id, "organ": SCOPE})
    meas["date"] = meas["timepoint"].map(lambda tp: dates[tp].isoformat())
    meas = meas[meas["lesion_id"] != "-"]
    res = recist_from_measurements(
        meas,
        visits,
        baseline={patient_id: baseline},
        max_targets=max_targets,
        max_targets_per_organ=max_targets_per_organ,
        min_measurable_mm=min_measurable_mm,
    )
    res = res.set_index(R.TIMEPOINT).reindex(tps).reset_index()
    # assessments after a new treatment line are not assessed
    for col in (R.TARGET_RESPONSE, R.NONTARGET_RESPONSE, R.NEW_LESIONS, R.OVERALL_RESPONSE):
        res[col] = res[col].astype(object)
        res.loc[res[R.TIMEPOINT].isin(stopped), col] = None
    res.loc[res[R.TIMEPOINT].isin(stopped), R.EVALUABLE] = False
    res.loc[res[R.TIMEPOINT].isin(stopped), R.NOT_EVALUABLE_REASON] = "after_new_treatment_line"
    res.loc[res[R.TIMEPOINT] == baseline, R.NOT_EVALUABLE_REASON] = None
    # Choi per assessment
    burden = gm.burden.set_index("timepoint")
    phase = dict(
        zip(sc[S.TIMEPOINT], sc[S.PHASE] if S.PHASE in sc else [None] * len(sc), strict=True)
    )
    base_sum = res.loc[res[R.TIMEPOINT] == baseline, R.TARGET_SUM_MM].iloc[0]
    base_hu = burden.loc[baseline, "target_density_hu"] if baseline in burden.index else math.nan
    choi = []
    for _, r in res.iterrows():
        tp = r[R.TIMEPOINT]
        if tp == baseline or tp not in burden.index or tp in stopped or not gm.targets:
            choi.append(None)
            continue
        if r[R.OVERALL_RESPONSE] == "NE":
            choi.append("NE")
            continue
        choi.append(
            choi_response(
                base_sum,
                r[R.TARGET_SUM_MM] if r[R.TARGET_RESPONSE] != "NE" else math.nan,
                base_hu,
                burden.loc[tp, "target_density_hu"],
                new_lesions=r[R.NEW_LESIONS] == "Y",
                same_phase=phase.get(tp) == phase.get(baseline),
            )
        )
    res[R.CHOI_RESPONSE] = choi
    res[R.PATIENT_ID] = patient_id
    res[R.DATE] = [dates[tp] for tp in res[R.TIMEPOINT]]
    res[R.DAYS] = (
        res[R.TIMEPOINT].map(dict(zip(sc[S.TIMEPOINT], sc[S.DAYS], strict=True)))
        if S.DAYS in sc
        else [(dates[tp] - dates[tps[0]]).days for tp in res[R.TIMEPOINT]]
    )
    res["_from_start"] = [(dates[tp] - start).days for tp in res[R.TIMEPOINT]]
    res[R.STUDY_DAY] = [
        (dates[tp] - treatment_start).days if treatment_start is not None else None
        for tp in res[R.TIMEPOINT]
    ]
    res[R.SCOPE] = SCOPE
    recist_table = res[list(R.COLUMNS)].copy()
    from_start = res["_from_start"].to_numpy()
    recist_table[R.DAYS] = recist_table[R.DAYS].astype("Int64")
    recist_table[R.STUDY_DAY] = recist_table[R.STUDY_DAY].astype("Int64")
    recist_table[R.EVALUABLE] = recist_table[R.EVALUABLE].astype(bool)
    summary = _summary(
        patient_id,
        recist_table.assign(_from_start=from_start),
        gm,
        baseline=baseline,
        start=start,
        has_baseline=True,
        events=events,
        new_tx_date=new_tx_date,
        extra_unscanned=extra_unscanned,
        sd_min_days=sd_min_days,
        ref_confirm=ref_confirm,
        max_nr_ne=max_nr_ne,
        pfs_rules=pfs_rules,
        assessment_interval_days=assessment_interval_days,
        ets_window_days=ets_window_days,
        ets_threshold_pct=ets_threshold_pct,
        min_kinetics_assessments=min_kinetics_assessments,
        kinetics_pval=kinetics_pval,
    )
    roles = meas.groupby("lesion_id")["role"].agg(lambda v: next((x for x in v if x), None))
    lesion_table = pd.DataFrame(
        {
            R.PATIENT_ID: patient_id,
            R.TIMEPOINT: meas["timepoint"].astype(str).to_numpy(),
            R.DATE: [dates[tp] for tp in meas["timepoint"]],
            "lesion_id": meas["lesion_id"].astype(str).to_numpy(),
            "role": meas["lesion_id"].map(roles).to_numpy(),
            "ld_mm": meas["ld_mm"].astype(float).to_numpy() if "ld_mm" in meas else np.nan,
            "state": meas["state"].to_numpy(),
        }
    )
    lesion_table = lesion_table[~lesion_table[R.TIMEPOINT].isin(stopped)].reset_index(drop=True)
    return recist_table, summary, lesion_table


def _summary(
    patient_id: str,
    rec: pd.DataFrame,
    gm: GraphMeasurements,
    *,
    baseline: str,
    start: dt.date,
    has_baseline: bool,
    events: pd.DataFrame | None,
    new_tx_date: dt.date | None,
    extra_unscanned: dt.date | None,
    sd_min_days: int,
    ref_confirm: int,
    max_nr_ne: int,
    pfs_rules: str,
    assessment_interval_days: float | None,
    ets_window_days: tuple[float, float],
    ets_threshold_pct: float,
    min_kinetics_assessments: int,
    kinetics_pval: float,
) -> pd.DataFrame:
    b_pos = int(np.flatnonzero(rec[R.TIMEPOINT].to_numpy() == baseline)[0])
    post = rec.iloc[b_pos + 1 :]
    post = post[post[R.OVERALL_RESPONSE].notna()]
    dates = post[R.DATE].tolist()
    resp = post[R.OVERALL_RESPONSE].tolist()
    measurable = bool(gm.targets)
    bor, _ = best_overall_response(dates, resp, start, ref_start_window=sd_min_days)
    cbor, _ = best_overall_response(
        dates,
        resp,
        start,
        confirmed=True,
        ref_start_window=sd_min_days,
        ref_confirm=ref_confirm,
        max_nr_ne=max_nr_ne,
    )
    pd_rows = post[post[R.OVERALL_RESPONSE] == "PD"]
    first_pd = pd_rows[R.DATE].iloc[0] if len(pd_rows) else None
    if extra_unscanned is not None and (first_pd is None or extra_unscanned < first_pd):
        first_pd = extra_unscanned
    deaths = _events_of(events, "death")
    pfs = imaging_pfs(
        dates,
        resp,
        start,
        has_baseline=has_baseline,
        death_date=deaths[0] if deaths else None,
        new_treatment_date=new_tx_date,
        extra_pd_date=extra_unscanned,
        rules=pfs_rules,
        assessment_interval_days=assessment_interval_days,
    )
    confirmed, resp_date = confirmed_response(
        dates, resp, ref_confirm=ref_confirm, max_nr_ne=max_nr_ne
    )
    dor = math.nan
    if confirmed:
        dor = float((pfs.date - resp_date).days + 1) if pfs.date >= resp_date else math.nan
    # shrinkage metrics on evaluable assessments up to first PD
    upto = rec.iloc[b_pos:]
    upto = upto[upto[R.EVALUABLE] & upto[R.TARGET_SUM_MM].notna()]
    if first_pd is not None:
        upto = upto[pd.to_datetime(upto[R.DATE]) <= pd.Timestamp(first_pd)]
    dpr = ttn = math.nan
    ets_value: bool | None = None
    exclusion = None if measurable else "non_measurable_baseline"
    if measurable:
        ets_value = early_tumour_shrinkage(
            upto["_from_start"].astype(float).tolist(),
            upto[R.PCT_CHANGE_BASELINE].tolist(),
            window_days=ets_window_days,
            threshold_pct=ets_threshold_pct,
        )
        dpr = depth_of_response(upto[R.PCT_CHANGE_BASELINE].tolist())
        days_from_start = [float(max((d - start).days, 0)) for d in upto[R.DATE]]
        ttn = time_to_nadir(days_from_start, upto[R.TARGET_SUM_MM].tolist())
    # kinetics: baseline + on-treatment evaluable assessments before a new treatment line
    on = rec.iloc[b_pos:]
    on = on[(on[R.EVALUABLE] & on[R.OVERALL_RESPONSE].notna()) | (on[R.TIMEPOINT] == baseline)]
    on = on[(on[R.TIMEPOINT] == baseline) | (on["_from_start"].astype(float) > 0)]
    if measurable:
        fit = fit_growth_kinetics(
            on[R.DAYS].astype(float).tolist(),
            on[R.TARGET_SUM_MM].tolist(),
            min_assessments=min_kinetics_assessments,
            pval=kinetics_pval,
        )
        vol = gm.burden.set_index("timepoint").reindex(on[R.TIMEPOINT])["total_volume_ml"]
        vfit = fit_growth_kinetics(
            on[R.DAYS].astype(float).tolist(),
            vol.tolist(),
            min_assessments=min_kinetics_assessments,
            pval=kinetics_pval,
        )
        tgr = (
            tumour_growth_rate(
                float(on[R.TARGET_SUM_MM].iloc[0]),
                float(on[R.TARGET_SUM_MM].iloc[1]),
                float(on[R.DAYS].iloc[1] - on[R.DAYS].iloc[0]),
            )
            if len(on) >= 2
            else math.nan
        )
        tgk = (fit.model, fit.g_per_day, fit.d_per_day, fit.status)
        vtgk = (vfit.model, vfit.g_per_day, vfit.d_per_day, vfit.status)
    else:
        tgk = vtgk = (None, math.nan, math.nan, "excluded")
        tgr = math.nan
    row = {
        P.PATIENT_ID: patient_id,
        P.MEASURABLE_AT_BASELINE: measurable,
        P.BEST_RESPONSE: bor,
        P.BEST_RESPONSE_CONFIRMED: cbor,
        P.FIRST_PD_DATE: first_pd,
        P.IMAGING_PFS_DAYS: float(pfs.days),
        P.IMAGING_PFS_EVENT: bool(pfs.event),
        P.IMAGING_PFS_CENSOR_REASON: pfs.censor_reason,
        P.DURATION_OF_RESPONSE_DAYS: dor,
        P.ETS: ets_value,
        P.DEPTH_OF_RESPONSE: dpr,
        P.TIME_TO_NADIR_DAYS: ttn,
        P.TGK_MODEL: tgk[0],
        P.TGK_G_PER_DAY: tgk[1],
        P.TGK_D_PER_DAY: tgk[2],
        P.TGK_STATUS: tgk[3],
        P.TGR_PCT_PER_MONTH: tgr,
        P.EXCLUSION_REASON: exclusion,
        P.TGK_VOLUME_MODEL: vtgk[0],
        P.TGK_VOLUME_G_PER_DAY: vtgk[1],
        P.TGK_VOLUME_D_PER_DAY: vtgk[2],
        P.TGK_VOLUME_STATUS: vtgk[3],
        P.SCOPE: SCOPE,
    }
    out = pd.DataFrame([row])
    out[P.ETS] = out[P.ETS].astype("boolean")
    return out


# --------------------------------------------------------------------------------------------
# pipeline stage and one-patient entry point
# --------------------------------------------------------------------------------------------
def recist_stage(patient: Patient, result: Any, **options: Any) -> None:
    """Pipeline stage ``recist``: the ``recist`` (per scan), ``patients`` (per patient) and
    ``recist_lesions`` (per scan and RECIST lesion, for the SDTM export) tables, from the
    ``scans`` and ``lesions`` tables and the ``graph`` hand-off.

    Options are those of :func:`assess_patient` (e.g. ``max_targets``, ``pfs_rules``).
    """
    for name in ("scans", "lesions"):
        if name not in result.tables:
            raise ValueError(
                f"patient {patient.patient_id!r}: the recist stage needs the {name!r} table of an "
                "earlier stage; run the 'scans' and 'lesion_graph' stages first."
            )
    graph = result.objects.get("graph")
    edges = graph.edges if graph is not None else result.tables.get("lesion_edges")
    if edges is None:
        raise ValueError(
            f"patient {patient.patient_id!r}: the recist stage needs the lesion graph "
            "(result.objects['graph'] or the 'lesion_edges' table); run 'lesion_graph' first."
        )
    thick = None
    try:
        thick = patient.baseline.slice_thickness_mm
    except AttributeError:
        thick = None
    recist_table, summary, lesion_table = assess_patient(
        patient.patient_id,
        result.tables["scans"],
        result.tables["lesions"],
        edges,
        treatment_start=patient.treatment_start,
        events=patient.events,
        slice_thickness_mm=thick if thick is not None and np.isfinite(thick) else None,
        **options,
    )
    result.tables["recist"] = recist_table
    result.tables["patients"] = summary
    result.tables["recist_lesions"] = lesion_table


def recist_for_patient(patient: Patient, **options: Any) -> pd.DataFrame:
    """Run the pipeline up to the ``recist`` stage for one patient; return its ``recist`` rows."""
    from metevo.pipeline import STAGES, analyze_patient

    if "recist" not in {name for name, _ in STAGES}:
        raise RuntimeError(
            "the pipeline has no 'recist' stage; add ('recist', 'metevo._recist_graph:recist_stage') "
            "to metevo.pipeline.STAGES after the lesion graph stage."
        )
    import inspect

    allowed = [
        name
        for name, prm in inspect.signature(assess_patient).parameters.items()
        if prm.kind is inspect.Parameter.KEYWORD_ONLY and name not in ("treatment_start", "events")
    ]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise TypeError(
            f"recist() got unexpected keyword option(s) {unknown}; options are {allowed}."
        )
    res = analyze_patient(
        patient, stages=["recist"], stage_options={"recist": options} if options else None
    )
    if res.failures:
        f = res.failures[0]
        raise RuntimeError(
            f"patient {patient.patient_id!r}: stage {f['stage']!r} failed with {f['error_type']}: "
            f"{f['error']}"
        )
    return res.tables["recist"]
