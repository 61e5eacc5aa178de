"""Lesion graph benchmark: speed on a full-size patient, accuracy against synthetic ground truth.

Usage:
    python benchmarks/bench_graph.py                 # speed (full size) + accuracy (tiny cohort)
    python benchmarks/bench_graph.py --skip-accuracy
    python benchmarks/bench_graph.py --skip-speed --patients 8 --seed 0 --size tiny

Speed: one synthetic patient at 512 x 512 x 150 (0.8 x 0.8 x 2.5 mm), its first 5 visits
(``make_synthetic_cohort(size="full", n_patients=1)``, cached under ``.bench/``). Image decoding
(CT, lesion and liver masks) is timed separately from the computation, which is broken down into
labelling, measurement, registration and matching. Liver Dice after registration is reported on
the registration's own downsampled grid and at full resolution; peak memory is the process's
peak resident set size (VmHWM) during the computation. The machine load (1-minute load average)
and the CPU time / wall time ratio are printed beside the timings: other jobs share the cores.

Accuracy: edge precision / recall / F1 and change-class accuracy of the graph against the ground
truth (``metevo.evaluation.score_synthetic``), per patient and pooled, on a synthetic cohort and on
the full-size patient.
"""

from __future__ import annotations

import argparse
import os
import resource
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk

from metevo import open_cohort
from metevo.datasets import SyntheticCohort, make_synthetic_cohort
from metevo.evaluation import pooled_scores, score_synthetic
from metevo.tracking import build_lesion_graph, lesion_graph

CACHE = Path(__file__).resolve().parents[1] / ".bench"


def _peak_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _cohort(size: str, n_patients: int, seed: int, patterns=None) -> SyntheticCohort:
    folder = CACHE / f"graph_{size}_{n_patients}_{seed}"
    if not (folder / "ground_truth" / "edges.parquet").exists():
        t0 = time.perf_counter()
        make_synthetic_cohort(
            folder, n_patients=n_patients, seed=seed, size=size, patterns=patterns
        )
        print(
            f"  generated {size} cohort ({n_patients} patients) in {time.perf_counter() - t0:.0f} s"
        )
    return SyntheticCohort.at(folder)


def _full_dice(fixed: sitk.Image, moving: sitk.Image, transform: sitk.Transform) -> float:
    moved = sitk.Resample(
        moving, fixed, transform, sitk.sitkNearestNeighbor, 0, moving.GetPixelID()
    )
    a = sitk.GetArrayFromImage(fixed) != 0
    b = sitk.GetArrayFromImage(moved) != 0
    return 2.0 * np.count_nonzero(a & b) / (a.sum() + b.sum())


