"""What a cohort of lesions of many box shapes costs, against the scaling benchmark's protocol
(one lesion repeated).

The exact Moran/Geary path (ROIs up to 20,000 voxels) transforms on a grid whose lengths follow
the lesion's box; the kernel's spectrum is cached per grid shape (64 MiB) and scipy caches its
FFT plans per length, so a lesion whose grid shape is new pays both. This script makes 18
variants of the 5k-voxel scaling lesion (dilated by 0-1 voxel along z and 0-2 along y and x:
18 box shapes, 12 FFT grid shapes, 5,000-9,000 voxels) and times each once per pass, three
passes, `ct_default`, CPU time; also the part of it in Moran/Geary (`spatial_autocorrelation`)
and the page faults taken there. Pass 0 meets every shape for the first time.

Usage::

    OMP_NUM_THREADS=1 METEVO_BENCH_DIR=/work/.bench PYTHONPATH=src python \
        benchmarks/bench_radiomics_shapes.py
"""

from __future__ import annotations

import itertools
import os
import resource
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from scipy import ndimage

HERE = Path(__file__).resolve().parent
BENCH = Path(os.environ.get("METEVO_BENCH_DIR", HERE.parent / ".bench"))


def main() -> None:
    import SimpleITK as sitk

    from metevo.exceptions import DataQualityWarning
    from metevo.radiomics import radiomic_features

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    warnings.simplefilter("ignore", DataQualityWarning)
    data = BENCH / "scaling_cases"
    if not (data / "lesion_5000_mask.nii.gz").exists():
        sys.exit(
            f"{data}: no lesion_5000_*.nii.gz (run benchmarks/bench_radiomics_scaling.py first)"
        )
    image = sitk.ReadImage(str(data / "lesion_5000_image.nii.gz"))
    mask = sitk.ReadImage(str(data / "lesion_5000_mask.nii.gz"))
    roi = sitk.GetArrayFromImage(mask) > 0
    variants = []
    for ez, ey, ex in itertools.product((0, 1), (0, 1, 2), (0, 1, 2)):
        st = np.zeros((3, 5, 5), bool)
        st[1 - ez : 2 + ez, 2, 2] = True
        st[1, 2 - ey : 3 + ey, 2] = True
        st[1, 2, 2 - ex : 3 + ex] = True
        out = sitk.GetImageFromArray(ndimage.binary_dilation(roi, st).astype(np.uint8))
        out.CopyInformation(mask)
        variants.append(out)
    from metevo.radiomics import _morphology

    inner, faults = [], []
    original = _morphology.spatial_autocorrelation

    def timed(*args, **kwargs):
        f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        c0 = time.process_time()
        try:
            return original(*args, **kwargs)
        finally:
            inner.append(1000 * (time.process_time() - c0))
            faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)

    _morphology.spatial_autocorrelation = timed
    try:
        radiomic_features(image, mask, settings="ct_default")  # numba cache loaded
        for p in range(3):
            times = []
            inner.clear()
            faults.clear()
            for v in variants:
                c0 = time.process_time()
                radiomic_features(image, v, settings="ct_default")
                times.append(1000 * (time.process_time() - c0))
            print(
                f"pass {p}: median {statistics.median(times):.2f} ms, "
                f"mean {statistics.mean(times):.2f} ms; Moran/Geary median "
                f"{statistics.median(inner):.2f} ms, mean {statistics.mean(inner):.2f} ms, "
                f"{sum(faults)} page faults"
            )
    finally:
        _morphology.spatial_autocorrelation = original


if __name__ == "__main__":
    main()
