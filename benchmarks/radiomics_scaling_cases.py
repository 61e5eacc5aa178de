"""Lesions of clinical size on a clinical grid, for ``bench_radiomics_scaling.py``.

The real CT of ``../shared/data/ct_example`` (``example_ct_sm.nii.gz``, 3 mm, with
TotalSegmentator's liver, label 5, in ``example_seg.nii.gz``) is resampled (linear) to
0.8 x 0.8 x 2.5 mm. For each target voxel count a lesion-like ROI is grown in the liver: the
sublevel set of an ellipsoidal distance (semi-axes 1 : 1.45 : 1.1 in z, y, x, scaled with the
volume) plus smoothed noise (sigma 6 mm), cut at exactly the target count of voxels. Inside the
ROI the CT becomes hypodense and heterogeneous (-60 HU, smooth +-25 HU pattern, 15 HU noise);
everywhere the crop gets 10 HU of noise (the 3 mm source is smoother than a 0.8 mm scan).
Each lesion is written as its own image (the lesion's box plus 20 mm) and mask (label 1).
Fixed seed: the cases are the same in every run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

HERE = Path(__file__).resolve().parent
CT_DIR = HERE.parent.parent / "shared" / "data" / "ct_example"
SPACING = (0.8, 0.8, 2.5)  # x, y, z (SimpleITK order)
SIZES = (1_000, 5_000, 20_000, 50_000, 110_000)


def _resampled_ct() -> tuple[np.ndarray, np.ndarray]:
    ct = sitk.ReadImage(str(CT_DIR / "example_ct_sm.nii.gz"), sitk.sitkFloat32)
    seg = sitk.ReadImage(str(CT_DIR / "example_seg.nii.gz"))
    ct.SetDirection((1, 0, 0, 0, 1, 0, 0, 0, 1))
    seg.SetDirection((1, 0, 0, 0, 1, 0, 0, 0, 1))
    size = [
        int(round(n * s / t))
        for n, s, t in zip(ct.GetSize(), ct.GetSpacing(), SPACING, strict=True)
    ]
    ref = sitk.Image(size, sitk.sitkFloat32)
    ref.SetSpacing(SPACING)
    ref.SetOrigin(ct.GetOrigin())
    img = sitk.Resample(ct, ref, sitk.Transform(), sitk.sitkLinear, -1000.0)
    liver = sitk.Resample(seg, ref, sitk.Transform(), sitk.sitkNearestNeighbor, 0)
    return sitk.GetArrayFromImage(img), sitk.GetArrayFromImage(liver) == 5


def write_cases(folder: Path, sizes: tuple[int, ...] = SIZES) -> list[tuple[Path, Path, int]]:
    """Write one image/mask pair per lesion size; return ``(image, mask, n_voxels)`` each."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    todo = [n for n in sizes if not (folder / f"lesion_{n}_mask.nii.gz").exists()]
    if todo:
        ct, liver = _resampled_ct()
        sp = np.array(SPACING[::-1])  # z, y, x
        centre = np.argwhere(liver).mean(axis=0)
    for n in sizes:
        img_path = folder / f"lesion_{n}_image.nii.gz"
        msk_path = folder / f"lesion_{n}_mask.nii.gz"
        if n in todo:
            rng = np.random.default_rng(1000 + n)
            vol_mm3 = n * float(np.prod(sp))
            scale = (vol_mm3 / (4.0 / 3.0 * np.pi * 1.0 * 1.45 * 1.1)) ** (1.0 / 3.0)
            semi = scale * np.array([1.0, 1.45, 1.1])
            half = np.ceil(1.6 * semi / sp).astype(int) + 2
            lo = np.maximum(np.rint(centre).astype(int) - half, 0)
            hi = np.minimum(np.rint(centre).astype(int) + half + 1, ct.shape)
            box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
            grid = np.stack(
                np.meshgrid(*[np.arange(a, b) for a, b in zip(lo, hi, strict=True)], indexing="ij"),
                -1,
            )
            r = np.sqrt(((((grid - centre) * sp) / semi) ** 2).sum(-1))
            noise = ndimage.gaussian_filter(rng.normal(size=r.shape), 6.0 / sp)
            noise /= noise.std()
            field = r + 0.18 * noise
            cut = np.partition(field.ravel(), n - 1)[n - 1]
            roi = field <= cut
            roi = ndimage.binary_fill_holes(roi)
            labels, k = ndimage.label(roi)
            if k > 1:
                sizes_k = np.bincount(labels.ravel())[1:]
                roi = labels == (np.argmax(sizes_k) + 1)
            image = ct[box].copy()
            pattern = ndimage.gaussian_filter(rng.normal(size=r.shape), 4.0 / sp)
            pattern /= pattern.std()
            image[roi] += -60.0 + 25.0 * pattern[roi] + rng.normal(0, 15.0, int(roi.sum()))
            image += rng.normal(0, 10.0, image.shape)
            # crop: the lesion's box plus 20 mm
            idx = np.argwhere(roi)
            m = np.ceil(20.0 / sp).astype(int)
            c_lo = np.maximum(idx.min(0) - m, 0)
            c_hi = np.minimum(idx.max(0) + m + 1, roi.shape)
            crop = tuple(slice(int(a), int(b)) for a, b in zip(c_lo, c_hi, strict=True))
            im = sitk.GetImageFromArray(np.rint(image[crop]).astype(np.int16))
            im.SetSpacing(SPACING)
            mk = sitk.GetImageFromArray(roi[crop].astype(np.uint8))
            mk.CopyInformation(im)
            sitk.WriteImage(im, str(img_path))
            sitk.WriteImage(mk, str(msk_path))
        n_vox = int(sitk.GetArrayFromImage(sitk.ReadImage(str(msk_path))).sum())
        out.append((img_path, msk_path, n_vox))
    return out


if __name__ == "__main__":
    import sys

    for _img, msk, n in write_cases(
        Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parent / ".bench" / "scaling_cases"
    ):
        a = sitk.GetArrayFromImage(sitk.ReadImage(str(msk)))
        idx = np.argwhere(a)
        ext = (idx.max(0) - idx.min(0) + 1) * np.array(SPACING[::-1])
        print(msk.name, n, "voxels, extent (z,y,x) mm", ext, "crop", a.shape)
