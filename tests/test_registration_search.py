"""Tests of the registration start search and trusted region (metevo.tracking._registration_search)."""

from __future__ import annotations

import json
import platform

import numpy as np
import pytest
import SimpleITK as sitk
from conftest import run_python

from metevo.tracking._registration_search import (
    full_resolution_dice,
    imaged_slices,
    overlap_mask,
    pad_moving,
    rotation_starts,
    trusted_mask,
)

CLAMP = 20.0


def _liver(rotation: np.ndarray, shift, *, z_keep=None, cut=None) -> sitk.Image:
    """An asymmetric liver-like blob (three ellipsoids) on a 6 mm grid, moved rigidly."""
    n = (44, 40, 36)  # x, y, z voxels
    sp = 6.0
    img = sitk.Image(n, sitk.sitkUInt8)
    img.SetSpacing((sp, sp, sp))
    img.SetOrigin(tuple(-(k - 1) * sp / 2 for k in n))
    zz, yy, xx = np.indices(n[::-1]).astype(float)
    p = np.stack([xx, yy, zz], -1) * sp + np.array(img.GetOrigin())
    q = (p - np.asarray(shift)) @ rotation  # canonical = R^T (p - t)
    parts = [
        ((-20, 0, 0), (60, 45, 50)),
        ((35, -25, 20), (40, 22, 25)),
        ((-30, 10, -40), (30, 30, 22)),
    ]
    inside = np.zeros(q.shape[:3], bool)
    for c, s in parts:
        inside |= (((q - c) / s) ** 2).sum(-1) <= 1
    if cut is not None:
        inside &= q[..., 0] < cut
    if z_keep is not None:
        inside[: z_keep[0]] = False
        inside[z_keep[1] :] = False
    arr = inside.astype(np.uint8)
    if z_keep is not None:
        arr = arr[z_keep[0] : z_keep[1]]
        out = sitk.GetImageFromArray(arr)
        out.SetSpacing((sp, sp, sp))
        out.SetOrigin(img.TransformIndexToPhysicalPoint((0, 0, z_keep[0])))
        return out
    out = sitk.GetImageFromArray(arr)
    out.CopyInformation(img)
    return out


def _rot(ax, ay, az) -> np.ndarray:
    t = sitk.Euler3DTransform()
    t.SetRotation(*np.radians([ax, ay, az]))
    return np.array(t.GetMatrix()).reshape(3, 3)


def _feature(binary: sitk.Image) -> sitk.Image:
    d = sitk.SignedMaurerDistanceMap(binary, insideIsPositive=False, useImageSpacing=True)
    return sitk.Clamp(sitk.Cast(d, sitk.sitkFloat32), sitk.sitkFloat32, -CLAMP, CLAMP)


def _angle(r: np.ndarray) -> float:
    return float(np.degrees(np.arccos(np.clip((np.trace(r) - 1) / 2, -1, 1))))


def test_best_start_finds_a_roll_and_pitch():
    """The moving liver is rolled and pitched by 16 degrees and shifted: the best start lies
    within one grid step of the true rotation (identity start would be 22 degrees off)."""
    true = _rot(16, -16, 8)
    f_bin = _liver(np.eye(3), (0, 0, 0))
    m_bin = _liver(true, (12, -8, 15))
    starts = rotation_starts(_feature(f_bin), _feature(m_bin), f_bin, m_bin, clamp_mm=CLAMP)
    best = np.array(starts[0].GetMatrix()).reshape(3, 3)
    # the start maps fixed -> moving points: x_m = R_true x_f + t
    assert _angle(best @ true.T) <= 8.0
    assert _angle(true) > 20.0
    centre = np.array(starts[0].GetCenter())
    mapped = np.array(starts[0].TransformPoint(tuple(centre)))
    assert np.linalg.norm(mapped - (true @ centre + (12, -8, 15))) < 6.0


def test_pad_moving_extends_a_cut_liver_and_closes_the_rest():
    m_bin = _liver(np.eye(3), (0, 0, 0), z_keep=(12, 36))  # liver cut at the bottom slice
    assert sitk.GetArrayViewFromImage(m_bin)[0].any()
    feat = _feature(m_bin)
    padded = pad_moving(feat, m_bin, clamp_mm=CLAMP, margin_mm=30.0)
    assert padded.GetSize() == tuple(s + 10 for s in feat.GetSize()[:2]) + (feat.GetSize()[2] + 10,)
    arr = sitk.GetArrayViewFromImage(padded)
    src = sitk.GetArrayViewFromImage(feat)
    # below the cut: the edge slice repeated (liver continues); above the top: outside (+clamp)
    np.testing.assert_array_equal(arr[0, 5:-5, 5:-5], src[0])
    assert (arr[-1] == CLAMP).all() and (arr[:, 0] == CLAMP).all()


