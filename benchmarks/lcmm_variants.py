"""LCMM variants on the flexmix cross-check's development seeds (issue 13, round 3; not CI).

For the cohorts of ``crosscheck_flexmix.py``'s development seeds (60 and 200 patients x 4 and 5
courses x seeds 2001-2003) fits ``LatentClassTrajectories`` with the defaults of round 2
(10 starts), 30 starts, no random effect (flexmix's specification on the log-ratio), a random
slope and BIC instead of ICL, and prints one JSON line per cohort: ARI of the planted courses,
k chosen and CPU seconds per variant, next to flexmix's ARI on the log-ratio (from
``results/crosscheck_flexmix.json``).

Run:  OMP_NUM_THREADS=1 python benchmarks/lcmm_variants.py > results/lcmm_variants_dev_seeds.jsonl
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _grid_cohorts import make_cohort  # noqa: E402

VARIANTS = {
    "default10": {"n_init": 10},
    "init30": {"n_init": 30},
    "none30": {"n_init": 30, "random_effects": "none"},
    "slope30": {"n_init": 30, "random_effects": "slope"},
    "bic30": {"n_init": 30, "criterion": "bic"},
}


def main() -> None:
    from sklearn.metrics import adjusted_rand_score

    from metevo.patterns import LatentClassTrajectories

    stored = {
        (r["n_patients"], r["n_courses"], r["seed"]): r
        for r in json.loads((HERE / "results" / "crosscheck_flexmix.json").read_text())
    }
    for n in (60, 200):
        for c in (4, 5):
            for s in (2001, 2002, 2003):
                traj, truth = make_cohort(n, n_courses=c, seed=s)
                out = {
                    "setting": (n, c, s),
                    "fx_ratio": round(stored[(n, c, s)]["ari_flexmix_log_ratio"], 3),
                }
                for name, opt in VARIANTS.items():
                    t0 = time.process_time()
                    m = LatentClassTrajectories(random_state=s, **opt).fit(traj)
                    ari = adjusted_rand_score(truth.loc[m.patient_ids_], m.labels_)
                    out[name] = (round(ari, 3), m.n_classes_, round(time.process_time() - t0, 1))
                print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
