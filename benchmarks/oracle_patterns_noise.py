"""Bayes-oracle ceiling of the pattern ARI in the grid's noise x1 / x2 cells (issue 13).

Is the median ARI of about 0.54 that every method reaches at measurement noise x2 (grid of
``bench_patterns_generalisation.py``) the limit of the data? The oracle assigns each patient to
the planted course with the highest likelihood of its *observed* trajectory (noisy, with the
missed visits, censoring and dropout as generated) under the generator's TRUE parameters
(``benchmarks/_grid_cohorts.py``); with the generator's equal class shares this is the Bayes
classifier (maximum posterior), the best any method can do on average, and it is told k.

Exact per-course likelihood. With ``y_j = log(target_sum_j)`` at observed days ``t_j``, the
generator draws ``y_j = b + log r_c(t_j; f) + e_j`` with ``b ~ N(log 60, 0.5^2)`` (baseline),
``log f ~ N(0, 0.25^2)`` (the patient's rate factor) and ``e_j ~ N(0, (0.06 * noise)^2)``
independent. ``b`` is integrated in closed form (y is then Gaussian with covariance
``s^2 I + 0.25 J``); ``log f`` is integrated numerically on a 801-point grid over +/- 7 sd.
Visit jitter, missed visits and censoring do not depend on the course; the dropout (stop after
the first RECIST progression seen at a visit) is a deterministic function of the observed
values, so it is ignorable and cancels between courses: the likelihood is exact.

metevo: ``LatentClassTrajectories()`` defaults (the default pattern method; k chosen by ICL)
and, as a diagnostic, the same model told the true k.

The oracle alone is cheap (about 0.1 s CPU per cohort), so it also runs on 100 more seeds per
cell (``--wide-seeds``, default 9200-9299) to pin its distribution down.

Run:  OMP_NUM_THREADS=1 python benchmarks/oracle_patterns_noise.py [--seeds 9100-9104]
Writes benchmarks/results/patterns_oracle_noise.json (one record per cohort and method).
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

from _grid_cohorts import COURSES, NOISE_SD, _ratio, make_cohort  # noqa: E402

CELL = {"schedule_weeks": 8, "missed": 0.25, "n_patients": 200}
BASE_MU, BASE_SD, RATE_SD = np.log(60.0), 0.5, 0.25  # as drawn in make_cohort
LOGF = np.linspace(-7 * RATE_SD, 7 * RATE_SD, 801)
LOGW = (
    -0.5 * (LOGF / RATE_SD) ** 2 - np.log(RATE_SD * np.sqrt(2 * np.pi)) + np.log(LOGF[1] - LOGF[0])
)


def course_loglik(days: np.ndarray, y: np.ndarray, course: str, noise: float) -> float:
    """log p(y | course), baseline integrated exactly, rate factor on the LOGF grid."""
    s2, t2, n = (NOISE_SD * noise) ** 2, BASE_SD**2, y.size
    f = np.exp(LOGF)[:, None]
    m = np.log(_ratio(course, days[None, :], np.broadcast_to(f, (f.size, n))))
    d = y[None, :] - m - BASE_MU  # (grid, visits)
    quad = ((d**2).sum(1) - t2 * d.sum(1) ** 2 / (s2 + n * t2)) / s2
    logdet = n * np.log(s2) + np.log1p(n * t2 / s2)
    ll = -0.5 * (quad + logdet + n * np.log(2 * np.pi)) + LOGW
    top = ll.max()
    return float(top + np.log(np.exp(ll - top).sum()))


def oracle_labels(traj: pd.DataFrame, n_courses: int, noise: float) -> pd.Series:
    courses = COURSES[:n_courses]
    out = {}
    for pid, g in traj.groupby("patient_id", sort=False):
        g = g.sort_values("days")
        days, y = g["days"].to_numpy(float), np.log(g["target_sum_mm"].to_numpy(float))
        out[pid] = courses[int(np.argmax([course_loglik(days, y, c, noise) for c in courses]))]
    return pd.Series(out)


def _cohort(k: int, noise: float, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    return make_cohort(
        CELL["n_patients"],
        n_courses=k,
        schedule_weeks=CELL["schedule_weeks"],
        missed=CELL["missed"],
        noise=noise,
        seed=seed,
    )


def run(
    seeds: list[int],
    noises: list[float],
    courses: list[int],
    out_json: Path,
    wide_seeds: list[int] = (),
) -> list[dict]:
    from sklearn.metrics import adjusted_rand_score

    from metevo.patterns._latent_class import LatentClassTrajectories

    records = []
    for noise in noises:
        for k in courses:
            for seed in wide_seeds:  # the oracle alone (cheap) on many more cohorts
                traj, truth = _cohort(k, noise, seed)
                lab = oracle_labels(traj, k, noise)
                records.append(
                    {
                        "n_courses": k,
                        **CELL,
                        "noise": noise,
                        "seed": seed,
                        "method": "oracle_wide",
                        "k": k,
                        "ari": float(adjusted_rand_score(truth.loc[lab.index], lab)),
                    }
                )
            for seed in seeds:
                setting = {"n_courses": k, **CELL, "noise": noise, "seed": seed}
                traj, truth = _cohort(k, noise, seed)
                c0 = time.process_time()
                lab = oracle_labels(traj, k, noise)
                ari = adjusted_rand_score(truth.loc[lab.index], lab)
                acc = float((truth.loc[lab.index] == lab).mean())
                records.append(
                    {
                        **setting,
                        "method": "oracle",
                        "ari": float(ari),
                        "accuracy": acc,
                        "k": k,
                        "cpu_s": time.process_time() - c0,
                    }
                )
                for name, model in (
                    ("lcmm", LatentClassTrajectories(random_state=seed)),
                    ("lcmm_true_k", LatentClassTrajectories(n_classes=k, random_state=seed)),
                ):
                    c0 = time.process_time()
                    model.fit(traj)
                    tab = model.patterns_.dropna(subset=["pattern"])
                    ari_m = adjusted_rand_score(
                        truth.loc[tab["patient_id"]], tab["pattern_id"].astype(int)
                    )
                    records.append(
                        {
                            **setting,
                            "method": name,
                            "ari": float(ari_m),
                            "k": int(model.n_classes_),
                            "cpu_s": time.process_time() - c0,
                        }
                    )
                print(
                    f"noise x{noise:g} courses {k} seed {seed}: oracle {ari:.3f} (acc {acc:.3f}) "
                    + " ".join(f"{r['method']} {r['ari']:.3f} k={r['k']}" for r in records[-2:]),
                    flush=True,
                )
                out_json.write_text(json.dumps(records, indent=0))
    return records


def summarise(records: list[dict]) -> str:
    df = pd.DataFrame(records)
    g = df.groupby(["noise", "n_courses", "method"])
    tab = pd.DataFrame(
        {
            "seeds": g["seed"].apply(lambda s: f"{s.min()}-{s.max()} ({s.size})"),
            "median": g["ari"].median(),
            "p10": g["ari"].quantile(0.1),
        }
    ).unstack("method")
    lines = [
        "| noise | courses | seeds | oracle median (p10) | lcmm default median (p10) "
        "| lcmm true k median (p10) | oracle, wide seeds: median (p10) |",
        "|---|---|---|---|---|---|---|",
    ]
    for (noise, k), row in tab.iterrows():
        cells = [
            f"{row[('median', m)]:.2f} ({row[('p10', m)]:.2f})"
            for m in ("oracle", "lcmm", "lcmm_true_k")
        ]
        if ("median", "oracle_wide") in row.index and pd.notna(row[("median", "oracle_wide")]):
            cells.append(
                f"{row[('median', 'oracle_wide')]:.2f} ({row[('p10', 'oracle_wide')]:.2f}), "
                f"seeds {row[('seeds', 'oracle_wide')]}"
            )
        else:
            cells.append("-")
        lines.append(
            f"| x{noise:g} | {k} | {row[('seeds', 'oracle')]} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines)


def _seeds(text: str) -> list[int]:
    if "-" in text:
        a, b = text.split("-")
        return list(range(int(a), int(b) + 1))
    return [int(s) for s in text.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="9100-9104", help="'9100-9104' or '9100,9101'")
    parser.add_argument("--noise", default="2,1", help="noise factors, comma-separated")
    parser.add_argument("--courses", default="4,5", help="planted courses, comma-separated")
    parser.add_argument("--wide-seeds", default="9200-9299", help="oracle-only seeds ('' for none)")
    parser.add_argument("--out", default=str(HERE / "results" / "patterns_oracle_noise.json"))
    args = parser.parse_args()
    records = run(
        _seeds(args.seeds),
        [float(x) for x in args.noise.split(",")],
        [int(x) for x in args.courses.split(",")],
        Path(args.out),
        _seeds(args.wide_seeds) if args.wide_seeds else [],
    )
    print(summarise(records))


if __name__ == "__main__":
    main()
