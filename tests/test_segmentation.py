"""Tests of metevo.segmentation (CPU, small volumes)."""

from __future__ import annotations

import itertools
import json
import warnings

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

torch = pytest.importorskip("torch")
pytest.importorskip("monai")

import torch.nn.functional as F  # noqa: E402
from _segmentation_helpers import (  # noqa: E402
    one_torch_thread,  # noqa: F401
    run_segmentation_benchmark_blocked,
)
from conftest import make_mini_cohort, write_image  # noqa: E402

from metevo.dictionary import validate_table  # noqa: E402
from metevo.exceptions import DataQualityWarning, GeometryError, ManifestError  # noqa: E402
from metevo.segmentation import (  # noqa: E402
    ModelCard,
    SegmentationModel,
    build_network,
    evaluate,
    evaluation_summary,
    load_model,
    predict_labels,
    segment,
    train,
)
from metevo.segmentation import _core as core  # noqa: E402
from metevo.segmentation._evaluate import dice, match_lesions  # noqa: E402

WINDOW = (-100.0, 250.0)


class Threshold(torch.nn.Module):
    """Stand-in network: liver where lo < HU < hi, lesion where lesion_lo < HU < lesion_hi."""

    def __init__(self, lo=40.5, hi=200.5, lesion=None):
        super().__init__()
        scale = WINDOW[1] - WINDOW[0]
        self.lo, self.hi = (lo - WINDOW[0]) / scale, (hi - WINDOW[0]) / scale
        self.lesion = None if lesion is None else [(v - WINDOW[0]) / scale for v in lesion]

    def forward(self, x):
        liver = 1000 * torch.minimum(x - self.lo, self.hi - x)
        if self.lesion is None:
            lesion = torch.full_like(x, -1e4)
        else:
            lesion = 1000 * torch.minimum(x - self.lesion[0], self.lesion[1] - x)
        return torch.cat([torch.zeros_like(x), liver, lesion], 1)


def card(spacing=(3.0, 3.0, 3.0), **kw):
    args = dict(
        name="stand-in",
        architecture="UNet",
        arguments={"channels": [4, 8], "strides": [2]},
        labels={"background": 0, "liver": 1, "lesion": 2},
        spacing_mm=spacing,
        window_hu=WINDOW,
        patch_size=(32, 32, 16),
        min_liver_ml=0.0,
        min_lesion_ml=0.0,
    )
    args.update(kw)
    return ModelCard(**args)


def stand_in(spacing=(3.0, 3.0, 3.0), lesion=None, **kw):
    """The pointwise stand-in; big windows (the result does not depend on them) keep it fast."""
    kw.setdefault("patch_size", (192, 192, 48))
    return SegmentationModel(card(spacing, **kw), Threshold(lesion=lesion))


# ----------------------------------------------------------------------------- model cards


def test_card_rejects_bad_values():
    with pytest.raises(ValueError, match="architecture must be one of"):
        card(architecture="VNet3000")
    with pytest.raises(ValueError, match=r"missing \['lesion'\]"):
        card(labels={"background": 0, "liver": 1})
    with pytest.raises(ValueError, match="channels 0..2 once each"):
        card(labels={"background": 0, "liver": 1, "lesion": 3})
    with pytest.raises(ValueError, match="orientation"):
        card(orientation="RAR")
    with pytest.raises(ValueError, match="one CT channel"):
        card(in_channels=2)
    with pytest.raises(ValueError, match=r"unknown keys \['spacing'\]"):
        ModelCard.from_dict({**card().to_dict(), "spacing": [1, 1, 1]})


def _save_model(tmp_path, c, network=None, *, name="m"):
    network = network if network is not None else build_network(c)
    torch.save(network.state_dict(), tmp_path / f"{name}.pt")
    c.weights = f"{name}.pt"
    c.write(tmp_path / f"{name}.json")
    return tmp_path / f"{name}.json"


def test_load_model_round_trip_and_checksum(tmp_path):
    c = card()
    net = build_network(c)
    path = _save_model(tmp_path, c, net)
    model = load_model(path)
    for key, value in net.state_dict().items():
        assert torch.equal(model.network.state_dict()[key], value)
    assert model.checksum == load_model(path).checksum
    assert "UNet" in repr(model)


def test_pickled_checkpoint_is_refused(tmp_path):
    c = card()
    net = build_network(c)
    torch.save(net, tmp_path / "whole.pt")  # a pickled nn.Module, not a state_dict
    c.weights = "whole.pt"
    c.write(tmp_path / "whole.json")
    with pytest.raises(ValueError, match="pickled Python objects.*refuses"):
        load_model(tmp_path / "whole.json")


