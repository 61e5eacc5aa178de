"""Automated RECIST from masks versus RECIST from the true lesion sizes (synthetic cohort).

Usage:
    python benchmarks/recist_synthetic.py [--patients 5] [--seed 0] [--size tiny] [--workers 2]
    python benchmarks/recist_synthetic.py --cohort DIR --analysis DIR   # reuse earlier runs

Prints, per patient and overall: the target-sum difference (mm) between the pipeline (masks ->
lesions -> graph -> RECIST) and the same engine on the ground-truth lesion graph with the true
lesion diameters, the overall-response agreement, and whether each planted new lesion was
flagged at its first scan.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from metevo import analyze, open_cohort
from metevo.datasets import SyntheticCohort, make_synthetic_cohort
from metevo.response import assess_patient


def truth_tables(synth: SyntheticCohort, pid: str):
    les = synth.table("lesions")
    les = les[les["patient_id"] == pid]
    comp = (
        les.groupby(["timepoint", "component"])
        .agg(axial_ld_mm=("axial_ld_mm", "sum"), volume_ml=("volume_ml", "sum"))
        .reset_index()
        .rename(columns={"component": "lesion_id"})
        .assign(mean_hu=60.0)
    )
    edges = synth.table("edges")
    edges = edges[edges["patient_id"] == pid].rename(
        columns={"component_from": "lesion_id_from", "component_to": "lesion_id_to"}
    )
    scans = synth.table("scans")
    scans = scans[scans["patient_id"] == pid].copy()
    scans["is_baseline"] = scans["timepoint"] == scans["timepoint"].iloc[0]
    # every true lesion is fully imaged (the generator cuts only lesion-free liver dome or tip),
    # so a cut liver does not make the reference assessment not evaluable
    scans["liver_in_fov"] = True
    return scans, comp, edges


def truth_recist(
    synth: SyntheticCohort, pid: str, clinical: pd.DataFrame, events, *, lesions: bool = False
):
    """The ``recist`` rows of the same engine on the true lesion graph and true diameters
    (with ``lesions``: and its ``recist_lesions`` rows)."""
    scans, comp, edges = truth_tables(synth, pid)
    start = pd.Timestamp(clinical.loc[pid, "treatment_start"]).date()
    truth, _, truth_lesions = assess_patient(
        pid, scans, comp, edges, treatment_start=start, events=events[events["patient_id"] == pid]
    )
    return (truth, truth_lesions) if lesions else truth


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--patients", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--size", default="tiny")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--cohort", type=Path)
    ap.add_argument("--analysis", type=Path)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    work = Path(tempfile.mkdtemp(prefix="metevo_recist_bench_"))
    if args.cohort is None:
        t0 = time.perf_counter()
        synth = make_synthetic_cohort(
            work / "cohort", n_patients=args.patients, seed=args.seed, size=args.size
        )
        print(
            f"generated {args.patients} patients ({args.size}) in {time.perf_counter() - t0:.1f} s"
        )
    else:
        synth = SyntheticCohort.at(args.cohort)
    if args.analysis is None:
        cohort = open_cohort(synth.manifest, clinical=synth.clinical, events=synth.events)
        t0 = time.perf_counter()
        res = analyze(
            cohort, work / "analysis", stages=["recist"], workers=args.workers, progress=False
        )
        print(
            f"analysed (scans, graph, recist) in {time.perf_counter() - t0:.1f} s; failures: {len(res.failures)}"
        )
        analysis = res.out_dir
    else:
        analysis = args.analysis
    recist = pd.read_parquet(analysis / "recist.parquet")
    clinical = pd.read_csv(synth.clinical).set_index("patient_id")
    events = pd.read_csv(synth.events)
    gt_les = synth.table("lesions")
    diffs, agree, new_ok, new_n = [], [], 0, 0
    for pid in sorted(recist["patient_id"].unique()):
        truth = truth_recist(synth, pid, clinical, events)
        mine = recist[recist["patient_id"] == pid]
        m = mine.merge(truth, on="timepoint", suffixes=("", "_gt"))
        d = (m["target_sum_mm"] - m["target_sum_mm_gt"]).abs().dropna()
        post = m[m["overall_response_gt"].notna()]
        a = (post["overall_response"] == post["overall_response_gt"]).tolist()
        diffs += d.tolist()
        agree += a
        first = gt_les[
            (gt_les["patient_id"] == pid) & gt_les["is_new"] & (gt_les["appearance"] == "first")
        ]
        for tp in first["timepoint"]:
            new_n += 1
            new_ok += int(
                mine.loc[mine["timepoint"] == tp, "new_lesions"].iloc[0] in ("Y", "EQUIVOCAL")
            )
        print(
            f"{pid}: |target sum diff| median {np.median(d):.1f} mm (max {d.max():.1f}); responses "
            f"{sum(a)}/{len(a)} agree; masks {post['overall_response'].tolist()} vs truth {post['overall_response_gt'].tolist()}"
        )
    print(
        f"overall: target-sum |diff| median {np.median(diffs):.2f} mm, mean {np.mean(diffs):.2f} mm over "
        f"{len(diffs)} scans; overall response agreement {np.mean(agree):.0%} ({sum(agree)}/{len(agree)}); "
        f"planted new lesions flagged at their first scan: {new_ok}/{new_n}"
    )


if __name__ == "__main__":
    main()
