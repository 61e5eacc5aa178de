"""Per-patient trajectory panel: size, count and density/texture over time."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from metevo.plotting._labels import column_label
from metevo.plotting._palette import CHANGE_COLORS

__all__ = ["plot_trajectory_panel"]


def plot_trajectory_panel(
    lesion_traj: pd.DataFrame,
    patient_traj: pd.DataFrame | None = None,
    *,
    patient_id: str | None = None,
    feature: str = "cm_joint_entr_3d_avg",
    axes: Sequence | None = None,
):
    """Draw one patient's trajectories in four panels and return the Axes.

    Panels: (1) axial longest diameter per track, (2) volume per track (log scale), (3) lesion
    counts (all, new, disappeared) when ``patient_traj`` is given, (4) mean HU per track and,
    dashed, ``feature`` of each track. One line per track; a track's first point is a star when
    it is a new lesion (appears after the first visit), and a visit where the track has no lesion
    (vanished) is drawn as a cross at 0.

    Parameters
    ----------
    lesion_traj
        ``metevo.trajectories(..., level="lesion")`` (one or several patients).
    patient_traj
        ``metevo.trajectories(..., level="patient")`` for the count panel, or ``None``.
    patient_id
        Which patient to draw (default: the first in ``lesion_traj``).
    feature
        Radiomic feature of the fourth panel (a column of ``lesion_traj``).
    axes
        Four Matplotlib Axes; a new 2×2 figure when ``None``.

    Returns
    -------
    numpy.ndarray of matplotlib.axes.Axes
    """
    import matplotlib.pyplot as plt

    from metevo.tracking import track_palette

    if lesion_traj.empty:
        raise ValueError("lesion_traj is empty: nothing to draw.")
    pid = patient_id if patient_id is not None else str(lesion_traj["patient_id"].iloc[0])
    lt = lesion_traj[lesion_traj["patient_id"] == pid]
    if lt.empty:
        raise ValueError(
            f"no rows for patient {pid!r}; patients present: "
            f"{', '.join(map(str, lesion_traj['patient_id'].unique()[:10]))}."
        )
    if axes is None:
        fig, axes = plt.subplots(2, 2, figsize=(11, 7), sharex=True, constrained_layout=True)
    axes = np.asarray(axes).ravel()
    if axes.size != 4:
        raise ValueError(f"axes must hold 4 Axes; got {axes.size}.")
    first_day = lt["days"].min()
    tracks = sorted(lt["track_id"].unique())
    palette = track_palette(tracks)
    for track in tracks:
        t = lt[lt["track_id"] == track].sort_values("days")
        color = palette[track]
        for ax, col in ((axes[0], "axial_ld_mm"), (axes[1], "volume_ml"), (axes[3], "mean_hu")):
            ax.plot(t["days"], t[col], "-o", color=color, ms=4, label=f"track {track}")
            gone = t[~t["present"].astype(bool)]
            if col != "mean_hu" and len(gone):
                ax.plot(gone["days"], np.zeros(len(gone)), "x", color=color, ms=8, mew=2)
            if t["days"].iloc[0] > first_day:
                ax.plot(t["days"].iloc[:1], t[col].iloc[:1], "*", color=color, ms=13)
        if feature in t.columns:
            twin = axes[3]._metevo_twin if hasattr(axes[3], "_metevo_twin") else axes[3].twinx()
            axes[3]._metevo_twin = twin
            twin.plot(t["days"], t[feature], "--", color=color, alpha=0.7)
            twin.set_ylabel(f"{column_label(feature)} (dashed)")
    axes[0].set_ylabel("axial longest diameter (mm)")
    axes[1].set_ylabel("volume (ml)")
    if (lt["volume_ml"] > 0).any():
        axes[1].set_yscale("symlog", linthresh=0.1)
    axes[3].set_ylabel("mean density (HU)")
    if patient_traj is not None and len(patient_traj):
        pt = patient_traj[patient_traj["patient_id"] == pid].sort_values("days")
        axes[2].plot(pt["days"], pt["n_lesions"], "-o", color="black", label="lesions")
        axes[2].bar(pt["days"] - 3, pt["n_new_lesions"], width=6, color=CHANGE_COLORS["new"], label="new")
        axes[2].bar(pt["days"] + 3, pt["n_disappeared_lesions"], width=6, color=CHANGE_COLORS["disappeared"], label="disappeared")
        axes[2].legend(frameon=False, fontsize=8)
    else:
        axes[2].text(0.5, 0.5, "patient-level table not given", ha="center", va="center", transform=axes[2].transAxes)
    axes[2].set_ylabel("number of lesions")
    from matplotlib.ticker import MaxNLocator

    axes[2].yaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in axes[2:]:
        ax.set_xlabel("days since first scan")
    if len(tracks) <= 12:
        axes[0].legend(frameon=False, fontsize=8, ncol=2)
    else:
        axes[0].text(0.99, 0.98, f"{len(tracks)} tracks (colours as in the lesion graph)",
                     transform=axes[0].transAxes, ha="right", va="top", fontsize=8)
    axes[0].set_title(f"patient {pid}: lesion tracks (★ new, × vanished)", loc="left", fontsize=10)
    return axes
