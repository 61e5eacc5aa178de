from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from metevo.cohort.io import (
    check_same_grid,
    grid_difference,
    interpret_mask,
    read_image,
    read_image_header,
    resample_to_grid,
)
from metevo.exceptions import GeometryError, ImageReadError, MaskValueError
from tests.conftest import write_image


def _img(arr, **kw):
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(kw.get("spacing", (1.0, 1.0, 2.0)))
    img.SetOrigin(kw.get("origin", (0.0, 0.0, 0.0)))
    return img


def test_read_missing_file_names_path(tmp_path):
    with pytest.raises(ImageReadError, match=r"File not found: .*nope\.nii\.gz"):
        read_image(tmp_path / "nope.nii.gz")


def test_read_corrupt_file(tmp_path):
    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00garbage" * 10)
    with pytest.raises(ImageReadError, match=r"Could not read .*bad\.nii\.gz.*corrupt"):
        read_image(bad)


def test_header_matches_image(tmp_path):
    arr = np.zeros((4, 5, 6), np.int16)
    p = write_image(tmp_path / "a.nrrd", arr, spacing=(0.5, 0.7, 2.5), origin=(1, 2, 3))
    h = read_image_header(p)
    assert h["size"] == (6, 5, 4)
    assert h["spacing"] == pytest.approx((0.5, 0.7, 2.5))
    assert not grid_difference(h, read_image(p))


def test_grid_difference_lists_each_difference():
    a = _img(np.zeros((3, 4, 5), np.uint8))
    b = _img(np.zeros((3, 4, 6), np.uint8), spacing=(1.0, 1.0, 2.5), origin=(0.0, 0.0, 4.0))
    diff = grid_difference(a, b)
    text = str(diff)
    assert "size (5, 4, 3) vs (6, 4, 3)" in text
    assert "spacing" in text and "origin" in text
    with pytest.raises(
        GeometryError, match=r"P1 V2: mask does not share the image grid.*resample_masks=True"
    ):
        check_same_grid(a, b, context="P1 V2")


def test_small_origin_jitter_is_tolerated():
    a = _img(np.zeros((3, 4, 5), np.uint8))
    b = _img(np.zeros((3, 4, 5), np.uint8), origin=(1e-4, 0.0, 0.0))
    assert not grid_difference(a, b)


def test_resample_to_grid_is_exact_on_same_lattice():
    arr = np.zeros((4, 6, 8), np.uint8)
    arr[1:3, 2:4, 3:7] = 1
    ref = _img(np.zeros((4, 6, 10), np.uint8), origin=(-2.0, 0.0, 0.0))
    out = resample_to_grid(_img(arr), ref)
    out_arr = sitk.GetArrayFromImage(out)
    assert out_arr.shape == (4, 6, 10)
    assert out_arr.sum() == arr.sum()
    np.testing.assert_array_equal(out_arr[:, :, 2:], arr)


def test_interpret_binary_rejects_several_labels():
    arr = np.zeros((3, 3, 3), np.uint8)
    arr[0, 0, 0], arr[1, 1, 1] = 1, 2
    with pytest.raises(
        MaskValueError,
        match=r"'binary' holds 2 distinct non-zero values \(1, 2\).*instances.*labels",
    ):
        interpret_mask(_img(arr), "binary", context="P7 V1")


def test_interpret_binary_any_single_value():
    arr = np.zeros((3, 3, 3), np.uint8)
    arr[0, 0, 0] = 255
    out = interpret_mask(_img(arr), "binary")
    assert out.GetPixelID() == sitk.sitkUInt8
    assert sitk.GetArrayViewFromImage(out).sum() == 1


def test_interpret_rejects_fractional_floats():
    arr = np.zeros((3, 3, 3), np.float32)
    arr[0, 0, 0] = 0.4
    with pytest.raises(MaskValueError, match=r"non-integer values e\.g\. 0\.4.*Threshold"):
        interpret_mask(_img(arr), "binary", path="m.nii.gz")


def test_interpret_accepts_integral_floats_and_labels():
    arr = np.zeros((3, 3, 3), np.float32)
    arr[0, 0, 0], arr[1, 1, 1], arr[2, 2, 2] = 1.0, 2.0, 2.0
    lesions = interpret_mask(_img(arr), "labels", label=2)
    assert sitk.GetArrayViewFromImage(lesions).sum() == 2
    inst = interpret_mask(_img(arr), "instances")
    assert inst.GetPixelID() == sitk.sitkUInt32
    with pytest.raises(MaskValueError, match="needs the class value"):
        interpret_mask(_img(arr), "labels")


def test_interpret_rejects_negative():
    arr = np.zeros((3, 3, 3), np.int16)
    arr[0, 0, 0] = -1
    with pytest.raises(MaskValueError, match="negative"):
        interpret_mask(_img(arr), "instances")


def test_dicom_series(shared_data):
    ct = read_image(shared_data / "ct_example" / "example_ct_dicom")
    assert ct.GetSize() == (512, 512, 20)
    assert ct.GetSpacing() == pytest.approx((0.9765625, 0.9765625, 2.0))


def test_dicom_seg_placed_on_reference_lattice(shared_data):
    path = shared_data / "dicom" / "seg_image_ct_binary.dcm"
    own = read_image(path)
    assert own.GetSize() == (16, 16, 3)
    assert own.GetSpacing() == pytest.approx((0.488281, 0.488281, 1.25))
    own_arr = sitk.GetArrayFromImage(own)
    assert set(np.unique(own_arr)) == {0, 1}
    # a reference grid on the same lattice, two slices larger on each side
    ref = sitk.Image([16, 16, 7], sitk.sitkInt16)
    ref.SetSpacing(own.GetSpacing())
    ref.SetDirection(own.GetDirection())
    ref.SetOrigin(own.TransformContinuousIndexToPhysicalPoint((0, 0, -2)))
    placed = read_image(path, reference=ref)
    assert not grid_difference(ref, placed)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(placed)[2:5], own_arr)
    # the CT in the same folder is another series: not the SEG's lattice
    single = read_image(shared_data / "dicom" / "ct_image.dcm")
    with pytest.raises(GeometryError, match="not on the referenced image's lattice"):
        read_image(path, reference=single)


def test_dicom_folder_without_series(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImageReadError, match="No DICOM series found"):
        read_image(tmp_path / "empty")
