"""Figures of evolution patterns and their survival/response association.

Each function draws a fitted :class:`~metevo.patterns.EvolutionPatterns` or one of the tidy
tables (``pattern_selection``, ``survival_km``, ``survival_cox``, ``response_association``,
lesion mix) onto ``ax`` (created when None) and returns it; multi-panel figures take ``axes=``
and return the Figure. Nothing is shown; :func:`save_figure` writes PNG and PDF.

Burden is drawn as the ratio to baseline on a log axis (the model's log-ratio scale), with the
RECIST 1.1 reference lines at 0.7 (partial response) and 1.2 (progression).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.ticker import FuncFormatter

from metevo.plotting._labels import column_label, fit_label
from metevo.plotting._palette import pattern_colors
from metevo.plotting.survival import plot_forest, plot_km

__all__ = [
    "MIN_BAND_PATIENTS",
    "fit_label",
    "pattern_palette",
    "plot_forest",
    "plot_km",
    "plot_lesion_mix",
    "plot_pattern_centroids",
    "plot_pattern_members",
    "plot_pattern_selection",
    "plot_pattern_trajectories",
    "plot_response_heatmap",
    "save_figure",
    "write_pattern_figures",
]

_RATIO_TICKS = (0.1, 0.25, 0.5, 0.7, 1.0, 1.2, 1.5, 2.0, 3.0, 5.0)


#: fewest members for which the trajectory figure draws a "95 % of patients" band
MIN_BAND_PATIENTS = 10


def pattern_palette(names: Sequence[str]) -> dict[str, Any]:
    """Colour of each pattern name by its meaning (:mod:`metevo.plotting._palette`): responses
    green, stable orange, progression vermilion, relapse purple, mixed blue, in every figure."""
    return pattern_colors(names)


def _ratio_axis(ax: plt.Axes) -> None:
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    lo, hi = ax.get_ylim()
    ticks = _RATIO_TICKS if hi / max(lo, 1e-9) <= 20 else (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0)
    ax.set_yticks([t for t in ticks if lo <= t <= hi])
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    for ref, style in ((0.7, ":"), (1.2, "--")):
        ax.axhline(ref, color="0.5", lw=0.8, ls=style, zorder=0)


def _check_model(model: Any) -> None:
    if not hasattr(model, "labels_"):
        from metevo.exceptions import NotFittedError

        raise NotFittedError("plot a fitted EvolutionPatterns: call fit(trajectories) first.")


def plot_pattern_trajectories(
    model: Any,
    *,
    max_lines: int = 60,
    axes: Sequence[plt.Axes] | None = None,
    random_state: int = 0,
    title: str | None = None,
) -> plt.Figure:
    """Spaghetti plot per pattern: members' curves, centroid and 95 % band.

    The band is the pointwise 2.5-97.5 % range of the members still followed, drawn only for
    patterns with at least ``MIN_BAND_PATIENTS`` (10) members; the centroid is drawn dashed
    where fewer than half of the members are followed (their late values come from the
    survivors only). The figure title says which fit it shows (``title`` overrides).
    """
    _check_model(model)
    k = model.n_patterns_
    if axes is None:
        ncol = min(k, 3)
        nrow = int(np.ceil(k / ncol))
        fig, axs = plt.subplots(
            nrow,
            ncol,
            figsize=(3.6 * ncol, 3.0 * nrow),
            sharex=True,
            sharey=True,
            squeeze=False,
            constrained_layout=True,
        )
        axes = list(axs.ravel())
        for extra in axes[k:]:
            extra.set_visible(False)
    else:
        axes = list(axes)
        fig = axes[0].figure
    rng = np.random.default_rng(random_state)
    pal = pattern_palette(model.names_)
    days = model.grid_days_
    ratio = np.exp(model.curves_)
    for j, name in enumerate(model.names_):
        ax = axes[j]
        idx = np.flatnonzero(model.labels_ == j)
        show = rng.choice(idx, size=min(max_lines, idx.size), replace=False) if idx.size else idx
        for i in show:
            ax.plot(days, ratio[i], color=pal[name], alpha=0.25, lw=0.7)
        with np.errstate(all="ignore"):
            members = ratio[idx]
            enough = np.isfinite(members).sum(axis=0) >= 2
            lo = np.where(
                enough, np.nanpercentile(np.where(enough, members, 1.0), 2.5, axis=0), np.nan
            )
            hi = np.where(
                enough, np.nanpercentile(np.where(enough, members, 1.0), 97.5, axis=0), np.nan
            )
        if idx.size >= MIN_BAND_PATIENTS:
            ax.fill_between(
                days, lo, hi, color=pal[name], alpha=0.18, lw=0, label="95 % of patients"
            )
        center = np.exp(model.trajectory_centers_[j])
        ok = model.trajectory_support_[j] >= 0.5
        ax.plot(days, np.where(ok, center, np.nan), color="k", lw=2, label="centroid")
        ax.plot(days, center, color="k", lw=1.2, ls="--")
        ax.set_title(f"{name} (n={idx.size})")
        _ratio_axis(ax)
        ax.set_xlabel("days since treatment start")
    axes[0].set_ylabel(f"{column_label(model.value_column)}\nratio to baseline (log)")
    axes[0].legend(loc="lower left", fontsize=7, frameon=False)
    fig.suptitle(title or f"Evolution patterns, {fit_label(model)}", fontsize=10)
    return fig


def plot_pattern_centroids(model: Any, *, ax: plt.Axes | None = None) -> plt.Axes:
    """Centroid curves of all patterns on one axis (dashed where support < 50 %)."""
    _check_model(model)
    if ax is None:
        _, ax = plt.subplots(figsize=(5.0, 3.6), constrained_layout=True)
    pal = pattern_palette(model.names_)
    for j, name in enumerate(model.names_):
        center = np.exp(model.trajectory_centers_[j])
        ok = model.trajectory_support_[j] >= 0.5
        n = int((model.labels_ == j).sum())
        ax.plot(
            model.grid_days_,
            np.where(ok, center, np.nan),
            color=pal[name],
            lw=2,
            label=f"{name} (n={n})",
        )
        ax.plot(model.grid_days_, center, color=pal[name], lw=1, ls="--")
    _ratio_axis(ax)
    ax.set_xlabel("days since treatment start")
    ax.set_ylabel(f"{column_label(model.value_column)}, ratio to baseline")
    ax.legend(fontsize=8, frameon=False)
    ax.set_title(f"Pattern centroids, {fit_label(model)}", fontsize=10)
    return ax


def plot_pattern_members(
    patterns: pd.DataFrame,
    patient_trajectories: pd.DataFrame,
    *,
    value: str = "total_volume_rel_baseline",
    time: str = "study_day",
) -> plt.Figure:
    """Each pattern's members' curves from the tables (no fitted model needed).

    One panel per pattern of the ``patterns`` table: ``value`` (a ``*_rel_baseline`` column,
    value / baseline - 1) of every member over ``time`` from ``patient_trajectories``, drawn as
    the ratio to baseline (1 + value) on a log axis with the 0.7/1.2 reference lines, and the
    members' median per 8-week bin.
    """
    for name, table, cols in (
        ("patterns", patterns, ("patient_id", "pattern")),
        ("patient_trajectories", patient_trajectories, ("patient_id", value)),
    ):
        missing = [c for c in cols if c not in table]
        if missing:
            raise ValueError(f"the {name} table lacks column(s) {missing}.")
    if time not in patient_trajectories or patient_trajectories[time].isna().all():
        time = "days"
    assigned = patterns.dropna(subset=["pattern"])
    names = list(dict.fromkeys(assigned.sort_values("pattern_id")["pattern"])) if "pattern_id" in assigned else sorted(assigned["pattern"].unique())
    if not names:
        raise ValueError("no patient has a pattern: nothing to draw.")
    pal = pattern_palette(names)
    ncol = min(len(names), 3)
    nrow = int(np.ceil(len(names) / ncol))
    fig, axs = plt.subplots(nrow, ncol, figsize=(3.6 * ncol, 3.0 * nrow), sharex=True, sharey=True,
                            squeeze=False, constrained_layout=True)
    axes = list(axs.ravel())
    for extra in axes[len(names):]:
        extra.set_visible(False)
    traj = patient_trajectories.dropna(subset=[value, time])
    traj = traj.assign(_ratio=1.0 + traj[value].astype(float))
    traj = traj[traj["_ratio"] > 0]
    for ax, name in zip(axes, names, strict=False):
        members = assigned.loc[assigned["pattern"] == name, "patient_id"]
        sub = traj[traj["patient_id"].isin(members)]
        for _, grp in sub.sort_values(time).groupby("patient_id"):
            ax.plot(grp[time], grp["_ratio"], color=pal[name], alpha=0.6, lw=0.9, marker="o", ms=2)
        if len(sub):
            bins = (sub[time] // 56) * 56 + 28
            med = sub.groupby(bins)["_ratio"].median()
            ax.plot(med.index, med.to_numpy(), color="k", lw=2, label="median (8-week bins)")
        ax.set_title(f"{name} (n={members.nunique()})", fontsize=10)
        _ratio_axis(ax)
        ax.set_xlabel("days since treatment start" if time == "study_day" else "days since first scan")
    axes[0].set_ylabel(column_label(value).split(",")[0] + ",\nratio to baseline (log)")
    axes[0].legend(loc="lower left", fontsize=7, frameon=False)
    lm = patterns["landmark_days"].dropna() if "landmark_days" in patterns else pd.Series([])
    fig.suptitle(
        f"Evolution patterns, {fit_label(landmark_days=lm.iloc[0] if len(lm) else None)}",
        fontsize=10,
    )
    return fig


def plot_pattern_selection(
    selection: pd.DataFrame, *, axes: Sequence[plt.Axes] | None = None
) -> plt.Figure:
    """Silhouette, Calinski-Harabasz (and BIC) and bootstrap stability against k; the title
    says why k was chosen (``reason`` of the selected row). A latent-class model's table
    (``method`` "lcmm") is drawn by
    :func:`metevo.plotting._latent_class.plot_latent_class_selection` (BIC/ICL, entropy/APPA,
    smallest class)."""
    if "method" in selection and len(selection) and (selection["method"] == "lcmm").all():
        from metevo.plotting._latent_class import plot_latent_class_selection

        return plot_latent_class_selection(selection, axes=axes)
    panels = [("silhouette", "silhouette"), ("calinski_harabasz", "Calinski-Harabasz")]
    if selection["bic"].notna().any():
        panels.append(("bic", "BIC"))
    panels.append(("stability_ari_mean", "stability (bootstrap ARI)"))
    if axes is None:
        fig, axs = plt.subplots(
            1, len(panels), figsize=(2.8 * len(panels), 2.8), constrained_layout=True
        )
        axes = list(np.atleast_1d(axs))
    else:
        axes = list(axes)
        fig = axes[0].figure
    chosen = selection.loc[selection["selected"], "k"]
    for ax, (col, label) in zip(axes, panels, strict=False):
        ax.plot(selection["k"], selection[col], marker="o", color="0.2")
        if col == "stability_ari_mean" and "stability_ari_low" in selection:
            ax.fill_between(
                selection["k"],
                selection["stability_ari_low"],
                selection[col],
                color="0.6",
                alpha=0.3,
                lw=0,
                label="5th percentile",
            )
        for k in chosen:
            ax.axvline(k, color="C3", ls="--", lw=1)
        ax.set_xlabel("number of patterns k")
        ax.set_title(label, fontsize=10)
        ax.set_xticks(selection["k"])
    reason = selection.loc[selection["selected"], "reason"] if "reason" in selection else []
    if len(reason) and len(chosen):
        fig.suptitle(f"k = {int(chosen.iloc[0])}, {reason.iloc[0]}", fontsize=9)
    return fig


def plot_response_heatmap(
    association: pd.DataFrame,
    variable: str = "best_response",
    *,
    order: Sequence[str] | None = None,
    ax: plt.Axes | None = None,
) -> plt.Axes:
    """Pattern x response heatmap (row fractions, counts annotated) from ``response_association``."""
    d = association[association["variable"] == variable]
    if d.empty:
        raise ValueError(
            f"variable {variable!r} is not in the association table (variables: "
            f"{sorted(association['variable'].unique())})."
        )
    frac = d.pivot(index="pattern", columns="level", values="row_fraction")
    counts = d.pivot(index="pattern", columns="level", values="n")
    if order is not None:
        rows = [o for o in order if o in frac.index]
        frac, counts = frac.loc[rows], counts.loc[rows]
    if ax is None:
        _, ax = plt.subplots(
            figsize=(1.0 * frac.shape[1] + 3, 0.5 * frac.shape[0] + 1.5), constrained_layout=True
        )
    labels = counts.fillna(0).astype(int).astype(str)
    sns.heatmap(
        frac,
        annot=labels,
        fmt="",
        cmap="Blues",
        vmin=0,
        vmax=1,
        ax=ax,
        cbar_kws={"label": "fraction of pattern"},
    )
    row = d.iloc[0]
    ax.set_title(
        f"pattern x {variable}: {row['test']} p_adj = {row['p_adjusted']:.2g}, "
        f"V = {row['cramers_v']:.2f} (descriptive)",
        fontsize=8,
    )
    ax.set_xlabel(variable)
    ax.set_ylabel("pattern")
    return ax


def plot_lesion_mix(
    mix: pd.DataFrame, *, ax: plt.Axes | None = None, max_patients: int = 40
) -> plt.Axes:
    """Lesion-level pattern mix per patient (stacked bars), most heterogeneous first.

    ``mix`` has ``patient_id`` and one column of lesion counts per lesion pattern (the output
    of :func:`metevo.patterns.lesion_pattern_mix`), plus ``heterogeneity``.
    """
    cols = [
        c
        for c in mix.columns
        if c not in ("patient_id", "n_lesions", "heterogeneity", "dissociated_response")
    ]
    d = mix.sort_values(["heterogeneity", "patient_id"], ascending=[False, True]).head(max_patients)
    frac = d[cols].div(d[cols].sum(axis=1).replace(0, np.nan), axis=0).fillna(0)
    if ax is None:
        _, ax = plt.subplots(figsize=(6.0, 0.18 * len(d) + 1.5), constrained_layout=True)
    pal = pattern_palette(cols)
    left = np.zeros(len(d))
    y = np.arange(len(d))
    for c in cols:
        ax.barh(y, frac[c], left=left, color=pal[c], label=c, height=0.85)
        left += frac[c].to_numpy()
    ax.set_yticks(y)
    ax.set_yticklabels(d["patient_id"], fontsize=6)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("fraction of the patient's lesions")
    ax.legend(fontsize=7, frameon=False, loc="lower right")
    ax.set_title("lesion-level patterns per patient (most heterogeneous first)", fontsize=9)
    return ax


def save_figure(fig: plt.Figure, path: str | Path, *, dpi: int = 200) -> list[Path]:
    """Write ``path`` with suffixes ``.png`` and ``.pdf``; returns the two paths."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for suffix in (".png", ".pdf"):
        p = path.with_suffix(suffix)
        fig.savefig(p, dpi=dpi, bbox_inches="tight")
        out.append(p)
    return out


