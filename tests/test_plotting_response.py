"""Response figures draw from the recist/patients tables and return their Axes."""

from __future__ import annotations

import datetime as dt

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from metevo.plotting.response import best_percent_change, spider, swimmer, waterfall  # noqa: E402


@pytest.fixture()
def tables():
    d0 = dt.date(2021, 1, 1)
    rows = []
    for pid, pcts, resp in (
        ("A", [0, -35, -50, -20], [None, "PR", "PR", "PD"]),
        ("B", [0, 10, 25], [None, "SD", "PD"]),
        ("C", [0, -10, -5], [None, "SD", "NE"]),
    ):
        for i, (p, r) in enumerate(zip(pcts, resp, strict=True)):
            rows.append(
                {
                    "patient_id": pid,
                    "timepoint": f"V{i}",
                    "date": d0 + dt.timedelta(days=56 * i),
                    "days": 56 * i,
                    "pct_change_baseline": float(p),
                    "overall_response": r,
                    "evaluable": r != "NE",
                }
            )
    recist = pd.DataFrame(rows)
    patients = pd.DataFrame(
        {
            "patient_id": ["A", "B", "C"],
            "best_response_confirmed": ["PR", "SD", "SD"],
            "imaging_pfs_event": [True, True, False],
        }
    )
    events = pd.DataFrame(
        {"patient_id": ["A"], "date": [d0 + dt.timedelta(days=200)], "event": ["death"]}
    )
    return recist, patients, events


def test_best_percent_change(tables):
    recist, _, _ = tables
    # A: best -50 (before PD); B: +10 is the best (smallest); C: NE scan ignored -> -10
    assert best_percent_change(recist).to_dict() == {"A": -50.0, "B": 10.0, "C": -10.0}


def test_figures_return_axes(tables):
    recist, patients, events = tables
    fig, axes = plt.subplots(1, 3)
    assert waterfall(recist, patients, ax=axes[0]) is axes[0]
    assert len(axes[0].patches) == 3
    assert spider(recist, patients, ax=axes[1]) is axes[1]
    assert len(axes[1].lines) >= 3
    assert swimmer(recist, patients, events, ax=axes[2]) is axes[2]
    assert [t.get_text() for t in axes[2].get_yticklabels()] == ["B", "C", "A"]
    plt.close(fig)
    ax = waterfall(recist)
    plt.close(ax.figure)


def test_bad_table(tables):
    recist, _, _ = tables
    with pytest.raises(ValueError, match="lacks column"):
        spider(recist.drop(columns="days"))
    with pytest.raises(TypeError, match="recist table"):
        waterfall([1, 2])
