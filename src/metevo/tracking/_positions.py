"""Where each lesion sits in the liver: position in a liver-aligned frame (normalised x/y/z), lobe
side and depth below the liver surface; added to the ``lesions`` table by the graph stage.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import SimpleITK as sitk

from metevo.cohort._cohort import ScanReads

__all__ = ["POSITION_COLUMNS", "lesion_positions"]


POSITION_COLUMNS = ("liver_pos_x", "liver_pos_y", "liver_pos_z", "liver_side", "depth_mm")


RIGHT_LOBE_SHARE = 0.6


# --------------------------------------------------------------------------- positions


def lesion_positions(
    patient: object, lesions: pd.DataFrame, *, reads: ScanReads | None = None
) -> pd.DataFrame:
    """Position of each lesion within the liver (see the module docstring).

    Reads each visit's liver and lesion masks; returns ``timepoint``, ``lesion_id`` and
    :data:`POSITION_COLUMNS`. Without a liver mask the position columns are empty.
    """
    reads = reads if reads is not None else ScanReads()
    out = []
    for scan in patient.scans:
        here = lesions[lesions["timepoint"] == scan.timepoint]
        if here.empty:
            continue
        liver = reads.liver_mask(scan)
        if liver is None:
            for lid in here["lesion_id"]:
                out.append({"timepoint": scan.timepoint, "lesion_id": int(lid), "liver_pos_x": np.nan,
                            "liver_pos_y": np.nan, "liver_pos_z": np.nan, "liver_side": None, "depth_mm": np.nan})
            continue
        organ = (sitk.GetArrayFromImage(liver) > 0) | (sitk.GetArrayFromImage(reads.lesion_mask(scan)) > 0)
        centroids = here[["centroid_x_mm", "centroid_y_mm", "centroid_z_mm"]].to_numpy(float)
        frame = _liver_frame(organ, liver, centroids)
        for lid, pos in zip(here["lesion_id"], frame, strict=True):
            out.append({"timepoint": scan.timepoint, "lesion_id": int(lid), **pos})
    return pd.DataFrame.from_records(out, columns=["timepoint", "lesion_id", *POSITION_COLUMNS])


def _liver_frame(organ: np.ndarray, ref: sitk.Image, centroids: np.ndarray) -> list[dict]:
    if not organ.any():
        return [dict.fromkeys(POSITION_COLUMNS, np.nan) | {"liver_side": None} for _ in centroids]
    zyx = np.argwhere(organ)
    # physical coordinates of the organ's voxels (LPS, mm), subsampled for speed
    step = max(1, len(zyx) // 200_000)
    sample = zyx[::step][:, ::-1].astype(float)
    spacing = np.asarray(ref.GetSpacing())
    direction = np.asarray(ref.GetDirection()).reshape(3, 3)
    origin = np.asarray(ref.GetOrigin())
    pts = origin + (sample * spacing) @ direction.T
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    split_x = float(np.quantile(pts[:, 0], RIGHT_LOBE_SHARE))  # LPS: +x is the patient's left
    box = tuple(slice(a, b + 1) for a, b in zip(zyx.min(axis=0), zyx.max(axis=0), strict=True))
    crop = np.pad(organ[box], 1)
    crop_img = sitk.GetImageFromArray(crop.astype(np.uint8))
    crop_img.SetSpacing(ref.GetSpacing())
    dist = sitk.GetArrayFromImage(
        sitk.SignedMaurerDistanceMap(crop_img, insideIsPositive=True, squaredDistance=False, useImageSpacing=True)
    )
    inv = np.linalg.inv(direction * spacing)
    result = []
    for c in centroids:
        idx_xyz = inv @ (c - origin)
        k = np.round(idx_xyz[::-1]).astype(int) - np.array([s.start for s in box]) + 1
        k = np.clip(k, 0, np.array(crop.shape) - 1)
        depth = float(dist[tuple(k)])
        span = np.where(hi > lo, hi - lo, np.nan)
        rel = (c - lo) / span
        result.append(
            {
                "liver_pos_x": float(rel[0]),
                "liver_pos_y": float(rel[1]),
                "liver_pos_z": float(rel[2]),
                "liver_side": "right" if c[0] < split_x else "left",
                "depth_mm": max(depth, 0.0),
            }
        )
    return result
