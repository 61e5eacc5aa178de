"""Time-dependent AUC, Brier score, concordance and calibration (metevo.followup._metrics)."""

from __future__ import annotations

import numpy as np
import pytest

from metevo.followup._metrics import (
    brier_score,
    calibration_deciles,
    censoring_survival,
    concordance,
    cumulative_dynamic_auc,
    kaplan_meier,
)


def _censored(seed, n=150):
    rng = np.random.default_rng(seed)
    time = rng.integers(1, 60, n).astype(float)  # integer times: many ties
    event = rng.uniform(size=n) < 0.6
    time[:3], event[:3] = 80.0, True  # the censoring survival must stay > 0
    risk = np.round(rng.normal(size=n) + 0.03 * (60 - time), 1)  # tied risks too
    return time, event, risk


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("t", [10.0, 25.0, 45.0])
def test_auc_and_brier_match_scikit_survival(seed, t):
    from sksurv.metrics import brier_score as sk_brier
    from sksurv.metrics import cumulative_dynamic_auc as sk_auc
    from sksurv.util import Surv

    time, event, risk = _censored(seed)
    y = Surv.from_arrays(event, time)
    surv = 1.0 / (1.0 + np.exp(risk))
    assert cumulative_dynamic_auc(time, event, risk, t) == pytest.approx(
        sk_auc(y, y, risk, [t])[0][0], abs=1e-12
    )
    assert brier_score(time, event, surv, t) == pytest.approx(
        sk_brier(y, y, surv, [t])[1][0], abs=1e-12
    )


def test_auc_without_censoring_is_the_mann_whitney_statistic():
    # cases (event by t=10): risks 3, 2, 2; controls (time > 10): risks 1, 2
    time = np.array([2.0, 5.0, 8.0, 20.0, 30.0])
    event = np.ones(5, bool)
    risk = np.array([3.0, 2.0, 2.0, 1.0, 2.0])
    # pairs: (3>1, 3>2) = 2; (2>1, 2=2) = 1.5 twice -> 5 of 6
    assert cumulative_dynamic_auc(time, event, risk, 10.0) == pytest.approx(5 / 6)
    # Brier without censoring: plain mean squared error of survival probabilities
    s = np.array([0.1, 0.2, 0.3, 0.9, 0.6])
    expected = np.mean(np.array([0.1, 0.2, 0.3, 0.1, 0.4]) ** 2)
    assert brier_score(time, event, s, 10.0) == pytest.approx(expected)


def test_censoring_weights_by_hand():
    # times 1(event), 2(censored), 3(event), 4(censored): G jumps at 2 to 1 - 1/3 and at 4 to 0
    G = censoring_survival(np.array([1.0, 2.0, 3.0, 4.0]), np.array([1, 0, 1, 0]))
    assert G([0.5, 1.0, 2.0, 3.0]) == pytest.approx([1.0, 1.0, 2 / 3, 2 / 3])
    t, s = kaplan_meier([1.0, 2.0, 3.0, 4.0], [1, 0, 1, 0])
    assert s == pytest.approx([0.75, 0.75, 0.375, 0.375])


def test_concordance_is_one_for_a_perfect_ordering_and_half_for_constant():
    time = np.arange(1.0, 11.0)
    event = np.ones(10, bool)
    assert concordance(time, event, -time, 100.0) == pytest.approx(1.0)
    assert concordance(time, event, np.zeros(10), 100.0) == pytest.approx(0.5)
    # truncating at 5: events after 5 become censored at 5 (still a perfect order)
    assert concordance(time, event, -time, 5.0) == pytest.approx(1.0)


def test_calibration_deciles_recover_the_observed_risk():
    rng = np.random.default_rng(3)
    n = 4000
    risk = rng.uniform(0.05, 0.95, n)
    event_by_1 = rng.uniform(size=n) < risk  # the event happens before t=1 with prob = risk
    time = np.where(event_by_1, rng.uniform(0, 1, n), 2.0)
    rows = calibration_deciles(time, np.ones(n, bool), risk, 1.0)
    assert [r[0] for r in rows] == list(range(1, 11))
    assert sum(r[1] for r in rows) == n
    pred = np.array([r[2] for r in rows])
    obs = np.array([r[3] for r in rows])
    assert np.all(np.diff(pred) > 0)
    assert np.max(np.abs(pred - obs)) < 0.06