def test_training_checkpoint_is_refused_with_hint(tmp_path):
    c = card()
    torch.save({"state_dict": build_network(c).state_dict(), "epoch": 3}, tmp_path / "ckpt.pt")
    c.weights = "ckpt.pt"
    c.write(tmp_path / "ckpt.json")
    with pytest.raises(ValueError, match=r"checkpoint\['state_dict'\]"):
        load_model(tmp_path / "ckpt.json")


def test_card_and_weights_that_disagree(tmp_path):
    small = card(arguments={"channels": [4, 8], "strides": [2]})
    path = _save_model(tmp_path, small)
    data = json.loads(path.read_text())
    data["arguments"] = {"channels": [8, 16], "strides": [2]}
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="shape mismatches"):
        load_model(path)
    # a checksum recorded in the card must match the file
    data = json.loads(path.read_text())
    data["arguments"] = {"channels": [4, 8], "strides": [2]}
    data["weights_sha256"] = "0" * 64
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="the card and the weights disagree"):
        load_model(path)


def test_wrong_number_of_input_channels(tmp_path):
    two = build_network(card()).__class__(
        spatial_dims=3, in_channels=2, out_channels=3, channels=[4, 8], strides=[2]
    )
    path = _save_model(tmp_path, card(), two)
    with pytest.raises(ValueError, match="weights expect 2 input channels"):
        load_model(path)
    with pytest.raises(ValueError, match=r"expected a 3-D CT volume .* found shape \(2, 8, 8, 8\)"):
        predict_labels(Threshold(), np.zeros((2, 8, 8, 8)), np.eye(4), card(), device="cpu")


# ----------------------------------------------------------------------------- geometry core


def test_canonical_transform_known_answer():
    # axis 0 -> +y (P), axis 1 -> -z (I), axis 2 -> +x (L); worked by hand for RAS
    affine = core.lps_affine((1, 2, 3), (0, 0, 0), (0, 0, 1, 1, 0, 0, 0, -1, 0))
    perm, flips, spacing = core.canonical_transform(affine, "RAS")
    assert perm == (2, 0, 1)
    assert flips == (True, True, True)
    assert spacing == (3.0, 1.0, 2.0)


def test_every_axis_order_reaches_the_same_canonical_array():
    rng = np.random.default_rng(0)
    ras = torch.from_numpy(rng.normal(size=(4, 5, 6)))
    # RAS storage expressed in LPS: x and y columns negated
    base = np.diag([-1.0, -1.0, 1.0])
    for perm in itertools.permutations(range(3)):
        for flips in itertools.product([False, True], repeat=3):
            arr, cols = ras, base.copy()
            for ax, f in enumerate(flips):
                if f:
                    arr = arr.flip(ax)
                    cols[:, ax] *= -1
            arr = arr.permute(*perm)
            cols = cols[:, list(perm)]
            affine = np.eye(4)
            affine[:3, :3] = cols
            p, fl, _ = core.canonical_transform(affine, "RAS")
            canon = core.to_canonical(arr, p, fl)
            assert torch.equal(canon, ras), (perm, flips)
            assert torch.equal(core.from_canonical(canon, p, fl), arr)


@pytest.mark.parametrize("chunk", [1, 5000, 2**30])
def test_resize_argmax_matches_full_interpolation(chunk):
    logits = torch.randn(1, 3, 7, 9, 11, generator=torch.Generator().manual_seed(1))
    for shape in [(20, 17, 31), (4, 5, 3), (7, 9, 11)]:
        expected = F.interpolate(logits, size=shape, mode="trilinear").argmax(1)[0]
        got = core.resize_argmax(logits, shape, chunk_bytes=chunk)
        assert torch.equal(got.long(), expected)


def test_label_components_torch_matches_scipy():
    mask = torch.zeros(12, 12, 12, dtype=torch.bool)
    mask[1:3, 1:3, 1:3] = True
    mask[3, 3, 3] = True  # touches the first block diagonally: one 26-component
    mask[6:10, 6:8, 2:9] = True
    mask[0, 11, 11] = True
    for backend in ("torch", "scipy"):
        labels, n = core.label_components(mask, backend=backend)
        assert n == 3
        assert int(labels[3, 3, 3]) == int(labels[1, 1, 1])
        assert sorted(torch.bincount(labels.flatten())[1:].tolist()) == [1, 9, 56]
    rng = np.random.default_rng(3)
    random_mask = torch.from_numpy(rng.random((20, 16, 12)) > 0.75)
    a, na = core.label_components(random_mask, backend="torch")
    b, nb = core.label_components(random_mask, backend="scipy")
    pairs = set(zip(a[random_mask].tolist(), b[random_mask].tolist(), strict=True))
    assert na == nb == len(pairs)


