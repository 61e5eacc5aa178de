"""``radiomic_features``: every lesion of a scan in one pass.

Per lesion: crop once around its bounding box (with a margin for the 1 cm^3 intensity-peak
sphere), interpolate the part of the crop the features need to isotropic voxels (IBSI 2.4,
trilinear, grid centres aligned; ``_resample``), re-segment (IBSI 2.5), discretise (IBSI 2.7), then compute the feature families.
"""

from __future__ import annotations

import math
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk

from metevo import columns as C
from metevo.exceptions import DataQualityWarning, MaskValueError
from metevo.radiomics._catalog import feature_families
from metevo.radiomics._intensity import (
    discretise,
    intensity_statistics,
    ivh_features,
)
from metevo.radiomics._intensity_fast import (
    HISTOGRAM_NAMES,
    IVH_NAMES,
    STATISTICS_NAMES,
    block_arguments,
    histogram_vector,
    intensity_block,
    ivh_vector,
    resegment,
    statistics_vector,
    value_range,
)
from metevo.radiomics._local_intensity import LOCAL_NAMES, PEAK_RADIUS_MM, peak_vector
from metevo.radiomics._memory import keep_freed_memory
from metevo.radiomics._morphology import label_boxes, morphology_features
from metevo.radiomics._resample import resample_crop
from metevo.radiomics._settings import RadiomicsSettings, check_settings
from metevo.radiomics._shape_fast import SHAPE_NAMES, shape_vector
from metevo.radiomics._texture_fast import texture_names, texture_values

__all__ = ["radiomic_features", "warm_up"]

NOTE = C.Radiomics.NOTE


def _as_image(obj: object, what: str) -> sitk.Image:
    if isinstance(obj, sitk.Image):
        return obj
    if isinstance(obj, (str, Path)):
        from metevo.cohort.io import read_image

        return read_image(obj)
    raise TypeError(
        f"{what} must be a SimpleITK.Image or a path to an image file, found {type(obj).__name__}."
    )


def _check_grid(image: sitk.Image, mask: sitk.Image, context: str) -> None:
    if (
        image.GetSize() == mask.GetSize()
        and image.GetSpacing() == mask.GetSpacing()
        and image.GetOrigin() == mask.GetOrigin()
        and image.GetDirection() == mask.GetDirection()
    ):
        return  # the same grid exactly: nothing to check
    from metevo.cohort.io import check_same_grid

    check_same_grid(image, mask, context=context)


def _where(context: str) -> str:
    return f"{context}: " if context else ""


_HU_SAMPLE = 1 << 21  # voxels the HU check reads in a large scan


