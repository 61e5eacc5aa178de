"""Tests of the synthetic cohort (metevo.datasets): contract, levels of the hard cases,
ground truth against the written images and masks, determinism and speed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from scipy import ndimage

from metevo.columns import Clinical, Events, Manifest
from metevo.datasets import datasets
from metevo.datasets.datasets import (
    SyntheticCohort,
    load_demo_cohort,
    make_synthetic_cohort,
    make_synthetic_trajectories,
)

#: the clinical table of both synthetic generators (cohort with images, trajectories only)
SYNTHETIC_CLINICAL = [
    "patient_id", "treatment_start", "os_days", "os_event", "pfs_days", "pfs_event", "arm",
    "age", "ecog", "ras_status",
]  # fmt: skip


def _mask_axial_ld(mask: np.ndarray, img: sitk.Image) -> float:
    """Longest in-plane diameter of a mask, voxel edge to edge (centre distance + one voxel)."""
    sx, sy = img.GetSpacing()[:2]
    best = 0.0
    for z in np.flatnonzero(mask.any(axis=(1, 2))):
        yx = np.argwhere(mask[z]) * [sy, sx]
        d = np.sqrt(((yx[:, None, :] - yx[None, :, :]) ** 2).sum(-1)).max()
        best = max(best, d + sx)
    return best


def _arr(path) -> tuple[np.ndarray, sitk.Image]:
    img = sitk.ReadImage(str(path))
    return sitk.GetArrayFromImage(img), img


@pytest.fixture(scope="module")
def gt(tiny_cohort) -> dict:
    return {
        n: tiny_cohort.table(n) for n in ("scans", "lesions", "edges", "patients", "true_lesions")
    }


@pytest.fixture(scope="module")
def manifest(tiny_cohort) -> pd.DataFrame:
    return pd.read_csv(tiny_cohort.manifest)


# ---------------------------------------------------------------------------------------------
# image cohort: files and tables
# ---------------------------------------------------------------------------------------------
def test_manifest_contract(tiny_cohort, manifest):
    assert list(manifest.columns) == [
        "patient_id",
        "timepoint",
        "date",
        "image",
        "lesion_mask",
        "liver_mask",
        "phase",
        "slice_thickness_mm",
        "kernel",
    ]
    assert set(Manifest.REQUIRED) <= set(manifest.columns)
    assert manifest.patient_id.nunique() == 6
    assert repr(tiny_cohort).endswith(f": 6 patients, {len(manifest)} scans)")
    assert (manifest.phase == "portal_venous").all()
    assert (manifest.slice_thickness_mm == 5.0).all()
    pd.to_datetime(manifest.date, format="%Y-%m-%d")  # ISO dates
    for col in ("image", "lesion_mask", "liver_mask"):
        assert all((tiny_cohort.root / p).is_file() for p in manifest[col])
    per_patient = manifest.groupby("patient_id").size()
    assert per_patient.between(4, 7).all()
    for _, g in manifest.groupby("patient_id"):
        idx = g.timepoint.str[1:].astype(int).to_numpy()
        assert idx[0] == 0 and (np.diff(idx) >= 1).all()
        assert (
            np.diff(pd.to_datetime(g.date).to_numpy()).astype("timedelta64[D]").astype(int) > 0
        ).all()
        # visits every ~8 weeks with +/- 7 days jitter: date gaps match the planned label gaps
        days = (pd.to_datetime(g.date) - pd.to_datetime(g.date).iloc[0]).dt.days.to_numpy()
        assert np.all(np.abs(np.diff(days) - 56 * np.diff(idx)) <= 14 + 10)


def test_missed_visits_and_motion_levels(gt):
    pats, scans = gt["patients"], gt["scans"]
    assert pats.n_missed_visits.sum() / pats.n_planned_visits.sum() >= 0.15
    assert ((pats.n_planned_visits - pats.n_missed_visits) == pats.n_visits).all()
    t = np.linalg.norm(scans[["translation_x_mm", "translation_y_mm", "translation_z_mm"]], axis=1)
    assert (t > 0).all() and t.max() <= 20.0 + 1e-9 and t.max() > 10.0
    assert (scans.rotation_deg > 0).all() and scans.rotation_deg.max() <= 5.0
    axis = scans[["rotation_axis_x", "rotation_axis_y", "rotation_axis_z"]].to_numpy()
    np.testing.assert_allclose(np.linalg.norm(axis, axis=1), 1.0)
    assert scans.warp_max_mm.between(1.0, 6.0).all()


def test_every_hard_case_is_present(gt):
    pats = gt["patients"]
    assert set(pats.pattern) == set(datasets.PATTERNS)
    for flag in (
        "has_merge",
        "has_split",
        "has_new_lesion",
        "has_vanish",
        "has_reappearance",
        "has_resection",
        "has_truncated_fov",
    ):
        assert pats[flag].any(), flag
    le = gt["lesions"]
    assert (le.appearance == "reappeared").any() and le.is_new.any()
    assert gt["edges"].skip.any()  # the reappearing lesion skips the scan where it was invisible
    assert (~gt["scans"].liver_in_fov).any()


def test_close_lesions_are_separate_components(tiny_cohort, gt):
    """Two lesions <= 5 mm apart (surface to surface) stay two components in the mask."""
    le = gt["lesions"]
    close = le[(le.nearest_gap_mm > 0) & (le.nearest_gap_mm <= 5.0) & (le.role == "close")]
    assert len(close) >= 2
    row = close.sort_values("nearest_gap_mm").iloc[0]
    scan = le[(le.patient_id == row.patient_id) & (le.timepoint == row.timepoint)]
    others = scan[scan.true_lesion_id != row.true_lesion_id]
    comps = set(others.component)
    assert row.component not in comps
    rec = gt["scans"].set_index(["patient_id", "timepoint"]).loc[(row.patient_id, row.timepoint)]
    inst, img = _arr(tiny_cohort.ground_truth / rec.instance_mask)
    spacing = np.array(img.GetSpacing())[::-1]
    dist = ndimage.distance_transform_edt(inst != row.component, sampling=spacing)
    gaps = [dist[inst == c].min() for c in comps]
    # voxel-centre distance: the true gap plus at most about one voxel on each side
    assert min(gaps) <= row.nearest_gap_mm + 2 * spacing.max()
    assert min(gaps) >= spacing.min() - 1e-6  # at least one background voxel in between


def test_merge_and_split_in_masks(tiny_cohort, gt):
    le = gt["lesions"]
    for role, share_first in (("merge", False), ("split", True)):
        pair = le[le.role == role]
        pid = pair.patient_id.iloc[0]
        pair = pair[pair.patient_id == pid]
        by_tp = pair.groupby("timepoint", sort=False).component.agg(lambda c: c.nunique())
        by_tp = by_tp[pair.groupby("timepoint", sort=False).size() == 2]
        shared = (by_tp == 1).to_numpy()
        assert shared[0] == share_first and shared[-1] != share_first
    # a shared component is one connected region of the written mask holding both centroids
    merged = (
        le[le.role == "merge"]
        .groupby(["patient_id", "timepoint"])
        .filter(lambda g: len(g) == 2 and g.component.nunique() == 1)
    )
    pid, tp = merged.iloc[0][["patient_id", "timepoint"]]
    rec = gt["scans"].set_index(["patient_id", "timepoint"]).loc[(pid, tp)]
    inst, img = _arr(tiny_cohort.ground_truth / rec.instance_mask)
    for r in merged[(merged.patient_id == pid) & (merged.timepoint == tp)].itertuples():
        idx = img.TransformPhysicalPointToIndex((r.centroid_x_mm, r.centroid_y_mm, r.centroid_z_mm))
        assert inst[idx[2], idx[1], idx[0]] == r.component


def test_resected_lesions_vanish_after_the_event(tiny_cohort, gt):
    events = pd.read_csv(tiny_cohort.events)
    clinical = pd.read_csv(tiny_cohort.clinical)
    res = events[events.event == "resection"]
    assert len(res) >= 1
    le, scans = gt["lesions"], gt["scans"]
    for ev in res.itertuples():
        start = pd.Timestamp(clinical.set_index("patient_id").loc[ev.patient_id, "treatment_start"])
        day = (pd.Timestamp(ev.date) - start).days
        lesions = le[(le.patient_id == ev.patient_id) & (le.role == "resected")]
        assert (lesions.study_day < day).all() and len(lesions) >= 2
        later = scans[(scans.patient_id == ev.patient_id) & (scans.study_day > day)]
        assert len(later) >= 1


def test_masks_images_and_instances(tiny_cohort, manifest, gt):
    scans = gt["scans"].set_index(["patient_id", "timepoint"])
    liver_hu, lesion_hu, lesion_core_hu, corners = [], [], [], []
    for r in manifest.itertuples():
        ct, img = _arr(tiny_cohort.root / r.image)
        les, les_img = _arr(tiny_cohort.root / r.lesion_mask)
        liv, liv_img = _arr(tiny_cohort.root / r.liver_mask)
        rec = scans.loc[(r.patient_id, r.timepoint)]
        inst, inst_img = _arr(tiny_cohort.ground_truth / rec.instance_mask)
        for other in (les_img, liv_img, inst_img):  # geometry of every mask = image
            assert other.GetSize() == img.GetSize()
            np.testing.assert_allclose(other.GetSpacing(), img.GetSpacing())
            np.testing.assert_allclose(other.GetOrigin(), img.GetOrigin(), atol=1e-4)
            np.testing.assert_allclose(other.GetDirection(), img.GetDirection())
        assert ct.dtype == np.int16 and les.dtype == np.uint8 and liv.dtype == np.uint8
        assert inst.dtype == np.uint32
        assert set(np.unique(les)) <= {0, 1} and set(np.unique(liv)) <= {0, 1}
        assert not (les.astype(bool) & ~liv.astype(bool)).any()  # lesions inside the liver
        np.testing.assert_array_equal(inst > 0, les > 0)
        labels, n = ndimage.label(les, structure=np.ones((3, 3, 3)))
        assert n == rec.n_components
        np.testing.assert_array_equal(np.unique(inst)[1:], np.arange(1, n + 1))
        np.testing.assert_array_equal(labels, inst)  # 26-connected components, raster order
        assert (liv[0].any() or liv[-1].any()) == (not rec.liver_in_fov)
        liver_hu.append(ct[(liv == 1) & (les == 0)])
        lesion_hu.append(ct[les == 1])
        core = ndimage.binary_erosion(les, structure=np.ones((1, 3, 3)))
        lesion_core_hu.append(ct[core])
        corners.append(ct[:, :6, :6].ravel())
    liver = np.concatenate(liver_hu)
    assert 55 <= liver.mean() <= 65  # liver ~ 60 HU
    mad_sd = 1.4826 * np.median(np.abs(liver - np.median(liver)))  # robust to boundary voxels
    assert 9 <= mad_sd <= 22  # noise sd 10-18 HU plus mild texture
    assert np.concatenate(lesion_hu).mean() < liver.mean() - 10  # hypodense metastases
    assert np.concatenate(lesion_core_hu).mean() < 45
    assert abs(np.median(np.concatenate(corners)) + 1000) < 15  # air


def test_ground_truth_matches_the_masks(tiny_cohort, manifest, gt):
    le, scans = gt["lesions"], gt["scans"].set_index(["patient_id", "timepoint"])
    ratios, dists, ld_err = [], [], []
    for (pid, tp), g in le.groupby(["patient_id", "timepoint"]):
        rec = scans.loc[(pid, tp)]
        inst, img = _arr(tiny_cohort.ground_truth / rec.instance_mask)
        # every component is a true lesion and every true lesion points at a component
        assert set(g.component) == set(range(1, rec.n_components + 1))
        voxel_ml = np.prod(img.GetSpacing()) / 1000.0
        for comp, c in g.groupby("component"):
            if len(c) != 1 or c.n_voxels.iloc[0] < 40:
                continue
            zyx = np.argwhere(inst == comp).mean(axis=0)
            centre = img.TransformContinuousIndexToPhysicalPoint(zyx[::-1].tolist())
            truth = c[["centroid_x_mm", "centroid_y_mm", "centroid_z_mm"]].to_numpy()[0]
            dists.append(np.linalg.norm(np.subtract(centre, truth)))
            ratios.append((inst == comp).sum() * voxel_ml / c.volume_ml.iloc[0])
            ld_err.append(_mask_axial_ld(inst == comp, img) - c.axial_ld_mm.iloc[0])
    assert len(ratios) >= 10
    assert np.max(dists) < 3.0  # centroids agree within a voxel
    assert 0.85 < np.median(ratios) < 1.15 and np.min(ratios) > 0.6 and np.max(ratios) < 1.5
    # axial longest diameter, edge to edge on the noisy mask: within about a voxel of the truth
    # (boundary noise biases a maximum diameter upwards)
    assert -1.0 < np.median(ld_err) < 4.5 and np.max(np.abs(ld_err)) < 9.0
    # edges only connect components that exist, forward in time
    ed = gt["edges"]
    order = {
        tp: i for i, tp in enumerate(sorted(set(manifest.timepoint), key=lambda s: int(s[1:])))
    }
    assert (ed.timepoint_from.map(order) < ed.timepoint_to.map(order)).all()
    keys = set(zip(le.patient_id, le.timepoint, le.component, strict=False))
    assert set(zip(ed.patient_id, ed.timepoint_from, ed.component_from, strict=False)) <= keys
    assert set(zip(ed.patient_id, ed.timepoint_to, ed.component_to, strict=False)) <= keys


def test_lesion_sizes_follow_stein_kinetics(gt):
    le, tl = gt["lesions"], gt["true_lesions"].set_index(["patient_id", "true_lesion_id"])
    for r in le.sample(40, random_state=0).itertuples():
        k = tl.loc[(r.patient_id, r.true_lesion_id)]
        t = r.study_day - (0 if np.isnan(k.onset_study_day) else k.onset_study_day)
        f = (
            np.exp(-k.d_per_day * t) + np.expm1(k.g_per_day * t)
            if t >= 0
            else np.exp(k.g_per_day * t)
        )
        assert r.diameter_mm == pytest.approx(k.diameter0_mm * f, rel=1e-9)
    # volume of the true shape scales with the cube of the Stein diameter
    one = le[le.true_lesion_id == le.true_lesion_id.iloc[0]]
    one = one[one.patient_id == one.patient_id.iloc[0]]
    np.testing.assert_allclose(
        one.volume_ml / one.diameter_mm**3, (one.volume_ml / one.diameter_mm**3).iloc[0], rtol=0.03
    )


def test_clinical_and_events(tiny_cohort, manifest, gt):
    clinical = pd.read_csv(tiny_cohort.clinical)
    events = pd.read_csv(tiny_cohort.events)
    assert list(clinical.columns) == SYNTHETIC_CLINICAL
    assert set(Clinical.REQUIRED) <= set(clinical.columns)
    assert set(events.columns) == {"patient_id", "date", "event", "note"}
    assert set(events.event) <= set(Events.KINDS)
    first = manifest.groupby("patient_id").date.first().map(pd.Timestamp)
    lag = (pd.to_datetime(clinical.set_index("patient_id").treatment_start) - first).dt.days
    assert lag.between(2, 10).all()
    assert (clinical.pfs_days <= clinical.os_days).all()
    assert set(clinical.os_event) <= {0, 1} and set(clinical.pfs_event) <= {0, 1}
    deaths = events[events.event == "death"].set_index("patient_id")
    assert set(deaths.index) == set(clinical.patient_id[clinical.os_event == 1])
    last_scan = manifest.groupby("patient_id").date.last().map(pd.Timestamp)
    os_end = pd.to_datetime(clinical.set_index("patient_id").treatment_start) + pd.to_timedelta(
        clinical.set_index("patient_id").os_days, unit="D"
    )
    assert (os_end > last_scan).all()  # alive at every scan


def test_opens_as_a_cohort(tiny_cohort):
    from metevo import open_cohort

    cohort = open_cohort(
        tiny_cohort.manifest, clinical=tiny_cohort.clinical, events=tiny_cohort.events
    )
    assert len(cohort.patient_ids) == 6
    for patient in cohort:
        assert patient.baseline.timepoint == "V0"


def test_deterministic_and_seed_dependent(tiny_cohort, gt, tmp_path):
    """Patient SYN001 depends only on the seed: same tables, images and bytes every time."""
    one = make_synthetic_cohort(tmp_path / "a", n_patients=1, seed=0)
    for name in ("scans", "lesions", "true_lesions", "patients", "edges"):
        sub = gt[name][gt[name].patient_id == "SYN001"].reset_index(drop=True)
        pd.testing.assert_frame_equal(one.table(name), sub, check_exact=True)
    man = pd.read_csv(one.manifest)
    for col in ("image", "lesion_mask", "liver_mask"):
        for p in man[col]:
            np.testing.assert_array_equal(_arr(one.root / p)[0], _arr(tiny_cohort.root / p)[0])
    again = make_synthetic_cohort(tmp_path / "b", n_patients=1, seed=0)
    for rel in (
        "manifest.csv",
        "clinical.csv",
        "events.csv",
        "ground_truth/lesions.parquet",
        "ground_truth/edges.parquet",
        "ground_truth/scans.parquet",
        man.image.iloc[-1],
    ):
        assert (one.root / rel).read_bytes() == (again.root / rel).read_bytes(), rel
    other = make_synthetic_cohort(tmp_path / "c", n_patients=1, seed=1)
    a, b = _arr(other.root / man.image[0])[0], _arr(one.root / man.image[0])[0]
    assert a.shape != b.shape or not np.array_equal(a, b)
    assert not other.table("true_lesions").equals(one.table("true_lesions"))


def test_ground_truth_tables_match_the_data_dictionary(gt):
    pytest.importorskip("pandera")
    from metevo.dictionary import validate_table

    for name in ("scans", "lesions", "edges", "patients", "true_lesions"):
        validate_table(gt[name], f"ground_truth_{name}")


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="size: expected one of"):
        make_synthetic_cohort(tmp_path, size="huge")
    with pytest.raises(ValueError, match="one pattern per patient"):
        make_synthetic_cohort(tmp_path, n_patients=2, patterns=["stable"])
    with pytest.raises(ValueError, match="unknown pattern"):
        make_synthetic_cohort(tmp_path, n_patients=1, patterns=["cured"])
    with pytest.raises(ValueError, match="n_patients: expected an integer >= 1"):
        make_synthetic_cohort(tmp_path, n_patients=0)
    with pytest.raises(TypeError, match="n_patients: expected an integer"):
        make_synthetic_trajectories(2.5)
    with pytest.raises(ValueError, match="max_visits: expected an integer >= 2"):
        make_synthetic_trajectories(10, max_visits=1)
    with pytest.raises(FileNotFoundError, match="ground-truth table 'graph'"):
        SyntheticCohort.at(tmp_path).table("graph")


def test_load_demo_cohort_caches(tmp_path, monkeypatch, capsys):
    first = load_demo_cohort(n_patients=1, seed=2, cache_dir=tmp_path, size="tiny")
    assert first.root.name == f"demo-{datasets.__version__}-2-1-tiny"
    assert first.manifest.is_file()
    out = capsys.readouterr()
    assert (
        f"generating the demo cohort (1 patients, seed 2, tiny grid) into {first.root}" in out.out
    )
    assert "synthetic patients" in out.err  # the progress bar

    def fail(*args, **kwargs):
        raise AssertionError("the cached cohort must be reused")

    monkeypatch.setattr(datasets, "make_synthetic_cohort", fail)
    again = load_demo_cohort(n_patients=1, seed=2, cache_dir=tmp_path, size="tiny")
    assert again == first
    monkeypatch.setenv("METEVO_DATA", str(tmp_path))
    assert load_demo_cohort(n_patients=1, seed=2, size="tiny") == first
    assert [p.name for p in tmp_path.iterdir()] == [first.root.name]  # no temporary leftovers
    assert f"demo cohort from the cache {first.root}" in capsys.readouterr().out


def test_load_demo_cohort_opens_the_one_on_disk(tmp_path, monkeypatch, capsys):
    """`make demo` writes metevo_demo/cohort; load_demo_cohort("metevo_demo") opens it."""
    monkeypatch.setattr(datasets, "make_synthetic_cohort", None)  # nothing may be generated
    demo = tmp_path / "metevo_demo"
    (demo / "cohort").mkdir(parents=True)
    (demo / "cohort" / "manifest.csv").write_text("patient_id\n")
    assert load_demo_cohort(demo).root == demo / "cohort"
    assert load_demo_cohort(demo / "cohort", progress=False).root == demo / "cohort"
    assert capsys.readouterr().out == f"metevo: demo cohort read from {demo / 'cohort'}\n"
    with pytest.raises(FileNotFoundError, match="no demo cohort at .*run `make demo`"):
        load_demo_cohort(tmp_path / "elsewhere")


def test_demo_defaults_match_metevo_demo():
    import inspect

    from metevo.runner.demo import run_demo

    demo = inspect.signature(run_demo).parameters
    loader = inspect.signature(load_demo_cohort).parameters
    for name in ("n_patients", "seed", "size"):
        assert loader[name].default == demo[name].default


@pytest.mark.slow
def test_full_size_grid():
    """The "full" grid: 512 x 512 x 150 at 0.8 x 0.8 x 2.5 mm (one scan rendered)."""
    from metevo.datasets._synthetic_anatomy import render_scan
    from metevo.datasets._synthetic_cohort import plan_patient

    plan = plan_patient(np.random.default_rng(0), "SYN001", "stable", "full", False)
    for scan in plan.scans:
        assert scan.grid.size == (512, 512, 150) and scan.grid.spacing == (0.8, 0.8, 2.5)
    scan = plan.scans[0]
    present = [(les, float(les.diameter(scan.study_day))) for les in plan.lesions]
    out = render_scan(
        np.random.default_rng(1),
        plan.anatomy,
        [p for p in present if p[1] >= 5],
        scan.motion,
        scan.grid,
        noise_hu=12.0,
    )
    assert out.image.shape == (150, 512, 512) and out.n_components >= 2
    assert not (out.lesion.astype(bool) & ~out.liver.astype(bool)).any()
    assert out.liver[0].sum() == 0 and out.liver[-1].sum() == 0


# ---------------------------------------------------------------------------------------------
# image-free trajectories
# ---------------------------------------------------------------------------------------------
def test_trajectory_tables(synthetic_trajectories):
    t = synthetic_trajectories
    assert sorted(t) == ["clinical", "ground_truth", "lesion_trajectories", "patient_trajectories"]
    assert list(t["patient_trajectories"].columns) == [
        "patient_id",
        "timepoint",
        "date",
        "days",
        "study_day",
        "n_lesions",
        "n_new_lesions",
        "n_disappeared_lesions",
        "total_volume_ml",
        "sum_ld_mm",
        "target_sum_mm",
    ]
    assert list(t["lesion_trajectories"].columns) == [
        "patient_id",
        "track_id",
        "timepoint",
        "days",
        "study_day",
        "volume_ml",
        "axial_ld_mm",
    ]
    assert list(t["clinical"].columns) == SYNTHETIC_CLINICAL
    assert t["clinical"].patient_id.nunique() == 300
    assert set(t["ground_truth"].pattern) == set(datasets.PATTERNS)
    pt = t["patient_trajectories"]
    # lesion rows add up to the patient rows
    lt = (
        t["lesion_trajectories"]
        .groupby(["patient_id", "timepoint"])[["volume_ml", "axial_ld_mm"]]
        .sum()
    )
    merged = pt.set_index(["patient_id", "timepoint"]).join(lt, how="inner")
    np.testing.assert_allclose(merged.total_volume_ml, merged.volume_ml)
    np.testing.assert_allclose(merged.sum_ld_mm, merged.axial_ld_mm)
    assert (pt.groupby("patient_id").days.first() == 0).all()


def test_trajectory_visits_dropout_and_missed(synthetic_trajectories):
    t = synthetic_trajectories
    pt, truth, clin = (
        t["patient_trajectories"],
        t["ground_truth"],
        t["clinical"].set_index("patient_id"),
    )
    assert truth.n_missed_visits.sum() / truth.n_planned_visits.sum() >= 0.15
    gaps = pt.groupby("patient_id").study_day.diff().dropna()
    assert gaps.min() >= 56 - 14 and (gaps % 56 != 0).any()  # ~8-weekly with jitter
    # informative dropout: no visit after progression, and none after death or censoring
    prog = (
        truth.dropna(subset=["progression_timepoint"]).set_index("patient_id").progression_timepoint
    )
    last = pt.groupby("patient_id").timepoint.last()
    assert (last.loc[prog.index] == prog).all()
    assert (pt.study_day.to_numpy() <= clin.loc[pt.patient_id, "os_days"].to_numpy()).all()
    assert (truth.dropout == "progression").mean() > 0.3
    prog_pfs = clin.loc[prog.index]
    assert (prog_pfs.pfs_event == 1).all()


def test_trajectories_survival_depends_on_pattern():
    from lifelines import KaplanMeierFitter

    t = make_synthetic_trajectories(2000, seed=0)
    df = t["clinical"].merge(t["ground_truth"], on="patient_id")
    median = {}
    for pattern, g in df.groupby("pattern"):
        median[pattern] = KaplanMeierFitter().fit(g.os_days, g.os_event).median_survival_time_
    assert median["deep_response"] > median["stable"] > median["progression"]
    assert median["deep_response"] > 2 * median["progression"]
    # PFS follows too
    pfs = df.groupby("pattern").pfs_days.median()
    assert pfs["deep_response"] > pfs["progression"]


def test_trajectories_deterministic_and_large():
    a = make_synthetic_trajectories(200, seed=4)
    b = make_synthetic_trajectories(200, seed=4)
    c = make_synthetic_trajectories(200, seed=5)
    for k in a:
        pd.testing.assert_frame_equal(a[k], b[k], check_exact=True)
    assert not a["clinical"].equals(c["clinical"])
    big = make_synthetic_trajectories(10_000, seed=0)  # speed: benchmarks/bench_datasets.py
    assert big["clinical"].patient_id.iloc[-1] == "SYN10000"


def _plan_all_patterns(seeds, size: str = "tiny") -> None:
    from metevo.datasets._synthetic_cohort import PATTERNS, plan_patient

    for seed in seeds:
        for j, pattern in enumerate(PATTERNS):
            rng = np.random.default_rng(np.random.SeedSequence([seed, j, 7]))
            plan = plan_patient(rng, "SYN001", pattern, size, force_truncation=False)
            roles = {les.role for les in plan.lesions}
            expected = {"resection": "resected"}
            assert {expected.get(r, r) for r in plan.roles} <= roles
            assert len(plan.scans) == len(plan.planned) - len(plan.missed)
            assert 4 <= len(plan.scans) <= 7


def test_hard_cases_are_designed_for_any_seed():
    """Planning (design and placement of the hard cases) succeeds whatever the seed."""
    _plan_all_patterns(range(3))


@pytest.mark.slow
def test_hard_cases_are_designed_for_many_seeds():
    _plan_all_patterns(range(3, 150))


def test_clinical_split_pair_is_designed_for_sparse_visits():
    """Seed 2's ninth clinical patient (deep response, visits on days -2, 49, 273, 341) has no
    visit where the usual fast-shrinking pair is separated yet still visible; the design falls
    back on slower kill rates instead of failing."""
    from metevo.datasets._synthetic_cohort import SURE_VISIBLE_MM, assign_patterns, plan_patient

    pattern = assign_patterns(2, 12, None)[8]
    rng = np.random.default_rng(np.random.SeedSequence([2, 8]).spawn(2)[0])
    plan = plan_patient(rng, "SYN009", pattern, "clinical_crop", force_truncation=False)
    days = np.array([s.study_day for s in plan.scans], float)
    days -= days[0]
    assert list(days[:2]) == [0.0, 51.0] and days[2] - days[1] > 200  # the sparse schedule
    a, b = (les for les in plan.lesions if les.role == "split")
    assert a.d < 0.006 and b.d < 0.006  # the slower kill rates
    visible = (a.diameter(days) >= SURE_VISIBLE_MM) & (b.diameter(days) >= SURE_VISIBLE_MM)
    assert visible[1:].any()


@pytest.mark.slow
def test_clinical_hard_cases_are_designed_for_many_seeds():
    _plan_all_patterns(range(0, 40), size="clinical_crop")


# ---------------------------------------------------------------------------------------------
# the clinical presets
# ---------------------------------------------------------------------------------------------
def _clinical_plans(seed: int = 11):
    from metevo.datasets._synthetic_cohort import PATTERNS, plan_patient

    return [
        plan_patient(
            np.random.default_rng(np.random.SeedSequence([seed, j])),
            f"SYN{j + 1:03d}",
            pattern,
            "clinical_crop",
            force_truncation=(j == 1),
        )
        for j, pattern in enumerate(PATTERNS)
    ]


def test_clinical_preset_motion_within_its_ranges():
    """Rotation about every axis (up to 10 deg each), translation up to 25 mm per axis and a
    breathing warp up to 8 mm; some scans roll or pitch, not only turn about z."""
    from metevo.datasets._synthetic_clinical import axis_angle

    motions = [s.motion for plan in _clinical_plans() for s in plan.scans]
    tilted = 0
    for m in motions:
        assert np.allclose(m.rotation @ m.rotation.T, np.eye(3), atol=1e-9)
        axis, angle = axis_angle(m.rotation)
        assert angle == pytest.approx(m.angle_deg) and angle <= np.sqrt(3) * 10 + 1e-9
        assert np.abs(m.translation).max() <= 25.0
        assert 0.4 * 8.0 - 1e-9 <= m.warp_max_mm <= 8.0 + 1e-9
        # the first wave moves tissue cranio-caudally (breathing)
        assert abs(m.wave_b[0, 2]) == pytest.approx(np.linalg.norm(m.wave_b[0]))
        # Euler angles of R = Rz Ry Rx stay within +/- 10 deg
        r = m.rotation
        ay = np.degrees(np.arcsin(-r[2, 0]))
        ax = np.degrees(np.arctan2(r[2, 1], r[2, 2]))
        az = np.degrees(np.arctan2(r[1, 0], r[0, 0]))
        assert max(abs(ax), abs(ay), abs(az)) <= 10.0 + 1e-6
        tilted += angle > 5 and abs(axis[2]) < 0.8
    assert tilted >= 3


def test_clinical_preset_hard_cases():
    """Clusters of small lesions 5-8 mm apart, a lesion flickering around the visibility limit,
    split fragments that drift 3-8 mm beyond the pair's former boundary, a hepatectomy that
    removes the liver around the resected lesion, and cut liver domes or tips that spare the
    lesions."""
    from metevo.datasets._synthetic_clinical import at_day
    from metevo.datasets._synthetic_kinetics import VISIBLE_MM

    plans = _clinical_plans()
    n_cut = 0
    for plan in plans:
        days = np.array([s.study_day for s in plan.scans], float)
        cluster = [les for les in plan.lesions if les.role == "cluster"]
        assert 3 <= len(cluster) <= 4
        for a in cluster:
            size = a.diameter(days)
            assert size.min() >= VISIBLE_MM and size.max() < 10.0
            gaps = [
                np.linalg.norm(a.center - b.center) - 0.5 * (a.d0_mm + b.d0_mm)
                for b in cluster
                if b is not a
            ]
            assert 3.5 <= min(gaps) <= 9.5  # surface gaps 5-8 mm up to shape and growth
        flicker = [les for les in plan.lesions if les.role == "flicker"]
        assert len(flicker) == 1
        seen = flicker[0].diameter(days) >= VISIBLE_MM
        first, last = np.flatnonzero(seen)[[0, -1]]
        assert seen[0] and not seen[first:last].all()  # gone at a visit, then back
        n_cut += sum(s.truncation != "none" for s in plan.scans)
        if plan.pattern == "deep_response":
            frag = [les for les in plan.lesions if les.drift_mm is not None]
            assert len(frag) == 1 and frag[0].role == "split"
            t0, t1 = frag[0].drift_days
            assert t0 in days and t1 in days and t0 < t1
            assert 0 < np.linalg.norm(frag[0].drift_mm) < 30
            assert np.allclose(at_day(frag[0], t1).center, frag[0].center + frag[0].drift_mm)
        if plan.pattern in ("deep_response", "stable"):
            ((day, normal, point),) = plan.anatomy.liver_cuts
            resected = next(les for les in plan.lesions if les.role == "resected")
            c = resected.center[:, None].astype(np.float32)
            assert plan.anatomy.liver_sdf(c, day - 1)[0] < 0 < plan.anatomy.liver_sdf(c, day)[0]
            for les in plan.lesions:  # the lesions that live on stay in the remaining liver
                if les is not resected and (les.diameter(days[days >= day]) > 0).any():
                    assert normal @ (les.center - point) < 0
    assert n_cut >= 2


@pytest.mark.slow
def test_clinical_crop_cohort_renders_its_hard_cases(tmp_path):
    """One rendered deep-response patient: split seen in the masks, liver volume drops after
    the hepatectomy, a cut liver never cuts a lesion, the small lesions are separate."""
    synth = make_synthetic_cohort(
        tmp_path, n_patients=1, seed=4, size="clinical_crop", patterns=["deep_response"]
    )
    pat = synth.table("patients").iloc[0]
    assert pat.has_split and pat.has_resection
    scans = synth.table("scans")
    les = synth.table("lesions")
    rday = synth.table("true_lesions").resected_study_day.dropna().iloc[0]
    manifest = pd.read_csv(synth.manifest)
    volumes = []
    for row, sc in zip(manifest.itertuples(), scans.itertuples(), strict=True):
        liver, img = _arr(synth.root / row.liver_mask)
        lesion, _ = _arr(synth.root / row.lesion_mask)
        assert img.GetSpacing() == pytest.approx((0.8, 0.8, 2.5))  # NIfTI stores float32
        assert img.GetSize()[:2] == (320, 288)
        assert not lesion[0].any() and not lesion[-1].any()
        volumes.append((sc.study_day, liver.sum() * 0.8 * 0.8 * 2.5 / 1000))
        assert sc.liver_in_fov == (not (liver[0].any() or liver[-1].any()))
    full = [v for d, v in volumes if d < rday]
    after = [v for d, v in volumes if d > rday]
    assert max(after) < 0.92 * min(full)
    cl = les[les.role == "cluster"]
    assert cl.groupby("timepoint").component.nunique().eq(cl.groupby("timepoint").size()).all()
