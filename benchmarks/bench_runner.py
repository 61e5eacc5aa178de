"""Cohort runner: peak memory per patient worker and of the parent, isolation overhead.

Usage (a full-size synthetic patient: 512 x 512 x 150 voxels, 5 visits)::

    python benchmarks/bench_runner.py --cohort /path/to/full --out /tmp/run --json benchmarks/results/runner_memory.json

``--cohort`` is a folder written by ``make_synthetic_cohort(..., size="full")`` (generated when
absent, with ``--seed``; only the first 5 visits are kept). Each patient runs in its own process
(``isolate=True``), whose peak resident memory (``ru_maxrss``) the runner records; the parent's
own peak is read at the end. The run uses ``--force`` so every patient is computed.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import time
from pathlib import Path

import pandas as pd


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cohort", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    import metevo
    from metevo.datasets import make_synthetic_cohort

    if not (args.cohort / "manifest.csv").exists():
        make_synthetic_cohort(args.cohort, n_patients=1, seed=args.seed, size="full")
        m = pd.read_csv(args.cohort / "manifest.csv")
        m.iloc[:5].to_csv(args.cohort / "manifest.csv", index=False)
    manifest = pd.read_csv(args.cohort / "manifest.csv")
    cohort = metevo.open_cohort(args.cohort / "manifest.csv", clinical=args.cohort / "clinical.csv",
                                events=args.cohort / "events.csv")
    header = cohort[cohort.patient_ids[0]].baseline.header()
    t0, c0, k0 = time.perf_counter(), time.process_time(), _children_cpu()
    res = metevo.analyze(cohort, args.out, workers=args.workers, force=True, progress=False)
    wall = time.perf_counter() - t0
    report = {
        "command": "python benchmarks/bench_runner.py --cohort ... --out ... "
                   f"--seed {args.seed} --workers {args.workers}",
        "metevo": metevo.__version__,
        "machine": platform.platform(),
        "patients": len(cohort),
        "visits": int(len(manifest)),
        "image_size_xyz": list(header["size"]),
        "worker_peak_rss_mib": {k: round(v, 1) for k, v in (res.peak_rss_mib or {}).items()},
        "parent_peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "wall_s": round(wall, 1),
        "parent_cpu_s": round(time.process_time() - c0, 1),
        "workers_cpu_s": round(_children_cpu() - k0, 1),
        "failures": len(res.failures),
        "summary": res.summary(),
    }
    print(json.dumps(report, indent=1))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
