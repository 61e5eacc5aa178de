"""Synthetic CT with liver-metastasis-like lesions, shared by the radiomics benchmark and the
MIRP cross-check (written as NIfTI so that the peers in their own venvs read the same files).

Usage: python benchmarks/radiomics_phantom_ct.py OUT_DIR [N_LESIONS ...]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage


def make_ct(n_lesions: int, *, seed: int = 0, size=(256, 256, 64), spacing=(0.8, 0.8, 2.5)):
    """A 256x256x64 CT at 0.8x0.8x2.5 mm (x, y, z) with ``n_lesions`` textured lesions of
    10-40 mm diameter in a liver-like body; returns (image, label mask) as SimpleITK images."""
    rng = np.random.default_rng(seed)
    nx, ny, nz = size
    sx, sy, sz = spacing
    zz, yy, xx = np.meshgrid(
        np.arange(nz) * sz, np.arange(ny) * sy, np.arange(nx) * sx, indexing="ij", sparse=True
    )
    cx, cy = nx * sx / 2, ny * sy / 2
    body = ((xx - cx) / (0.45 * nx * sx)) ** 2 + ((yy - cy) / (0.38 * ny * sy)) ** 2 <= 1.0
    body = np.broadcast_to(body, (nz, ny, nx))
    img = np.full((nz, ny, nx), -1000.0)
    img[body] = 60.0
    noise = ndimage.gaussian_filter(rng.normal(0, 1, (nz, ny, nx)), (0.4, 1.2, 1.2))
    img += body * 40.0 * noise / noise.std()
    lab = np.zeros((nz, ny, nx), np.uint32)
    placed = 0
    centres = []
    while placed < n_lesions:
        d = rng.uniform(10, 40)
        r = d / 2
        c = np.array(
            [
                rng.uniform(r + 3, nz * sz - r - 3),
                rng.uniform(cy - 60, cy + 60),
                rng.uniform(cx - 70, cx + 70),
            ]
        )
        if any(np.linalg.norm(c - o) < r + ro + 2 for o, ro in centres):
            continue
        centres.append((c, r))
        placed += 1
        # lumpy ellipsoid with a hypodense core and a rim
        ax = r * rng.uniform(0.8, 1.2, 3)
        dist = np.sqrt(
            ((zz - c[0]) / ax[0]) ** 2 + ((yy - c[1]) / ax[1]) ** 2 + ((xx - c[2]) / ax[2]) ** 2
        )
        lump = 1 + 0.08 * np.sin(3 * (xx - c[2]) / r) * np.cos(2 * (yy - c[1]) / r)
        inside = dist <= lump
        lab[inside] = placed
        img[inside] = 35.0 + 30.0 * dist[inside] + 25.0 * noise[inside] - 10 * (dist[inside] < 0.4)
    img = np.rint(img).astype(np.int16)
    image = sitk.GetImageFromArray(img)
    image.SetSpacing(spacing)
    mask = sitk.GetImageFromArray(lab)
    mask.CopyInformation(image)
    return image, mask


def write_case(out_dir: Path, n_lesions: int, seed: int = 0) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    image, mask = make_ct(n_lesions, seed=seed)
    ip = out_dir / f"ct_{n_lesions}.nii.gz"
    mp = out_dir / f"lesions_{n_lesions}.nii.gz"
    sitk.WriteImage(image, str(ip))
    sitk.WriteImage(mask, str(mp))
    return ip, mp


if __name__ == "__main__":
    out = Path(sys.argv[1])
    for n in [int(v) for v in sys.argv[2:]] or [3, 20]:
        print(*write_case(out, n))
