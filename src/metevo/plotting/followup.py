"""Figures of dynamic prediction and imaging schedules (metevo.followup).

* :func:`plot_risk_over_visits`: one patient's target sum beside the predicted risk at each visit;
* :func:`plot_performance_over_landmarks`: cross-validated AUC and Brier score per landmark,
  dynamic against static;
* :func:`plot_calibration`: predicted against observed risk by decile;
* :func:`plot_schedule_tradeoff`: detection delay against scans per year, one curve per pattern.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = [
    "plot_calibration",
    "plot_performance_over_landmarks",
    "plot_risk_over_visits",
    "plot_schedule_tradeoff",
    "save_follow_up_figure",
    "save_prediction_figures",
]


def _rows(table: pd.DataFrame, name: str, **equal) -> pd.DataFrame:
    sel = np.ones(len(table), bool)
    for col, value in equal.items():
        if col not in table.columns:
            raise ValueError(f"{name}: missing column {col!r}; found {list(table.columns)}.")
        sel &= (table[col] == value).to_numpy()
    out = table[sel]
    if out.empty:
        found = {c: sorted(map(str, table[c].unique()))[:10] for c in equal}
        raise ValueError(f"{name}: no rows with {equal}; values present: {found}.")
    return out


def _yerr(est, lo, hi) -> np.ndarray:
    """Error-bar lengths (a percentile interval may exclude its estimate; never negative)."""
    e = np.asarray(est, float)
    err = np.vstack([e - np.asarray(lo, float), np.asarray(hi, float) - e])
    return np.nan_to_num(np.clip(err, 0.0, None))


def plot_risk_over_visits(
    predictions: pd.DataFrame,
    trajectories: pd.DataFrame,
    *,
    patient_id: str,
    endpoint: str = "os",
    axes: Sequence | None = None,
):
    """One patient: target sum at each visit (left) and predicted risk after each visit (right).

    Parameters
    ----------
    predictions : DataFrame
        ``predictions`` of :func:`metevo.followup.predict`.
    trajectories : DataFrame
        ``patient_trajectories`` (``study_day``, ``target_sum_mm``, ``n_new_lesions``).
    patient_id : str
    endpoint : {"os", "pfs"}
    axes : two Axes, optional

    Returns
    -------
    numpy.ndarray of two Axes
    """
    import matplotlib.pyplot as plt

    p = _rows(predictions, "predictions", patient_id=patient_id, endpoint=endpoint)
    t = _rows(trajectories, "trajectories", patient_id=patient_id).sort_values("study_day")
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharex=True, constrained_layout=True)
    ax_size, ax_risk = np.asarray(axes).ravel()[:2]
    ax_size.plot(t["study_day"], t["target_sum_mm"], "o-", color="0.2")
    new = t[t["n_new_lesions"] > 0]
    ax_size.plot(new["study_day"], new["target_sum_mm"], "r*", ms=12, label="new lesion")
    for day, label in zip(t["study_day"], t["timepoint"], strict=True):
        ax_size.annotate(
            str(label),
            (day, 0),
            xycoords=("data", "axes fraction"),
            xytext=(0, 3),
            textcoords="offset points",
            ha="center",
            fontsize=7,
        )
    ax_size.set(
        xlabel="days from treatment start",
        ylabel="target sum (mm)",
        title=f"{patient_id}: tumour burden",
    )
    if len(new):
        ax_size.legend(loc="best", fontsize=8)
    for horizon, grp in p.groupby("horizon_days"):
        grp = grp.sort_values("landmark_days")
        months = horizon / 30.4375
        line = ax_risk.plot(grp["landmark_days"], grp["risk"], "o-", label=f"{months:.0f} months")[
            0
        ]
        ax_risk.fill_between(
            grp["landmark_days"],
            grp["risk_lower"],
            grp["risk_upper"],
            color=line.get_color(),
            alpha=0.2,
        )
        if "static_risk" in grp.columns:
            ax_risk.plot(grp["landmark_days"], grp["static_risk"], ":", color=line.get_color())
    word = "death" if endpoint == "os" else "progression or death"
    ax_risk.set(
        xlabel="days from treatment start (visit)",
        ylabel=f"risk of {word}",
        ylim=(0, 1),
        title="predicted risk after each visit (dotted: static model)",
    )
    ax_risk.legend(title="within", fontsize=8)
    return np.asarray([ax_size, ax_risk])


def plot_performance_over_landmarks(
    performance: pd.DataFrame,
    *,
    endpoint: str = "os",
    horizon_days: float = 365.0,
    axes: Sequence | None = None,
):
    """Cross-validated AUC (left) and Brier score (right) per landmark, dynamic vs static, with
    their 95 % bootstrap intervals."""
    import matplotlib.pyplot as plt

    p = _rows(
        performance,
        "performance",
        endpoint=endpoint,
        horizon_days=float(horizon_days),
        scope="landmark",
    )
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 3.6), constrained_layout=True)
    axes = np.asarray(axes).ravel()[:2]
    for ax, metric, label in zip(
        axes, ("auc", "brier"), ("time-dependent AUC", "Brier score"), strict=True
    ):
        for k, (model, style) in enumerate((("dynamic", "o-"), ("static", "s--"))):
            r = p[(p["metric"] == metric) & (p["model"] == model)].sort_values("landmark_days")
            x = r["landmark_days"] + (k - 0.5) * 3
            yerr = _yerr(r["estimate"], r["ci_lower"], r["ci_upper"])
            ax.errorbar(x, r["estimate"], yerr=yerr, fmt=style, capsize=3, label=model)
        if metric == "auc":
            ax.axhline(0.5, color="0.6", lw=0.8)
        ax.set(
            xlabel="landmark (days from treatment start)",
            ylabel=label,
            title=f"{endpoint.upper()}, {horizon_days:g}-day horizon",
        )
        ax.legend(fontsize=8)
    return axes


def plot_calibration(
    calibration: pd.DataFrame,
    *,
    endpoint: str = "os",
    horizon_days: float = 365.0,
    landmarks: Sequence[float] | None = None,
    ax=None,
):
    """Observed against predicted risk by decile (cross-validated), one series per landmark."""
    import matplotlib.pyplot as plt

    c = _rows(calibration, "calibration", endpoint=endpoint, horizon_days=float(horizon_days))
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 4.5), constrained_layout=True)
    for s, grp in c.groupby("landmark_days"):
        if landmarks is not None and s not in set(map(float, landmarks)):
            continue
        ax.plot(grp["predicted_risk"], grp["observed_risk"], "o-", ms=4, label=f"day {s:g}")
    ax.plot([0, 1], [0, 1], color="0.6", lw=0.8)
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1),
        xlabel="predicted risk",
        ylabel="observed risk (1 - KM)",
        title=f"calibration: {endpoint.upper()} within {horizon_days:g} days",
    )
    ax.legend(title="landmark", fontsize=7)
    return ax


def plot_schedule_tradeoff(
    follow_up: pd.DataFrame,
    *,
    statistic: str = "median",
    patterns: Sequence[str] | None = None,
    ax=None,
):
    """Detection delay against scans per patient-year: one curve per pattern, schedules as points.

    ``statistic`` is ``"median"`` or ``"p90"`` (delay percentile); error bars are the 95 %
    bootstrap intervals. Adaptive schedules are drawn as open markers off the curve.
    """
    import matplotlib.pyplot as plt

    if statistic not in ("median", "p90"):
        raise ValueError(f"statistic: expected 'median' or 'p90', found {statistic!r}.")
    col = f"{statistic}_delay_days"
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 4.5), constrained_layout=True)
    names = patterns if patterns is not None else sorted(follow_up["pattern"].unique())
    for name in names:
        g = _rows(follow_up, "follow_up", pattern=name)
        fixed = g[g["interval_days"].notna()].sort_values("scans_per_year")
        line = ax.errorbar(
            fixed["scans_per_year"],
            fixed[col],
            yerr=_yerr(fixed[col], fixed[f"{col[:-5]}_ci_lower"], fixed[f"{col[:-5]}_ci_upper"]),
            fmt="o-",
            capsize=2,
            lw=2.5 if name == "all" else 1.2,
            label=name,
        )
        color = line[0].get_color()
        for _, r in fixed.iterrows():
            ax.annotate(
                f"{r['interval_days'] / 7:g} w",
                (r["scans_per_year"], r[col]),
                xytext=(3, 3),
                textcoords="offset points",
                fontsize=6,
                color=color,
            )
        adaptive = g[g["interval_days"].isna()]
        ax.plot(adaptive["scans_per_year"], adaptive[col], "D", mfc="none", color=color, ms=7)
    ax.axhline(56, color="0.6", lw=0.8, ls=":")
    ax.set(
        xlabel="scans per patient-year",
        ylabel=f"{statistic} detection delay (days)",
        title="imaging schedules: delay vs scans (open diamonds: adaptive)",
    )
    ax.legend(fontsize=7, title="pattern")
    return ax


def _save(ax, path) -> object:
    import matplotlib.pyplot as plt

    fig = (ax[0] if isinstance(ax, np.ndarray) else ax).figure
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def save_prediction_figures(result, trajectories: pd.DataFrame, fig_dir) -> list:
    """Write the prediction figures of a :class:`~metevo.followup.PredictionResult` as PNG:
    ``prediction_patient`` (the patient with most visits), ``prediction_performance`` and
    ``prediction_calibration`` (OS when predicted, the longest horizon)."""
    from pathlib import Path

    fig_dir = Path(fig_dir)
    fig_dir.mkdir(parents=True, exist_ok=True)
    pred, perf = result.predictions, result.performance
    ep = "os" if "os" in set(pred["endpoint"]) else str(pred["endpoint"].iloc[0])
    horizon = float(pred["horizon_days"].max())
    pid = pred[pred["endpoint"] == ep]["patient_id"].value_counts().index[0]
    paths = [
        _save(
            plot_risk_over_visits(pred, trajectories, patient_id=pid, endpoint=ep),
            fig_dir / "prediction_patient.png",
        )
    ]
    if not perf.empty and ((perf["endpoint"] == ep) & (perf["horizon_days"] == horizon)).any():
        paths.append(
            _save(
                plot_performance_over_landmarks(perf, endpoint=ep, horizon_days=horizon),
                fig_dir / "prediction_performance.png",
            )
        )
        paths.append(
            _save(
                plot_calibration(result.calibration, endpoint=ep, horizon_days=horizon),
                fig_dir / "prediction_calibration.png",
            )
        )
    return paths


def save_follow_up_figure(table: pd.DataFrame, fig_dir):
    """Write the delay-vs-scans trade-off of a ``follow_up`` table as
    ``follow_up_tradeoff.png``."""
    from pathlib import Path

    fig_dir = Path(fig_dir)
    fig_dir.mkdir(parents=True, exist_ok=True)
    return _save(plot_schedule_tradeoff(table), fig_dir / "follow_up_tradeoff.png")
