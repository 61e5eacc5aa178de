"""Slice viewer: axial CT slices with liver and lesion contours.

:func:`plot_slice` draws one axial slice of an image (any window, optional crop) with each
lesion's contour in its track colour; :func:`plot_scan` one scan of a cohort; :func:`plot_visits`
the same anatomy at every visit of a patient, followed through the lesion graph's registration.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["plot_scan", "plot_slice", "plot_visits"]

#: Soft-tissue window for liver lesions (HU), the report's default.
LIVER_WINDOW = (-150.0, 250.0)


def plot_slice(
    image,
    slice_index: int,
    *,
    labels=None,
    colors: Mapping[int, Any] | None = None,
    liver=None,
    center: tuple[float, float] | None = None,
    fov_mm: float | None = None,
    window: tuple[float, float] = LIVER_WINDOW,
    ax=None,
    linewidth: float = 1.2,
):
    """Draw axial slice ``slice_index`` of a SimpleITK image with label contours.

    Parameters
    ----------
    image
        CT (SimpleITK image, HU).
    slice_index
        Index along the image's third (z) axis.
    labels
        Lesion instance labels on the image grid (UInt32, 0 = background), or None.
    colors
        ``{label: colour}``; a label missing here is drawn in yellow.
    liver
        Liver mask on the image grid (white dashed contour), or None.
    center
        ``(x, y)`` voxel index to centre a crop on; with ``fov_mm``.
    fov_mm
        Width of the square crop in mm (None: the whole slice).
    window
        Display window (HU); default -150/250.
    ax
        Matplotlib Axes (a new 4x4-inch figure when None).

    The slice is shown in radiological convention (patient's right on the left, anterior up)
    when the image axes are aligned with the patient's; an image stored RAS is flipped for
    display.

    Returns
    -------
    matplotlib.axes.Axes
    """
    import matplotlib.pyplot as plt
    import SimpleITK as sitk

    nz = image.GetSize()[2]
    if not 0 <= slice_index < nz:
        raise ValueError(f"slice_index {slice_index} is outside the image ({nz} axial slices).")
    arr = sitk.GetArrayViewFromImage(image)[slice_index]
    sx, sy = image.GetSpacing()[:2]
    ny, nx = arr.shape
    ys, xs = slice(0, ny), slice(0, nx)
    if fov_mm is not None:
        cx, cy = center if center is not None else (nx / 2, ny / 2)
        hx, hy = fov_mm / 2 / sx, fov_mm / 2 / sy
        x0 = int(np.clip(round(cx - hx), 0, max(nx - 1, 0)))
        y0 = int(np.clip(round(cy - hy), 0, max(ny - 1, 0)))
        xs = slice(x0, max(int(np.clip(round(cx + hx), 1, nx)), x0 + 1))
        ys = slice(y0, max(int(np.clip(round(cy + hy), 1, ny)), y0 + 1))
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4))
    d = image.GetDirection()
    # radiological display: patient's right on the viewer's left, anterior up (LPS rows/columns)
    flip_x = abs(d[0]) > 0.99 and d[0] < 0
    flip_y = abs(d[4]) > 0.99 and d[4] < 0

    def shown(a: np.ndarray) -> np.ndarray:
        a = a[ys, xs]
        return a[::-1 if flip_y else 1, ::-1 if flip_x else 1]

    crop = shown(arr)
    extent = (0, crop.shape[1] * sx, crop.shape[0] * sy, 0)
    ax.imshow(crop, cmap="gray", vmin=window[0], vmax=window[1], extent=extent, interpolation="nearest")
    # contour vertices at voxel centres, on the image's mm axes (y grows downwards)
    grid = ((np.arange(crop.shape[1]) + 0.5) * sx, (np.arange(crop.shape[0]) + 0.5) * sy)
    if liver is not None:
        lv = shown(sitk.GetArrayViewFromImage(liver)[slice_index]) > 0
        if lv.any() and not lv.all():
            ax.contour(*grid, lv, levels=[0.5], colors="white", linewidths=0.6, linestyles="dashed", alpha=0.7)
    if labels is not None:
        lab = shown(sitk.GetArrayViewFromImage(labels)[slice_index])
        for value in np.unique(lab[lab > 0]):
            color = (colors or {}).get(int(value), "yellow")
            piece = lab == value
            if piece.all():
                continue
            ax.contour(*grid, piece, levels=[0.5], colors=[color], linewidths=linewidth)
    ax.set_xticks([])
    ax.set_yticks([])
    return ax


def plot_scan(
    scan,
    *,
    slice_index: int | None = None,
    window: tuple[float, float] = LIVER_WINDOW,
    ax=None,
):
    """Draw one axial slice of a scan with its liver (white, dashed) and lesion (red) contours.

    Parameters
    ----------
    scan
        A :class:`metevo.cohort.Scan`.
    slice_index
        Axial slice (index along the image's third axis); default: the slice with the most
        lesion voxels (the middle slice when the mask is empty).
    window
        Display window in HU (default -150/250, soft tissue).
    ax
        Matplotlib Axes; a new figure when ``None``.

    Returns
    -------
    matplotlib.axes.Axes
    """
    import SimpleITK as sitk

    image = scan.image()
    lesion = scan.lesion_mask() > 0
    per_slice = sitk.GetArrayViewFromImage(lesion).sum(axis=(1, 2))
    if slice_index is None:
        slice_index = int(np.argmax(per_slice)) if per_slice.any() else image.GetSize()[2] // 2
    ax = plot_slice(
        image,
        slice_index,
        labels=sitk.Cast(lesion, sitk.sitkUInt32),
        colors={1: "red"},
        liver=scan.liver_mask(),
        window=window,
        ax=ax,
    )
    ax.set_title(f"{scan.timepoint} {scan.date} (slice {slice_index})", fontsize=9)
    return ax


def _invert_point(transform, target: np.ndarray, iterations: int = 30) -> np.ndarray:
    """The point q with transform(q) = target (fixed-point iteration; exact for translations)."""
    try:
        return np.asarray(transform.GetInverse().TransformPoint(tuple(map(float, target))))
    except RuntimeError:  # B-spline parts have no closed-form inverse
        q = np.asarray(target, float)
        for _ in range(iterations):
            q = q + (target - np.asarray(transform.TransformPoint(tuple(map(float, q)))))
        return q


def plot_visits(
    patient,
    graph=None,
    *,
    track_id: int | None = None,
    point: Sequence[float] | None = None,
    fov_mm: float | None = 160.0,
    window: tuple[float, float] = LIVER_WINDOW,
    axes: Sequence | None = None,
):
    """The same anatomy at every visit: one axial slice per visit, followed by registration.

    A reference point is chosen in the first visit (``point``, in mm; else the centroid of track
    ``track_id``; else of the track with the largest lesion at the first visit, or the image
    centre when there is none). At every visit the point is mapped through the lesion graph's
    registration (``graph.transforms_to_baseline``, inverted) and the slice through it is drawn,
    cropped to ``fov_mm`` around it, with each lesion's contour in its track colour
    (:func:`metevo.tracking.track_color`).

    Parameters
    ----------
    patient
        A :class:`metevo.cohort.Patient`.
    graph
        Its :class:`~metevo.tracking.LesionGraph` (built with :func:`metevo.lesion_graph` when None;
        that registers the visits, seconds per visit).
    track_id, point
        What to centre on (see above).
    fov_mm
        Width of the crop (None: the whole slice).
    window
        Display window (HU), default -150/250.
    axes
        One Axes per visit (a new row of panels when None).

    Returns
    -------
    numpy.ndarray of matplotlib.axes.Axes
    """
    import matplotlib.pyplot as plt

    from metevo.cohort import ScanReads
    from metevo.columns import Lesions as L
    from metevo.tracking import track_palette

    reads = ScanReads()
    if graph is None:
        from metevo.tracking import lesion_graph

        graph = lesion_graph(patient, reads=reads)
    scans = list(patient.scans)
    n = len(scans)
    if axes is None:
        _, axes = plt.subplots(1, n, figsize=(2.6 * n, 2.9), constrained_layout=True, squeeze=False)
    axes = np.atleast_1d(np.asarray(axes)).ravel()
    if axes.size < n:
        raise ValueError(f"axes holds {axes.size} Axes; patient {patient.patient_id} has {n} visits.")
    nodes = graph.nodes
    first = scans[0].timepoint
    to_base = graph.transforms_to_baseline

    def centroid(row) -> np.ndarray:
        return np.array([row[L.CENTROID_X_MM], row[L.CENTROID_Y_MM], row[L.CENTROID_Z_MM]], float)

    if point is not None:
        p0 = np.asarray(point, float)
        if p0.shape != (3,):
            raise ValueError(f"point must be (x, y, z) in mm; got {point!r}.")
    else:
        if track_id is None and len(nodes):
            at_first = nodes[nodes[L.TIMEPOINT] == first]
            pool = at_first if len(at_first) else nodes
            track_id = int(pool.sort_values(L.VOLUME_ML, ascending=False)[L.TRACK_ID].iloc[0])
        rows = nodes[nodes[L.TRACK_ID] == track_id] if track_id is not None else nodes.iloc[:0]
        if track_id is not None and rows.empty:
            raise ValueError(
                f"patient {patient.patient_id} has no track {track_id}; tracks: "
                f"{sorted(nodes[L.TRACK_ID].unique().tolist())}."
            )
        if len(rows):
            r = rows.iloc[0]
            tp = r[L.TIMEPOINT]
            c = centroid(r)
            p0 = np.asarray(to_base[tp].TransformPoint(tuple(c))) if tp in to_base else c
        else:
            img = reads.image(scans[0])
            p0 = np.asarray(img.TransformContinuousIndexToPhysicalPoint([(s - 1) / 2 for s in img.GetSize()]))
    palette = track_palette(nodes[L.TRACK_ID].unique()) if len(nodes) else {}
    for ax, scan in zip(axes, scans, strict=False):
        tp = scan.timepoint
        q = _invert_point(to_base[tp], p0) if tp in to_base else p0
        image = reads.image(scan)
        idx = image.TransformPhysicalPointToContinuousIndex(tuple(map(float, q)))
        k = int(np.clip(round(idx[2]), 0, image.GetSize()[2] - 1))
        here = nodes[nodes[L.TIMEPOINT] == tp]
        colors = {int(r[L.LESION_ID]): palette[int(r[L.TRACK_ID])] for _, r in here.iterrows()}
        plot_slice(
            image,
            k,
            labels=graph.instances.get(tp),
            colors=colors,
            liver=reads.liver_mask(scan),
            center=(idx[0], idx[1]),
            fov_mm=fov_mm,
            window=window,
            ax=ax,
        )
        ax.set_title(f"{tp} {scan.date} (slice {k})", fontsize=8)
    return axes
