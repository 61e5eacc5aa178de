"""metevo's nnU-Net v2 back-end against nnU-Net's own ``nnUNetPredictor`` (tiny model, CPU).

The reference is nnU-Net itself (extra ``metevo[nnunet]``): the same trained model folder and the
same CT files go through ``nnUNetPredictor.predict_from_files_sequential`` and through
``metevo.segmentation.segment``; the masks must agree voxel for voxel up to nnU-Net's float16
accumulation (Dice >= 0.999 per label) on the input grid, for RAS and LPS NIfTI and a DICOM series.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

torch = pytest.importorskip("torch")
pytest.importorskip(
    "dynamic_network_architectures", reason="nnU-Net models need the extra metevo[nnunet]"
)

from _segmentation_helpers import one_torch_thread, write_dicom_series  # noqa: E402, F401

from metevo.segmentation import load_model, segment  # noqa: E402
from metevo.segmentation._backends import describe_spec, totalsegmentator_folder  # noqa: E402
from metevo.segmentation._nnunet import (  # noqa: E402
    NnUNetModel,
    gaussian_map,
    resample_data,
    sliding_window_steps,
)
from metevo.segmentation._nnunet_plans import label_roles, load_nnunet_checkpoint  # noqa: E402
from metevo.segmentation._toy import make_toy_nnunet_model  # noqa: E402


@pytest.fixture(scope="module")
def toy_model(tmp_path_factory):
    """A trained nnU-Net folder (2 folds): anisotropic target spacing and a transpose."""
    return make_toy_nnunet_model(
        tmp_path_factory.mktemp("nnunet"), spacing_zyx=(4.0, 3.5, 3.5), folds=(0, 1)
    )


@pytest.fixture(scope="module")
def ct_files(shared_data, tmp_path_factory):
    """A crop of the real example CT as RAS NIfTI, LPS NIfTI and a DICOM series (+ its NIfTI)."""
    folder = tmp_path_factory.mktemp("cts")
    full = sitk.ReadImage(str(shared_data / "ct_example" / "example_ct_sm.nii.gz"))
    ras = folder / "ras.nii.gz"
    sitk.WriteImage(full[24:88, 20:76, :], str(ras))
    lps_image = sitk.DICOMOrient(sitk.ReadImage(str(ras)), "LPS")
    lps = folder / "lps.nii.gz"
    sitk.WriteImage(lps_image, str(lps))
    dicom = write_dicom_series(lps_image, folder / "dicom")
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(dicom)))
    dicom_nii = folder / "dicom.nii.gz"
    sitk.WriteImage(reader.Execute(), str(dicom_nii))
    return {"ras": (ras, ras), "lps": (lps, lps), "dicom": (dicom, dicom_nii)}


def _nnunet_reference(model_dir, image, out, folds=(0, 1), mirroring=True):
    """nnU-Net's own prediction of one NIfTI file: label array (z, y, x)."""
    predictor_mod = pytest.importorskip(
        "nnunetv2.inference.predict_from_raw_data",
        reason="the reference implementation needs nnunetv2 (pip install 'metevo[nnunet]')",
    )
    predictor = predictor_mod.nnUNetPredictor(
        tile_step_size=0.5,
        use_gaussian=True,
        use_mirroring=mirroring,
        perform_everything_on_device=False,
        device=torch.device("cpu"),
        verbose=False,
        verbose_preprocessing=False,
        allow_tqdm=False,
    )
    predictor.initialize_from_trained_model_folder(str(model_dir), use_folds=folds)
    out.mkdir(parents=True, exist_ok=True)
    link = out / "case_0000.nii.gz"
    if not link.exists():
        os.symlink(os.path.abspath(image), link)
    predictor.predict_from_files_sequential(
        [[str(link)]], [str(out / "case")], save_probabilities=False, overwrite=True
    )
    return sitk.GetArrayFromImage(sitk.ReadImage(str(out / "case.nii.gz")))


def _dice(a, b):
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total


@pytest.mark.parametrize(
    ("kind", "folds", "mirroring"),
    [("ras", (0,), True), ("lps", (0, 1), False), ("dicom", (1,), False)],
)
def test_masks_equal_nnunet_predictor(toy_model, ct_files, tmp_path, kind, folds, mirroring):
    image, nifti = ct_files[kind]
    reference = _nnunet_reference(toy_model, nifti, tmp_path / "ref", folds, mirroring)
    manifest = pd.DataFrame({"patient_id": ["P1"], "timepoint": ["V0"], "image": [str(image)]})
    options = {"folds": list(folds), "mirroring": mirroring}
    new = segment(
        manifest, f"nnunet:{toy_model}", tmp_path / "out", device="cpu", model_options=options
    )
    liver_img = sitk.ReadImage(str(tmp_path / "out" / new.liver_mask[0]))
    lesion_img = sitk.ReadImage(str(tmp_path / "out" / new.lesion_mask[0]))
    ct = sitk.ReadImage(str(nifti))
    for mask in (liver_img, lesion_img):  # same grid as the CT (and as nnU-Net's output)
        assert mask.GetSize() == ct.GetSize()
        np.testing.assert_allclose(mask.GetOrigin(), ct.GetOrigin(), atol=1e-3)
        np.testing.assert_allclose(mask.GetDirection(), ct.GetDirection(), atol=1e-6)
        np.testing.assert_allclose(mask.GetSpacing(), ct.GetSpacing(), atol=1e-4)
    liver = sitk.GetArrayFromImage(liver_img).astype(bool)
    lesion = sitk.GetArrayFromImage(lesion_img).astype(bool)
    ref_lesion = reference == 2
    ref_liver = (reference == 1) | ref_lesion
    assert ref_liver.sum() > 1000 and ref_lesion.sum() > 100  # the masks are not trivial
    assert _dice(liver, ref_liver) >= 0.999
    assert _dice(lesion, ref_lesion) >= 0.999


