"""CPU time and page faults of whole ``ct_default`` calls on the scaling lesions (one core).

For each lesion (``radiomics_scaling_cases.py``), after two untimed calls: the median CPU time
(``time.process_time``) and the median number of minor page faults
(``resource.getrusage(...).ru_minflt``) of ``--repeats`` calls of ``radiomic_features``.
Run it with main's and a branch's ``src`` in turn to compare them.

Usage::

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/bench_radiomics_faults.py \
        [--sizes 1000 5000 20000 49968 110000] [--repeats 9]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from radiomics_scaling_cases import SIZES  # noqa: E402

BENCH = Path(os.environ.get("METEVO_BENCH_DIR", HERE.parent / ".bench"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--preset", default="ct_default")
    parser.add_argument("--data", type=Path, default=BENCH / "scaling_cases")
    args = parser.parse_args()

    import SimpleITK as sitk

    from metevo.exceptions import DataQualityWarning
    from metevo.radiomics import radiomic_features

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    warnings.simplefilter("ignore", DataQualityWarning)
    for size in args.sizes:
        image = sitk.ReadImage(str(args.data / f"lesion_{size}_image.nii.gz"))
        mask = sitk.ReadImage(str(args.data / f"lesion_{size}_mask.nii.gz"))
        for _ in range(2):
            radiomic_features(image, mask, settings=args.preset)
        cpu, faults = [], []
        for _ in range(args.repeats):
            f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            c0 = time.process_time()
            radiomic_features(image, mask, settings=args.preset)
            cpu.append(time.process_time() - c0)
            faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
        print(
            f"{size} voxels: {1000 * statistics.median(cpu):.2f} ms CPU, "
            f"{statistics.median(faults):.0f} page faults",
            flush=True,
        )


if __name__ == "__main__":
    main()
