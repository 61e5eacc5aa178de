"""Registration between visits (SimpleITK), with quality control and a safe fallback.

Follow-up scans differ in patient position, breathing and field of view. :func:`register_pair`
aligns a *moving* scan (the earlier visit) to a *fixed* scan (the later visit): rigid, then affine
(default), then optionally a coarse B-spline. The transform it returns follows ITK's convention:
it maps a physical point of the fixed scan to the corresponding point of the moving scan, so
resampling the moving scan (or its lesion labels) with it puts them on the fixed grid.

Driver
    With liver masks on both scans (the default when present), the optimiser matches clamped
    signed distance maps of the two livers (mean squares): robust to contrast timing and fast.
    Without them it matches the images' soft-tissue intensities (HU clamped to [-150, 250],
    correlation metric) and the caller should warn (``RegistrationWarning``).
Resolution
    Everything runs on data block-averaged to about ``resolution_mm`` (default 6 mm) per axis,
    cropped to the fixed liver plus a margin, with a two-level pyramid; a 512 x 512 x 150 pair
    registers in about a second on one core.
Starts and trusted region (liver driver)
    Patients roll and pitch as well as turn: the rigid stage starts from the best of several
    starts (the livers' principal axes and a 125-rotation grid about all three axes, each with
    its translation refined, scored on the same metric; :mod:`metevo.tracking._registration_search`)
    and tries the runner-up when the best ends implausibly. The moving distance map is extended
    so that no fixed point can leave it (outside the liver where the scan imaged all of it, the
    edge slice repeated where the liver runs out of the field of view), so the optimiser cannot
    lower the metric by turning part of the liver out of the image; the refinement scores only
    fixed points mapped into slices the moving scan imaged (the overlap of the two fields of view,
    fixed per stage). From the start on, voxels where the livers disagree by > 8 mm (a resected
    part, a dome cut in one scan only; at most 60 % of the band) are left out of every stage.
Intensity refinement (CT on both sides)
    An affine refinement on CT intensities (soft tissue, correlation, 3 mm) inside the fixed liver
    dilated by 10 mm and the trusted overlap: vessels and lesions pin what the smooth surface
    leaves free; kept unless the trusted full-resolution liver Dice falls by more than 0.01.
Quality control
    Liver Dice after registration is computed on the full-resolution masks, over the part of the
    fixed liver's box that the moving scan imaged and, after a trusted-region refinement, inside
    that region (a hepatectomy is not misregistration); the Dice before (identity in physical
    space) and the "did it get worse" check use the downsampled grid. A registration fails QC
    when the optimiser raises, when the transform is implausible (rotation over 45 degrees: two
    visits of a patient rolled or pitched by 10 degrees each differ by up to ~35; or a scale
    outside [0.67, 1.5]), or, with liver masks, when the Dice after is below ``min_dice``
    (default 0.80) or worse than before; without liver masks, when the correlation got worse. A
    failed registration falls back to centroid alignment of the livers (if that is better than
    identity) or to identity, and says so in ``note``.

Examples
--------
>>> import numpy as np, SimpleITK as sitk
>>> from metevo.tracking import register_pair
>>> z, y, x = np.indices((40, 64, 64))
>>> ball = lambda cx: (((x - cx) / 14.0) ** 2 + ((y - 32) / 10.0) ** 2 + ((z - 20) / 8.0) ** 2 <= 1)
>>> fixed = sitk.GetImageFromArray(ball(30).astype(np.uint8)); fixed.SetSpacing((2.0, 2.0, 2.0))
>>> moving = sitk.GetImageFromArray(ball(34).astype(np.uint8)); moving.SetSpacing((2.0, 2.0, 2.0))
>>> reg = register_pair(fixed, moving, fixed_liver=fixed, moving_liver=moving, resolution_mm=2.0)
>>> reg.qc_pass, round(reg.transform.TransformPoint((60.0, 64.0, 40.0))[0])   # 4 voxels = 8 mm
(True, 68)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk

from metevo.columns import Registrations as R
from metevo.tracking._affine import affine_columns
from metevo.tracking._registration_search import (
    both,
    full_resolution_dice,
    imaged_slices,
    overlap_mask,
    pad_moving,
    rotation_starts,
    single_threaded_itk,
    trusted_mask,
)

__all__ = ["Registration", "compose", "register_pair", "resample_labels"]

_HU_WINDOW = (-150.0, 250.0)
_DISTANCE_CLAMP_MM = 20.0
_MAX_ROTATION_DEG = 45.0  # two visits of a patient rolling/pitching 10 deg each differ by <= 35
_MIN_DROPPED, _MAX_DROPPED = 0.01, 0.6  # trusted region: used when it drops more/at most
_SCALE_RANGE = (0.67, 1.5)
_REFINE_DILATE_MM, _REFINE_MAX_DICE_LOSS = 10.0, 0.01  # intensity refinement: dilation, Dice


@dataclass
class Registration:
    """Result of :func:`register_pair` (one pair of visits).

    Attributes
    ----------
    transform
        Maps fixed-scan physical points to moving-scan points (the fallback when QC failed).
    affine
        The rigid/affine part of ``transform`` (equal to it unless ``transform_type`` is
        ``"bspline"``); invertible, used to map bounding boxes from moving to fixed space.
    driver
        ``"liver_mask"`` or ``"image"``.
    transform_type
        ``"rigid"``, ``"affine"`` or ``"bspline"``; ``"translation"``/``"identity"`` after a
        fallback.
    metric, metric_value
        The similarity metric's name and its final value (lower is better).
    liver_dice_before, liver_dice_after
        Liver Dice with identity and with ``transform`` (NaN without liver masks).
    iterations
        Optimiser iterations, all stages and levels together.
    qc_pass
        False when the registration clearly failed and ``transform`` is a fallback.
    fallback
        ``"none"``, ``"centroid"`` or ``"identity"``.
    note
        Why QC failed, or which driver was used.
    """

    transform: sitk.Transform
    affine: sitk.Transform
    driver: str
    transform_type: str
    metric: str
    metric_value: float
    liver_dice_before: float
    liver_dice_after: float
    iterations: int
    qc_pass: bool
    fallback: str = "none"
    note: str = ""
    translation_mm: float = float("nan")
    rotation_deg: float = float("nan")
    extra: dict = field(default_factory=dict, repr=False)

    def to_row(self) -> dict:
        """The registration's QC as one row of the ``registrations`` table (without keys)."""
        return {
            R.DRIVER: self.driver,
            R.TRANSFORM: self.transform_type,
            R.METRIC: self.metric,
            R.METRIC_VALUE: float(self.metric_value),
            R.LIVER_DICE_BEFORE: float(self.liver_dice_before),
            R.LIVER_DICE_AFTER: float(self.liver_dice_after),
            R.ITERATIONS: int(self.iterations),
            R.TRANSLATION_MM: float(self.translation_mm),
            R.ROTATION_DEG: float(self.rotation_deg),
            R.QC_PASS: bool(self.qc_pass),
            R.FALLBACK: self.fallback,
            R.NOTE: self.note,
            **affine_columns(self.affine),
        }