def test_nnunet_transpose_and_separate_z_resampling(toy_model, tmp_path, ct_files):
    """A plans transpose and an anisotropic target spacing (nnU-Net's separate-z resampling)."""
    model_dir = tmp_path / "Dataset902_Aniso" / "nnUNetTrainer__nnUNetPlans__3d_fullres"
    (model_dir / "fold_0").mkdir(parents=True)
    (model_dir / "dataset.json").write_bytes((toy_model / "dataset.json").read_bytes())
    (model_dir / "fold_0" / "checkpoint_final.pth").write_bytes(
        (toy_model / "fold_0" / "checkpoint_final.pth").read_bytes()
    )
    plans = json.loads((toy_model / "plans.json").read_text())
    plans["transpose_forward"], plans["transpose_backward"] = [2, 0, 1], [1, 2, 0]
    plans["configurations"]["3d_fullres"]["spacing"] = [3.0, 3.0, 10.0]  # after the transpose
    (model_dir / "plans.json").write_text(json.dumps(plans))
    image, nifti = ct_files["lps"]
    reference = _nnunet_reference(model_dir, nifti, tmp_path / "ref", (0,), False)
    from metevo.segmentation import read_ct

    model = NnUNetModel(model_dir, mirroring=False)
    volume, affine, _ = read_ct(image)
    labels = model.predict(volume, affine).transpose(2, 1, 0)
    assert (reference == 1).sum() > 1000
    for value in (1, 2):
        assert _dice(labels == value, reference == value) >= 0.999


def test_steps_and_gaussian_are_nnunets():
    # hand-computed: 70 voxels, tile 32, step 16 -> ceil(38/16)+1 = 4 steps over 38 voxels
    assert sliding_window_steps([70, 32, 20], [32, 32, 20], 0.5) == [[0, 13, 25, 38], [0], [0]]
    g = gaussian_map((8, 8, 8))
    assert g.max() == pytest.approx(10.0)
    assert g[4, 4, 4] == pytest.approx(10.0) and g.min() > 0
    nn = pytest.importorskip("nnunetv2.inference.sliding_window_prediction")
    ref = nn.compute_gaussian(
        (8, 6, 10), 1 / 8, 10, dtype=torch.float32, device=torch.device("cpu")
    )
    np.testing.assert_allclose(gaussian_map((8, 6, 10)), ref.numpy(), rtol=1e-6)
    assert nn.compute_steps_for_sliding_window((70, 45, 33), (32, 24, 16), 0.5) == (
        sliding_window_steps((70, 45, 33), (32, 24, 16), 0.5)
    )


def test_resampling_equals_nnunets_own():
    ref = pytest.importorskip("nnunetv2.preprocessing.resampling.default_resampling")
    rng = np.random.default_rng(3)
    data = rng.normal(size=(1, 7, 20, 18)).astype(np.float32)
    for current, new, shape in (
        ((5.0, 1.0, 1.0), (5.0, 1.5, 1.5), (7, 13, 12)),  # separate z, same z size
        ((5.0, 1.0, 1.0), (2.5, 1.0, 1.2), (14, 20, 15)),  # separate z, z resampled (nearest)
        ((1.0, 1.2, 1.1), (1.5, 1.0, 1.0), (5, 24, 20)),  # isotropic enough: one 3-D resize
    ):
        expected = ref.resample_data_or_seg_to_shape(data, shape, current, new, False, 3, 0, None)
        got = resample_data(data, shape, current, new, order=3, order_z=0)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_checkpoint_is_read_without_unpickling_objects(toy_model, tmp_path):
    ckpt = load_nnunet_checkpoint(toy_model / "fold_0" / "checkpoint_final.pth")
    assert ckpt["trainer_name"] == "nnUNetTrainer"
    assert isinstance(ckpt["logging"]["train_losses"][0], np.floating)

    bad = dict(ckpt)
    bad["init_args"] = {"configuration": "3d_fullres", "callback": pd.Timestamp("2024-01-01")}
    target = tmp_path / "fold_0"
    target.mkdir()
    torch.save(bad, target / "checkpoint_final.pth")
    with pytest.raises(ValueError, match="refuses to unpickle"):
        load_nnunet_checkpoint(target / "checkpoint_final.pth")


