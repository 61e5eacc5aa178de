"""Issue 16 (DICOM): NIfTI vs DICOM series + SEG runs, export-dicom from the CLI, SEG/SR round-trip.

On a synthetic cohort (seed not used in development) and on ../shared/data/ct_example (real CT,
TotalSegmentator liver, a painted lesion at two visits). Prints and writes
``benchmarks/results/dicom_roundtrip.json``.

    OMP_NUM_THREADS=1 python benchmarks/dicom_roundtrip.py [--patients 3] [--seed 21]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
TABLES = ("scans", "lesions", "lesion_edges", "registrations", "recist", "recist_lesions",
          "patients", "radiomics", "trajectories", "patient_trajectories")


def cli(*args: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "metevo.cli", *args], check=True, capture_output=True, text=True)
    return time.perf_counter() - t0


def max_diff(a: Path, b: Path) -> dict:
    out = {}
    for t in TABLES:
        if not (a / f"{t}.parquet").exists():
            continue
        x, y = pd.read_parquet(a / f"{t}.parquet"), pd.read_parquet(b / f"{t}.parquet")
        worst = 0.0
        same_text = True
        for c in x.columns:
            if pd.api.types.is_numeric_dtype(x[c]) and not pd.api.types.is_bool_dtype(x[c]):
                d = np.abs(x[c].astype(float).to_numpy() - y[c].astype(float).to_numpy())
                worst = max(worst, float(np.nanmax(d, initial=0)))
            else:
                same_text &= x[c].astype(str).equals(y[c].astype(str))
        out[t] = {"rows": len(x), "max_abs_diff": worst, "text_columns_equal": bool(same_text)}
    return out


def sr_check(analysis: Path, export: Path) -> dict:
    import highdicom as hd

    lesions = pd.read_parquet(analysis / "lesions.parquet")
    worst, uids, n = 0.0, {}, 0
    for (pid, tp), rows in lesions.groupby(["patient_id", "timepoint"]):
        sr = hd.sr.srread(export / pid / tp / "sr.dcm")
        rows = rows.sort_values("lesion_id")
        groups = sr.content.get_volumetric_roi_measurement_groups()
        for g, (_, r) in zip(groups, rows.iterrows(), strict=True):
            m = {x.name.meaning: float(x.value) for x in g.get_measurements()}
            for name, col in (("Volume", "volume_ml"), ("Long axis", "axial_ld_mm"),
                              ("Short axis", "axial_sa_mm"), ("Attenuation Coefficient", "mean_hu")):
                worst = max(worst, abs(m[name] - float(r[col])))
            uids.setdefault((pid, int(r.track_id)), set()).add(g.tracking_uid)
            n += 1
    errors = 0
    if shutil.which("dciodvfy"):
        for f in sorted(export.rglob("*.dcm")):
            res = subprocess.run(["dciodvfy", str(f)], capture_output=True, text=True, check=False)
            errors += sum(line.startswith("Error") for line in (res.stdout + res.stderr).splitlines())
    return {
        "lesion_groups": n,
        "max_abs_diff_sr_vs_tables": worst,
        "tracks": len(uids),
        "tracks_with_one_uid": sum(len(u) == 1 for u in uids.values()),
        "distinct_uids": len({next(iter(u)) for u in uids.values()}),
        "dciodvfy_errors": errors if shutil.which("dciodvfy") else None,
        "files": len(list(export.rglob("*.dcm"))),
    }


def report_check(analysis: Path, report: Path) -> dict:
    """The report written without --manifest: pages, crops, Chromium render, crop alignment."""
    import re

    from metevo.report._crops import visit_to_first

    regs = pd.read_parquet(analysis / "registrations.parquet")
    scans = pd.read_parquet(analysis / "scans.parquet")
    pages = sorted((report / "patients").glob("*.html"))
    n_crops, worst_mm, n_aligned = 0, 0.0, 0
    for page in pages:
        html = page.read_text(encoding="utf-8")
        found = re.findall(r'data-timepoint="([^"]+)" data-track="(\d+)" data-slice="\d+" data-center-mm="([^"]+)"', html)
        n_crops += len(found)
        pid = page.stem
        tps = scans[scans.patient_id == pid].sort_values("date").timepoint.tolist()
        to_first = visit_to_first(tps, regs[regs.patient_id == pid])
        first: dict[str, tuple[str, list]] = {}  # track -> (its first visit, crop centres there)
        for tp, track, centre in found:  # pages list visits in order: a track's first crops come first
            c = np.array([float(v) for v in centre.split()])
            p0 = (to_first[tp] @ np.append(c, 1.0))[:3] if tp in to_first else None
            if track not in first or first[track][0] == tp:
                first.setdefault(track, (tp, []))[1].append(p0)
            elif p0 is not None and all(q is not None for q in first[track][1]):
                # a track with several lesions at its first visit: its crops follow one of them
                worst_mm = max(worst_mm, min(float(np.linalg.norm(p0 - q)) for q in first[track][1]))
                n_aligned += 1
    out = {"pages": len(pages), "crops": n_crops, "follow_up_crops_checked": n_aligned,
           "max_mm_follow_up_crop_centre_to_first_visit_crop_centre_in_first_visit_space": worst_mm}
    exe = shutil.which("chromium")
    if exe:
        loaded = broken = console = 0
        for page in [report / "index.html", *pages]:
            res = subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000",
                                  "--enable-logging=stderr", "--v=0", "--dump-dom", page.resolve().as_uri()],
                                 capture_output=True, encoding="utf-8", errors="replace", timeout=120, check=False)
            m = re.search(r'data-images-loaded="(\d*)" data-images-broken="(\d*)"', res.stdout)
            loaded += int(m.group(1) or 0) if m else 0
            broken += int(m.group(2) or 0) if m else 1
            console += sum(":CONSOLE" in ln for ln in res.stderr.splitlines())
        out.update(chromium_images_loaded=loaded, chromium_images_broken=broken, chromium_console_lines=console)
    return out


def run(name: str, nifti_manifest: Path, work: Path, extra: list[str], liver_label: int | None) -> dict:
    from metevo.datasets import write_dicom_cohort

    t0 = time.perf_counter()
    dicom_manifest = write_dicom_cohort(nifti_manifest, work / "dicom", liver_label=liver_label)
    t_write = time.perf_counter() - t0
    t_nii = cli("analyze", str(nifti_manifest), "--out", str(work / "out_nifti"), "--workers", "1", "--no-progress", *extra)
    t_dcm = cli("analyze", str(dicom_manifest), "--out", str(work / "out_dicom"), "--workers", "1", "--no-progress")
    t_exp = cli("export-dicom", str(work / "out_dicom"), "--out", str(work / "export"))
    t_rep = cli("report", str(work / "out_dicom"), "--out", str(work / "report"))  # no --manifest
    return {
        "cohort": name,
        "seconds": {"write_dicom": t_write, "analyze_nifti": t_nii, "analyze_dicom": t_dcm, "export_dicom": t_exp,
                    "report": t_rep},
        "nifti_vs_dicom": max_diff(work / "out_nifti", work / "out_dicom"),
        "export": sr_check(work / "out_dicom", work / "export"),
        "report_without_manifest": report_check(work / "out_dicom", work / "report"),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--patients", type=int, default=3)
    ap.add_argument("--seed", type=int, default=21)
    args = ap.parse_args()
    from metevo.datasets import make_synthetic_cohort

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        syn = make_synthetic_cohort(tmp / "syn", n_patients=args.patients, seed=args.seed, size="tiny")
        results.append(run(f"synthetic tiny, {args.patients} patients, seed {args.seed}", syn.manifest, tmp / "syn_run", [], None))
        ct_dir = HERE.parent.parent / "shared" / "data" / "ct_example"
        if ct_dir.exists():
            sys.path.insert(0, str(HERE.parent))
            from tests.test_export import real_ct_manifest

            (tmp / "ct").mkdir()
            visits = [("V0", "2022-01-10", 15.0), ("V1", "2022-03-10", 10.0), ("V2", "2022-05-10", 18.0)]
            real_ct_manifest(ct_dir.parent, tmp / "ct", visits)
            results.append(run("ct_example (real CT, painted lesion, 3 visits)", tmp / "ct" / "manifest.csv",
                               tmp / "ct_run", ["--liver-label", "5"], 5))
    print(json.dumps(results, indent=1))
    out = HERE / "results" / "dicom_roundtrip.json"
    out.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
