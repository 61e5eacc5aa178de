"""Planning and writing of the synthetic image cohort (private; see :mod:`metevo.datasets`).

Each patient is planned first (pattern, kinetics, visits, lesions, events, motion, field of
view), with the hard cases placed deliberately against the patient's actual analysed visit days,
then every analysed visit is rendered (:func:`metevo.datasets._synthetic_anatomy.render_scan`) and the
ground truth is assembled from the plan and the rendered masks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from metevo.datasets import _synthetic_clinical as clin
from metevo.datasets._synthetic_anatomy import (
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
from metevo.datasets._synthetic_kinetics import (
    MIXED_PROGRESSING_RATES,
    PATTERNS,
    VISIBLE_MM,
    covariates,
    design_dip,
    log_uniform,
    patient_rates,
    visit_study_days,
)

SIZES = {
    "tiny": {"spacing": (3.0, 3.0, 5.0), "n_xy": 128, "n_z": None},
    "small": {"spacing": (1.5, 1.5, 3.0), "n_xy": 256, "n_z": None},
    "full": {"spacing": (0.8, 0.8, 2.5), "n_xy": 512, "n_z": 150},
    # trial-CT-like hard cases (see CLINICAL_ROLES and clinical_motion); "clinical_crop" is the
    # same patients on a field of view cropped around the liver (CI and cohort benchmarks)
    "clinical": {"spacing": (0.8, 0.8, 2.5), "n_xy": 512, "n_z": 150, "clinical": True},
    "clinical_crop": {
        "spacing": (0.8, 0.8, 2.5),
        "n_xy": (320, 288),
        "n_z": None,
        "clinical": True,
    },
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
    # the first response assessment (V1) and the last planned visit are always attended
    missed_idx = sorted(rng.choice(np.arange(2, n_planned - 1), size=n_miss, replace=False))
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
        planned=list(zip(labels, [int(s) for s in sday], strict=False)),
        missed=[labels[i] for i in missed_idx],
        anatomy=random_anatomy(rng),
        roles=ROLES[pattern] + (clin.CLINICAL_ROLES if SIZES[size].get("clinical") else ()),
    )
    days = np.array([s for lab, s in plan.planned if lab not in plan.missed], float)
    _plan_lesions(rng, plan, days, clinical=bool(SIZES[size].get("clinical")))
    _plan_scans(rng, plan, size, force_truncation)
    return plan


def _regular_rates(rng, plan: PatientPlan, progressing: bool) -> tuple[float, float]:
    if progressing:
        (dl, dh), (gl, gh) = MIXED_PROGRESSING_RATES
        d, g = log_uniform(rng, dl, dh), log_uniform(rng, gl, gh)
    else:
        d, g = plan.d, plan.g
    d *= float(np.clip(np.exp(rng.normal(0, 0.25)), 0.7, 1.4))
    g *= float(np.clip(np.exp(rng.normal(0, 0.25)), 0.7, 1.4))
    return float(d), float(min(g, MAX_LESION_G))


def _plan_lesions(
    rng: np.random.Generator, plan: PatientPlan, days: np.ndarray, clinical: bool = False
) -> None:
    """Design the hard-case lesions against the analysed visit days, then place everything.

    ``clinical``: split fragments drift apart beyond the parent's former boundary, a resection
    is a hepatectomy that removes the liver beyond a plane, and the clinical roles (a cluster
    of small lesions, a lesion flickering around the visibility limit) are planted.
    """
    placer = _Placer(rng, plan.anatomy, days)
    counter = iter(range(1, 100))

    def lid() -> str:
        return f"L{next(counter):02d}"

    growing = plan.pattern in ("progression", "response_then_relapse", "mixed_response")
    for role in plan.roles:
        if role in ("merge", "split", "close"):
            a, b, length, direction = _design_pair(rng, role, plan, days, lid(), lid())
            if clinical and role == "split":
                clin.design_split_drift(rng, a, b, length, direction, days)
            placer.place_pair(a, b, length, direction)
            plan.lesions += [a, b]
        elif role == "cluster":
            group = clin.design_cluster(rng, lid, days)
            clin.place_group(placer, group, clin.cluster_offsets(rng, group, days))
            plan.lesions += group
        elif role == "flicker":
            plan.lesions.append(placer.place(clin.design_flicker(rng, days, lid())))
        elif role == "vanish":
            plan.lesions.append(placer.place(_design_vanish(rng, plan, days, lid())))
        elif role == "reappear":
            plan.lesions.append(placer.place(_design_reappear(rng, days, lid())))
        elif role == "new":
            plan.lesions.append(placer.place(_design_new(rng, plan, days, lid(), growing)))
        elif role == "resection":
            lesion, day = _design_resection(rng, plan, days, lid())
            if clinical:
                plan.lesions.append(clin.place_resection(placer, lesion, day))
                plan.events.append((day, "resection", "partial hepatectomy (1 lesion)"))
            else:
                plan.lesions.append(placer.place(lesion))
                plan.events.append((day, "resection", "hepatic metastasectomy (1 lesion)"))
    n_regular = (
        int(rng.integers(2, 4)) if plan.pattern == "mixed_response" else int(rng.integers(1, 4))
    )
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
    # a split needs a visit where the shrinking pair has separated but is still visible; when the
    # visits are too sparse for the usual kill rates (e.g. days 49 then 273), slower ones follow
    for attempt in range(400 if role == "split" else 200):
        if role == "merge":  # growth rates are set below: the slowest that merges them
            da0, db0 = rng.uniform(11, 16), rng.uniform(10, 14)
            d = plan.d if plan.pattern == "progression" else 0.006
            rates = ((d, 0.0), (d, 0.0))
        elif role == "split":
            da0, db0 = rng.uniform(22, 28), rng.uniform(18, 23)
            kill = (0.006, 0.014) if attempt < 200 else (0.002, 0.006)
            rates = tuple((rng.uniform(*kill), rng.uniform(0.0004, 0.0009)) for _ in "ab")
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
            ok = False
            ratio = rng.uniform(0.85, 1.15)
            for g in np.linspace(0.002, 0.01, 33):
                a.g, b.g = g, g * ratio
                reach = ext_a * a.diameter(s) + ext_b * b.diameter(s)
                length = reach[0] + 8.0
                if (reach[2:] >= length + 5.0).any():
                    ok = max(a.diameter(s).max(), b.diameter(s).max()) < 60
                    break
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
    raise RuntimeError(
        f"{plan.patient_id}: could not design a vanishing lesion"
    )  # pragma: no cover


def _design_reappear(rng, days, lesion_id) -> Lesion:
    """A small lesion whose Stein nadir falls below visibility at an analysed visit."""
    found = design_dip(
        rng,
        days,
        np.linspace(0.015, 0.07, 12),
        np.linspace(0.003, 0.012, 12),
        lambda: 3.5,
        lambda size, b, d0: (
            size[0] >= SURE_VISIBLE_MM
            and (size[b + 1 :] >= SURE_VISIBLE_MM).any()
            and d0 <= 30
            and size.max() <= 45
        ),
    )
    if found is None:  # pragma: no cover
        raise RuntimeError("could not design a reappearing lesion")
    return random_lesion(rng, lesion_id, np.zeros(3), *found, role="reappear")


def _design_new(rng, plan, days, lesion_id, growing) -> Lesion:
    n = len(days)
    first = max(1, n // 2) if plan.pattern == "response_then_relapse" else min(2, n - 1)
    k = int(rng.integers(first, n))
    onset = days[k] - rng.uniform(14, 35)
    onset = max(onset, days[k - 1] + 3)
    g = min(plan.g, MAX_LESION_G) if growing else 0.004
    return random_lesion(
        rng,
        lesion_id,
        np.zeros(3),
        rng.uniform(10.5, 13.0),
        0.002,
        g,
        onset_day=float(onset),
        role="new",
    )


def _design_resection(rng, plan, days, lesion_id) -> tuple[Lesion, int]:
    n = len(days)
    k = int(rng.integers(1, n - 1))
    day = int((days[k] + days[k + 1]) // 2)
    d = min(plan.d, 0.006)
    lesion = random_lesion(
        rng,
        lesion_id,
        np.zeros(3),
        rng.uniform(15, 22),
        d,
        min(plan.g, 0.002),
        resected_day=float(day),
        role="resected",
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
        axes = [np.arange(a, b, 4.0) for a, b in zip(lo, hi, strict=False)]
        grid = np.stack(np.meshgrid(*axes, indexing="ij")).reshape(3, -1).astype(np.float32)
        surf = anatomy.liver_surface_points()
        self.zlim = (surf[2].min() + 28.0, surf[2].max() - 28.0)
        inner = grid[:, anatomy.liver_sdf(grid) < -12.0].astype(float)
        self.candidates = inner[:, (inner[2] > self.zlim[0]) & (inner[2] < self.zlim[1])]
        self.placed: list[Lesion] = []

    def _fits(self, lesion: Lesion, partner=None) -> bool:
        partners = partner if isinstance(partner, (list, tuple)) else [partner]
        size = lesion.diameter(self.days)
        dmax = float(size.max())
        pts = lesion.surface(dmax, 8, 16).reshape(3, -1)
        if pts[2].min() < self.zlim[0] - 16 or pts[2].max() > self.zlim[1] + 16:
            return False
        if self.anatomy.liver_sdf(pts.astype(np.float32)).max() > -self.MARGIN_LIVER:
            return False
        for day, normal, point in self.anatomy.liver_cuts:
            alive = lesion.diameter(self.days[self.days >= day]) > 0
            if alive.any() and ((normal @ (pts - point[:, None])).max() > -self.MARGIN_LIVER):
                return False
        if lesion.drift_mm is not None:
            moved = pts + lesion.drift_mm[:, None]
            if self.anatomy.liver_sdf(moved.astype(np.float32)).max() > -self.MARGIN_LIVER:
                return False
        for other in self.placed:
            if any(other is p for p in partners):
                continue
            both = (size > 0) & (other.diameter(self.days) > 0)
            if not both.any():
                continue
            dist = np.linalg.norm(lesion.center - other.center)
            reach = 0.5 * (size * lesion.max_extent + other.diameter(self.days) * other.max_extent)
            reach = reach + _drift(lesion) + _drift(other)
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
        raise RuntimeError(
            f"could not place the {a.role} pair inside the liver"
        )  # pragma: no cover


def _drift(lesion: Lesion) -> float:
    return 0.0 if lesion.drift_mm is None else float(np.linalg.norm(lesion.drift_mm))


def _plan_scans(rng, plan: PatientPlan, size: str, force_truncation: bool) -> None:
    cfg = SIZES[size]
    clinical = bool(cfg.get("clinical"))
    sx, sy, sz = cfg["spacing"]
    n_x, n_y = (cfg["n_xy"], cfg["n_xy"]) if np.isscalar(cfg["n_xy"]) else cfg["n_xy"]
    surf = plan.anatomy.liver_surface_points()
    analysed = [(lab, s) for lab, s in plan.planned if lab not in plan.missed]
    forced = min(2, len(analysed) - 1) if force_truncation else -1
    p_trunc = clin.CLINICAL_TRUNCATION_P if clinical else 0.08
    for i, (label, day) in enumerate(analysed):
        motion = clin.clinical_motion(rng) if clinical else random_motion(rng)
        moved = motion.to_scan(surf)
        zs = moved[2]
        zmin, zmax = float(zs.min()), float(zs.max())
        trunc = "none"
        if i == forced or (i != 0 and rng.uniform() < p_trunc):
            trunc = str(rng.choice(["top", "bottom"]))
        cut = rng.uniform(8.0, 18.0)
        if clinical and trunc != "none":  # the cut spares every lesion (the dome or tip only)
            lo, hi = clin.lesion_z_range(plan, motion, day)
            room = (lo - zmin) if trunc == "bottom" else (zmax - hi)
            cut = min(cut, room - 4.0 * sz)
            if cut < 2.0 * sz:
                trunc = "none"
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
            below = {"none": rng.uniform(0.25, 0.75) * slack, "bottom": -cut}.get(
                trunc, slack + cut
            )
            z0 = zmin - below
        if clinical and n_x * sx < 400:  # cropped field of view, centred near the liver
            mid = 0.5 * (moved[:2].min(axis=1) + moved[:2].max(axis=1)) + rng.uniform(-8, 8, 2)
            ox, oy = mid[0] - (n_x - 1) * sx / 2, mid[1] - (n_y - 1) * sy / 2
        else:
            ox, oy = -(n_x - 1) * sx / 2, -(n_y - 1) * sy / 2 + 10.0
        origin = (float(np.round(ox, 2)), float(np.round(oy, 2)), float(np.round(z0, 2)))
        grid = Grid(size=(n_x, n_y, nz), spacing=(sx, sy, sz), origin=origin)
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
        present = [
            (clin.at_day(les, scan.study_day), float(les.diameter(scan.study_day)))
            for les in plan.lesions
        ]
        present = [(les, dm) for les, dm in present if dm >= VISIBLE_MM]
        out = render_scan(
            rng,
            plan.anatomy,
            present,
            scan.motion,
            scan.grid,
            noise_hu=scan.noise_hu,
            study_day=scan.study_day,
        )
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
        pts = c_scan[:, None, None] + np.einsum(
            "ij,jab->iab", jac, surf - les.center[:, None, None]
        )
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
        for other_id, (o, odm, _osurf, opts) in geo.items():
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
