"""DICOM export (metevo.export) and the DICOM input path, on a one-patient synthetic cohort
written as DICOM series + SEG (metevo.datasets.write_dicom_cohort)."""

from __future__ import annotations

import shutil
import subprocess
import warnings

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from typer.testing import CliRunner

from metevo.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def dicom_runs(tmp_path_factory):
    from metevo.datasets import make_synthetic_cohort, write_dicom_cohort

    root = tmp_path_factory.mktemp("dicom_cohort")
    syn = make_synthetic_cohort(root / "nifti", n_patients=1, seed=11, size="tiny")
    manifest = write_dicom_cohort(syn.manifest, root / "dicom")
    outs = {}
    for name, m in (("nifti", syn.manifest), ("dicom", manifest)):
        res = runner.invoke(
            app, ["analyze", str(m), "--out", str(root / f"out_{name}"), "--workers", "1", "--no-progress"]
        )
        assert res.exit_code == 0, res.output
        outs[name] = root / f"out_{name}"
    res = runner.invoke(app, ["export-dicom", str(outs["dicom"]), "--out", str(root / "export")])
    assert res.exit_code == 0, res.output
    return {"root": root, "manifest": manifest, **outs, "export": root / "export"}


@pytest.mark.parametrize(
    "table",
    ["scans", "lesions", "lesion_edges", "registrations", "recist", "recist_lesions", "patients", "radiomics",
     "trajectories"],
)
def test_dicom_series_and_seg_give_the_nifti_tables(dicom_runs, table):
    a = pd.read_parquet(dicom_runs["nifti"] / f"{table}.parquet")
    b = pd.read_parquet(dicom_runs["dicom"] / f"{table}.parquet")
    assert len(a) > 0
    # the series' geometry comes from decimal strings, the NIfTI's from float32: both are rounded
    # to float32 on read (cohort.io.canonical_geometry), so the runs are identical, registration
    # iterations included
    if table == "registrations":
        assert (a["iterations"] > 0).all()
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-9, atol=1e-6)


# Known codes (DICOM PS3.16 CID 6145 / CID 6144, NCIt, SCT), written out here independently of
# metevo.export: the SR must carry these standard codes, not local ones.
_ROLE_CODES = {("DCM", "112074"): "target", ("DCM", "112075"): "non-target"}
_RESPONSE_CODES = {
    "target_response": {"112041": "CR", "112042": "PR", "112043": "PD", "112044": "SD", "C62222": "NE"},
    "nontarget_response": {"112045": "CR", "112046": "NON-CR/NON-PD", "112047": "PD", "C62222": "NE"},
    "new_lesions": {"373066001": "Y", "373067005": "N", "42425007": "EQUIVOCAL", "C62222": "NE"},
    "overall_response": {"C4870": "CR", "C18058": "PR", "C18213": "SD", "C35571": "PD", "C62222": "NE"},
}
_RESPONSE_NAMES = {  # DCM 112048 "Current Response"; local names (99METEVO) for the parts
    "112048": "overall_response", "target_resp": "target_response", "nontarget_resp": "nontarget_response",
}


def _role(evaluations) -> str | None:
    for e in evaluations:
        name, value = e.name, e.value
        if (name.scheme_designator, name.value) == ("DCM", "112016"):
            return _ROLE_CODES[(value.scheme_designator, value.value)]
        if name.value == "new_lesion" and (value.scheme_designator, value.value) == ("SCT", "373066001"):
            return "new"
    return None


def _sr_groups(path):
    import highdicom as hd

    sr = hd.sr.srread(path)
    groups = sr.content.get_volumetric_roi_measurement_groups()
    rows = []
    for g in groups:
        m = {x.name.meaning: x.value for x in g.get_measurements()}
        rows.append(
            {
                "track": g.tracking_identifier,
                "uid": g.tracking_uid,
                "volume_ml": float(m["Volume"]),
                "axial_ld_mm": float(m["Long axis"]),
                "axial_sa_mm": float(m["Short axis"]),
                "mean_hu": float(m["Attenuation Coefficient"]),
                "role": _role(g.get_qualitative_evaluations()),
            }
        )
    return sr, pd.DataFrame(rows)


