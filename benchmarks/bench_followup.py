"""Dynamic prediction and imaging schedules on >= 1,000 image-free synthetic patients.

Usage: python benchmarks/bench_followup.py [N_PATIENTS] [SEED] [OUT_DIR]
(default 1000 patients, seed 101, /tmp/metevo_bench_followup)

Writes an analysis-like folder (patient_trajectories.parquet, clinical.csv, patterns.parquet with
the planted pattern), runs the functions behind `metevo predict` and `metevo follow-up` on it,
and (when the CLI has the commands) the CLI itself; prints CPU and wall times, the
dynamic-vs-static gain per landmark, and the delay/scan table of the schedules. Results go to
benchmarks/results/followup_<N>.json.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from metevo.datasets import make_synthetic_trajectories
from metevo.followup._run import run_follow_up, run_predict


def _timed(fn, *args, **kwargs):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - wall, time.process_time() - cpu


def main(n: int = 1000, seed: int = 101, out_dir: str = "/tmp/metevo_bench_followup") -> dict:
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    data, wall, cpu = _timed(
        make_synthetic_trajectories, n, seed=seed, max_visits=8, measurement_cv=0.05
    )
    data["patient_trajectories"].to_parquet(root / "patient_trajectories.parquet", index=False)
    data["clinical"].to_csv(root / "clinical.csv", index=False)
    data["ground_truth"][["patient_id", "pattern"]].to_parquet(root / "patterns.parquet")
    report: dict = {"n_patients": n, "seed": seed, "generate_wall_s": round(wall, 2)}

    (res, _), wall, cpu = _timed(run_predict, root, root / "clinical.csv", echo=print)
    report["predict_wall_s"], report["predict_cpu_s"] = round(wall, 1), round(cpu, 1)
    perf = res.performance
    gain = perf[(perf.model == "gain") & (perf.metric == "auc")]
    cols = [
        "endpoint",
        "horizon_days",
        "scope",
        "landmark_days",
        "estimate",
        "ci_lower",
        "ci_upper",
        "n_at_risk",
        "n_events",
    ]
    print(gain[cols].round(3).to_string(index=False))
    report["auc_gain"] = gain[cols].round(4).to_dict(orient="records")
    dyn = perf[(perf.model == "dynamic") & (perf.scope == "landmark")]
    report["dynamic"] = dyn[cols[:2] + ["metric"] + cols[3:6]].round(4).to_dict(orient="records")

    (fu, _), wall, cpu = _timed(run_follow_up, root, echo=print)
    report["follow_up_wall_s"], report["follow_up_cpu_s"] = round(wall, 1), round(cpu, 1)
    keep = [
        "pattern",
        "schedule",
        "median_delay_days",
        "median_delay_ci_lower",
        "median_delay_ci_upper",
        "p90_delay_days",
        "scans_per_year",
        "detected_8w_share",
    ]
    print(fu.table[keep].round(2).to_string(index=False))
    report["follow_up"] = fu.table[keep].round(3).to_dict(orient="records")

    cli = [sys.executable, "-m", "metevo.cli"]
    has = subprocess.run(cli + ["--help"], capture_output=True, text=True).stdout
    if " predict " in has and " follow-up " in has:
        env = dict(os.environ, OMP_NUM_THREADS="1")
        for name, args in (
            (
                "cli_predict",
                [
                    "predict",
                    str(root),
                    "--clinical",
                    str(root / "clinical.csv"),
                    "--out",
                    str(root / "cli"),
                ],
            ),
            ("cli_follow_up", ["follow-up", str(root), "--out", str(root / "cli")]),
        ):
            start = time.perf_counter()
            done = subprocess.run(cli + args, capture_output=True, text=True, env=env)
            report[f"{name}_wall_s"] = round(time.perf_counter() - start, 1)
            report[f"{name}_rc"] = done.returncode
            print(name, done.returncode, done.stdout.strip()[-300:], done.stderr.strip()[-300:])
    results = Path(__file__).resolve().parent / "results" / f"followup_{n}.json"
    results.write_text(json.dumps(report, indent=1, default=float) + "\n")
    print({k: v for k, v in report.items() if k.endswith(("_s", "_rc"))})
    return report


if __name__ == "__main__":
    args = sys.argv[1:]
    main(*(int(a) for a in args[:2]), *args[2:3])
