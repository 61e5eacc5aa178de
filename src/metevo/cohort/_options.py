"""Cohort-wide options (mask kinds and labels, phase, baseline window, resampling)."""

from __future__ import annotations

from dataclasses import dataclass

from metevo.cohort import io as mio

__all__ = ["CohortOptions"]


@dataclass(frozen=True)
class CohortOptions:
    """Cohort-wide options; the manifest may override the mask options per row.

    Parameters
    ----------
    lesion_mask_kind
        ``"binary"`` (default), ``"instances"`` or ``"labels"`` (with ``lesion_label``).
    lesion_label
        Class value of lesions in a multi-class mask (LiTS/MSD: 2).
    liver_mask_kind
        Kind of the liver mask; default ``"labels"`` when ``liver_label`` is given, else
        ``"binary"``.
    liver_label
        Class value of the liver in a multi-class mask (LiTS/MSD: 1, TotalSegmentator: 5).
    phase
        Contrast phase analysed when a patient has several scans on one date; default
        ``"portal_venous"`` when the manifest has a ``phase`` column.
    baseline_window_days
        The baseline is the last scan at most this many days before ``treatment_start``.
    resample_masks
        Resample masks nearest-neighbour onto the image grid instead of raising
        :class:`~metevo.exceptions.GeometryError`.
    """

    lesion_mask_kind: str = "binary"
    lesion_label: int | None = None
    liver_mask_kind: str | None = None
    liver_label: int | None = None
    phase: str | None = None
    baseline_window_days: int = 28
    resample_masks: bool = False

    def __post_init__(self) -> None:
        for name in ("lesion_mask_kind", "liver_mask_kind"):
            kind = getattr(self, name)
            if kind is not None and kind not in mio.MASK_KINDS:
                raise ValueError(f"{name} must be one of {mio.MASK_KINDS}; got {kind!r}.")
        if self.lesion_mask_kind == "labels" and self.lesion_label is None:
            raise ValueError(
                "lesion_mask_kind='labels' needs lesion_label= (e.g. 2 for LiTS/MSD masks)."
            )
        if self.baseline_window_days < 0:
            raise ValueError(
                f"baseline_window_days must be >= 0; got {self.baseline_window_days}."
            )