def test_label_map_recognises_names_and_asks_otherwise():
    liver, lesion, roles = label_roles(
        {"background": 0, "Liver": 1, "liver tumor": 2, "vessel": 3}, where="m"
    )
    assert (liver, lesion) == ((1,), (2,))
    assert roles == {"Liver": "liver", "liver tumor": "lesion", "vessel": "ignored"}
    with pytest.raises(ValueError, match="none of the model's labels .* is recognised"):
        label_roles({"background": 0, "organ": 1, "blob": 2}, where="m")
    liver, lesion, _ = label_roles(
        {"background": 0, "organ": 1, "blob": 2}, liver=["organ"], lesion=["2"], where="m"
    )
    assert (liver, lesion) == ((1,), (2,))
    with pytest.raises(ValueError, match="'spleen' is not one of the model's labels"):
        label_roles({"background": 0, "organ": 1}, liver=["spleen"], where="m")


def test_folds_configuration_and_missing_files_are_named(toy_model):
    with pytest.raises(FileNotFoundError, match=r"folds \['4'\] have no checkpoint_final.pth"):
        load_model(f"nnunet:{toy_model}", folds=[0, 4])
    # the dataset folder: the configuration picks the trained model folder
    model = load_model(f"nnunet:{toy_model.parent}", configuration="3d_fullres", folds=[0])
    assert model.info.folds == ["0"]
    with pytest.raises(FileNotFoundError, match="configuration '3d_lowres'"):
        load_model(f"nnunet:{toy_model.parent}", configuration="3d_lowres")


def test_describe_without_torch_equals_loaded_model(toy_model):
    spec = f"nnunet:{toy_model}"
    loaded = load_model(spec, folds=[0], mirroring=False)
    described = describe_spec(spec, folds=[0], mirroring=False)
    assert described["checksum"] == loaded.checksum
    assert described["settings"] == loaded.settings()
    assert describe_spec(spec, folds=[0])["checksum"] != loaded.checksum  # mirroring matters
    demo = load_model("demo")
    assert describe_spec("demo")["checksum"] == demo.checksum


def test_totalsegmentator_reads_its_weights_folder(tmp_path, monkeypatch, toy_model):
    monkeypatch.setenv("TOTALSEG_HOME_DIR", str(tmp_path / "ts"))
    with pytest.raises(
        FileNotFoundError, match=r"totalseg_download_weights -t total.*never downloads"
    ):
        load_model("totalsegmentator:total")
    with pytest.raises(ValueError, match="task 'brain' is not one metevo runs"):
        load_model("totalsegmentator:brain")
    # lay the toy model out as TotalSegmentator's organ model (dataset 291, fold 0)
    target = (
        tmp_path
        / "ts"
        / "nnunet"
        / "results"
        / "Dataset291_TotalSegmentator_part1_organs_1559subj"
        / "nnUNetTrainerNoMirroring__nnUNetPlans__3d_fullres"
    )
    target.mkdir(parents=True)
    for name in ("plans.json", "dataset.json"):
        (target / name).write_bytes((toy_model / name).read_bytes())
    labels = {"background": 0, "spleen": 1, "liver": 2}
    ds = json.loads((target / "dataset.json").read_text())
    ds["labels"] = labels
    (target / "dataset.json").write_text(json.dumps(ds))
    (target / "fold_0").mkdir()
    ckpt = load_nnunet_checkpoint(toy_model / "fold_0" / "checkpoint_final.pth")
    torch.save(ckpt, target / "fold_0" / "checkpoint_final.pth")
    assert totalsegmentator_folder("total") == target
    model = load_model("totalsegmentator:total")
    assert model.name == "totalsegmentator:total"
    assert (model.liver_labels, model.lesion_labels) == ((2,), ())
    assert model.reorient and not model.mirroring


def test_cli_segment_with_an_nnunet_model(toy_model, ct_files, tmp_path):
    from typer.testing import CliRunner

    from metevo.cli import app

    image, _ = ct_files["lps"]
    manifest = tmp_path / "manifest.csv"
    pd.DataFrame({"patient_id": ["P1"], "timepoint": ["V0"], "image": [str(image)]}).to_csv(
        manifest, index=False
    )
    args = ["segment", str(manifest), "--out", str(tmp_path / "out"), "--model",
            f"nnunet:{toy_model}", "-f", "1", "--no-mirroring", "--device", "cpu", "--no-progress"]  # fmt: skip
    runner = CliRunner()
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "1 scan(s): 1 segmented, 0 up to date" in result.output
    provenance = json.loads(
        (tmp_path / "out" / "masks" / "P1" / "V0" / "provenance.json").read_text()
    )
    assert provenance["preprocessing"]["folds"] == ["1"]
    assert provenance["preprocessing"]["mirroring"] is False
    assert runner.invoke(app, args).output.count("1 up to date") == 1
    # mirroring on is another model: recomputed
    again = runner.invoke(app, [a for a in args if a != "--no-mirroring"])
    assert "1 segmented" in again.output
    bad = runner.invoke(app, [*args[:5], "demo", "-f", "0"])
    assert bad.exit_code == 2 and "apply to nnunet:" in bad.output