def test_postprocess_rules():
    spacing = (2.0, 2.0, 2.0)  # 0.008 ml per voxel
    lab = torch.zeros(30, 30, 30, dtype=torch.uint8)
    lab[5:20, 5:20, 5:20] = 1  # liver, 27 ml
    lab[8:14, 8:14, 8:14] = 2  # lesion inside the liver: kept
    lab[16, 16, 16] = 2  # one-voxel lesion inside the liver: becomes liver
    lab[27:29, 27:29, 27:29] = 2  # lesion far from the liver: dropped, background
    lab[0, 28, 0] = 1  # one-voxel liver fragment: removed
    out = core.postprocess(
        lab, spacing, liver=1, lesion=2, liver_dilation_mm=4.0, min_lesion_ml=0.02, min_liver_ml=1.0
    )
    assert int((out == 2).sum()) == 216
    assert int(out[16, 16, 16]) == 1
    assert int(out[27:29, 27:29, 27:29].max()) == 0
    assert int(out[0, 28, 0]) == 0


def _ball_volume(shape, spacing, direction, centre_mm, radius_mm):
    """HU volume (x, y, z) with a 100 HU ball in -1000 HU air, and its LPS affine."""
    affine = core.lps_affine(spacing, (0, 0, 0), direction)
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1)
    pts = idx @ affine[:3, :3].T + affine[:3, 3]
    inside = np.linalg.norm(pts - np.asarray(centre_mm), axis=-1) <= radius_mm
    return np.where(inside, 100, -1000).astype(np.int16), affine, pts, inside


@pytest.mark.parametrize(
    "direction",
    [(1, 0, 0, 0, 1, 0, 0, 0, 1), (-1, 0, 0, 0, -1, 0, 0, 0, 1), (0, 0, 1, 1, 0, 0, 0, -1, 0)],
)
def test_mask_lands_on_the_anatomy_after_resampling(direction):
    shape, spacing = (40, 36, 14), (0.8, 0.9, 2.5)
    affine = core.lps_affine(spacing, (0, 0, 0), direction)
    centre = affine[:3, :3] @ np.array([21.3, 17.6, 6.2])
    volume, affine, pts, inside = _ball_volume(shape, spacing, direction, centre, 9.0)
    out = predict_labels(Threshold(lo=0.0, hi=300.0), volume, affine, card((3, 3, 3)), device="cpu")
    mask = out == 1
    got = pts[mask].mean(0)
    want = pts[inside].mean(0)
    assert np.abs(got - want).max() < 0.35  # mm, a tenth of the model voxel
    assert dice(mask, inside) > 0.9


def test_non_hu_intensities_warn():
    volume = np.full((16, 16, 8), 1200, np.int16)
    volume[4:12, 4:12, 2:6] = 3000
    with pytest.warns(DataQualityWarning, match="do not look like CT Hounsfield units"):
        predict_labels(Threshold(), volume, np.eye(4), card(), device="cpu")


def test_bf16_autocast_matches_fp32_on_cpu():
    volume, affine, _, inside = _ball_volume(
        (30, 30, 12), (1.0, 1.0, 2.5), np.eye(3).ravel(), (15, 14, 14), 8
    )
    net = build_network(card(arguments={"channels": [4, 8], "strides": [2]}))
    net.eval()
    a = predict_labels(net, volume, affine, card(), device="cpu", precision="fp32")
    b = predict_labels(net, volume, affine, card(), device="cpu", precision="bf16")
    assert (a == b).mean() > 0.97


@pytest.mark.parametrize(
    ("precision", "device", "expected"),
    [
        ("auto", "cpu", False),
        ("auto", "cuda", True),
        ("auto", "cuda:1", True),
        ("bf16", "cpu", True),
        ("bf16", "cuda", True),
        ("fp32", "cpu", False),
        ("fp32", "cuda", False),
    ],
)
def test_uses_bf16(precision, device, expected):
    # "auto": bf16 autocast on CUDA, fp32 on the CPU (the precision option of segment())
    assert core.uses_bf16(precision, torch.device(device)) is expected


# ----------------------------------------------------------------------------- segment()