@single_threaded_itk
def register_pair(
    fixed: sitk.Image,
    moving: sitk.Image,
    *,
    fixed_liver: sitk.Image | None = None,
    moving_liver: sitk.Image | None = None,
    transform: str = "affine",
    deformable: bool = False,
    resolution_mm: float = 6.0,
    max_iterations: int = 100,
    min_dice: float = 0.80,
    seed: int = 0,
    context: str = "",
    refine_intensity: bool = True,
) -> Registration:
    """Register ``moving`` (earlier visit) onto ``fixed`` (later visit).

    Parameters
    ----------
    fixed, moving
        The two CT images (HU). With liver masks on both, only the masks' geometry and the masks
        are used, and the images may be the masks themselves.
    fixed_liver, moving_liver
        Liver masks (non-zero = liver) on each image's grid; both or neither drive the
        registration.
    transform
        ``"rigid"`` or ``"affine"`` (rigid, then affine; default).
    deformable
        Add a coarse B-spline stage (control points every ~100 mm) after the affine one.
    resolution_mm
        Approximate voxel size of the downsampled data the optimiser sees (default 6 mm).
    max_iterations
        Iterations per stage and pyramid level.
    min_dice
        Liver Dice below which the registration fails QC (default 0.80).
    seed
        Seed of the metric's random sampling (a non-negative integer). ITK reads a sampling seed of
        0 as "seed from the wall clock", so metevo passes ``seed + 1`` to ITK: every seed,
        ``0`` included, gives the same transform on every run.
    context
        Named in notes (e.g. ``"P001 V1->V2"``).
    refine_intensity
        With liver masks and CT images on both sides (not masks passed as images), refine the
        affine stage on the CT intensities inside the dilated liver (default True).

    Returns
    -------
    Registration
        See :class:`Registration`. Never raises for an optimiser failure: the result then has
        ``qc_pass=False`` and a fallback transform.

    Raises
    ------
    ValueError
        Unknown ``transform`` or a non-positive ``resolution_mm``.
    """
    if transform not in ("rigid", "affine"):
        raise ValueError(
            f"transform must be 'rigid' or 'affine' (use deformable=True for a B-spline stage); "
            f"got {transform!r}."
        )
    if not resolution_mm > 0:
        raise ValueError(f"resolution_mm must be > 0; got {resolution_mm!r}.")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer; got {seed!r}.")
    use_liver = fixed_liver is not None and moving_liver is not None
    if use_liver:
        f_bin, m_bin = _coarse(fixed_liver, resolution_mm), _coarse(moving_liver, resolution_mm)
        if _empty(f_bin) or _empty(m_bin):
            use_liver = False
    if use_liver:
        f_feat, m_feat = _distance_feature(f_bin), _distance_feature(m_bin)
        f_feat = _crop_to(f_feat, f_bin, margin_mm=2 * _DISTANCE_CLAMP_MM)
        m_feat = _crop_to(m_feat, m_bin, margin_mm=3 * _DISTANCE_CLAMP_MM)
        driver, metric = "liver_mask", "mean_squares_distance_map"
        init = _centroid_transform(f_bin, m_bin)
    else:
        f_bin = m_bin = None
        f_feat, m_feat = (
            _intensity_feature(fixed, resolution_mm),
            _intensity_feature(moving, resolution_mm),
        )
        driver, metric = "image", "correlation"
        init = _centroid_transform(f_feat > _HU_WINDOW[0] + 50, m_feat > _HU_WINDOW[0] + 50)

    counter = [0]
    note = "" if use_liver else "registered on image intensities (no liver masks)"
    trust = None
    known_dice: tuple[sitk.Transform | None, float] = (None, float("nan"))
    valid_z = (-np.inf, np.inf)
    try:
        if use_liver:
            m_feat = pad_moving(m_feat, m_bin, clamp_mm=_DISTANCE_CLAMP_MM)
            valid_z = imaged_slices(m_feat, m_bin)
            starts = rotation_starts(
                f_feat,
                m_feat,
                f_bin,
                m_bin,
                clamp_mm=_DISTANCE_CLAMP_MM,
                seed=seed,
                valid_z=valid_z,
            )
        else:
            rigid = sitk.Euler3DTransform()
            rigid.SetCenter(init.GetCenter())
            rigid.SetTranslation(init.GetTranslation())
            starts = [rigid]
        best = None
        for start in starts:  # best-scored start first; the next only if that one ends badly
            # a resection can pull the optimiser off a good start: trusted region from the start
            early = _trusted(f_feat, m_feat, start) if use_liver else None
            args = (driver, max_iterations, seed, counter, early)
            cand, val = _optimise(f_feat, m_feat, start, *args)
            if best is None or val < best[1]:
                best = (cand, val)
            if not use_liver or (
                _rotation_and_scale(cand)[0] <= _MAX_ROTATION_DEG
                and _dice(f_bin, m_bin, cand) >= min_dice
            ):
                break
        rigid, value = best
        region = None  # the metric's region: trusted liver and shared field of view
        if use_liver:  # refine on what both livers show (not a resected part, not a cut dome)
            trust = _trusted(f_feat, m_feat, rigid)
            # ... and on the overlap of the two fields of view (not the guess beyond a cut side)
            region = both(trust, overlap_mask(f_feat, m_feat, rigid, valid_z))
            if region is not None:
                rigid, value = _optimise(
                    f_feat, m_feat, rigid, driver, max_iterations, seed, counter, region
                )
        final = rigid
        kind = "rigid"
        if transform == "affine":
            final, value = _optimise(
                f_feat, m_feat, _affine(rigid), driver, max_iterations, seed, counter, region
            )
            kind = "affine"
        if use_liver and refine_intensity and _is_ct(fixed) and _is_ct(moving):
            refined = _intensity_refine(
                fixed, moving, f_bin, final, resolution_mm, region, max_iterations, seed, counter
            )
            # kept unless the trusted full-resolution liver Dice falls (contrast must not pull)
            dice = [
                full_resolution_dice(fixed_liver, moving_liver, t, trust) for t in (refined, final)
            ]
            if dice[0] + _REFINE_MAX_DICE_LOSS >= dice[1]:
                final = refined
            known_dice = (final, dice[0] if final is refined else dice[1])  # reused by the QC
        bulk = final
        if deformable:
            final, value = _bspline(f_feat, m_feat, bulk, driver, max_iterations, seed, counter)
            kind = "bspline"
        error = None
    except RuntimeError as exc:  # ITK optimiser/metric failure: fall back, never crash
        error = str(exc).strip().splitlines()[-1][:200]
        final = bulk = sitk.TranslationTransform(3, init.GetTranslation())
        value, kind = float("nan"), "translation"

    centre = _centre_point(f_bin if use_liver else f_feat > _HU_WINDOW[0] + 50)
    identity = sitk.TranslationTransform(3)
    if use_liver:  # QC on the full-resolution masks; "did it get worse" on the coarse ones
        dice_before = _dice(f_bin, m_bin, identity)
        coarse_after = _dice(f_bin, m_bin, final)
        dice_after = (
            known_dice[1]
            if known_dice[0] is final
            else full_resolution_dice(fixed_liver, moving_liver, final, trust)
        )
    else:
        dice_before = coarse_after = dice_after = float("nan")
    rotation, scale_ok = _rotation_and_scale(bulk)
    problems = []
    if error is not None:
        problems.append(f"optimiser failed ({error})")
    if rotation > _MAX_ROTATION_DEG or not scale_ok:
        problems.append(
            f"implausible transform (rotation {rotation:.0f} deg, scale outside "
            f"[{_SCALE_RANGE[0]}, {_SCALE_RANGE[1]}])"
        )
    if use_liver and error is None:
        if not dice_after >= min_dice:  # NaN (nothing left to compare) fails too
            problems.append(f"liver Dice after {dice_after:.2f} < {min_dice:.2f}")
        elif coarse_after + 0.02 < dice_before:
            problems.append(f"liver Dice fell from {dice_before:.2f} to {coarse_after:.2f}")
    if not use_liver and error is None:
        before = _correlation(f_feat, m_feat, identity)
        after = _correlation(f_feat, m_feat, final)
        if after < before:
            problems.append(f"image correlation fell from {before:.2f} to {after:.2f}")

    fallback = "none"
    if problems:
        candidates = [
            (
                "identity",
                identity,
                full_resolution_dice(fixed_liver, moving_liver, identity, trust)
                if use_liver
                else dice_before,
            )
        ]
        if use_liver:
            cen = sitk.TranslationTransform(3, init.GetTranslation())
            candidates.append(
                ("centroid", cen, full_resolution_dice(fixed_liver, moving_liver, cen, trust))
            )
        fallback, final, score = max(candidates, key=lambda c: -1.0 if math.isnan(c[2]) else c[2])
        bulk = final
        kind = "translation" if fallback == "centroid" else "identity"
        dice_after = score
        rotation = 0.0
        where = f"{context}: " if context else ""
        note = f"{where}registration failed QC: {'; '.join(problems)}; fell back to {fallback}" + (
            f" alignment (liver Dice {score:.2f})" if use_liver else ""
        )
    moved = np.array(final.TransformPoint(centre))
    return Registration(
        transform=final,
        affine=bulk,
        driver=driver,
        transform_type=kind,
        metric=metric,
        metric_value=float(value),
        liver_dice_before=float(dice_before),
        liver_dice_after=float(dice_after),
        iterations=counter[0],
        qc_pass=not problems,
        fallback=fallback,
        note=note,
        translation_mm=float(np.linalg.norm(moved - np.array(centre))),
        rotation_deg=float(rotation),
    )


