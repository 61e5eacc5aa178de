"""Per-call cost of a whole clinical-size scan: one lesion in a 512 x 512 x 150 CT.

The scaling benchmark times lesions in crops (the lesion's box plus 20 mm), as every tool
there is given. A user passes the whole scan and its label mask. Here the real CT of
``../shared/data/ct_example`` is resampled (linear) onto a 512 x 512 x 150 grid of
0.8 x 0.8 x 2.5 mm (410 x 410 x 375 mm; air where the source CT ends), and each scaling
lesion's crop (``radiomics_scaling_cases.py``) is pasted at the grid's centre, image and mask
(uint8). Each tool gets the same lesion as the crop and as the whole scan; the difference is
what the scan costs per call. CPU time, median of ``--repeats`` calls after one untimed call,
one thread. With ``--against SRC`` the same is timed with the tree at ``SRC`` (e.g. main's
``src``) in a fresh process; with ``--pyradiomics PYTHON`` pyradiomics' defaults too (its
own Python; its defaults, as in the scaling benchmark).

Usage::

    OMP_NUM_THREADS=1 METEVO_BENCH_DIR=/work/.bench PYTHONPATH=src python \
        benchmarks/bench_radiomics_full_scan.py --against /work/ci/src \
        --pyradiomics /work/.bench/pyradiomics-venv/bin/python \
        --out benchmarks/results/radiomics_full_scan.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCH = Path(os.environ.get("METEVO_BENCH_DIR", HERE.parent / ".bench"))
SIZES = (1000, 5000, 20000)
GRID = (512, 512, 150)  # x, y, z

_PYRADIOMICS = """
import json, logging, sys, time
import SimpleITK as sitk
from radiomics import featureextractor
logging.getLogger("radiomics").setLevel(logging.ERROR)
extractor = featureextractor.RadiomicsFeatureExtractor()
out = {}
for key, image, mask in json.loads(sys.argv[2]):
    image, mask = sitk.ReadImage(image), sitk.ReadImage(mask)
    extractor.execute(image, mask, label=1)
    times = []
    for _ in range(int(sys.argv[1])):
        t = time.process_time()
        extractor.execute(image, mask, label=1)
        times.append(time.process_time() - t)
    out[key] = 1000.0 * sorted(times)[len(times) // 2]
print(json.dumps(out))
"""


def write_scans(folder: Path) -> list[tuple[str, Path, Path]]:
    """``(key, image, mask)`` for each lesion as its crop and pasted into the whole scan."""
    import numpy as np
    import SimpleITK as sitk

    sys.path.insert(0, str(HERE))
    from radiomics_scaling_cases import CT_DIR, SPACING, write_cases

    cases = write_cases(BENCH / "scaling_cases", SIZES)
    out = []
    background = None
    for img_path, msk_path, n in cases:
        out.append((f"crop_{n}", img_path, msk_path))
        full_img, full_msk = folder / f"full_{n}_image.nrrd", folder / f"full_{n}_mask.nrrd"
        if not full_msk.exists():
            if background is None:
                ct = sitk.ReadImage(str(CT_DIR / "example_ct_sm.nii.gz"), sitk.sitkFloat32)
                ct.SetDirection((1, 0, 0, 0, 1, 0, 0, 0, 1))
                ref = sitk.Image(GRID, sitk.sitkFloat32)
                ref.SetSpacing(SPACING)
                centre = ct.TransformContinuousIndexToPhysicalPoint(
                    [(s - 1) / 2.0 for s in ct.GetSize()]
                )
                ref.SetOrigin(
                    [c - (g - 1) / 2.0 * h for c, g, h in zip(centre, GRID, SPACING, strict=True)]
                )
                resampled = sitk.Resample(ct, ref, sitk.Transform(), sitk.sitkLinear, -1000.0)
                background = np.rint(sitk.GetArrayFromImage(resampled)).astype(np.int16)
            crop = sitk.GetArrayFromImage(sitk.ReadImage(str(img_path)))
            roi = sitk.GetArrayFromImage(sitk.ReadImage(str(msk_path)))
            image, mask = background.copy(), np.zeros(background.shape, np.uint8)
            at = tuple(
                slice((g - c) // 2, (g - c) // 2 + c)
                for g, c in zip(image.shape, crop.shape, strict=True)
            )
            image[at], mask[at] = crop, roi
            im = sitk.GetImageFromArray(image)
            im.SetSpacing(SPACING)
            mk = sitk.GetImageFromArray(mask)
            mk.CopyInformation(im)
            folder.mkdir(parents=True, exist_ok=True)
            sitk.WriteImage(im, str(full_img))
            sitk.WriteImage(mk, str(full_msk))
        out.append((f"full_{n}", full_img, full_msk))
    return out


def _time_metevo(scans: list[tuple[str, str, str]], repeats: int) -> dict[str, float]:
    import warnings

    import SimpleITK as sitk

    from metevo.radiomics import radiomic_features

    warnings.simplefilter("ignore")
    out = {}
    for key, image_path, mask_path in scans:
        image, mask = sitk.ReadImage(image_path), sitk.ReadImage(mask_path)
        for preset in ("pyradiomics_like", "ct_default"):
            radiomic_features(image, mask, settings=preset)
            times = []
            for _ in range(repeats):
                t = time.process_time()
                radiomic_features(image, mask, settings=preset)
                times.append(time.process_time() - t)
            out[f"{preset} {key}"] = 1000.0 * sorted(times)[len(times) // 2]
    return out


def _run(src: str, scans: list, repeats: int) -> dict[str, float]:
    """``_time_metevo`` in a fresh process on the tree at ``src``."""
    env = dict(os.environ, PYTHONPATH=src, OMP_NUM_THREADS="1")
    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); import bench_radiomics_full_scan as b;"
        "print(json.dumps(b._time_metevo(json.loads(sys.argv[2]), int(sys.argv[3]))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(HERE), json.dumps(scans), str(repeats)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--against", help="another tree's src, timed the same way")
    parser.add_argument("--pyradiomics", help="a Python with pyradiomics 3.1")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    scans = [(k, str(i), str(m)) for k, i, m in write_scans(BENCH / "full_scan")]
    here = str(HERE.parent / "src")
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load": "load average {:.1f} / {:.1f} / {:.1f}".format(*os.getloadavg()),
        "grid": "512 x 512 x 150 at 0.8 x 0.8 x 2.5 mm",
        "repeats": args.repeats,
        "metevo": _run(here, scans, args.repeats),
    }
    if args.against:
        result["against"] = {"src": args.against, "metevo": _run(args.against, scans, args.repeats)}
    if args.pyradiomics:
        peer = subprocess.run(
            [
                args.pyradiomics,
                "-c",
                _PYRADIOMICS,
                str(max(3, args.repeats // 2)),
                json.dumps(scans),
            ],
            env=dict(os.environ, OMP_NUM_THREADS="1", ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS="1"),
            capture_output=True,
            text=True,
            check=True,
        )
        result["pyradiomics"] = json.loads(peer.stdout.strip().splitlines()[-1])
    for key, ms in result["metevo"].items():
        line = f"{key:32s} metevo {ms:8.2f} ms"
        if args.against:
            line += f"   against {result['against']['metevo'][key]:8.2f} ms"
        scan = key.split()[1]
        if scan in result.get("pyradiomics", {}):
            peer_ms = result["pyradiomics"][scan]
            line += f"   pyradiomics {peer_ms:9.1f} ms = {peer_ms / ms:6.1f}x"
        print(line)
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
