"""Reading a DICOM-SEG object frame by frame, placed by each frame's position.

A valid SEG may list its frames in any order (highdicom writes a CT's segmentation from the top
slice down), cover only some of the series' slices (with gaps), hold several segments, and let
segments overlap. The reader therefore never trusts the frame order: it places every frame by its
``ImagePositionPatient`` (DICOM PS3.3 C.7.6.16.2.3, Plane Position) and ``ImageOrientationPatient``.

- Without a reference image, the frames define the SEG's own lattice (in-plane axes from the
  orientation, the slice axis their cross product, slices at the distinct frame positions).
- With a reference image (the series the SEG segments), every frame is copied onto the reference
  lattice **exactly** (no interpolation) when the SEG lattice coincides with it (same in-plane
  spacing, axes parallel up to a flip or swap, frame positions on slice positions); otherwise
  the mask is resampled with nearest-neighbour interpolation and a
  :class:`~metevo.exceptions.DataQualityWarning` says so.

Segment values: voxels of segment ``n`` get the value ``n`` (``SegmentNumber``); where segments
overlap, the higher segment number wins and a warning counts the voxels (a label image holds one
value per voxel: harmless for binary lesion masks, a loss for "instances"; see
``docs/dicom_export.md``). ``FRACTIONAL`` SEGs are
thresholded at half their maximum fractional value.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from metevo.exceptions import DataQualityWarning, GeometryError, ImageReadError

__all__ = ["read_dicom_seg"]

_POS_ATOL_MM = 1e-2  # frame positions closer than this are the same slice
_LATTICE_ATOL = 1e-2  # index-space tolerance for "on the lattice" (fraction of a voxel)


def read_dicom_seg(path: str | Path, reference: sitk.Image | None = None) -> sitk.Image:
    """Read a DICOM-SEG file into a label image, placing frames by their positions.

    Parameters
    ----------
    path
        A DICOM-SEG file (``Modality`` ``SEG``).
    reference
        The image the SEG segments. When given, the result lies on its grid.

    Returns
    -------
    SimpleITK.Image
        UInt8 (UInt32 for more than 255 segments); 0 background, ``n`` segment number.

    Raises
    ------
    ImageReadError
        Frames lack a position or orientation, or their slice positions are not regularly spaced.
    GeometryError
        No frame overlaps the reference image (the SEG belongs to another series).
    """
    import pydicom

    path = Path(path)
    ds = pydicom.dcmread(path)
    frames = np.asarray(ds.pixel_array)
    if frames.ndim == 2:
        frames = frames[None]
    if getattr(ds, "SegmentationType", "BINARY") == "FRACTIONAL":
        top = float(getattr(ds, "MaximumFractionalValue", 255))
        frames = frames >= top / 2.0
    frames = frames.astype(bool)

    shared = ds.SharedFunctionalGroupsSequence[0] if "SharedFunctionalGroupsSequence" in ds else None
    per_frame = ds.PerFrameFunctionalGroupsSequence
    positions = np.empty((len(per_frame), 3))
    segments = np.empty(len(per_frame), dtype=np.int64)
    orientation = spacing = None
    for i, item in enumerate(per_frame):
        positions[i] = _functional(item, shared, "PlanePositionSequence", "ImagePositionPatient", path)
        segments[i] = int(
            _functional(item, shared, "SegmentIdentificationSequence", "ReferencedSegmentNumber", path)[0]
        )
        orientation = _functional(item, shared, "PlaneOrientationSequence", "ImageOrientationPatient", path)
        spacing = _functional(item, shared, "PixelMeasuresSequence", "PixelSpacing", path)
        if i == 0:
            first = (orientation, spacing)
        elif not (np.allclose(orientation, first[0], atol=1e-4) and np.allclose(spacing, first[1])):
            raise ImageReadError(
                f"DICOM-SEG {path}: frame {i + 1} has another orientation or pixel spacing than "
                f"frame 1 ({orientation} vs {first[0]}, {spacing} vs {first[1]}); expected one plane "
                "geometry for all frames."
            )
    row_dir, col_dir = np.asarray(orientation[:3]), np.asarray(orientation[3:])
    normal = np.cross(row_dir, col_dir)
    dy, dx = float(spacing[0]), float(spacing[1])  # PixelSpacing = (between rows, between columns)

    heights = positions @ normal
    distinct = _distinct(np.sort(heights))
    dz = _slice_spacing(ds, distinct, path)
    base = positions[int(np.argmin(heights))]
    base = base - (base - positions[0]) @ row_dir * row_dir - (base - positions[0]) @ col_dir * col_dir
    k_float = (heights - heights.min()) / dz
    k = np.rint(k_float).astype(int)
    in_plane = np.stack([(positions - base) @ row_dir / dx, (positions - base) @ col_dir / dy], 1)
    if np.max(np.abs(k_float - k), initial=0) > _LATTICE_ATOL or np.max(np.abs(in_plane)) > _LATTICE_ATOL:
        raise ImageReadError(
            f"DICOM-SEG {path}: frame positions are not on one regular lattice (slice spacing "
            f"{dz:.4g} mm); expected frames stacked along the normal of their plane."
        )
    n_seg = int(segments.max(initial=0))
    dtype = np.uint8 if n_seg <= 255 else np.uint32
    arr = np.zeros((int(k.max()) + 1, frames.shape[1], frames.shape[2]), dtype=dtype)
    overlap = 0
    for idx in np.argsort(segments, kind="stable"):
        frame = frames[idx]
        plane = arr[k[idx]]
        overlap += int(np.count_nonzero(frame & (plane != 0)))
        plane[frame] = segments[idx]
    if overlap:
        warnings.warn(
            f"DICOM-SEG {path}: segments overlap in {overlap} voxel(s); each keeps the higher "
            "segment number. Read the segments separately (highdicom) if the overlap matters.",
            DataQualityWarning,
            stacklevel=3,
        )
    own = sitk.GetImageFromArray(arr)
    own.SetSpacing((dx, dy, dz))
    own.SetOrigin([float(v) for v in base])
    own.SetDirection([float(v) for v in np.stack([row_dir, col_dir, normal], axis=1).ravel()])
    if reference is None:
        return own
    return _place_on(own, reference, path)


def _functional(item, shared, sequence: str, attribute: str, path: Path) -> list[float]:
    for group in (item, shared):
        if group is not None and sequence in group and attribute in group[sequence].value[0]:
            value = group[sequence].value[0][attribute].value
            return [float(v) for v in (value if isinstance(value, (list, tuple)) or hasattr(value, "__len__") and not isinstance(value, str) else [value])]
    raise ImageReadError(
        f"DICOM-SEG {path}: no {attribute} ({sequence}) in the per-frame or shared functional "
        "groups; expected every frame to carry its position, orientation, spacing and segment."
    )


def _distinct(sorted_heights: np.ndarray) -> np.ndarray:
    keep = np.concatenate([[True], np.diff(sorted_heights) > _POS_ATOL_MM])
    return sorted_heights[keep]


def _slice_spacing(ds, distinct: np.ndarray, path: Path) -> float:
    if len(distinct) > 1:
        return float(np.min(np.diff(distinct)))
    shared = ds.SharedFunctionalGroupsSequence[0] if "SharedFunctionalGroupsSequence" in ds else None
    measures = shared.PixelMeasuresSequence[0] if shared and "PixelMeasuresSequence" in shared else None
    for name in ("SpacingBetweenSlices", "SliceThickness"):
        value = getattr(measures, name, None) if measures is not None else None
        if value:
            return float(value)
    return 1.0


def _place_on(own: sitk.Image, reference: sitk.Image, path: Path) -> sitk.Image:
    """Copy ``own`` onto ``reference``'s lattice exactly, or resample it (and say so)."""
    a_ref = np.asarray(reference.GetDirection()).reshape(3, 3) * np.asarray(reference.GetSpacing())
    a_own = np.asarray(own.GetDirection()).reshape(3, 3) * np.asarray(own.GetSpacing())
    inv = np.linalg.inv(a_ref)
    m = inv @ a_own  # own index step -> reference index step (x, y, z columns)
    t = inv @ (np.asarray(own.GetOrigin()) - np.asarray(reference.GetOrigin()))
    size_ref = np.asarray(reference.GetSize())
    corners = np.array([[i, j, kk] for i in (0, 1) for j in (0, 1) for kk in (0, 1)], float)
    corners *= np.asarray(own.GetSize()) - 1
    reach = corners @ m.T + t
    if np.any(reach.max(0) < -0.5) or np.any(reach.min(0) > size_ref - 0.5):
        raise GeometryError(
            f"DICOM-SEG {path} does not overlap the referenced image: its frames span indices "
            f"{np.round(reach.min(0), 1).tolist()} to {np.round(reach.max(0), 1).tolist()} of an "
            f"image of size {size_ref.tolist()}. Check that the SEG segments this series."
        )
    perm = np.rint(m)
    exact = (
        np.allclose(m, perm, atol=_LATTICE_ATOL)
        and np.allclose(np.abs(perm).sum(0), 1)
        and np.allclose(np.abs(perm).sum(1), 1)
        and np.allclose(t, np.rint(t), atol=_LATTICE_ATOL)
    )
    if not exact:
        warnings.warn(
            f"DICOM-SEG {path}: its frames do not lie on the referenced image's slices (spacing "
            f"{tuple(round(s, 4) for s in own.GetSpacing())} vs "
            f"{tuple(round(s, 4) for s in reference.GetSpacing())} mm); resampled onto the image "
            "grid with nearest-neighbour interpolation.",
            DataQualityWarning,
            stacklevel=3,
        )
        return sitk.Resample(
            own, reference, sitk.Transform(), sitk.sitkNearestNeighbor, 0, own.GetPixelID()
        )
    arr = sitk.GetArrayViewFromImage(own)  # (z, y, x): own axis a lives at array axis 2 - a
    out = np.zeros(tuple(size_ref[::-1]), dtype=arr.dtype)
    # Each own index axis a maps to reference axis b = argmax|m[:, a]|, possibly flipped.
    src_axes, flips = [], []
    for b in range(3):
        a = int(np.argmax(np.abs(perm[b])))
        src_axes.append(2 - a)
        flips.append(perm[b, a] < 0)
    # reorder to reference (z, y, x) array order: reference axis b sits at array axis 2 - b
    moved = np.transpose(arr, [src_axes[2], src_axes[1], src_axes[0]])
    start = np.rint(t).astype(int)
    for b in range(3):
        if flips[b]:
            moved = np.flip(moved, axis=2 - b)
            start[b] -= moved.shape[2 - b] - 1
    dst, src = [], []
    for b in (2, 1, 0):
        n = moved.shape[2 - b]
        lo, hi = max(start[b], 0), min(start[b] + n, int(size_ref[b]))
        dst.append(slice(lo, hi))
        src.append(slice(lo - start[b], hi - start[b]))
    cut = int(np.count_nonzero(moved)) - int(np.count_nonzero(moved[tuple(src)]))
    out[tuple(dst)] = moved[tuple(src)]
    if cut:
        warnings.warn(
            f"DICOM-SEG {path}: {cut} segmented voxel(s) lie outside the referenced image and were "
            "dropped.",
            DataQualityWarning,
            stacklevel=3,
        )
    placed = sitk.GetImageFromArray(out)
    placed.CopyInformation(reference)
    return placed
