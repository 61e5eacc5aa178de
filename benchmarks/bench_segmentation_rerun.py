"""Run-once cost: ``metevo segment`` on a cohort whose masks are all up to date.

Writes ``--n-scans`` CTs (int16 NIfTI, ``--shape`` voxels at 3 mm), segments them once with the
demo model, then times reruns with nothing to do, each in a fresh process:

- ``segment_call_s``: the ``segment()`` call alone (manifest, provenance and stat checks, log);
- ``python_api_s``: ``python -c "from metevo.segmentation import segment; segment(...)"``
  (interpreter start and imports included);
- ``cli_s``: ``metevo segment MANIFEST --out DIR`` (``python -m metevo.cli``);
- ``cli_help_s`` / ``cli_version_s``: ``metevo --help`` / ``metevo --version``;

and whether torch / MONAI were imported by the rerun. Each figure is reported as the median wall
seconds and the median CPU seconds (user + system of the child process) over ``--repeats`` runs,
and ``python -X importtime`` of ``import metevo.cli`` and of the segment rerun's imports is
summarised (the slowest top-level imports).

    python benchmarks/bench_segmentation_rerun.py --n-scans 100 --repeats 5 \
        --work /tmp/metevo-rerun --out benchmarks/results/segmentation_rerun_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

SRC = Path(__file__).resolve().parents[1] / "src"


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """``(wall s, CPU s of the child, stdout)`` of one fresh process."""
    cpu0, t0 = _children_cpu(), time.perf_counter()
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    return time.perf_counter() - t0, _children_cpu() - cpu0, result.stdout


def slowest_imports(cmd: list[str], env: dict[str, str], n: int = 6) -> dict[str, float]:
    """The ``n`` slowest top-level imports (cumulative ms) under ``python -X importtime``."""
    result = subprocess.run(
        [cmd[0], "-X", "importtime", *cmd[1:]], capture_output=True, text=True, env=env, check=True
    )
    top = {}
    for line in result.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit() and not parts[2].startswith("   "):
            top[parts[2].strip()] = int(parts[1]) / 1000
    return dict(sorted(top.items(), key=lambda kv: -kv[1])[:n])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-scans", type=int, default=100)
    parser.add_argument("--shape", type=int, nargs=3, default=[96, 96, 48])
    parser.add_argument("--repeats", type=int, default=5)
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
    cli = [sys.executable, "-m", "metevo.cli"]
    commands = {
        "python_api_s": [sys.executable, "-c", code],
        "cli_s": [*cli, "segment", str(manifest), "--out", str(out), "--no-progress"],
        "cli_help_s": [*cli, "--help"],
        "cli_version_s": [*cli, "--version"],
    }
    wall: dict[str, list[float]] = {k: [] for k in ["segment_call_s", *commands]}
    cpu: dict[str, list[float]] = {k: [] for k in commands}
    found = {}
    for _ in range(args.repeats):
        for key, cmd in commands.items():
            w, c, stdout = timed(cmd, env)
            wall[key].append(w)
            cpu[key].append(c)
            if key == "python_api_s":
                found = json.loads(stdout.strip().splitlines()[-1])
                wall["segment_call_s"].append(found["call"])
    result = {
        "command": "python benchmarks/bench_segmentation_rerun.py "
        f"--n-scans {args.n_scans} --shape {x} {y} {z} --repeats {args.repeats}",
        "n_scans": args.n_scans,
        "first_run_s": round(first_s, 1),
        "reused": found.get("reused"),
        "rerun_imported_torch": found.get("torch"),
        "rerun_imported_monai": found.get("monai"),
        "wall_s": {k: round(float(np.median(v)), 3) for k, v in wall.items()},
        "cpu_s": {k: round(float(np.median(v)), 3) for k, v in cpu.items()},
        "wall_s_max": {k: round(float(np.max(v)), 3) for k, v in wall.items()},
        "slowest_imports_ms": {
            "metevo --help": slowest_imports(commands["cli_help_s"], env),
            "metevo segment (rerun)": slowest_imports(commands["cli_s"], env),
        },
        "load_average_1min": round(os.getloadavg()[0], 2),
        "note": f"median (and max) of {args.repeats} fresh processes; CPU = user + system",
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
