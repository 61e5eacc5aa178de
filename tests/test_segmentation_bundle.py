"""metevo's MONAI-bundle back-end against the bundle's own inference with MONAI's ConfigParser."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

torch = pytest.importorskip("torch")
pytest.importorskip("monai")

from _segmentation_helpers import one_torch_thread, write_dicom_series  # noqa: E402, F401

from metevo.segmentation import load_model, read_ct, segment  # noqa: E402
from metevo.segmentation._card import DEMO_CARD  # noqa: E402

# MONAI 1.6's LoadImaged (used by the reference run only) warns when NVIDIA's nvImageCodec is absent
pytestmark = pytest.mark.filterwarnings("ignore:NvImgCodecPydicomReader:UserWarning")


def _inference_config(output_dir):
    """A bundle inference.json in the MONAI model-zoo style (with its `$` expressions)."""
    card = json.loads(DEMO_CARD.read_text())
    return {
        "imports": ["$import glob", "$import os"],
        "bundle_root": ".",
        "output_dir": str(output_dir),
        "datalist": [],
        "device": "$torch.device('cpu')",
        "network_def": {
            "_target_": "UNet", "spatial_dims": 3, "in_channels": 1, "out_channels": 3,
            **card["arguments"],
        },
        "network": "$@network_def.to(@device)",
        "preprocessing": {
            "_target_": "Compose",
            "transforms": [
                {"_target_": "LoadImaged", "keys": "image"},
                {"_target_": "EnsureChannelFirstd", "keys": "image"},
                {"_target_": "Orientationd", "keys": "image", "axcodes": "RAS"},
                {"_target_": "Spacingd", "keys": "image", "pixdim": [3.0, 3.0, 3.0], "mode": "bilinear"},
                {"_target_": "ScaleIntensityRanged", "keys": "image", "a_min": -100, "a_max": 200,
                 "b_min": 0.0, "b_max": 1.0, "clip": True},
                {"_target_": "EnsureTyped", "keys": "image"},
            ],
        },
        "dataset": {"_target_": "Dataset", "data": "$[{'image': i} for i in @datalist]",
                    "transform": "@preprocessing"},
        "inferer": {"_target_": "SlidingWindowInferer", "roi_size": [48, 48, 32],
                    "sw_batch_size": 2, "overlap": 0.25, "mode": "gaussian"},
        "postprocessing": {
            "_target_": "Compose",
            "transforms": [
                {"_target_": "Activationsd", "keys": "pred", "softmax": True},
                {"_target_": "Invertd", "keys": "pred", "transform": "@preprocessing",
                 "orig_keys": "image", "nearest_interp": False, "to_tensor": True},
                {"_target_": "AsDiscreted", "keys": "pred", "argmax": True},
                {"_target_": "SaveImaged", "keys": "pred", "output_dir": "@output_dir",
                 "resample": False, "squeeze_end_dims": True, "separate_folder": False},
            ],
        },
    }  # fmt: skip


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """A MONAI bundle holding the demo network's weights, labels liver / tumor."""
    root = tmp_path_factory.mktemp("bundle") / "liver_demo_bundle"
    (root / "configs").mkdir(parents=True)
    (root / "models").mkdir()
    shutil.copy(DEMO_CARD.with_name("demo.pt"), root / "models" / "model.pt")
    config = _inference_config(root / "eval")
    (root / "configs" / "inference.json").write_text(json.dumps(config, indent=2))
    metadata = {
        "version": "0.1.0",
        "network_data_format": {
            "inputs": {"image": {"type": "image", "num_channels": 1}},
            "outputs": {"pred": {"type": "image", "num_channels": 3,
                                  "channel_def": {"0": "background", "1": "liver", "2": "tumor"}}},
        },
    }  # fmt: skip
    (root / "configs" / "metadata.json").write_text(json.dumps(metadata, indent=2))
    return root


