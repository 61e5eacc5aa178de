"""TotalSegmentator tasks run as its CLI runs them (``segmentation._totalseg``), tiny toy model.

TotalSegmentator's weights cannot be downloaded here: the toy nnU-Net model of ``_toy`` is laid
out as the task's dataset folder (and as the coarse ``total`` model that crops the liver tasks).
The reference for the steps around nnU-Net is written here independently with nibabel (as
TotalSegmentator itself does: ``as_closest_canonical``, ``scipy.ndimage.zoom``, ``as_reoriented``).
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

torch = pytest.importorskip("torch")
pytest.importorskip(
    "dynamic_network_architectures", reason="nnU-Net models need the extra metevo[nnunet]"
)
nib = pytest.importorskip("nibabel")

from _segmentation_helpers import one_torch_thread  # noqa: E402, F401
from scipy import ndimage  # noqa: E402

import metevo.segmentation._card  # noqa: E402
from metevo.exceptions import DataQualityWarning  # noqa: E402
from metevo.segmentation import load_model, segment  # noqa: E402
from metevo.segmentation._backends import TOTALSEGMENTATOR_TASKS, describe_spec  # noqa: E402
from metevo.segmentation._card import file_sha256  # noqa: E402
from metevo.segmentation._nnunet_plans import load_nnunet_checkpoint  # noqa: E402
from metevo.segmentation._segment import read_ct  # noqa: E402
from metevo.segmentation._toy import make_toy_nnunet_model  # noqa: E402


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return make_toy_nnunet_model(tmp_path_factory.mktemp("toy"), folds=(0,), steps=60)


def place(home, task, toy):
    """Lay the toy model out as TotalSegmentator's folder of ``task`` (fold 0)."""
    dataset, trainer, configuration = TOTALSEGMENTATOR_TASKS[task]
    target = home / "nnunet" / "results" / f"Dataset{dataset:03d}_toy_{task}"
    target = target / f"{trainer}__nnUNetPlans__{configuration}"
    (target / "fold_0").mkdir(parents=True)
    plans = json.loads((toy / "plans.json").read_text())
    plans["configurations"][configuration] = plans["configurations"]["3d_fullres"]
    (target / "plans.json").write_text(json.dumps(plans))
    (target / "dataset.json").write_bytes((toy / "dataset.json").read_bytes())
    ckpt = load_nnunet_checkpoint(toy / "fold_0" / "checkpoint_final.pth")
    ckpt["init_args"]["configuration"] = configuration
    torch.save(ckpt, target / "fold_0" / "checkpoint_final.pth")
    return target


@pytest.fixture(scope="module")
def ct(shared_data, tmp_path_factory):
    """A crop of the real example CT stored LPS, relabelled 2.6 x 2.6 x 3.4 mm (not 3 mm)."""
    full = sitk.ReadImage(str(shared_data / "ct_example" / "example_ct_sm.nii.gz"))
    image = sitk.DICOMOrient(full[24:88, 20:76, :], "LPS")
    image.SetSpacing((2.6, 2.6, 3.4))
    path = tmp_path_factory.mktemp("ct") / "lps.nii.gz"
    sitk.WriteImage(image, str(path))
    return path


def ts_reference(model, path, target):
    """TotalSegmentator's steps 2-5 with nibabel (no crop): canonical, zoom, nnU-Net, back."""
    img = nib.load(str(path))
    can = nib.as_closest_canonical(img)
    data = can.get_fdata()
    zooms = np.array(can.header.get_zooms()[:3], dtype=float)
    zoom = zooms / np.array(target)
    resampled = ndimage.zoom(data, zoom, order=1, mode="nearest").astype(np.int32)
    spacing = zooms / zoom
    ras_as_lps = np.diag([-spacing[0], -spacing[1], spacing[2], 1.0])
    labels = model.inner.predict(resampled, ras_as_lps)
    back = ndimage.zoom(
        labels, np.array(data.shape) / np.array(labels.shape), order=0, mode="nearest"
    )
    from_canonical = nib.orientations.ornt_transform(
        nib.orientations.axcodes2ornt("RAS"), nib.orientations.io_orientation(img.affine)
    )
    return np.asarray(nib.Nifti1Image(back, can.affine).as_reoriented(from_canonical).dataobj)


