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