def _ct_manifest(tmp_path, n=3):
    rows = []
    for i in range(n):
        vol = np.full((10, 24, 24), -1000, np.int16)
        vol[2:8, 5:19, 5:19] = 100  # "liver"
        vol[4:6, 9:13, 9:13] = 0
        path = write_image(tmp_path / "ct" / f"c{i}.nii.gz", vol, spacing=(2.0, 2.0, 3.0))
        rows.append(
            {
                "patient_id": f"P{i}",
                "timepoint": "V0",
                "date": "2021-03-01",
                "image": str(path),
                "phase": "pv",
            }
        )
    return pd.DataFrame(rows)


def test_segment_writes_masks_provenance_and_manifest(tmp_path):
    manifest = _ct_manifest(tmp_path)
    manifest["lesion_mask_kind"] = "labels"  # describes masks the new manifest replaces
    model = stand_in((2.0, 2.0, 3.0), lesion=(-50.5, 50.5))
    new = segment(manifest, model, tmp_path / "out", device="cpu")
    assert list(new.columns[:5]) == ["patient_id", "timepoint", "date", "image", "phase"]
    assert (new.lesion_mask_kind == "binary").all()
    log = new.attrs["log"]
    assert log.status.tolist() == ["computed"] * 3
    validate_table(log, "segmentation_log")
    written = pd.read_csv(tmp_path / "out" / "manifest.csv")
    assert written.lesion_mask.tolist() == new.lesion_mask.tolist()
    for rec in new.itertuples():
        liver = sitk.ReadImage(str(tmp_path / "out" / rec.liver_mask))
        lesion = sitk.ReadImage(str(tmp_path / "out" / rec.lesion_mask))
        ct = sitk.ReadImage(rec.image)
        a = sitk.GetArrayFromImage(ct)
        assert liver.GetSpacing() == ct.GetSpacing() and liver.GetOrigin() == ct.GetOrigin()
        np.testing.assert_array_equal(sitk.GetArrayFromImage(lesion), (a == 0).astype(np.uint8))
        np.testing.assert_array_equal(sitk.GetArrayFromImage(liver), (a >= 0).astype(np.uint8))
        prov = json.loads(
            (tmp_path / "out" / rec.liver_mask).with_name("provenance.json").read_text()
        )
        assert prov["model"]["checksum"] == model.checksum
        assert prov["preprocessing"]["overlap"] == 0.25
    # the new manifest opens as a cohort, masks on the CT grids
    import metevo

    cohort = metevo.open_cohort(tmp_path / "out" / "manifest.csv", errors="raise")
    scan = cohort["P1"]["V0"]
    assert scan.lesion_mask_kind == "binary"
    assert int(sitk.GetArrayFromImage(scan.lesion_mask()).sum()) == 32


def test_segment_runs_once_and_resumes(tmp_path, monkeypatch):
    manifest = _ct_manifest(tmp_path, n=4)
    model = stand_in((2.0, 2.0, 3.0))
    out = tmp_path / "out"
    import metevo.segmentation._core as core_module

    real = core_module.predict_labels
    calls = {"n": 0}

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # the run is killed while segmenting the third scan
        return real(*args, **kwargs)

    monkeypatch.setattr(core_module, "predict_labels", interrupted)
    with pytest.raises(KeyboardInterrupt):  # one CT at a time (several: test_segmentation_multi)
        segment(manifest, model, out, device="cpu", cts_per_batch=1)
    monkeypatch.setattr(core_module, "predict_labels", real)
    assert len(list(out.glob("masks/*/*/provenance.json"))) == 2
    # a half-written scan (mask without provenance) must not be trusted
    half = out / "masks" / "P2" / "V0"
    half.mkdir(parents=True, exist_ok=True)
    (half / "liver.nii.gz").write_bytes(b"truncated")
    new = segment(manifest, model, out, device="cpu")
    assert new.attrs["log"].status.tolist() == ["reused", "reused", "computed", "computed"]
    stamps = {p: (p.stat().st_mtime_ns, p.stat().st_ino) for p in out.glob("masks/*/*/*")}
    manifest_stamp = (out / "manifest.csv").stat().st_mtime_ns
    again = segment(manifest, model, out, device="cpu")
    assert again.attrs["log"].status.tolist() == ["reused"] * 4
    assert {p: (p.stat().st_mtime_ns, p.stat().st_ino) for p in out.glob("masks/*/*/*")} == stamps
    assert (out / "manifest.csv").stat().st_mtime_ns == manifest_stamp
    # a different model (or settings) recomputes
    other = segment(manifest, model, out, device="cpu", overlap=0.5)
    assert other.attrs["log"].status.tolist() == ["computed"] * 4
    assert not list(out.rglob("*.tmp*"))


