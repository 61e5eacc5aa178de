"""Figures a journal would take: the state of the KM, forest and pattern figures (not pixels)."""

from __future__ import annotations

import colorsys
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_rgb  # noqa: E402

from metevo.exceptions import StatisticsWarning  # noqa: E402
from metevo.patterns import EvolutionPatterns  # noqa: E402
from metevo.plotting import patterns as pp  # noqa: E402
from metevo.plotting._palette import (  # noqa: E402
    CHANGE_COLORS,
    RESPONSE_COLORS,
    meaning_of,
    pattern_colors,
)
from metevo.plotting.survival import plot_forest, plot_km  # noqa: E402
from metevo.survival import cox_model, kaplan_meier  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def _km_table(landmark=168.0):
    rng = np.random.default_rng(0)
    n = 90
    group = np.repeat(["deep response", "stable", "progression"], [20, 40, 30])
    scale = pd.Series(group).map({"deep response": 900, "stable": 500, "progression": 200})
    time = np.ceil(rng.exponential(scale.to_numpy()))
    cens = rng.uniform(100, 1000, n)
    d = pd.DataFrame(
        {"pattern": group, "time_days": np.minimum(time, cens), "event": (time <= cens).astype(int)}
    )
    km, _, _ = kaplan_meier(d, "pattern", landmark_days=landmark)
    return km, d


def _overlap(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def test_km_legend_at_risk_table_censor_ticks_and_title():
    km, d = _km_table()
    order = ["deep response", "stable", "progression"]
    ax = plot_km(km, order=order)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    sizes = d["pattern"].value_counts()
    assert legend[:3] == [f"{g} (n={sizes[g]})" for g in order]
    assert "censored" in legend and "95 % CI" in legend  # 3 groups: bands drawn
    ticks = [t for t in ax.get_xticks() if 0 <= t <= ax.get_xlim()[1]]
    assert all(float(t).is_integer() for t in ticks)  # whole days
    counts = [t for t in ax.texts if t.get_text().isdigit()]
    assert len(counts) == len(order) * len(ticks)
    rows = {}
    for t in counts:
        rows.setdefault(t.get_position()[1], []).append(t.get_position()[0])
    assert all(sorted(xs) == pytest.approx(ticks) for xs in rows.values())
    # the counts are the numbers at risk at each tick, from the table
    first = d[d["pattern"] == order[0]]
    by_y = sorted(rows, reverse=True)
    top = sorted(
        (t for t in counts if t.get_position()[1] == by_y[0]), key=lambda t: t.get_position()[0]
    )
    assert [int(t.get_text()) for t in top] == [int((first["time_days"] >= x).sum()) for x in ticks]
    # row labels never collide with the counts
    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    labels = [t for t in ax.texts if t.get_text() in order]
    assert len(labels) == 3
    for lab in labels:
        for c in counts:
            assert not _overlap(lab.get_window_extent(renderer), c.get_window_extent(renderer))
    # censor ticks at the censoring times of each group
    cens = km[(km["group"] == order[1]) & (km["censored"] > 0)]["time_days"].to_numpy()
    marks = [ln for ln in ax.lines if ln.get_marker() == "|" and len(ln.get_xdata())]
    assert any(np.array_equal(np.asarray(m.get_xdata()), cens) for m in marks)
    assert "landmark at day 168" in ax.get_title()
    # more than three groups: no CI bands (they would overlap into a wash)
    km4 = pd.concat([km, km[km["group"] == "stable"].assign(group="mixed response")])
    ax = plot_km(km4)
    assert not ax.collections and "95 % CI" not in [
        t.get_text() for t in ax.get_legend().get_texts()
    ]
    assert "full follow-up" in plot_km(km.assign(landmark_days=np.nan)).get_title()


def test_forest_writes_hr_and_ci_beside_each_row_with_readable_ticks():
    _, d = _km_table()
    d["age"] = np.random.default_rng(1).normal(60, 8, len(d))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticsWarning)  # PH test note on planted data
        cox, _ = cox_model(
            d, ["pattern", "age"], reference={"pattern": "deep response"}, landmark_days=168
        )
    ax = plot_forest(cox)
    texts = [t.get_text() for t in ax.texts]
    assert texts[0] == "HR (95 % CI)"
    expected = [
        f"{r.hazard_ratio:.2f} ({r.ci_lower:.2f}–{r.ci_upper:.2f})" for r in cox.itertuples()
    ]
    assert texts[1:] == expected
    assert "landmark at day 168" in ax.get_title() and "out-of-fold" in ax.get_title()
    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    labels = [t for t in ax.get_xticklabels() if t.get_visible() and t.get_text()]
    assert len(labels) >= 2
    boxes = [t.get_window_extent(renderer) for t in labels]
    assert not any(_overlap(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])
    # a wide range (1e-18 .. 1e8, the old demo's Cox fit) still gives few, separate ticks
    wide = cox.assign(ci_lower=1e-18, ci_upper=1e8)
    ax = plot_forest(wide)
    ax.figure.canvas.draw()
    labels = [t for t in ax.get_xticklabels() if t.get_text()]
    assert len(labels) <= 7
    boxes = [t.get_window_extent(ax.figure.canvas.get_renderer()) for t in labels]
    assert not any(_overlap(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])