def compose(transforms: list[sitk.Transform]) -> sitk.Transform:
    """Chain transforms ``[T_1->0, T_2->1, ..., T_k->k-1]`` into ``T_k->0``.

    Each ``T_i->i-1`` maps points of visit i to visit i-1 (as returned by :func:`register_pair`
    with visit i fixed); the result maps points of visit k to visit 0.
    """
    if len(transforms) == 1:
        return transforms[0]
    # SimpleITK applies a composite's transforms last-added first.
    return sitk.CompositeTransform(list(transforms))


def resample_labels(
    labels: sitk.Image, reference: sitk.Image, transform: sitk.Transform
) -> sitk.Image:
    """Resample a label image onto ``reference``'s grid (nearest neighbour, 0 outside)."""
    return sitk.Resample(
        labels, reference, transform, sitk.sitkNearestNeighbor, 0, labels.GetPixelID()
    )


# --------------------------------------------------------------------------------------------
# internals
# --------------------------------------------------------------------------------------------
def _factors(image: sitk.Image, resolution_mm: float) -> list[int]:
    return [max(1, round(resolution_mm / s)) for s in image.GetSpacing()]


def _coarse(mask: sitk.Image, resolution_mm: float) -> sitk.Image:
    """Liver mask block-averaged to a ~resolution_mm grid and thresholded at half (UInt8 0/1)."""
    arr = sitk.GetArrayViewFromImage(mask)
    if mask.GetPixelID() != sitk.sitkUInt8 or arr.max(initial=0) > 1:
        mask = sitk.NotEqual(mask, 0)
    # BinShrink averages each block; on UInt8 it rounds, i.e. keeps blocks at least half liver.
    return sitk.BinShrink(mask, _factors(mask, resolution_mm))


