"""Tests of metevo.plotting._latent_class: the selection figure shows what the table holds."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from metevo.plotting._latent_class import (  # noqa: E402
    plot_class_courses,
    plot_latent_class_selection,
)


def _selection() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "k": [1, 2, 3, 4],
            "bic": [300.0, 200.0, 150.0, 140.0],
            "icl": [300.0, 210.0, 170.0, 190.0],
            "relative_entropy": [1.0, 0.9, 0.85, 0.7],
            "appa_min": [1.0, 0.95, 0.9, 0.6],
            "smallest_class_share": [1.0, 0.4, 0.2, 0.01],
            "eligible": [True, True, True, False],
            "selected": [False, False, True, False],
            "reason": ["a", "b", "chosen: lowest BIC (150.0) among ...", "not eligible"],
        }
    )


def test_selection_figure_marks_chosen_k_refused_k_and_says_why():
    fig = plot_latent_class_selection(_selection())
    ax = fig.axes[0]
    vlines = [ln for ln in ax.lines if np.allclose(ln.get_xdata(), 3)]
    assert len(vlines) == 1  # the chosen k
    open_markers = [
        c for c in ax.collections if len(c.get_offsets()) and np.all(c.get_facecolor() == 1)
    ]
    assert [tuple(c.get_offsets()[:, 0]) for c in open_markers] == [(4.0,), (4.0,)]
    assert fig._suptitle.get_text().startswith("k = 3, chosen: lowest BIC")
    plt.close(fig)


def test_class_courses_start_at_ratio_one_and_name_each_class():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from test_latent_class import _planted

    from metevo.patterns._latent_class import LatentClassTrajectories

    table, _ = _planted(10, seed=12)
    model = LatentClassTrajectories(3, n_init=2, random_state=0).fit(table)
    ax = plot_class_courses(model)
    curves = [ln for ln in ax.lines if len(ln.get_xdata()) > 2]
    assert len(curves) == 3
    assert all(ln.get_ydata()[0] == 1.0 for ln in curves)
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert (
        texts[0].startswith(model.names_[0]) and f"n={model.classes_['n_patients'][0]}" in texts[0]
    )
    assert "horizon" in ax.get_title()
    plt.close(ax.figure)


def test_pattern_figures_take_the_latent_class_model_and_its_selection_table():
    """The cohort-level figures (run_patterns) draw a fitted LatentClassTrajectories as they
    draw k-means: members' curves from the baseline (ratio 1), one panel per class; the
    pattern_selection figure of an lcmm table is the latent-class one, titled with the reason;
    a k-means table's title gives its reason too (issue 13 item 2)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from test_latent_class import _planted

    from metevo.patterns._latent_class import LatentClassTrajectories
    from metevo.plotting import patterns as pp

    table, _ = _planted(10, seed=14)
    model = LatentClassTrajectories(k_range=(1, 3), n_init=2, random_state=0).fit(table)
    fig = pp.plot_pattern_trajectories(model, max_lines=3)
    axes = [a for a in fig.axes if a.get_visible()]
    assert [a.get_title().split(" (")[0] for a in axes] == model.names_
    member = axes[0].lines[0]
    assert member.get_xdata()[0] == 0 and member.get_ydata()[0] == 1.0
    plt.close(fig)
    fig = pp.plot_pattern_selection(model.selection_)
    reason = model.selection_.loc[model.selection_["selected"], "reason"].iloc[0]
    assert fig._suptitle.get_text() == f"k = {model.n_classes_}, {reason}"
    assert fig.axes[0].get_title() == "information criterion (lower is better)"
    plt.close(fig)
    kmeans = pd.DataFrame(
        {
            "method": "kmeans",
            "k": [2, 3],
            "silhouette": [0.5, 0.4],
            "calinski_harabasz": [10.0, 9.0],
            "bic": np.nan,
            "stability_ari_mean": [0.9, 0.8],
            "stability_ari_low": [0.8, 0.7],
            "selected": [True, False],
            "reason": ["chosen: best silhouette among ...", "silhouette 0.400 vs 0.500"],
        }
    )
    fig = pp.plot_pattern_selection(kmeans)
    assert fig._suptitle.get_text() == "k = 2, chosen: best silhouette among ..."
    plt.close(fig)