def speed(seed: int, n_visits: int) -> None:
    print(f"== speed: one full-size patient, first {n_visits} visits ==")
    synth = _cohort("full", 1, seed)
    patient = open_cohort(synth.manifest)[open_cohort(synth.manifest).patient_ids[0]]
    scans = patient.scans[:n_visits]
    if len(scans) < n_visits:
        print(f"  note: the patient has only {len(scans)} analysed visits")
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    images = [s.image() for s in scans]
    masks = [s.lesion_mask() for s in scans]
    livers = [s.liver_mask() for s in scans]
    decode = time.perf_counter() - t0
    print(
        f"  grid {images[0].GetSize()} spacing {tuple(round(v, 2) for v in images[0].GetSpacing())} mm"
    )
    print(f"  decoding {3 * len(scans)} NIfTI files: {decode:.2f} s (not counted below)")
    rss_before = _peak_rss_mb()
    reset = _reset_peak()
    w0, c0 = time.perf_counter(), time.process_time()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        graph = build_lesion_graph(
            masks,
            images,
            liver_masks=livers,
            timepoints=[s.timepoint for s in scans],
            dates=[s.date for s in scans],
            days=[s.days for s in scans],
            patient_id=patient.patient_id,
        )
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    peak = _peak_rss_mb()
    load1 = os.getloadavg()[0]
    for name, secs in graph.timings.items():
        print(f"  {name:<9} {secs:6.2f} s wall, {graph.cpu_timings[name]:6.2f} s CPU")
    print(f"  total     {wall:6.2f} s wall, {cpu:.2f} s CPU (goal <= 15 s per patient)")
    print(
        f"  machine load (1-min average) {load0:.1f} before, {load1:.1f} after, on {os.cpu_count()} cores"
    )
    print(
        f"  peak RSS during computation {peak:.0f} MB"
        + ("" if reset else " (process peak; could not reset)")
        + f" (images decoded before: {rss_before:.0f} MB peak)"
    )
    for w in caught:
        print(f"  warning: {w.category.__name__}: {w.message}")
    regs = graph.registrations
    full = [
        _full_dice(livers[i], livers[i - 1], graph.pair_transforms[i - 1])
        for i in range(1, len(scans))
    ]
    regs = regs.assign(liver_dice_full_res=full)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(
            regs[
                [
                    "timepoint_from",
                    "timepoint_to",
                    "liver_dice_before",
                    "liver_dice_after",
                    "liver_dice_full_res",
                    "iterations",
                    "qc_pass",
                ]
            ]
            .round(3)
            .to_string(index=False)
        )
    s = score_synthetic(
        synth.ground_truth,
        patient.patient_id,
        graph.edges,
        graph.instances,
        timepoints=graph.timepoints,
    )
    print(
        f"  accuracy: {len(graph.nodes)} lesions, edges P {s['precision']:.3f} R {s['recall']:.3f} "
        f"F1 {s['f1']:.3f} ({s['n_edges']} predicted, {s['n_reference_edges']} true), change "
        f"accuracy {s['change_accuracy']:.3f}"
    )


def accuracy(n_patients: int, seed: int, size: str) -> None:
    print(f"== accuracy: {size} synthetic cohort, {n_patients} patients, seed {seed} ==")
    synth = _cohort(size, n_patients, seed)
    cohort = open_cohort(synth.manifest)
    rows = []
    t0 = time.perf_counter()
    for patient in cohort:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            graph = lesion_graph(patient)
        s = score_synthetic(
            synth.ground_truth,
            patient.patient_id,
            graph.edges,
            graph.instances,
            timepoints=graph.timepoints,
        )
        s["patient_id"] = patient.patient_id
        s["visits"] = len(graph.timepoints)
        s["registrations_failed"] = int((~graph.registrations["qc_pass"].astype(bool)).sum())
        s["min_liver_dice"] = float(graph.registrations["liver_dice_after"].min())
        rows.append(s)
    table = pd.DataFrame(rows)
    cols = [
        "patient_id",
        "visits",
        "n_edges",
        "n_reference_edges",
        "precision",
        "recall",
        "f1",
        "change_accuracy",
        "n_missed_components",
        "registrations_failed",
        "min_liver_dice",
    ]
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table[cols].round(3).to_string(index=False))
    pooled = pooled_scores(rows)
    print(
        f"  pooled: P {pooled['precision']:.3f} R {pooled['recall']:.3f} F1 {pooled['f1']:.3f} "
        f"change accuracy {pooled['change_accuracy']:.3f} ({pooled['n_reference_edges']} true "
        f"edges, {pooled['n_scored_lesions']} lesions); {time.perf_counter() - t0:.0f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--visits", type=int, default=5)
    parser.add_argument("--patients", type=int, default=8)
    parser.add_argument("--size", default="tiny", choices=["tiny", "small", "full"])
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-accuracy", action="store_true")
    args = parser.parse_args()
    if not args.skip_speed:
        speed(args.seed, args.visits)
    if not args.skip_accuracy:
        accuracy(args.patients, args.seed, args.size)


if __name__ == "__main__":
    main()
