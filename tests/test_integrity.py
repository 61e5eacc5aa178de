"""Integrity checks before decoding: truncated files of every format are refused (issue 11)."""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest
import SimpleITK as sitk

from metevo.cohort._integrity import check_image_integrity
from metevo.exceptions import ImageReadError

SHAPE = (10, 24, 32)  # z, y, x
SLICE_BYTES = 24 * 32 * 2  # int16


def _write(path, *, compress=False):
    rng = np.random.default_rng(0)
    img = sitk.GetImageFromArray(rng.integers(-1000, 1000, SHAPE).astype(np.int16))
    img.SetSpacing((0.8, 0.8, 2.5))
    sitk.WriteImage(img, str(path), useCompression=compress)
    return path


def _cut(path, n_bytes):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - n_bytes])


@pytest.mark.parametrize(
    ("name", "compress"),
    [("ct.nii", False), ("ct.nii.gz", True), ("ct.nrrd", False), ("ct.nrrd", True),
     ("ct.mha", False), ("ct.mha", True)],
)
def test_intact_files_pass(tmp_path, name, compress):
    path = _write(tmp_path / name, compress=compress)
    check_image_integrity(path, context="patient P001, timepoint V1 (image)")
    assert sitk.GetArrayFromImage(sitk.ReadImage(str(path))).shape == SHAPE


@pytest.mark.parametrize("name", ["ct.nii", "ct.nrrd", "ct.mha"])
def test_truncated_raw_files_report_bytes_and_slices(tmp_path, name):
    path = _write(tmp_path / name)
    _cut(path, 2 * SLICE_BYTES + 10)  # two slices and a bit: 3 slices are incomplete
    expected = 10 * SLICE_BYTES
    with pytest.raises(ImageReadError) as info:
        check_image_integrity(path, context="patient P001, timepoint V2 (image)")
    msg = str(info.value)
    assert msg.startswith(f"patient P001, timepoint V2 (image): {path} is truncated")
    assert f"expected {expected:,} bytes of voxel data, found {expected - 2 * SLICE_BYTES - 10:,}" in msg
    assert f"{2 * SLICE_BYTES + 10:,} bytes missing (the last 3 of 10 slices)" in msg


def test_itk_would_have_read_the_truncated_nifti(tmp_path):
    # why the check exists: ITK reads a cut .nii without complaint (missing voxels become zeros)
    path = _write(tmp_path / "ct.nii")
    _cut(path, SLICE_BYTES)
    try:
        arr = sitk.GetArrayFromImage(sitk.ReadImage(str(path)))
    except RuntimeError:
        pytest.skip("this ITK refuses truncated NIfTI files itself")
    assert arr.shape == SHAPE
    with pytest.raises(ImageReadError, match=r"the last 1 of 10 slices"):
        check_image_integrity(path)


