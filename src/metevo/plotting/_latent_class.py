"""Figures of the latent-class trajectory model: why k was chosen, and the class courses."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

__all__ = ["plot_class_courses", "plot_latent_class_selection"]


def plot_latent_class_selection(
    selection: pd.DataFrame, *, axes: Sequence[plt.Axes] | None = None
) -> plt.Figure:
    """BIC and ICL, relative entropy and smallest class against k (``selection_`` table).

    Filled markers are eligible k, open markers k refused for a too small class; the dashed
    line is the chosen k and the figure title says why it was chosen (the ``reason`` of the
    selected row).
    """
    panels = [
        (("bic", "icl"), "information criterion (lower is better)"),
        (("relative_entropy", "appa_min"), "classification quality"),
        (("smallest_class_share",), "smallest class (share of patients)"),
    ]
    if axes is None:
        fig, axs = plt.subplots(1, 3, figsize=(10.0, 3.2), constrained_layout=True)
        axes = list(axs)
    else:
        axes = list(axes)
        fig = axes[0].figure
    k = selection["k"].to_numpy()
    ok = selection["eligible"].to_numpy(bool)
    chosen = selection.loc[selection["selected"], "k"]
    labels = {
        "bic": "BIC",
        "icl": "ICL",
        "relative_entropy": "relative entropy",
        "appa_min": "lowest APPA",
        "smallest_class_share": "smallest class",
    }
    for ax, (cols, title) in zip(axes, panels, strict=False):
        for j, col in enumerate(cols):
            colour = f"C{j}"
            y = selection[col].to_numpy(float)
            ax.plot(k, y, color=colour, lw=1.2, label=labels[col])
            ax.scatter(k[ok], y[ok], color=colour, zorder=3, s=24)
            ax.scatter(
                k[~ok],
                y[~ok],
                facecolors="white",
                edgecolors=colour,
                zorder=3,
                s=24,
                label=f"{labels[col]}: class too small" if (~ok).any() else None,
            )
        for kk in chosen:
            ax.axvline(kk, color="0.3", ls="--", lw=1)
        ax.set_xticks(k)
        ax.set_xlabel("number of classes k")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=7, frameon=False)
    reason = selection.loc[selection["selected"], "reason"]
    if len(reason):
        fig.suptitle(f"k = {int(chosen.iloc[0])}, {reason.iloc[0]}", fontsize=9)
    return fig


def plot_class_courses(model: Any, *, ax: plt.Axes | None = None) -> plt.Axes:
    """Mean course of each class (ratio to baseline, log axis) up to the model's horizon,
    with the class name, size and APPA in the legend."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 3.8), constrained_layout=True)
    days = model._grid()
    curves = model._curve(model.coef_, days)
    curves = curves - curves[:, :1]
    for c, row in model.classes_.iterrows():
        ax.plot(
            days,
            np.exp(curves[c]),
            lw=2,
            label=f"{row['pattern']} (n={row['n_patients']}, APPA {row['appa']:.2f})",
        )
    ax.set_yscale("log")
    for ref in (0.7, 1.2):
        ax.axhline(ref, color="0.7", lw=0.8, ls=":")
    ax.set_xlabel("days since treatment start")
    ax.set_ylabel("target sum / baseline")
    horizon = model.horizon_days_
    ax.set_title(
        "latent classes, full follow-up"
        + (f" (horizon {horizon:.0f} days)" if horizon is not None else ""),
        fontsize=10,
    )
    ax.legend(fontsize=7, frameon=False)
    return ax
