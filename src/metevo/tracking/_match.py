"""Matching the lesions of two visits (:func:`match_lesions`).

Every lesion at every visit is a node ``(timepoint, lesion_id)``; an edge joins a lesion to the
lesion(s) it became at a later visit. Lesions of consecutive visits are matched after mapping the
earlier visit's lesion labels into the later visit's space (:mod:`metevo.tracking`), by
iterative dilation with an overlap criterion in the spirit of Di Veroli et al. (MICCAI 2023;
Medical Image Analysis 2024): round ``k`` (``k = 0, 1, ..., max_dilation``) dilates every lesion
still unmatched by ``k`` voxel steps (a ball of radius ``k`` times the smallest voxel spacing, so
that thick slices are not over-dilated along z), and every pair whose overlap -- intersection
over the smaller of the two dilated lesions -- reaches ``min_overlap`` becomes an edge in that
round; matched lesions leave the pool. Several pairs crossing the threshold in the same round are
how merges and splits appear. Published liver defaults: 1-voxel steps, 10 % overlap, 7 rounds.
A lesion left without a successor and a lesion left without a predecessor up to ``max_skip + 1``
visits later (any later visit by default) are then matched the same way through the chained
transforms, shortest gaps first (*skip* edges: a lesion missed at one or more visits -- below
visibility at its nadir, say -- and seen again).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import SimpleITK as sitk
from scipy import ndimage

from metevo.columns import LesionEdges as E

if TYPE_CHECKING:  # pragma: no cover
    pass


__all__ = ["match_lesions"]


# --------------------------------------------------------------------------------------------
# matching
# --------------------------------------------------------------------------------------------
def match_lesions(
    earlier: sitk.Image,
    later: sitk.Image,
    transform: sitk.Transform | None = None,
    *,
    affine: sitk.Transform | None = None,
    max_dilation: int = 7,
    min_overlap: float = 0.10,
    earlier_ids: Sequence[int] | None = None,
    later_ids: Sequence[int] | None = None,
) -> pd.DataFrame:
    """Match the lesions of two visits by iterative dilation (see the module docstring).

    Parameters
    ----------
    earlier, later
        UInt32 lesion instance images of the earlier and the later visit (each on its own grid).
    transform
        Maps later-visit physical points to earlier-visit points (as from
        :func:`metevo.tracking.register_pair` with the later visit fixed); None = identity.
    affine
        An invertible approximation of ``transform`` used to find where the earlier lesions land
        (defaults to ``transform``; pass ``Registration.affine`` for a B-spline transform).
    max_dilation
        Last dilation round, in voxels (default 7; round 0 has no dilation).
    min_overlap
        Overlap (intersection over the smaller dilated lesion) that makes an edge (default 0.10).
    earlier_ids, later_ids
        Restrict matching to these lesions (used for skip edges); None = all.

    Returns
    -------
    pandas.DataFrame
        One row per edge: ``lesion_id_from`` (earlier), ``lesion_id_to`` (later), ``overlap``,
        ``distance_mm`` (centroid distance after mapping, in the later visit's frame),
        ``dilation_voxels`` (the round that made the edge).

    Examples
    --------
    >>> import numpy as np, SimpleITK as sitk
    >>> a = np.zeros((10, 30, 30), np.uint32); a[3:7, 5:12, 5:12] = 1; a[3:7, 18:25, 18:25] = 2
    >>> b = np.zeros_like(a); b[3:7, 6:13, 6:13] = 5            # lesion 2 vanished
    >>> match_lesions(sitk.GetImageFromArray(a), sitk.GetImageFromArray(b))[
    ...     ["lesion_id_from", "lesion_id_to", "dilation_voxels"]].values.tolist()
    [[1, 5, 0]]
    """
    if max_dilation < 0 or not 0 < min_overlap <= 1:
        raise ValueError(
            f"max_dilation must be >= 0 and min_overlap in (0, 1]; got {max_dilation!r} and "
            f"{min_overlap!r}."
        )
    transform = transform if transform is not None else sitk.TranslationTransform(3)
    affine = affine if affine is not None else transform
    later_arr = sitk.GetArrayViewFromImage(later)
    earlier_arr = sitk.GetArrayViewFromImage(earlier)
    later_boxes = _label_boxes(later_arr, later_ids)
    earlier_boxes = _label_boxes(earlier_arr, earlier_ids)
    if not later_boxes or not earlier_boxes:
        return _empty_matches()

    # Region of the later grid where either visit's lesions can lie, plus the dilation margin.
    inverse = affine.GetInverse()
    shape = np.array(later_arr.shape)
    steps = np.array(later.GetSpacing()[::-1]) / min(later.GetSpacing())  # voxel size in steps
    reach = np.ceil(max_dilation / steps).astype(int)  # voxels reached by the last round, per axis
    pad = reach + 2
    boxes = [
        np.array([[s.start for s in b], [s.stop - 1 for s in b]]) for b in later_boxes.values()
    ]
    for box in earlier_boxes.values():
        corners = _box_corners(box)
        phys = [earlier.TransformContinuousIndexToPhysicalPoint(c[::-1].tolist()) for c in corners]
        idx = np.array(
            [
                later.TransformPhysicalPointToContinuousIndex(inverse.TransformPoint(p))[::-1]
                for p in phys
            ]
        )
        boxes.append(np.array([np.floor(idx.min(axis=0)), np.ceil(idx.max(axis=0))]))
    allb = np.array(boxes)
    lo = np.clip(allb[:, 0].min(axis=0).astype(int) - pad, 0, shape)
    hi = np.clip(allb[:, 1].max(axis=0).astype(int) + pad + 1, 0, shape)
    if np.any(hi <= lo):
        return _empty_matches()
    roi = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))

    reference = sitk.Image([int(v) for v in (hi - lo)[::-1]], sitk.sitkUInt32)
    reference.SetSpacing(later.GetSpacing())
    reference.SetDirection(later.GetDirection())
    reference.SetOrigin(later.TransformIndexToPhysicalPoint([int(v) for v in lo[::-1]]))
    moved = sitk.Resample(
        sitk.Cast(earlier, sitk.sitkUInt32),
        reference,
        transform,
        sitk.sitkNearestNeighbor,
        0,
        sitk.sitkUInt32,
    )
    m_arr = sitk.GetArrayFromImage(moved)
    f_arr = np.asarray(later_arr[roi])
    if earlier_ids is not None:
        m_arr = np.where(np.isin(m_arr, list(earlier_ids)), m_arr, 0)
    if later_ids is not None:
        f_arr = np.where(np.isin(f_arr, list(later_ids)), f_arr, 0)

    m_les = _dilation_maps(m_arr, max_dilation, steps, reach)
    f_les = _dilation_maps(f_arr, max_dilation, steps, reach)
    if not m_les or not f_les:
        return _empty_matches()

    # Overlap of every candidate pair at every round, from the two chessboard distance maps.
    overlaps: dict[tuple[int, int], np.ndarray] = {}
    for a, (abox, adist, asize) in m_les.items():
        for b, (bbox, bdist, bsize) in f_les.items():
            inter_box = [
                (max(x.start, y.start), min(x.stop, y.stop))
                for x, y in zip(abox, bbox, strict=True)
            ]
            if any(s >= e for s, e in inter_box):
                continue
            da = adist[
                tuple(
                    slice(s - x.start, e - x.start)
                    for (s, e), x in zip(inter_box, abox, strict=True)
                )
            ]
            db = bdist[
                tuple(
                    slice(s - y.start, e - y.start)
                    for (s, e), y in zip(inter_box, bbox, strict=True)
                )
            ]
            both = np.minimum(np.maximum(da, db), max_dilation + 1).ravel()
            inter = np.cumsum(np.bincount(both, minlength=max_dilation + 2))[: max_dilation + 1]
            if inter[-1] == 0:
                continue
            overlaps[(a, b)] = inter / np.minimum(asize, bsize)

    matched_a: set[int] = set()
    matched_b: set[int] = set()
    rows = []
    for k in range(max_dilation + 1):
        new = [
            (a, b, float(ov[k]))
            for (a, b), ov in overlaps.items()
            if ov[k] >= min_overlap and a not in matched_a and b not in matched_b
        ]
        for a, b, ov in new:
            rows.append((a, b, ov, k))
        matched_a.update(a for a, _, _ in new)
        matched_b.update(b for _, b, _ in new)
    if not rows:
        return _empty_matches()

    centroid_m = _centroids(m_arr, reference)
    centroid_f = _centroids(f_arr, reference)
    out = pd.DataFrame(
        rows, columns=[E.LESION_ID_FROM, E.LESION_ID_TO, E.OVERLAP, E.DILATION_VOXELS]
    )
    out[E.DISTANCE_MM] = [
        float(np.linalg.norm(centroid_m[a] - centroid_f[b]))
        for a, b in zip(out[E.LESION_ID_FROM], out[E.LESION_ID_TO], strict=True)
    ]
    out = out.sort_values([E.LESION_ID_FROM, E.LESION_ID_TO], ignore_index=True)
    return out[[E.LESION_ID_FROM, E.LESION_ID_TO, E.OVERLAP, E.DISTANCE_MM, E.DILATION_VOXELS]]


def _empty_matches() -> pd.DataFrame:
    return pd.DataFrame(
        {
            E.LESION_ID_FROM: pd.Series(dtype="int64"),
            E.LESION_ID_TO: pd.Series(dtype="int64"),
            E.OVERLAP: pd.Series(dtype=float),
            E.DISTANCE_MM: pd.Series(dtype=float),
            E.DILATION_VOXELS: pd.Series(dtype="int64"),
        }
    )


def _label_boxes(arr: np.ndarray, ids: Sequence[int] | None) -> dict[int, tuple[slice, ...]]:
    from metevo.tracking._lesions import _nonzero_box

    box = _nonzero_box(arr)
    if box is None:
        return {}
    crop = np.asarray(arr[box])
    labels = np.unique(crop)
    labels = labels[labels != 0]
    if ids is not None:
        labels = labels[np.isin(labels, list(ids))]
    if labels.size == 0:
        return {}
    dense = np.where(np.isin(crop, labels), np.searchsorted(labels, crop) + 1, 0)
    out = {}
    for lab, sl in zip(labels, ndimage.find_objects(dense), strict=True):
        out[int(lab)] = tuple(
            slice(s.start + b.start, s.stop + b.start) for s, b in zip(sl, box, strict=True)
        )
    return out


def _box_corners(box: tuple[slice, ...]) -> np.ndarray:
    lo = np.array([s.start - 0.5 for s in box])
    hi = np.array([s.stop - 0.5 for s in box])
    return np.array([[(hi if (i >> d) & 1 else lo)[d] for d in range(3)] for i in range(8)])


def _dilation_maps(
    arr: np.ndarray, max_dilation: int, steps: np.ndarray, reach: np.ndarray
) -> dict[int, tuple]:
    """Per lesion: (box, dilation round reaching each voxel of the box, lesion size per round).

    Round ``k`` reaches the voxels within ``k`` steps of the lesion, a step being the smallest
    voxel spacing (a physical ball: thick slices are not over-dilated along z).
    """
    out = {}
    for lab, box in _label_boxes(arr, None).items():
        big = tuple(
            slice(max(s.start - r, 0), min(s.stop + r, n))
            for s, r, n in zip(box, reach, arr.shape, strict=True)
        )
        mask = arr[big] == lab
        if max_dilation:
            edt = ndimage.distance_transform_edt(~mask, sampling=steps)
            dist = np.ceil(edt - 1e-6).astype(np.int32)
        else:
            dist = np.where(mask, 0, 1).astype(np.int32)
        sizes = np.cumsum(
            np.bincount(np.minimum(dist, max_dilation + 1).ravel(), minlength=max_dilation + 2)
        )
        out[lab] = (big, dist, sizes[: max_dilation + 1].astype(float))
    return out


def _centroids(arr: np.ndarray, reference: sitk.Image) -> dict[int, np.ndarray]:
    labels = np.unique(arr)
    labels = labels[labels != 0]
    if labels.size == 0:
        return {}
    com = ndimage.center_of_mass(np.ones_like(arr, dtype=np.uint8), arr, labels)
    return {
        int(lab): np.array(
            reference.TransformContinuousIndexToPhysicalPoint(list(map(float, c[::-1])))
        )
        for lab, c in zip(labels, com, strict=True)
    }
