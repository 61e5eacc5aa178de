"""Tests of run_patterns and the ``metevo patterns`` command on an analysis folder."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest
from typer.testing import CliRunner

from metevo import run_patterns
from metevo.dictionary import validate_table
from metevo.exceptions import StatisticsWarning


@pytest.fixture(scope="module")
def analysis_dir(tmp_path_factory):
    from metevo.datasets import make_synthetic_trajectories

    data = make_synthetic_trajectories(250, seed=5)
    folder = tmp_path_factory.mktemp("analysis")
    data["patient_trajectories"].to_parquet(folder / "patient_trajectories.parquet")
    data["lesion_trajectories"].to_parquet(folder / "trajectories.parquet")
    data["clinical"].to_csv(folder / "clinical.csv", index=False)
    return folder


def test_run_patterns_writes_documented_tables_and_figures(analysis_dir):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticsWarning)
        tables = run_patterns(analysis_dir, k=3, method="kmeans", n_bootstrap=2)
    from metevo.patterns._run import TABLES

    assert set(tables) == set(TABLES)
    assert {"pattern_summary", "pattern_posteriors", "survival_km"} <= set(tables)
    assert set(tables["pattern_selection"]["method"]) == {"kmeans"}
    for name, table in tables.items():
        on_disk = pd.read_parquet(analysis_dir / f"{name}.parquet")
        assert len(on_disk) == len(table)
        validate_table(on_disk, name)
    pats = tables["patterns"]
    assert pats["patient_id"].nunique() == len(pats) == 250
    assert pats["survival_landmark_days"].dropna().eq(168).all()
    assert tables["survival_cox"]["analysis"].str.startswith("landmark at day 168").all()
    figs = {p.name for p in (analysis_dir / "figures").iterdir()}
    for stem in (
        "patterns_trajectories",
        "patterns_centroids",
        "pattern_selection",
        "survival_km",
        "survival_forest",
        "lesion_pattern_mix",
    ):
        assert {f"{stem}.png", f"{stem}.pdf"} <= figs


def test_cli_patterns_and_missing_clinical(analysis_dir, tmp_path):
    from metevo.cli import app

    runner = CliRunner()
    res = runner.invoke(
        app,
        [
            "patterns",
            str(analysis_dir),
            "--k",
            "2",
            "--landmark-days",
            "112",
            "--no-figures",
            "--time-varying",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "patterns.parquet" in res.output
    pats = pd.read_parquet(analysis_dir / "patterns.parquet")
    assert pats["landmark_days"].dropna().eq(112).all()
    cox = pd.read_parquet(analysis_dir / "survival_cox.parquet")
    assert set(cox["model"]) == {"cox_ph", "cox_time_varying"}
    validate_table(cox, "survival_cox")
    bare = tmp_path / "bare"
    bare.mkdir()
    pd.read_parquet(analysis_dir / "patient_trajectories.parquet").to_parquet(
        bare / "patient_trajectories.parquet"
    )
    res = runner.invoke(app, ["patterns", str(bare), "--k", "2", "--no-figures"])
    assert res.exit_code == 0 and "survival skipped: no clinical table" in res.output
    for name in ("survival_km", "survival_cox"):
        empty = pd.read_parquet(bare / f"{name}.parquet")
        assert empty.empty
        validate_table(empty, name)
    res = runner.invoke(app, ["patterns", str(tmp_path / "nowhere")])
    assert res.exit_code == 2 and "run `metevo analyze` first" in res.output
    res = runner.invoke(app, ["patterns", str(bare), "--k", "many"])
    assert res.exit_code == 2 and "--k must be" in res.output


def test_latent_class_model_is_the_default_and_writes_its_statistics(analysis_dir, tmp_path):
    """Issue 13: `metevo patterns DIR` fits the latent-class model by default; its k
    selection (per-k fit statistics, reason), posteriors and class courses are documented
    Parquet tables, and the planted courses of the synthetic cohort are recovered."""
    from sklearn.metrics import adjusted_rand_score

    from metevo.cli import app
    from metevo.datasets import make_synthetic_trajectories

    folder = tmp_path / "lcmm"
    folder.mkdir()
    data = make_synthetic_trajectories(160, seed=23)
    data["patient_trajectories"].to_parquet(folder / "patient_trajectories.parquet")
    res = CliRunner().invoke(app, ["patterns", str(folder), "--no-figures"])
    assert res.exit_code == 0, res.output
    tables = {
        n: pd.read_parquet(folder / f"{n}.parquet")
        for n in ("patterns", "pattern_selection", "pattern_summary", "pattern_posteriors")
    }
    for name, table in tables.items():
        validate_table(table, name)
    sel = tables["pattern_selection"]
    assert set(sel["method"]) == {"lcmm"} and sel["k"].tolist() == [1, 2, 3, 4, 5, 6]
    assert (
        sel[["log_likelihood", "aic", "bic", "sabic", "icl", "relative_entropy"]]
        .notna()
        .all()
        .all()
    )
    chosen = sel.loc[sel["selected"]].iloc[0]
    assert chosen["reason"].startswith("chosen: lowest ICL")
    assert chosen["icl"] == sel.loc[sel["eligible"], "icl"].min()
    pats = tables["patterns"].dropna(subset=["pattern"])
    post = tables["pattern_posteriors"]
    wide = post.pivot(index="patient_id", columns="pattern_id", values="posterior")
    assert wide.sum(axis=1).to_numpy() == pytest.approx(1.0)
    assert wide.max(axis=1).loc[pats["patient_id"]].to_numpy() == pytest.approx(
        pats["confidence"].to_numpy()
    )
    truth = data["ground_truth"].set_index("patient_id")["pattern"]
    assert adjusted_rand_score(truth.loc[pats["patient_id"]], pats["pattern_id"]) > 0.6
    assert tables["pattern_summary"]["n_patients"].sum() == len(pats)