def _intensity_feature(image: sitk.Image, resolution_mm: float) -> sitk.Image:
    clamped = sitk.Clamp(sitk.Cast(image, sitk.sitkFloat32), sitk.sitkFloat32, *_HU_WINDOW)
    return sitk.BinShrink(clamped, _factors(image, resolution_mm))


def _empty(binary: sitk.Image) -> bool:
    return not bool(np.any(sitk.GetArrayViewFromImage(binary)))


def _distance_feature(binary: sitk.Image) -> sitk.Image:
    dist = sitk.SignedMaurerDistanceMap(
        sitk.Cast(binary, sitk.sitkUInt8),
        insideIsPositive=False,
        squaredDistance=False,
        useImageSpacing=True,
    )
    return sitk.Clamp(
        sitk.Cast(dist, sitk.sitkFloat32), sitk.sitkFloat32, -_DISTANCE_CLAMP_MM, _DISTANCE_CLAMP_MM
    )


def _crop_to(image: sitk.Image, binary: sitk.Image, *, margin_mm: float) -> sitk.Image:
    arr = sitk.GetArrayViewFromImage(binary)
    idx = np.nonzero(arr)
    size = np.array(arr.shape)
    pad = np.ceil(margin_mm / np.array(image.GetSpacing()[::-1])).astype(int)
    lo = np.maximum(np.array([i.min() for i in idx]) - pad, 0)
    hi = np.minimum(np.array([i.max() for i in idx]) + pad + 1, size)
    return sitk.RegionOfInterest(
        image, [int(v) for v in (hi - lo)[::-1]], [int(v) for v in lo[::-1]]
    )


