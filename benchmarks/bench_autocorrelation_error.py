"""Error of the large-ROI approximation of Moran's I / Geary's C against the exact values.

The ROIs are those ``ct_default`` hands to ``spatial_autocorrelation`` (after the 1 mm
interpolation and re-segmentation), recorded by wrapping it, for lesions the approximation was
not tuned on, plus the scaling lesions:

- ``scaling``: the five lesions of ``radiomics_scaling_cases.py`` (1k-110k voxels at
  0.8 x 0.8 x 2.5 mm);
- ``phantom``: the lesions of ``radiomics_phantom_ct.make_ct(20, seed=7)`` (10-40 mm, textured);
- ``liver``: pieces of the real CT's liver (``../shared/data/ct_example``, TotalSegmentator label
  5), the liver inside balls of 20-34 mm radius around fixed points of it;
- ``shape``: a sphere, an elongated ellipsoid with a necrotic core, a rim (shell) and two
  lobes with a gradient, smoothed noise, at 1 mm (no interpolation).

For each ROI above ``--min-voxels``: the exact values (FFT), the approximation with its
default seed, the RMS relative error over ``--seeds`` other seeds, and CPU ms (medians of 7,
the estimators interleaved).
``--compare DIR`` also runs the approximation (``_autocorrelation_approx.py``, before round 6
``_autocorrelation.py``) found in another ``src/metevo/
radiomics`` (e.g. main's) over the same seeds.

Usage::

    OMP_NUM_THREADS=1 METEVO_BENCH_DIR=/work/.bench PYTHONPATH=src python \
        benchmarks/bench_autocorrelation_error.py [--seeds 10] [--compare /work/main/src] \
        [--out benchmarks/results/autocorrelation_error.json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from radiomics_phantom_ct import make_ct  # noqa: E402
from radiomics_scaling_cases import CT_DIR, SIZES  # noqa: E402

import metevo.radiomics._morphology as _morphology  # noqa: E402
from metevo.radiomics import _autocorrelation as ac  # noqa: E402
from metevo.radiomics import _autocorrelation_approx as approx_ac  # noqa: E402
from metevo.radiomics import radiomic_features  # noqa: E402

BENCH = Path(os.environ.get("METEVO_BENCH_DIR", HERE.parent / ".bench"))


def _recorded(
    image: sitk.Image, labels: sitk.Image
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The (values, mask, spacing) of every lesion's Moran/Geary call under ``ct_default``."""
    seen = []
    original = _morphology.spatial_autocorrelation

    def spy(values, mask, spacing, exact_max_voxels=None):
        seen.append((np.array(values), np.array(mask), np.array(spacing, float)))
        return 0.0, 0.0

    _morphology.spatial_autocorrelation = spy
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            radiomic_features(image, labels, settings="ct_default", features=["morph_moran_i"])
    finally:
        _morphology.spatial_autocorrelation = original
    return seen


def _scaling_cases():
    for n in SIZES:
        img = sitk.ReadImage(str(BENCH / "scaling_cases" / f"lesion_{n}_image.nii.gz"))
        msk = sitk.ReadImage(str(BENCH / "scaling_cases" / f"lesion_{n}_mask.nii.gz"))
        for case in _recorded(img, msk):
            yield f"scaling {n}", case


def _phantom_cases():
    img, lab = make_ct(20, seed=7)
    for k, case in enumerate(_recorded(img, lab)):
        yield f"phantom lesion {k + 1}", case


def _liver_cases():
    ct = sitk.ReadImage(str(CT_DIR / "example_ct_sm.nii.gz"), sitk.sitkFloat32)
    seg = sitk.ReadImage(str(CT_DIR / "example_seg.nii.gz"))
    liver = sitk.GetArrayFromImage(seg) == 5
    sp = np.array(ct.GetSpacing()[::-1])
    idx = np.argwhere(liver)
    rng = np.random.default_rng(2026)
    for k, radius in enumerate((20.0, 24.0, 28.0, 34.0)):
        centre = idx[rng.integers(len(idx))]
        zz, yy, xx = np.indices(liver.shape, sparse=True)
        ball = ((zz - centre[0]) * sp[0]) ** 2 + ((yy - centre[1]) * sp[1]) ** 2
        ball = ball + ((xx - centre[2]) * sp[2]) ** 2 <= radius**2
        lab = sitk.GetImageFromArray((liver & ball).astype(np.uint8))
        lab.CopyInformation(ct)
        for case in _recorded(ct, lab):
            yield f"liver piece {k + 1} (r {radius:.0f} mm)", case


