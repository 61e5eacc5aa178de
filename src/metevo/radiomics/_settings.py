"""Radiomics settings: one frozen object, named presets, one validation point.

The settings follow the IBSI-1 image processing chain (Zwanenburg et al., Radiology 2020,
section 2): interpolation to isotropic voxels, re-segmentation by an intensity range,
discretisation, then feature computation.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["PRESETS", "RadiomicsSettings", "check_settings"]

_DISCRETISATIONS = ("fixed_bin_size", "fixed_bin_number", "none")


@dataclass(frozen=True)
class RadiomicsSettings:
    """Options of the IBSI feature computation.

    Parameters
    ----------
    resample : bool
        Interpolate each lesion crop to isotropic voxels of ``spacing_mm`` before computing
        features (IBSI 2.4; grid centres aligned, trilinear for the image, trilinear + 0.5
        threshold for the mask).
    spacing_mm : float
        Isotropic voxel size after interpolation, in mm.
    round_intensities : bool
        Round interpolated intensities to the nearest integer (IBSI recommendation for CT).
    resegment_range : tuple of two floats or None
        Re-segmentation range ``(low, high)`` in image units (HU for CT): voxels of the ROI
        outside it leave the intensity mask (IBSI 2.5). The morphological mask is unchanged.
        ``None`` disables re-segmentation.
    discretisation : {"fixed_bin_size", "fixed_bin_number", "none"}
        IBSI 2.7. ``"none"`` uses the (integer) intensities as grey levels.
    bin_width : float
        Bin width for ``"fixed_bin_size"`` (HU for CT).
    bin_lower_bound : float or None
        Lower edge of the first bin for ``"fixed_bin_size"``. Fixing it (default: the lower
        re-segmentation bound) makes grey levels comparable across visits and lesions.
        ``None`` uses the lower re-segmentation bound, or the ROI minimum when there is none.
    n_bins : int
        Number of bins for ``"fixed_bin_number"``.
    ivh_bin_width : float or None
        Bin width of the intensity-volume histogram (IBSI 3.5). ``None`` computes the IVH on
        the discretised grey levels (as for the IBSI phantom); a number (1 HU for CT) bins the
        intensities from the lower bound, each bin standing for its centre, with the intensity
        fraction taken over the re-segmentation range (as MIRP does).
    glcm_distance : int
        Chebyshev distance of GLCM neighbours (IBSI uses 1; only 1 is implemented).
    families : tuple of str or None
        Feature families to compute (names of the ``family`` column of
        :func:`metevo.feature_catalog`: ``"morphology"``, ``"glcm"``...). ``None`` (and
        ``features=None``): every family. Only what is selected is computed and returned.
    features : tuple of str or None
        Single feature columns to compute (the ``feature`` column of the catalogue), in
        addition to ``families``. The selection is the union of both.
    autocorrelation_exact_max_voxels : int or None
        Moran's I and Geary's C (IBSI 3.1.26-27) sum over all voxel pairs. They are exact
        (FFTs of the ROI's box) up to this many voxels in the intensity mask and approximated
        above it, as the IBSI manual allows for large ROIs: pairs of neighbouring voxels summed
        exactly, the others estimated from about 400,000 drawn pairs (every voxel the first of
        its draws; only the residual of a polynomial fit of the weight is sampled, the fit's
        own sums being exact; fixed seed, so the same ROI gives the same value). On lesions of
        15k-177k voxels its RMS error is 0.2-1.4 % of Moran's I where it exceeds 0.02 (values
        near 0.08: about 0.0005) and 0.05-0.3 % of Geary's C (docs/radiomics.md). ``None``: always exact.
    """

    resample: bool = True
    spacing_mm: float = 1.0
    round_intensities: bool = True
    resegment_range: tuple[float, float] | None = (-1000.0, 400.0)
    discretisation: str = "fixed_bin_size"
    bin_width: float = 25.0
    bin_lower_bound: float | None = None
    n_bins: int = 32
    ivh_bin_width: float | None = 1.0
    glcm_distance: int = 1
    families: tuple[str, ...] | None = None
    features: tuple[str, ...] | None = None
    autocorrelation_exact_max_voxels: int | None = 20_000

    def replace(self, **changes: object) -> RadiomicsSettings:
        """Return a copy with ``changes`` applied (and validated)."""
        return check_settings(self, **changes)

    @property
    def lower_bound(self) -> float | None:
        """Lower edge of the first fixed-size bin (``bin_lower_bound`` or the range's low end)."""
        if self.bin_lower_bound is not None:
            return self.bin_lower_bound
        if self.resegment_range is not None:
            return self.resegment_range[0]
        return None

    def selected(self) -> tuple[str, ...]:
        """The feature columns these settings compute, in catalogue order."""
        return _selection(self.families, self.features)


def _selection(
    families: tuple[str, ...] | None, features: tuple[str, ...] | None
) -> tuple[str, ...]:
    from metevo.radiomics._catalog import feature_families

    catalog = feature_families()  # column -> family, in catalogue order
    if families is None and features is None:
        return tuple(catalog)
    fam = set(families or ())
    feat = set(features or ())
    return tuple(name for name, f in catalog.items() if f in fam or name in feat)


def _pyradiomics_like_features() -> tuple[str, ...]:
    """pyradiomics' default feature classes in IBSI terms: shape (morphology without spatial
    autocorrelation, which pyradiomics does not compute), first order (intensity statistics and
    histogram), GLCM, GLRLM, GLSZM, GLDM (NGLDM) and NGTDM."""
    families = (
        "morphology",
        "intensity_statistics",
        "intensity_histogram",
        "glcm",
        "glrlm",
        "glszm",
        "ngtdm",
        "ngldm",
    )
    drop = {"morph_moran_i", "morph_geary_c"}
    return tuple(n for n in _selection(families, None) if n not in drop)


PRESETS: dict[str, RadiomicsSettings] = {
    # Contrast-enhanced CT of liver metastases: 1 mm isotropic, HU range [-1000, 400],
    # fixed bin size 25 HU from -1000 HU (so that grey levels mean the same at every visit).
    "ct_default": RadiomicsSettings(),
    # IBSI-1 manual, digital phantom (section 5.1): no interpolation, no re-segmentation,
    # grey levels used as they are; IVH on the grey levels.
    "ibsi_digital_phantom": RadiomicsSettings(
        resample=False,
        round_intensities=False,
        resegment_range=None,
        discretisation="none",
        ivh_bin_width=None,
        autocorrelation_exact_max_voxels=None,
    ),
    # Like pyradiomics' defaults, for like-for-like comparisons: no interpolation, no
    # re-segmentation, bins of 25 HU whose edges are multiples of 25 HU (pyradiomics' edges),
    # and the features of pyradiomics' default feature classes.
    "pyradiomics_like": RadiomicsSettings(
        resample=False,
        round_intensities=False,
        resegment_range=None,
        bin_lower_bound=-1000.0,
        features=_pyradiomics_like_features(),
    ),
}


def check_settings(
    settings: RadiomicsSettings | str | None = None, **overrides: object
) -> RadiomicsSettings:
    """Validate ``settings`` (an object, a preset name or ``None``) plus keyword overrides.

    Returns
    -------
    RadiomicsSettings
        The cleaned settings.

    Raises
    ------
    ValueError
        Unknown preset or option, or a value outside its domain.
    TypeError
        ``settings`` of the wrong type.
    """
    if settings is None:
        settings = PRESETS["ct_default"]
        if not overrides:
            return settings  # validated once, below the table
    elif isinstance(settings, str):
        if settings not in PRESETS:
            raise ValueError(
                f"settings={settings!r} is not a radiomics preset; expected one of "
                f"{sorted(PRESETS)}, or a metevo.RadiomicsSettings object."
            )
        settings = PRESETS[settings]
        if not overrides:
            return settings  # validated once, below the table
    elif not isinstance(settings, RadiomicsSettings):
        raise TypeError(
            f"settings must be a preset name or a RadiomicsSettings, found "
            f"{type(settings).__name__}."
        )
    if overrides:
        known = {f.name for f in dataclasses.fields(RadiomicsSettings)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(
                f"unknown radiomics option(s) {unknown}; expected some of {sorted(known)}."
            )
        if "resegment_range" in overrides and overrides["resegment_range"] is not None:
            overrides["resegment_range"] = tuple(float(v) for v in overrides["resegment_range"])
        for key in ("families", "features"):
            value = overrides.get(key)
            if isinstance(value, str):
                overrides[key] = (value,)
            elif value is not None:
                overrides[key] = tuple(value)
        if "families" in overrides and "features" not in overrides:
            overrides["features"] = None  # a family selection replaces the preset's
        settings = dataclasses.replace(settings, **overrides)
    _validate(settings)
    return settings


def _validate(s: RadiomicsSettings) -> None:
    if s.discretisation not in _DISCRETISATIONS:
        raise ValueError(
            f"discretisation={s.discretisation!r} is not supported; expected one of "
            f"{list(_DISCRETISATIONS)}."
        )
    if not (math.isfinite(s.spacing_mm) and s.spacing_mm > 0):
        raise ValueError(f"spacing_mm must be a positive number of mm, found {s.spacing_mm!r}.")
    if not (math.isfinite(s.bin_width) and s.bin_width > 0):
        raise ValueError(f"bin_width must be positive, found {s.bin_width!r}.")
    if int(s.n_bins) != s.n_bins or s.n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, found {s.n_bins!r}.")
    if s.ivh_bin_width is not None and not s.ivh_bin_width > 0:
        raise ValueError(f"ivh_bin_width must be positive or None, found {s.ivh_bin_width!r}.")
    if s.glcm_distance != 1:
        raise ValueError(
            f"glcm_distance={s.glcm_distance!r} is not implemented; only distance 1 (IBSI "
            "default) is. Use glcm_distance=1."
        )
    m = s.autocorrelation_exact_max_voxels
    if m is not None and (isinstance(m, bool) or not isinstance(m, int) or m < 1):
        raise ValueError(
            "autocorrelation_exact_max_voxels must be a positive integer or None (always "
            f"exact), found {m!r}."
        )
    _validate_selection(s)
    if s.resegment_range is not None:
        if len(s.resegment_range) != 2 or not s.resegment_range[0] < s.resegment_range[1]:
            raise ValueError(
                f"resegment_range must be (low, high) with low < high, found "
                f"{s.resegment_range!r}; use None for no re-segmentation."
            )


def _validate_selection(s: RadiomicsSettings) -> None:
    for key in ("families", "features"):
        value = getattr(s, key)
        if value is not None and (
            not isinstance(value, tuple) or not all(isinstance(v, str) for v in value)
        ):
            raise TypeError(
                f"{key} must be a tuple of names (str), found {value!r}; e.g. "
                f"{key}={('glcm',) if key == 'families' else ('stat_mean',)}."
            )
    _validate_names(s.families, s.features)


@lru_cache(maxsize=64)
def _validate_names(families: tuple[str, ...] | None, features: tuple[str, ...] | None) -> None:
    from metevo.radiomics._catalog import feature_families

    catalog = feature_families()
    valid_families = list(dict.fromkeys(catalog.values()))
    for key, valid in (("families", valid_families), ("features", list(catalog))):
        value = families if key == "families" else features
        if value is None:
            continue
        unknown = [v for v in value if v not in valid]
        if unknown:
            close = sorted({c for v in unknown for c in difflib.get_close_matches(v, valid)})
            raise ValueError(
                f"unknown radiomics {key} {unknown}"
                + (f" (close names: {close})" if close else "")
                + f"; expected some of the {len(valid)} names in "
                f"metevo.feature_catalog()['{'feature' if key == 'features' else 'family'}']: "
                f"{valid}."
            )
    if families is not None or features is not None:
        if not _selection(families, features):
            raise ValueError("families= and features= select no feature; select at least one.")


for _preset in PRESETS.values():
    _validate(_preset)