def test_sr_round_trips_the_tables_and_tracking_uids(dicom_runs):
    import highdicom as hd

    lesions = pd.read_parquet(dicom_runs["dicom"] / "lesions.parquet")
    recist = pd.read_parquet(dicom_runs["dicom"] / "recist.parquet")
    roles = pd.read_parquet(dicom_runs["dicom"] / "recist_lesions.parquet")
    uid_of_track: dict[str, set] = {}
    for tp, rows in lesions.groupby("timepoint"):
        pid = rows.patient_id.iloc[0]
        sr, got = _sr_groups(dicom_runs["export"] / pid / tp / "sr.dcm")
        assert sr.Modality == "SR"
        rows = rows.sort_values("lesion_id")
        assert got.track.tolist() == [f"track {t}" for t in rows.track_id]
        for col in ("volume_ml", "axial_ld_mm", "axial_sa_mm", "mean_hu"):
            np.testing.assert_allclose(got[col], rows[col], rtol=1e-9, err_msg=f"{tp} {col}")
        for track, uid in zip(got.track, got.uid, strict=True):
            uid_of_track.setdefault(track, set()).add(uid)
        # observer: the metevo device with its version
        obs = [i for i in sr.ContentSequence if i.ConceptNameCodeSequence[0].CodeValue == "121012"]
        assert obs, "device observer UID missing"
        text = str(sr)
        assert "metevo" in text
        # visit group: target sum and overall response
        visit = recist[recist.timepoint == tp].iloc[0]
        image_groups = sr.content.get_image_measurement_groups()
        assert len(image_groups) == 1
        meas = {m.name.value: m.value for m in image_groups[0].get_measurements()}
        evals = {
            _RESPONSE_NAMES.get(e.name.value, e.name.value): e.value
            for e in image_groups[0].get_qualitative_evaluations()
        }
        assert {e.value.scheme_designator for e in image_groups[0].get_qualitative_evaluations()} <= {
            "DCM", "NCIt", "SCT"
        }
        if pd.notna(visit.target_sum_mm):
            assert float(meas["target_sum_mm"]) == pytest.approx(visit.target_sum_mm)
        for col in ("target_response", "nontarget_response", "new_lesions", "overall_response"):
            if pd.notna(visit[col]):
                assert _RESPONSE_CODES[col][evals[col].value] == visit[col], (tp, col)
            else:
                assert col not in evals
    # the same track keeps one UID across visits; different tracks have different UIDs
    assert all(len(u) == 1 for u in uid_of_track.values())
    assert len({next(iter(u)) for u in uid_of_track.values()}) == len(uid_of_track)
    assert max(len(lesions[lesions.track_id == int(t.split()[1])]) for t in uid_of_track) > 1
    # baseline targets carry role "target" in every visit's SR where their track is present
    base = roles[roles.lesion_id.str.startswith("L")].drop_duplicates("lesion_id")
    b_tp = roles.timepoint.iloc[0]
    _, got0 = _sr_groups(dicom_runs["export"] / lesions.patient_id.iloc[0] / b_tp / "sr.dcm")
    b_rows = lesions[lesions.timepoint == b_tp].sort_values("lesion_id").reset_index(drop=True)
    expected = dict(zip(base.lesion_id.str[1:].astype(int), base.role, strict=True))
    for i, lid in enumerate(b_rows.lesion_id):
        assert got0.role[i] == expected.get(int(lid)), (lid, got0.role[i])
    assert hd  # highdicom imported for srread


def test_seg_overlays_the_source_series(dicom_runs):
    import highdicom as hd
    import pydicom

    from metevo.cohort.io import read_image

    lesions = pd.read_parquet(dicom_runs["dicom"] / "lesions.parquet")
    manifest = pd.read_csv(dicom_runs["manifest"])
    for rec in manifest.itertuples():
        seg_path = dicom_runs["export"] / rec.patient_id / rec.timepoint / "seg.dcm"
        seg = hd.seg.segread(seg_path)
        ct_files = sorted(p for p in __import__("pathlib").Path(rec.image).iterdir())
        ct0 = pydicom.dcmread(ct_files[0])
        assert seg.FrameOfReferenceUID == ct0.FrameOfReferenceUID
        assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == ct0.SeriesInstanceUID
        rows = lesions[lesions.timepoint == rec.timepoint].sort_values("lesion_id")
        labels = [d.SegmentLabel for d in seg.SegmentSequence]
        assert labels == [f"lesion {a} track {b}" for a, b in zip(rows.lesion_id, rows.track_id, strict=True)] + ["liver"]
        assert {d.TrackingID for d in seg.SegmentSequence[:-1]} == {f"track {t}" for t in rows.track_id}
        # read back through metevo's reader on the CT grid: each segment has the lesion's voxels
        ct = read_image(rec.image)
        back = sitk.GetArrayFromImage(read_image(seg_path, reference=ct)) if len(rows) == 0 else None
        volume = seg.get_volume(combine_segments=False)
        counts = np.asarray(volume.array).reshape(-1, volume.array.shape[-1]).sum(0)
        np.testing.assert_array_equal(counts[: len(rows)], rows.n_voxels.to_numpy())
        assert back is None or back.sum() == 0


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dciodvfy (Debian dicom3tools) not installed")
def test_dciodvfy_finds_no_error(dicom_runs):
    tp = pd.read_csv(dicom_runs["manifest"]).iloc[1]
    for name in ("seg.dcm", "sr.dcm"):
        path = dicom_runs["export"] / tp.patient_id / tp.timepoint / name
        out = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, check=False)
        errors = [line for line in (out.stdout + out.stderr).splitlines() if line.startswith("Error")]
        assert errors == [], f"{name}: {errors}"


def test_export_needs_dicom_series(tmp_path, dicom_runs):
    from metevo import open_cohort
    from metevo.exceptions import CohortError
    from metevo.export import export_dicom

    syn_manifest = dicom_runs["root"] / "nifti" / "manifest.csv"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cohort = open_cohort(syn_manifest)
    with pytest.raises(CohortError, match="is not a DICOM series folder"):
        export_dicom(cohort, dicom_runs["nifti"], tmp_path / "x")


