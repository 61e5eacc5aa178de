"""Per-family CPU time of metevo's radiomics on the scaling lesions (one core).

For each lesion (``radiomics_scaling_cases.py``: 1k, 5k, 20k, 50k, 110k voxels at
0.8 x 0.8 x 2.5 mm) and each preset, times the whole run and each family alone (CPU time,
``time.process_time``, median of ``--repeats``; one untimed call first loads the numba cache).
``--profile N`` also prints the ``N`` top functions by cumulative time of the whole run on the
largest lesion (cProfile).

Usage::

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/profile_radiomics_families.py \
        --sizes 1000 5000 110000 [--repeats 3] [--profile 25] [--out F]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import statistics
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from radiomics_scaling_cases import SIZES  # noqa: E402

BENCH = Path(os.environ.get("METEVO_BENCH_DIR", HERE.parent / ".bench"))
FAMILIES = (
    "morphology",
    "local_intensity",
    "intensity_statistics",
    "intensity_histogram",
    "intensity_volume_histogram",
    "glcm",
    "glrlm",
    "glszm",
    "gldzm",
    "ngtdm",
    "ngldm",
)


def _cpu_ms(fn, repeats: int) -> float:
    fn()
    runs = []
    for _ in range(repeats):
        c0 = time.process_time()
        fn()
        runs.append(time.process_time() - c0)
    return 1000.0 * statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--presets", nargs="+", default=["pyradiomics_like", "ct_default"])
    parser.add_argument("--profile", type=int, default=0)
    parser.add_argument("--data", type=Path, default=BENCH / "scaling_cases")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    import SimpleITK as sitk

    from metevo.exceptions import DataQualityWarning
    from metevo.radiomics import radiomic_features
    from metevo.radiomics._catalog import feature_families
    from metevo.radiomics._settings import check_settings

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    warnings.simplefilter("ignore", DataQualityWarning)
    result: dict = {}
    for preset in args.presets:
        families = {feature_families()[n] for n in check_settings(preset).selected()}
        for size in args.sizes:
            image = sitk.ReadImage(str(args.data / f"lesion_{size}_image.nii.gz"))
            mask = sitk.ReadImage(str(args.data / f"lesion_{size}_mask.nii.gz"))
            row = {
                "all": _cpu_ms(
                    lambda i=image, m=mask, p=preset: radiomic_features(i, m, settings=p),
                    args.repeats,
                )
            }
            for fam in FAMILIES:
                if fam in families:
                    row[fam] = _cpu_ms(
                        lambda i=image, m=mask, p=preset, f=fam: radiomic_features(
                            i, m, settings=p, families=[f]
                        ),
                        args.repeats,
                    )
            result.setdefault(preset, {})[str(size)] = row
            print(preset, size, " ".join(f"{k}={v:.1f}" for k, v in row.items()), flush=True)
            if args.profile and size == max(args.sizes):
                prof = cProfile.Profile()
                prof.enable()
                radiomic_features(image, mask, settings=preset)
                prof.disable()
                pstats.Stats(prof).sort_stats("tottime").print_stats(args.profile)
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
