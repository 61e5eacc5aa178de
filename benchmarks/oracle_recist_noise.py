"""Oracle ceilings of target-response agreement on the ``clinical`` preset (issue 18).

Is the issue's >= 0.97 target-response agreement (pipeline: masks -> lesions -> graph ->
RECIST, against the same engine on the true lesion graph and true diameters,
``benchmarks/bench_clinical.py``) reachable by ANY measurement from the masks the generator
hands out, or does the generator's own mask noise put the ceiling below it?

The truth (``recist_synthetic.truth_recist``): the RECIST engine (``assess_patient``) on the
ground-truth graph (``ground_truth/edges``, nodes = connected components of the handed-out
mask) with each component's ``axial_ld_mm`` = the sum of its true lesions' axial longest
diameters, taken on the scan's own slice planes from the lesion's exact surface
(``_synthetic_anatomy.axial_ld_mm``). The handed-out mask is that surface voxelised at the
scan grid (0.8 x 0.8 x 2.5 mm on ``clinical_crop``) with its boundary moved by a smooth random
field (``render_scan``: about half an in-plane voxel SD on lesions >= 20 mm, proportionally less
below), drawn afresh for every scan.

* **Oracle 1** (measurement only, no matching): the same engine on the TRUE graph, with each
  component's ``axial_ld_mm`` and ``axial_ld_separable_mm`` replaced by metevo's own
  ``measure_lesions`` on the generator's instance map of that scan (the handed-out mask's
  components, the nodes of the true graph); volumes, scans and edges stay the truth's. If it
  equals the pipeline's figure, every pipeline miss is measurement, none matching.
* **Oracle 2** (noise ceiling): the truth's lesion LDs, each perturbed by an error drawn from
  the generator's own error model, i.e. the empirical distribution of (LD of the handed-out
  mask measured by ``measure_lesions``) - (true LD) over every single-lesion component of
  seeds 0-5, bootstrapped within bins of true LD (the noise amplitude scales with size);
  components that hold several lesions get the sum of their perturbed lesions. ``--draws``
  Monte Carlo draws per seed: agreement median, p10, p90.

Also, per seed, the fraction of true follow-up assessments that are fragile by construction:
true % change within +-3 points of a threshold (+20 % from nadir, -30 % from baseline) or a
baseline whose 2nd target is within 0.5 mm of the next measurable (>= 10 mm) candidate.

Run (cohorts are generated into ``.bench/`` when absent, ~1-2 min each):
    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/oracle_recist_noise.py --seeds 0 1 2 3 4 5 \
        [--bench-dir DIR] [--draws 200]
Writes benchmarks/results/oracle_recist_noise.json.

``--estimator smooth --sigma S`` (issue 18, r4-18s): oracle 1 and the error model with the LD of
the mask smoothed in-plane (Gaussian S voxels, threshold 0.5) instead of the mask's own LD;
``--draws 0`` skips oracle 2; ``--discs S ...`` only measures the bias of both estimators on
hand-made discs and ellipses. ``oracle_recist_smooth_table.py`` collects those runs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk
from scipy import ndimage

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_clinical import _agreement  # noqa: E402
from recist_synthetic import truth_tables  # noqa: E402

from metevo.datasets import SyntheticCohort, make_synthetic_cohort  # noqa: E402
from metevo.datasets import _synthetic_anatomy as _anatomy  # noqa: E402
from metevo.response import assess_patient  # noqa: E402
from metevo.tracking import measure_lesions  # noqa: E402
from metevo.tracking._lesions import _axial_diameters  # noqa: E402
from metevo.tracking._lobes import lobe_labels  # noqa: E402

BINS = np.array([0.0, 10.0, 15.0, 20.0, 30.0, np.inf])  # true-LD bins of the error model (mm)
RESULTS = HERE / "results" / "oracle_recist_noise.json"


def cohort(bench: Path, seed: int, n: int, size: str, voxelised: bool) -> SyntheticCohort:
    """The cached cohort; ``voxelised``: the same cohort with noise-free voxelised masks.

    The noise-free variant replaces the generator's ``_consistent_noise`` (which turns the
    boundary-noised mask into the handed-out one) by the noise-free voxelisation it is given;
    the random stream is unchanged (the noise field is still drawn), so patients, lesions,
    motion and true LDs are those of the ordinary cohort.
    """
    folder = bench / f"clinical_{size}_{n}_{seed}{'_voxelised' if voxelised else ''}"
    if not (folder / "ground_truth" / "edges.parquet").exists():
        saved = _anatomy._consistent_noise
        if voxelised:
            _anatomy._consistent_noise = lambda true, noisy: true.copy()
        try:
            make_synthetic_cohort(folder, n_patients=n, seed=seed, size=size)
        finally:
            _anatomy._consistent_noise = saved
    return SyntheticCohort.at(folder)


def smooth_slices(piece: np.ndarray, sigma: float) -> np.ndarray:
    """The mask regularised in-plane: each slice Gaussian-smoothed (``sigma`` in-plane voxels,
    none across slices) and thresholded at 0.5."""
    pad = int(np.ceil(4 * sigma)) + 1
    p = np.pad(piece.astype(float), ((0, 0), (pad, pad), (pad, pad)))
    return ndimage.gaussian_filter(p, sigma=(0.0, sigma, sigma), mode="constant") >= 0.5


def smooth_ld(piece: np.ndarray, spacing_zyx: np.ndarray, sigma: float) -> float:
    """Axial longest diameter (mm, edge to edge, as ``axial_ld_mm``) of the smoothed mask."""
    sm = smooth_slices(piece, sigma)
    return float(_axial_diameters(sm, spacing_zyx)[0]) if sm.any() else 0.0


def smooth_override(inst: sitk.Image, m: pd.DataFrame, sigma: float) -> pd.DataFrame:
    """``axial_ld_mm`` / ``axial_ld_separable_mm`` of ``measure_lesions`` replaced by the
    smoothed-boundary estimator: each component (and, when separable, each of its lobes as
    ``lobe_labels`` cuts the unsmoothed component) smoothed in-plane and measured the same way.
    A lesion the smoothing erases entirely keeps its mask LD (never happened: counted)."""
    lab = sitk.GetArrayViewFromImage(inst)
    sp = np.array(inst.GetSpacing()[::-1], dtype=float)
    objects = ndimage.find_objects(lab)
    m = m.copy()
    for i, r in m.iterrows():
        sl = objects[int(r["lesion_id"]) - 1]
        piece = lab[sl] == r["lesion_id"]
        ld = smooth_ld(piece, sp, sigma)
        lobes, n = lobe_labels(piece, sp)
        sep = sum(smooth_ld(lobes == k, sp, sigma) for k in range(1, n + 1)) if n > 1 else ld
        if ld > 0:
            m.loc[i, "axial_ld_mm"] = ld
            m.loc[i, "axial_ld_separable_mm"] = sep
        else:
            ERASED[0] += 1
    return m


ERASED = [0]


def disc_bias(sigmas: list[float], pixel: float = 0.8) -> list[dict]:
    """Hand-made discs / ellipses (one slice, ``pixel`` mm pixels, random sub-pixel centre):
    measured - exact LD (mm) of the mask LD and of each smoothed estimator."""
    rng = np.random.default_rng(0)
    out = []
    sp = np.array([2.5, pixel, pixel])
    for d in (5.0, 7.5, 10.0, 12.5, 15.0, 20.0, 30.0):
        for ratio in (1.0, 0.6):
            errs = {"mask": []}
            errs.update({f"smooth_{s:g}": [] for s in sigmas})
            for _ in range(20):
                a, b = d / 2, d * ratio / 2
                n = int(np.ceil(d / pixel)) + 8
                c = n / 2 + rng.uniform(-0.5, 0.5, 2)
                th = rng.uniform(0, np.pi)
                yy, xx = (np.mgrid[0:n, 0:n] - c[:, None, None]) * pixel
                u = xx * np.cos(th) + yy * np.sin(th)
                v = -xx * np.sin(th) + yy * np.cos(th)
                piece = ((u / a) ** 2 + (v / b) ** 2 <= 1.0)[None]
                errs["mask"].append(_axial_diameters(piece, sp)[0] - d)
                for s in sigmas:
                    errs[f"smooth_{s:g}"].append(smooth_ld(piece, sp, s) - d)
            out.append(
                {
                    "ld_mm": d,
                    "axis_ratio": ratio,
                    **{
                        k: {"mean": float(np.mean(v)), "sd": float(np.std(v, ddof=1))}
                        for k, v in errs.items()
                    },
                }
            )
    return out


def measured_components(synth: SyntheticCohort, sigma: float | None = None) -> pd.DataFrame:
    """``measure_lesions`` on every scan's instance map (the handed-out mask's components);
    ``sigma``: the LDs from the in-plane smoothed mask instead (``smooth_override``)."""
    scans = synth.table("scans")
    rows = []
    for r in scans.itertuples():
        inst = sitk.ReadImage(str(synth.root / "ground_truth" / r.instance_mask))
        m = measure_lesions(None, inst, context=f"{r.patient_id} {r.timepoint}")
        if sigma is not None:
            m = smooth_override(inst, m, sigma)
        m.insert(0, "timepoint", r.timepoint)
        m.insert(0, "patient_id", r.patient_id)
        rows.append(
            m[
                [
                    "patient_id",
                    "timepoint",
                    "lesion_id",
                    "axial_ld_mm",
                    "axial_ld_separable_mm",
                    "volume_ml",
                ]
            ]
        )
    return pd.concat(rows, ignore_index=True)


def assess(pid, scans, comp, edges, clinical, events) -> pd.DataFrame:
    start = pd.Timestamp(clinical.loc[pid, "treatment_start"]).date()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out, _, _ = assess_patient(
            pid,
            scans,
            comp,
            edges,
            treatment_start=start,
            events=events[events["patient_id"] == pid],
        )
    return out


def agree(mine: pd.DataFrame, truth: pd.DataFrame) -> tuple[int, int]:
    a = _agreement(mine, truth)
    return a["target_agree"], a["target_n"]


def fragile(truth: pd.DataFrame, comp: pd.DataFrame) -> tuple[int, int, int]:
    """(near a threshold, near-tie baseline targets, either) among scored follow-ups."""
    base_tp = truth["timepoint"].iloc[0]
    fu = truth[(truth["timepoint"] != base_tp) & truth["target_response"].notna()]
    near = (fu["pct_change_nadir"] - 20.0).abs().le(3.0) | (
        fu["pct_change_baseline"] + 30.0
    ).abs().le(3.0)
    lds = np.sort(comp.loc[comp["timepoint"] == base_tp, "axial_ld_mm"].to_numpy())[::-1]
    lds = lds[lds >= 10.0]
    tie = len(lds) >= 3 and (lds[1] - lds[2]) < 0.5
    return int(near.sum()), int(tie) * len(fu), int((near | tie).sum())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4, 5])
    ap.add_argument("--patients", type=int, default=12)
    ap.add_argument("--size", default="clinical_crop")
    ap.add_argument("--bench-dir", type=Path, default=HERE.parent / ".bench")
    ap.add_argument("--draws", type=int, default=200)
    ap.add_argument("--rng", type=int, default=18)
    ap.add_argument("--json", type=Path, default=RESULTS)
    ap.add_argument(
        "--voxelised",
        action="store_true",
        help="noise-free voxelised masks (voxelisation alone), cohorts cached as *_voxelised",
    )
    ap.add_argument(
        "--estimator",
        choices=["mask", "smooth"],
        default="mask",
        help="LD estimator of oracle 1 and the error model: the mask's axial_ld_mm, or the "
        "axial LD of the mask smoothed in-plane (Gaussian --sigma voxels, threshold 0.5)",
    )
    ap.add_argument("--sigma", type=float, default=0.75, help="in-plane voxels (smooth)")
    ap.add_argument(
        "--discs",
        type=float,
        nargs="*",
        default=None,
        help="only: bias of the mask LD and of the smoothed LD (these sigmas) on hand-made "
        "discs/ellipses 5-30 mm at 0.8 mm pixels; writes --json",
    )
    args = ap.parse_args()
    t0 = time.process_time()
    if args.discs is not None:
        res = disc_bias(args.discs)
        for r in res:
            print(
                f"LD {r['ld_mm']:5.1f} ratio {r['axis_ratio']}: "
                + ", ".join(
                    f"{k} {v['mean']:+.3f}+-{v['sd']:.3f}"
                    for k, v in r.items()
                    if isinstance(v, dict)
                )
            )
        args.json.write_text(json.dumps({"discs": res}, indent=2) + "\n")
        return
    sigma = args.sigma if args.estimator == "smooth" else None

    # ---- per seed: truth, measured components, oracle 1
    data, errs = {}, []
    for seed in args.seeds:
        synth = cohort(args.bench_dir, seed, args.patients, args.size, args.voxelised)
        clinical = pd.read_csv(synth.clinical).set_index("patient_id")
        events = pd.read_csv(synth.events)
        meas = measured_components(synth, sigma)
        les = synth.table("lesions")
        # error model: single-lesion components, measured - true LD
        one = (
            les.groupby(["patient_id", "timepoint", "component"])["true_lesion_id"].transform(
                "size"
            )
            == 1
        )
        e = les[one].merge(
            meas,
            left_on=["patient_id", "timepoint", "component"],
            right_on=["patient_id", "timepoint", "lesion_id"],
            suffixes=("", "_meas"),
        )
        errs.append(
            pd.DataFrame(
                {
                    "lesion": f"{seed} " + e["patient_id"] + " " + e["true_lesion_id"],
                    "days": e["days"],
                    "true": e["axial_ld_mm"],
                    "err": e["axial_ld_mm_meas"] - e["axial_ld_mm"],
                }
            )
        )
        pats = {}
        o1_agree = o1_n = 0
        o1_miss = []
        for pid in sorted(les["patient_id"].unique()):
            scans, comp, edges = truth_tables(synth, pid)
            truth = assess(pid, scans, comp, edges, clinical, events)
            m = meas[meas["patient_id"] == pid].drop(columns="patient_id")
            c1 = comp.drop(columns="axial_ld_mm").merge(
                m.drop(columns="volume_ml"), on=["timepoint", "lesion_id"], how="left"
            )
            if c1["axial_ld_mm"].isna().any():
                raise RuntimeError(f"{pid}: true components missing from the instance maps")
            o1 = assess(pid, scans, c1, edges, clinical, events)
            a, n = agree(o1, truth)
            o1_agree, o1_n = o1_agree + a, o1_n + n
            mm = _agreement(o1, truth)["mismatch"]
            o1_miss += [f"{pid} {x[0]}: {x[1]} vs {x[2]}" for x in mm if x[1] != x[2]]
            pats[pid] = (scans, comp, edges, truth, les[les["patient_id"] == pid])
        frag = np.sum([fragile(p[3], p[1]) for p in pats.values()], axis=0)
        data[seed] = {
            "synth": synth,
            "clinical": clinical,
            "events": events,
            "patients": pats,
            "oracle1": (o1_agree, o1_n, o1_miss),
            "fragile": frag,
        }
        print(f"seed {seed}: oracle 1 {o1_agree}/{o1_n}; misses {o1_miss}", flush=True)

    err = pd.concat(errs, ignore_index=True)
    err["bin"] = np.digitize(err["true"], BINS) - 1
    pools = {b: g["err"].to_numpy() for b, g in err.groupby("bin")}
    model = [
        {
            "true_ld_mm": f"[{BINS[b]:g}, {BINS[b + 1]:g})",
            "n": int(len(v)),
            "mean": float(v.mean()),
            "sd": float(v.std(ddof=1)),
            "p05": float(np.percentile(v, 5)),
            "p95": float(np.percentile(v, 95)),
        }
        for b, v in sorted(pools.items())
    ]
    # independence across visits (oracle 2 draws each scan's error afresh): correlation of one
    # lesion's errors at consecutive visits where it is a single-lesion component
    er = err.sort_values(["lesion", "days"])
    nxt = er.groupby("lesion")["err"].shift(-1)
    ok = nxt.notna()
    lag1 = float(np.corrcoef(er.loc[ok, "err"], nxt[ok])[0, 1])
    print(f"error lag-1 correlation within a lesion: {lag1:.3f} ({int(ok.sum())} pairs)")
    print("error model (measured - true LD, mm):")
    for r in model:
        print(f"  {r}")

    # ---- oracle 2: Monte Carlo over the error model
    rng = np.random.default_rng(args.rng)
    out_seeds, counts = {}, {}
    pipe_dir = HERE / "results"
    for seed in args.seeds:
        d = data[seed]
        fracs = []
        for _ in range(args.draws):
            ag = n_tot = 0
            for pid, (scans, comp, edges, truth, les) in d["patients"].items():
                b = np.digitize(les["axial_ld_mm"].to_numpy(), BINS) - 1
                noise = np.array([rng.choice(pools[int(k)]) for k in b])
                pert = les.assign(axial_ld_mm=les["axial_ld_mm"].to_numpy() + noise)
                ld = pert.groupby(["timepoint", "component"])["axial_ld_mm"].sum()
                c2 = comp.copy()
                c2["axial_ld_mm"] = ld.reindex(
                    pd.MultiIndex.from_frame(c2[["timepoint", "lesion_id"]])
                ).to_numpy()
                a, n = agree(assess(pid, scans, c2, edges, d["clinical"], d["events"]), truth)
                ag, n_tot = ag + a, n_tot + n
            fracs.append(ag / n_tot)
            counts.setdefault(len(fracs) - 1, [0, 0])
            counts[len(fracs) - 1][0] += ag
            counts[len(fracs) - 1][1] += n_tot
        fr = np.array(fracs) if fracs else np.array([np.nan])
        o1a, o1n, o1m = d["oracle1"]
        pipe_json = pipe_dir / f"clinical_r4_seed{seed}.json"
        pipe = (
            None
            if args.voxelised
            else json.loads(pipe_json.read_text())["per_seed"][str(seed)][
                "target_response_agreement"
            ]
            if pipe_json.exists()
            else None
        )
        near, tie, either = (int(x) for x in d["fragile"])
        out_seeds[str(seed)] = {
            "pipeline": pipe,
            "oracle1": o1a / o1n,
            "oracle1_agree": o1a,
            "oracle1_n": o1n,
            "oracle1_misses": o1m,
            "oracle2_median": float(np.median(fr)),
            "oracle2_p10": float(np.percentile(fr, 10)),
            "oracle2_p90": float(np.percentile(fr, 90)),
            "oracle2_mean": float(fr.mean()),
            "oracle2_p_ge_0_97": float((fr >= 0.97).mean()),
            "followups_scored": o1n,
            "near_threshold": near,
            "near_tie_targets": tie,
            "fragile_either": either,
            "fragile_fraction": either / o1n,
        }
        s = out_seeds[str(seed)]
        print(
            f"seed {seed}: pipeline {pipe}, oracle 1 {s['oracle1']:.3f} ({o1a}/{o1n}), oracle 2 "
            f"{s['oracle2_median']:.3f} [{s['oracle2_p10']:.3f}, {s['oracle2_p90']:.3f}] "
            f"P(>=0.97) {s['oracle2_p_ge_0_97']:.2f}; fragile {either}/{o1n} "
            f"(near threshold {near}, near-tie targets {tie})",
            flush=True,
        )
    # pooled oracle 2: each draw's counts summed over the seeds
    pf = np.array([a / n for a, n in counts.values()]) if counts else np.array([np.nan])
    tot_n = sum(v["oracle1_n"] for v in out_seeds.values())
    pooled = {
        "oracle1": sum(v["oracle1_agree"] for v in out_seeds.values()) / tot_n,
        "fragile_fraction": sum(v["fragile_either"] for v in out_seeds.values()) / tot_n,
        "followups_scored": tot_n,
        "oracle2_median": float(np.median(pf)),
        "oracle2_p10": float(np.percentile(pf, 10)),
        "oracle2_p90": float(np.percentile(pf, 90)),
        "oracle2_p_ge_0_97": float((pf >= 0.97).mean()),
    }
    pipes = [v["pipeline"] for v in out_seeds.values()]
    if pipes and all(p is not None for p in pipes):
        pooled["pipeline"] = (
            sum(
                json.loads((pipe_dir / f"clinical_r4_seed{s}.json").read_text())["per_seed"][
                    str(s)
                ]["target_response_agreement"]
                * out_seeds[str(s)]["oracle1_n"]
                for s in args.seeds
            )
            / tot_n
        )
    print(f"pooled: {pooled}; CPU {time.process_time() - t0:.0f} s")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "command": "python benchmarks/oracle_recist_noise.py " + " ".join(sys.argv[1:]),
                "size": args.size,
                "masks": "noise-free voxelised" if args.voxelised else "as handed out",
                "estimator": args.estimator,
                "sigma_voxels": sigma,
                "smoothing_erased_lesions": ERASED[0],
                "patients": args.patients,
                "draws": args.draws,
                "error_model": model,
                "error_lag1_correlation": lag1,
                "per_seed": out_seeds,
                "pooled": pooled,
                "cpu_s": time.process_time() - t0,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
