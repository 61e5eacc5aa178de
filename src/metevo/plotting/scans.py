"""Slice viewer: axial CT slices with liver and lesion contours."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["plot_scan", "plot_visits"]


def plot_scan(
    scan,
    *,
    slice_index: int | None = None,
    window: tuple[float, float] = (-100.0, 200.0),
    ax=None,
):
    """Draw one axial slice of a scan with its liver (cyan) and lesion (red) contours.

    Parameters
    ----------
    scan
        A :class:`metevo.cohort.Scan`.
    slice_index
        Axial slice (index along the image's third axis); default: the slice with the most
        lesion voxels (the middle slice when the mask is empty).
    window
        Display window in HU (default: a soft-tissue window).
    ax
        Matplotlib Axes; a new figure when ``None``.

    Returns
    -------
    matplotlib.axes.Axes
    """
    import matplotlib.pyplot as plt
    import SimpleITK as sitk

    image = sitk.GetArrayFromImage(scan.image())
    lesion = sitk.GetArrayFromImage(scan.lesion_mask()) > 0
    liver_img = scan.liver_mask()
    liver = sitk.GetArrayFromImage(liver_img) > 0 if liver_img is not None else None
    if slice_index is None:
        per_slice = lesion.sum(axis=(1, 2))
        slice_index = int(np.argmax(per_slice)) if per_slice.any() else image.shape[0] // 2
    if not 0 <= slice_index < image.shape[0]:
        raise ValueError(
            f"slice_index {slice_index} is outside the scan ({image.shape[0]} axial slices)."
        )
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4))
    sx, sy = scan.header()["spacing"][:2]
    extent = (0, image.shape[2] * sx, image.shape[1] * sy, 0)
    ax.imshow(image[slice_index], cmap="gray", vmin=window[0], vmax=window[1], extent=extent)
    if liver is not None and liver[slice_index].any():
        ax.contour(liver[slice_index], levels=[0.5], colors="cyan", linewidths=0.8, extent=(0, extent[1], 0, extent[2]), origin="upper")
    if lesion[slice_index].any():
        ax.contour(lesion[slice_index], levels=[0.5], colors="red", linewidths=1.0, extent=(0, extent[1], 0, extent[2]), origin="upper")
    ax.set_title(f"{scan.timepoint} {scan.date} (slice {slice_index})", fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    return ax


def plot_visits(patient, *, axes: Sequence | None = None, window: tuple[float, float] = (-100.0, 200.0)):
    """One axial slice per visit (through that visit's largest lesion area), side by side.

    Returns the array of Axes.
    """
    import matplotlib.pyplot as plt

    n = len(patient.scans)
    if axes is None:
        _, axes = plt.subplots(1, n, figsize=(2.6 * n, 2.8), constrained_layout=True)
    axes = np.atleast_1d(np.asarray(axes)).ravel()
    if axes.size < n:
        raise ValueError(f"axes holds {axes.size} Axes; the patient has {n} visits.")
    for ax, scan in zip(axes, patient.scans, strict=False):
        plot_scan(scan, ax=ax, window=window)
    return axes
