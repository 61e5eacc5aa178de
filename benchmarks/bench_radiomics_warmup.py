"""Warm-up cost of metevo.radiomic_features: numba compilation and the first call in a process.

metevo's numba kernels are compiled at their first use on a machine and cached on disk
(``cache=True``). Measured here in fresh processes, with an empty cache directory (``compile``:
first use on a machine) and with the cache filled (``cached``: every later process), on a lesion
of ~5,000 voxels of ``radiomics_scaling_cases.py`` with ``ct_default``: the first call and the
second call of the process, wall and CPU time (the import of metevo itself is not counted).
Medians over ``--processes`` fresh processes.

Usage::

    .venv/bin/python benchmarks/bench_radiomics_warmup.py [--processes 3] [--out F]
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
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from radiomics_scaling_cases import write_cases  # noqa: E402

CHILD = """
import json, sys, time, warnings
warnings.simplefilter("ignore")
import SimpleITK as sitk
from metevo.radiomics import radiomic_features
img, msk = sitk.ReadImage(sys.argv[1]), sitk.ReadImage(sys.argv[2])
out = []
for _ in range(2):
    c0, t0 = time.process_time(), time.perf_counter()
    radiomic_features(img, msk)
    out.append((time.perf_counter() - t0, time.process_time() - c0))
print("RESULT " + json.dumps(out))
"""


def _run(image: Path, mask: Path, cache: str) -> list:
    env = dict(os.environ, NUMBA_CACHE_DIR=cache, OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(image), str(mask)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT ") :])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--data", type=Path, default=HERE.parent / ".bench" / "scaling_cases")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    (image, mask, n_voxels), *_ = write_cases(args.data, (5_000,))
    compile_runs, cached_runs = [], []
    for _ in range(args.processes):
        with tempfile.TemporaryDirectory() as cache:
            compile_runs.append(_run(image, mask, cache))  # empty cache: compiles
            cached_runs.append(_run(image, mask, cache))  # filled by the run before
    out = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load": "load average {:.1f} / {:.1f} / {:.1f} on {} cores".format(
            *os.getloadavg(), os.cpu_count()
        ),
        "n_voxels": n_voxels,
        "processes": args.processes,
    }
    for name, runs in (("compile", compile_runs), ("cached", cached_runs)):
        for call, label in ((0, "first"), (1, "second")):
            for k, clock in ((0, "wall"), (1, "cpu")):
                out[f"{name}_{label}_{clock}_s"] = round(
                    statistics.median(r[call][k] for r in runs), 3
                )
        for k, clock in ((0, "wall"), (1, "cpu")):
            out[f"{name}_extra_{clock}_s"] = round(
                statistics.median(r[0][k] - r[1][k] for r in runs), 3
            )
    print(json.dumps(out, indent=1))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
