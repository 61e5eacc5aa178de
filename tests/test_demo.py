from __future__ import annotations

import warnings

import pandas as pd
import pytest

from metevo.runner.demo import run_demo


@pytest.mark.slow
def test_demo_segment_chain_ct_to_masks_to_analyses(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        analysis = run_demo(
            tmp_path,
            n_patients=3,
            seed=4,
            workers=2,
            progress=False,
            segment=True,
            echo=lambda _: None,
        )
    manifest = pd.read_csv(tmp_path / "segmentation" / "manifest.csv")
    assert manifest.lesion_mask.str.startswith("masks/").all()
    scans = pd.read_parquet(analysis / "scans.parquet")
    assert len(scans) == len(manifest)
    assert (scans.liver_volume_ml > 500).all()  # the predicted liver, not an empty mask
    assert (analysis / "patterns.parquet").exists() and (
        analysis / "figures" / "waterfall.png"
    ).exists()


def test_post_analysis_skips_patterns_on_a_small_cohort_in_one_line(
    tiny_analysis, tiny_cohort, tmp_path
):
    import shutil

    from metevo.runner.demo import post_analysis

    folder = tmp_path / "analysis"
    shutil.copytree(tiny_analysis.out_dir, folder, ignore=shutil.ignore_patterns("_shards"))
    lines: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the figure step's own notes on 6 patients
        post_analysis(folder, clinical=tiny_cohort.clinical, echo=lines.append)
    assert lines == [
        "patterns and survival skipped on these 6 CT patients (fewer than 150: too few for a "
        "pattern model or a Cox model)"
    ]
    assert not (folder / "patterns.parquet").exists()
    assert not (folder / "figures" / "survival_forest.png").exists()


@pytest.mark.parametrize(
    "options",
    [{"method": "kmeans"}, pytest.param({}, marks=pytest.mark.slow)],
    ids=["kmeans", "default"],
)
def test_demo_patterns_on_200_image_free_patients_labelled_and_quiet(
    tmp_path, monkeypatch, options
):
    """The demo's patterns/survival part: a Cox model with >= 10 events per parameter, every
    figure headed by the cohort label and titled with its fit, and no warning wall (k-means by
    default here for time; the default method, the latent-class model, as a slow test)."""
    from metevo.plotting import patterns as pp
    from metevo.runner.demo import demo_patterns

    titles: dict[str, str] = {}
    save = pp.save_figure

    def spy(fig, path, **kw):
        texts = [fig._suptitle.get_text() if fig._suptitle else ""]
        texts += [ax.get_title() for ax in fig.axes]
        titles[path.name] = " | ".join(texts)
        return save(fig, path, **kw)

    monkeypatch.setattr(pp, "save_figure", spy)
    lines: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tables = demo_patterns(tmp_path, n_patients=200, seed=0, echo=lines.append, **options)
    from metevo.exceptions import StatisticsWarning

    assert all(issubclass(w.category, StatisticsWarning) for w in caught) and len(caught) <= 2
    assert len(lines) <= 4
    cox = tables["survival_cox"]
    assert cox["fitted"].all() and (cox["n_events"] >= 10 * len(cox)).all()
    assert (cox["concordance_method"] == "out-of-fold (5-fold)").all()
    assert cox["n_excluded_landmark"].iloc[0] > 0
    assert {"survival_km", "survival_forest", "patterns_trajectories"} <= set(titles)
    assert all(t.startswith("Synthetic image-free cohort: 200 patients") for t in titles.values())
    assert "landmark at day 168" in titles["survival_km"]
    assert "landmark at day 168" in titles["survival_forest"]
    assert "full follow-up" in titles["patterns_trajectories"]
    # the landmark patterns carry the names of the full-follow-up patterns
    km_groups = set(tables["survival_km"]["group"])
    assert km_groups <= set(tables["patterns"]["pattern"].dropna())
