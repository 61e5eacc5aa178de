"""Whether each visit images every lesion region that matters (``lesions_in_fov``).

A liver cut by the field of view (its dome or tip on the first or last slice) is common on trial
CT and harmless when every lesion is imaged. What makes a visit not evaluable is a lesion that is
not fully imaged: a lesion of this scan touching its first or last slice, or the region of a
baseline lesion (targets and non-targets) or of a lesion of the previous visit -- followed from
visit to visit through the registrations -- lying (partly) outside this scan's slab, where the
lesion could be without being seen.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import SimpleITK as sitk

from metevo.columns import Lesions as L

__all__ = ["lesions_in_fov"]


def _regions(at: pd.DataFrame) -> list[tuple[np.ndarray, float]]:
    """(centroid mm, radius mm) of a visit's lesions; the radius is half the longest diameter."""
    xyz = at[[L.CENTROID_X_MM, L.CENTROID_Y_MM, L.CENTROID_Z_MM]].to_numpy(float)
    radius = 0.5 * at[L.AXIAL_LD_MM].to_numpy(float)
    return [(p, float(r)) for p, r in zip(xyz, radius, strict=True)]


def _outside(image: sitk.Image, regions, margin_slices: float = 0.5) -> bool:
    nz, sz = image.GetSize()[2], image.GetSpacing()[2]
    for p, r in regions:
        k = image.TransformPhysicalPointToContinuousIndex(tuple(float(v) for v in p))[2]
        if k - r / sz < -margin_slices or k + r / sz > nz - 1 + margin_slices:
            return True
    return False


def lesions_in_fov(
    nodes: pd.DataFrame,
    timepoints: Sequence[str],
    grids: Sequence[sitk.Image],
    affines: Sequence[sitk.Transform],
) -> list[bool]:
    """Per visit: False when a lesion region that matters is not fully inside the scan's slab.

    Parameters
    ----------
    nodes
        The ``lesions`` rows (``timepoint``, ``centroid_*_mm``, ``axial_ld_mm``,
        ``bbox_z_min``/``bbox_z_max`` in voxels).
    timepoints, grids
        The visits in order and an image on each visit's grid (the lesion mask).
    affines
        ``affines[i - 1]`` maps visit ``i`` points to visit ``i - 1`` points (registration).
    """
    out: list[bool] = []
    base: list[tuple[np.ndarray, float]] = []
    prev: list[tuple[np.ndarray, float]] = []
    for i, tp in enumerate(timepoints):
        grid = grids[i]
        at = nodes[nodes[L.TIMEPOINT] == tp]
        nz = grid.GetSize()[2]
        ok = not bool(((at[L.BBOX_Z_MIN] <= 0) | (at[L.BBOX_Z_MAX] >= nz - 1)).any())
        if i > 0:
            forward = affines[i - 1].GetInverse()  # visit i-1 points -> visit i points

            def move(regions, forward=forward):
                return [(np.array(forward.TransformPoint(tuple(p))), r) for p, r in regions]

            base, prev = move(base), move(prev)
            ok = ok and not _outside(grid, base + prev)
        else:
            base = _regions(at)
        out.append(ok)
        prev = _regions(at)
    return out
