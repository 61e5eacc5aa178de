"""Speed of metevo.radiomic_features against pyradiomics 3.1.0 and MIRP, in the same run.

The peers live in their own virtual environments (not metevo dependencies):

    ~/.pyenv/versions/3.9.18/bin/python -m venv .bench/pyradiomics-venv
    .bench/pyradiomics-venv/bin/pip install "numpy<2" setuptools wheel scikit-build versioneer
    .bench/pyradiomics-venv/bin/pip install --no-build-isolation pyradiomics==3.1.0
    ~/.pyenv/versions/3.11.7/bin/python -m venv .bench/mirp-venv
    .bench/mirp-venv/bin/pip install mirp

Cases: a 256x256x64 CT at 0.8x0.8x2.5 mm with 3 and with 20 lesions of 10-40 mm
(``radiomics_phantom_ct.py``). Matched settings:

- vs pyradiomics (its defaults): no resampling, fixed bin size 25 HU (metevo's bins start at
  -1000 HU, a multiple of 25, so the bin edges are pyradiomics' too); metevo computes all its
  210 features, pyradiomics its default 107 (shape, first order, GLCM, GLRLM, GLSZM, GLDM,
  NGTDM).
- vs MIRP: metevo's ``ct_default`` (1 mm isotropic trilinear, re-segmentation [-1000, 400] HU,
  fixed bin size 25 HU) and the same in MIRP, all IBSI families in 3D.

Times are wall-clock per lesion (best of the repeats); numba compilation (first use on a
machine) and cache loading (first call in a process) are measured separately in fresh
processes. Usage::

    .venv/bin/python benchmarks/bench_radiomics.py [--repeats 3] [--mirp-cases 3 20] [--skip-mirp]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from radiomics_phantom_ct import write_case  # noqa: E402

PYRADIOMICS = Path(
    os.environ.get("METEVO_BENCH_PYRADIOMICS", ROOT / ".bench/pyradiomics-venv/bin/python")
)
MIRP = Path(os.environ.get("METEVO_BENCH_MIRP", ROOT / ".bench/mirp-venv/bin/python"))


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min) / {five:.1f} (5 min) on {os.cpu_count()} cores"


def _peer(python: Path, script: str, *args: object) -> dict:
    proc = subprocess.run(
        [str(python), str(HERE / script), *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{script} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


def _jit_seconds() -> tuple[float, float]:
    code = "from metevo.radiomics._engine import warm_up; print(warm_up())"
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        compile_s = float(
            subprocess.run(
                [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
            ).stdout
        )
    load_s = float(
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout
    )
    return compile_s, load_s


def _metevo(image: Path, mask: Path, repeats: int, **options: object) -> tuple[float, int]:
    import SimpleITK as sitk

    from metevo.radiomics import radiomic_features

    img, msk = sitk.ReadImage(str(image)), sitk.ReadImage(str(mask))
    radiomic_features(img, msk, labels=[1], **options)  # numba cache loaded
    best = float("inf")
    n = 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        table = radiomic_features(img, msk, **options)
        best = min(best, time.perf_counter() - t0)
        n = len(table)
    return best, n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cases", type=int, nargs="+", default=[3, 20])
    parser.add_argument("--mirp-cases", type=int, nargs="+", default=[3, 20])
    parser.add_argument("--skip-mirp", action="store_true")
    parser.add_argument("--skip-pyradiomics", action="store_true")
    parser.add_argument("--data", type=Path, default=ROOT / ".bench" / "data")
    parser.add_argument(
        "--out", type=Path, default=None, help="also write the figures to this JSON file"
    )
    args = parser.parse_args()

    print(f"start: {_load()}")
    compile_s, load_s = _jit_seconds()
    print(
        f"metevo numba kernels: compile {compile_s * 1000:.0f} ms (first use on a machine), "
        f"cache load {load_s * 1000:.0f} ms (first call in a process)"
    )
    rows = []
    for n in args.cases:
        image, mask = write_case(args.data, n)
        t_m, n_m = _metevo(image, mask, args.repeats, resample=False)
        line = {"case": n, "metevo_matched_pyradiomics_ms": 1000 * t_m / n_m}
        if not args.skip_pyradiomics:
            if PYRADIOMICS.exists():
                res = _peer(PYRADIOMICS, "_peer_pyradiomics.py", image, mask, n, args.repeats)
                line["pyradiomics_ms"] = 1000 * min(res["seconds"]) / n
                line["ratio_pyradiomics"] = (
                    line["pyradiomics_ms"] / line["metevo_matched_pyradiomics_ms"]
                )
            else:
                print(f"pyradiomics venv not found at {PYRADIOMICS}; see this file's docstring")
        t_c, n_c = _metevo(image, mask, args.repeats)
        line["metevo_ct_default_ms"] = 1000 * t_c / n_c
        if not args.skip_mirp and n in args.mirp_cases:
            if MIRP.exists():
                res = _peer(MIRP, "_peer_mirp.py", image, mask, n, 1, "ct_default")
                line["mirp_ms"] = 1000 * min(res["seconds"]) / n
                line["ratio_mirp"] = line["mirp_ms"] / line["metevo_ct_default_ms"]
            else:
                print(f"MIRP venv not found at {MIRP}; see this file's docstring")
        # metevo again after the peers, to show how the shared machine's load moved
        t_m2, _ = _metevo(image, mask, args.repeats, resample=False)
        line["metevo_matched_pyradiomics_after_ms"] = 1000 * t_m2 / n_m
        line["load"] = _load()
        rows.append(line)
        print(json.dumps(line))
    if args.out is not None:
        import platform

        import numpy

        args.out.parent.mkdir(parents=True, exist_ok=True)
        info = {
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, shared",
            "python": platform.python_version(),
            "numpy": numpy.__version__,
            "repeats": args.repeats,
            "numba_compile_ms": 1000 * compile_s,
            "numba_cache_load_ms": 1000 * load_s,
            "cases": rows,
        }
        args.out.write_text(json.dumps(info, indent=2) + "\n")
    print("\nper lesion, wall clock, best of repeats")
    for line in rows:
        text = f"{line['case']:>2} lesions: metevo {line['metevo_matched_pyradiomics_ms']:.1f} ms (no resampling)"
        if "pyradiomics_ms" in line:
            text += f" vs pyradiomics {line['pyradiomics_ms']:.0f} ms -> {line['ratio_pyradiomics']:.0f}x"
        text += f"; metevo ct_default {line['metevo_ct_default_ms']:.1f} ms"
        if "mirp_ms" in line:
            text += f" vs MIRP {line['mirp_ms']:.0f} ms -> {line['ratio_mirp']:.0f}x"
        print(text + f"  [{line['load']}]")


if __name__ == "__main__":
    main()
