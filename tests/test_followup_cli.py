"""The `metevo predict` and `metevo follow-up` commands."""

from __future__ import annotations

import pandas as pd
from typer.testing import CliRunner

from metevo.cli import app
from metevo.datasets import make_synthetic_trajectories


def test_predict_and_follow_up_commands(tmp_path):
    t = make_synthetic_trajectories(80, seed=9)
    t["patient_trajectories"].to_parquet(tmp_path / "patient_trajectories.parquet")
    t["clinical"].to_csv(tmp_path / "clinical.csv", index=False)
    t["ground_truth"][["patient_id", "pattern"]].to_parquet(tmp_path / "patterns.parquet")
    runner = CliRunner()
    args = [
        "predict",
        str(tmp_path),
        "--clinical",
        str(tmp_path / "clinical.csv"),
        "--endpoints",
        "os",
        "--horizons",
        "365",
        "--folds",
        "3",
        "--n-boot",
        "5",
    ]
    done = runner.invoke(app, args)
    assert done.exit_code == 0, done.output
    pred = pd.read_parquet(tmp_path / "predictions.parquet")
    assert set(pred.endpoint) == {"os"} and set(pred.horizon_days) == {365.0}
    assert (tmp_path / "figures" / "prediction_patient.png").is_file()
    done = runner.invoke(app, ["follow-up", str(tmp_path), "--simulations", "3", "--n-boot", "5"])
    assert done.exit_code == 0, done.output
    fu = pd.read_parquet(tmp_path / "follow_up.parquet")
    assert set(fu.pattern) == {"all"} | set(t["ground_truth"].pattern)
    assert (tmp_path / "figures" / "follow_up_tradeoff.png").is_file()


def test_commands_name_what_is_missing(tmp_path):
    runner = CliRunner()
    done = runner.invoke(app, ["follow-up", str(tmp_path)])
    assert done.exit_code == 2
    assert "patient_trajectories.parquet" in done.output
    done = runner.invoke(
        app, ["predict", str(tmp_path), "--clinical", "x.csv", "--horizons", "six"]
    )
    assert done.exit_code == 2 and "--horizons expects comma-separated numbers" in done.output