def test_resampling_to_the_task_spacing_round_trips_onto_the_input_grid(
    toy, ct, tmp_path, monkeypatch
):
    monkeypatch.setenv("TOTALSEG_HOME_DIR", str(tmp_path / "ts"))
    place(tmp_path / "ts", "total_fast", toy)  # TotalSegmentator resamples this task to 3 mm
    model = load_model("totalsegmentator:total_fast")
    assert model.steps["resample"] == (3.0, 3.0, 3.0) and model.crop_model is None
    volume, affine, _ = read_ct(ct)
    labels = model.predict(volume, affine)
    assert labels.shape == volume.shape  # on the input grid (x, y, z)
    np.testing.assert_array_equal(labels, ts_reference(model, ct, (3.0, 3.0, 3.0)))
    assert {0, 1} <= set(np.unique(labels).tolist())  # not a blank comparison
    # the same network on the CT at its own spacing (no TotalSegmentator resampling) differs a
    # little and agrees a lot: the resampled run is on the same anatomy
    direct = model.inner.predict(volume, affine)
    agree = ((labels > 0) & (direct > 0)).sum() * 2 / ((labels > 0).sum() + (direct > 0).sum())
    assert 0.85 < agree < 1.0
    settings = describe_spec("totalsegmentator:total_fast")
    assert settings["checksum"] == model.checksum
    assert tuple(settings["settings"]["totalsegmentator"]["resample_mm"]) == (3.0, 3.0, 3.0)
    # segment(): reading and TotalSegmentator's steps in the reader thread, the same mask
    manifest = pd.DataFrame({"patient_id": ["P1"], "timepoint": ["V0"], "image": [str(ct)]})
    new = segment(manifest, "totalsegmentator:total_fast", tmp_path / "out", device="cpu")
    written = sitk.ReadImage(str(tmp_path / "out" / new.liver_mask[0]))
    np.testing.assert_array_equal(
        sitk.GetArrayFromImage(written).transpose(2, 1, 0),
        np.isin(labels, [*model.liver_labels, *model.lesion_labels]),
    )


def test_liver_task_crops_to_the_liver_of_the_total_model_or_says_it_does_not(
    toy, ct, tmp_path, monkeypatch
):
    home = tmp_path / "ts"
    monkeypatch.setenv("TOTALSEG_HOME_DIR", str(home))
    place(home, "liver_vessels", toy)  # no resampling of its own; crops to the liver
    volume, affine, _ = read_ct(ct)
    with pytest.warns(
        DataQualityWarning,
        match=r"crops the CT to the liver \(\+20 mm\).*"
        r"'total_fastest' model.*uncropped CT.*totalseg_download_weights -t total`",
    ):
        uncropped = load_model("totalsegmentator:liver_vessels")
    assert uncropped.settings()["totalsegmentator"]["crop"] == "not done"
    assert describe_spec("totalsegmentator:liver_vessels")["checksum"] == uncropped.checksum
    full = uncropped.predict(volume, affine)
    np.testing.assert_array_equal(full, uncropped.inner.predict(volume, affine))

    place(home, "total_fastest", toy)  # the coarse total model (6 mm) now installed
    hashed = []

    def counting_sha256(path, **kw):
        hashed.append(path)
        return file_sha256(path, **kw)

    with warnings.catch_warnings(), monkeypatch.context() as patch:
        warnings.simplefilter("error")
        patch.setattr(metevo.segmentation._card, "file_sha256", counting_sha256)
        cropped = load_model("totalsegmentator:liver_vessels")
    # each checkpoint (the task's, the crop model's) is hashed once at load
    assert sorted(p.parent.parent.parent.name for p in hashed) == [
        "Dataset008_toy_liver_vessels",
        "Dataset298_toy_total_fastest",
    ]
    assert cropped.settings()["totalsegmentator"]["crop"]["model"] == "total_fastest"
    assert cropped.checksum != uncropped.checksum
    assert describe_spec("totalsegmentator:liver_vessels")["checksum"] == cropped.checksum
    labels = cropped.predict(volume, affine)
    # expected: the liver (label "liver") of the 6 mm model, its box + int(20 mm / spacing) voxels
    liver = cropped.crop_model.predict(volume, affine) == 1
    assert liver.any()
    addon = (20.0 / np.array([2.6, 2.6, 3.4])).astype(int)
    idx = np.nonzero(liver)
    box = tuple(
        slice(max(0, int(i.min()) - a), min(n, int(i.max()) + 1 + a))
        for i, a, n in zip(idx, addon, volume.shape, strict=True)
    )
    assert any(b.stop - b.start < n for b, n in zip(box, volume.shape, strict=True))
    inside = np.zeros(volume.shape, bool)
    inside[box] = True
    assert not labels[~inside].any()
    crop_affine = affine.copy()
    crop_affine[:3, 3] += affine[:3, :3] @ np.array([b.start for b in box], float)
    np.testing.assert_array_equal(labels[box], cropped.inner.predict(volume[box], crop_affine))
