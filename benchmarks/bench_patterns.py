"""Benchmark of the evolution-pattern pipeline (issue 7).

Full pipeline on N patients x up to 8 irregular visits (image-free trajectories from the
kinetics model of ``metevo.datasets``): representation + fit for every k in 2..8 + silhouette,
Calinski-Harabasz + bootstrap stability (10 refits per k) + names/confidence. In the same run,
the common recipe: tslearn ``TimeSeriesKMeans(metric="dtw")`` + tslearn ``silhouette_score``
(DTW) over the same k range on a subset of the raw visit sequences.

Run:  .venv/bin/python benchmarks/bench_patterns.py [--n 10000] [--tslearn-n 500]
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--tslearn-n", type=int, default=500)
    parser.add_argument("--bootstrap", type=int, default=10)
    args = parser.parse_args()

    from sklearn.metrics import adjusted_rand_score

    from metevo.datasets import make_synthetic_trajectories
    from metevo.patterns import EvolutionPatterns

    print(f"cpus: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f}")
    t0 = time.perf_counter()
    data = make_synthetic_trajectories(args.n, seed=0, max_visits=8)
    traj = data["patient_trajectories"]
    t_gen = time.perf_counter() - t0
    visits = traj.groupby("patient_id").size()
    print(
        f"generated {args.n} patients, {len(traj)} visits (max {visits.max()} per patient) "
        f"in {t_gen:.1f} s"
    )

    t0 = time.perf_counter()
    model = EvolutionPatterns(
        "auto", k_range=(2, 8), n_bootstrap=args.bootstrap, random_state=0
    ).fit(traj)
    t_fit = time.perf_counter() - t0
    truth = data["ground_truth"].set_index("patient_id")["pattern"]
    tab = model.patterns_.dropna(subset=["pattern"])
    ari = adjusted_rand_score(truth.loc[tab["patient_id"]], tab["pattern"])
    print(
        f"metevo masked k-means, k in 2..8, {args.bootstrap} bootstrap refits per k: "
        f"{t_fit:.1f} s (chosen k={model.n_patterns_}, ARI vs planted {ari:.2f})"
    )
    print(
        model.selection_[["k", "silhouette", "calinski_harabasz", "stability_ari_mean", "selected"]]
        .round(3)
        .to_string(index=False)
    )

    # the representation that recovers the planted patterns (ARI >= 0.8): multivariate with
    # the rise over the nadir and the lesion spread (lesion trajectories in, spread computed)
    t0 = time.perf_counter()
    multi = EvolutionPatterns(
        "auto",
        representation="multivariate",
        k_range=(2, 8),
        n_bootstrap=args.bootstrap,
        random_state=0,
    ).fit(traj, lesion_trajectories=data["lesion_trajectories"])
    t_multi = time.perf_counter() - t0
    tab = multi.patterns_.dropna(subset=["pattern"])
    ari_multi = adjusted_rand_score(truth.loc[tab["patient_id"]], tab["pattern"])
    print(
        f"metevo masked k-means, multivariate + lesion spread, k in 2..8, {args.bootstrap} "
        f"bootstrap refits per k: {t_multi:.1f} s (chosen k={multi.n_patterns_}, ARI vs "
        f"planted {ari_multi:.2f})"
    )

    # the common recipe on raw visit sequences (tslearn ignores time stamps)
    from metevo.patterns import _features as pf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from tslearn.clustering import TimeSeriesKMeans, silhouette_score

    ids = np.sort(traj["patient_id"].unique())[: args.tslearn_n]
    sub = traj[traj["patient_id"].isin(ids)]
    table = pf.check_trajectories(sub, ("target_sum_mm",))
    rep = pf.build_representation(
        table,
        ("target_sum_mm",),
        grid_days=None,
        horizon_days="auto",
        grid_step_days=28,
        landmark_days=None,
        visit_tolerance_days=14,
        min_followup_fraction=0.5,
    )
    seqs = pf.sequences(rep)
    t0 = time.perf_counter()
    TimeSeriesKMeans(n_clusters=2, metric="dtw", max_iter=2, random_state=0).fit(seqs[:20])
    t_warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    for k in range(2, 9):
        km = TimeSeriesKMeans(n_clusters=k, metric="dtw", random_state=0).fit(seqs)
        silhouette_score(seqs, km.labels_, metric="dtw")
    t_ts = time.perf_counter() - t0
    n_ts = len(seqs)
    print(
        f"tslearn DTW TimeSeriesKMeans + DTW silhouette, k in 2..8, no bootstrap, "
        f"{n_ts} series: {t_ts:.1f} s (+{t_warm:.1f} s numba warm-up)"
    )
    print(
        f"  extrapolated (silhouette O(n^2), k-means O(n)) to 2,000 series: "
        f">= {t_ts * 2000 / n_ts:.0f} s; to {args.n} series: >= {t_ts * args.n / n_ts:.0f} s"
    )
    print(
        f"metevo per 1,000 patients: {1000 * t_fit / args.n:.2f} s; tslearn per 1,000 "
        f"series: {1000 * t_ts / n_ts:.1f} s"
    )


if __name__ == "__main__":
    main()
