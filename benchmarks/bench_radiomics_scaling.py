"""Radiomics at clinical lesion sizes: metevo against pyradiomics, pictologics and MIRP.

Five lesions of about 1k, 5k, 20k, 50k and 110k voxels on a 0.8 x 0.8 x 2.5 mm grid, grown in
the liver of the real CT of ``../shared/data/ct_example`` (``radiomics_scaling_cases.py``);
every tool runs the same lesions in the same run, each in its own process and environment:

- ``pyradiomics_like``: no resampling, bins of 25 HU with edges at multiples of 25 HU,
  pyradiomics' default feature classes (shape, first order, GLCM, GLRLM, GLSZM, GLDM, NGTDM;
  in metevo the ``pyradiomics_like`` preset, in pictologics the same families without spatial
  or local intensity). pyradiomics runs its defaults.
- ``ct_default``: metevo's default (1 mm isotropic trilinear, re-segmentation [-1000, 400] HU,
  bins of 25 HU from -1000 HU, every IBSI family with Moran's I / Geary's C (exact up to 20,000
  voxels, approximated above: ``autocorrelation_exact_max_voxels``) and the local intensity
  peaks); the same in pictologics and in MIRP (which approximates Moran/Geary from 1,000 voxels).
- per family: one family at a time with the ``pyradiomics_like`` settings (pyradiomics: one
  feature class; pictologics: one family).

Images are read before timing; imports and numba compilation are outside the timings (each
tool makes one untimed call first). Every tool runs on one thread (``OMP_NUM_THREADS=1``,
``PICTOLOGICS_NUM_THREADS=1``, ``ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS=1``): the shared machine
has 2 cores. Figures are medians of the
repeats, in CPU time (``time.process_time``; robust to the load of the shared machine) and in
wall time. MIRP, very slow, runs once per lesion (``--mirp-repeats``). The peers' venvs are
described in ``bench_radiomics.py``; pictologics: ``python3.12 -m venv .bench/pictologics &&
.bench/pictologics/bin/pip install pictologics`` (its first import compiles its numba kernels:
minutes). fastrad is left out: it does not install (it requires pyradiomics, whose source does not
build on the Python 3.12 fastrad requires, and PyTorch). ``METEVO_BENCH_DIR`` points at the
folder of the venvs (default ``.bench`` in the repository).

Usage::

    .venv/bin/python benchmarks/bench_radiomics_scaling.py [--repeats 3] [--out F]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from radiomics_scaling_cases import SIZES, write_cases  # noqa: E402

BENCH = Path(os.environ.get("METEVO_BENCH_DIR", ROOT / ".bench"))
PEERS = {
    "pyradiomics": (
        Path(os.environ.get("METEVO_BENCH_PYRADIOMICS", BENCH / "pyradiomics-venv/bin/python")),
        "_peer_scaling_pyradiomics.py",
    ),
    "pictologics": (
        Path(os.environ.get("METEVO_BENCH_PICTOLOGICS", BENCH / "pictologics/bin/python")),
        "_peer_scaling_pictologics.py",
    ),
    "mirp": (
        Path(os.environ.get("METEVO_BENCH_MIRP", BENCH / "mirp-venv/bin/python")),
        "_peer_scaling_mirp.py",
    ),
}
# metevo family -> (pyradiomics feature class, pictologics family)
FAMILIES = {
    "morphology": ("shape", "morphology"),
    "intensity_statistics": ("firstorder", "intensity"),
    "intensity_histogram": (None, "histogram"),
    "intensity_volume_histogram": (None, "ivh"),
    "glcm": ("glcm", "glcm"),
    "glrlm": ("glrlm", "glrlm"),
    "glszm": ("glszm", "glszm"),
    "gldzm": (None, "gldzm"),
    "ngtdm": ("ngtdm", "ngtdm"),
    "ngldm": ("gldm", "ngldm"),
}
ONE_THREAD = {
    "OMP_NUM_THREADS": "1",
    "PICTOLOGICS_NUM_THREADS": "1",
    "NUMBA_NUM_THREADS": "1",
    "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS": "1",  # SimpleITK filters (pyradiomics, MIRP)
}
ENV = dict(os.environ, **ONE_THREAD)


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min) / {five:.1f} (5 min) on {os.cpu_count()} cores"


def _peer(tool: str, cases: list, configs: list[str], repeats: int) -> dict | None:
    python, script = PEERS[tool]
    if not python.exists():
        print(f"{tool}: no venv at {python}; skipped (see this file's docstring)")
        return None
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump({"cases": cases, "repeats": repeats, "configs": configs}, f)
    t0 = time.time()
    proc = subprocess.run(
        [str(python), str(HERE / script), f.name], capture_output=True, text=True, env=ENV
    )
    os.unlink(f.name)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        print(f"{tool} failed ({proc.returncode}): {proc.stderr[-3000:]}")
        return None
    print(f"{tool}: {time.time() - t0:.0f} s")
    return json.loads(lines[-1][len("RESULT ") :])


def _metevo(cases: list, configs: dict[str, dict], repeats: int) -> dict:
    import SimpleITK as sitk

    from metevo.exceptions import DataQualityWarning
    from metevo.radiomics import radiomic_features

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    # the crops hold liver and lesion only (no air): the HU-range check would warn
    warnings.simplefilter("ignore", DataQualityWarning)
    images = [(sitk.ReadImage(i), sitk.ReadImage(m)) for i, m in cases]
    times: dict[str, list] = {}
    n_features = {}
    for name, options in configs.items():
        table = radiomic_features(*images[0], **options)  # numba cache loaded, outside timing
        times[name] = []
        for image, mask in images:
            runs = []
            for _ in range(repeats):
                c0 = time.process_time()
                t0 = time.perf_counter()
                table = radiomic_features(image, mask, **options)
                runs.append((time.perf_counter() - t0, time.process_time() - c0))
            times[name].append(runs)
        n_features[name] = table.shape[1] - 2
    return {"seconds": times, "n_features": n_features}


def _median_ms(runs: list) -> dict:
    return {
        "wall_ms": 1000 * statistics.median(r[0] for r in runs),
        "cpu_ms": 1000 * statistics.median(r[1] for r in runs),
    }


def _table(results: dict, n_voxels: list[int]) -> dict:
    """tool -> config -> list (one per lesion) of {wall_ms, cpu_ms}."""
    out = {}
    for tool, res in results.items():
        if res is None:
            continue
        out[tool] = {
            config: [dict(n_voxels=n, **_median_ms(r)) for n, r in zip(n_voxels, runs, strict=True)]
            for config, runs in res["seconds"].items()
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--mirp-repeats", type=int, default=1)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--skip", nargs="*", default=[], choices=sorted(PEERS))
    parser.add_argument("--no-families", action="store_true", help="whole runs only")
    parser.add_argument("--data", type=Path, default=BENCH / "scaling_cases")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    print(f"start: {_load()}")
    made = write_cases(args.data, tuple(args.sizes))
    cases = [[str(i), str(m)] for i, m, _ in made]
    n_voxels = [n for _, _, n in made]
    families = {} if args.no_families else FAMILIES
    metevo_configs = {
        "pyradiomics_like": {"settings": "pyradiomics_like"},
        "ct_default": {"settings": "ct_default"},
    }
    for family in families:
        features = None
        if family == "morphology":  # pyradiomics' shape: no spatial autocorrelation
            from metevo.radiomics import PRESETS

            features = tuple(
                n for n in PRESETS["pyradiomics_like"].features if n.startswith("morph_")
            )
        metevo_configs[f"family:{family}"] = (
            {"settings": "pyradiomics_like", "features": features, "families": ()}
            if features
            else {"settings": "pyradiomics_like", "families": (family,)}
        )
    pyrad_configs = ["default"] + [f"class:{c}" for c, _ in families.values() if c]
    picto_configs = ["pyradiomics_like", "ct_default"] + [
        f"family:{p}" for _, p in families.values()
    ]

    results = {"metevo": _metevo(cases, metevo_configs, args.repeats)}
    print(f"metevo done: {_load()}")
    if "pyradiomics" not in args.skip:
        results["pyradiomics"] = _peer("pyradiomics", cases, pyrad_configs, args.repeats)
    if "pictologics" not in args.skip:
        results["pictologics"] = _peer("pictologics", cases, picto_configs, args.repeats)
    if "mirp" not in args.skip:
        results["mirp"] = _peer("mirp", cases, ["ct_default"], args.mirp_repeats)
    # metevo again after the peers: how the shared machine's load moved during the run
    again = _metevo(
        cases, {k: metevo_configs[k] for k in ("pyradiomics_like", "ct_default")}, args.repeats
    )
    table = _table(results, n_voxels)
    table["metevo_after_peers"] = _table({"m": again}, n_voxels)["m"]

    ratios = []
    me = table["metevo"]
    pairs = [
        ("pyradiomics", "default", "pyradiomics_like"),
        ("pyradiomics", "default", "ct_default"),
        ("pictologics", "pyradiomics_like", "pyradiomics_like"),
        ("pictologics", "ct_default", "ct_default"),
        ("mirp", "ct_default", "ct_default"),
    ]
    for family, (pyr, pic) in families.items():
        if pyr:
            pairs.append(("pyradiomics", f"class:{pyr}", f"family:{family}"))
        pairs.append(("pictologics", f"family:{pic}", f"family:{family}"))
    for tool, theirs, ours in pairs:
        if tool not in table or theirs not in table[tool]:
            continue
        for a, b in zip(table[tool][theirs], me[ours], strict=True):
            ratios.append(
                {
                    "peer": tool,
                    "peer_config": theirs,
                    "metevo_config": ours,
                    "n_voxels": a["n_voxels"],
                    "peer_cpu_ms": round(a["cpu_ms"], 2),
                    "metevo_cpu_ms": round(b["cpu_ms"], 2),
                    "ratio_cpu": round(a["cpu_ms"] / b["cpu_ms"], 2),
                    "ratio_wall": round(a["wall_ms"] / b["wall_ms"], 2),
                }
            )
    print(
        f"\nCPU ms per lesion (median of {args.repeats}; MIRP {args.mirp_repeats}) and ratio peer / metevo"
    )
    for r in ratios:
        print(
            f"{r['peer']:12s} {r['peer_config']:22s} vs metevo {r['metevo_config']:30s} "
            f"{r['n_voxels']:>7d} vox: {r['peer_cpu_ms']:9.1f} / {r['metevo_cpu_ms']:7.1f} ms "
            f"= {r['ratio_cpu']:6.1f}x (wall {r['ratio_wall']:.1f}x)"
        )
    if args.out is not None:
        import platform

        import numpy

        info = {
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, shared; {_load()} at the end",
            "python": platform.python_version(),
            "numpy": numpy.__version__,
            "repeats": args.repeats,
            "mirp_repeats": args.mirp_repeats,
            "threads": 1,
            "versions": {t: r.get("version") for t, r in results.items() if r and "version" in r},
            "n_features": {
                t: r.get("n_features") for t, r in results.items() if r and "n_features" in r
            },
            "lesions": [
                {"n_voxels": n, "image": Path(i).name}
                for n, (i, _) in zip(n_voxels, cases, strict=True)
            ],
            "ratios": ratios,
            "times": table,
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(info, indent=1) + "\n")


if __name__ == "__main__":
    main()
