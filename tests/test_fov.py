"""Tests of ``lesions_in_fov`` (metevo.tracking._fov) and of evaluability on a real CT."""

from __future__ import annotations

import numpy as np
import pandas as pd
import SimpleITK as sitk

from metevo.tracking._fov import lesions_in_fov


def _nodes(rows):
    cols = ["timepoint", "centroid_x_mm", "centroid_y_mm", "centroid_z_mm", "axial_ld_mm"]
    df = pd.DataFrame(rows, columns=cols + ["bbox_z_min", "bbox_z_max"])
    return df


def _grid(nz: int, z0: float = 0.0) -> sitk.Image:
    img = sitk.Image(20, 20, nz, sitk.sitkUInt32)
    img.SetSpacing((2.0, 2.0, 2.5))
    img.SetOrigin((0.0, 0.0, z0))
    return img


def test_lesions_in_fov_follows_lesion_regions_through_the_registration():
    """V1's slab starts 10 mm higher: the baseline lesion at z = 12 mm (radius 6 mm) is then
    partly outside it (z 6-18 mm) although V1 has no lesion touching its ends; V2 touches
    its last slice."""
    nodes = _nodes(
        [
            ("V0", 10.0, 10.0, 12.0, 12.0, 3, 7),
            ("V0", 10.0, 10.0, 40.0, 8.0, 14, 18),
            ("V1", 10.0, 10.0, 40.0, 8.0, 10, 14),
            ("V2", 10.0, 10.0, 20.0, 8.0, 6, 9),
        ]
    )
    grids = [_grid(24), _grid(24, z0=10.0), _grid(10)]
    identity = [sitk.TranslationTransform(3), sitk.TranslationTransform(3)]
    assert lesions_in_fov(nodes, ["V0", "V1", "V2"], grids, identity) == [True, False, False]
    # the same slabs when the registration says the patient moved up by 10 mm at V1: all imaged
    up = sitk.TranslationTransform(3, (0.0, 0.0, -10.0))  # V1 point -> V0 point
    nodes.loc[2, "centroid_z_mm"] = 50.0
    grids[2] = _grid(24, z0=10.0)
    nodes.loc[3, ["centroid_z_mm", "bbox_z_min", "bbox_z_max"]] = (35.0, 8, 12)
    assert lesions_in_fov(nodes, ["V0", "V1", "V2"], grids, [up, sitk.TranslationTransform(3)]) == [
        True,
        True,
        True,
    ]


def test_real_ct_with_a_cut_liver_is_evaluable(shared_data, tmp_path):
    """The real abdominal CT cuts the liver at both ends of its slab (dome and tip): a follow-up
    (the same CT 8 weeks later) is evaluable; the liver is flagged as cut, the lesions are not."""
    from metevo import open_cohort
    from metevo.runner import analyze_patient

    ct_dir = shared_data / "ct_example"
    seg = sitk.ReadImage(str(ct_dir / "example_seg.nii.gz"))
    liver = sitk.GetArrayFromImage(seg) == 5
    assert liver[0].any() and liver[-1].any()
    dist = sitk.GetArrayFromImage(
        sitk.SignedMaurerDistanceMap(
            sitk.GetImageFromArray(liver.astype(np.uint8)), insideIsPositive=True
        )
    )
    inner = liver.copy()
    inner[:8] = inner[-8:] = False  # a lesion well inside the slab
    centre = np.unravel_index(np.argmax(np.where(inner, dist, -np.inf)), liver.shape)
    zz, yy, xx = np.indices(liver.shape)
    ball = ((zz - centre[0]) ** 2 + (yy - centre[1]) ** 2 + (xx - centre[2]) ** 2 <= 16) & liver
    lesion = sitk.GetImageFromArray(ball.astype(np.uint8))
    lesion.CopyInformation(seg)
    sitk.WriteImage(lesion, str(tmp_path / "lesion.nii.gz"))
    rows = [
        {
            "patient_id": "RC01",
            "timepoint": tp,
            "date": date,
            "image": str(ct_dir / "example_ct_sm.nii.gz"),
            "lesion_mask": "lesion.nii.gz",
            "liver_mask": str(ct_dir / "example_seg.nii.gz"),
        }
        for tp, date in (("V0", "2022-12-08"), ("V1", "2023-02-02"))
    ]
    pd.DataFrame(rows).to_csv(tmp_path / "manifest.csv", index=False)
    cohort = open_cohort(tmp_path / "manifest.csv", liver_label=5)
    res = analyze_patient(cohort["RC01"], stages=["recist"])
    assert not res.failures
    scans = res.tables["scans"]
    assert not scans["liver_in_fov"].any() and scans["lesions_in_fov"].all()
    rec = res.tables["recist"].set_index("timepoint")
    assert bool(rec.loc["V1", "evaluable"]) and rec.loc["V1", "not_evaluable_reason"] is None
    assert rec.loc["V1", "new_lesions"] == "N" and rec.loc["V1", "target_response"] == "SD"
