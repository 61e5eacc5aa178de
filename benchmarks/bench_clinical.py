"""Lesion graph, registration and RECIST on the hard ``clinical`` synthetic preset.

Usage:
    python benchmarks/bench_clinical.py --patients 12 --seeds 0 1 [--size clinical_crop]
    python benchmarks/bench_clinical.py --patients 12 --seeds 0 1 --json benchmarks/results/x.json

Each patient runs through the pipeline (``scans``, ``graph``, ``recist`` stages, one process,
one thread). Against the synthetic ground truth it reports, per patient and pooled over the
seeds:

* edge precision / recall / F1 and change-class accuracy (``metevo.graph.score_synthetic``);
* visits lost to registration: consecutive-visit registrations that failed QC and fell back
  (centroid / identity);
* residual registration error: for every true lesion seen at both visits of a pair (split
  fragments, which move, excluded), the distance in mm between its true centroid at the later
  visit mapped by the registration into the earlier visit and its true centroid there (this
  includes the non-rigid breathing warp that a rigid/affine transform cannot remove);
* RECIST agreement with the same engine run on the ground-truth lesion graph and true
  diameters (``benchmarks/recist_synthetic.py``): target response, new lesions (``Y`` vs not)
  and overall response, on follow-up visits; visits NE with their reasons;
* the same target-response agreement on the follow-ups that are not fragile by construction:
  a follow-up is fragile when the true target sum lies within ``--fragile-mm`` of a RECIST
  threshold (the truth's ``target_response_margin_mm``; default 1.6 mm, two targets' worth of
  one 0.8 mm in-plane voxel) or when the truth chose its targets between baseline lesions less
  than ``--tie-mm`` apart (default 0.8 mm, one voxel): there a measurement error the masks
  carry decides the category, whatever the pipeline does.

Cohorts are generated once into ``.bench/`` (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_graph import CACHE, graph_scores, registration_residuals  # noqa: E402
from recist_synthetic import truth_recist  # noqa: E402

from metevo import open_cohort  # noqa: E402
from metevo.datasets import SyntheticCohort, make_synthetic_cohort  # noqa: E402
from metevo.evaluation import pooled_scores  # noqa: E402
from metevo.runner import analyze_patient  # noqa: E402


def cohort(size: str, n_patients: int, seed: int) -> SyntheticCohort:
    folder = CACHE / f"clinical_{size}_{n_patients}_{seed}"
    if not (folder / "ground_truth" / "edges.parquet").exists():
        t0 = time.perf_counter()
        make_synthetic_cohort(folder, n_patients=n_patients, seed=seed, size=size)
        print(
            f"  generated {size} seed {seed} ({n_patients} patients) in {time.perf_counter() - t0:.0f} s"
        )
    return SyntheticCohort.at(folder)


FRAGILE = {"fragile_mm": 1.6, "tie_mm": 0.8}


def _target_tie(truth_lesions: pd.DataFrame) -> float:
    """LD gap (mm) at baseline between the truth's smallest target and its largest measurable
    (>= 10 mm) non-target; inf without such a non-target."""
    first = truth_lesions["timepoint"].iloc[0]
    base = truth_lesions[truth_lesions["timepoint"] == first]
    targets = base.loc[base["role"] == "target", "ld_mm"]
    others = base.loc[(base["role"] == "non-target") & (base["ld_mm"] >= 10.0), "ld_mm"]
    if targets.empty or others.empty:
        return float("inf")
    return float(targets.min() - others.max())


def _agreement(mine: pd.DataFrame, truth: pd.DataFrame, tie_gap_mm: float = np.inf) -> dict:
    m = mine.merge(truth, on="timepoint", suffixes=("", "_gt"))
    m = m[~m["timepoint"].eq(mine["timepoint"].iloc[0])]  # follow-up visits only
    m = m.assign(
        fragile=(m["target_response_margin_mm_gt"] < FRAGILE["fragile_mm"])
        | (tie_gap_mm < FRAGILE["tie_mm"])
    )
    tr = m[m["target_response_gt"].notna()]
    robust = tr[~tr["fragile"]]
    new_mine = m["new_lesions"].eq("Y")
    new_gt = m["new_lesions_gt"].eq("Y")
    ovr = m[m["overall_response_gt"].notna()]
    return {
        "n_followup": len(m),
        "target_agree": int((tr["target_response"] == tr["target_response_gt"]).sum()),
        "target_n": len(tr),
        "target_agree_robust": int(
            (robust["target_response"] == robust["target_response_gt"]).sum()
        ),
        "target_n_robust": len(robust),
        "new_agree": int((new_mine == new_gt).sum()),
        "new_n": len(m),
        "overall_agree": int((ovr["overall_response"] == ovr["overall_response_gt"]).sum()),
        "overall_n": len(ovr),
        "ne_visits": int((~m["evaluable"].astype(bool)).sum()),
        "ne_reasons": sorted(
            {str(r) for r in m.loc[~m["evaluable"].astype(bool), "not_evaluable_reason"]}
        ),
        "mismatch": [
            (
                r.timepoint,
                r.target_response,
                r.target_response_gt,
                r.new_lesions,
                r.new_lesions_gt,
                round(float(r.target_response_margin_mm_gt), 2),
                round(tie_gap_mm, 3),
            )
            for r in m.itertuples()
            if (r.target_response != r.target_response_gt and pd.notna(r.target_response_gt))
            or (r.new_lesions == "Y") != (r.new_lesions_gt == "Y")
        ],
    }


def run_patient(synth: SyntheticCohort, patient, clinical: pd.DataFrame, events: pd.DataFrame):
    t0 = time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = analyze_patient(patient, stages=["recist"], reemit_warnings=False)
    cpu = time.process_time() - t0
    if res.failures:
        raise RuntimeError(f"{patient.patient_id}: {res.failures}")
    graph = res.objects["graph"]
    s = graph_scores(synth, patient.patient_id, graph)
    regs = graph.registrations
    resid = registration_residuals(synth, patient.patient_id, graph)
    pid = patient.patient_id
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        truth, truth_lesions = truth_recist(synth, pid, clinical, events, lesions=True)
    agree = _agreement(res.tables["recist"], truth, _target_tie(truth_lesions))
    lost = regs[~regs["qc_pass"].astype(bool)]
    return {
        **s,
        **agree,
        "patient_id": pid,
        "visits": len(graph.timepoints),
        "lost_visits": len(lost),
        "lost": [f"{r.timepoint_from}->{r.timepoint_to}: {r.note}" for r in lost.itertuples()],
        "resid_mm": resid,
        "cpu_s": cpu,
    }


def summarise(rows: list[dict]) -> dict:
    pooled = pooled_scores(rows)
    resid = np.concatenate([np.asarray(r["resid_mm"], float) for r in rows] or [np.zeros(0)])
    tot = lambda k: int(sum(r[k] for r in rows))  # noqa: E731
    return {
        "patients": len(rows),
        "visits": tot("visits"),
        "edge_precision": pooled["precision"],
        "edge_recall": pooled["recall"],
        "edge_f1": pooled["f1"],
        "change_accuracy": pooled["change_accuracy"],
        "visits_lost_to_registration": tot("lost_visits"),
        "residual_mm_median": float(np.median(resid)) if len(resid) else float("nan"),
        "residual_mm_p95": float(np.percentile(resid, 95)) if len(resid) else float("nan"),
        "residual_mm_max": float(resid.max()) if len(resid) else float("nan"),
        "target_response_agreement": tot("target_agree") / max(tot("target_n"), 1),
        "target_response_agreement_robust": tot("target_agree_robust")
        / max(tot("target_n_robust"), 1),
        "fragile_followups": tot("target_n") - tot("target_n_robust"),
        "new_lesion_agreement": tot("new_agree") / max(tot("new_n"), 1),
        "overall_response_agreement": tot("overall_agree") / max(tot("overall_n"), 1),
        "ne_followup_visits": tot("ne_visits"),
        "followup_visits": tot("n_followup"),
        "cpu_s_per_patient": float(np.mean([r["cpu_s"] for r in rows])),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=12)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--size", default="clinical_crop")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--label", default="")
    ap.add_argument("--fragile-mm", type=float, default=FRAGILE["fragile_mm"])
    ap.add_argument("--tie-mm", type=float, default=FRAGILE["tie_mm"])
    args = ap.parse_args()
    FRAGILE.update(fragile_mm=args.fragile_mm, tie_mm=args.tie_mm)
    all_rows, per_seed = [], {}
    for seed in args.seeds:
        synth = cohort(args.size, args.patients, seed)
        coh = open_cohort(synth.manifest, clinical=synth.clinical, events=synth.events)
        clinical = pd.read_csv(synth.clinical).set_index("patient_id")
        events = pd.read_csv(synth.events)
        rows = []
        for patient in coh:
            r = run_patient(synth, patient, clinical, events)
            r["seed"] = seed
            rows.append(r)
            print(
                f"  seed {seed} {r['patient_id']}: {r['visits']} visits, F1 {r['f1']:.3f} "
                f"change {r['change_accuracy']:.3f}, lost {r['lost_visits']}, resid median "
                f"{np.median(r['resid_mm']) if len(r['resid_mm']) else float('nan'):.1f} max "
                f"{max(r['resid_mm'], default=float('nan')):.1f} mm, target {r['target_agree']}/{r['target_n']}, "
                f"new {r['new_agree']}/{r['new_n']}, NE {r['ne_visits']} {r['ne_reasons']}, "
                f"cpu {r['cpu_s']:.0f} s",
                flush=True,
            )
            for line in r["lost"]:
                print(f"      lost: {line}")
            for mm in r["mismatch"]:
                print(
                    "      mismatch (tp, target, target_gt, new, new_gt, true margin mm, "
                    f"true target tie gap mm): {mm}"
                )
        per_seed[seed] = summarise(rows)
        all_rows += rows
    pooled = summarise(all_rows)
    for seed, s in per_seed.items():
        print(
            f"seed {seed}: "
            + ", ".join(
                f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in s.items()
            )
        )
    print(
        "pooled: "
        + ", ".join(
            f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in pooled.items()
        )
    )
    if args.json:
        out = {
            "command": "python benchmarks/bench_clinical.py " + " ".join(sys.argv[1:]),
            "label": args.label,
            "size": args.size,
            "seeds": args.seeds,
            "fragile": dict(FRAGILE),
            "pooled": pooled,
            "per_seed": {str(k): v for k, v in per_seed.items()},
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
