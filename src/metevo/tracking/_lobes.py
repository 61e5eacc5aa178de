"""Separable lesions inside one connected component (RECIST 1.1 coalescing lesions).

Two lesions that touch form one connected component of a binary mask. RECIST 1.1 (Eisenhauer
et al. 2009, appendix I, "lesions that split or coalesce on treatment") measures coalescing
lesions individually *as long as a plane between them can be kept*, and measures the coalesced
lesion as one only when they "have truly coalesced such that they are no longer separable".

On a mask, "a plane between them" is a waist: the Euclidean distance map (distance of every
voxel to the background, in mm) has one maximum per lesion, and the ridge between two maxima
drops to the radius of the neck that joins them. A component is separable when its distance map
has at least two regional maxima whose *dynamic* (height above the highest saddle that joins
them to a higher maximum) is at least the waist depth; a watershed of the distance map from those
maxima splits it into its lobes, and each lobe is measured like a lesion.

The waist depth is ``max(SEPARABLE_DEPTH_MM, in-plane pixel size)``: the neck must be narrower
than the smaller lesion by at least one pixel on each side (otherwise no plane between them can
be seen on the image) and by at least 1 mm, above the sub-voxel noise of a segmentation's
boundary. A single lesion's irregular outline (bumps of a few % of its radius) does not reach
it. On a grid coarser than the waist nothing is separable and the component is measured as one.
Two lesions lie *side by side*: a maximum counts as a lesion of its own only when each centre
(maximum) lies outside the other's inscribed ball (centres farther apart than the larger
radius); a second maximum inside the first one's ball is a ripple of one lesion's distance map
(on 2.5 mm slices a bumpy lesion's flat top and bottom make such ripples).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

#: Minimum dynamic (mm) of a distance-map maximum for a lobe to count as a separate lesion (at
#: least one in-plane pixel, see the module docstring).
SEPARABLE_DEPTH_MM = 1.0
#: Lobes whose inscribed radius is below this (mm) are not lesions of their own (a 5 mm lesion
#: is RECIST's smallest measurable size on thin slices).
MIN_LOBE_RADIUS_MM = 2.5


def lobe_labels(
    piece: np.ndarray,
    spacing_zyx: np.ndarray,
    *,
    depth_mm: float | None = None,
    min_radius_mm: float = MIN_LOBE_RADIUS_MM,
) -> tuple[np.ndarray, int]:
    """Split one connected component into its separable lobes.

    Parameters
    ----------
    piece
        Boolean (z, y, x) mask of one connected component (e.g. its bounding box).
    spacing_zyx
        Voxel size in mm, same axis order.
    depth_mm, min_radius_mm
        A lobe is a regional maximum of the distance map with a dynamic of at least ``depth_mm``
        (default: the larger of ``SEPARABLE_DEPTH_MM`` and the in-plane pixel size) and an
        inscribed radius of at least ``min_radius_mm``.

    Returns
    -------
    (labels, n)
        ``labels``: int32 array of ``piece``'s shape, 0 outside, 1..n the lobes (a watershed of
        the distance map); ``n`` the number of lobes (1 when the component is not separable,
        then ``labels`` is ``piece`` as 0/1).

    Examples
    --------
    >>> import numpy as np
    >>> z, y, x = np.mgrid[:9, :40, :70]
    >>> two = ((x - 20) ** 2 + (y - 20) ** 2 + (z - 4) ** 2 * 9 < 144) | (
    ...     (x - 45) ** 2 + (y - 20) ** 2 + (z - 4) ** 2 * 9 < 144)
    >>> lobe_labels(two, np.array([3.0, 1.0, 1.0]))[1]
    2
    >>> lobe_labels((x - 30) ** 2 + (y - 20) ** 2 < 144, np.array([3.0, 1.0, 1.0]))[1]
    1
    """
    from skimage.morphology import h_maxima
    from skimage.segmentation import watershed

    piece = np.asarray(piece, bool)
    spacing_zyx = np.asarray(spacing_zyx, float)
    if depth_mm is None:
        depth_mm = max(SEPARABLE_DEPTH_MM, float(spacing_zyx[1:].min()))
    one = piece.astype(np.int32)
    if not piece.any():
        return one, 0
    padded = np.pad(piece, 1)
    edt = ndimage.distance_transform_edt(padded, sampling=spacing_zyx)
    if float(edt.max()) < min_radius_mm + depth_mm:  # no room for two lobes
        return one, 1
    peaks = h_maxima(edt, depth_mm).astype(bool) & (edt >= min_radius_mm)
    markers, n = ndimage.label(peaks, structure=np.ones((3, 3, 3), bool))
    if n < 2:
        return one, 1
    # two lesions side by side: each centre lies outside the other's inscribed ball (a second
    # maximum inside the first lesion's ball is a ripple of one lesion's distance map, e.g. of
    # its flat top and bottom on thick slices)
    found = ndimage.maximum_position(edt, markers, range(1, n + 1))
    tops = sorted(
        ((float(edt[p]), np.asarray(p) * spacing_zyx, k + 1) for k, p in enumerate(found)),
        key=lambda t: -t[0],
    )
    kept: list[tuple[float, np.ndarray, int]] = []
    for r, c, k in tops:
        if all(np.linalg.norm(c - c2) > max(r, r2) for r2, c2, _ in kept):
            kept.append((r, c, k))
    if len(kept) < 2:
        return one, 1
    markers = np.where(np.isin(markers, [k for _, _, k in kept]), markers, 0)
    _, lobes = np.unique(watershed(-edt, markers, mask=padded), return_inverse=True)
    n = len(kept)
    lobes = lobes.reshape(padded.shape)
    return lobes[1:-1, 1:-1, 1:-1].astype(np.int32), int(n)