def test_unreadable_scan_is_recorded_and_others_continue(tmp_path):
    manifest = _ct_manifest(tmp_path)
    bad = tmp_path / "ct" / "broken.nii.gz"
    bad.write_bytes(b"not a nifti")
    manifest.loc[1, "image"] = str(bad)
    with pytest.warns(DataQualityWarning, match="1 of 3 scans .* could not be segmented"):
        new = segment(manifest, stand_in((2.0, 2.0, 3.0)), tmp_path / "out", device="cpu")
    log = new.attrs["log"]
    assert log.status.tolist() == ["computed", "failed", "computed"]
    assert "ImageReadError" in log.error[1]
    assert new.lesion_mask[1] == "" and new.lesion_mask[0] != ""


def test_segment_manifest_errors(tmp_path):
    with pytest.raises(ManifestError, match=r"missing column\(s\) \['image'\]"):
        segment(pd.DataFrame({"patient_id": ["P1"], "timepoint": ["V0"]}), stand_in(), tmp_path)
    dup = pd.DataFrame({"patient_id": ["P1", "P1"], "timepoint": ["V0", "V0"], "image": ["a", "b"]})
    with pytest.raises(ManifestError, match="several rows for timepoint 'V0'"):
        segment(dup, stand_in(), tmp_path)


# ----------------------------------------------------------------------------- real CT


def _lps_copy(src, dst):
    image = sitk.DICOMOrient(sitk.ReadImage(str(src)), "LPS")
    sitk.WriteImage(image, str(dst))
    return dst


def test_masks_land_on_the_real_ct_nifti_ras_lps_and_dicom(shared_data, tmp_path):
    nib = pytest.importorskip("nibabel")
    from metevo.cohort.io import read_image

    folder = shared_data / "ct_example"
    ras = folder / "example_ct_sm.nii.gz"
    lps = _lps_copy(ras, tmp_path / "example_ct_lps.nii.gz")
    assert nib.aff2axcodes(nib.load(str(ras)).affine) == ("R", "A", "S")
    assert nib.aff2axcodes(nib.load(str(lps)).affine) == ("L", "P", "S")
    dicom = folder / "example_ct_dicom"
    # model spacing = the scan's own spacing, so the stand-in is a pure function of each voxel
    for image, spacing in (
        (ras, (3, 3, 3)),
        (lps, (3, 3, 3)),
        (dicom, (0.9765625, 0.9765625, 2.0)),
    ):
        manifest = pd.DataFrame({"patient_id": ["X"], "timepoint": ["V0"], "image": [str(image)]})
        out = tmp_path / f"out_{image.name}"
        new = segment(manifest, stand_in(spacing), out, device="cpu")
        mask_path = out / new.liver_mask[0]
        ct = read_image(image)
        expected = (sitk.GetArrayFromImage(ct) > 40.5) & (sitk.GetArrayFromImage(ct) < 200.5)
        assert expected.sum() > 10_000
        # independent reader: nibabel's RAS affine must put every mask voxel on the CT voxel
        nii = nib.load(str(mask_path))
        idx = np.array([[0, 0, 0], [5, 7, 3], [int(ct.GetSize()[0]) - 1, 2, 1]])
        for ijk in idx:
            lps_point = np.array(ct.TransformIndexToPhysicalPoint([int(v) for v in ijk]))
            ras_point = (nii.affine @ np.r_[ijk, 1])[:3]
            np.testing.assert_allclose(ras_point, lps_point * [-1, -1, 1], atol=1e-3)
        got = np.asarray(nii.dataobj).transpose(2, 1, 0) != 0  # nibabel (x, y, z) -> (z, y, x)
        np.testing.assert_array_equal(got, expected)


def test_real_ct_at_model_spacing_keeps_the_anatomy_in_place(shared_data, tmp_path):
    from metevo.cohort.io import read_image

    dicom = shared_data / "ct_example" / "example_ct_dicom"
    manifest = pd.DataFrame({"patient_id": ["X"], "timepoint": ["V0"], "image": [str(dicom)]})
    new = segment(manifest, stand_in((3, 3, 3)), tmp_path / "out", device="cpu")
    ct = read_image(dicom)
    mask = sitk.ReadImage(str(tmp_path / "out" / new.liver_mask[0]))
    # reference: same function applied to the CT smoothed like the model sees it (resampled to
    # 3 mm and back with ITK's linear interpolator, an independent implementation)
    a = sitk.GetArrayFromImage(mask).astype(bool)
    hu = sitk.GetArrayFromImage(ct)
    ref = (hu > 40.5) & (hu < 200.5)

    def centroid(m):
        idx = np.argwhere(m)[:, ::-1].mean(0)
        return np.array(ct.TransformContinuousIndexToPhysicalPoint(idx.tolist()))

    assert np.abs(centroid(a) - centroid(ref)).max() < 1.5  # mm, half a model voxel
    assert dice(a, ref) > 0.8


