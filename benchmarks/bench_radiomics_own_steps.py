"""CPU time of a ``ct_default`` call without its texture kernel and Moran/Geary, optionally A/B.

Issue 14 round 6 (task 14c) asks for less CPU in everything a ``ct_default`` call does
besides the texture kernel and Moran's I / Geary's C: interpolation, re-segmentation, the
shape kernel (mesh, hull, principal axes), intensity peaks, the intensity families, label
boxes, the HU check and the table. Per scaling lesion (1k, 5k, 20k voxels by default) one
process times the whole call (median of 25 CPU-timed calls after 6 untimed ones; and calls
2-6, the scaling benchmark's protocol), then the two excluded calls
(``texture_values``, ``morphology_features``: the same code in both trees) over 25 more
calls; the own part is the whole minus those. With ``--against SRC`` each round runs this
tree and then the tree at ``SRC`` (e.g. main's ``src``) in fresh processes, interleaved, so
both see the same machine load; the saving per round is (whole there - whole here) / own
part there.

Usage::

    OMP_NUM_THREADS=1 METEVO_BENCH_DIR=/work/.bench PYTHONPATH=src python \
        benchmarks/bench_radiomics_own_steps.py --against /work/main/src --rounds 6 \
        --out benchmarks/results/radiomics_own_steps_round6.json
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
_EXCLUDED = ("texture_values", "morphology_features")


def _measure(sizes: list[int]) -> dict[int, dict[str, float]]:
    """This process's per-lesion times (ms): whole call, calls 2-6, excluded calls."""
    import SimpleITK as sitk

    from metevo.exceptions import DataQualityWarning
    from metevo.radiomics import _engine, radiomic_features

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    warnings.simplefilter("ignore", DataQualityWarning)  # crops without air
    clock = time.process_time
    out = {}
    for n in sizes:
        folder = BENCH / "scaling_cases"
        image = sitk.ReadImage(str(folder / f"lesion_{n}_image.nii.gz"))
        mask = sitk.ReadImage(str(folder / f"lesion_{n}_mask.nii.gz"))
        radiomic_features(image, mask)  # untimed, as the scaling benchmark
        first = []
        for _ in range(5):
            c0 = clock()
            radiomic_features(image, mask)
            first.append(clock() - c0)
        whole = []
        for _ in range(25):
            c0 = clock()
            radiomic_features(image, mask)
            whole.append(clock() - c0)
        spent = [0.0]
        kept = {name: getattr(_engine, name) for name in _EXCLUDED}
        for name, f in kept.items():
            setattr(_engine, name, _timed(f, spent, clock))
        for _ in range(25):
            radiomic_features(image, mask)
        for name, f in kept.items():
            setattr(_engine, name, f)
        out[n] = {
            "whole_ms": 1000 * statistics.median(whole),
            "calls_2_6_ms": 1000 * statistics.median(first),
            "excluded_ms": 1000 * spent[0] / 25,
        }
    return out


def _timed(f, spent: list[float], clock):
    """``f``, adding its CPU time to ``spent[0]``."""

    def call(*args, **kwargs):
        c0 = clock()
        result = f(*args, **kwargs)
        spent[0] += clock() - c0
        return result

    return call


def _run(src: str, sizes: list[int]) -> dict:
    env = dict(os.environ, PYTHONPATH=src, OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", "--sizes", *map(str, sizes)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", default=None, help="another tree's src folder")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 20000])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(_measure(args.sizes)))
        return
    here = str(HERE.parent / "src")
    trees = {"this": here} | ({"against": args.against} if args.against else {})
    rounds = {name: [] for name in trees}
    for _ in range(args.rounds):
        for name, src in trees.items():
            rounds[name].append(_run(src, args.sizes))
    summary = {}
    for n in map(str, args.sizes):
        row = {}
        for name in trees:
            runs = [r[n] for r in rounds[name]]
            row[name] = {
                key: statistics.median(r[key] for r in runs)
                for key in ("whole_ms", "calls_2_6_ms", "excluded_ms")
            }
            row[name]["own_ms"] = statistics.median(r["whole_ms"] - r["excluded_ms"] for r in runs)
        if args.against:
            saving = [
                (a[n]["whole_ms"] - t[n]["whole_ms"]) / (a[n]["whole_ms"] - a[n]["excluded_ms"])
                for t, a in zip(rounds["this"], rounds["against"], strict=True)
            ]
            row["saving_of_own_part_per_round"] = [round(s, 3) for s in saving]
        summary[n] = row
        print(n, json.dumps(row))
    if args.out:
        args.out.write_text(json.dumps({"rounds": rounds, "summary": summary}, indent=1) + "\n")


if __name__ == "__main__":
    main()
