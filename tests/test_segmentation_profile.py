"""The demo model warns when a CT does not look like its synthetic training data."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("torch")
pytest.importorskip("monai")

from metevo.exceptions import DataQualityWarning  # noqa: E402
from metevo.segmentation import load_model, read_ct, segment  # noqa: E402
from metevo.segmentation._profile import check_input_profile, input_statistics  # noqa: E402


@pytest.fixture(scope="module")
def profile():
    return load_model("demo").card.training["input_profile"]


def test_synthetic_ct_is_in_profile(tiny_cohort_dir, profile):
    manifest = pd.read_csv(tiny_cohort_dir / "manifest.csv")
    volume, affine, _ = read_ct(tiny_cohort_dir / manifest.image[0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_input_profile(volume, affine, profile, model="demo", where="x") == []


def test_real_ct_warns_and_names_what_differs(shared_data, profile, tmp_path):
    path = shared_data / "ct_example" / "example_ct.nii.gz"
    volume, affine, _ = read_ct(path)
    stats = input_statistics(volume, affine)
    assert stats["fov_mm"] == [366.0, 303.0, 336.0]  # 122 x 101 x 112 voxels of 3 mm
    with pytest.warns(
        DataQualityWarning, match=r"air fraction 0\.36 \(training 0\.5-0\.8\).*not a clinical model"
    ):
        issues = check_input_profile(volume, affine, profile, model="demo", where="x")
    assert len(issues) == 4  # z field of view, air, soft tissue, HU p99
    small = shared_data / "ct_example" / "example_ct_sm.nii.gz"
    manifest = pd.DataFrame({"patient_id": ["P1"], "timepoint": ["V0"], "image": [str(small)]})
    with pytest.warns(
        DataQualityWarning,
        match="patient P1, timepoint V0 .* does not look like the training data of model 'demo'",
    ):
        segment(manifest, "demo", tmp_path / "out", device="cpu")


def test_statistics_by_hand():
    volume = np.full((10, 10, 10), -1000, np.int16)
    volume[:5] = 50  # half soft tissue
    volume[0, 0, :] = 3000  # 10 voxels of bone: 1 %
    affine = np.diag([2.0, 2.0, 5.0, 1.0])
    stats = input_statistics(volume, affine)
    assert stats["fov_mm"] == [20.0, 20.0, 50.0]
    assert stats["air_fraction"] == 0.5
    assert stats["soft_tissue_fraction"] == pytest.approx(0.49)
    assert stats["hu_p99"] == pytest.approx(50 + 0.01 * 2950)  # between sorted values 990 and 991