# ----------------------------------------------------------------------------- evaluation


def test_match_lesions_and_dice_by_hand():
    ref = np.zeros((10, 10, 10), int)
    ref[0:2, 0:2, 0:2] = 1  # 8 voxels
    ref[5:7, 5:7, 5:7] = 2  # 8 voxels
    pred = np.zeros_like(ref)
    pred[0:2, 0:2, 0:3] = 1  # IoU with lesion 1 = 8/12 -> detected
    pred[5:6, 5:7, 5:7] = 2  # IoU with lesion 2 = 4/8 = 0.5 -> detected (>= 0.5)
    pred[9, 9, 9] = 3  # false positive
    assert match_lesions(ref, pred) == (2, 3, 2)
    pred[5:6, 5:7, 5:6] = 0  # IoU 2/8 -> missed
    assert match_lesions(ref, pred) == (2, 3, 1)
    assert dice(ref > 0, pred > 0) == pytest.approx(2 * (8 + 2) / (16 + 12 + 2 + 1))
    assert dice(np.zeros(3), np.zeros(3)) == 1.0


def test_evaluate_toy_masks(tmp_path):
    shape = (8, 12, 12)  # spacing 2 x 2 x 3 -> 0.012 ml per voxel
    ref_rows, pred_rows = [], []
    for pid in ("P1", "P2"):
        liver = np.zeros(shape, np.uint8)
        liver[1:7, 2:10, 2:10] = 1  # 384 voxels
        lesion = np.zeros(shape, np.uint8)
        lesion[2:4, 3:5, 3:5] = 1  # 8 voxels
        lesion[5:6, 7:9, 7:9] = 1  # 4 voxels
        ct = np.where(liver > 0, 60, -1000).astype(np.int16)
        write_image(tmp_path / pid / "ct.nii.gz", ct)
        write_image(tmp_path / pid / "liver.nii.gz", liver)
        write_image(tmp_path / pid / "lesion.nii.gz", lesion)
        pliver = liver.copy()
        pliver[1] = 0  # 64 voxels missed
        plesion = np.zeros(shape, np.uint8)
        plesion[2:4, 3:5, 3:5] = 1  # exact first lesion, second missed
        write_image(tmp_path / "pred" / pid / "liver.nii.gz", pliver)
        write_image(tmp_path / "pred" / pid / "lesion.nii.gz", plesion)
        ref_rows.append(
            {
                "patient_id": pid,
                "timepoint": "V0",
                "date": "2021-01-01",
                "image": f"{pid}/ct.nii.gz",
                "lesion_mask": f"{pid}/lesion.nii.gz",
                "liver_mask": f"{pid}/liver.nii.gz",
            }
        )
        pred_rows.append(
            {
                "patient_id": pid,
                "timepoint": "V0",
                "lesion_mask": f"{pid}/lesion.nii.gz",
                "liver_mask": f"{pid}/liver.nii.gz",
            }
        )
    pd.DataFrame(ref_rows).to_csv(tmp_path / "ref.csv", index=False)
    pd.DataFrame(pred_rows).to_csv(tmp_path / "pred" / "manifest.csv", index=False)
    table, lesions = evaluate(tmp_path / "pred" / "manifest.csv", tmp_path / "ref.csv", per_lesion=True)
    validate_table(table, "segmentation_eval")
    liver = table[table.structure == "liver"].iloc[0]
    assert liver.dice == pytest.approx(2 * 320 / (384 + 320))
    assert liver.volume_error_ml == pytest.approx(-64 * 0.012)
    lesion = table[table.structure == "lesion"].iloc[0]
    assert lesion.dice == pytest.approx(2 * 8 / (12 + 8))
    assert (lesion.n_reference_lesions, lesion.n_predicted_lesions, lesion.n_detected_lesions) == (
        2,
        1,
        1,
    )
    assert lesion.precision == 1.0 and lesion.recall == 0.5
    validate_table(lesions, "segmentation_eval_lesions")
    # 2 scans x 2 thresholds: 2 reference lesions and 1 predicted each
    assert sorted(lesions.groupby("source").size().items()) == [("predicted", 4), ("reference", 8)]
    summary = evaluation_summary(table)
    validate_table(summary, "segmentation_eval_summary")
    row = summary.set_index("structure").loc["lesion"]
    assert row.global_dice == pytest.approx(2 * 16 / (24 + 16))
    assert row.recall == 0.5