def _label_figure(fig: plt.Figure, label: str) -> None:
    """Put ``label`` (e.g. which cohort) above the figure's own title."""
    current = fig._suptitle.get_text() if fig._suptitle is not None else ""
    if current:
        fig.suptitle(f"{label}\n{current}", fontsize=9)
    else:
        fig.suptitle(label, fontsize=8, color="0.3")


def write_pattern_figures(
    out: Path,
    model: Any,
    tables: dict[str, pd.DataFrame],
    surv_model: Any = None,
    lesions: pd.DataFrame | None = None,
    *,
    label: str = "",
) -> list[Path]:
    """Draw every pattern figure and save it as PNG and PDF under ``out``.

    ``model``/``surv_model``/``lesions`` and ``tables`` are those of
    :func:`metevo.patterns.pattern_analysis` (figures are closed after saving). Every title
    says which fit it shows (full follow-up or landmark); ``label`` (e.g. the cohort) is put
    above each. The forest plot is not drawn when the Cox model was not fitted (too few
    events per parameter; ``survival_cox`` says why).
    """
    paths: list[Path] = []

    def save(fig: Any, name: str) -> None:
        if label:
            _label_figure(fig, label)
        paths.extend(save_figure(fig, out / name))
        plt.close(fig)

    save(plot_pattern_trajectories(model), "patterns_trajectories")
    save(plot_pattern_centroids(model).figure, "patterns_centroids")
    selection = plot_pattern_selection(tables["pattern_selection"])
    why = selection._suptitle.get_text() if selection._suptitle is not None else ""
    selection.suptitle(
        f"Choice of the number of patterns, {fit_label(model)}" + (f"\n{why}" if why else ""),
        fontsize=9,
    )
    save(selection, "pattern_selection")
    km, cox = tables["survival_km"], tables["survival_cox"]
    order = surv_model.names_ if surv_model is not None else None
    if len(km):
        save(plot_km(km, order=order).figure, "survival_km")
    if len(cox) and ("fitted" not in cox or cox["fitted"].astype(bool).all()):
        save(plot_forest(cox).figure, "survival_forest")
    assoc = tables["response_association"]
    for variable in ("best_response", "ets", "arm"):
        if variable in set(assoc.get("variable", [])):
            ax = plot_response_heatmap(assoc, variable, order=model.names_)
            ax.set_title(f"{ax.get_title()}\npatterns: {fit_label(model)}", fontsize=8)
            save(ax.figure, f"patterns_{variable}")
    if lesions is not None:
        from metevo.patterns import lesion_pattern_mix

        mix = lesion_pattern_mix(lesions)
        if len(mix):
            save(plot_lesion_mix(mix).figure, "lesion_pattern_mix")
    return paths