def real_ct_manifest(shared_data, folder, visits) -> None:
    """``folder/manifest.csv``: ct_example at each (timepoint, date, lesion radius mm) visit, a
    ball lesion painted in the liver (TotalSegmentator label 5)."""
    from tests.test_cli import _paint_lesion

    ct_dir = shared_data / "ct_example"
    liver = sitk.Cast(sitk.ReadImage(str(ct_dir / "example_seg.nii.gz")) == 5, sitk.sitkUInt8)
    rows = []
    for tp, date, radius in visits:
        lesion, _ = _paint_lesion(liver, radius_mm=radius)
        sitk.WriteImage(lesion, str(folder / f"lesion_{tp}.nii.gz"))
        rows.append({"patient_id": "RC01", "timepoint": tp, "date": date,
                     "image": str(ct_dir / "example_ct_sm.nii.gz"),
                     "lesion_mask": str(folder / f"lesion_{tp}.nii.gz"),
                     "liver_mask": str(ct_dir / "example_seg.nii.gz")})
    pd.DataFrame(rows).to_csv(folder / "manifest.csv", index=False)


def test_real_ct_as_dicom_series_and_seg(shared_data, tmp_path):
    """ct_example (real CT, TotalSegmentator liver = label 5) at two visits with a painted lesion:
    NIfTI and DICOM series + SEG give the same tables; export-dicom's SR holds them."""
    import highdicom as hd

    from metevo.datasets import write_dicom_cohort

    real_ct_manifest(shared_data, tmp_path, [("V0", "2022-01-10", 15.0), ("V1", "2022-03-10", 10.0)])
    dicom_manifest = write_dicom_cohort(tmp_path / "manifest.csv", tmp_path / "dicom", liver_label=5)
    for name, m, extra in (("nifti", tmp_path / "manifest.csv", ["--liver-label", "5"]), ("dicom", dicom_manifest, [])):
        res = runner.invoke(app, ["analyze", str(m), "--out", str(tmp_path / name), "--workers", "1", "--no-progress", *extra])
        assert res.exit_code == 0, res.output
    for table in ("scans", "lesions", "registrations", "recist"):
        pd.testing.assert_frame_equal(
            pd.read_parquet(tmp_path / "nifti" / f"{table}.parquet"),
            pd.read_parquet(tmp_path / "dicom" / f"{table}.parquet"),
            check_exact=False, rtol=1e-9, atol=1e-6,
        )
    res = runner.invoke(app, ["export-dicom", str(tmp_path / "dicom"), "--out", str(tmp_path / "export")])
    assert res.exit_code == 0, res.output
    lesions = pd.read_parquet(tmp_path / "dicom" / "lesions.parquet")
    uids = set()
    for tp in ("V0", "V1"):
        sr, got = _sr_groups(tmp_path / "export" / "RC01" / tp / "sr.dcm")
        expect = lesions[lesions.timepoint == tp].sort_values("lesion_id")
        assert len(got) == len(expect) == 1
        np.testing.assert_allclose(got.volume_ml, expect.volume_ml, rtol=1e-9)
        np.testing.assert_allclose(got.axial_ld_mm, expect.axial_ld_mm, rtol=1e-9)
        uids |= set(got.uid)
        segread = hd.seg.segread(tmp_path / "export" / "RC01" / tp / "seg.dcm")
        assert [d.SegmentLabel for d in segread.SegmentSequence][-1] == "liver"
    assert len(uids) == 1  # the painted lesion is one track across both visits


def test_export_refuses_a_series_without_uids(shared_data, tmp_path):
    """ct_example's DICOM series was anonymised down to empty SOP Class/Instance, Study and Series UIDs."""
    from metevo import open_cohort
    from metevo.exceptions import CohortError
    from metevo.export import export_dicom

    image = shared_data / "ct_example" / "example_ct_dicom"
    liver = sitk.Image([512, 512, 20], sitk.sitkUInt8)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(image)))
    liver.CopyInformation(reader.Execute())
    sitk.WriteImage(liver, str(tmp_path / "empty.nii.gz"))
    pd.DataFrame([{"patient_id": "RC01", "timepoint": "V0", "date": "2022-12-08", "image": str(image),
                   "lesion_mask": "empty.nii.gz"}]).to_csv(tmp_path / "m.csv", index=False)
    (tmp_path / "out").mkdir()
    no_lesions = {"patient_id": [], "timepoint": [], "lesion_id": [], "track_id": [], "n_voxels": []}
    pd.DataFrame(no_lesions).astype({"patient_id": str, "timepoint": str}).to_parquet(
        tmp_path / "out" / "lesions.parquet"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cohort = open_cohort(tmp_path / "m.csv")
    with pytest.raises(CohortError, match="has empty SOPClassUID, SOPInstanceUID, StudyInstanceUID, SeriesInstanceUID"):
        export_dicom(cohort, tmp_path / "out", tmp_path / "x", patients=["RC01"])