def _centroid(binary: sitk.Image) -> np.ndarray:
    arr = sitk.GetArrayViewFromImage(binary)
    idx = np.argwhere(arr)
    if idx.size == 0:
        size = np.array(binary.GetSize(), float)
        return np.array(binary.TransformContinuousIndexToPhysicalPoint(((size - 1) / 2).tolist()))
    mean = idx.mean(axis=0)[::-1]
    return np.array(binary.TransformContinuousIndexToPhysicalPoint(mean.tolist()))


def _centre_point(binary: sitk.Image) -> tuple[float, float, float]:
    return tuple(float(v) for v in _centroid(binary))


def _centroid_transform(f_bin: sitk.Image, m_bin: sitk.Image) -> sitk.Euler3DTransform:
    """Translation aligning the two masks' centroids, centred on the fixed one."""
    cf, cm = _centroid(f_bin), _centroid(m_bin)
    t = sitk.Euler3DTransform()
    t.SetCenter(cf.tolist())
    t.SetTranslation((cm - cf).tolist())
    return t


def _method(
    driver: str,
    max_iterations: int,
    seed: int,
    counter: list[int],
    *,
    sampling: float = 0.25,
    step: tuple[float, float, float] = (2.0, 0.005, 0.7),
    levels: tuple[list[int], list[float]] = ([2, 1], [1.0, 0.0]),
) -> sitk.ImageRegistrationMethod:
    """ITK method; ``step``: learning rate, min step, relaxation; ``levels``: shrinks, sigmas."""
    method = sitk.ImageRegistrationMethod()
    if driver == "liver_mask":
        method.SetMetricAsMeanSquares()
    else:
        method.SetMetricAsCorrelation()
    method.SetMetricSamplingStrategy(method.REGULAR)
    # ITK's seed 0 means sitkWallClock (a new seed every run): shift so that seed 0 is fixed too.
    method.SetMetricSamplingPercentage(sampling, _itk_seed(seed))
    method.SetInterpolator(sitk.sitkLinear)
    # Gradients by central differences at the sampled points, not precomputed image-wide.
    method.MetricUseFixedImageGradientFilterOff()
    method.MetricUseMovingImageGradientFilterOff()
    method.SetOptimizerAsRegularStepGradientDescent(
        learningRate=step[0],
        minStep=step[1],
        numberOfIterations=max_iterations,
        relaxationFactor=step[2],
        gradientMagnitudeTolerance=1e-8,
    )
    method.SetShrinkFactorsPerLevel(levels[0])
    method.SetSmoothingSigmasPerLevel(levels[1])
    method.SmoothingSigmasAreSpecifiedInPhysicalUnitsOff()
    method.AddCommand(sitk.sitkIterationEvent, lambda: counter.__setitem__(0, counter[0] + 1))
    return method


