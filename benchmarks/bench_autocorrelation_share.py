"""What Moran's I / Geary's C cost inside a whole ``ct_default`` call (one core).

For each scaling lesion (``radiomics_scaling_cases.py``): CPU time (``time.process_time``) of
``radiomic_features(..., settings="ct_default")`` with every feature, and with every feature
but ``morph_moran_i`` / ``morph_geary_c``, the two interleaved; medians of ``--repeats`` after
two untimed pairs. Run it with main's and a branch's ``src`` in turn to compare them.

Usage::

    OMP_NUM_THREADS=1 METEVO_BENCH_DIR=/work/.bench PYTHONPATH=src python \\
        benchmarks/bench_autocorrelation_share.py [--repeats 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import SimpleITK as sitk

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from radiomics_scaling_cases import SIZES  # noqa: E402

from metevo.radiomics import feature_catalog, radiomic_features  # noqa: E402

BENCH = Path(os.environ.get("METEVO_BENCH_DIR", HERE.parent / ".bench"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--data", type=Path, default=BENCH / "scaling_cases")
    args = parser.parse_args()
    names = feature_catalog()["feature"]
    without = [f for f in names if f not in ("morph_moran_i", "morph_geary_c")]
    for n in SIZES:
        img = sitk.ReadImage(str(args.data / f"lesion_{n}_image.nii.gz"))
        msk = sitk.ReadImage(str(args.data / f"lesion_{n}_mask.nii.gz"))
        times: dict[str, list[float]] = {"all": [], "without": []}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for k in range(args.repeats + 2):
                for key, features in (("all", None), ("without", without)):
                    t = time.process_time()
                    radiomic_features(img, msk, settings="ct_default", features=features)
                    if k >= 2:
                        times[key].append(time.process_time() - t)
        a = 1e3 * statistics.median(times["all"])
        b = 1e3 * statistics.median(times["without"])
        print(
            f"{n:7d} voxels: all {a:.1f} ms, without Moran/Geary {b:.1f} ms, "
            f"Moran/Geary {a - b:.1f} ms ({100 * (a - b) / a:.0f} %)",
            flush=True,
        )


if __name__ == "__main__":
    main()