def _shape_cases():
    rng = np.random.default_rng(77)
    zz, yy, xx = np.indices((52, 64, 58)).astype(float)
    noise = ndimage.gaussian_filter(rng.normal(0, 40, zz.shape), 1.0)
    spacing = np.ones(3)
    r = np.sqrt((zz - 25.5) ** 2 + (yy - 31.5) ** 2 + (xx - 28.5) ** 2)
    yield "sphere r 24 mm", (40.0 + noise, r <= 24, spacing)
    e = np.sqrt(((zz - 25.5) / 12) ** 2 + ((yy - 31.5) / 30) ** 2 + ((xx - 28.5) / 16) ** 2)
    yield (
        "ellipsoid 24x60x32 mm, necrotic core",
        (np.where(e < 0.55, 5.0, 70.0) + noise, e <= 1, spacing),
    )
    yield (
        "rim (shell 17-25 mm)",
        (90.0 + 25.0 * np.sin(xx / 4.0) + noise, (r <= 25) & (r >= 17), spacing),
    )
    a = np.sqrt(((zz - 24) / 16) ** 2 + ((yy - 20) / 17) ** 2 + ((xx - 20) / 15) ** 2)
    b = np.sqrt(((zz - 28) / 15) ** 2 + ((yy - 42) / 18) ** 2 + ((xx - 36) / 16) ** 2)
    yield "two lobes, gradient", (1.5 * yy + noise, (a <= 1) | (b <= 1), spacing)


def _load(path: str):
    # round 6 moved the approximation into its own module; older trees hold it in
    # _autocorrelation.py
    folder = Path(path) / "metevo" / "radiomics"
    file = folder / "_autocorrelation_approx.py"
    if not file.exists():
        file = folder / "_autocorrelation.py"
    spec = importlib.util.spec_from_file_location("compare_autocorrelation", file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _approximate(module):
    """The module's approximation (public since round 6, private before)."""
    return (
        getattr(module, "approximate_autocorrelation", None) or module._approximate_autocorrelation
    )


def _moran_geary(module, values, mask, spacing, seed):
    n = int(mask.sum())
    w, cross, sq, ss = module.pair_sums(values, mask, spacing, seed=seed)
    return n / w * cross / ss, (n - 1) * sq / (2.0 * w * ss)


def _cpu_ms(fns, *args, repeats: int = 7) -> list[float]:
    """CPU ms medians of ``repeats`` calls of each of ``fns``, interleaved (after one call
    each, untimed)."""
    times = [[] for _ in fns]
    for k in range(repeats + 1):
        for fn, out in zip(fns, times, strict=True):
            t = time.process_time()
            fn(*args)
            if k:
                out.append(time.process_time() - t)
    return [1e3 * statistics.median(t) for t in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--min-voxels", type=int, default=15_000)
    parser.add_argument("--compare", help="another src/ folder whose approximation to run too")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    other = _load(args.compare) if args.compare else None
    seeds = [1 + 7919 * k for k in range(args.seeds)]
    rows = []
    sources = (_scaling_cases(), _phantom_cases(), _liver_cases(), _shape_cases())
    print(
        "| ROI | voxels | Moran exact | approx. | RMS % | Geary exact | approx. | RMS % | CPU ms exact / approx. |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for source in sources:
        for name, (values, mask, spacing) in source:
            n = int(mask.sum())
            if n < args.min_voxels:
                continue
            exact = np.array(ac._spatial_autocorrelation(values, mask, spacing))
            approx = np.array(_approximate(approx_ac)(values, mask, spacing))
            runs = np.array([_moran_geary(approx_ac, values, mask, spacing, s) for s in seeds])
            rms = 100 * np.sqrt(((runs / exact - 1) ** 2).mean(axis=0))
            row = {
                "roi": name,
                "voxels": n,
                "exact": exact.tolist(),
                "approx": approx.tolist(),
                "rms_percent": rms.tolist(),
                "max_abs_error": np.abs(runs - exact).max(axis=0).tolist(),
            }
            fns = [ac._spatial_autocorrelation, _approximate(approx_ac)]
            if other is not None:
                fns.append(_approximate(other))
            cpu = _cpu_ms(fns, values, mask, spacing)
            row["cpu_ms_exact"], row["cpu_ms_approx"] = cpu[0], cpu[1]
            extra = ""
            if other is not None:
                old = np.array([_moran_geary(other, values, mask, spacing, s) for s in seeds])
                row["compare_rms_percent"] = (
                    100 * np.sqrt(((old / exact - 1) ** 2).mean(axis=0))
                ).tolist()
                row["compare_cpu_ms"] = cpu[2]
                extra = f" (compare: RMS {row['compare_rms_percent'][0]:.2f} / {row['compare_rms_percent'][1]:.3f} %, {row['compare_cpu_ms']:.1f} ms)"
            rows.append(row)
            print(
                f"| {name} | {n:,} | {exact[0]:.5f} | {approx[0]:.5f} ({100 * (approx[0] / exact[0] - 1):+.2f} %) "
                f"| {rms[0]:.2f} | {exact[1]:.5f} | {approx[1]:.5f} ({100 * (approx[1] / exact[1] - 1):+.3f} %) "
                f"| {rms[1]:.3f} | {row['cpu_ms_exact']:.1f} / {row['cpu_ms_approx']:.1f} |{extra}",
                flush=True,
            )
    if args.out:
        args.out.write_text(json.dumps({"seeds": seeds, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
