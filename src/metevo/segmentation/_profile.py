"""Does a CT look like a model's training data? (A warning, not a verdict.)

A model card may carry ``training["input_profile"]``: ranges of a few cheap statistics of the CTs
the model was trained on. A CT outside them is segmented anyway, with a
:class:`~metevo.exceptions.DataQualityWarning` naming what differs: the demo model, trained on
synthetic CTs only, says so on a real CT instead of returning plausible-looking nonsense.

Statistics (on a strided sample of at most ~200 k voxels): field of view along each axis (mm),
fraction of air voxels (< -500 HU), fraction of soft-tissue voxels (-100 to 200 HU) and the 99th
HU percentile.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from metevo.exceptions import DataQualityWarning

__all__ = ["check_input_profile", "input_statistics"]


def input_statistics(volume: np.ndarray, affine: np.ndarray) -> dict[str, Any]:
    """The profile statistics of one CT (``volume`` in (x, y, z) order, index-to-LPS affine)."""
    spacing = np.linalg.norm(np.asarray(affine, dtype=float)[:3, :3], axis=0)
    fov = [float(n * s) for n, s in zip(np.shape(volume), spacing, strict=True)]
    step = max(1, int(round((np.size(volume) / 2e5) ** (1 / 3))))
    sample = np.asarray(volume)[::step, ::step, ::step].astype(np.float32).ravel()
    return {
        "fov_mm": fov,
        "air_fraction": float(np.mean(sample < -500)),
        "soft_tissue_fraction": float(np.mean((sample > -100) & (sample < 200))),
        "hu_p99": float(np.percentile(sample, 99)),
    }


def check_input_profile(
    volume: np.ndarray, affine: np.ndarray, profile: dict[str, Any], *, model: str, where: str
) -> list[str]:
    """Warn when the CT is outside the model's ``profile``; returns the differences found."""
    stats = input_statistics(volume, affine)
    issues = []
    ranges = profile.get("fov_mm", [[0, np.inf]] * 3)
    for axis, (value, (lo, hi)) in enumerate(zip(stats["fov_mm"], ranges, strict=True)):
        if not lo <= value <= hi:
            issues.append(f"field of view along axis {axis} {value:.0f} mm (training {lo}-{hi})")
    for key, label in (
        ("air_fraction", "air fraction"),
        ("soft_tissue_fraction", "soft-tissue fraction"),
        ("hu_p99", "99th HU percentile"),
    ):
        if key in profile:
            lo, hi = profile[key]
            if not lo <= stats[key] <= hi:
                issues.append(f"{label} {stats[key]:.2f} (training {lo}-{hi})")
    if issues:
        warnings.warn(
            f"{where}: this CT does not look like the training data of model {model!r}: "
            + "; ".join(issues)
            + ". Its masks are unlikely to be meaningful"
            + (
                " (the demo model is trained on synthetic CTs only and is not a clinical model: "
                "use an nnU-Net or TotalSegmentator model for real CT, --model nnunet:PATH)."
                if model == "demo"
                else "."
            ),
            DataQualityWarning,
            stacklevel=3,
        )
    return issues