def _check_hu(image_array: np.ndarray, settings: RadiomicsSettings, context: str) -> None:
    if settings.resegment_range is None and settings.discretisation != "fixed_bin_size":
        return
    # a large scan is read in evenly spaced slices (about _HU_SAMPLE voxels): the check is
    # about units, and every slice of a CT holds air and tissue; a whole scan would cost
    # milliseconds per call, more than a small lesion's features
    nz = image_array.shape[0] if image_array.ndim == 3 else 1
    step = min(max(1, -(-image_array.size // _HU_SAMPLE)), nz)
    if step == 1:
        lo, hi = value_range(image_array)
        read = ""
    else:
        ranges = np.array([value_range(image_array[z]) for z in range(0, nz, step)])
        lo, hi = float(ranges[:, 0].min()), float(ranges[:, 1].max())
        read = f" (read in slices 0, {step}, {2 * step}, ... of {nz})"
    if lo > -500.0 or hi < 100.0 or lo < -4000.0 or hi > 40000.0:
        warnings.warn(
            f"{_where(context)}image intensities{read} range from {lo:g} to {hi:g}, which does not look "
            "like CT in Hounsfield units (expected air near -1000 and soft tissue/contrast above "
            "100). The CT settings (re-segmentation range, fixed bin size in HU) may be "
            "meaningless: convert the image to HU, or pass settings suited to its units "
            "(e.g. resegment_range=None, discretisation='fixed_bin_number').",
            DataQualityWarning,
            stacklevel=3,
        )


_MIN, _MAX = np.minimum.reduce, np.maximum.reduce
_TEXTURE = ("glcm", "glrlm", "glszm", "gldzm", "ngtdm", "ngldm")
_AUTOCORRELATION = {"morph_moran_i", "morph_geary_c"}


class _Plan:
    """What to compute for the selected feature columns, and where each value goes in the
    output row (built once per settings object, see ``_plan``)."""

    def __init__(self, settings: RadiomicsSettings) -> None:
        self.names = list(settings.selected())
        self.new_spacing = np.full(3, settings.spacing_mm)  # after interpolation (z, y, x)
        self.index = {n: i for i, n in enumerate(self.names)}
        self.columns = pd.Index([C.LESION_ID, *self.names, NOTE])
        families = feature_families()
        wanted = {families[n] for n in self.names}
        self.autocorrelation = bool(_AUTOCORRELATION & set(self.names))
        self.shape = any(
            families[n] == "morphology" and n not in _AUTOCORRELATION for n in self.names
        )
        self.morphology = self.shape or self.autocorrelation
        self.local = "local_intensity" in wanted
        self.statistics = "intensity_statistics" in wanted
        self.histogram = "intensity_histogram" in wanted
        self.ivh = "intensity_volume_histogram" in wanted
        self.texture = tuple(f for f in _TEXTURE if f in wanted)
        # a vector family's entries -> output row positions (-1: computed, not selected)
        self.slots = {
            "texture": self._slots(texture_names(self.texture)),
            "shape": self._slots(SHAPE_NAMES),
            "statistics": self._slots(STATISTICS_NAMES),
            "histogram": self._slots(HISTOGRAM_NAMES),
            "ivh": self._slots(IVH_NAMES),
            "local": self._slots(LOCAL_NAMES),
        }
        self.grey = (
            self.histogram or bool(self.texture) or (self.ivh and settings.ivh_bin_width is None)
        )
        # fixed-size bins from a set lower bound (CT): the intensity families in one compiled
        # pass (``intensity_block``), with these arguments
        self.block = None
        if settings.discretisation == "fixed_bin_size" and settings.lower_bound is not None:
            ivh_step = settings.ivh_bin_width if self.ivh else None
            self.block = block_arguments(
                statistics=self.statistics,
                ivh_step=ivh_step,
                ivh_lower_bound=settings.lower_bound,
                ivh_range=settings.resegment_range,
                lower_bound=settings.lower_bound,
                bin_width=settings.bin_width,
                histogram=self.histogram,
            )

    def _slots(self, names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, slice | None]:
        pos = np.array([self.index.get(n, -1) for n in names], np.int64)
        keep = pos >= 0
        whole = None  # every entry selected, in consecutive columns: one slice
        if keep.all() and pos.size and (np.diff(pos) == 1).all():
            whole = slice(int(pos[0]), int(pos[-1]) + 1)
        return pos[keep], keep, whole

    def put_vector(self, row: np.ndarray, family: str, values: np.ndarray) -> None:
        """Write the selected entries of a vector family's ``values`` into ``row``."""
        pos, keep, whole = self.slots[family]
        if whole is not None:
            row[whole] = values
        else:
            row[pos] = values[keep]

    def put(self, row: np.ndarray, feats: dict[str, float]) -> None:
        """Write the selected ones of ``feats`` into ``row``."""
        index = self.index
        for name, value in feats.items():
            i = index.get(name)
            if i is not None:
                row[i] = value


@lru_cache(maxsize=32)
def _plan(settings: RadiomicsSettings) -> _Plan:
    return _Plan(settings)


def _lesion_features(
    img_crop: np.ndarray,
    roi: np.ndarray,
    spacing: np.ndarray,
    settings: RadiomicsSettings,
    start: np.ndarray,
    whole: np.ndarray,
    plan: _Plan,
    row: np.ndarray,
    extent: np.ndarray | None = None,
) -> list[str]:
    """Compute the lesion's features into ``row`` (NaN-filled, ``plan.names`` order); return
    the notes."""
    notes: list[str] = []
    reach = None  # where the ROI lies in the crop: everywhere, unless interpolated
    if settings.resample:
        img_crop, roi, reach = resample_crop(
            img_crop,
            roi,
            spacing,
            settings.spacing_mm,
            start,
            whole,
            margin_mm=PEAK_RADIUS_MM if plan.local else 0.0,
            round_values=settings.round_intensities,
            extent=extent,
            with_reach=True,
        )
        spacing = plan.new_spacing
    morph = roi
    # re-segmentation, the boxes and voxel counts of the ROI and the intensity mask: one pass
    intensity_mask, box, n_morph, ibox, n_int = resegment(
        img_crop, morph, settings.resegment_range, reach
    )
    if n_morph == 0:  # only after interpolation: the crop holds the ROI
        notes.append(
            f"the lesion vanishes when interpolated to {settings.spacing_mm:g} mm voxels "
            "(smaller than one new voxel): all features are NaN"
        )
        return notes
    # morphology on the ROI's bounding box (the mesh pads it itself)
    if plan.autocorrelation:
        plan.put(
            row,
            morphology_features(
                morph[box],
                intensity_mask[box],
                img_crop[box],
                spacing,
                shape=False,
                autocorrelation=True,
                exact_max_voxels=settings.autocorrelation_exact_max_voxels,
            ),
        )
    if plan.shape:
        plan.put_vector(
            row, "shape", shape_vector(morph[box], intensity_mask[box], img_crop[box], spacing)
        )
    if n_morph < 4 and plan.morphology:
        notes.append(
            f"{n_morph}-voxel lesion: convex hull, principal axes and spatial autocorrelation "
            "need more voxels (NaN)"
        )
    if n_int == 0:
        notes.append(
            "no lesion voxel lies within the re-segmentation range "
            f"{settings.resegment_range}: intensity and texture features are NaN"
        )
        return notes
    if plan.local:
        plan.put_vector(row, "local", peak_vector(img_crop, intensity_mask, spacing, ibox))
    # everything below works on the intensity mask's own box
    image_i, mask_i = img_crop[ibox], intensity_mask[ibox]
    if plan.block is not None:
        _intensity_families(row, image_i, mask_i, n_int, settings, plan, notes)
        return notes
    x = image_i[mask_i]
    if plan.statistics:
        stats = statistics_vector(x)
        if stats is None:  # not integer-valued: the NumPy formulas
            plan.put(row, intensity_statistics(x))
        else:
            plan.put_vector(row, "statistics", stats)
    constant = float(_MIN(x, axis=None)) == float(_MAX(x, axis=None))
    if plan.ivh and settings.ivh_bin_width is not None:
        ivh = ivh_vector(x, settings.ivh_bin_width, settings.lower_bound, settings.resegment_range)
        if ivh is None:  # a value not finite: the NumPy formulas
            ivh = ivh_features(
                x,
                settings.ivh_bin_width,
                lower_bound=settings.lower_bound,
                value_range=settings.resegment_range,
            )
            plan.put(row, ivh)
        else:
            plan.put_vector(row, "ivh", ivh)
    if plan.grey:
        g_roi = discretise(x, settings)
        below = g_roi < 1
        if below.any():
            notes.append(
                f"{int(below.sum())} voxel(s) below the first bin's lower bound were put in bin 1"
            )
            g_roi = np.maximum(g_roi, 1)
        if plan.histogram:
            plan.put_vector(row, "histogram", histogram_vector(g_roi))
        if plan.ivh and settings.ivh_bin_width is None:
            plan.put(row, ivh_features(g_roi.astype(np.float64), None))
        if plan.texture:
            plan.put_vector(row, "texture", texture_values(g_roi, mask_i, plan.texture))
    if constant and (plan.texture or plan.ivh or plan.statistics):
        notes.append(_CONSTANT_NOTE)
    return notes


def _intensity_families(
    row: np.ndarray,
    image_i: np.ndarray,
    mask_i: np.ndarray,
    n_int: int,
    settings: RadiomicsSettings,
    plan: _Plan,
    notes: list[str],
) -> None:
    """``_lesion_features``' intensity part with fixed-size bins from a set lower bound: the
    statistics, IVH, grey levels and histogram in one compiled call (``intensity_block``),
    the NumPy formulas where it cannot take the values, then the texture."""
    x, constant, stats, stats_ok, ivh, ivh_ok, g_roi, n_below, hist = intensity_block(
        image_i, mask_i, n_int, plan.block
    )
    if plan.statistics:
        if stats_ok:
            plan.put_vector(row, "statistics", stats)
        else:  # not integer-valued: the NumPy formulas
            plan.put(row, intensity_statistics(x))
    if plan.ivh:
        if settings.ivh_bin_width is None:
            plan.put(row, ivh_features(g_roi.astype(np.float64), None))
        elif ivh_ok:
            plan.put_vector(row, "ivh", ivh)
        else:  # a value not finite: the NumPy formulas
            ivh_values = ivh_features(
                x,
                settings.ivh_bin_width,
                lower_bound=settings.lower_bound,
                value_range=settings.resegment_range,
            )
            plan.put(row, ivh_values)
    if plan.grey and n_below:
        notes.append(f"{n_below} voxel(s) below the first bin's lower bound were put in bin 1")
    if plan.histogram:
        plan.put_vector(row, "histogram", hist)
    if plan.texture:
        plan.put_vector(row, "texture", texture_values(g_roi, mask_i, plan.texture))
    if constant and (plan.texture or plan.ivh or plan.statistics):
        notes.append(_CONSTANT_NOTE)


_CONSTANT_NOTE = (
    "constant intensity: features dividing by the intensity spread (correlation, "
    "information correlation, NGTDM coarseness, IVH) are NaN"
)


def radiomic_features(
    image: sitk.Image | str | Path,
    mask: sitk.Image | str | Path,
    *,
    settings: RadiomicsSettings | str | None = None,
    labels: list[int] | None = None,
    context: str = "",
    **options: object,
) -> pd.DataFrame:
    """IBSI-1 radiomic features of every lesion of a scan, one row per lesion label.

    Parameters
    ----------
    image : SimpleITK.Image or path
        The scan (HU for CT).
    mask : SimpleITK.Image or path
        Lesion mask on the image grid: labelled (one integer per lesion, 0 = background), or
        binary, in which case all its voxels form one ROI (label 1); turn a binary mask into
        lesion instances first with :func:`metevo.tracking.label_lesions`.
    settings : RadiomicsSettings or str, optional
        A settings object or a preset name: ``"ct_default"`` (default: 1 mm isotropic,
        re-segmentation [-1000, 400] HU, fixed bin size 25 HU from -1000 HU),
        ``"ibsi_digital_phantom"`` or ``"pyradiomics_like"`` (no interpolation, bins of 25 HU
        with pyradiomics' edges, the features of pyradiomics' default classes).
    labels : list of int, optional
        Only these lesion labels (default: every label present).
    context : str
        Where the scan comes from (e.g. ``"P001 V2"``), used in warnings and errors.
    **options
        Overrides of single settings, e.g. ``bin_width=10``, ``resample=False``,
        ``families=["glcm", "ngtdm"]`` or ``features=["morph_moran_i"]`` (catalogue names;
        only the selected features are computed and returned; see
        :class:`metevo.RadiomicsSettings`).

    Returns
    -------
    pandas.DataFrame
        Columns ``lesion_id`` (int), then the selected feature columns (all by default) in
        the order of :func:`metevo.feature_catalog`, then ``radiomics_note`` (why features are NaN or how
        the lesion was treated; empty when nothing is to say). Features that are undefined for
        a lesion (1-voxel lesions have no convex hull or principal axes; a constant lesion has
        no correlation) are NaN and the note says why; no warning is raised per lesion.

    Raises
    ------
    TypeError
        ``image`` or ``mask`` of an unsupported type.
    metevo.exceptions.GeometryError
        The mask is not on the image grid.
    metevo.exceptions.MaskValueError
        The mask holds negative or non-integer values, or a requested label is absent.

    Warns
    -----
    metevo.exceptions.DataQualityWarning
        The image range does not look like HU while CT settings are in use.

    Examples
    --------
    >>> import numpy as np, SimpleITK as sitk, metevo
    >>> rng = np.random.default_rng(0)
    >>> arr = rng.normal(40, 20, (20, 40, 40)).round()
    >>> arr[0, 0, 0], arr[0, 0, 1] = -1000, 300
    >>> img = sitk.GetImageFromArray(arr); img.SetSpacing((0.8, 0.8, 2.5))
    >>> lab = np.zeros(arr.shape, np.uint32); lab[8:12, 10:25, 10:25] = 1
    >>> msk = sitk.GetImageFromArray(lab); msk.CopyInformation(img)
    >>> table = metevo.radiomic_features(img, msk)
    >>> int(table.loc[0, "lesion_id"]), round(table.loc[0, "morph_vol_approx_mm3"])
    (1, 1440)
    """
    settings = check_settings(settings, **options)
    keep_freed_memory()  # once per process: fewer page faults per lesion (_memory)
    image = _as_image(image, "image")
    mask = _as_image(mask, "mask")
    _check_grid(image, mask, context)
    img = sitk.GetArrayViewFromImage(image)
    lab = sitk.GetArrayViewFromImage(mask)
    if lab.dtype.kind not in "iu":  # not an integer type
        rounded = np.rint(lab)
        if not np.array_equal(rounded, lab):
            raise MaskValueError(
                f"{_where(context)}the lesion mask holds non-integer values (pixel type "
                f"{mask.GetPixelIDTypeAsString()}); expected integer lesion labels. Threshold "
                "or round the mask (0 = background, one integer per lesion)."
            )
        lab = rounded.astype(np.int64)
    if lab.dtype == np.uint64:
        lab = lab.astype(np.int64)
    boxes, lowest = label_boxes(lab)  # one pass over the mask
    if lowest < 0:
        raise MaskValueError(
            f"{_where(context)}the lesion mask holds negative values (minimum {lowest}); "
            "expected 0 for background and positive lesion labels."
        )
    _check_hu(img, settings, context)
    spacing_zyx = image.GetSpacing()[::-1]
    spacing = np.array(spacing_zyx, dtype=np.float64)  # (z, y, x)
    present = list(boxes)
    if labels is not None:
        missing = sorted(set(int(v) for v in labels) - set(present))
        if missing:
            raise MaskValueError(
                f"{_where(context)}lesion label(s) {missing} are not in the mask; labels "
                f"present: {present[:20]}{' ...' if len(present) > 20 else ''}."
            )
        present = sorted(set(int(v) for v in labels))
    plan = _plan(settings)
    target = settings.spacing_mm if settings.resample else 0.0
    # the intensity-peak sphere reaches 6.2 mm beyond the ROI; interpolation needs 2 new voxels
    reach = (PEAK_RADIUS_MM if plan.local else 0.0) + 2.0 * max(target, 0.0)
    mz, my, mx = (math.ceil(reach / h) + 1 for h in spacing_zyx)
    shape = nz, ny, nx = img.shape
    whole = np.array(shape)
    values = np.empty((len(present), len(plan.names)))
    values.fill(math.nan)
    notes_out: list[str] = []
    with np.errstate(all="ignore"):  # degenerate ROIs give NaN, with a note
        for r, label in enumerate(present):
            # the lesion's box (starts z0..x0, stops z1..x1), widened by the margin, in the scan
            z0, y0, x0, z1, y1, x1 = boxes[label]
            lz, ly, lx = z0 - mz, y0 - my, x0 - mx
            hz, hy, hx = z1 + mz, y1 + my, x1 + mx
            clipped = lz < 0 or ly < 0 or lx < 0 or hz > nz or hy > ny or hx > nx
            lz, ly, lx = max(lz, 0), max(ly, 0), max(lx, 0)
            crop = (slice(lz, min(hz, nz)), slice(ly, min(hy, ny)), slice(lx, min(hx, nx)))
            # resampled: the crop in the scan's type (interpolation reads it as float64)
            img_crop = img[crop] if settings.resample else np.asarray(img[crop], np.float64)
            roi = np.asarray(lab[crop]) == label
            # the ROI's first and last index in the crop along each axis: its label's box
            extent = np.array(
                ((z0 - lz, z1 - 1 - lz), (y0 - ly, y1 - 1 - ly), (x0 - lx, x1 - 1 - lx))
            )
            touches = z0 == 0 or y0 == 0 or x0 == 0 or z1 == nz or y1 == ny or x1 == nx
            notes = _lesion_features(
                img_crop,
                roi,
                spacing,
                settings,
                np.array((lz, ly, lx)),
                whole,
                plan,
                values[r],
                extent,
            )
            if touches:
                notes.append(
                    "the lesion touches the scan border: features describe its part in the scan"
                )
            elif clipped and plan.local:
                notes.append(
                    "the lesion lies within 6.2 mm of the scan border: intensity peaks use the voxels in the scan"
                )
            notes_out.append("; ".join(notes))
    return _assemble(present, values, notes_out, plan)


_STRING = pd.StringDtype()  # an instance: no dtype lookup by name per call
try:  # pandas' internals, for ``_from_blocks``; the public constructors otherwise
    from pandas._libs.arrays import NDArrayBacked
    from pandas._libs.internals import BlockPlacement
    from pandas.core.internals.blocks import ExtensionBlock, NumpyBlock
    from pandas.core.internals.managers import BlockManager
except ImportError:  # pragma: no cover
    BlockPlacement = ExtensionBlock = NumpyBlock = BlockManager = NDArrayBacked = None
_STRING_ARRAY = _STRING.construct_array_type()


def _assemble(labels: list[int], values: np.ndarray, notes: list[str], plan: _Plan) -> pd.DataFrame:
    """The output table: ``lesion_id``, the feature columns, the note.

    Built from its three blocks at once (pandas' block manager): inserting the id and note
    columns into a float frame costs ~0.4 ms, ten times the rest of a small lesion's
    assembly. Falls back to the public constructors where pandas' internals differ. Each
    table gets its own column index object (a view sharing the names' array): setting
    ``table.columns.name`` on one table must not rename another's.
    """
    ids = np.asarray(labels, dtype=np.int64)
    try:  # a new Index object on the same names; pd.array(notes, dtype="string") directly
        columns = plan.columns._view()
        note = _string_array(notes)
        return _from_blocks(ids, values, note, columns)
    except (ImportError, AttributeError, TypeError, ValueError):  # pragma: no cover
        return _assemble_public(ids, values, pd.array(notes, dtype=_STRING), plan.columns.copy())


def _string_array(notes: list[str]) -> object:
    """``pd.array(notes, dtype="string")`` for a list of ``str`` (no validation: they are)."""
    data = np.empty(len(notes), dtype=object)
    data[:] = notes
    out = _STRING_ARRAY.__new__(_STRING_ARRAY)
    NDArrayBacked.__init__(out, data, _STRING)
    return out


def _assemble_public(
    ids: np.ndarray, values: np.ndarray, note: object, columns: pd.Index
) -> pd.DataFrame:
    table = pd.DataFrame(values, columns=columns[1:-1], copy=False)
    table.insert(0, C.LESION_ID, ids)
    table[NOTE] = note
    return table


def _from_blocks(
    ids: np.ndarray, values: np.ndarray, note: object, columns: pd.Index
) -> pd.DataFrame:
    n_feat = values.shape[1]
    # the block classes ``new_block_2d`` / ``new_block`` pick for int64, float64 and string
    blocks = (
        NumpyBlock(ids[None, :], ndim=2, placement=BlockPlacement(slice(0, 1)), refs=None),
        NumpyBlock(values.T, ndim=2, placement=BlockPlacement(slice(1, n_feat + 1)), refs=None),
        ExtensionBlock(
            note, ndim=2, placement=BlockPlacement(slice(n_feat + 1, n_feat + 2)), refs=None
        ),
    )
    mgr = BlockManager(blocks, [columns, pd.RangeIndex(len(ids))], verify_integrity=False)
    return pd.DataFrame._from_mgr(mgr, axes=mgr.axes)


def warm_up() -> float:
    """Compile (first use on a machine) or load from the on-disk cache (first call in a
    process) every numba kernel of the feature computation, on a small synthetic lesion with
    every family; return the seconds spent. Calling it at start-up moves that one-time cost
    out of the first real call."""
    import time

    t0 = time.perf_counter()
    zz, yy, xx = np.indices((8, 16, 16))
    blob = ((zz - 4) / 3.0) ** 2 + ((yy - 8) / 5.0) ** 2 + ((xx - 8) / 6.0) ** 2 <= 1.0
    arr = (40.0 + 30.0 * np.sin(xx + 2 * yy + 3 * zz)).round()
    arr[0, 0, 0], arr[0, 0, 1] = -1000.0, 300.0  # a CT-like range: no warning
    image = sitk.GetImageFromArray(arr)
    image.SetSpacing((0.8, 0.8, 2.5))
    mask = sitk.GetImageFromArray(blob.astype(np.uint8))
    mask.CopyInformation(image)
    radiomic_features(image, mask)
    # a CT in int16 (the usual type): its crops are interpolated as they are
    ct = sitk.GetImageFromArray(arr.astype(np.int16))
    ct.CopyInformation(image)
    radiomic_features(ct, mask)
    radiomic_features(image, mask, settings="pyradiomics_like")
    radiomic_features(image, mask, families=["glrlm"])  # the run pass of GLRLM alone
    # intensities not rounded: the float64 kernel of the intensity peaks
    radiomic_features(image, mask, families=["local_intensity"], round_intensities=False)
    # the large-ROI approximation of Moran's I / Geary's C
    radiomic_features(image, mask, features=["morph_moran_i"], autocorrelation_exact_max_voxels=1)
    return time.perf_counter() - t0