def _itk_seed(seed: int) -> int:
    """ITK sampling seed for a metevo seed: never 0, which ITK reads as the wall clock."""
    return int(seed) + 1


def _scales(fixed: sitk.Image, transform: sitk.Transform) -> list[float]:
    """Optimiser scales: a unit change of a rotation/matrix parameter moves points by about the
    fixed region's radius ``r`` (scale ``r**2``), of a translation by 1 mm (scale 1); the cheap
    closed form of ITK's physical-shift estimator."""
    extent = np.array(fixed.GetSize()) * np.array(fixed.GetSpacing())
    r2 = float((extent / 2) @ (extent / 2)) / 3.0
    n = transform.GetNumberOfParameters()
    return [r2] * (n - 3) + [1.0] * 3


def _affine(rigid: sitk.Transform) -> sitk.AffineTransform:
    """The same mapping as an affine transform (a starting point for an affine optimisation)."""
    affine = sitk.AffineTransform(3)
    affine.SetCenter(rigid.GetCenter())
    affine.SetMatrix(rigid.GetMatrix())
    affine.SetTranslation(rigid.GetTranslation())
    return affine


def _optimise(fixed, moving, initial, driver, max_iterations, seed, counter, mask=None, **how):
    """Optimise ``initial`` in place (``how``: :func:`_method`'s options); (it, metric value)."""
    method = _method(driver, max_iterations, seed, counter, **how)
    method.SetOptimizerScales(_scales(fixed, initial))
    if mask is not None:
        method.SetMetricFixedMask(mask)
    method.SetInitialTransform(initial, inPlace=True)
    method.Execute(fixed, moving)
    return initial, method.GetMetricValue()


