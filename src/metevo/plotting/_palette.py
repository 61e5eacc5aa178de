"""One palette: the same colour means the same thing in every metevo figure.

Colours come from the Okabe-Ito colour-blind-safe set (Okabe & Ito 2008, "Color Universal
Design"). Meaning is fixed across figures:

* **response** (RECIST CR/PR, responding patterns, disappeared lesions): greens;
* **stable** (SD, stable patterns): orange;
* **progression** (PD, progressing patterns, new lesions): vermilion;
* **response then relapse**: reddish purple;
* **mixed / dissociated response**: blue;
* not evaluable / missing / unknown: greys.

:func:`meaning_color` maps a response category or a pattern name (``"deep response"``,
``"mixed response then relapse"``, ``"progression 2"``) to its colour; :func:`pattern_colors`
colours a list of pattern names, giving repeated meanings distinguishable shades.
"""

from __future__ import annotations

import colorsys
from collections.abc import Sequence

from matplotlib.colors import to_rgb

__all__ = [
    "CHANGE_COLORS",
    "MEANING_COLORS",
    "RESPONSE_COLORS",
    "meaning_color",
    "meaning_of",
    "pattern_colors",
]

#: Okabe-Ito colours by meaning
MEANING_COLORS = {
    "complete response": "#006D2C",
    "response": "#009E73",
    "stable": "#E69F00",
    "progression": "#D55E00",
    "relapse": "#CC79A7",
    "mixed": "#0072B2",
    "other": "#56B4E9",
    "not evaluable": "#999999",
    "missing": "#DDDDDD",
}

#: RECIST 1.1 response categories
RESPONSE_COLORS = {
    "CR": MEANING_COLORS["complete response"],
    "PR": MEANING_COLORS["response"],
    "SD": MEANING_COLORS["stable"],
    "NON-CR/NON-PD": "#F0E442",
    "PD": MEANING_COLORS["progression"],
    "NE": MEANING_COLORS["not evaluable"],
    "MISSING": MEANING_COLORS["missing"],
}

#: lesion change classes of the lesion graph (new = progression, disappeared = response)
CHANGE_COLORS = {
    "lone": "#7f7f7f",
    "new": MEANING_COLORS["progression"],
    "disappeared": MEANING_COLORS["response"],
    "persistent": MEANING_COLORS["mixed"],
    "merged": MEANING_COLORS["relapse"],
    "split": MEANING_COLORS["stable"],
    "complex": "#8c564b",
}


#: words of a pattern name -> its meaning, checked in this order
_NAME_WORDS = (
    ("mixed", ("mixed", "dissociated")),
    ("relapse", ("relapse",)),
    ("progression", ("progress",)),
    ("complete response", ("complete", "deep response")),
    ("response", ("respon",)),
    ("stable", ("stable",)),
)


def meaning_of(name: str) -> str:
    """The meaning (a key of :data:`MEANING_COLORS`) of a response category or pattern name."""
    text = str(name).strip()
    if text.upper() in RESPONSE_COLORS:
        return {
            "CR": "complete response",
            "PR": "response",
            "SD": "stable",
            "PD": "progression",
            "NE": "not evaluable",
            "MISSING": "missing",
        }.get(text.upper(), "other")
    low = text.lower()
    for meaning, words in _NAME_WORDS:  # first match wins: "mixed response then relapse" is mixed
        if any(w in low for w in words):
            return meaning
    return "other"


def meaning_color(name: str) -> tuple[float, float, float]:
    """RGB colour of a response category or pattern name, by meaning."""
    return to_rgb(MEANING_COLORS[meaning_of(name)])


def _shade(rgb: tuple[float, float, float], step: int) -> tuple[float, float, float]:
    """The ``step``-th variant of a colour: alternately darker and lighter."""
    if step == 0:
        return rgb
    h, lum, s = colorsys.rgb_to_hls(*rgb)
    delta = 0.14 * ((step + 1) // 2) * (-1 if step % 2 else 1)
    return colorsys.hls_to_rgb(h, min(max(lum + delta, 0.15), 0.85), s)


def pattern_colors(names: Sequence[str]) -> dict[str, tuple[float, float, float]]:
    """``{name: RGB}`` by meaning; names sharing a meaning get distinct shades of its colour."""
    seen: dict[str, int] = {}
    out = {}
    for name in names:
        meaning = meaning_of(name)
        step = seen.get(meaning, 0)
        seen[meaning] = step + 1
        out[name] = _shade(to_rgb(MEANING_COLORS[meaning]), step)
    return out
