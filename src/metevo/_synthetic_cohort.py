"""Planning and writing of the synthetic image cohort (private; see :mod:`metevo.datasets`).

Each patient is planned first (pattern, kinetics, visits, lesions, events, motion, field of
view), with the hard cases placed deliberately against the patient's actual analysed visit days,
then every analysed visit is rendered (:func:`metevo._synthetic_anatomy.render_scan`) and the
ground truth is assembled from the plan and the rendered masks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from metevo._synthetic_anatomy import (
    Anatomy,
    Grid,
    Lesion,
    Motion,
    axial_ld_mm,
    random_anatomy,
    random_lesion,
    random_motion,
    render_scan,
)
from metevo._synthetic_kinetics import (
    MIXED_PROGRESSING_RATES,
    PATTERNS,
    VISIBLE_MM,
    covariates,
    log_uniform,
    os_times,
    patient_rates,
    stein_factor,
    visit_study_days,
)

SIZES = {
    "tiny": {"spacing": (3.0, 3.0, 5.0), "n_xy": 128, "n_z": None},
    "small": {"spacing": (1.5, 1.5, 3.0), "n_xy": 256, "n_z": None},
    "full": {"spacing": (0.8, 0.8, 2.5), "n_xy": 512, "n_z": 150},
}

#: hard cases planted in each pattern's patients
ROLES = {
    "deep_response": ("split", "vanish", "resection"),
    "progression": ("merge", "new"),
    "response_then_relapse": ("reappear", "new"),
    "stable": ("close", "resection"),
    "mixed_response": ("close",),
}
#: planned visits (baseline included) per pattern; follow-up stops earlier at progression
PLANNED_VISITS = {
    "deep_response": (6, 9),
    "progression": (5, 6),
    "response_then_relapse": (6, 7),
    "stable": (6, 9),
    "mixed_response": (6, 7),
}
MAX_LESION_G = 0.005  # image cohort: lesions stay inside the liver over the follow-up
SURE_VISIBLE_MM = 9.0  # a designed "visible" lesion is at least this large
KERNELS = ("STANDARD", "B30f", "FC08")
BASE_DATE = np.datetime64("2018-01-08")


@dataclass
class ScanPlan:
    label: str
    study_day: int
    motion: Motion
    grid: Grid
    noise_hu: float
    truncation: str  # "none", "top", "bottom"


@dataclass
class PatientPlan:
    patient_id: str
    pattern: str
    d: float
    g: float
    arm: str
    age: int
    ecog: int
    ras_status: str
    kernel: str
    baseline_date: np.datetime64
    base_offset: int
    planned: list  # [(label, study_day)]
    missed: list  # labels
    anatomy: Anatomy
    lesions: list = field(default_factory=list)
    scans: list = field(default_factory=list)
    events: list = field(default_factory=list)  # [(study_day, event, note)]
    roles: tuple = ()


# ---------------------------------------------------------------------------------------------
# planning
# ---------------------------------------------------------------------------------------------
def assign_patterns(seed: int, n: int, patterns) -> list[str]:
    if patterns is not None:
        patterns = list(patterns)
        if len(patterns) != n:
            raise ValueError(
                f"patterns: expected one pattern per patient ({n} names), found {len(patterns)}; "
                f"pass a list of length n_patients drawn from {PATTERNS}, or None."
            )
        unknown = sorted(set(patterns) - set(PATTERNS))
        if unknown:
            raise ValueError(
                f"patterns: unknown pattern name(s) {unknown}; expected names from {PATTERNS}."
            )
        return patterns
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0xC0]))
    first = list(rng.permutation(PATTERNS))
    rest = list(rng.choice(PATTERNS, size=max(0, n - len(first))))
    return [str(p) for p in (first + rest)[:n]]


def plan_patient(
    rng: np.random.Generator, patient_id: str, pattern: str, size: str, force_truncation: bool
) -> PatientPlan:
    cov = covariates(rng, 1)
    d, g = patient_rates(rng, np.array([pattern]))
    lo, hi = PLANNED_VISITS[pattern]
    n_planned = int(rng.integers(lo, hi + 1))
    offset = int(rng.integers(2, 11))
    sday = visit_study_days(rng, 1, n_planned, np.array([offset]))[0]
    n_miss = math.ceil(0.15 * n_planned)
    if n_planned - n_miss - 1 >= 4 and rng.uniform() < 0.3:
        n_miss += 1
    missed_idx = sorted(rng.choice(np.arange(1, n_planned - 1), size=n_miss, replace=False))
    labels = [f"V{i}" for i in range(n_planned)]
    plan = PatientPlan(
        patient_id=patient_id,
        pattern=pattern,
        d=float(d[0]),
        g=float(g[0]),
        arm=str(cov["arm"][0]),
        age=int(cov["age"][0]),
        ecog=int(cov["ecog"][0]),
        ras_status=str(cov["ras_status"][0]),
        kernel=str(rng.choice(KERNELS)),
        baseline_date=BASE_DATE + np.timedelta64(int(rng.integers(0, 1500)), "D"),
        base_offset=offset,
        planned=list(zip(labels, [int(s) for s in sday])),
        missed=[labels[i] for i in missed_idx],
        anatomy=random_anatomy(rng),
        roles=ROLES[pattern],
    )
    days = np.array([s for lab, s in plan.planned if lab not in plan.missed], float)
    _plan_lesions(rng, plan, days)
    _plan_scans(rng, plan, size, force_truncation)
    return plan


def _analysed_days(plan: PatientPlan) -> np.ndarray:
    return np.array([s for lab, s in plan.planned if lab not in plan.missed], float)


def _regular_rates(rng, plan: PatientPlan, progressing: bool) -> tuple[float, float]:
    if progressing:
        (dl, dh), (gl, gh) = MIXED_PROGRESSING_RATES
        d, g = log_uniform(rng, dl, dh), log_uniform(rng, gl, gh)
    else:
        d, g = plan.d, plan.g
    d *= float(np.clip(np.exp(rng.normal(0, 0.25)), 0.7, 1.4))
    g *= float(np.clip(np.exp(rng.normal(0, 0.25)), 0.7, 1.4))
    return float(d), float(min(g, MAX_LESION_G))


def _plan_lesions(rng: np.random.Generator, plan: PatientPlan, days: np.ndarray) -> None:
    """Design the hard-case lesions against the analysed visit days, then place everything."""
    placer = _Placer(rng, plan.anatomy, days)
    counter = iter(range(1, 100))

    def lid() -> str:
        return f"L{next(counter):02d}"

    growing = plan.pattern in ("progression", "response_then_relapse", "mixed_response")
    for role in plan.roles:
        if role in ("merge", "split", "close"):
            a, b, length, direction = _design_pair(rng, role, plan, days, lid(), lid())
            placer.place_pair(a, b, length, direction)
            plan.lesions += [a, b]
        elif role == "vanish":
            plan.lesions.append(placer.place(_design_vanish(rng, plan, days, lid())))
        elif role == "reappear":
            plan.lesions.append(placer.place(_design_reappear(rng, days, lid())))
        elif role == "new":
            plan.lesions.append(placer.place(_design_new(rng, plan, days, lid(), growing)))
        elif role == "resection":
            lesion, day = _design_resection(rng, plan, days, lid())
            plan.lesions.append(placer.place(lesion))
            plan.events.append((day, "resection", "hepatic metastasectomy (1 lesion)"))
    n_regular = int(rng.integers(2, 4)) if plan.pattern == "mixed_response" else int(rng.integers(1, 4))
    for i in range(n_regular):
        progressing = plan.pattern == "mixed_response" and i % 2 == 0
        d, g = _regular_rates(rng, plan, progressing)
        d0 = float(np.clip(np.exp(rng.normal(np.log(15.0), 0.3)), 10.0, 26.0))
        lesion = random_lesion(rng, lid(), np.zeros(3), d0, d, g)
        placed = placer.place(lesion, required=False)
        if placed is not None:
            plan.lesions.append(placed)


def _design_pair(rng, role, plan, days, id_a, id_b):
    """Two near-spherical lesions and their centre distance, designed on the visit days."""
    s = days
    for attempt in range(200):
        if role == "merge":
            da0, db0 = rng.uniform(11, 16), rng.uniform(10, 14)
            g_base = plan.g if plan.pattern in ("progression", "mixed_response") else 0.0035
            d = plan.d if plan.pattern == "progression" else 0.006
            ga = min(g_base * rng.uniform(0.9, 1.3) * 1.12**attempt, 0.009)
            gb = min(g_base * rng.uniform(0.9, 1.3) * 1.12**attempt, 0.009)
            rates = ((d, ga), (d, gb))
        elif role == "split":
            da0, db0 = rng.uniform(22, 28), rng.uniform(18, 23)
            rates = tuple((rng.uniform(0.006, 0.014), rng.uniform(0.0004, 0.0009)) for _ in "ab")
        else:  # close: slow kinetics so the gap stays near its design value
            da0, db0 = rng.uniform(10, 16), rng.uniform(10, 16)
            rates = tuple((rng.uniform(0.002, 0.004), rng.uniform(0.0008, 0.0015)) for _ in "ab")
        a = random_lesion(rng, id_a, np.zeros(3), da0, *rates[0], smooth=True, role=role)
        b = random_lesion(rng, id_b, np.zeros(3), db0, *rates[1], smooth=True, role=role)
        if role == "close":
            angle = rng.uniform(-10, 10) * np.pi / 180
        else:
            angle = rng.uniform(0, 2 * np.pi)
        u = np.array([np.cos(angle), np.sin(angle), 0.0])
        ext_a = 0.5 * a.rho((a.orientation.T @ u)[:, None])[0]
        ext_b = 0.5 * b.rho((b.orientation.T @ -u)[:, None])[0]
        reach = ext_a * a.diameter(s) + ext_b * b.diameter(s)  # along the centre line
        k = np.arange(len(s))
        if role == "merge":
            length = reach[0] + 8.0
            ok = (reach[2:] >= length + 5.0).any() and a.diameter(s).max() < 60
        elif role == "split":
            length = reach[0] - 5.0
            sep = (length - reach >= 6.0) & (a.diameter(s) >= SURE_VISIBLE_MM)
            sep &= (b.diameter(s) >= SURE_VISIBLE_MM) & (k >= 1)
            ok = sep.any() and length > 0.5 * max(a.d0_mm, b.d0_mm) + 3
        else:
            length = reach.max() + 4.3
            ok = True
        if ok:
            return a, b, float(length), u
    raise RuntimeError(f"{plan.patient_id}: could not design the {role} pair")  # pragma: no cover


def _design_vanish(rng, plan, days, lesion_id) -> Lesion:
    d = max(plan.d, 0.02)
    for _ in range(100):
        d0 = rng.uniform(10.0, 13.0)
        lesion = random_lesion(rng, lesion_id, np.zeros(3), d0, d, 0.0003, role="vanish")
        size = lesion.diameter(days)
        if size[0] >= SURE_VISIBLE_MM and (size[1:] < VISIBLE_MM - 1).any():
            return lesion
        d *= 1.15
    raise RuntimeError(f"{plan.patient_id}: could not design a vanishing lesion")  # pragma: no cover


def _design_reappear(rng, days, lesion_id) -> Lesion:
    """A small lesion whose Stein nadir falls below visibility at an analysed visit."""
    n = len(days)
    for b in rng.permutation(np.arange(1, n - 1)):
        for d in rng.permutation(np.linspace(0.02, 0.045, 6)):
            for g in rng.permutation(np.linspace(0.0035, 0.008, 6)):
                f = stein_factor(days, d, g)
                d0 = 3.5 / f[b]
                size = d0 * f
                if (
                    size[0] >= SURE_VISIBLE_MM
                    and (size[b + 1 :] >= SURE_VISIBLE_MM).any()
                    and d0 <= 30
                    and size.max() <= 40
                ):
                    return random_lesion(
                        rng, lesion_id, np.zeros(3), d0, d, g, role="reappear"
                    )
    raise RuntimeError("could not design a reappearing lesion")  # pragma: no cover


def _design_new(rng, plan, days, lesion_id, growing) -> Lesion:
    n = len(days)
    first = max(1, n // 2) if plan.pattern == "response_then_relapse" else min(2, n - 1)
    k = int(rng.integers(first, n))
    onset = days[k] - rng.uniform(14, 35)
    onset = max(onset, days[k - 1] + 3)
    g = min(plan.g, MAX_LESION_G) if growing else 0.004
    return random_lesion(
        rng, lesion_id, np.zeros(3), rng.uniform(10.5, 13.0), 0.002, g,
        onset_day=float(onset), role="new",
    )


def _design_resection(rng, plan, days, lesion_id) -> tuple[Lesion, int]:
    n = len(days)
    k = int(rng.integers(1, n - 1))
    day = int((days[k] + days[k + 1]) // 2)
    d = min(plan.d, 0.006)
    lesion = random_lesion(
        rng, lesion_id, np.zeros(3), rng.uniform(15, 22), d, min(plan.g, 0.002),
        resected_day=float(day), role="resected",
    )
    return lesion, day


class _Placer:
    """Places lesions inside the liver, away from its surface, the FOV ends and each other."""

    MARGIN_LIVER = 7.0
    MARGIN_LESIONS = 8.0

    def __init__(self, rng, anatomy: Anatomy, days: np.ndarray):
        self.rng = rng
        self.anatomy = anatomy
        self.days = days
        lo, hi = anatomy.liver_bbox()
        axes = [np.arange(a, b, 4.0) for a, b in zip(lo, hi)]
        grid = np.stack(np.meshgrid(*axes, indexing="ij")).reshape(3, -1).astype(np.float32)
        surf = anatomy.liver_surface_points()
        self.zlim = (surf[2].min() + 28.0, surf[2].max() - 28.0)
        inner = grid[:, anatomy.liver_sdf(grid) < -12.0].astype(float)
        self.candidates = inner[:, (inner[2] > self.zlim[0]) & (inner[2] < self.zlim[1])]
        self.placed: list[Lesion] = []

    def _fits(self, lesion: Lesion, partner: Lesion | None = None) -> bool:
        size = lesion.diameter(self.days)
        dmax = float(size.max())
        pts = lesion.surface(dmax, 8, 16).reshape(3, -1)
        if pts[2].min() < self.zlim[0] - 16 or pts[2].max() > self.zlim[1] + 16:
            return False
        if self.anatomy.liver_sdf(pts.astype(np.float32)).max() > -self.MARGIN_LIVER:
            return False
        for other in self.placed:
            if other is partner:
                continue
            both = (size > 0) & (other.diameter(self.days) > 0)
            if not both.any():
                continue
            dist = np.linalg.norm(lesion.center - other.center)
            reach = 0.5 * (
                size * lesion.max_extent + other.diameter(self.days) * other.max_extent
            )
            if (dist - reach[both]).min() < self.MARGIN_LESIONS:
                return False
        return True

    def place(self, lesion: Lesion, required: bool = True) -> Lesion | None:
        for _shrink in range(6):
            for _ in range(400):
                c = self.candidates[:, self.rng.integers(self.candidates.shape[1])]
                lesion.center = c + self.rng.uniform(-2, 2, size=3)
                if self._fits(lesion):
                    self.placed.append(lesion)
                    return lesion
            lesion.d0_mm *= 0.85
        if required:  # pragma: no cover - the liver is far larger than the planted lesions
            raise RuntimeError(f"could not place lesion {lesion.lesion_id} inside the liver")
        return None

    def place_pair(self, a: Lesion, b: Lesion, length: float, direction: np.ndarray) -> None:
        for _ in range(2000):
            c = self.candidates[:, self.rng.integers(self.candidates.shape[1])]
            a.center = c - 0.5 * length * direction
            b.center = c + 0.5 * length * direction
            if self._fits(a, partner=b):
                self.placed.append(a)
                if self._fits(b, partner=a):
                    self.placed.append(b)
                    return
                self.placed.pop()
        raise RuntimeError(f"could not place the {a.role} pair inside the liver")  # pragma: no cover


def _plan_scans(rng, plan: PatientPlan, size: str, force_truncation: bool) -> None:
    cfg = SIZES[size]
    sx, sy, sz = cfg["spacing"]
    n_xy = cfg["n_xy"]
    surf = plan.anatomy.liver_surface_points()
    analysed = [(lab, s) for lab, s in plan.planned if lab not in plan.missed]
    forced = min(2, len(analysed) - 1) if force_truncation else -1
    for i, (label, day) in enumerate(analysed):
        motion = random_motion(rng)
        zs = motion.to_scan(surf)[2]
        zmin, zmax = float(zs.min()), float(zs.max())
        trunc = "none"
        if i == forced or (i != 0 and rng.uniform() < 0.08):
            trunc = str(rng.choice(["top", "bottom"]))
        cut = rng.uniform(8.0, 18.0)
        if cfg["n_z"] is None:
            below, above = rng.uniform(12.0, 45.0), rng.uniform(12.0, 45.0)
            if trunc == "bottom":
                below = -cut
            elif trunc == "top":
                above = -cut
            z0 = zmin - below
            nz = int(math.ceil((zmax + above - z0) / sz)) + 1
        else:
            nz = cfg["n_z"]
            slack = (nz - 1) * sz - (zmax - zmin)
            below = {"none": rng.uniform(0.25, 0.75) * slack, "bottom": -cut}.get(trunc, slack + cut)
            z0 = zmin - below
        origin = (-(n_xy - 1) * sx / 2, -(n_xy - 1) * sy / 2 + 10.0, float(np.round(z0, 2)))
        grid = Grid(size=(n_xy, n_xy, nz), spacing=(sx, sy, sz), origin=origin)
        plan.scans.append(
            ScanPlan(label, int(day), motion, grid, float(rng.uniform(10.0, 18.0)), trunc)
        )


# ---------------------------------------------------------------------------------------------
# rendering and ground truth
# ---------------------------------------------------------------------------------------------
def realise_patient(rng: np.random.Generator, plan: PatientPlan, root: Path) -> dict:
    """Render every analysed scan of a planned patient, write its files, return its tables."""
    import SimpleITK as sitk

    pid = plan.patient_id
    base_day = plan.scans[0].study_day
    manifest, scans, lesions = [], [], []
    for scan in plan.scans:
        present = [(les, float(les.diameter(scan.study_day))) for les in plan.lesions]
        present = [(les, dm) for les, dm in present if dm >= VISIBLE_MM]
        out = render_scan(rng, plan.anatomy, present, scan.motion, scan.grid, noise_hu=scan.noise_hu)
        folder = root / pid / scan.label
        folder.mkdir(parents=True, exist_ok=True)
        rel = f"{pid}/{scan.label}"
        inst_rel = f"instances/{pid}_{scan.label}.nii.gz"
        for arr, name in (
            (out.image, f"{rel}/ct.nii.gz"),
            (out.lesion, f"{rel}/lesion_mask.nii.gz"),
            (out.liver, f"{rel}/liver_mask.nii.gz"),
            (out.instances, f"ground_truth/{inst_rel}"),
        ):
            _write(sitk, arr, scan.grid, root / name)
        date = plan.baseline_date + np.timedelta64(scan.study_day - base_day, "D")
        liver_in_fov = not (out.liver[0].any() or out.liver[-1].any())
        manifest.append(
            {
                "patient_id": pid,
                "timepoint": scan.label,
                "date": str(date),
                "image": f"{rel}/ct.nii.gz",
                "lesion_mask": f"{rel}/lesion_mask.nii.gz",
                "liver_mask": f"{rel}/liver_mask.nii.gz",
                "phase": "portal_venous",
                "slice_thickness_mm": scan.grid.spacing[2],
                "kernel": plan.kernel,
            }
        )
        m = scan.motion
        scans.append(
            {
                "patient_id": pid,
                "timepoint": scan.label,
                "date": pd.Timestamp(str(date)),
                "days": scan.study_day - base_day,
                "study_day": scan.study_day,
                "instance_mask": inst_rel,
                "liver_in_fov": bool(liver_in_fov),
                "fov_truncation": scan.truncation if not liver_in_fov else "none",
                "translation_x_mm": float(m.translation[0]),
                "translation_y_mm": float(m.translation[1]),
                "translation_z_mm": float(m.translation[2]),
                "rotation_deg": float(m.angle_deg),
                "rotation_axis_x": float(m.axis[0]),
                "rotation_axis_y": float(m.axis[1]),
                "rotation_axis_z": float(m.axis[2]),
                "warp_max_mm": m.warp_max_mm,
                "noise_hu": scan.noise_hu,
                "n_components": out.n_components,
            }
        )
        lesions += _lesion_rows(plan, scan, present, out)
    return {"manifest": manifest, "scans": scans, "lesions": lesions}


def _write(sitk, arr: np.ndarray, grid: Grid, path: Path) -> None:
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(grid.spacing)
    img.SetOrigin(grid.origin)
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(img, str(path), True, 1)


def _lesion_rows(plan: PatientPlan, scan: ScanPlan, present, out) -> list[dict]:
    rows = []
    geo = {}
    for les, dm in present:
        if out.lesion_voxels.get(les.lesion_id, 0) == 0:
            continue
        m = scan.motion
        jac = m.jacobian_to_scan(les.center)
        c_scan = m.to_scan(les.center[:, None])[:, 0]
        v1, off = les.unit_moments()
        r = 0.5 * dm
        centroid = m.to_scan((les.center + r * off)[:, None])[:, 0]
        surf = les.surface(dm)
        pts = c_scan[:, None, None] + np.einsum("ij,jab->iab", jac, surf - les.center[:, None, None])
        geo[les.lesion_id] = (les, dm, surf, pts)
        rows.append(
            {
                "patient_id": plan.patient_id,
                "timepoint": scan.label,
                "days": scan.study_day - plan.scans[0].study_day,
                "study_day": scan.study_day,
                "true_lesion_id": les.lesion_id,
                "component": out.lesion_component[les.lesion_id],
                "volume_ml": float(r**3 * v1 * abs(np.linalg.det(jac)) / 1000.0),
                "axial_ld_mm": axial_ld_mm(pts, scan.grid.axis(2)),
                "diameter_mm": dm,
                "centroid_x_mm": float(centroid[0]),
                "centroid_y_mm": float(centroid[1]),
                "centroid_z_mm": float(centroid[2]),
                "n_voxels": out.lesion_voxels[les.lesion_id],
                "role": les.role,
            }
        )
    for row in rows:
        les, dm, surf, pts = geo[row["true_lesion_id"]]
        best = np.inf
        for other_id, (o, odm, osurf, opts) in geo.items():
            if other_id == les.lesion_id:
                continue
            sd, _ = o.sdf(surf.reshape(3, -1), odm)
            if (sd < 0).any():
                best = 0.0
                break
            dist, _ = cKDTree(opts.reshape(3, -1).T).query(pts.reshape(3, -1).T)
            best = min(best, float(dist.min()))
        row["nearest_gap_mm"] = best if np.isfinite(best) else np.nan
    return rows


def assemble_truth(plans: list[PatientPlan], parts: list[dict], rng_seed: int) -> dict:
    """Ground-truth tables, clinical and events tables for the realised cohort."""
    manifest = pd.DataFrame([r for p in parts for r in p["manifest"]])
    scans = pd.DataFrame([r for p in parts for r in p["scans"]])
    lesions = pd.DataFrame([r for p in parts for r in p["lesions"]])
    lesions = _appearance(lesions, scans)
    edges = _edges(lesions, scans)
    clinical, events, patients = [], [], []
    for plan in plans:
        rng = np.random.default_rng(np.random.SeedSequence([int(rng_seed), 0xE7, len(clinical)]))
        sc = scans[scans.patient_id == plan.patient_id]
        le = lesions[lesions.patient_id == plan.patient_id]
        ed = edges[edges.patient_id == plan.patient_id]
        clin, ev = _outcomes(rng, plan, sc, le)
        clinical.append(clin)
        events += ev
        patients.append(_patient_row(plan, sc, le, ed))
    clinical = pd.DataFrame(clinical)
    events = pd.DataFrame(events, columns=["patient_id", "date", "event", "note"])
    events = events.sort_values(["patient_id", "date", "event"], kind="stable", ignore_index=True)
    true_lesions = pd.DataFrame(
        [
            {
                "patient_id": plan.patient_id,
                "true_lesion_id": les.lesion_id,
                "role": les.role,
                "diameter0_mm": les.d0_mm,
                "d_per_day": les.d,
                "g_per_day": les.g,
                "onset_study_day": les.onset_day,
                "resected_study_day": les.resected_day,
                "center_x_mm": float(les.center[0]),
                "center_y_mm": float(les.center[1]),
                "center_z_mm": float(les.center[2]),
            }
            for plan in plans
            for les in plan.lesions
        ]
    )
    for col in ("onset_study_day", "resected_study_day"):
        true_lesions[col] = true_lesions[col].astype(float)
    return {
        "manifest": manifest,
        "clinical": clinical,
        "events": events,
        "scans": scans,
        "lesions": lesions,
        "edges": edges,
        "patients": pd.DataFrame(patients),
        "true_lesions": true_lesions,
    }


def _appearance(lesions: pd.DataFrame, scans: pd.DataFrame) -> pd.DataFrame:
    order = {(r.patient_id, r.timepoint): i for i, r in enumerate(scans.itertuples())}
    lesions = lesions.assign(_o=[order[(p, t)] for p, t in zip(lesions.patient_id, lesions.timepoint)])
    lesions = lesions.sort_values(["patient_id", "_o", "true_lesion_id"], kind="stable")
    first_tp = scans.groupby("patient_id").timepoint.first()
    # index of each scan within its patient, to detect gaps in visibility
    scan_idx = {(r.patient_id, r.timepoint): i for _, g in scans.groupby("patient_id") for i, r in enumerate(g.itertuples())}
    idx = np.array([scan_idx[(p, t)] for p, t in zip(lesions.patient_id, lesions.timepoint)])
    lesions["_i"] = idx
    prev = lesions.groupby(["patient_id", "true_lesion_id"])["_i"].shift()
    appearance = np.where(prev.isna(), "first", np.where(idx - prev > 1, "reappeared", "continuing"))
    lesions["appearance"] = appearance
    lesions["is_new"] = (appearance == "first") & (
        lesions.timepoint.to_numpy() != first_tp.reindex(lesions.patient_id).to_numpy()
    )
    cols = [
        "patient_id", "timepoint", "days", "study_day", "true_lesion_id", "component",
        "volume_ml", "axial_ld_mm", "diameter_mm", "centroid_x_mm", "centroid_y_mm",
        "centroid_z_mm", "n_voxels", "nearest_gap_mm", "is_new", "appearance", "role",
    ]
    return lesions[cols].reset_index(drop=True)


def _edges(lesions: pd.DataFrame, scans: pd.DataFrame) -> pd.DataFrame:
    scan_idx = {
        (r.patient_id, r.timepoint): i
        for _, g in scans.groupby("patient_id")
        for i, r in enumerate(g.itertuples())
    }
    rows = []
    for (pid, _lid), g in lesions.groupby(["patient_id", "true_lesion_id"], sort=False):
        recs = list(zip(g.timepoint, g.component))
        for (ta, ca), (tb, cb) in zip(recs[:-1], recs[1:]):
            skip = scan_idx[(pid, tb)] - scan_idx[(pid, ta)] > 1
            rows.append((pid, ta, int(ca), tb, int(cb), bool(skip)))
    edges = pd.DataFrame(
        rows,
        columns=["patient_id", "timepoint_from", "component_from", "timepoint_to", "component_to", "skip"],
    ).drop_duplicates(ignore_index=True)
    key = edges.apply(lambda r: (r.patient_id, scan_idx[(r.patient_id, r.timepoint_from)]), axis=1)
    edges["_k"] = [k[1] for k in key] if len(edges) else []
    edges = edges.sort_values(["patient_id", "_k", "component_from", "component_to"], kind="stable")
    return edges.drop(columns="_k").reset_index(drop=True)


def _groups_change(le: pd.DataFrame) -> tuple[bool, bool]:
    """(has_merge, has_split): two true lesions go from separate to shared components, or back."""
    merge = split = False
    tps = list(dict.fromkeys(le.timepoint))
    comp = {tp: dict(zip(g.true_lesion_id, g.component)) for tp, g in le.groupby("timepoint", sort=False)}
    for a, b in zip(tps[:-1], tps[1:]):
        ca, cb = comp[a], comp[b]
        common = sorted(set(ca) & set(cb))
        for i, x in enumerate(common):
            for y in common[i + 1 :]:
                same_a, same_b = ca[x] == ca[y], cb[x] == cb[y]
                merge |= (not same_a) and same_b
                split |= same_a and not same_b
    return merge, split


def _patient_row(plan: PatientPlan, sc, le, ed) -> dict:
    merge, split = _groups_change(le)
    vanished = False
    for _lid, g in le.groupby("true_lesion_id"):
        last = sc.timepoint.tolist().index(g.timepoint.iloc[-1])
        vanished |= last < len(sc) - 1
    return {
        "patient_id": plan.patient_id,
        "pattern": plan.pattern,
        "d_per_day": plan.d,
        "g_per_day": plan.g,
        "n_visits": len(sc),
        "n_planned_visits": len(plan.planned),
        "n_missed_visits": len(plan.missed),
        "n_true_lesions": int(le.true_lesion_id.nunique()),
        "has_resection": any(e[1] == "resection" for e in plan.events),
        "has_merge": merge,
        "has_split": split,
        "has_new_lesion": bool(le.is_new.any()),
        "has_vanish": bool(vanished),
        "has_reappearance": bool((le.appearance == "reappeared").any()),
        "has_truncated_fov": bool((~sc.liver_in_fov).any()),
        "min_gap_mm": float(le.nearest_gap_mm[le.nearest_gap_mm > 0].min())
        if (le.nearest_gap_mm > 0).any()
        else np.nan,
    }


def _outcomes(rng, plan: PatientPlan, sc: pd.DataFrame, le: pd.DataFrame):
    """Clinical row and events: OS by pattern, PFS from the true lesion sizes (RECIST 1.1)."""
    pid = plan.patient_id
    tstart = plan.baseline_date + np.timedelta64(plan.base_offset, "D")
    sdays = sc.study_day.to_numpy()
    base = le[le.timepoint == sc.timepoint.iloc[0]]
    targets = base[base.axial_ld_mm >= 10.0].nlargest(2, "axial_ld_mm").true_lesion_id.tolist()
    sums, new = [], []
    for tp in sc.timepoint:
        cur = le[le.timepoint == tp]
        sums.append(cur[cur.true_lesion_id.isin(targets)].axial_ld_mm.sum())
        new.append(bool(cur.is_new.any()))
    pd_day = None
    nadir = np.inf
    for i, (s, n) in enumerate(zip(sums, new)):
        grew = bool(targets) and s >= 1.2 * nadir and s - nadir >= 5.0
        if i > 0 and (grew or n):
            pd_day = int(sdays[i])
            break
        nadir = min(nadir, s)
    events = []
    for day, kind, note in plan.events:
        events.append((pid, str(tstart + np.timedelta64(int(day), "D")), kind, note))
    last = int(sdays[-1])
    if plan.pattern == "progression" and rng.uniform() < 0.5:
        day = int(rng.integers(max(sdays[1], 1), last + 1))
        events.append((pid, str(tstart + np.timedelta64(day, "D")), "extrahepatic_progression", "new lung nodules"))
        pd_day = day if pd_day is None else min(pd_day, day)
    os_true = int(os_times(rng, np.array([plan.pattern]), np.array([plan.ecog]))[0])
    os_true = max(os_true, last + int(rng.integers(20, 90)))
    censor = last + int(rng.integers(60, 900))
    os_event = int(os_true <= censor)
    os_days = min(os_true, censor)
    if pd_day is not None:
        day = last + int(rng.integers(7, 29))
        if day < os_days:
            events.append((pid, str(tstart + np.timedelta64(day, "D")), "new_treatment_line", "second-line chemotherapy"))
        pfs_days, pfs_event = pd_day, 1
    elif os_event:
        pfs_days, pfs_event = os_days, 1
    else:
        pfs_days, pfs_event = max(last, 0), 0
    if os_event:
        events.append((pid, str(tstart + np.timedelta64(os_days, "D")), "death", ""))
    clin = {
        "patient_id": pid,
        "treatment_start": str(tstart),
        "os_days": int(os_days),
        "os_event": os_event,
        "pfs_days": int(pfs_days),
        "pfs_event": int(pfs_event),
        "arm": plan.arm,
        "age": plan.age,
        "ecog": plan.ecog,
        "ras_status": plan.ras_status,
    }
    return clin, events
