"""Run-once cost: ``metevo segment`` on a cohort whose masks are all up to date.

Writes ``--n-scans`` CTs (int16 NIfTI, ``--shape`` voxels at 3 mm), segments them once with the
demo model, then times reruns with nothing to do, each in a fresh process:

- ``segment_call_s``: the ``segment()`` call alone (manifest, provenance and stat checks, log);
- ``python_api_s``: ``python -c "from metevo.segmentation import segment; segment(...)"``
  (interpreter start and imports included);
- ``cli_s``: ``metevo segment MANIFEST --out DIR`` (``python -m metevo.cli``);
- ``cli_help_s`` / ``cli_version_s``: ``metevo --help`` / ``metevo --version``;

and whether torch / MONAI were imported by the rerun.

    python benchmarks/bench_segmentation_rerun.py --n-scans 100
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

SRC = Path(__file__).resolve().parents[1] / "src"


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    return time.perf_counter() - t0, result.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-scans", type=int, default=100)
    parser.add_argument("--shape", type=int, nargs=3, default=[96, 96, 48])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    import pandas as pd
    import SimpleITK as sitk

    from metevo.segmentation import segment

    work = args.work or Path(tempfile.mkdtemp(prefix="metevo-bench-rerun-"))
    (work / "ct").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rows = []
    x, y, z = args.shape
    for i in range(args.n_scans):
        path = work / "ct" / f"ct{i:03d}.nii.gz"
        if not path.is_file():
            vol = rng.normal(-1000, 10, (z, y, x)).astype(np.int16)
            vol[z // 6 : -z // 6, y // 5 : -y // 5, x // 5 : -x // 5] = 60
            image = sitk.GetImageFromArray(vol)
            image.SetSpacing((3.0, 3.0, 3.0))
            sitk.WriteImage(image, str(path))
        rows.append({"patient_id": f"P{i // 3:03d}", "timepoint": f"V{i % 3}", "image": str(path)})
    manifest = work / "manifest.csv"
    pd.DataFrame(rows).to_csv(manifest, index=False)
    out = work / "seg"
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the demo model warns: these CTs are not its kind
        first = segment(manifest, "demo", out, device="cpu")
    first_s = time.perf_counter() - t0
    assert not first.attrs["log"].status.eq("failed").any()

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), *sys.path])}
    code = (
        "import sys, time, json\n"
        "from metevo.segmentation import segment\n"
        "t = time.perf_counter()\n"
        f"new = segment({str(manifest)!r}, 'demo', {str(out)!r}, device='cpu')\n"
        "print(json.dumps({'call': time.perf_counter() - t,"
        " 'reused': int(new.attrs['log'].status.eq('reused').sum()),"
        " 'torch': 'torch' in sys.modules, 'monai': 'monai' in sys.modules}))\n"
    )
    figures: dict[str, list[float]] = {
        "segment_call_s": [], "python_api_s": [], "cli_s": [], "cli_help_s": [],
        "cli_version_s": [],
    }  # fmt: skip
    found = {}
    for _ in range(args.repeats):
        wall, stdout = timed([sys.executable, "-c", code], env)
        found = json.loads(stdout.strip().splitlines()[-1])
        figures["python_api_s"].append(wall)
        figures["segment_call_s"].append(found["call"])
        cli = [sys.executable, "-m", "metevo.cli"]
        figures["cli_s"].append(
            timed([*cli, "segment", str(manifest), "--out", str(out), "--no-progress"], env)[0]
        )
        figures["cli_help_s"].append(timed([*cli, "--help"], env)[0])
        figures["cli_version_s"].append(timed([*cli, "--version"], env)[0])
    result = {
        "command": "python benchmarks/bench_segmentation_rerun.py "
        f"--n-scans {args.n_scans} --shape {x} {y} {z} --repeats {args.repeats}",
        "n_scans": args.n_scans,
        "first_run_s": round(first_s, 1),
        "reused": found.get("reused"),
        "rerun_imported_torch": found.get("torch"),
        "rerun_imported_monai": found.get("monai"),
        **{k: round(float(np.median(v)), 3) for k, v in figures.items()},
        "note": "median of repeats, wall seconds, fresh process each",
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