def test_forest_refuses_a_model_that_was_not_fitted():
    _, d = _km_table()
    small = d.iloc[::6]  # 15 patients: too few events for 2 parameters
    cox, cph = cox_model(small, ["pattern"], reference={"pattern": "deep response"})
    assert cph is None
    with pytest.raises(ValueError, match="no forest plot: the Cox model was not fitted: .* events"):
        plot_forest(cox)


def _hue(rgb) -> float:
    return colorsys.rgb_to_hls(*to_rgb(rgb))[0]


def test_one_palette_same_colour_same_meaning():
    pal = pattern_colors(
        ["deep response", "response", "stable", "progression", "response then relapse"]
    )
    assert pal["response"] == to_rgb(RESPONSE_COLORS["PR"])
    assert pal["stable"] == to_rgb(RESPONSE_COLORS["SD"])
    assert pal["progression"] == to_rgb(RESPONSE_COLORS["PD"]) == to_rgb(CHANGE_COLORS["new"])
    assert to_rgb(CHANGE_COLORS["disappeared"]) == to_rgb(RESPONSE_COLORS["PR"])
    assert len(set(pal.values())) == 5
    # the lesion-mix figure colours lesion patterns by the same meaning (no green progression)
    mix = pd.DataFrame(
        {
            "patient_id": ["A", "B"],
            "deep response": [1, 0],
            "progression": [1, 2],
            "stable": [0, 1],
            "n_lesions": [2, 3],
            "heterogeneity": [1.0, 0.5],
        }
    )
    ax = pp.plot_lesion_mix(mix)
    handles = dict(zip(*reversed(ax.get_legend_handles_labels()), strict=True))
    assert to_rgb(handles["progression"].patches[0].get_facecolor()) == to_rgb(
        RESPONSE_COLORS["PD"]
    )
    # repeated meanings get distinct shades of the same hue
    two = pattern_colors(["progression 1", "progression 2"])
    assert two["progression 1"] != two["progression 2"]
    assert abs(_hue(two["progression 1"]) - _hue(two["progression 2"])) < 0.02
    assert (
        meaning_of("mixed response then relapse") == "mixed" and meaning_of("PD") == "progression"
    )


def test_pattern_figures_say_which_fit_and_drop_the_band_for_small_patterns():
    from metevo.datasets import make_synthetic_trajectories

    traj = make_synthetic_trajectories(30, seed=2)["patient_trajectories"]
    model = EvolutionPatterns(4, n_bootstrap=0, random_state=0).fit(traj)
    fig = pp.plot_pattern_trajectories(model, max_lines=3)
    assert fig._suptitle.get_text() == "Evolution patterns, full follow-up"
    sizes = np.bincount(model.labels_, minlength=4)
    assert sizes.min() < pp.MIN_BAND_PATIENTS <= sizes.max()
    for ax, n in zip(fig.axes, sizes, strict=False):
        labels = ax.get_legend_handles_labels()[1]
        assert ("95 % of patients" in labels) == (n >= pp.MIN_BAND_PATIENTS)
        assert ax.get_title().endswith(f"(n={n})")
    assert fig.axes[0].get_ylabel().startswith("RECIST target sum (mm)")
    lm = EvolutionPatterns(2, landmark_days=112, n_bootstrap=0, random_state=0).fit(traj)
    assert pp.plot_pattern_centroids(lm).get_title() == "Pattern centroids, landmark at day 112"
