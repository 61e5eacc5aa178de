"""Synthetic longitudinal CT cohorts with ground truth, and image-free trajectory tables.

Three entry points:

- :func:`make_synthetic_cohort` writes a realistic liver-metastasis CT cohort (images, masks,
  manifest, clinical and events tables) together with a ground truth that states which lesion
  is which at every visit, each lesion's true size and each patient's planted pattern;
- :func:`load_demo_cohort` generates one once into a cache folder and reuses it;
- :func:`make_synthetic_trajectories` gives image-free patient x visit and lesion x visit
  tables from the same kinetics, vectorised (10,000 patients in well under a second), for
  statistical tests and benchmarks.

What the image cohort contains
------------------------------
CT-like volumes (int16 HU, LPS, NIfTI ``.nii.gz``): air -1000 HU, subcutaneous fat ~ -95 HU,
abdominal soft tissue ~ 40 HU, lung bases ~ -860 HU, stomach with an air cap, kidneys, aorta,
IVC, a vertebral body, and the liver at ~ 60 HU with mild texture; hypodense metastases with a
18-38 HU core, a brighter 78-95 HU rim, heterogeneous texture and sometimes a necrotic centre;
partial-volume edges and correlated noise of 10-18 HU (sd). Liver and lesion masks are UInt8 0/1
on the image grid; lesions always lie inside the liver mask.

Each patient carries a planted pattern (``deep_response``, ``progression``,
``response_then_relapse``, ``stable``, ``mixed_response``). Every lesion's diameter follows the
Stein regression-growth model D(t) = D0 (exp(-d t) + exp(g t) - 1), t in days from
``treatment_start`` (growth only, exp(g t), before it), with per-lesion variation of d and g;
``mixed_response`` patients have some lesions shrinking and others growing. Rate ranges and their
sources (Stein et al., Clin Cancer Res 2008;14:7464; Maitland et al., Clin Cancer Res
2020;26:6464) are documented in ``metevo.datasets._synthetic_kinetics``. A lesion whose diameter is below
5 mm is not rendered (complete response of that lesion); its later regrowth makes it reappear.

Levels the tests rely on (the generator places these deliberately, not by luck; with
``n_patients >= 5`` and ``patterns=None`` every pattern occurs, hence every hard case):

- visits every ~8 weeks (56 days) with +/- 7 days jitter; 4-7 analysed visits per patient;
  ``ceil(0.15 * planned)`` (sometimes one more) planned follow-up visits are missed, so >= 15 %
  overall; a missed visit's label is skipped (labels keep the planned index: V0, V1, V3...);
  progression-type patients have shorter follow-up (it stops at progression);
- every scan is the patient's fixed anatomy moved by a rigid transform (translation 5-20 mm,
  rotation 1-5 degrees about an axis close to the cranio-caudal one) plus a smooth divergence-free
  warp of 1-5 mm; the slab covered varies from scan to scan and the liver is sometimes truncated
  at the top or bottom (always in patient ``SYN002``'s third scan, at random elsewhere;
  ``liver_in_fov`` is False there);
- deep response: a pair of overlapping lesions that separate as they shrink (split), a lesion
  that vanishes (complete response), a resected lesion (``resection`` event between two visits;
  it is absent from every later scan); progression: two lesions that grow into one another
  (merge) and a new lesion after baseline; response then relapse: a lesion whose nadir falls
  below visibility at an analysed visit and that reappears, and a new lesion; stable and mixed
  response: two lesions 4.3-5 mm apart (surface to surface) at their closest visit; stable also
  has a resection;
- mask boundary noise: a smooth random field moves every mask boundary by about half a voxel
  (sd; up to 1.5 voxels) without specks, holes, bridges or cuts (the noisy lesion mask has
  exactly the connected components of the true one);
- survival depends on the pattern (median OS from ~360 days for progression to ~1300 days for
  deep response, ECOG hazard ratios 1 / 1.35 / 1.9); PFS is the first RECIST 1.1 progression of
  the true lesion sizes (or extrahepatic progression, or death).

Files written by :func:`make_synthetic_cohort` (paths relative to ``out_dir``)
------------------------------------------------------------------------------
``manifest.csv``
    ``patient_id`` (``SYN001``...), ``timepoint`` (``V0``...), ``date`` (ISO), ``image``,
    ``lesion_mask``, ``liver_mask`` (relative paths), ``phase`` (``portal_venous``),
    ``slice_thickness_mm``, ``kernel``.
``clinical.csv``
    ``patient_id``, ``treatment_start`` (ISO; 2-10 days after the baseline scan), ``os_days``,
    ``os_event`` (0/1), ``pfs_days``, ``pfs_event`` (0/1; both count from ``treatment_start``),
    ``arm`` (A/B), ``age`` (years), ``ecog`` (0-2), ``ras_status`` (``mutant``/``wild_type``).
``events.csv``
    ``patient_id``, ``date`` (ISO), ``event`` (``resection``, ``extrahepatic_progression``,
    ``new_treatment_line``, ``death``; ``ablation`` is never planted), ``note``.
``<patient_id>/<timepoint>/{ct,lesion_mask,liver_mask}.nii.gz``
    image and masks of one scan.
``ground_truth/``
    Parquet tables below, and ``instances/<patient_id>_<timepoint>.nii.gz``.

Ground truth (``ground_truth/*.parquet``)
-----------------------------------------
Coordinates are physical, mm, LPS, in the scan's own frame. The rigid part of the motion maps
the patient's canonical anatomy frame to the scan frame as ``x_scan = R x + t`` (``R`` the
rotation by ``rotation_deg`` about ``rotation_axis``, through the canonical origin), so the motion
from scan i to scan j is ``x_j = R_j R_i^T (x_i - t_i) + t_j``, up to the warp.

``scans.parquet`` - one row per analysed scan:
    ``patient_id``; ``timepoint``; ``date`` (datetime); ``days`` (since the patient's first
    scan); ``study_day`` (since ``treatment_start``); ``instance_mask`` (path, relative to
    ``ground_truth/``, of a UInt32 NIfTI with the 26-connected components of the written lesion
    mask, labelled 1..n in raster order); ``liver_in_fov`` (bool: the liver mask touches neither
    the first nor the last slice); ``fov_truncation`` (``none``/``top``/``bottom``: the side where
    the liver is cut); ``translation_x_mm``/``translation_y_mm``/``translation_z_mm`` (``t``);
    ``rotation_deg`` (angle of ``R``); ``rotation_axis_x``/``_y``/``_z`` (unit axis of ``R``);
    ``warp_max_mm`` (upper bound of the non-rigid displacement); ``noise_hu`` (noise sd);
    ``n_components`` (number of labels in the instance mask).
``lesions.parquet`` - one row per true lesion x scan where it is visible (covers >= 1 voxel):
    ``patient_id``; ``timepoint``; ``days``; ``study_day``; ``true_lesion_id`` (``L01``...,
    stable across visits); ``component`` (its label in the instance mask; true lesions that touch
    share one); ``volume_ml`` (the true continuous shape's own volume, before boundary noise and
    regardless of overlap with another lesion); ``axial_ld_mm`` (longest in-plane diameter of the
    true shape over the scan's own axial slice planes, RECIST-style); ``diameter_mm`` (the Stein
    kinetics diameter D(t) that scales the shape); ``centroid_x_mm``/``_y_mm``/``_z_mm`` (centroid
    of the true shape); ``n_voxels`` (voxels of the true shape before noise); ``nearest_gap_mm``
    (surface-to-surface distance to the nearest other visible true lesion, 0 when they overlap,
    NaN when alone); ``is_new`` (first appearance after the baseline scan); ``appearance``
    (``first``, ``reappeared`` after >= 1 analysed scan without it, ``continuing``); ``role``
    (the hard case the lesion was planted for: ``regular``, ``merge``, ``split``, ``close``,
    ``vanish``, ``reappear``, ``new``, ``resected``).
``edges.parquet`` - the true lesion graph on components:
    ``patient_id``, ``timepoint_from``, ``component_from``, ``timepoint_to``, ``component_to``,
    ``skip``: an edge wherever two components at two scans share a true lesion that is visible
    in no analysed scan in between; ``skip`` is True when analysed scans lie between them (the
    lesion was invisible there). Missed visits have no scan and never make a skip.
``patients.parquet`` - one row per patient:
    ``patient_id``; ``pattern``; ``d_per_day``/``g_per_day`` (the patient's Stein rates, 1/day);
    ``n_visits`` (analysed scans); ``n_planned_visits``; ``n_missed_visits``; ``n_true_lesions``;
    ``has_resection``; ``has_merge`` / ``has_split`` (two true lesions go from separate to shared
    components between consecutive scans, or back); ``has_new_lesion``; ``has_vanish`` (a lesion
    is absent from the last scan after being seen); ``has_reappearance``; ``has_truncated_fov``;
    ``min_gap_mm`` (smallest positive ``nearest_gap_mm``).
``true_lesions.parquet`` - one row per true lesion:
    ``patient_id``, ``true_lesion_id``, ``role``, ``diameter0_mm`` (D0: at treatment start, or at
    onset for a new lesion), ``d_per_day``, ``g_per_day``, ``onset_study_day`` (new lesions),
    ``resected_study_day``, ``center_x_mm``/``_y_mm``/``_z_mm`` (canonical frame).

Examples
--------
>>> import tempfile, metevo
>>> cohort = metevo.datasets.make_synthetic_cohort(tempfile.mkdtemp(), n_patients=2)  # doctest: +SKIP
>>> import pandas as pd
>>> pd.read_parquet(cohort.ground_truth / "patients.parquet").pattern.tolist()  # doctest: +SKIP
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from metevo._version import __version__

__all__ = [
    "PATTERNS",
    "SyntheticCohort",
    "load_demo_cohort",
    "make_synthetic_cohort",
    "make_synthetic_trajectories",
]

PATTERNS = ("deep_response", "progression", "response_then_relapse", "stable", "mixed_response")
SIZES = ("tiny", "small", "full")
_COMPLETE = ".metevo-complete"


@dataclass(frozen=True)
class SyntheticCohort:
    """Paths of a synthetic cohort written by :func:`make_synthetic_cohort`.

    Attributes
    ----------
    root : Path
        The cohort folder.
    manifest, clinical, events : Path
        ``manifest.csv``, ``clinical.csv`` and ``events.csv`` in ``root``.
    ground_truth : Path
        The ``ground_truth/`` folder (``scans``, ``lesions``, ``edges``, ``patients``,
        ``true_lesions`` Parquet tables and ``instances/``).
    """

    root: Path
    manifest: Path
    clinical: Path
    events: Path
    ground_truth: Path

    @classmethod
    def at(cls, root: str | Path) -> SyntheticCohort:
        root = Path(root)
        return cls(
            root=root,
            manifest=root / "manifest.csv",
            clinical=root / "clinical.csv",
            events=root / "events.csv",
            ground_truth=root / "ground_truth",
        )

    def __repr__(self) -> str:
        if self.manifest.is_file():
            m = pd.read_csv(self.manifest, usecols=["patient_id"])
            held = f"{m.patient_id.nunique()} patients, {len(m)} scans"
        else:
            held = "not written yet"
        return f"SyntheticCohort({str(self.root)!r}: {held})"

    def table(self, name: str) -> pd.DataFrame:
        """Read a ground-truth table (``"scans"``, ``"lesions"``, ``"edges"``, ``"patients"``,
        ``"true_lesions"``)."""
        path = self.ground_truth / f"{name}.parquet"
        if not path.exists():
            raise FileNotFoundError(
                f"ground-truth table {name!r}: expected {path}, found nothing; names are "
                "scans, lesions, edges, patients, true_lesions."
            )
        return pd.read_parquet(path)


def make_synthetic_cohort(
    out_dir: str | Path,
    *,
    n_patients: int = 8,
    seed: int = 0,
    size: str = "tiny",
    patterns: list[str] | tuple[str, ...] | None = None,
    progress: bool = False,
) -> SyntheticCohort:
    """Write a synthetic longitudinal CT cohort of liver metastases with its ground truth.

    Parameters
    ----------
    out_dir : str or Path
        Folder to write into (created; files of an earlier cohort there are overwritten).
    n_patients : int, default 8
        Number of patients (>= 1). With >= 5 and ``patterns=None`` every pattern, hence every
        hard case of the module docstring, is present.
    seed : int, default 0
        Seed: the same seed gives identical tables and images; patient ``SYN00k`` depends only
        on ``seed`` and ``k`` (and on ``patterns``).
    size : {"tiny", "small", "full"}, default "tiny"
        Grid: ``"tiny"`` 3 x 3 x 5 mm, 128 x 128 in-plane (CI tests; ~1-2 s a patient);
        ``"small"`` 1.5 x 1.5 x 3 mm, 256 x 256 (notebooks, demo); ``"full"`` 0.8 x 0.8 x 2.5 mm,
        512 x 512 x 150 (benchmarks; a few patients).
    patterns : sequence of str, optional
        One pattern per patient (names in :data:`PATTERNS`); default: the first five patients
        get the five patterns in a seeded random order, later ones random patterns.
    progress : bool, default False
        Show a progress bar over the patients (tqdm).

    Returns
    -------
    SyntheticCohort
        Paths of the manifest, clinical and events tables and the ground-truth folder.
    """
    from metevo.datasets import _synthetic_cohort as sc
    from metevo.datasets._synthetic_truth import assemble_truth

    n_patients = _check_count(n_patients, "n_patients")
    if size not in SIZES:
        raise ValueError(f"size: expected one of {SIZES}, found {size!r}.")
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    names = sc.assign_patterns(seed, n_patients, patterns)
    ids = _patient_ids(n_patients)
    plans, parts = [], []
    todo = list(enumerate(zip(ids, names, strict=False)))
    if progress:
        from tqdm.auto import tqdm

        todo = tqdm(todo, desc="synthetic patients", unit="patient")
    for i, (pid, pattern) in todo:
        ss = np.random.SeedSequence([int(seed), i])
        plan_rng, render_rng = (np.random.default_rng(s) for s in ss.spawn(2))
        plan = sc.plan_patient(plan_rng, pid, pattern, size, force_truncation=(i == 1))
        plans.append(plan)
        parts.append(sc.realise_patient(render_rng, plan, root))
    tables = assemble_truth(plans, parts, seed)
    gt = root / "ground_truth"
    gt.mkdir(exist_ok=True)
    tables["manifest"].to_csv(root / "manifest.csv", index=False)
    tables["clinical"].to_csv(root / "clinical.csv", index=False)
    tables["events"].to_csv(root / "events.csv", index=False)
    for name in ("scans", "lesions", "edges", "patients", "true_lesions"):
        tables[name].to_parquet(gt / f"{name}.parquet", index=False)
    return SyntheticCohort.at(root)


def load_demo_cohort(
    path: str | Path | None = None,
    *,
    n_patients: int = 8,
    seed: int = 0,
    cache_dir: str | Path | None = None,
    size: str = "tiny",
    progress: bool = True,
) -> SyntheticCohort:
    """The demo cohort: the one on disk at ``path``, else generated once into a cache folder.

    The defaults (8 patients, seed 0, tiny grid) are those of ``metevo demo`` / ``make demo``,
    so both give the same cohort. ``path`` opens a cohort already on disk: the folder ``make
    demo`` / ``metevo demo --out PATH`` wrote (its ``cohort/`` subfolder is used) or a cohort
    folder holding ``manifest.csv``.

    Without ``path`` the cohort is cached in ``<base>/demo-<version>-<seed>-<n_patients>``
    (``-<size>`` appended unless ``size="small"``), where ``<base>`` is ``cache_dir``, else
    ``$METEVO_DATA``, else ``~/.cache/metevo``. Generation writes to a temporary sibling folder
    that is renamed when complete, so an interrupted run never leaves a half-written cohort.

    Parameters
    ----------
    path : str or Path, optional
        A demo cohort on disk (see above); nothing is generated.
    n_patients, seed, size
        As in :func:`make_synthetic_cohort` (used without ``path``).
    cache_dir : str or Path, optional
        Base folder of the cache.
    progress : bool, default True
        Say which folder is used and show a progress bar while generating.

    Returns
    -------
    SyntheticCohort

    Examples
    --------
    >>> demo = load_demo_cohort("metevo_demo")  # the cohort `make demo` wrote  # doctest: +SKIP
    """
    say = print if progress else (lambda *_args: None)
    if path is not None:
        root = Path(path)
        for folder in (root / "cohort", root):
            if (folder / "manifest.csv").is_file():
                say(f"metevo: demo cohort read from {folder}")
                return SyntheticCohort.at(folder)
        raise FileNotFoundError(
            f"no demo cohort at {root}: expected {root / 'cohort' / 'manifest.csv'} (a `metevo "
            f"demo --out {root}` folder) or {root / 'manifest.csv'}; run `make demo` or "
            "`metevo demo --out PATH` first, or call load_demo_cohort() without a path."
        )
    n_patients = _check_count(n_patients, "n_patients")
    base = Path(cache_dir or os.environ.get("METEVO_DATA") or Path.home() / ".cache" / "metevo")
    name = f"demo-{__version__}-{seed}-{n_patients}" + ("" if size == "small" else f"-{size}")
    target = base / name
    if (target / _COMPLETE).exists():
        say(f"metevo: demo cohort from the cache {target}")
        return SyntheticCohort.at(target)
    say(
        f"metevo: generating the demo cohort ({n_patients} patients, seed {seed}, {size} grid) "
        f"into {target}; later calls reuse it (set cache_dir or $METEVO_DATA to move it)"
    )
    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=base))
    try:
        make_synthetic_cohort(tmp, n_patients=n_patients, seed=seed, size=size, progress=progress)
        (tmp / _COMPLETE).write_text(f"metevo {__version__}\n")
        if target.exists():  # a stale, incomplete folder
            shutil.rmtree(target)
        try:
            tmp.rename(target)
        except OSError:  # another process finished first
            if not (target / _COMPLETE).exists():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return SyntheticCohort.at(target)


def make_synthetic_trajectories(
    n_patients: int = 500,
    *,
    seed: int = 0,
    max_visits: int = 8,
    visit_interval_days: int = 56,
    jitter_days: int = 7,
    missed_visit_prob: float = 0.25,
    survival: str = "course",
    measurement_cv: float = 0.0,
) -> dict[str, pd.DataFrame]:
    """Image-free synthetic trajectories from the kinetics model of the image cohort.

    Vectorised over patients, lesions and visits (10,000 patients take well under a second).
    Patterns are drawn per patient with arm-dependent probabilities (arm B responds more);
    each patient has 1-6 baseline lesions (>= 2 for mixed response) and up to two new lesions
    whose probability and onset depend on the pattern. Visits are planned every 56 days (default) with
    +/- 7 days jitter, each follow-up visit is missed with probability 0.25, and follow-up stops
    (informative dropout) at the first RECIST 1.1 progression (target sum +20 % and +5 mm over the
    nadir, two largest measurable baseline lesions as targets, or a new lesion), at death, or at
    administrative censoring (700-1600 days).

    Parameters
    ----------
    n_patients : int, default 500
    seed : int, default 0
    max_visits : int, default 8
        Planned visits including the baseline (>= 2).
    visit_interval_days, jitter_days, missed_visit_prob : default 56, 7, 0.25
        The imaging schedule: visit k at ``k * visit_interval_days`` +/- ``jitter_days``, each
        follow-up visit missed with this probability. With the same ``seed`` and ``max_visits``
        two schedules image the same patients (same kinetics, new lesions and survival).
    survival : {"course", "independent"}, default "course"
        ``"course"``: median overall survival by planted pattern (~360 days for progression to
        ~1300 for deep response); ``"independent"``: one median (700 days) for everyone, so
        survival ignores the course of the disease (ECOG still acts).
    measurement_cv : float, default 0
        Measurement error: every diameter read on a scan is multiplied by one log-normal factor
        per scan (sd on the log scale), so the target sum has this coefficient of variation.

    Returns
    -------
    dict of DataFrame
        ``"patient_trajectories"`` (patient x analysed visit): ``patient_id``, ``timepoint``,
        ``date`` (datetime), ``days`` (since baseline), ``study_day`` (since treatment start),
        ``n_lesions`` (visible), ``n_new_lesions`` (first seen at this visit, after baseline),
        ``n_disappeared_lesions`` (seen earlier, not visible now), ``total_volume_ml``,
        ``sum_ld_mm`` (all visible lesions), ``target_sum_mm`` (RECIST targets; NaN without a
        measurable baseline lesion).
        ``"lesion_trajectories"`` (lesion track x analysed visit, from its first appearance on;
        0 when invisible): ``patient_id``, ``track_id``, ``timepoint``, ``days``, ``study_day``,
        ``volume_ml``, ``axial_ld_mm``.
        ``"clinical"``: the columns of ``clinical.csv``.
        ``"ground_truth"`` (per patient): ``patient_id``, ``pattern``, ``d_per_day``,
        ``g_per_day``, ``n_baseline_lesions``, ``n_new_lesions``, ``n_planned_visits``,
        ``n_missed_visits`` (missed before the end of follow-up), ``progression_timepoint``
        (None without progression), ``dropout`` (``progression``, ``death``, ``censored``,
        ``completed``), ``os_true_days`` (uncensored survival time), ``progression_true_day``
        (study day of true RECIST progression of the error-free sizes in continuous time:
        target sum >= 120 % and >= +5 mm over its running minimum, or a new lesion's onset; NaN
        when not before the last planned visit), ``progression_true_cause`` (``size``,
        ``new_lesion``), ``progression_detected_day`` (study day of the first attended visit,
        had imaging continued regardless of death or censoring, at which RECIST PD is met on
        the measured sizes; NaN for none), ``visit_interval_days``.

    Examples
    --------
    >>> from metevo.datasets import make_synthetic_trajectories
    >>> tables = make_synthetic_trajectories(100, seed=1)
    >>> sorted(tables)
    ['clinical', 'ground_truth', 'lesion_trajectories', 'patient_trajectories']
    """
    from metevo.datasets._synthetic_trajectories import simulate_trajectories

    n_patients = _check_count(n_patients, "n_patients")
    max_visits = _check_count(max_visits, "max_visits", minimum=2)
    visit_interval_days = _check_count(visit_interval_days, "visit_interval_days")
    jitter_days = _check_count(jitter_days, "jitter_days", minimum=0)
    return simulate_trajectories(
        n_patients,
        seed,
        max_visits,
        visit_interval_days=visit_interval_days,
        jitter_days=jitter_days,
        missed_visit_prob=missed_visit_prob,
        survival=survival,
        measurement_cv=measurement_cv,
    )


def _check_count(value, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected an integer, found {type(value).__name__} {value!r}.")
    if value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, found {value}.")
    return int(value)


def _patient_ids(n: int) -> list[str]:
    from metevo.datasets._synthetic_kinetics import patient_ids

    return patient_ids(n)
