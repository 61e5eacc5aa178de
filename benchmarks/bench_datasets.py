"""Generation speed of the synthetic cohorts (metevo.datasets); prints its figures.

    python benchmarks/bench_datasets.py            # tiny 6-patient cohort, small 1 patient, trajectories
    python benchmarks/bench_datasets.py --full     # also one "full" (512 x 512 x 150) patient

CPU time is reported beside wall time: on a shared machine wall time measures the contention,
CPU time what one core needs (the generator is single-threaded).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pandas as pd  # noqa: E402

from metevo.datasets import make_synthetic_cohort, make_synthetic_trajectories  # noqa: E402


def _timed(label: str, fn):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{label:<44} wall {wall:7.2f} s   cpu {cpu:7.2f} s")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="also time one full-size patient")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        c = _timed(
            "tiny cohort, 6 patients (3x3x5 mm)",
            lambda: make_synthetic_cohort(f"{tmp}/tiny", n_patients=6, seed=0, size="tiny"),
        )
        n_scans = len(pd.read_csv(c.manifest))
        print(f"{'':<44} {n_scans} scans")
        _timed(
            "small cohort, 1 patient (1.5x1.5x3 mm)",
            lambda: make_synthetic_cohort(f"{tmp}/small", n_patients=1, seed=0, size="small"),
        )
        if args.full:
            _timed(
                "full cohort, 1 patient (512x512x150)",
                lambda: make_synthetic_cohort(
                    f"{tmp}/full", n_patients=1, seed=0, size="full", patterns=["progression"]
                ),
            )
    for n in (1_000, 10_000):
        t = _timed(f"trajectories, {n} patients", lambda n=n: make_synthetic_trajectories(n))
        print(f"{'':<44} {len(t['patient_trajectories'])} patient-visits")


if __name__ == "__main__":
    main()
