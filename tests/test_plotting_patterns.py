"""Tests of metevo.plotting.patterns: each figure draws what its table holds."""

from __future__ import annotations

import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from metevo.exceptions import NotFittedError, StatisticsWarning  # noqa: E402
from metevo.patterns import (
    EvolutionPatterns,
    lesion_pattern_mix,  # noqa: E402
)
from metevo.plotting import patterns as pp  # noqa: E402
from metevo.plotting._labels import column_label  # noqa: E402
from metevo.survival import cross_validated_patterns, pattern_survival, response_association


@pytest.fixture(scope="module")
def fitted():
    from metevo.datasets import make_synthetic_trajectories

    data = make_synthetic_trajectories(200, seed=3)
    traj = data["patient_trajectories"]
    model = EvolutionPatterns(3, landmark_days=112, n_bootstrap=2, random_state=0).fit(traj)
    cv = cross_validated_patterns(model, traj, n_splits=3)
    cv["landmark_days"] = 112.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticsWarning)
        surv = pattern_survival(cv, data["clinical"], trajectories=traj)
    assoc = response_association(model.patterns_, None, data["clinical"])
    yield model, surv, assoc, data
    plt.close("all")


def test_trajectory_figures(fitted):
    model, *_ = fitted
    fig = pp.plot_pattern_trajectories(model, max_lines=5)
    axes = [a for a in fig.axes if a.get_visible()]
    assert len(axes) == model.n_patterns_
    assert [a.get_title().split(" (")[0] for a in axes] == model.names_
    # 5 member lines + centroid (solid) + centroid (dashed) per panel
    assert all(len(a.lines) >= 7 for a in axes)
    ax = pp.plot_pattern_centroids(model)
    assert [t.get_text().split(" (")[0] for t in ax.get_legend().get_texts()] == model.names_
    assert ax.get_yscale() == "log"
    with pytest.raises(NotFittedError, match="fitted"):
        pp.plot_pattern_centroids(EvolutionPatterns())


def test_selection_km_forest_heatmap(fitted, tmp_path):
    model, surv, assoc, _ = fitted
    fig = pp.plot_pattern_selection(model.selection_)
    assert len(fig.axes) == 3
    ax = pp.plot_km(surv.km, order=model.names_)
    first = surv.km[surv.km["group"] == model.names_[0]].sort_values("time_days")
    line = ax.lines[0]
    np.testing.assert_allclose(line.get_ydata(), first["survival"])
    texts = [t.get_text() for t in ax.texts]
    assert str(int(first["at_risk"].iloc[0])) in texts
    assert ax.get_legend().get_title().get_text().startswith("log-rank p = ")
    ax = pp.plot_forest(surv.cox)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == [t if ":" in t else column_label(t) for t in surv.cox["term"]]
    assert "baseline RECIST target sum (mm)" in labels
    ax = pp.plot_response_heatmap(assoc, "arm")
    assert "descriptive" in ax.get_title()
    with pytest.raises(ValueError, match="not in the association table"):
        pp.plot_response_heatmap(assoc, "best_response")
    paths = pp.save_figure(fig, tmp_path / "sel")
    assert [p.suffix for p in paths] == [".png", ".pdf"] and all(
        p.stat().st_size > 0 for p in paths
    )


def test_lesion_mix(fitted):
    *_, data = fitted
    mix = lesion_pattern_mix(data["lesion_trajectories"], 3)
    assert (mix["heterogeneity"].between(0, 1)).all()
    assert mix["n_lesions"].sum() > 0
    ax = pp.plot_lesion_mix(mix, max_patients=10)
    assert len(ax.get_yticklabels()) == min(10, len(mix))
