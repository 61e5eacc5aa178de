"""Reading images and masks, checking their geometry, and interpreting mask values.

Images and masks may be NIfTI (``.nii``, ``.nii.gz``), NRRD, MetaImage (``.mha``/``.mhd``), a
folder holding one DICOM series, or (masks only) a DICOM-SEG file. Everything is returned as a
:class:`SimpleITK.Image`, whose geometry (size, spacing, origin, direction) is in the image's own
physical frame as ITK defines it (LPS, millimetres).

What mask values mean is never guessed: the caller declares the kind.

- ``"binary"``: 0 and one non-zero value (returned as UInt8 0/1);
- ``"instances"``: one non-negative integer per lesion (returned as UInt32 labels);
- ``"labels"``: a multi-class mask; ``label`` selects the class (returned as UInt8 0/1).

Examples
--------
>>> from metevo.cohort.io import read_image, check_same_grid
>>> ct = read_image("scan.nii.gz")            # doctest: +SKIP
>>> mask = read_image("lesions.nii.gz")       # doctest: +SKIP
>>> check_same_grid(ct, mask, context="P001 V1")  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from metevo.cohort._integrity import check_image_integrity
from metevo.exceptions import GeometryError, ImageReadError, MaskValueError, MetevoError

__all__ = [
    "MASK_KINDS",
    "GridDifference",
    "canonical_geometry",
    "check_same_grid",
    "grid_difference",
    "interpret_mask",
    "read_image",
    "read_image_header",
    "resample_to_grid",
]

MASK_KINDS = ("binary", "instances", "labels")
_FILE_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd", ".dcm")

# Geometry tolerances: spacing/origin relative to the voxel size, direction cosines absolute.
_SPACING_RTOL = 1e-3
_ORIGIN_VOXEL_FRACTION = 1e-2
_DIRECTION_ATOL = 1e-3


def read_image(path: str | Path, *, reference: sitk.Image | dict | None = None) -> sitk.Image:
    """Read an image or a mask from a file or a DICOM series folder.

    Parameters
    ----------
    path
        NIfTI, NRRD or MetaImage file; a folder holding one DICOM series; or a DICOM file (a
        single-slice CT or a DICOM-SEG object).
    reference
        For DICOM-SEG only: the image the segmentation refers to. Each SEG frame is placed on
        this grid by its ImagePositionPatient, exactly when the frames lie on the image's slices
        (in any order, covering any subset), resampled with a warning when they do not (see
        :mod:`metevo.cohort._dicom_seg`). Without it the SEG's own lattice is returned. An image
        or a header dict from :func:`read_image_header`.

    Returns
    -------
    SimpleITK.Image

    Raises
    ------
    ImageReadError
        The path does not exist, holds no (or several) DICOM series, or cannot be decoded.
    """
    path = Path(path)
    if not path.exists():
        raise ImageReadError(
            f"File not found: {path}. Check the path in the manifest (relative paths resolve "
            "against the manifest's folder)."
        )
    try:
        # header-declared size vs the bytes present, before ITK fills missing voxels with zeros
        check_image_integrity(path)
        if path.is_dir():
            return canonical_geometry(_read_dicom_series(path))
        if _is_dicom_seg(path):
            return canonical_geometry(_read_dicom_seg(path, reference))
        return canonical_geometry(sitk.ReadImage(str(path)))
    except MetevoError:
        raise
    except Exception as exc:  # ITK and pydicom raise RuntimeError/ValueError/OSError alike
        raise ImageReadError(
            f"Could not read {path}: {type(exc).__name__}: {_first_line(exc)}. Expected a "
            "readable NIfTI/NRRD/MHA file, DICOM series folder or DICOM-SEG file; the file may "
            "be truncated or corrupt."
        ) from exc


def read_image_header(path: str | Path) -> dict:
    """Geometry of an image without decoding its pixels (files only; folders are read whole).

    Returns a dict with ``size``, ``spacing``, ``origin``, ``direction`` and ``pixel_type``.
    """
    path = Path(path)
    if not path.exists():
        raise ImageReadError(f"File not found: {path}.")
    if path.is_dir() or _is_dicom_seg(path):
        return _geometry(read_image(path))
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except Exception as exc:
        raise ImageReadError(
            f"Could not read the header of {path}: {_first_line(exc)}; the file may be corrupt."
        ) from exc
    return {
        "size": tuple(reader.GetSize()),
        "spacing": _rounded(reader.GetSpacing()),
        "origin": _rounded(reader.GetOrigin()),
        "direction": _rounded(reader.GetDirection()),
        "pixel_type": sitk.GetPixelIDValueAsString(reader.GetPixelID()),
    }


def _rounded(values) -> tuple[float, ...]:
    # the nearest float32 (+ 0.0 turns -0.0 into 0.0)
    return tuple(float(np.float32(v)) + 0.0 for v in values)


def canonical_geometry(image: sitk.Image) -> sitk.Image:
    """Round an image's spacing, origin (mm) and direction cosines to float32 (in place; returned).

    The same scan reaches metevo with slightly different geometry depending on its format: a
    NIfTI header stores float32 (origin -120.19000244140625), a DICOM series decimal strings of
    at most 16 characters (-120.19000244141) and derives the slice spacing from the positions
    (5.000000000000086 for 5 mm slices). Every image read is rounded to the nearest float32, the
    precision of a NIfTI header: a relative change of at most 6e-8 (under 1e-5 mm within 200 mm
    of the origin; common spacings such as 0.9765625 or 0.48828125 mm are exact), so a series and
    its NIfTI copy share one grid exactly and give identical analyses, registrations included.
    """
    image.SetSpacing(_rounded(image.GetSpacing()))
    image.SetOrigin(_rounded(image.GetOrigin()))
    image.SetDirection(_rounded(image.GetDirection()))
    return image


@dataclass(frozen=True)
class GridDifference:
    """How two image grids differ (empty ``items`` when they share a grid)."""

    items: tuple[str, ...]

    def __bool__(self) -> bool:
        return bool(self.items)

    def __str__(self) -> str:
        return "; ".join(self.items) if self.items else "same grid"


def grid_difference(a: sitk.Image | dict, b: sitk.Image | dict) -> GridDifference:
    """Describe how the grid of ``b`` differs from the grid of ``a``.

    Either argument may be an image or a header dict from :func:`read_image_header`.
    """
    ga, gb = _geometry(a), _geometry(b)
    items: list[str] = []
    if len(ga["size"]) != len(gb["size"]):
        return GridDifference((f"dimension {len(ga['size'])} vs {len(gb['size'])}",))
    if tuple(ga["size"]) != tuple(gb["size"]):
        items.append(f"size {tuple(ga['size'])} vs {tuple(gb['size'])}")
    sa, sb = np.asarray(ga["spacing"]), np.asarray(gb["spacing"])
    if not np.allclose(sa, sb, rtol=_SPACING_RTOL, atol=0):
        items.append(f"spacing {_fmt(sa)} vs {_fmt(sb)} mm")
    oa, ob = np.asarray(ga["origin"]), np.asarray(gb["origin"])
    if np.max(np.abs(oa - ob)) > _ORIGIN_VOXEL_FRACTION * float(np.min(sa)):
        items.append(f"origin {_fmt(oa)} vs {_fmt(ob)} mm (max difference {np.max(np.abs(oa - ob)):.3g} mm)")
    da, db = np.asarray(ga["direction"]), np.asarray(gb["direction"])
    if np.max(np.abs(da - db)) > _DIRECTION_ATOL:
        items.append(f"direction {_fmt(da)} vs {_fmt(db)}")
    return GridDifference(tuple(items))


def check_same_grid(
    image: sitk.Image | dict,
    mask: sitk.Image | dict,
    *,
    context: str = "",
    image_path: str | Path | None = None,
    mask_path: str | Path | None = None,
) -> None:
    """Raise :class:`GeometryError` unless ``mask`` lies on ``image``'s grid.

    The message names the context (patient, timepoint), both files, the difference and the fix.
    """
    diff = grid_difference(image, mask)
    if not diff:
        return
    where = f"{context}: " if context else ""
    files = ""
    if image_path is not None or mask_path is not None:
        files = f" (image {image_path}, mask {mask_path})"
    raise GeometryError(
        f"{where}mask does not share the image grid{files}: {diff}. Resample the mask onto the "
        "image grid (nearest neighbour), or pass resample_masks=True (CLI --resample-masks) to "
        "let metevo do it."
    )


def resample_to_grid(mask: sitk.Image, reference: sitk.Image | dict) -> sitk.Image:
    """Resample ``mask`` onto ``reference``'s grid with nearest-neighbour interpolation.

    ``reference`` may be an image or a header dict from :func:`read_image_header`.
    """
    reference = _grid_image(reference)
    return sitk.Resample(
        mask,
        reference,
        sitk.Transform(),
        sitk.sitkNearestNeighbor,
        0,
        mask.GetPixelID(),
    )


def interpret_mask(
    mask: sitk.Image,
    kind: str,
    *,
    label: int | None = None,
    context: str = "",
    path: str | Path | None = None,
) -> sitk.Image:
    """Check a mask's values against its declared kind and return its canonical form.

    Parameters
    ----------
    mask
        The mask as read from disk.
    kind
        ``"binary"``, ``"instances"`` or ``"labels"`` (see the module docstring).
    label
        With ``kind="labels"``: the class value to extract.
    context, path
        Named in error messages.

    Returns
    -------
    SimpleITK.Image
        UInt8 0/1 for ``binary`` and ``labels``; UInt32 labels for ``instances``. Geometry is
        copied from ``mask``.

    Raises
    ------
    MaskValueError
        Non-integer, negative or several non-zero values in a binary mask, a missing ``label``.
    """
    where = _where(context, path)
    if kind not in MASK_KINDS:
        raise MaskValueError(f"{where}unknown mask kind {kind!r}; expected one of {MASK_KINDS}.")
    if mask.GetNumberOfComponentsPerPixel() != 1:
        raise MaskValueError(
            f"{where}expected a scalar mask, found {mask.GetNumberOfComponentsPerPixel()} "
            "components per voxel (an RGB or vector image?)."
        )
    arr = sitk.GetArrayViewFromImage(mask)
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            bad = arr[np.isfinite(arr) & (arr != np.round(arr))]
            example = f" e.g. {bad.flat[0]:.4g}" if bad.size else " (NaN or inf)"
            raise MaskValueError(
                f"{where}mask of kind {kind!r} holds non-integer values{example}: a "
                "probability map or an interpolated mask? Threshold it (e.g. >= 0.5) and save "
                "it as integers, or resample masks with nearest-neighbour interpolation."
            )
    values = np.unique(arr)
    if values.size and values[0] < 0:
        raise MaskValueError(
            f"{where}mask holds negative values ({values[0]:g}); expected non-negative integers."
        )
    if kind == "binary":
        nonzero = values[values != 0]
        if nonzero.size > 1:
            shown = ", ".join(f"{v:g}" for v in nonzero[:8])
            raise MaskValueError(
                f"{where}mask declared 'binary' holds {nonzero.size} distinct non-zero values "
                f"({shown}{', ...' if nonzero.size > 8 else ''}). If each value is one lesion, "
                "declare lesion_mask_kind='instances'; if it is a multi-class mask (e.g. LiTS: "
                "liver 1, tumour 2), declare lesion_mask_kind='labels' with lesion_label=."
            )
        out = sitk.GetImageFromArray((arr != 0).astype(np.uint8))
    elif kind == "labels":
        if label is None:
            raise MaskValueError(
                f"{where}mask kind 'labels' needs the class value to extract (lesion_label= or "
                f"liver_label=); values present: {', '.join(f'{v:g}' for v in values[:10])}."
            )
        out = sitk.GetImageFromArray((arr == label).astype(np.uint8))
    else:
        if values.size and values[-1] > np.iinfo(np.uint32).max:
            raise MaskValueError(f"{where}instance label {values[-1]:g} exceeds the UInt32 range.")
        out = sitk.GetImageFromArray(arr.astype(np.uint32))
    out.CopyInformation(mask)
    return out


def _read_dicom_series(folder: Path) -> sitk.Image:
    reader = sitk.ImageSeriesReader()
    series = reader.GetGDCMSeriesIDs(str(folder))
    if not series:
        raise ImageReadError(
            f"No DICOM series found in folder {folder}. Expected a folder of DICOM slices of one "
            "series (or give a NIfTI/NRRD/MHA file instead)."
        )
    if len(series) > 1:
        raise ImageReadError(
            f"Folder {folder} holds {len(series)} DICOM series ({', '.join(series[:4])}); "
            "expected one. Put each series in its own folder."
        )
    files = reader.GetGDCMSeriesFileNames(str(folder), series[0])
    reader.SetFileNames(files)
    # The slice spacing is derived from decimal-string positions (<= 16 characters, PS3.5 6.2),
    # so it carries float noise (5.000000000000086 for 5 mm slices): read_image canonicalises it.
    return reader.Execute()


def _is_dicom_seg(path: Path) -> bool:
    if path.suffix.lower() not in ("", ".dcm"):
        return False
    try:
        with open(path, "rb") as fh:
            fh.seek(128)
            if fh.read(4) != b"DICM":
                return False
        import pydicom

        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["Modality"])
    except Exception:
        return False
    return getattr(ds, "Modality", None) == "SEG"


def _read_dicom_seg(path: Path, reference: sitk.Image | dict | None) -> sitk.Image:
    from metevo.cohort._dicom_seg import read_dicom_seg

    reference = _grid_image(reference)
    return read_dicom_seg(path, reference)


def _grid_image(reference: sitk.Image | dict | None) -> sitk.Image | None:
    """An empty image on a header dict's grid (images and None pass through)."""
    if not isinstance(reference, dict):
        return reference
    ref = sitk.Image([int(v) for v in reference["size"]], sitk.sitkUInt8)
    ref.SetSpacing(reference["spacing"])
    ref.SetOrigin(reference["origin"])
    ref.SetDirection(reference["direction"])
    return ref


def _geometry(image: sitk.Image | dict) -> dict:
    if isinstance(image, dict):
        return image
    return {
        "size": tuple(image.GetSize()),
        "spacing": tuple(image.GetSpacing()),
        "origin": tuple(image.GetOrigin()),
        "direction": tuple(image.GetDirection()),
        "pixel_type": image.GetPixelIDTypeAsString(),
    }


def _where(context: str, path: str | Path | None) -> str:
    parts = [p for p in (context, str(path) if path is not None else "") if p]
    return (" / ".join(parts) + ": ") if parts else ""


def _fmt(values: np.ndarray) -> str:
    return "(" + ", ".join(f"{v:.4g}" for v in np.ravel(values)) + ")"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    # ITK messages start with a file/line prefix; the informative part is usually last.
    informative = [t for t in text if t.strip() and not t.startswith("sitk::")]
    return (informative[-1] if informative else (text[0] if text else "")).strip()[:300]
