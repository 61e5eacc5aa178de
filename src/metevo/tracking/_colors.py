"""One display colour per lesion track, shared by every figure, the report and the viewer.

The colour is fixed by the ``track_id`` alone (hues spread by the golden ratio, bright on a dark
CT), so the same track has the same colour in the lesion graph, the trajectory panel, the report's
CT crops and the JupyterLab viewer, whichever subset of tracks a view shows.
"""

from __future__ import annotations

import colorsys
from collections.abc import Iterable

__all__ = ["track_color", "track_palette"]

_GOLDEN = 0.618033988749895


def track_color(track_id: int) -> tuple[float, float, float]:
    """RGB colour (0-1) of one track: hues spread by the golden ratio, bright on dark CT."""
    hue = (0.07 + int(track_id) * _GOLDEN) % 1.0
    return colorsys.hsv_to_rgb(hue, 0.85, 0.95)


def track_palette(track_ids: Iterable[int]) -> dict[int, tuple[float, float, float]]:
    """``{track_id: RGB}`` for the given tracks (see :func:`track_color`)."""
    return {int(t): track_color(t) for t in track_ids}
