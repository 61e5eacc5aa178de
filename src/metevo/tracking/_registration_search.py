"""Starting points and trusted regions for liver-driven registration (private).

:func:`rotation_starts` gives the optimiser several starts instead of one: the livers' centroids
aligned under (a) no rotation, (b) the rotations that map the moving liver's principal axes onto
the fixed liver's, and (c) a coarse grid of rotations about all three axes. Every start is scored
on the clamped liver distance maps (mean squared difference over the fixed liver's band, the same
metric the optimiser minimises) and the best few are returned, so a patient who rolled or
pitched by 10-20 degrees between visits starts in the right basin.

:func:`trusted_mask` marks the fixed-grid voxels where the two registered livers agree to within
a tolerance; the rest (a resected part of the liver, a dome cut by the field of view in one scan
only) is not motion and is left out of the refinement.

Everything works on the coarse (~6 mm) grids the registration uses; arrays are (z, y, x).
"""

from __future__ import annotations

import functools
import itertools

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

#: rotation grid (degrees) tried about each axis; 5**3 = 125 starts, each scored in well under a ms
GRID_DEG = (-20.0, -10.0, 0.0, 10.0, 20.0)
#: at most this many fixed-grid points score a start
N_POINTS = 1500
#: starts whose translation gets the finer refinement
N_REFINED = 10


def _physical(image: sitk.Image, index_zyx: np.ndarray) -> np.ndarray:
    """Physical points (n, 3) of continuous (z, y, x) indices."""
    d = np.array(image.GetDirection(), float).reshape(3, 3)
    sp = np.array(image.GetSpacing(), float)
    o = np.array(image.GetOrigin(), float)
    return o + (index_zyx[:, ::-1] * sp) @ d.T


def _index(image: sitk.Image, points: np.ndarray) -> np.ndarray:
    """Continuous (z, y, x) indices (n, 3) of physical points."""
    d = np.array(image.GetDirection(), float).reshape(3, 3)
    sp = np.array(image.GetSpacing(), float)
    o = np.array(image.GetOrigin(), float)
    return (((points - o) @ d) / sp)[:, ::-1]


def _axes(binary: sitk.Image) -> tuple[np.ndarray, np.ndarray]:
    """Centroid (3,) and principal axes (columns of a 3x3 matrix, largest variance first)."""
    idx = np.argwhere(sitk.GetArrayViewFromImage(binary) != 0).astype(float)
    pts = _physical(binary, idx)
    centre = pts.mean(axis=0)
    cov = np.cov((pts - centre).T)
    _w, v = np.linalg.eigh(cov)
    return centre, v[:, ::-1]


def _angle_deg(rotation: np.ndarray) -> float:
    return float(np.degrees(np.arccos(np.clip((np.trace(rotation) - 1.0) / 2.0, -1.0, 1.0))))


def _euler_matrix(ax: float, ay: float, az: float) -> np.ndarray:
    t = sitk.Euler3DTransform()
    t.SetRotation(*np.radians([ax, ay, az]))
    return np.array(t.GetMatrix()).reshape(3, 3)


def candidate_rotations(
    f_bin: sitk.Image, m_bin: sitk.Image, *, max_angle_deg: float = 45.0
) -> list[np.ndarray]:
    """Rotation matrices (fixed -> moving direction) to try: the grid plus the moments' ones."""
    out = [_euler_matrix(*a) for a in itertools.product(GRID_DEG, repeat=3)]
    _cf, vf = _axes(f_bin)
    _cm, vm = _axes(m_bin)
    for signs in itertools.product((1.0, -1.0), repeat=3):
        r = vm @ np.diag(signs) @ vf.T
        if np.linalg.det(r) > 0 and _angle_deg(r) <= max_angle_deg:
            out.append(r)
    return out


def _band_points(f_feat: sitk.Image, clamp_mm: float, rng_seed: int) -> np.ndarray:
    """Fixed-grid indices inside the distance-map band (|d| < clamp), subsampled."""
    arr = sitk.GetArrayViewFromImage(f_feat)
    idx = np.argwhere(np.abs(arr) < clamp_mm - 1e-3)
    if len(idx) > N_POINTS:
        rng = np.random.default_rng(rng_seed)
        idx = idx[rng.choice(len(idx), N_POINTS, replace=False)]
    return idx


