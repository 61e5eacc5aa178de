"""Analytic anatomy, lesion shapes, scan motion and rendering of the synthetic CT cohort (private).

Every shape is an implicit function (an approximate signed distance in mm, negative inside)
defined in the patient's fixed *canonical* frame (LPS, mm). A scan is rendered by mapping each
voxel centre ``p`` of its own grid back to the canonical frame,

    u = R^T (p - t)            (inverse of the rigid part, x_scan = R x + t)
    q = u + w(u)               (a smooth, divergence-free warp of a few mm),

and evaluating the shapes at ``q``: images are exact for each visit's moved anatomy, with no
resampling. ``w(u) = sum_k cos(k_k . u + phi_k) (k_k x a_k)`` is the curl of a sum of plane waves,
so it is divergence-free (volume preserving to first order) and smooth (wavelengths 250-400 mm).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from metevo.datasets._synthetic_kinetics import VISIBLE_MM, stein_factor

S26 = np.ones((3, 3, 3), dtype=bool)


# ---------------------------------------------------------------------------------------------
# geometry helpers
# ---------------------------------------------------------------------------------------------
def rotation_matrix(axis: np.ndarray, angle_deg: float) -> np.ndarray:
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    a = np.deg2rad(angle_deg)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * (k @ k)


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    w, x, y, z = q
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def ellipse_sdf(x: np.ndarray, y: np.ndarray, a: float, b: float) -> np.ndarray:
    """Approximate signed distance (mm) to an axis-aligned ellipse (Quilez's k0*(k0-1)/k1)."""
    k0 = np.sqrt((x / a) ** 2 + (y / b) ** 2)
    k1 = np.sqrt((x / a**2) ** 2 + (y / b**2) ** 2)
    return k0 * (k0 - 1.0) / np.maximum(k1, 1e-6)


def ellipsoid_sdf(q: np.ndarray, center, semi) -> np.ndarray:
    """Approximate signed distance (mm) to an axis-aligned ellipsoid; ``q`` is (3, n)."""
    c = np.asarray(center, np.float32)[:, None]
    s = np.asarray(semi, np.float32)[:, None]
    v = q - c
    k0 = np.sqrt(((v / s) ** 2).sum(axis=0))
    k1 = np.sqrt(((v / s**2) ** 2).sum(axis=0))
    return k0 * (k0 - 1.0) / np.maximum(k1, 1e-6)


def smooth_min(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b * (1 - h) + a * h - k * h * (1 - h)


def fibonacci_sphere(n: int) -> np.ndarray:
    i = np.arange(n) + 0.5
    phi = np.arccos(1 - 2 * i / n)
    theta = np.pi * (1 + 5**0.5) * i
    return np.stack([np.cos(theta) * np.sin(phi), np.sin(theta) * np.sin(phi), np.cos(phi)])


# ---------------------------------------------------------------------------------------------
# scan motion
# ---------------------------------------------------------------------------------------------
@dataclass
class Motion:
    """Rigid transform plus smooth warp from the canonical frame to one scan's frame."""

    rotation: np.ndarray  # (3, 3)
    axis: np.ndarray  # (3,)
    angle_deg: float
    translation: np.ndarray  # (3,) mm
    wave_k: np.ndarray  # (K, 3) wave vectors, rad/mm
    wave_b: np.ndarray  # (K, 3) displacement amplitudes (k x a), mm
    wave_phase: np.ndarray  # (K,)

    @property
    def warp_max_mm(self) -> float:
        return float(np.linalg.norm(self.wave_b, axis=1).sum())

    def warp(self, u: np.ndarray) -> np.ndarray:
        """Displacement w(u) in mm for points ``u`` of shape (3, n)."""
        arg = self.wave_k.astype(u.dtype) @ u + self.wave_phase[:, None].astype(u.dtype)
        return self.wave_b.T.astype(u.dtype) @ np.cos(arg)

    def to_canonical(self, p: np.ndarray) -> np.ndarray:
        u = self.rotation.T.astype(p.dtype) @ (p - self.translation[:, None].astype(p.dtype))
        return u + self.warp(u)

    def to_scan(self, q: np.ndarray, iterations: int = 8) -> np.ndarray:
        """Inverse of :meth:`to_canonical` (fixed-point iteration; the warp is a contraction)."""
        q = np.asarray(q, float)
        u = q.copy()
        for _ in range(iterations):
            u = q - self.warp(u)
        return self.rotation @ u + self.translation[:, None]

    def jacobian_to_scan(self, q: np.ndarray) -> np.ndarray:
        """Local linear map d(scan)/d(canonical) at canonical point ``q`` (3,)."""
        u = q.copy()
        for _ in range(8):
            u = q - self.warp(u[:, None])[:, 0]
        arg = self.wave_k @ u + self.wave_phase
        grad = -(self.wave_b.T * np.sin(arg)) @ self.wave_k  # d w / d u
        return self.rotation @ np.linalg.inv(np.eye(3) + grad)


def random_motion(rng: np.random.Generator, *, max_translation=20.0, max_angle=5.0) -> Motion:
    direction = rng.normal(size=3)
    direction /= np.linalg.norm(direction)
    translation = direction * rng.uniform(0.25, 1.0) * max_translation
    axis = np.array([rng.normal(0, 0.35), rng.normal(0, 0.35), 1.0])
    axis = axis / np.linalg.norm(axis) * rng.choice([-1.0, 1.0])
    angle = rng.uniform(0.2, 1.0) * max_angle
    n_waves = 3
    k_dir = rng.normal(size=(n_waves, 3))
    k_dir /= np.linalg.norm(k_dir, axis=1, keepdims=True)
    wavelength = rng.uniform(250.0, 400.0, size=n_waves)
    wave_k = k_dir * (2 * np.pi / wavelength)[:, None]
    a = rng.normal(size=(n_waves, 3))
    b = np.cross(wave_k, a)
    b *= (rng.uniform(0.8, 1.6, size=n_waves) / np.linalg.norm(b, axis=1))[:, None]
    return Motion(
        rotation=rotation_matrix(axis, angle),
        axis=axis,
        angle_deg=float(angle),
        translation=translation,
        wave_k=wave_k,
        wave_b=b,
        wave_phase=rng.uniform(0, 2 * np.pi, size=n_waves),
    )


# ---------------------------------------------------------------------------------------------
# lesions
# ---------------------------------------------------------------------------------------------
@dataclass
class Lesion:
    """One true lesion: a perturbed ellipsoid whose diameter follows Stein kinetics."""

    lesion_id: str
    center: np.ndarray  # canonical mm
    axes: np.ndarray  # relative semi-axes (geometric mean 1)
    orientation: np.ndarray  # (3, 3) local -> canonical
    bump_n: np.ndarray  # (M, 3) unit vectors of the surface perturbation
    bump_freq: np.ndarray  # (M,)
    bump_phase: np.ndarray  # (M,)
    bump_amp: np.ndarray  # (M,)
    d0_mm: float  # diameter at study day 0 (or at onset for new lesions)
    d: float  # regression rate 1/day
    g: float  # growth rate 1/day
    onset_day: float | None = None  # new lesion: appears at this study day
    resected_day: float | None = None  # resected on this study day
    role: str = "regular"
    core_hu: float = 30.0
    rim_hu: float = 85.0
    necrotic: bool = False
    _unit: dict = field(default_factory=dict, repr=False)

    def diameter(self, study_day) -> np.ndarray:
        """Stein-model diameter (mm) at ``study_day``; 0 before onset or after resection."""
        t = np.asarray(study_day, float)
        if self.onset_day is None:
            size = self.d0_mm * stein_factor(t, self.d, self.g)
        else:
            tau = t - self.onset_day
            size = np.where(tau >= 0, self.d0_mm * stein_factor(tau, self.d, self.g), 0.0)
        if self.resected_day is not None:
            size = np.where(t >= self.resected_day, 0.0, size)
        return size

    def present(self, study_day) -> np.ndarray:
        return self.diameter(study_day) >= VISIBLE_MM

    # shape ------------------------------------------------------------------------------------
    def rho(self, dirs_local: np.ndarray) -> np.ndarray:
        """Radius (in units of diameter/2) along unit directions in the lesion's own frame."""
        dl = dirs_local
        eps = np.zeros(dl.shape[1], dtype=dl.dtype)
        for n, f, ph, a in zip(
            self.bump_n, self.bump_freq, self.bump_phase, self.bump_amp, strict=False
        ):
            eps += a * np.cos(f * (n.astype(dl.dtype) @ dl) + ph)
        inv = np.sqrt(((dl / self.axes[:, None].astype(dl.dtype)) ** 2).sum(axis=0))
        return (1.0 + eps) / inv

    @property
    def max_extent(self) -> float:
        """Upper bound of rho over all directions."""
        return float(self.axes.max() * (1.0 + np.abs(self.bump_amp).sum()))

    def sdf(self, q: np.ndarray, diameter: float) -> tuple[np.ndarray, np.ndarray]:
        """Approximate signed distance (mm) and normalised radius |v|/r at canonical points."""
        v = q - self.center[:, None].astype(q.dtype)
        vl = self.orientation.T.astype(q.dtype) @ v
        dist = np.sqrt((vl**2).sum(axis=0))
        dirs = vl / np.maximum(dist, 1e-6)
        r = (0.5 * diameter) * self.rho(dirs)
        return dist - r, dist / np.maximum(r, 1e-6)

    def unit_moments(self) -> tuple[float, np.ndarray]:
        """Volume (mm^3) and centroid offset (mm, canonical) of the shape with diameter 2."""
        if not self._unit:
            dirs = fibonacci_sphere(6000)
            rho = self.rho(dirs)
            vol = 4 * np.pi / dirs.shape[1] * (rho**3).sum() / 3.0
            off = np.pi / dirs.shape[1] * (rho**4 * dirs).sum(axis=1) / vol
            self._unit.update(volume=vol, offset=self.orientation @ off)
        return self._unit["volume"], self._unit["offset"]

    def surface(self, diameter: float, n_theta: int = 24, n_phi: int = 48) -> np.ndarray:
        """Surface points (3, n_theta + 1, n_phi) in the canonical frame."""
        th = np.linspace(0, np.pi, n_theta + 1)
        ph = np.linspace(0, 2 * np.pi, n_phi, endpoint=False)
        tt, pp = np.meshgrid(th, ph, indexing="ij")
        dirs = np.stack([np.sin(tt) * np.cos(pp), np.sin(tt) * np.sin(pp), np.cos(tt)])
        flat = dirs.reshape(3, -1)
        r = 0.5 * diameter * self.rho(flat)
        pts = self.orientation @ (flat * r) + self.center[:, None]
        return pts.reshape(3, n_theta + 1, n_phi)


def random_lesion(
    rng: np.random.Generator,
    lesion_id: str,
    center,
    d0_mm: float,
    d: float,
    g: float,
    *,
    smooth: bool = False,
    **kwargs,
) -> Lesion:
    if smooth:  # pair members: near-spherical so their gaps follow the design
        axes = np.exp(rng.normal(0, 0.03, size=3))
        amp = rng.uniform(0.005, 0.015, size=3)
    else:
        axes = np.exp(rng.normal(0, 0.12, size=3))
        amp = rng.uniform(0.015, 0.05, size=3)
    axes /= np.prod(axes) ** (1 / 3)
    bump_n = rng.normal(size=(3, 3))
    bump_n /= np.linalg.norm(bump_n, axis=1, keepdims=True)
    core = rng.uniform(15.0, 35.0)
    return Lesion(
        lesion_id=lesion_id,
        center=np.asarray(center, float),
        axes=axes,
        orientation=random_rotation(rng),
        bump_n=bump_n,
        bump_freq=rng.uniform(2.0, 4.5, size=3),
        bump_phase=rng.uniform(0, 2 * np.pi, size=3),
        bump_amp=amp,
        d0_mm=float(d0_mm),
        d=float(d),
        g=float(g),
        core_hu=core,
        rim_hu=rng.uniform(65.0, 80.0),
        necrotic=bool(rng.uniform() < 0.5),
        **kwargs,
    )


def axial_ld_mm(pts_scan: np.ndarray, plane_z: np.ndarray) -> float:
    """Longest in-plane diameter of a closed surface mesh over the given axial planes.

    ``pts_scan`` is (3, n_theta + 1, n_phi) surface points in the scan frame; each plane's
    contour is the set of mesh-edge crossings, its longest diameter the largest pairwise
    distance of those points.
    """
    z = pts_scan[2]
    best = 0.0
    edges = (
        (pts_scan[:, :-1, :], pts_scan[:, 1:, :]),
        (pts_scan, np.roll(pts_scan, -1, axis=2)),
    )
    zmin, zmax = z.min(), z.max()
    for z0 in plane_z[(plane_z > zmin) & (plane_z < zmax)]:
        contour = []
        for a, b in edges:
            za, zb = a[2] - z0, b[2] - z0
            cross = (za * zb) < 0
            if cross.any():
                w = (za[cross] / (za[cross] - zb[cross]))[None, :]
                contour.append(a[:2][:, cross] * (1 - w) + b[:2][:, cross] * w)
        if not contour:
            continue
        c = np.concatenate(contour, axis=1)
        if c.shape[1] < 2:
            continue
        diff = c[:, :, None] - c[:, None, :]
        best = max(best, float(np.sqrt((diff**2).sum(axis=0)).max()))
    return best


# ---------------------------------------------------------------------------------------------
# anatomy
# ---------------------------------------------------------------------------------------------
@dataclass
class Anatomy:
    """A patient's fixed body, organs and liver in the canonical frame (mm)."""

    body_semi: tuple[float, float]
    fat_mm: float
    liver_parts: list  # [(center, semi), ...] smoothly united ellipsoids
    liver_waves: np.ndarray  # (J, 5): kx, ky, kz, phase, amplitude (mm)
    kidneys: list  # [(center, semi)]
    lungs: list  # [(center, semi)]
    spine_center: tuple[float, float]
    aorta_center: tuple[float, float]
    ivc_center: tuple[float, float]
    stomach: tuple  # (center, semi)
    _surface: np.ndarray | None = field(default=None, repr=False)

    def liver_sdf(self, q: np.ndarray) -> np.ndarray:
        d = None
        for c, s in self.liver_parts:
            e = ellipsoid_sdf(q, c, s)
            d = e if d is None else smooth_min(d, e, 18.0)
        for kx, ky, kz, ph, amp in self.liver_waves:
            d = d + np.float32(amp) * np.sin(
                np.float32(kx) * q[0]
                + np.float32(ky) * q[1]
                + np.float32(kz) * q[2]
                + np.float32(ph)
            )
        return d

    def liver_bbox(self) -> tuple[np.ndarray, np.ndarray]:
        lo = np.min([np.asarray(c) - np.asarray(s) for c, s in self.liver_parts], axis=0) - 8
        hi = np.max([np.asarray(c) + np.asarray(s) for c, s in self.liver_parts], axis=0) + 8
        return lo, hi

    def liver_surface_points(self) -> np.ndarray:
        """Points near the liver surface (3, n), canonical frame (for field-of-view planning)."""
        if self._surface is None:
            lo, hi = self.liver_bbox()
            axes = [np.arange(a, b, 3.0) for a, b in zip(lo, hi, strict=False)]
            g = np.stack(np.meshgrid(*axes, indexing="ij")).reshape(3, -1).astype(np.float32)
            d = self.liver_sdf(g)
            self._surface = g[:, np.abs(d) < 2.0].astype(float)
        return self._surface


def random_anatomy(rng: np.random.Generator) -> Anatomy:
    s = rng.uniform(0.92, 1.05)
    bx, by = rng.uniform(150, 172), rng.uniform(108, 125)
    liver_parts = [
        ((-52 * s, -5.0, 0.0), (62 * s, 72 * s, 78 * s)),
        ((12 * s, -40 * s, 22 * s), (55 * s, 30 * s, 36 * s)),
        ((-70 * s, 5.0, -40 * s), (40 * s, 45 * s, 45 * s)),
    ]
    k = rng.normal(size=(3, 3))
    k = (
        k
        / np.linalg.norm(k, axis=1, keepdims=True)
        * (2 * np.pi / rng.uniform(60, 110, size=3))[:, None]
    )
    waves = np.column_stack([k, rng.uniform(0, 2 * np.pi, 3), rng.uniform(1.0, 2.5, 3)])
    zk = -70 * s
    return Anatomy(
        body_semi=(bx, by),
        fat_mm=rng.uniform(10, 20),
        liver_parts=liver_parts,
        liver_waves=waves,
        kidneys=[
            ((-68.0, 0.5 * by, zk - 5), (27, 24, 50)),
            ((68.0, 0.5 * by, zk + 10), (27, 24, 50)),
        ],
        lungs=[((-80.0, 5.0, 150 * s), (72, 92, 135)), ((80.0, 5.0, 150 * s), (68, 90, 130))],
        spine_center=(0.0, 0.6 * by),
        aorta_center=(18.0, 0.33 * by),
        ivc_center=(-24.0, 0.28 * by),
        stomach=((70.0, -25.0, 25.0), (42, 32, 48)),
    )


# ---------------------------------------------------------------------------------------------
# rendering
# ---------------------------------------------------------------------------------------------
@dataclass
class Grid:
    size: tuple[int, int, int]  # (x, y, z)
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]

    def axis(self, i: int) -> np.ndarray:
        return self.origin[i] + self.spacing[i] * np.arange(self.size[i])


def smooth_field(rng: np.random.Generator, shape, sigma_vox, out_std=1.0) -> np.ndarray:
    f = rng.standard_normal(size=shape, dtype=np.float32)
    f = ndimage.gaussian_filter(f, sigma_vox, mode="wrap", truncate=3.0)
    f *= np.float32(out_std / max(float(f[::2, ::3, ::3].std()), 1e-6))
    return f


def _alpha(d: np.ndarray, width: float) -> np.ndarray:
    """Partial-volume occupancy from a signed distance: 1 inside, 0 outside, linear ramp."""
    return np.clip(0.5 - d / np.float32(width), 0.0, 1.0)


def _blend(img: np.ndarray, alpha: np.ndarray, value) -> None:
    img *= 1.0 - alpha
    img += alpha * value


@dataclass
class RenderedScan:
    image: np.ndarray  # int16 (z, y, x)
    liver: np.ndarray  # uint8
    lesion: np.ndarray  # uint8
    instances: np.ndarray  # uint32
    n_components: int
    lesion_voxels: dict  # lesion_id -> number of true voxels
    lesion_component: dict  # lesion_id -> component label


def render_scan(
    rng: np.random.Generator,
    anatomy: Anatomy,
    lesions: list[tuple[Lesion, float]],
    motion: Motion,
    grid: Grid,
    *,
    noise_hu: float,
) -> RenderedScan:
    """Render one scan: CT-like int16 image, liver and lesion masks, instance labels.

    ``lesions`` holds (lesion, diameter_mm) for the lesions present at this visit.
    """
    nx, ny, nz = grid.size
    sx, sy, sz = grid.spacing
    shape = (nz, ny, nx)
    f32 = np.float32
    pv = 0.7 * min(sx, sy)  # partial-volume ramp width (mm)
    sig = lambda mm: (mm / sz, mm / sy, mm / sx)  # noqa: E731  mm -> voxel sigmas (z, y, x)

    xs, ys, zs = (grid.axis(i).astype(f32) for i in range(3))
    img = np.empty(shape, f32)
    dliv = np.empty(shape, f32)
    bx, by = anatomy.body_semi
    fat = anatomy.fat_mm
    tex = smooth_field(rng, shape, sig(3.0))
    liver_lo, liver_hi = anatomy.liver_bbox()

    def outside(qlo, qhi, lo, hi) -> bool:
        return bool((qhi < lo).any() or (qlo > hi).any())

    # slab-wise evaluation: bounds memory on the "full" grid and lets organs outside a slab skip
    slab = max(1, int(200_000 // (nx * ny)))
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    for z0 in range(0, nz, slab):
        z1 = min(nz, z0 + slab)
        n = (z1 - z0) * ny * nx
        p = np.empty((3, n), f32)
        p[0] = np.broadcast_to(xx, (z1 - z0, ny, nx)).ravel()
        p[1] = np.broadcast_to(yy, (z1 - z0, ny, nx)).ravel()
        p[2] = np.repeat(zs[z0:z1], ny * nx)
        q = motion.to_canonical(p)
        qlo, qhi = q.min(axis=1), q.max(axis=1)
        t = tex[z0:z1].ravel()
        im = np.full(n, -1000.0, f32)
        d_body = ellipse_sdf(q[0], q[1], bx, by)
        _blend(im, _alpha(d_body, pv), -95.0 + 6.0 * t)
        d_inner = ellipse_sdf(q[0], q[1], bx - fat, by - fat)
        _blend(im, _alpha(d_inner, pv), 38.0 + 14.0 * t)
        for c, s in anatomy.lungs:
            if not outside(qlo, qhi, np.subtract(c, s) - 5, np.add(c, s) + 5):
                d_l = np.maximum(ellipsoid_sdf(q, c, s), d_inner + 12.0)
                _blend(im, _alpha(d_l, pv), -860.0 + 15.0 * t)
        sc, ss = anatomy.stomach
        if not outside(qlo, qhi, np.subtract(sc, ss) - 5, np.add(sc, ss) + 5):
            d_st = ellipsoid_sdf(q, sc, ss)
            _blend(im, _alpha(d_st, pv), 15.0 + 5.0 * t)
            air = np.maximum(d_st + 6.0, -(q[1] - (sc[1] - 0.45 * ss[1])))  # anterior air cap
            _blend(im, _alpha(air, pv), -950.0)
        for c, s in anatomy.kidneys:
            if not outside(qlo, qhi, np.subtract(c, s) - 5, np.add(c, s) + 5):
                _blend(im, _alpha(ellipsoid_sdf(q, c, s), pv), 155.0 + 8.0 * t)
        for (cx, cy), r, hu in (
            (anatomy.aorta_center, 11.0, 165.0),
            (anatomy.ivc_center, 12.0, 125.0),
        ):
            d_v = np.sqrt((q[0] - cx) ** 2 + (q[1] - cy) ** 2) - r
            _blend(im, _alpha(d_v, pv), hu)
        cx, cy = anatomy.spine_center
        d_sp = np.sqrt((q[0] - cx) ** 2 + (q[1] - cy) ** 2) - 19.0
        _blend(im, _alpha(d_sp, pv), 650.0)
        _blend(im, _alpha(d_sp + 2.5, pv), 260.0 + 30.0 * t)
        if outside(qlo, qhi, liver_lo, liver_hi):
            dl = np.full(n, 1000.0, f32)
        else:
            dl = anatomy.liver_sdf(q)
            _blend(im, _alpha(dl, pv), 65.0 + 4.0 * t)
        img[z0:z1] = im.reshape(z1 - z0, ny, nx)
        dliv[z0:z1] = dl.reshape(z1 - z0, ny, nx)

    # boundary noise: a smooth field moves every mask boundary by about half a voxel (sd)
    h = f32(min(sx, sy))
    bnoise = smooth_field(rng, shape, sig(3.0))
    liver = dliv < f32(0.55) * h * bnoise
    lab, n = ndimage.label(liver)
    if n > 1:
        sizes = np.bincount(lab.ravel())
        sizes[0] = 0
        liver = lab == int(np.argmax(sizes))

    true_u = np.zeros(shape, bool)
    noisy_u = np.zeros(shape, bool)
    voxels: dict[str, tuple] = {}
    for lesion, diam in lesions:
        ext = 0.5 * diam * lesion.max_extent + motion.warp_max_mm + 2 * max(sx, sy, sz)
        c = motion.to_scan(lesion.center[:, None])[:, 0]
        sl = []
        for ax in (2, 1, 0):  # array axes are (z, y, x)
            lo = int(np.floor((c[ax] - ext - grid.origin[ax]) / grid.spacing[ax]))
            hi = int(np.ceil((c[ax] + ext - grid.origin[ax]) / grid.spacing[ax])) + 1
            sl.append(slice(max(lo, 0), min(hi, grid.size[ax])))
        sl = tuple(sl)
        if any(s.stop <= s.start for s in sl):
            voxels[lesion.lesion_id] = (sl, np.zeros((0, 0, 0), bool))
            continue
        zz, yy2, xx2 = np.meshgrid(zs[sl[0]], ys[sl[1]], xs[sl[2]], indexing="ij")
        p = np.stack([xx2.ravel(), yy2.ravel(), zz.ravel()])
        q = motion.to_canonical(p)
        d, rho = lesion.sdf(q, diam)
        sub = tuple(s.stop - s.start for s in sl)
        d = d.reshape(sub)
        rho = rho.reshape(sub)
        # enhancing rim: the outer ~12 % of the radius
        hu = lesion.core_hu + (lesion.rim_hu - lesion.core_hu) * np.clip((rho - 0.85) / 0.12, 0, 1)
        if lesion.necrotic and diam > 18:
            hu = np.where(rho < 0.45, hu - 14.0, hu)
        hu = hu + 9.0 * tex[sl]
        region = img[sl]
        _blend(region, _alpha(d, pv), hu.astype(f32))
        tmask = (d < 0) & liver[sl]
        true_u[sl] |= tmask
        # boundary noise: ~half a voxel (sd) on lesions >= 20 mm, proportionally less below
        amp = f32(0.5 * h * min(1.0, diam / 20.0))
        noisy_u[sl] |= d < amp * bnoise[sl]
        voxels[lesion.lesion_id] = (sl, tmask)

    noisy_u &= liver
    # topology fixes and labelling on the lesions' bounding box only (same labels, raster order)
    boxes = [sl for sl, _ in voxels.values() if all(s.stop > s.start for s in sl)]
    noisy = np.zeros(shape, bool)
    inst = np.zeros(shape, np.int32)
    tlab = np.zeros(shape, np.int32)
    ncomp = 0
    if boxes:
        crop = tuple(
            slice(min(b[i].start for b in boxes), max(b[i].stop for b in boxes)) for i in range(3)
        )
        noisy[crop] = _consistent_noise(true_u[crop], noisy_u[crop])
        inst[crop], ncomp = ndimage.label(noisy[crop], structure=S26)
        tlab[crop], _ = ndimage.label(true_u[crop], structure=S26)
    comp_of_true = {}
    both = (tlab > 0) & (inst > 0)
    for tl, nl in np.unique(np.stack([tlab[both], inst[both]]), axis=1).T:
        comp_of_true[int(tl)] = int(nl)
    lesion_voxels, lesion_component = {}, {}
    for lid, (sl, tmask) in voxels.items():
        count = int(tmask.sum())
        lesion_voxels[lid] = count
        if count:
            labels = tlab[sl][tmask]
            tl = int(np.bincount(labels).argmax())
            lesion_component[lid] = comp_of_true[tl]

    # texture of the liver parenchyma, then quantum noise (slightly correlated, like CT)
    noise = smooth_field(rng, shape, (0.35, 0.6, 0.6), out_std=noise_hu)
    img += noise
    image = np.clip(np.rint(img), -1024, 3071).astype(np.int16)
    return RenderedScan(
        image=image,
        liver=liver.astype(np.uint8),
        lesion=noisy.astype(np.uint8),
        instances=inst.astype(np.uint32),
        n_components=int(ncomp),
        lesion_voxels=lesion_voxels,
        lesion_component=lesion_component,
    )


def _consistent_noise(true: np.ndarray, noisy: np.ndarray) -> np.ndarray:
    """Boundary noise that never changes the topology of the true lesion mask.

    Components of the noisy mask map one-to-one onto components of the true mask: noisy
    specks with no true voxel are dropped, additions that bridge two true components are
    reverted, and true components that noise erased or cut are restored.
    """
    noisy = noisy.copy()
    if not true.any():
        return noisy & False
    tlab, nt = ndimage.label(true, structure=S26)
    for _ in range(5):
        nlab, nn = ndimage.label(noisy, structure=S26)
        both = (tlab > 0) & (nlab > 0)
        pairs = np.unique(np.stack([tlab[both], nlab[both]]), axis=1)
        n_per_t = np.bincount(pairs[0], minlength=nt + 1)
        t_per_n = np.bincount(pairs[1], minlength=nn + 1)
        orphan = np.flatnonzero(t_per_n == 0)[1:]
        bridged = np.flatnonzero(t_per_n > 1)
        broken = np.flatnonzero(n_per_t[1:] != 1) + 1
        if len(orphan) == 0 and len(bridged) == 0 and len(broken) == 0:
            return noisy
        if len(orphan):
            noisy[np.isin(nlab, orphan)] = False
        if len(bridged):
            noisy[np.isin(nlab, bridged) & ~true] = False
        if len(broken):
            noisy[np.isin(tlab, broken)] = True
    return true.copy()