def _intensity_refine(
    fixed, moving, f_bin, start, resolution_mm, mask, max_iterations, seed, counter
):
    """Affine refinement of ``start`` on CT intensities inside the dilated fixed liver and
    ``mask`` (see the module docstring); ``start`` when the optimiser fails."""
    res = resolution_mm / 2.0
    f_int = _intensity_feature(fixed, res)
    m_int = _intensity_feature(moving, res)
    radius = [max(1, round(_REFINE_DILATE_MM / s)) for s in f_bin.GetSpacing()]
    identity = sitk.Transform()
    region = resample_labels(sitk.BinaryDilate(f_bin, radius), f_int, identity)
    if mask is not None:  # on the cropped liver-stage grid
        mask = resample_labels(mask, f_int, identity)
        region = sitk.And(region, sitk.Cast(mask, region.GetPixelID()))
    if _empty(region):
        return start
    f_int = _crop_to(f_int, region, margin_mm=0.0)
    region = resample_labels(region, f_int, identity)
    try:
        refined, _ = _optimise(
            f_int, m_int, _affine(start), "image", max_iterations, seed, counter, region,
            sampling=0.5, step=(1.0, 0.01, 0.6), levels=([1], [0.0]),
        )  # fmt: skip
    except RuntimeError:
        return start
    return refined


def _trusted(f_feat, m_feat, transform):
    """:func:`trusted_mask` if it drops (_MIN_DROPPED, _MAX_DROPPED] of the band, else None."""
    mask, dropped = trusted_mask(f_feat, m_feat, transform, clamp_mm=_DISTANCE_CLAMP_MM)
    return mask if _MIN_DROPPED < dropped <= _MAX_DROPPED else None


def _is_ct(image: sitk.Image) -> bool:
    """True for a CT in HU; False for a mask passed in its place (no intensities to refine on)."""
    if image.GetPixelID() == sitk.sitkUInt8:
        return False
    arr = sitk.GetArrayViewFromImage(image)
    return float(arr.min()) < -100.0


def _bspline(fixed, moving, bulk, driver, max_iterations, seed, counter):
    extent = np.array(fixed.GetSize()) * np.array(fixed.GetSpacing())
    mesh = [max(1, int(round(e / 100.0))) for e in extent]
    bspline = sitk.BSplineTransformInitializer(fixed, mesh)
    method = _method(driver, max_iterations, seed, counter)
    method.SetOptimizerAsLBFGSB(
        gradientConvergenceTolerance=1e-5, numberOfIterations=max_iterations // 2
    )
    method.SetShrinkFactorsPerLevel([1])
    method.SetSmoothingSigmasPerLevel([0.0])
    method.SetOptimizerScalesFromPhysicalShift()
    method.SetMovingInitialTransform(bulk)
    method.SetInitialTransform(bspline, inPlace=True)
    method.Execute(fixed, moving)
    return sitk.CompositeTransform([bulk, bspline]), method.GetMetricValue()


def _dice(f_bin: sitk.Image, m_bin: sitk.Image, transform: sitk.Transform) -> float:
    moved = sitk.Resample(m_bin, f_bin, transform, sitk.sitkNearestNeighbor, 0, m_bin.GetPixelID())
    a = sitk.GetArrayViewFromImage(f_bin) != 0
    b = sitk.GetArrayViewFromImage(moved) != 0
    total = int(a.sum()) + int(b.sum())
    return 2.0 * int(np.count_nonzero(a & b)) / total if total else float("nan")


def _correlation(fixed: sitk.Image, moving: sitk.Image, transform: sitk.Transform) -> float:
    moved = sitk.Resample(
        moving, fixed, transform, sitk.sitkLinear, _HU_WINDOW[0], sitk.sitkFloat32
    )
    a = sitk.GetArrayViewFromImage(fixed).ravel().astype(float)
    b = sitk.GetArrayViewFromImage(moved).ravel().astype(float)
    if a.std() == 0 or b.std() == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def _rotation_and_scale(transform: sitk.Transform) -> tuple[float, bool]:
    """Rotation angle (degrees) and whether the singular values are plausible scales."""
    try:
        matrix = np.array(transform.GetMatrix(), dtype=float).reshape(3, 3)
    except (AttributeError, RuntimeError):
        return 0.0, True
    u, s, vt = np.linalg.svd(matrix)
    rot = u @ vt
    angle = math.degrees(math.acos(np.clip((np.trace(rot) - 1) / 2, -1.0, 1.0)))
    ok = bool(np.all((s >= _SCALE_RANGE[0]) & (s <= _SCALE_RANGE[1])) and np.linalg.det(rot) > 0)
    return angle, ok
