"""RECIST on metevo's own lesion graph: the adapter from graph to RECIST measurements.

The ``recist`` stage and the patient summary are in :mod:`metevo.response._recist_stage`.

Rules specific to mask-derived response (liver scope; see :mod:`metevo.response` for RECIST):

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
* **Coalescing lesions.** A lesion that splits or merges in the graph (two or more successors or
  predecessors) holds several lesions at this scan; while a waist still separates them it is
  measured as the sum of its separable lesions' diameters (``axial_ld_separable_mm``, RECIST 1.1
  appendix I: "a plane between them may be maintained that would aid in obtaining maximal
  diameter measurements of each individual lesion"), as one lesion once truly coalesced.
  Tables without that column use ``axial_ld_mm``.
* **Not evaluable.** A scan that does not fully image a lesion region that matters
  (``lesions_in_fov`` False: a lesion touching its first or last slice, or the region of a
  baseline lesion or a previous-visit lesion outside its slab; reason ``lesion_outside_fov``), or
  whose registration failed QC (``registration_ok`` False) while matching cannot be trusted (a
  lesion there without a one-to-one predecessor), is NE (vanished targets there are *not
  assessed* rather than 0), unless the measured targets already prove PD. A liver that merely
  touches the first or last slice does not make a scan NE (tables without ``lesions_in_fov``
  fall back on ``liver_in_fov``).
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
* **Local therapy.** A ``resection`` or ``ablation`` event removes the treated lesions from the
  targets and non-targets from the first assessment after it on (``state`` ``removed`` in
  ``recist_lesions``), and the baseline sum and nadir are taken over the remaining targets, so
  that a resected lesion is not a response (RECIST 1.1 leaves treated lesions out). The treated
  lesions are those the events table names (``lesion_ids``, ``track_ids`` or a point, resolved
  at the last scan before the event by :mod:`metevo.response._local_therapy`: the baseline
  lesions they descend from are removed, whatever their course). An event that names none
  removes the lesions present at the last assessment before it and gone at the first one after
  it, unless such a lesion was already shrinking toward zero (smaller at each of its last two
  assessments and at most half its largest size): it vanished by response and stays ``absent``.
  ``removal_reason`` says which and why: ``events_lesion_ids``, ``events_track_ids``,
  ``events_point`` (named), ``gone_after_local_therapy`` (inferred, removed),
  ``shrinking_to_zero`` (gone but not counted as treated).
* **New treatment line.** Assessments after a ``new_treatment_line`` event are not assessed
  (``not_evaluable_reason`` "after_new_treatment_line") and PFS follows the censoring rules.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from metevo.columns import LesionEdges as E
from metevo.columns import Lesions as L
from metevo.columns import recist_lesion_id
from metevo.response._local_therapy import LocalTherapy
from metevo.response._recist import select_targets

__all__ = ["GraphMeasurements", "graph_measurements"]


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
    local_therapy: Mapping[str, LocalTherapy] | Sequence[str] = (),
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
    local_therapy : mapping or sequence of str
        ``timepoint -> LocalTherapy`` (:func:`metevo.response._local_therapy.local_therapies`)
        for the first assessment after a resection or ablation: the lesions the events named
        and whether to infer the others; a plain sequence of timepoints infers them all.
    max_targets, max_targets_per_organ, min_measurable_mm, slice_thickness_mm
        Baseline target selection (:func:`metevo.response.select_targets`).
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
    if not isinstance(local_therapy, Mapping):
        local_therapy = {str(tp): LocalTherapy(infer=True) for tp in local_therapy}
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
    n_succ = Counter(p for ps in preds.values() for p in ps)

    def ld(n: Node) -> float:
        # a component that splits or merges in the graph holds several lesions: measured as
        # the sum of its separable lesions when a waist still separates them (coalescing)
        rec = info[n]
        sep = rec.get(L.AXIAL_LD_SEPARABLE_MM)
        if (len(preds[n]) > 1 or n_succ[n] > 1) and sep is not None and math.isfinite(sep):
            return float(sep)
        return float(rec.get(L.AXIAL_LD_MM, math.nan))

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
    why: dict[int, tuple[int, str]] = {}  # baseline lesion -> (from visit, removal_reason)
    sizes: dict[int, list[float]] = {}  # baseline lesion -> its measured size at each visit seen
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
        therapy = local_therapy.get(tp) if i > b_idx else None
        if therapy is not None:
            for node, how in therapy.named.items():
                for a in anc.get(node, ()):
                    if a not in removed:
                        removed.add(a)
                        why[a] = (i, f"events_{how}")
            if therapy.infer:
                for a in prev_present - present - removed:
                    shrinking = _shrinking_to_zero(sizes.get(a, []))
                    why[a] = (i, "shrinking_to_zero" if shrinking else "gone_after_local_therapy")
                    if not shrinking:
                        removed.add(a)
        prev_present = present
        for a in present:
            sizes.setdefault(a, []).append(
                float(sum(ld(n) for n in nodes if a in anc.get(n, ())))
            )
        # targets
        t_vol = 0.0
        t_hu = 0.0
        for t in targets:
            mine = [n for n in nodes if owner[n] == t]
            row = {
                "timepoint": tp,
                "visit_order": i,
                "lesion_id": recist_lesion_id(t),
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
            row["removal_reason"] = _reason(why, t, i, row["state"])
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
                "lesion_id": recist_lesion_id(t),
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
            row["removal_reason"] = _reason(why, t, i, row["state"])
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
                        "lesion_id": recist_lesion_id(f[1], new_at=f[0]),
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
            columns=[
                "timepoint", "visit_order", "lesion_id", "role", "ld_mm", "state",
                "removal_reason",
            ]
        )
    return GraphMeasurements(meas, pd.DataFrame(burden), targets, nontargets)


def _reason(why: Mapping[int, tuple[int, str]], lesion: int, visit: int, state: str) -> str | None:
    """``removal_reason`` of a baseline lesion's row (only from the therapy on, when gone)."""
    since, reason = why.get(lesion, (math.inf, None))
    return reason if visit >= since and state in ("removed", "absent") else None


def _shrinking_to_zero(history: Sequence[float]) -> bool:
    """A lesion gone after a resection was already on its way out (a response, not the
    resection): it shrank at each of its last two assessments and is at most half its largest
    size."""
    if len(history) < 3:
        return False
    a, b, c = history[-3:]
    return c < b < a and c <= 0.5 * max(history)