def _bundle_reference(bundle, image):
    """The bundle's own inference (MONAI ConfigParser, the bundle's objects): labels (x, y, z)."""
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(str(bundle / "configs" / "inference.json"))
    parser["bundle_root"] = str(bundle)
    network = parser.get_parsed_content("network")
    network.load_state_dict(torch.load(bundle / "models" / "model.pt", weights_only=True))
    network.eval()
    data = parser.get_parsed_content("preprocessing")({"image": str(image)})
    with torch.no_grad():
        data["pred"] = parser.get_parsed_content("inferer")(data["image"][None], network)[0]
    data = parser.get_parsed_content("postprocessing")(data)
    return np.asarray(data["pred"])[0].astype(np.uint8)


def _dice(a, b):
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total


@pytest.mark.parametrize("orientation", ["RAS", "LPS"])
def test_masks_equal_the_bundles_own_inference(bundle, shared_data, tmp_path, orientation):
    image = sitk.DICOMOrient(
        sitk.ReadImage(str(shared_data / "ct_example" / "example_ct_sm.nii.gz")), orientation
    )
    path = tmp_path / f"ct_{orientation}.nii.gz"
    sitk.WriteImage(image, str(path))
    reference = _bundle_reference(bundle, path)
    manifest = pd.DataFrame({"patient_id": ["P1"], "timepoint": ["V0"], "image": [str(path)]})
    new = segment(manifest, f"bundle:{bundle}", tmp_path / "out", device="cpu")
    liver_img = sitk.ReadImage(str(tmp_path / "out" / new.liver_mask[0]))
    assert liver_img.GetSize() == image.GetSize()
    np.testing.assert_allclose(liver_img.GetDirection(), image.GetDirection(), atol=1e-6)
    liver = sitk.GetArrayFromImage(liver_img).transpose(2, 1, 0).astype(bool)
    lesion = (
        sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "out" / new.lesion_mask[0])))
        .transpose(2, 1, 0)
        .astype(bool)
    )
    assert (reference >= 1).sum() > 5000 and (reference == 2).sum() > 50
    assert _dice(liver, reference >= 1) >= 0.999
    assert _dice(lesion, reference == 2) >= 0.999


def test_bundle_labels_and_code_are_checked(bundle, tmp_path):
    model = load_model(f"bundle:{bundle}")
    assert (model.liver_labels, model.lesion_labels) == ((1,), (2,))
    assert model.name == "bundle:liver_demo_bundle"
    bad = tmp_path / "bad"
    shutil.copytree(bundle, bad)
    config = json.loads((bad / "configs" / "inference.json").read_text())
    config["inferer"]["roi_size"] = "$[48, 48, 32]"
    (bad / "configs" / "inference.json").write_text(json.dumps(config))
    with pytest.raises(
        ValueError, match=r"inferer.roi_size: '\$\[48, 48, 32\]' is a Python expression"
    ):
        load_model(f"bundle:{bad}")
    config["inferer"]["roi_size"] = [48, 48, 32]
    config["preprocessing"]["transforms"].append(
        {"_target_": "Lambdad", "keys": "image", "func": "x"}
    )
    (bad / "configs" / "inference.json").write_text(json.dumps(config))
    with pytest.raises(
        ValueError, match="preprocessing transform 'Lambdad' is not one metevo builds"
    ):
        load_model(f"bundle:{bad}")


def test_bundle_on_dicom_equals_bundle_on_its_nifti(bundle, tmp_path, shared_data):
    """metevo reads a DICOM series itself; the bundle (nibabel) reads the same CT as NIfTI."""
    full = sitk.ReadImage(str(shared_data / "ct_example" / "example_ct_sm.nii.gz"))
    dicom = write_dicom_series(sitk.DICOMOrient(full, "LPS"), tmp_path / "dicom")
    volume, affine, header = read_ct(dicom)
    nifti = tmp_path / "dicom.nii.gz"
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(dicom)))
    sitk.WriteImage(reader.Execute(), str(nifti))
    reference = _bundle_reference(bundle, nifti)
    labels = load_model(f"bundle:{bundle}").predict(volume, affine)
    assert labels.shape == reference.shape
    assert (reference == 1).sum() > 5000
    for value in (1, 2):
        assert _dice(labels == value, reference == value) >= 0.999
