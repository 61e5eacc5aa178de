"""Generalisation benchmark of the evolution-pattern methods (issue 13).

Cohorts from the independent generator ``benchmarks/_grid_cohorts.py`` (image-free target-sum
trajectories; seeds 5000+ were not used while developing). The full grid (3-6 planted courses x
visits every 6/8/12 weeks x 10/25/40 % missed visits x noise x1/x2 x 60/200/1,000 patients x 5
seeds = 1,080 cohorts) does not fit in 20 minutes on the shared 2-core machine, so it is
subsampled: (a) every number of courses at 60 and 200 patients, 4 courses at 1,000 patients
(standard schedule: 8 weeks, 25 % missed, noise x1); (b) one factor at a time around the centre
(4 courses, 200 patients): schedule 6 and 12 weeks, 10 % and 40 % missed, noise x2; 5 seeds
per setting, 70 cohorts. Every method sees the same table and chooses k itself.

Methods: ``kmeans`` (``EvolutionPatterns()`` defaults), ``kmeans_multivariate``
(``representation="multivariate"``), ``lcmm`` (``LatentClassTrajectories()`` defaults: log-ratio to baseline, random intercept,
quadratic, residual variance per class, k by ICL); ``lcmm_bic`` is the same fits with k chosen by BIC.

Run:  OMP_NUM_THREADS=1 python benchmarks/bench_patterns_generalisation.py [--seeds 5]
      OMP_NUM_THREADS=1 python benchmarks/bench_patterns_generalisation.py --must-show \
          --seed-base 7000 --out benchmarks/results/patterns_generalisation_round3.json
Writes benchmarks/results/patterns_generalisation.json (one record per cohort and method) and
benchmarks/results/patterns_generalisation.md (median and 10th percentile ARI per setting).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _grid_cohorts import make_cohort  # noqa: E402

CENTRE = {"n_courses": 4, "schedule_weeks": 8, "missed": 0.25, "noise": 1.0, "n_patients": 200}


def settings() -> list[dict]:
    out = []
    for c in (4, 5, 3, 6):  # the cells of the "must show" first
        for n in (60, 200):
            out.append({**CENTRE, "n_courses": c, "n_patients": n})
    out.append({**CENTRE, "n_courses": 4, "n_patients": 1000})
    for key, values in (("schedule_weeks", (6, 12)), ("missed", (0.1, 0.4)), ("noise", (2.0,))):
        for v in values:
            out.append({**CENTRE, key: v})
    return out


def methods() -> dict:
    from metevo.patterns import EvolutionPatterns
    from metevo.patterns._latent_class import LatentClassTrajectories

    return {
        "kmeans": lambda s: EvolutionPatterns(random_state=s),
        "kmeans_multivariate": lambda s: EvolutionPatterns(
            representation="multivariate", random_state=s
        ),
        "lcmm": lambda s: LatentClassTrajectories(random_state=s),
    }


def must_show_settings() -> list[dict]:
    """The cells of the issue's "must show": 4-5 courses at 60 and 200 patients."""
    return [{**CENTRE, "n_courses": c, "n_patients": n} for c in (4, 5) for n in (60, 200)]


def run(
    n_seeds: int,
    out_json: Path,
    *,
    seed_base: int = 5000,
    cells: list[dict] | None = None,
    only: set[str] | None = None,
) -> list[dict]:
    from sklearn.metrics import adjusted_rand_score

    done = json.loads(out_json.read_text()) if out_json.exists() else []
    seen = {json.dumps({k: r[k] for k in (*CENTRE, "seed", "method")}) for r in done}
    makers = {m: f for m, f in methods().items() if only is None or m in only}
    for i, setting in enumerate(cells or settings()):
        for j in range(n_seeds):
            seed = seed_base + 100 * i + j
            traj, truth = make_cohort(**setting, seed=seed)
            for name, make in makers.items():
                key = json.dumps({**setting, "seed": seed, "method": name})
                if key in seen:
                    continue
                c0 = time.process_time()
                model = make(seed).fit(traj)
                cpu = time.process_time() - c0
                tab = model.patterns_.dropna(subset=["pattern"])
                ari = adjusted_rand_score(
                    truth.loc[tab["patient_id"]], tab["pattern_id"].astype(int)
                )
                k = getattr(model, "n_classes_", getattr(model, "n_patterns_", None))
                done.append(
                    {
                        **setting,
                        "seed": seed,
                        "method": name,
                        "ari": float(ari),
                        "k": int(k),
                        "cpu_s": cpu,
                    }
                )
                if hasattr(model, "fits_"):
                    # the same fits, k chosen by BIC instead of ICL (no extra cost)
                    sel = model.selection_
                    k_icl = int(sel.loc[sel.loc[sel["eligible"], "bic"].idxmin(), "k"])
                    labels = model.fits_[k_icl].posterior.argmax(axis=1)
                    ari_icl = adjusted_rand_score(truth.loc[model.patient_ids_], labels)
                    done.append(
                        {
                            **setting,
                            "seed": seed,
                            "method": f"{name}_bic",
                            "ari": float(ari_icl),
                            "k": k_icl,
                            "cpu_s": cpu,
                        }
                    )
                print(
                    f"{setting} seed={seed} {name}: ARI {ari:.3f} k={k} cpu {cpu:.1f}s", flush=True
                )
            out_json.write_text(json.dumps(done, indent=0))
    return done


def summarise(records: list[dict]) -> str:
    df = pd.DataFrame(records)
    keys = list(CENTRE)
    g = df.groupby([*keys, "method"])["ari"]
    tab = pd.DataFrame({"median": g.median(), "p10": g.quantile(0.1), "n": g.size()})
    wide = tab.unstack("method")
    methods_ = list(df["method"].unique())
    lines = [
        "| courses | schedule (weeks) | missed | noise | patients | "
        + " | ".join(f"{m} median (p10)" for m in methods_)
        + " |",
        "|" + "---|" * (5 + len(methods_)),
    ]
    for idx, row in wide.iterrows():
        c, s, miss, noise, n = idx
        cells = [f"{row[('median', m)]:.2f} ({row[('p10', m)]:.2f})" for m in methods_]
        lines.append(f"| {c} | {s} | {miss:.0%} | x{noise:g} | {n} | " + " | ".join(cells) + " |")
    overall = df.groupby("method")["ari"].agg(["median", lambda x: np.quantile(x, 0.1), "size"])
    overall.columns = ["median", "p10", "cohorts"]
    lines += ["", "All cohorts:", "", "| method | median | p10 | cohorts |", "|---|---|---|---|"]
    lines += [
        f"| {m} | {r['median']:.3f} | {r['p10']:.3f} | {int(r['cohorts'])} |"
        for m, r in overall.iterrows()
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--out", default=str(HERE / "results" / "patterns_generalisation.json"))
    parser.add_argument(
        "--seed-base", type=int, default=5000, help="first seed (round 3: 7000, unseen)"
    )
    parser.add_argument(
        "--must-show", action="store_true", help="only the 4-5 courses x 60/200 patients cells"
    )
    parser.add_argument("--methods", help="comma-separated subset of kmeans,kmeans_multivariate,lcmm")
    args = parser.parse_args()
    out = Path(args.out)
    cells = must_show_settings() if args.must_show else None
    only = set(args.methods.split(",")) if args.methods else None
    records = run(args.seeds, out, seed_base=args.seed_base, cells=cells, only=only)
    md = summarise(records)
    out.with_suffix(".md").write_text(md + "\n")
    print(md)


if __name__ == "__main__":
    main()
