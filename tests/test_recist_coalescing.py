"""Coalescing lesions (RECIST 1.1 appendix I): measured individually while a waist separates them."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from test_recist_graph import START, edges, lesions, scans

from metevo.response import assess_patient
from metevo.tracking._lesions import measure_lesions
from metevo.tracking._lobes import lobe_labels

SPACING_XYZ = (0.8, 0.8, 2.5)


def _balls(balls, shape=(15, 80, 110)):
    """Union of digitised balls ((x, y, z) centre mm, radius mm) on the clinical grid."""
    z, y, x = np.mgrid[: shape[0], : shape[1], : shape[2]].astype(float)
    x, y, z = x * SPACING_XYZ[0], y * SPACING_XYZ[1], z * SPACING_XYZ[2]
    arr = np.zeros(shape, bool)
    for (cx, cy, cz), r in balls:
        arr |= (x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2 <= r * r
    img = sitk.GetImageFromArray(arr.astype(np.uint32))
    img.SetSpacing(SPACING_XYZ)
    return arr, img


def test_touching_lesions_are_measured_individually():
    # radius 12 and 9 mm, centres 18 mm apart on a slice through both equators: the neck's
    # radius is sqrt(12**2 - 10.75**2) = 5.3 mm, a waist 3.7 mm deeper than the smaller lesion
    arr, img = _balls([((30.0, 32.0, 17.5), 12.0), ((48.0, 32.0, 17.5), 9.0)])
    row = measure_lesions(None, img).iloc[0]
    assert row["axial_ld_mm"] == pytest.approx(12 + 18 + 9, abs=0.8)  # the pair's span
    assert row["axial_ld_separable_mm"] == pytest.approx(24 + 18, abs=0.8)  # each one's diameter
    labels, n = lobe_labels(arr, np.array(SPACING_XYZ[::-1]))
    assert n == 2
    # each lobe holds its own ball's centre
    centre = lambda cx: labels[7, 40, int(round(cx / 0.8))]  # noqa: E731
    assert {centre(30.0), centre(48.0)} == {1, 2}


@pytest.mark.parametrize(
    "balls",
    [
        [((40.0, 32.0, 17.5), 12.0)],  # one lesion
        [((36.0, 32.0, 17.5), 12.0), ((42.0, 32.0, 17.5), 9.0)],  # truly coalesced: no waist
    ],
)
def test_one_lesion_or_truly_coalesced_is_measured_as_one(balls):
    _, img = _balls(balls)
    row = measure_lesions(None, img).iloc[0]
    assert row["axial_ld_separable_mm"] == row["axial_ld_mm"]


def test_an_irregular_lesion_is_not_split():
    # an ellipse-like lesion with 5 % bumps on its outline (like the synthetic generator's)
    z, y, x = np.mgrid[:15, :80, :110].astype(float)
    x, y, z = x * 0.8 - 44, y * 0.8 - 32, z * 2.5 - 17.5
    theta, phi = np.arctan2(y, x), np.arctan2(z, np.hypot(x, y))
    rho = np.sqrt((x / 18) ** 2 + (y / 11) ** 2 + (z / 11) ** 2)
    bumps = 1 + 0.05 * np.sin(3 * theta + 1) * np.cos(2 * phi)
    assert lobe_labels(rho <= bumps, np.array(SPACING_XYZ[::-1]))[1] == 1


def _with_separable(les, values):
    les = les.copy()
    les["axial_ld_separable_mm"] = les["axial_ld_mm"]
    for (tp, lid), v in values.items():
        les.loc[(les["timepoint"] == tp) & (les["lesion_id"] == lid), "axial_ld_separable_mm"] = v
    return les


def _targets(les, edg, n):
    rec, _, _ = assess_patient("P1", scans(n), les, edg, treatment_start=START)
    return rec.set_index("timepoint")


def test_a_touching_pair_that_separates_is_summed_from_baseline():
    # baseline target 1 is two touching lesions (span 39 mm, 24 + 18 mm measured individually)
    # that separate at V1 into 14 and 10 mm; target 2 (15 mm) carries a separable value too but
    # neither splits nor merges, so its own diameter is used
    les = lesions(
        [("V0", 1, 39.0), ("V0", 2, 15.0), ("V1", 1, 14.0), ("V1", 2, 10.0), ("V1", 3, 15.0)]
    )
    edg = edges([("V0", 1, "V1", 1), ("V0", 1, "V1", 2), ("V0", 2, "V1", 3)])
    old = _targets(les, edg, 2)
    assert old.loc["V0", "target_sum_mm"] == pytest.approx(54.0)
    assert old.loc["V1", "target_response"] == "SD"  # -27.8 %: the pair's span at baseline
    new = _targets(_with_separable(les, {("V0", 1): 42.0, ("V0", 2): 20.0}), edg, 2)
    assert new.loc["V0", "target_sum_mm"] == pytest.approx(42.0 + 15.0)
    assert new.loc["V1", "pct_change_baseline"] == pytest.approx(100 * (39 - 57) / 57)
    assert new.loc["V1", "target_response"] == "PR"  # -31.6 %


def test_merging_lesions_are_summed_while_separable():
    # targets 20 and 16 mm touch at V1 (one component, span 30 mm, 21 + 16 mm individually)
    les = lesions([("V0", 1, 20.0), ("V0", 2, 16.0), ("V1", 1, 30.0)])
    edg = edges([("V0", 1, "V1", 1), ("V0", 2, "V1", 1)])
    assert _targets(les, edg, 2).loc["V1", "target_sum_mm"] == pytest.approx(30.0)
    new = _targets(_with_separable(les, {("V1", 1): 37.0}), edg, 2)
    assert new.loc["V1", "target_sum_mm"] == pytest.approx(37.0)


def test_a_ripple_of_one_lesions_distance_map_is_not_a_second_lesion():
    # one 19 x 19 x 14 mm lesion with a 6 % two-fold bump on 2.5 mm slices: its distance map has
    # three maxima at least 1 mm deep, but they lie inside each other's inscribed ball
    from scipy import ndimage
    from skimage.morphology import h_maxima

    z, y, x = np.mgrid[:8, :40, :40].astype(float)
    z, y, x = z * 2.5, y * 0.8, x * 0.8
    bump = 1 + 0.064 * np.sin(2 * np.arctan2(y - 16, x - 16) + 5.82)
    piece = ((x - 16) / 9.67) ** 2 + ((y - 16) / 9.47) ** 2 + ((z - 8.46) / 6.92) ** 2 <= bump**2
    sp = np.array(SPACING_XYZ[::-1])
    edt = ndimage.distance_transform_edt(np.pad(piece, 1), sampling=sp)
    assert ndimage.label(h_maxima(edt, 1.0).astype(bool), structure=np.ones((3, 3, 3)))[1] >= 2
    assert lobe_labels(piece, sp)[1] == 1