def test_trusted_mask_drops_a_resected_part():
    """After a hepatectomy (the right part gone) the disagreeing region is left out."""
    f_bin = _liver(np.eye(3), (0, 0, 0), cut=20.0)
    m_bin = _liver(np.eye(3), (0, 0, 0))
    mask, dropped = trusted_mask(
        _feature(f_bin), _feature(m_bin), sitk.TranslationTransform(3), clamp_mm=CLAMP
    )
    arr = sitk.GetArrayViewFromImage(mask)
    gone = sitk.GetArrayViewFromImage(m_bin).astype(bool) & ~sitk.GetArrayViewFromImage(
        f_bin
    ).astype(bool)
    deep = gone & (sitk.GetArrayFromImage(_feature(m_bin)) < -10)  # a copy of a temporary
    assert deep.any() and not arr[deep].any()
    assert 0.02 < dropped < 0.5
    same, none = trusted_mask(
        _feature(m_bin), _feature(m_bin), sitk.TranslationTransform(3), clamp_mm=CLAMP
    )
    assert none == pytest.approx(0.0) and sitk.GetArrayViewFromImage(same).all()


def test_overlap_of_two_fields_of_view():
    """The moving liver is cut at its top slice: fixed points mapped beyond it are left out
    (and nothing is left out when the moving scan imaged the whole liver)."""
    whole = _liver(np.eye(3), (0, 0, 0))
    cut = _liver(np.eye(3), (0, 0, 0), z_keep=(0, 20))  # slices 0..19 of 36, liver runs on
    m_bin = cut
    padded = pad_moving(_feature(m_bin), m_bin, clamp_mm=CLAMP, margin_mm=30.0)
    lo, hi = imaged_slices(padded, m_bin)
    assert lo == -np.inf
    # the top imaged slice (index 19 of the scan) on the padded grid, plus half a slice
    top = padded.TransformPhysicalPointToContinuousIndex(
        m_bin.TransformIndexToPhysicalPoint((0, 0, 19))
    )[2]
    assert hi == pytest.approx(top + 0.5)
    f_feat = _feature(whole)
    mask = sitk.GetArrayFromImage(overlap_mask(f_feat, padded, sitk.Euler3DTransform(), (lo, hi)))
    kept = np.nonzero(mask.any(axis=(1, 2)))[0]
    assert kept.min() == 0 and kept.max() == 18  # one slice of margin below the top one
    assert mask[:19].all() and not mask[19:].any()
    # shifted up by 2 slices (12 mm): two more fixed slices map beyond the cut
    up = sitk.Euler3DTransform()
    up.SetTranslation((0.0, 0.0, 12.0))
    mask = sitk.GetArrayFromImage(overlap_mask(f_feat, padded, up, (lo, hi)))
    assert mask[:17].all() and not mask[17:].any()
    full = pad_moving(_feature(whole), whole, clamp_mm=CLAMP, margin_mm=30.0)
    assert imaged_slices(full, whole) == (-np.inf, np.inf)
    assert overlap_mask(f_feat, full, sitk.Euler3DTransform(), (-np.inf, np.inf)) is None


# Fixed and moving livers (boxes, 79 columns wide, the moving one 6 columns to the right) and a
# trusted region x < 70 on a 1.5 x 1.5 x 2.5 mm grid: inside the trusted region the fixed liver
# has 49 columns (x 21..69), the moving one 43 (x 27..69), all shared, so the Dice is
# 2 * 43 / (49 + 43) (the rows and slices cancel); without the region it would be 146 / 158.
_DICE_CASE = """
import numpy as np, SimpleITK as sitk
from metevo.tracking._registration_search import full_resolution_dice
def image(arr):
    img = sitk.GetImageFromArray(arr.astype(np.uint8))
    img.SetSpacing((1.5, 1.5, 2.5))
    return img
zz, yy, xx = np.indices((60, 120, 120))
box = (abs(yy - 60) < 35) & (abs(zz - 30) < 20)
fixed, moving = image(box & (abs(xx - 60) < 40)), image(box & (abs(xx - 66) < 40))
trust = image(xx < 70)
"""


def test_full_resolution_dice_inside_the_trusted_region_by_hand():
    scope = {}
    exec(_DICE_CASE, scope)
    dice = full_resolution_dice(scope["fixed"], scope["moving"], sitk.Transform(), scope["trust"])
    assert dice == pytest.approx(2 * 43 / (49 + 43), abs=1e-12)
    whole = full_resolution_dice(scope["fixed"], scope["moving"], sitk.Transform())
    assert whole == pytest.approx(146 / 158, abs=1e-12)


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
    reason="MALLOC_PERTURB_ is glibc's",
)
def test_full_resolution_dice_reads_no_freed_memory(monkeypatch):
    """Issue 18: the QC Dice read the trusted region through a NumPy view of a temporary image,
    i.e. from freed memory, so its value depended on what the allocator had done since (a
    registration failed QC with Dice NaN inside the full test suite, passed alone). In a fresh
    process with glibc filling freed memory (MALLOC_PERTURB_), once while the region's 0.6 MB
    buffer is mmapped and once after freeing a 31 MiB block has moved such buffers onto the
    heap, the Dice is still the hand value."""
    monkeypatch.setenv("MALLOC_PERTURB_", "165")
    code = _DICE_CASE + (
        "values = [full_resolution_dice(fixed, moving, sitk.Transform(), trust)]\n"
        "block = np.empty(31 * 2**20, np.uint8); del block\n"
        "values.append(full_resolution_dice(fixed, moving, sitk.Transform(), trust))\n"
        "import json; print(json.dumps(values))\n"
    )
    proc = run_python("-c", code)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout) == pytest.approx([2 * 43 / (49 + 43)] * 2, abs=1e-12)
