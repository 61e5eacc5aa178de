"""Tests of metevo.plotting.followup: each figure draws what its table holds."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from metevo.plotting import followup as pf  # noqa: E402


@pytest.fixture(scope="module")
def results():
    from metevo.datasets import make_synthetic_trajectories
    from metevo.exceptions import StatisticsWarning
    from metevo.followup import follow_up, predict

    t = make_synthetic_trajectories(90, seed=8)
    with pytest.warns(StatisticsWarning, match="are fragile"):
        pred = predict(
            t["patient_trajectories"], t["clinical"], n_boot=5, n_folds=3, endpoints=["os"]
        )
    fu = follow_up(t["patient_trajectories"], patterns=t["ground_truth"], n_boot=5, n_simulations=3)
    yield t, pred, fu
    plt.close("all")


def test_risk_over_visits_draws_the_patient_rows(results):
    t, pred, _ = results
    pid = pred.predictions.patient_id.value_counts().index[0]
    axes = pf.plot_risk_over_visits(pred.predictions, t["patient_trajectories"], patient_id=pid)
    rows = pred.predictions.query("patient_id == @pid and horizon_days == 365").sort_values(
        "landmark_days"
    )
    ys = [line.get_ydata() for line in axes[1].get_lines()]
    assert any(np.allclose(y, rows.risk) for y in ys if len(y) == len(rows))
    traj = t["patient_trajectories"].query("patient_id == @pid")
    assert np.allclose(axes[0].get_lines()[0].get_ydata(), traj.target_sum_mm)
    with pytest.raises(ValueError, match="no rows with"):
        pf.plot_risk_over_visits(pred.predictions, t["patient_trajectories"], patient_id="NOPE")


def test_performance_and_calibration(results):
    _, pred, _ = results
    axes = pf.plot_performance_over_landmarks(pred.performance, horizon_days=365)
    assert len(axes) == 2
    auc = pred.performance.query(
        "metric == 'auc' and model == 'dynamic' and scope == 'landmark' and horizon_days == 365"
    ).sort_values("landmark_days")
    ys = [np.asarray(line.get_ydata(), float) for line in axes[0].get_lines()]
    assert any(y.shape == auc.estimate.shape and np.allclose(y, auc.estimate) for y in ys)
    ax = pf.plot_calibration(pred.calibration, horizon_days=365, landmarks=[112.0])
    cal = pred.calibration.query("horizon_days == 365 and landmark_days == 112")
    assert np.allclose(ax.get_lines()[0].get_ydata(), cal.observed_risk)


def test_schedule_tradeoff(results):
    _, _, fu = results
    ax = pf.plot_schedule_tradeoff(fu.table, patterns=["all"])
    fixed = fu.table.query("pattern == 'all' and interval_days == interval_days").sort_values(
        "scans_per_year"
    )
    assert np.allclose(ax.get_lines()[0].get_xdata(), fixed.scans_per_year)
    with pytest.raises(ValueError, match="statistic: expected 'median' or 'p90'"):
        pf.plot_schedule_tradeoff(fu.table, statistic="mean")
