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
from metevo.exceptions import DataQualityWarning, GeometryError, ImageReadError, MaskValueError
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
    # the CT in the same folder is another series: the SEG's frames do not touch it
    single = read_image(shared_data / "dicom" / "ct_image.dcm")
    with pytest.raises(GeometryError, match="does not overlap the referenced image"):
        read_image(path, reference=single)


def test_dicom_seg_frames_placed_by_position_partial_and_overlapping(shared_data):
    """Two segments, frames at slices 0 and 162-164 only (a gap), overlapping in 16 voxels."""
    import pydicom

    path = shared_data / "dicom" / "seg_image_ct_binary_overlap.dcm"
    with pytest.warns(DataQualityWarning, match="segments overlap in 16 voxel"):
        own = read_image(path)
    assert own.GetSize() == (16, 16, 165)
    arr = sitk.GetArrayFromImage(own)
    ds = pydicom.dcmread(path)
    frames = ds.pixel_array.astype(bool)
    # independent placement: each frame at (z - z_min) / 1.25 along the slice axis
    for i, item in enumerate(ds.PerFrameFunctionalGroupsSequence):
        z = float(item.PlanePositionSequence[0].ImagePositionPatient[2])
        k = round((z - -99.48) / 1.25)
        seg = item.SegmentIdentificationSequence[0].ReferencedSegmentNumber
        assert np.all(arr[k][frames[i]] >= seg)  # segment 2 wins where both are set
    assert set(np.unique(arr[1:162])) == {0}
    # on a reference lattice shifted and flipped along z: frames land exactly, no warning
    ref = sitk.Image([20, 18, 170], sitk.sitkInt16)
    ref.SetSpacing(own.GetSpacing())
    ref.SetDirection((1, 0, 0, 0, 1, 0, 0, 0, -1))
    ref.SetOrigin(own.TransformContinuousIndexToPhysicalPoint((-2, -1, 167)))
    with pytest.warns(DataQualityWarning, match="segments overlap"):
        placed = sitk.GetArrayFromImage(read_image(path, reference=ref))
    np.testing.assert_array_equal(placed[3:168][::-1, 1:17, 2:18], arr)
    # a reference on another lattice (2 mm slices): resampled, and said so
    coarse = sitk.Image([16, 16, 100], sitk.sitkInt16)
    coarse.SetSpacing((0.488281, 0.488281, 2.0))
    coarse.SetOrigin(own.GetOrigin())
    with pytest.warns(DataQualityWarning) as caught:
        read_image(path, reference=coarse)
    assert any("resampled onto the image grid" in str(w.message) for w in caught)


def test_dicom_folder_without_series(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImageReadError, match="No DICOM series found"):
        read_image(tmp_path / "empty")


def test_dicom_series_spacing_without_float_noise(tmp_path):
    """Slices at -120.19000244141 + 5 k mm (decimal strings) read back with a 5.0 mm spacing."""
    from metevo.datasets._dicom_cohort import _write_series

    img = sitk.Image([4, 3, 6], sitk.sitkInt16)
    img.SetSpacing((3.0, 3.0, 5.0))
    img.SetOrigin((-190.5, -180.5, float(np.float32(-120.19))))
    _write_series(img, tmp_path / "ct", "P1", "V0", None)
    back = read_image(tmp_path / "ct")
    assert back.GetSpacing() == (3.0, 3.0, 5.0)
    assert back.GetOrigin()[2] == -120.19000244140625  # the float32 the NIfTI holds
    # the same grid stored as NIfTI (float32 origin) reads back to exactly the same geometry;
    # before rounding on read the origins differed by 3.7e-12 mm
    sitk.WriteImage(img, str(tmp_path / "ct.nii.gz"))
    raw = sitk.ReadImage(str(tmp_path / "ct.nii.gz"))
    assert raw.GetOrigin()[2] != float("-120.19000244141")
    nifti = read_image(tmp_path / "ct.nii.gz")
    assert nifti.GetOrigin() == back.GetOrigin() == (-190.5, -180.5, -120.19000244140625)
    assert nifti.GetDirection() == back.GetDirection()
    assert read_image_header(tmp_path / "ct.nii.gz")["origin"] == back.GetOrigin()
