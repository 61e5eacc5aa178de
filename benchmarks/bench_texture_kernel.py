"""CPU time of the fused texture kernel alone on the scaling lesions, optionally A/B.

The engine's call ``texture_values(grey levels, ROI, families)`` is captured on each
scaling lesion (``ct_default``: all six families, 1 mm resampling) and timed by itself:
calls 2-6 of the process (the scaling benchmark's protocol) and the median of 40 calls
(20 from 50,000 voxels) after 8 warm-up calls, CPU time. With ``--against SRC`` each round
runs this tree and then the tree at ``SRC`` (e.g. main's ``src``) in fresh processes,
interleaved, so both see the same machine load.

Usage::

    OMP_NUM_THREADS=1 METEVO_BENCH_DIR=/work/.bench PYTHONPATH=src python \
        benchmarks/bench_texture_kernel.py --against /work/main/src --rounds 3 \
        --out benchmarks/results/texture_kernel_round6.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCH = Path(os.environ.get("METEVO_BENCH_DIR", HERE.parent / ".bench"))
SIZES = (1000, 5000, 20000, 50000, 110000)


def _measure() -> dict[int, dict[str, float]]:
    """This process's kernel times per lesion size (ms)."""
    import SimpleITK as sitk

    from metevo.exceptions import DataQualityWarning
    from metevo.radiomics import _engine, radiomic_features

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    warnings.simplefilter("ignore", DataQualityWarning)
    data = BENCH / "scaling_cases"
    captured = {}
    texture_values = _engine.texture_values

    def spy(values, roi, families):
        captured["args"] = (values.copy(), roi.copy(), families)
        return texture_values(values, roi, families)

    out = {}
    for n in SIZES:
        image = data / f"lesion_{n}_image.nii.gz"
        if not image.exists():
            sys.exit(f"{image}: missing (run benchmarks/bench_radiomics_scaling.py first)")
        _engine.texture_values = spy
        try:
            radiomic_features(
                str(image), str(data / f"lesion_{n}_mask.nii.gz"), settings="ct_default"
            )
        finally:
            _engine.texture_values = texture_values
        args = captured["args"]
        times = []
        for _ in range(8 + (40 if n <= 20000 else 20)):
            c0 = time.process_time()
            texture_values(*args)
            times.append(1000 * (time.process_time() - c0))
        out[n] = {
            "voxels": int(args[0].size),
            "calls_2_6_ms": statistics.median(times[1:6]),
            "median_ms": statistics.median(times[8:]),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", help="another tree's src directory, timed in turn")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--out")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_measure()))
        return
    trees = {"this": str(HERE.parent / "src")}
    if args.against:
        trees["against"] = args.against
    rounds = []
    for r in range(args.rounds):
        row = {}
        for name, src in trees.items():
            env = dict(os.environ, PYTHONPATH=src, OMP_NUM_THREADS="1")
            done = subprocess.run(
                [sys.executable, __file__, "--child"],
                env=env,
                check=True,
                capture_output=True,
                text=True,
            )
            row[name] = json.loads(done.stdout)
        rounds.append(row)
        for n in SIZES:
            cells = [
                f"{name} {row[name][str(n)]['median_ms']:.3f} ({row[name][str(n)]['calls_2_6_ms']:.3f})"
                for name in trees
            ]
            print(f"round {r} {n:>6} voxels: " + " | ".join(cells), flush=True)
    if args.out:
        Path(args.out).write_text(
            json.dumps(
                {
                    "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                    "machine": f"{os.cpu_count()} cores, shared; load {os.getloadavg()[0]:.1f}",
                    "trees": trees,
                    "what": "texture_values CPU ms per lesion, ct_default families: median of "
                    "40 (20 from 50k) after 8 calls; calls_2_6_ms the median of calls 2-6",
                    "rounds": rounds,
                },
                indent=1,
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