def test_evaluate_refuses_masks_on_another_grid(tmp_path):
    shape = (6, 8, 8)
    write_image(tmp_path / "ct.nii.gz", np.zeros(shape, np.int16))
    write_image(tmp_path / "lesion.nii.gz", np.zeros(shape, np.uint8))
    write_image(tmp_path / "liver.nii.gz", np.ones(shape, np.uint8))
    write_image(tmp_path / "p_liver.nii.gz", np.ones(shape, np.uint8), spacing=(1, 1, 1))
    ref = pd.DataFrame(
        [
            {
                "patient_id": "P1",
                "timepoint": "V0",
                "date": "2021-01-01",
                "image": "ct.nii.gz",
                "lesion_mask": "lesion.nii.gz",
                "liver_mask": "liver.nii.gz",
            }
        ]
    )
    ref.to_csv(tmp_path / "ref.csv", index=False)
    pred = pd.DataFrame(
        [{"patient_id": "P1", "timepoint": "V0", "lesion_mask": "", "liver_mask": "p_liver.nii.gz"}]
    )
    pred.to_csv(tmp_path / "pred.csv", index=False)
    with pytest.raises(GeometryError, match="patient P1, timepoint V0.*spacing"):
        evaluate(tmp_path / "pred.csv", tmp_path / "ref.csv")


# ----------------------------------------------------------------------------- training


def test_tiny_network_learns_something(tmp_path):
    cohort = make_mini_cohort(tmp_path / "cohort", n_patients=2, n_visits=2, shape=(12, 32, 32))
    c = card(
        (2.0, 2.0, 3.0),
        name="tiny",
        arguments={"channels": [8, 16], "strides": [2], "num_res_units": 1},
        patch_size=(16, 16, 8),
    )
    torch.manual_seed(0)
    untrained = SegmentationModel(c, build_network(c).eval())
    trained = train(
        cohort["manifest"], c, tmp_path / "model", steps=40, batch_size=4, seed=0, device="cpu"
    )
    assert (tmp_path / "model" / "tiny.pt").is_file()
    reloaded = load_model(tmp_path / "model" / "tiny.json")
    assert reloaded.card.training["steps"] == 40
    manifest = pd.read_csv(cohort["manifest"])
    scores = {}
    for label, model in (("untrained", untrained), ("trained", reloaded)):
        new = segment(cohort["manifest"], model, tmp_path / f"seg_{label}", device="cpu")
        table = evaluate(new, cohort["manifest"], base_dir=tmp_path / f"seg_{label}")
        scores[label] = evaluation_summary(table).set_index("structure").global_dice
    assert scores["trained"]["liver"] > 0.9
    assert scores["trained"]["liver"] > scores["untrained"]["liver"] + 0.3
    assert len(manifest) == 4 and trained.card.weights_sha256 == reloaded.weights_sha256


# ----------------------------------------------------------------------------- CLI, benchmark


