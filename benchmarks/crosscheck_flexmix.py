"""Cross-check of the latent-class trajectory model against R flexmix (issue 13; not CI).

Both sides get the same table (``benchmarks/_grid_cohorts.py``, seeds not used during
development). flexmix fits a latent-class regression ``log(target_sum + 1) ~ t + t^2 |
patient_id`` (t in months, Gaussian, residual sd per class, k = 1..6, 10 random starts each,
``stepFlexmix``); metevo fits the same model (``outcome="log"``,
``random_effects="none"``, ``class_variance=True``, ``degree=2``, ``n_knots=0``, every visit). Reported per cohort and k:

* ``ll_metevo_at_flexmix``: metevo's log-likelihood evaluated at flexmix's parameters, against
  flexmix's own ``logLik`` (same model, same data: must agree to rounding);
* ``ll_metevo_fit`` vs ``ll_flexmix``: the optimum each side finds (metevo's must not be below
  flexmix's by more than 1e-3 relative);
* ARI of the planted courses: flexmix with its own BIC choice of k (on the log target sum, as
  in the issue, and on the log-ratio to baseline, a stronger variant) vs metevo's default
  ``LatentClassTrajectories()`` (k by ICL; and by BIC from the same fits) and
  ``EvolutionPatterns()``.

Needs ``Rscript`` with flexmix (Debian: ``apt-get install r-cran-flexmix``).

Run:  python benchmarks/crosscheck_flexmix.py [--quick]
      python benchmarks/crosscheck_flexmix.py --seeds 3101,3102 --no-1000 \
          --out benchmarks/results/crosscheck_flexmix_round3.json   (round 3, unseen seeds)
      python benchmarks/crosscheck_flexmix.py --refit results/crosscheck_flexmix.json --n-init 50
          (no R: refits metevo on the stored cohorts; with --out, writes the updated records)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _grid_cohorts import make_cohort  # noqa: E402

DAYS_PER_MONTH = 365.25 / 12.0


def _flexmix(table: pd.DataFrame, work: Path, outcome: str, seed: int) -> tuple[pd.DataFrame, ...]:
    data = work / "data.csv"
    table.to_csv(data, index=False)
    prefix = work / f"fx_{outcome}"
    subprocess.run(
        [
            "Rscript",
            str(HERE / "_flexmix_fit.R"),
            str(data),
            str(prefix),
            "6",
            "10",
            str(seed),
            outcome,
        ],
        check=True,
        capture_output=True,
    )
    return (
        pd.read_csv(f"{prefix}_params.csv"),
        pd.read_csv(f"{prefix}_clusters.csv", dtype={"patient_id": str}),
    )


def _flexmix_model(k: int, seed: int, n_init: int):
    """metevo's LatentClassTrajectories set up as flexmix's latent-class regression."""
    from metevo.patterns._latent_class import LatentClassTrajectories

    return LatentClassTrajectories(
        n_classes=k,
        outcome="log",
        n_knots=0,
        random_effects="none",
        class_variance=True,
        degree=2,
        horizon_days=None,
        n_init=n_init,
        random_state=seed,
    )


def _ll_at(table: pd.DataFrame, params: pd.DataFrame) -> float:
    from metevo.patterns import _lcmm as lc

    t = table["t_months"].to_numpy(float)
    X = np.c_[np.ones_like(t), t, t * t]  # noqa: N806
    ids = table["patient_id"].to_numpy()
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    s = lc.sufficient_stats(starts, X, table["y"].to_numpy(float), [])
    par = lc.Params(
        np.log(params["prior"].to_numpy(float)),
        params[["coef_0", "coef_1", "coef_2"]].to_numpy(float),
        np.zeros((len(params), 0, 0)),
        params["sigma"].to_numpy(float) ** 2,
    )
    return lc.loglik(s, par)


def one_cohort(setting: dict, work: Path, n_init: int = 30) -> dict:
    from sklearn.metrics import adjusted_rand_score

    from metevo.patterns import EvolutionPatterns
    from metevo.patterns._latent_class import LatentClassTrajectories

    traj, truth = make_cohort(**setting)
    traj = traj.sort_values(["patient_id", "study_day"], kind="stable").reset_index(drop=True)
    table = pd.DataFrame(
        {
            "patient_id": traj["patient_id"],
            "t_months": traj["study_day"] / DAYS_PER_MONTH,
            "y": np.log(traj["target_sum_mm"] + 1.0),
        }
    )
    table["y_ratio"] = table["y"] - table.groupby("patient_id")["y"].transform("first")
    t0 = time.perf_counter()
    params, clusters = _flexmix(table, work, "y", setting["seed"])
    t_fx = time.perf_counter() - t0
    params_r, clusters_r = _flexmix(table, work, "y_ratio", setting["seed"])
    rows = []
    for _k_asked, par in params.groupby("k_asked"):
        k = int(par["k"].iloc[0])
        ll_fx = float(par["loglik"].iloc[0])
        ll_at = _ll_at(table, par)
        mine = _flexmix_model(k, setting["seed"], n_init).fit(traj)
        rows.append(
            {
                "k": k,
                "ll_flexmix": ll_fx,
                "ll_metevo_at_flexmix": ll_at,
                "rel_diff_at_flexmix": abs(ll_at - ll_fx) / abs(ll_fx),
                "ll_metevo_fit": mine.log_likelihood_,
                "rel_gain_metevo_fit": (mine.log_likelihood_ - ll_fx) / abs(ll_fx),
            }
        )

    def _ari(clus: pd.DataFrame, par: pd.DataFrame) -> tuple[float, int]:
        k_bic = int(par.loc[par["bic_choice"], "k_asked"].iloc[0])
        c = clus.loc[clus["k_asked"] == k_bic].set_index("patient_id")["cluster"]
        return float(adjusted_rand_score(truth.loc[c.index], c)), int(
            par.loc[par["bic_choice"], "k"].iloc[0]
        )

    ari_fx, k_fx = _ari(clusters, params)
    ari_fx_r, k_fx_r = _ari(clusters_r, params_r)
    t0 = time.perf_counter()
    lcmm = LatentClassTrajectories(random_state=setting["seed"]).fit(traj)
    t_lcmm = time.perf_counter() - t0
    ari_lcmm = float(adjusted_rand_score(truth.loc[lcmm.patient_ids_], lcmm.labels_))
    sel = lcmm.selection_
    k_bic = int(sel.loc[sel.loc[sel["eligible"], "bic"].idxmin(), "k"])
    ari_bic = float(
        adjusted_rand_score(
            truth.loc[lcmm.patient_ids_], lcmm.fits_[k_bic].posterior.argmax(axis=1)
        )
    )
    km = EvolutionPatterns(random_state=setting["seed"]).fit(traj)
    tab = km.patterns_.dropna(subset=["pattern"])
    ari_km = float(adjusted_rand_score(truth.loc[tab["patient_id"]], tab["pattern"]))
    return {
        **setting,
        "per_k": rows,
        "max_rel_diff_at_flexmix": max(r["rel_diff_at_flexmix"] for r in rows),
        "min_rel_gain_metevo_fit": min(r["rel_gain_metevo_fit"] for r in rows),
        "ari_flexmix_log": ari_fx,
        "k_flexmix_log": k_fx,
        "ari_flexmix_log_ratio": ari_fx_r,
        "k_flexmix_log_ratio": k_fx_r,
        "ari_metevo_lcmm": ari_lcmm,
        "k_metevo_lcmm": int(lcmm.n_classes_),
        "ari_metevo_lcmm_bic": ari_bic,
        "k_metevo_lcmm_bic": k_bic,
        "ari_metevo_kmeans": ari_km,
        "k_metevo_kmeans": int(km.n_patterns_),
        "seconds_flexmix_log": t_fx,
        "seconds_metevo_lcmm": t_lcmm,
    }


def refit(path: Path, n_init: int, out: Path | None = None) -> None:
    """metevo's optimum per k (flexmix's specification, ``n_init`` starts) and its default
    ``LatentClassTrajectories()`` ARI, against the flexmix results stored in ``path`` (no R)."""
    from sklearn.metrics import adjusted_rand_score

    from metevo.patterns._latent_class import LatentClassTrajectories

    records = json.loads(path.read_text())
    worst = np.inf
    for res in records:
        setting = {key: res[key] for key in ("n_patients", "n_courses", "seed")}
        traj, truth = make_cohort(**setting)
        gains = []
        for row in res["per_k"]:
            mine = _flexmix_model(row["k"], setting["seed"], n_init).fit(traj)
            row["ll_metevo_fit"] = mine.log_likelihood_
            row["rel_gain_metevo_fit"] = (mine.log_likelihood_ - row["ll_flexmix"]) / abs(
                row["ll_flexmix"]
            )
            gains.append(row["rel_gain_metevo_fit"])
        res["min_rel_gain_metevo_fit"] = min(gains)
        worst = min(worst, min(gains))
        t0 = time.perf_counter()
        lcmm = LatentClassTrajectories(random_state=setting["seed"]).fit(traj)
        res["seconds_metevo_lcmm"] = time.perf_counter() - t0
        res["ari_metevo_lcmm"] = float(
            adjusted_rand_score(truth.loc[lcmm.patient_ids_], lcmm.labels_)
        )
        res["k_metevo_lcmm"] = int(lcmm.n_classes_)
        print(
            f"{setting}: (metevo - flexmix) / |flexmix| per k = "
            + ", ".join(f"{g:+.1e}" for g in gains)
            + f"; ARI metevo lcmm {res['ari_metevo_lcmm']:.3f} (k={res['k_metevo_lcmm']}) vs "
            f"flexmix log-ratio {res['ari_flexmix_log_ratio']:.3f}, log {res['ari_flexmix_log']:.3f}",
            flush=True,
        )
        if out is not None:
            out.write_text(json.dumps(records, indent=1))
    print(f"n_init={n_init}: worst relative difference {worst:+.2e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two cohorts only")
    parser.add_argument("--out", default=str(HERE / "results" / "crosscheck_flexmix.json"))
    parser.add_argument(
        "--refit",
        help="JSON of an earlier run: refit metevo at each k with --n-init starts and compare "
        "with the flexmix log-likelihoods stored there (no R needed)",
    )
    parser.add_argument("--n-init", type=int, default=30)
    parser.add_argument(
        "--seeds",
        default="2001,2002,2003",
        help="comma-separated seeds (round 2 developed on 2001-2004; round 3 checks 3101,3102)",
    )
    parser.add_argument("--no-1000", action="store_true", help="skip the 1,000-patient cohort")
    args = parser.parse_args()
    args.out_given = "--out" in sys.argv
    if args.refit:
        refit(Path(args.refit), args.n_init, Path(args.out) if args.out_given else None)
        return
    settings = [
        {"n_patients": n, "n_courses": c, "seed": s}
        for n in (60, 200)
        for c in (4, 5)
        for s in (int(v) for v in args.seeds.split(","))
    ]
    if not args.no_1000:
        settings.append({"n_patients": 1000, "n_courses": 4, "seed": 2004})
    if args.quick:
        settings = settings[:1] + settings[3:4]
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for setting in settings:
            res = one_cohort(setting, Path(tmp), args.n_init)
            out.append(res)
            Path(args.out).write_text(json.dumps(out, indent=1))
            worst = min(res["per_k"], key=lambda r: r["rel_gain_metevo_fit"])
            print(f"  worst k: {worst}", flush=True)
            print(
                f"n={res['n_patients']:5d} courses={res['n_courses']} seed={res['seed']}: "
                f"ll rel diff at flexmix params {res['max_rel_diff_at_flexmix']:.1e}, "
                f"metevo optimum - flexmix >= {res['min_rel_gain_metevo_fit']:+.1e} rel; ARI "
                f"flexmix {res['ari_flexmix_log']:.3f} (k={res['k_flexmix_log']}), flexmix "
                f"log-ratio {res['ari_flexmix_log_ratio']:.3f} (k={res['k_flexmix_log_ratio']}), "
                f"metevo lcmm {res['ari_metevo_lcmm']:.3f} (k={res['k_metevo_lcmm']}), "
                f"lcmm by BIC {res['ari_metevo_lcmm_bic']:.3f} (k={res['k_metevo_lcmm_bic']}), "
                f"metevo kmeans {res['ari_metevo_kmeans']:.3f} (k={res['k_metevo_kmeans']})",
                flush=True,
            )
    Path(args.out).write_text(json.dumps(out, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