@pytest.mark.parametrize("name", ["ct.nii.gz", "ct.nrrd", "ct.mha"])
def test_truncated_compressed_files_are_counted_by_streaming(tmp_path, name):
    path = _write(tmp_path / name, compress=True)
    _cut(path, path.stat().st_size // 2)
    with pytest.raises(ImageReadError) as info:
        check_image_integrity(path, context="patient P002, timepoint V3 (lesion mask)")
    msg = str(info.value)
    assert "patient P002, timepoint V3 (lesion mask)" in msg and str(path) in msg
    assert "breaks off" in msg or "break off" in msg
    assert f"expected {10 * SLICE_BYTES:,} bytes of voxel data" in msg
    found = int(msg.split("found ")[1].split(" ")[0].replace(",", ""))
    assert 0 <= found < 10 * SLICE_BYTES  # a real decompressed size, never a mod-2**32 trailer


def test_multi_member_gzip_nifti_passes_and_a_short_one_does_not(tmp_path):
    # gzip's ISIZE trailer only covers the last member: a valid 2-member stream must pass
    path = _write(tmp_path / "ct.nii")
    raw = path.read_bytes()
    two = tmp_path / "two.nii.gz"
    two.write_bytes(gzip.compress(raw[:5000]) + gzip.compress(raw[5000:]))
    check_image_integrity(two)
    short = tmp_path / "short.nii.gz"
    short.write_bytes(gzip.compress(raw[: len(raw) - SLICE_BYTES]))  # complete stream, short data
    with pytest.raises(ImageReadError, match=rf"{SLICE_BYTES:,} bytes missing \(the last 1 of 10"):
        check_image_integrity(short)


def test_not_gzip_at_all(tmp_path):
    path = tmp_path / "ct.nii.gz"
    path.write_bytes(b"not a gzip file at all" * 20)
    with pytest.raises(ImageReadError, match="not a readable gzip stream"):
        check_image_integrity(path)


def _series(shared_data, tmp_path):
    src = shared_data / "ct_example" / "example_ct_dicom"
    dst = tmp_path / "series"
    shutil.copytree(src, dst)
    return dst, sorted(dst.iterdir())


def test_complete_dicom_series_passes(shared_data, tmp_path):
    folder, files = _series(shared_data, tmp_path)
    check_image_integrity(folder)
    assert len(files) == 20


def test_dicom_series_missing_instance(shared_data, tmp_path):
    import pydicom

    folder, files = _series(shared_data, tmp_path)
    z = sorted((float(pydicom.dcmread(f, stop_before_pixels=True).ImagePositionPatient[2]), f)
               for f in files)
    z[7][1].unlink()  # an inner slice
    with pytest.raises(ImageReadError) as info:
        check_image_integrity(folder, context="patient REAL01, timepoint V2 (image)")
    msg = str(info.value)
    spacing = abs(z[1][0] - z[0][0])
    assert msg.startswith("patient REAL01, timepoint V2 (image): DICOM series")
    assert "has 19 slices but inconsistent spacing" in msg
    assert f"expected {spacing:.2f} mm" in msg and f"a gap of {2 * spacing:.2f} mm" in msg
    assert "1 slice(s) missing" in msg


def test_dicom_series_truncated_compressed_slice(shared_data, tmp_path):
    folder, files = _series(shared_data, tmp_path)  # JPEG 2000 encapsulated pixel data
    _cut(files[3], 1000)
    with pytest.raises(ImageReadError, match=rf"{files[3].name} is truncated or corrupt: a DICOM file"):
        check_image_integrity(folder)


def _native_series(folder, n=6, spacing=2.5):
    """A native (uncompressed) little-endian CT series written slice by slice by ITK."""
    folder.mkdir()
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for k in range(n):
        sl = sitk.GetImageFromArray(np.full((1, 16, 20), k, np.int16))
        for tag, value in (("0008|0060", "CT"), ("0020|000e", "1.2.826.0.1.3680043.2.1125.1"),
                           ("0020|000d", "1.2.826.0.1.3680043.2.1125.2"),
                           ("0020|0037", "1\\0\\0\\0\\1\\0"),
                           ("0020|0032", f"0\\0\\{k * spacing}"), ("0020|0013", str(k + 1))):
            sl.SetMetaData(tag, value)
        writer.SetFileName(str(folder / f"slice{k:02d}.dcm"))
        writer.Execute(sl)
    return sorted(folder.iterdir())


def test_native_dicom_series_truncated_pixel_data(tmp_path):
    files = _native_series(tmp_path / "series")
    check_image_integrity(tmp_path / "series")
    assert sitk.ReadImage([str(f) for f in files]).GetSize() == (20, 16, 6)
    _cut(files[2], 100)
    with pytest.raises(ImageReadError, match=r"slice02.dcm is truncated or corrupt: .*expected 640 bytes for 16x20"):
        check_image_integrity(tmp_path / "series", context="patient P001, timepoint V1 (image)")


def test_native_dicom_series_missing_slices(tmp_path):
    files = _native_series(tmp_path / "series")
    files[2].unlink()
    files[3].unlink()
    with pytest.raises(ImageReadError, match=r"has 4 slices .*expected 2.50 mm .*a gap of 7.50 mm "
                       r"between slice01.dcm \(2.50 mm\) and slice04.dcm \(10.00 mm\): 2 slice"):
        check_image_integrity(tmp_path / "series")


def test_dicom_series_mixed_size_and_orientation(shared_data, tmp_path):
    import pydicom

    folder, files = _series(shared_data, tmp_path)
    ds = pydicom.dcmread(files[0])
    ds.ImageOrientationPatient = [0, 1, 0, 0, 0, -1]
    ds.save_as(files[0])
    with pytest.raises(ImageReadError, match=r"mixes orientations: 1 of 20 slice\(s\)"):
        check_image_integrity(folder)
    ds = pydicom.dcmread(files[1])
    ds.Rows = 256
    ds.save_as(files[1])
    with pytest.raises(ImageReadError, match=r"mixes slice sizes .*512x512 in 19 file\(s\), 256x512 in 1"):
        check_image_integrity(folder)