def score_rotations(
    f_feat: sitk.Image,
    m_feat: sitk.Image,
    centre: np.ndarray,
    translation: np.ndarray,
    rotations: list[np.ndarray],
    *,
    clamp_mm: float,
    seed: int = 0,
    gauss_newton_steps: int = 6,
    valid_z: tuple[float, float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Score each start ``x -> R (x - c) + c + t`` after refining its translation.

    For every rotation the translation is refined from ``translation`` by a few damped
    Gauss-Newton steps on the mean squared distance-map difference (a truncated or resected
    liver moves its centroid, so the centroid difference alone is a poor start), then scored.
    Fixed points that land outside the moving grid are left out (as ITK does); a start that keeps
    fewer than half the points scores ``inf``; so are points whose slice index on the moving grid
    is outside ``valid_z`` (the slices the moving scan imaged, see :func:`imaged_slices`).
    Returns (scores, translations (n, 3)).
    """
    idx = _band_points(f_feat, clamp_mm, seed)
    n = len(rotations)
    translations = np.tile(np.asarray(translation, float), (n, 1))
    scores = np.full(n, np.inf)
    if len(idx) == 0:
        return scores, translations
    f_arr = sitk.GetArrayViewFromImage(f_feat)
    fv = f_arr[tuple(idx.T)].astype(float)
    pts = _physical(f_feat, idx.astype(float)) - centre
    m_arr = np.asarray(sitk.GetArrayViewFromImage(m_feat), np.float32)
    # physical gradient of the moving distance map (per array axis, then to x, y, z)
    sp_zyx = np.array(m_feat.GetSpacing()[::-1], float)
    grads = np.gradient(m_arr, *sp_zyx)
    d = np.array(m_feat.GetDirection(), float).reshape(3, 3)
    shape = np.array(m_arr.shape)
    z_lo, z_hi = (0.0, float(shape[0] - 1)) if valid_z is None else valid_z

    def sample(points):
        cont = _index(m_feat, points)
        inside = np.all((cont >= 0) & (cont <= shape - 1), axis=1)
        inside &= (cont[:, 0] >= z_lo) & (cont[:, 0] <= z_hi)
        c = cont[inside].T
        val = ndimage.map_coordinates(m_arr, c, order=1, mode="nearest")
        return inside, val, c

    for i, r in enumerate(rotations):
        base = pts @ r.T + centre
        t = translations[i].copy()
        for _step in range(gauss_newton_steps):
            inside, mv, c = sample(base + t)
            if inside.sum() < 0.5 * len(idx):
                break
            g_zyx = np.stack(
                [ndimage.map_coordinates(g, c, order=1, mode="nearest") for g in grads]
            )
            jac = (d @ g_zyx[::-1]).T  # (n, 3) d m / d x_phys
            res = mv - fv[inside]
            h = jac.T @ jac
            step = np.linalg.solve(
                h + 1e-3 * np.trace(h) * np.eye(3) + 1e-9 * np.eye(3), jac.T @ res
            )
            t = t - np.clip(step, -15.0, 15.0)
        inside, mv, _c = sample(base + t)
        if inside.sum() < 0.5 * len(idx):
            continue
        translations[i] = t
        scores[i] = float(np.mean((fv[inside] - mv) ** 2))
    return scores, translations


def rotation_starts(
    f_feat: sitk.Image,
    m_feat: sitk.Image,
    f_bin: sitk.Image,
    m_bin: sitk.Image,
    *,
    clamp_mm: float,
    n_starts: int = 2,
    seed: int = 0,
    max_angle_deg: float = 45.0,
    valid_z: tuple[float, float] | None = None,
) -> list[sitk.Euler3DTransform]:
    """The ``n_starts`` best rigid starts (centred on the fixed liver's centroid), best first.

    ``valid_z``: slice-index range of ``m_feat`` the moving scan imaged (points mapped beyond it
    are not scored; :func:`imaged_slices`)."""
    cf = _axes(f_bin)[0]
    cm = _axes(m_bin)[0]
    rotations = candidate_rotations(f_bin, m_bin, max_angle_deg=max_angle_deg)
    translation = cm - cf
    # coarse pass over every start (two Gauss-Newton steps), then a finer one on the best few
    scores, translations = score_rotations(
        f_feat,
        m_feat,
        cf,
        translation,
        rotations,
        clamp_mm=clamp_mm,
        seed=seed,
        gauss_newton_steps=2,
        valid_z=valid_z,
    )
    keep = [int(i) for i in np.argsort(scores, kind="stable")[:N_REFINED]]
    for i in keep:
        s_i, t_i = score_rotations(
            f_feat,
            m_feat,
            cf,
            translations[i],
            [rotations[i]],
            clamp_mm=clamp_mm,
            seed=seed,
            gauss_newton_steps=5,
            valid_z=valid_z,
        )
        scores[i], translations[i] = s_i[0], t_i[0]
    rest = np.setdiff1d(np.arange(len(rotations)), keep)
    scores[rest] = np.inf
    order = [int(i) for i in np.argsort(scores, kind="stable") if np.isfinite(scores[i])]
    if not order:
        order = [int(np.argmin([_angle_deg(r) for r in rotations]))]
    starts = []
    for i in order[:n_starts]:
        t = sitk.Euler3DTransform()
        t.SetCenter(cf.tolist())
        t.SetMatrix(rotations[i].ravel().tolist(), 1e-4)
        t.SetTranslation(translations[i].tolist())
        starts.append(t)
    return starts


def trusted_mask(
    f_feat: sitk.Image,
    m_feat: sitk.Image,
    transform: sitk.Transform,
    *,
    clamp_mm: float,
    tolerance_mm: float = 8.0,
) -> tuple[sitk.Image, float]:
    """Fixed-grid mask (UInt8) of the voxels where the registered distance maps agree.

    Voxels where the two livers disagree by more than ``tolerance_mm`` (after the current
    transform) are liver in one scan and not in the other: a resected part, or liver cut by
    one field of view. They are dropped (with a 1-voxel margin); returns the mask and the
    fraction of the distance-map band it drops.
    """
    moved = sitk.Resample(m_feat, f_feat, transform, sitk.sitkLinear, clamp_mm, sitk.sitkFloat32)
    f = sitk.GetArrayViewFromImage(f_feat)
    m = sitk.GetArrayViewFromImage(moved)
    bad = np.abs(f - m) > tolerance_mm
    bad = ndimage.binary_dilation(bad, iterations=1)
    band = np.abs(f) < clamp_mm - 1e-3
    dropped = float((bad & band).sum() / max(band.sum(), 1))
    mask = sitk.GetImageFromArray((~bad).astype(np.uint8))
    mask.CopyInformation(f_feat)
    return mask, dropped


def pad_moving(
    m_feat: sitk.Image, m_bin: sitk.Image, *, clamp_mm: float, margin_mm: float = 80.0
) -> sitk.Image:
    """The moving distance map, extended so that no fixed point maps outside it.

    ITK leaves out the points that map outside the moving image, so an optimiser can lower the
    metric by turning the awkward part of the liver out of the moving image (a 40-50 degree
    "solution"). The map is extended by ``margin_mm`` on every side: with ``+clamp_mm``
    (outside the liver) where the scan imaged the whole liver, and by repeating the edge slice
    on a side where the liver touches the scan's first or last slice (the liver goes on beyond
    the field of view; its cross-section is kept, the best guess).
    """
    arr = sitk.GetArrayViewFromImage(m_bin)
    spacing = np.array(m_feat.GetSpacing(), float)
    pad = [int(np.ceil(margin_mm / s)) for s in spacing]
    low_cut, high_cut = bool(arr[0].any()), bool(arr[-1].any())
    out = m_feat
    if low_cut or high_cut:
        out = sitk.ZeroFluxNeumannPad(
            out, [0, 0, pad[2] if low_cut else 0], [0, 0, pad[2] if high_cut else 0]
        )
    lo = [pad[0], pad[1], 0 if low_cut else pad[2]]
    hi = [pad[0], pad[1], 0 if high_cut else pad[2]]
    return sitk.ConstantPad(out, lo, hi, float(clamp_mm))


def imaged_slices(padded: sitk.Image, m_bin: sitk.Image) -> tuple[float, float]:
    """Slice-index range (continuous, on ``padded``'s grid) where the moving map is data.

    ``padded`` is :func:`pad_moving`'s output for the scan of ``m_bin`` (its liver mask on the
    whole field of view). Beyond a side where the liver runs out of the field of view the map is a
    guess (the edge slice repeated), not data: that slab is left out of the metric, so two scans
    cut at opposite ends are compared on the overlap of their fields of view. Half a slice beyond
    the edge slice is kept so that points on the edge slice itself still count. A side where the
    scan imaged the whole liver is open (outside the liver is known).
    """
    arr = sitk.GetArrayViewFromImage(m_bin)
    n = m_bin.GetSize()[2]
    ends = [
        padded.TransformPhysicalPointToContinuousIndex(
            m_bin.TransformContinuousIndexToPhysicalPoint((0.0, 0.0, float(k)))
        )[2]
        for k in (0, n - 1)
    ]
    cut = (bool(arr[0].any()), bool(arr[-1].any()))
    lo, hi = -np.inf, np.inf
    for end, is_cut, other in ((ends[0], cut[0], ends[1]), (ends[1], cut[1], ends[0])):
        if is_cut:
            if end <= other:
                lo = end - 0.5
            else:
                hi = end + 0.5
    return float(lo), float(hi)


def overlap_mask(
    f_feat: sitk.Image,
    m_feat: sitk.Image,
    transform: sitk.Transform,
    valid_z: tuple[float, float],
    *,
    margin_slices: float = 1.0,
) -> sitk.Image | None:
    """Fixed-grid mask (UInt8) of the voxels that ``transform`` maps into the moving scan's
    imaged slices (``valid_z`` on ``m_feat``'s grid, shrunk by ``margin_slices``).

    The registration is then scored on the overlap of the two fields of view: a fixed point
    that maps beyond a side where the moving liver was cut has nothing to be compared with.
    The set is chosen once per stage (from the stage's starting transform), so the optimiser
    cannot lower the metric by moving points out of it. None when every voxel is kept.
    """
    if not np.isfinite(valid_z).any():
        return None
    size = f_feat.GetSize()
    idx = np.indices(size[::-1], dtype=float).reshape(3, -1).T  # (z, y, x)
    pts = _physical(f_feat, idx)
    matrix = np.array(transform.GetMatrix(), float).reshape(3, 3)
    centre = np.array(transform.GetCenter(), float)
    moved = (pts - centre) @ matrix.T + centre + np.array(transform.GetTranslation(), float)
    z = _index(m_feat, moved)[:, 0]
    keep = (z >= valid_z[0] + margin_slices) & (z <= valid_z[1] - margin_slices)
    if keep.all():
        return None
    mask = sitk.GetImageFromArray(keep.reshape(size[::-1]).astype(np.uint8))
    mask.CopyInformation(f_feat)
    return mask


def both(a: sitk.Image | None, b: sitk.Image | None) -> sitk.Image | None:
    """The intersection of two optional masks (None = everything)."""
    if a is None or b is None:
        return a if b is None else b
    return sitk.And(a, b)


def full_resolution_dice(
    fixed_liver: sitk.Image,
    moving_liver: sitk.Image,
    transform: sitk.Transform,
    trust: sitk.Image | None = None,
    *,
    margin_mm: float = 20.0,
) -> float:
    """Liver Dice on the fixed scan's own grid, over the region both scans can judge.

    The moving liver is resampled (nearest neighbour) onto the fixed grid cropped to the fixed
    liver plus ``margin_mm``; voxels that map outside the moving scan (a field of view that ends
    earlier) and, when given, voxels outside ``trust`` (a resected part) are left out.
    """
    f_arr = sitk.GetArrayViewFromImage(fixed_liver)
    idx = np.nonzero(f_arr)
    if len(idx[0]) == 0:
        return float("nan")
    sp = np.array(fixed_liver.GetSpacing()[::-1], float)
    pad = np.ceil(margin_mm / sp).astype(int)
    lo = np.maximum([i.min() for i in idx] - pad, 0)
    hi = np.minimum([i.max() + 1 for i in idx] + pad, f_arr.shape)
    crop = sitk.RegionOfInterest(
        fixed_liver, [int(v) for v in (hi - lo)[::-1]], [int(v) for v in lo[::-1]]
    )
    outside = 255  # liver masks are 0/1: this value marks points outside the moving scan
    moved = sitk.GetArrayFromImage(
        sitk.Resample(
            moving_liver, crop, transform, sitk.sitkNearestNeighbor, outside, sitk.sitkUInt8
        )
    )
    keep = moved != outside
    if trust is not None:
        # kept in a name: a view of a temporary image reads freed memory (issue 18)
        trusted = sitk.Resample(trust, crop, sitk.Transform(), sitk.sitkNearestNeighbor, 1)
        keep &= sitk.GetArrayViewFromImage(trusted) != 0
    a = sitk.GetArrayViewFromImage(crop).astype(bool) & keep
    b = moved.astype(bool) & keep
    total = int(a.sum()) + int(b.sum())
    return 2.0 * int(np.count_nonzero(a & b)) / total if total else float("nan")


def single_threaded_itk(func):
    """``func`` run with SimpleITK's global default of one thread, restored after (issue 18).

    ITK's registration metrics sum their points per work unit, one per thread of the global
    default (the machine's core count unless a caller changed it), so without this the same
    pair gave transforms differing in the last digits, and across an optimiser's or QC's
    threshold more, from one machine or caller to the next. The default is process-wide: do not
    register in two threads of one process at once (metevo's runner uses processes).
    """

    @functools.wraps(func)
    def pinned(*args, **kwargs):
        previous = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
        try:
            return func(*args, **kwargs)
        finally:
            sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(previous)

    return pinned
