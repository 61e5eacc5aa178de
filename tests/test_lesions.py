"""Lesion instances and measurements against hand-computed shapes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import SimpleITK as sitk

from metevo.exceptions import DataQualityWarning, GeometryError, MaskValueError
from metevo.tracking._lesions import (
    LESION_MEASUREMENTS,
    label_lesions,
    liver_in_fov,
    measure_lesions,
)


def _image(
    arr: np.ndarray, spacing=(1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0), direction=None
) -> sitk.Image:
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(spacing)
    img.SetOrigin(origin)
    if direction is not None:
        img.SetDirection(direction)
    return img


def _physical_grid(shape, spacing, centre):
    z, y, x = np.indices(shape).astype(float)
    return x * spacing[0] - centre[0], y * spacing[1] - centre[1], z * spacing[2] - centre[2]


def test_sphere_on_anisotropic_grid():
    spacing = (0.8, 0.8, 2.5)  # x, y, z mm, as in portal-venous CT
    centre = (48.24, 48.08, 50.0)  # on a slice centre, off the in-plane voxel centres
    x, y, z = _physical_grid((40, 120, 120), spacing, centre)
    r = 12.3
    mask = (x**2 + y**2 + z**2 <= r * r).astype(np.uint8)
    row = measure_lesions(None, label_lesions(_image(mask, spacing))).iloc[0]
    half_voxel = 0.4
    assert abs(row["axial_ld_mm"] - 2 * r) <= half_voxel
    assert abs(row["axial_sa_mm"] - 2 * r) <= half_voxel
    assert abs(row["max_3d_diameter_mm"] - 2 * r) <= half_voxel
    assert row["volume_ml"] == pytest.approx(4 / 3 * math.pi * r**3 / 1000, rel=0.02)
    assert row["surface_area_mm2"] == pytest.approx(4 * math.pi * r * r, rel=0.03)
    assert row["sphericity"] == pytest.approx(1.0, abs=0.03)
    assert row["equivalent_diameter_mm"] == pytest.approx(2 * r, rel=0.01)
    assert (row["centroid_x_mm"], row["centroid_y_mm"], row["centroid_z_mm"]) == pytest.approx(
        centre, abs=0.05
    )
    assert row["axial_slice"] == 20


@pytest.mark.parametrize(("a", "b", "c"), [(12.2, 7.1, 6.0), (15.5, 11.0, 9.0)])
def test_ellipsoid_at_an_angle(a, b, c):
    spacing = (0.7, 0.6, 2.0)
    x, y, z = _physical_grid((21, 90, 90), spacing, (31.5, 27.0, 20.0))
    th = math.radians(30)
    xr = x * math.cos(th) + y * math.sin(th)
    yr = -x * math.sin(th) + y * math.cos(th)
    mask = ((xr / a) ** 2 + (yr / b) ** 2 + (z / c) ** 2 <= 1).astype(np.uint32)
    row = measure_lesions(None, _image(mask, spacing)).iloc[0]
    half_voxel = 0.35
    assert abs(row["axial_ld_mm"] - 2 * a) <= half_voxel  # the largest section is the centre slice
    assert abs(row["axial_sa_mm"] - 2 * b) <= half_voxel
    assert abs(row["max_3d_diameter_mm"] - 2 * a) <= half_voxel
    assert row["axial_slice"] == 10
    assert row["volume_ml"] == pytest.approx(4 / 3 * math.pi * a * b * c / 1000, rel=0.04)


def test_bar_and_single_voxel_measure_edge_to_edge():
    arr = np.zeros((3, 12, 20), np.uint32)
    arr[1, 4, 3:13] = 1  # 10 voxels along x
    arr[1, 9, 17] = 2  # a single voxel
    img = _image(arr, (0.8, 0.6, 2.5))
    table = measure_lesions(None, img).set_index("lesion_id")
    assert table.loc[1, "axial_ld_mm"] == pytest.approx(8.0)  # centre-to-centre would give 7.2
    assert table.loc[1, "axial_sa_mm"] == pytest.approx(0.6)
    assert table.loc[2, "axial_ld_mm"] == pytest.approx(0.8)
    assert table.loc[1, "volume_ml"] == pytest.approx(10 * 0.8 * 0.6 * 2.5 / 1000)
    assert table.loc[
        1, ["bbox_x_min", "bbox_x_max", "bbox_y_min", "bbox_y_max", "bbox_z_min", "bbox_z_max"]
    ].tolist() == [3, 12, 4, 4, 1, 1]


def test_centroid_uses_direction_and_origin():
    arr = np.zeros((6, 10, 10), np.uint32)
    arr[2:4, 3:5, 6:8] = 1
    direction = (0, -1, 0, 1, 0, 0, 0, 0, 1)  # rotated 90 degrees in-plane
    img = _image(arr, (0.5, 0.7, 3.0), origin=(10.0, -5.0, 100.0), direction=direction)
    row = measure_lesions(None, img).iloc[0]
    expected = img.TransformContinuousIndexToPhysicalPoint((6.5, 3.5, 2.5))
    assert (row["centroid_x_mm"], row["centroid_y_mm"], row["centroid_z_mm"]) == pytest.approx(
        expected
    )


def test_intensity_statistics_match_numpy():
    rng = np.random.default_rng(0)
    arr = np.zeros((8, 16, 16), np.uint32)
    arr[2:6, 3:9, 3:9] = 4
    arr[2:5, 11:14, 11:14] = 9
    hu = rng.normal(40, 15, arr.shape).astype(np.float32)
    table = measure_lesions(_image(hu), _image(arr)).set_index("lesion_id")
    for lab in (4, 9):
        assert table.loc[lab, "mean_hu"] == pytest.approx(hu[arr == lab].mean(), rel=1e-5)
        assert table.loc[lab, "std_hu"] == pytest.approx(hu[arr == lab].std(), rel=1e-4)


def test_empty_instances_give_an_empty_table():
    table = measure_lesions(None, _image(np.zeros((4, 8, 8), np.uint32)))
    assert table.empty and list(table.columns) == list(LESION_MEASUREMENTS)


def test_connectivity_decides_whether_diagonal_voxels_join():
    arr = np.zeros((5, 20, 20), np.uint8)
    arr[1:3, 2:6, 2:6] = 1
    arr[3:5, 6:10, 6:10] = 1  # touches the first block at one corner only
    img = _image(arr)
    kw = {"min_voxels": 1, "min_diameter_mm": 0.0}
    assert sitk.GetArrayFromImage(label_lesions(img, **kw)).max() == 1
    assert sitk.GetArrayFromImage(label_lesions(img, connectivity=6, **kw)).max() == 2


def test_noisy_mask_drops_specks_and_warns_with_the_count():
    rng = np.random.default_rng(1)
    x, y, z = _physical_grid((30, 60, 60), (1.0, 1.0, 1.0), (30, 30, 15))
    arr = (x**2 + y**2 + z**2 <= 36).astype(np.uint8)
    idx = rng.choice(np.flatnonzero(arr.ravel() == 0), size=400, replace=False)
    speckled = arr.ravel().copy()
    speckled[idx] = 1
    speckled = speckled.reshape(arr.shape)
    with pytest.warns(DataQualityWarning, match=r"dropped \d+ of \d+ lesion components"):
        inst = label_lesions(_image(speckled), connectivity=6)
    labels = sitk.GetArrayViewFromImage(inst)
    assert np.unique(labels).tolist() == [0, 1]
    assert (labels[arr == 1] == 1).all()


def test_a_five_mm_lesion_is_never_dropped():
    x, y, z = _physical_grid((10, 20, 20), (1.0, 1.0, 2.0), (10, 10, 10))
    arr = (x**2 + y**2 + z**2 <= 2.7**2).astype(np.uint8)  # equivalent diameter > 5 mm
    eq = (6 * arr.sum() * 2.0 / math.pi) ** (1 / 3)
    assert eq >= 5.0
    inst = label_lesions(_image(arr, (1.0, 1.0, 2.0)), min_voxels=10_000, min_diameter_mm=20.0)
    assert sitk.GetArrayViewFromImage(inst).max() == 1


def test_lesions_are_restricted_to_the_dilated_liver():
    arr = np.zeros((10, 40, 40), np.uint8)
    liver = np.zeros_like(arr)
    liver[:, :, :20] = 1
    arr[3:7, 10:15, 12:18] = 1  # inside the liver
    arr[3:7, 10:15, 23:28] = 1  # 3-8 mm outside: kept (margin 10 mm)
    arr[3:7, 25:30, 33:39] = 1  # 13-19 mm outside: dropped
    inst = label_lesions(_image(arr), _image(liver), min_voxels=1, min_diameter_mm=0.0)
    labels = sitk.GetArrayViewFromImage(inst)
    assert labels.max() == 2 and labels[5, 27, 35] == 0
    unrestricted = label_lesions(_image(arr), _image(liver), liver_margin_mm=None)
    assert sitk.GetArrayViewFromImage(unrestricted).max() == 3


def test_instance_masks_keep_their_labels():
    arr = np.zeros((6, 20, 20), np.uint32)
    arr[1:4, 2:6, 2:6] = 7
    arr[1:4, 12:16, 12:16] = 7  # two pieces of one labelled lesion
    arr[1:4, 2:6, 12:16] = 12
    inst = label_lesions(_image(arr))
    assert np.unique(sitk.GetArrayViewFromImage(inst)).tolist() == [0, 7, 12]
    split = label_lesions(_image(arr), kind="binary")
    assert np.unique(sitk.GetArrayViewFromImage(split)).tolist() == [0, 1, 2, 3]


def test_bad_inputs_raise_clear_errors():
    arr = np.zeros((4, 8, 8), np.uint8)
    with pytest.raises(ValueError, match="connectivity must be 6, 18 or 26"):
        label_lesions(_image(arr), connectivity=8)
    with pytest.raises(MaskValueError, match="floating-point values"):
        label_lesions(_image(arr.astype(np.float32)))
    with pytest.raises(GeometryError, match="Resample the mask onto the image grid"):
        label_lesions(_image(arr), _image(np.zeros((4, 8, 9), np.uint8)), context="P001 V2")
    with pytest.raises(GeometryError, match="P001 V2: image vs lesion instances"):
        measure_lesions(
            _image(arr, (1.0, 1.0, 2.0)), _image(arr.astype(np.uint32)), context="P001 V2"
        )


def test_liver_in_fov():
    liver = np.zeros((10, 20, 20), np.uint8)
    liver[2:8, 3:15, 3:15] = 1
    assert liver_in_fov(_image(liver)) is True
    liver[2:8, 0, 3:15] = 1  # touching the in-plane border: still fully covered along z
    assert liver_in_fov(_image(liver)) is True
    liver[0] = 1  # cut by the first slice
    assert liver_in_fov(_image(liver)) is False
    assert liver_in_fov(None) is None
