"""The follow-up module's output tables follow their data-dictionary schemas."""

from __future__ import annotations

import pandas as pd
import pytest

from metevo.datasets import make_synthetic_trajectories
from metevo.dictionary import validate_table
from metevo.exceptions import StatisticsWarning
from metevo.followup import follow_up, predict


def test_outputs_follow_their_schemas(tmp_path):
    t = make_synthetic_trajectories(90, seed=7)
    with pytest.warns(StatisticsWarning, match="are fragile"):
        pred = predict(t["patient_trajectories"], t["clinical"], n_boot=5, n_folds=3)
    fu = follow_up(t["patient_trajectories"], patterns=t["ground_truth"], n_boot=5, n_simulations=3)
    paths = pred.save(tmp_path) + [fu.save(tmp_path)]
    for path in paths:
        table = path.name.removesuffix(".parquet")
        validate_table(pd.read_parquet(path), table)
    assert {p.name for p in paths} == {
        "predictions.parquet",
        "prediction_performance.parquet",
        "prediction_calibration.parquet",
        "follow_up.parquet",
    }
