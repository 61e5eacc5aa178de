"""Hard cases of the clinical presets of the synthetic cohort (private; see :mod:`metevo.datasets`).

Trial-CT-like scan motion (rotation about every axis, large translation, breathing warp), split
fragments that drift beyond the pair's former boundary, clusters of small lesions, lesions
flickering around the visibility limit, and the hepatectomy that removes part of the liver with a
resected lesion. Used by :mod:`metevo.datasets._synthetic_cohort` when ``size`` is a clinical preset.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from metevo.datasets._synthetic_anatomy import Lesion, Motion, random_lesion, rotation_matrix
from metevo.datasets._synthetic_kinetics import VISIBLE_MM, design_dip

#: hard cases every patient of the clinical presets carries on top of its pattern's
CLINICAL_ROLES = ("cluster", "flicker")
CLINICAL_TRUNCATION_P = 0.3  # chance that a follow-up scan cuts the liver dome or tip


def at_day(lesion: Lesion, study_day: float) -> Lesion:
    """The lesion with its centre where it is on ``study_day`` (itself when it never moves)."""
    if lesion.drift_mm is None:
        return lesion
    t0, t1 = lesion.drift_days
    frac = float(np.clip((study_day - t0) / max(t1 - t0, 1e-9), 0.0, 1.0))
    return replace(lesion, center=lesion.center + frac * lesion.drift_mm, drift_mm=None)


def axis_angle(rotation: np.ndarray) -> tuple[np.ndarray, float]:
    """Unit axis and angle (degrees) of a rotation matrix."""
    angle = float(np.degrees(np.arccos(np.clip((np.trace(rotation) - 1.0) / 2.0, -1.0, 1.0))))
    w = np.array(
        [
            rotation[2, 1] - rotation[1, 2],
            rotation[0, 2] - rotation[2, 0],
            rotation[1, 0] - rotation[0, 1],
        ]
    )
    norm = np.linalg.norm(w)
    axis = w / norm if norm > 1e-9 else np.array([0.0, 0.0, 1.0])
    return axis, angle


def clinical_motion(
    rng: np.random.Generator,
    *,
    max_translation: float = 25.0,
    max_angle_per_axis: float = 10.0,
    max_warp: float = 8.0,
) -> Motion:
    """Trial-CT-like motion: rotation about each axis, large translation, breathing warp.

    Rotation ``Rz Ry Rx`` with each angle uniform in +/- ``max_angle_per_axis`` degrees (roll,
    pitch and yaw, so two visits can differ by up to twice that about any axis), translation
    uniform in +/- ``max_translation`` mm per axis, and a divergence-free warp whose first wave
    moves tissue cranio-caudally (breathing) with the others in random directions; the summed
    wave amplitudes reach up to ``max_warp`` mm.
    """
    angles = rng.uniform(-max_angle_per_axis, max_angle_per_axis, size=3)
    rotation = np.eye(3)
    for ax, a in zip(np.eye(3), angles, strict=False):
        rotation = rotation_matrix(ax, a) @ rotation
    axis, angle = axis_angle(rotation)
    translation = rng.uniform(-max_translation, max_translation, size=3)
    n_waves = 3
    phi = rng.uniform(0, 2 * np.pi)
    k_dir = np.zeros((n_waves, 3))
    k_dir[0] = (np.cos(phi), np.sin(phi), 0.0)  # horizontal wave vector ...
    k_dir[1:] = rng.normal(size=(n_waves - 1, 3))
    k_dir /= np.linalg.norm(k_dir, axis=1, keepdims=True)
    wavelength = rng.uniform(250.0, 400.0, size=n_waves)
    wave_k = k_dir * (2 * np.pi / wavelength)[:, None]
    a = rng.normal(size=(n_waves, 3))
    a[0] = (-np.sin(phi), np.cos(phi), 0.0)  # ... so its displacement k x a is along z
    b = np.cross(wave_k, a)
    total = rng.uniform(0.4, 1.0) * max_warp
    share = np.array([rng.uniform(0.45, 0.65), 0.0, 0.0])
    share[1:] = (1 - share[0]) * rng.dirichlet((2.0, 2.0))
    b *= (total * share / np.linalg.norm(b, axis=1))[:, None]
    return Motion(
        rotation=rotation,
        axis=axis,
        angle_deg=angle,
        translation=translation,
        wave_k=wave_k,
        wave_b=b,
        wave_phase=rng.uniform(0, 2 * np.pi, size=n_waves),
    )


def design_split_drift(
    rng, a: Lesion, b: Lesion, length: float, u: np.ndarray, days: np.ndarray
) -> None:
    """Fragment ``b`` moves away from ``a`` along ``u`` around the visit where they separate.

    Between the last visit where the pair still touches and the next one, the fragment's far
    surface moves 3-8 mm beyond where the parent's (the pair's) boundary was at the visit before.
    """
    ext_a = 0.5 * a.rho((a.orientation.T @ u)[:, None])[0]
    ext_b = 0.5 * b.rho((b.orientation.T @ -u)[:, None])[0]
    far_b = 0.5 * b.rho((b.orientation.T @ u)[:, None])[0]
    reach = ext_a * a.diameter(days) + ext_b * b.diameter(days)
    # the designed pair separates where the centre distance first exceeds the reach
    apart = np.flatnonzero((length - reach > 0) & (np.arange(len(days)) >= 1))
    k = int(apart[0]) if len(apart) else 1
    beyond = rng.uniform(3.0, 8.0)
    db = b.diameter(days)
    shift = beyond - far_b * (db[k] - db[k - 1])
    b.drift_mm = u * max(shift, 0.0)
    b.drift_days = (float(days[k - 1]), float(days[k]))


def design_cluster(rng, lid, days: np.ndarray) -> list[Lesion]:
    """3-4 small stable lesions (5.2-6.5 mm) that stay visible and below 10 mm."""
    n = int(rng.integers(3, 5))
    group = []
    for _ in range(n):
        for _attempt in range(100):
            lesion = random_lesion(
                rng,
                lid(),
                np.zeros(3),
                rng.uniform(5.4, 6.5),
                rng.uniform(0.0005, 0.0015),
                rng.uniform(0.0005, 0.0012),
                smooth=True,
                role="cluster",
            )
            size = lesion.diameter(days)
            if size.min() >= VISIBLE_MM + 0.2 and size.max() < 9.0:
                group.append(lesion)
                break
        else:  # pragma: no cover - the ranges above always allow it
            raise RuntimeError("could not design a cluster lesion")
    return group


def cluster_offsets(rng, group: list[Lesion], days: np.ndarray) -> np.ndarray:
    """Centre offsets (3, n): a zig-zag chain with 5-8 mm surface-to-surface gaps."""
    offsets = [np.zeros(3)]
    for i in range(1, len(group)):
        r_prev = 0.5 * group[i - 1].diameter(days).max() * group[i - 1].max_extent
        r_cur = 0.5 * group[i].diameter(days).max() * group[i].max_extent
        angle = rng.uniform(0, 2 * np.pi)
        u = np.array([np.cos(angle), np.sin(angle), rng.uniform(-0.6, 0.6)])
        u /= np.linalg.norm(u)
        for _attempt in range(50):
            step = offsets[-1] + u * (r_prev + r_cur + rng.uniform(5.0, 8.0))
            near = min(np.linalg.norm(step - o) for o in offsets[:-1]) if i > 1 else np.inf
            if near > 2 * r_cur + 5.0 + 2.0:
                break
            angle = rng.uniform(0, 2 * np.pi)
            u = np.array([np.cos(angle), np.sin(angle), rng.uniform(-0.6, 0.6)])
            u /= np.linalg.norm(u)
        offsets.append(step)
    offsets = np.array(offsets).T
    return offsets - offsets.mean(axis=1, keepdims=True)


def design_flicker(rng, days, lesion_id) -> Lesion:
    """A small lesion around the visibility limit: seen, gone at one or more visits, seen again."""
    found = design_dip(
        rng,
        days,
        np.linspace(0.004, 0.03, 12),
        np.linspace(0.002, 0.008, 12),
        lambda: rng.uniform(4.2, 4.8),
        lambda size, b, d0: VISIBLE_MM + 0.5 <= size[0] <= 8.5
        and (size[b + 1 :] >= VISIBLE_MM + 0.5).any()
        and size.max() < 9.5,
    )
    if found is None:  # pragma: no cover
        raise RuntimeError("could not design a flickering lesion")
    return random_lesion(rng, lesion_id, np.zeros(3), *found, smooth=True, role="flicker")


def place_group(placer, group: list[Lesion], offsets: np.ndarray) -> None:
    """Place lesions at fixed offsets from one another (a cluster)."""
    for _ in range(2000):
        c = placer.candidates[:, placer.rng.integers(placer.candidates.shape[1])]
        for lesion, off in zip(group, offsets.T, strict=False):
            lesion.center = c + off
        if all(placer._fits(lesion, partner=group) for lesion in group):
            placer.placed += group
            return
    raise RuntimeError("could not place the lesion cluster inside the liver")  # pragma: no cover


def place_resection(placer, lesion: Lesion, day: int) -> Lesion:
    """Place a resected lesion and plan the hepatectomy that removes it on ``day``.

    The liver beyond a plane 10 mm short of the lesion (normal from the liver's centre
    through the lesion) is removed; the lesions already placed and alive after ``day`` must
    lie behind the plane, and at most 40 % of the liver may go.
    """
    pts = placer.anatomy.liver_surface_points()
    inner = placer.candidates
    centre = inner.mean(axis=1)
    for _shrink in range(6):
        for _ in range(400):
            c = inner[:, placer.rng.integers(inner.shape[1])]
            lesion.center = c + placer.rng.uniform(-2, 2, size=3)
            if not placer._fits(lesion):
                continue
            normal = lesion.center - centre
            if np.linalg.norm(normal) < 25.0:
                continue
            normal /= np.linalg.norm(normal)
            reach = 0.5 * float(lesion.diameter(placer.days).max()) * lesion.max_extent
            point = lesion.center - normal * (reach + 10.0)
            removed = (normal @ (inner - point[:, None])) > 0
            if not 0.08 <= removed.mean() <= 0.4 or (normal @ (pts - point[:, None]) > 0).all():
                continue
            cut = (float(day), normal, point)
            placer.anatomy.liver_cuts.append(cut)
            survivors = [
                o for o in placer.placed if (o.diameter(placer.days[placer.days >= day]) > 0).any()
            ]
            if all(_fits_cut(placer, o, cut) for o in survivors):
                placer.placed.append(lesion)
                return lesion
            placer.anatomy.liver_cuts.pop()
        lesion.d0_mm *= 0.85
    raise RuntimeError(
        f"could not place the resected lesion {lesion.lesion_id}"
    )  # pragma: no cover


def _fits_cut(placer, lesion: Lesion, cut) -> bool:
    _day, normal, point = cut
    pts = lesion.surface(float(lesion.diameter(placer.days).max()), 8, 16).reshape(3, -1)
    if lesion.drift_mm is not None:
        pts = np.concatenate([pts, pts + lesion.drift_mm[:, None]], axis=1)
    return bool((normal @ (pts - point[:, None])).max() < -placer.MARGIN_LIVER)


def lesion_z_range(plan, motion, day: float) -> tuple[float, float]:
    """Lowest and highest scan z (mm) reached by any lesion present on ``day``."""
    lo, hi = np.inf, -np.inf
    for les in plan.lesions:
        dm = float(les.diameter(day))
        if dm < VISIBLE_MM:
            continue
        pts = motion.to_scan(at_day(les, day).surface(dm, 8, 16).reshape(3, -1))
        lo, hi = min(lo, float(pts[2].min())), max(hi, float(pts[2].max()))
    return lo, hi