def test_cli_segment_and_segment_eval(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import metevo.segmentation as seg
    from metevo.cli import app

    cohort = make_mini_cohort(tmp_path / "cohort", n_patients=1, n_visits=2, shape=(10, 24, 24))
    # the stand-in replaces the demo model; the CLI passes the name through to load_model
    model = stand_in((2.0, 2.0, 3.0), lesion=(20.5, 45.5))
    real_segment = seg.segment
    monkeypatch.setattr(seg, "segment", lambda m, name, *a, **k: real_segment(m, model, *a, **k))
    runner = CliRunner()
    out = tmp_path / "seg"
    result = runner.invoke(
        app,
        ["segment", str(cohort["manifest"]), "--out", str(out), "--device", "cpu", "--no-progress"],
    )
    assert result.exit_code == 0, result.output
    assert "2 scan(s): 2 segmented, 0 up to date, 0 failed" in result.output
    result = runner.invoke(
        app,
        [
            "segment-eval",
            str(out / "manifest.csv"),
            str(cohort["manifest"]),
            "--out",
            str(tmp_path / "ev"),
        ],
    )
    assert result.exit_code == 0, result.output
    summary = pd.read_parquet(tmp_path / "ev" / "segmentation_eval_summary.parquet")
    # liver 60 HU and lesion 30 HU are exactly what the stand-in thresholds: perfect masks
    assert summary.set_index("structure").global_dice.tolist() == [1.0, 1.0]
    detection = pd.read_parquet(tmp_path / "ev" / "segmentation_eval_detection.parquet")
    assert detection.set_index(["iou_threshold", "size_bin"]).loc[(0.5, "all"), "recall"] == 1.0
    assert "Per-lesion detection" in result.output
    result = runner.invoke(app, ["segment", str(tmp_path / "missing.csv"), "--out", str(out)])
    assert result.exit_code == 2 and "does not exist" in result.output


@pytest.mark.slow
def test_benchmark_runs_with_torch_numpy_monai_and_nibabel_only(tmp_path):
    # nibabel: MONAI's Orientation (baseline) needs it; metevo's core does not
    args = ["--device", "cpu", "--shape", "40", "40", "12", "--patch", "32", "32", "32",
            "--init-filters", "8", "--repeats", "1"]  # fmt: skip
    figures = run_segmentation_benchmark_blocked(args, tmp_path / "bench.json")
    assert figures["metevo"]["ct_per_min"] > 0 and figures["baseline"]["ct_per_min"] > 0
    assert figures["agreement"]["liver_dice"] > 0.9


# ----------------------------------------------------------------------------- demo model


def test_demo_model_ships_with_its_card():
    from metevo.segmentation._model import DEMO_CARD

    model = load_model("demo")
    assert "DEMO model, not for clinical use" in model.card.description
    assert (DEMO_CARD.parent / model.card.weights).stat().st_size < 5 * 2**20
    training = model.card.training
    assert training["data"]["test_seed"] != training["data"]["train_seed"]
    assert min(model.card.spacing_mm) >= 3.0
    assert "python -m metevo.segmentation._demo" in training["command"]


@pytest.mark.slow
def test_demo_model_on_held_out_synthetic_patients(tmp_path):
    from metevo.datasets import make_synthetic_cohort

    model = load_model("demo")
    seed = 5  # not the training seed (1) nor the card's test seed (2)
    assert seed not in (
        model.card.training["data"]["train_seed"],
        model.card.training["data"]["test_seed"],
    )
    synth = make_synthetic_cohort(tmp_path / "cohort", n_patients=2, seed=seed, size="small")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        predicted = segment(synth.manifest, model, tmp_path / "seg", device="cpu")
    summary = evaluation_summary(evaluate(tmp_path / "seg" / "manifest.csv", synth.manifest))
    dice_by = summary.set_index("structure").global_dice
    assert dice_by["liver"] >= 0.90
    assert dice_by["lesion"] >= 0.50
    assert len(predicted) >= 8


def test_out_of_memory_falls_back_to_cpu_buffers_then_cpu():
    from metevo.segmentation._segment import _predict_bounded

    calls = []

    def predict(network, volume, affine, card, *, device, **options):
        calls.append((str(device), options.get("max_buffer_gb"), options["sw_batch_size"]))
        if len(calls) < 3:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        return "labels"

    class Net:
        def cpu(self):
            calls.append("net->cpu")

        def to(self, device):
            calls.append(f"net->{device}")

    labels, how = _predict_bounded(
        predict, Net(), None, None, None, torch.device("cuda"), sw_batch_size=8, overlap=0.25
    )
    assert (labels, how) == ("labels", "cpu")
    assert calls == [("cuda", None, 8), ("cuda", 0.0, 1), "net->cpu", ("cpu", None, 1), "net->cuda"]


@pytest.mark.slow
def test_segment_reads_ahead_in_worker_processes(tmp_path):
    manifest = _ct_manifest(tmp_path, n=3)
    manifest.loc[1, "image"] = str(tmp_path / "missing.nii.gz")
    model = stand_in((2.0, 2.0, 3.0))
    with pytest.warns(DataQualityWarning, match="1 of 3 scans"):
        new = segment(manifest, model, tmp_path / "w", device="cpu", num_workers=2)
    ref = segment(manifest.drop(index=1), model, tmp_path / "s", device="cpu", num_workers=0)
    assert new.attrs["log"].status.tolist() == ["computed", "failed", "computed"]
    for a, b in zip(new.lesion_mask[[0, 2]], ref.lesion_mask, strict=True):
        x = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "w" / a)))
        y = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "s" / b)))
        np.testing.assert_array_equal(x, y)
