"""Speed of pattern fitting + k selection on 10,000 patients, one core (issue 13).

Cohort: ``benchmarks/_grid_cohorts.py`` (5 courses, visits every 8 weeks, 25 % missed, noise
x1, seed 3001). Times (wall and CPU) of

* the k-means path: ``EvolutionPatterns()`` defaults (k in 2..8, silhouette + 10 bootstrap
  refits per k);
* the latent-class path: ``LatentClassTrajectories()`` defaults (k in 1..6, 30 starts each, EM
  + L-BFGS polish, ICL with the minimum class size; 10 starts before round 3).

Run:  OMP_NUM_THREADS=1 python benchmarks/bench_lcmm_speed.py [--n 10000]
Writes benchmarks/results/lcmm_speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _grid_cohorts import make_cohort  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--out", default=str(HERE / "results" / "lcmm_speed.json"))
    args = parser.parse_args()
    from sklearn.metrics import adjusted_rand_score

    from metevo.patterns import EvolutionPatterns
    from metevo.patterns._latent_class import LatentClassTrajectories

    traj, truth = make_cohort(args.n, n_courses=5, seed=3001)
    out = {
        "n_patients": args.n,
        "n_visits": len(traj),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "load_average_1min": os.getloadavg()[0],
    }
    for name, model in (
        ("kmeans", EvolutionPatterns(random_state=0)),
        ("lcmm", LatentClassTrajectories(random_state=0)),
    ):
        w0, c0 = time.perf_counter(), time.process_time()
        model.fit(traj)
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        tab = model.patterns_.dropna(subset=["pattern"])
        ari = adjusted_rand_score(truth.loc[tab["patient_id"]], tab["pattern_id"].astype(int))
        k = getattr(model, "n_classes_", getattr(model, "n_patterns_", None))
        out[name] = {"wall_s": wall, "cpu_s": cpu, "k": int(k), "ari": float(ari)}
        print(f"{name}: wall {wall:.1f} s, cpu {cpu:.1f} s, k={k}, ARI {ari:.3f}", flush=True)
    Path(args.out).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
