from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from metevo import open_cohort
from metevo.exceptions import (
    ClinicalTableError,
    DataQualityWarning,
    EventsTableError,
    GeometryError,
    ImageReadError,
    ManifestError,
    MaskValueError,
    ProtocolWarning,
)
from tests.conftest import write_image


def _manifest(mini) -> pd.DataFrame:
    return pd.read_csv(mini["manifest"], dtype=str)


def _save(mini, frame: pd.DataFrame, name="manifest.csv"):
    path = mini["root"] / name
    frame.to_csv(path, index=False)
    return path


def test_open_valid_cohort(mini_cohort):
    cohort = open_cohort(
        mini_cohort["manifest"], clinical=mini_cohort["clinical"], events=mini_cohort["events"]
    )
    assert cohort.patient_ids == ["P001", "P002", "P003"]
    p = cohort["P002"]
    assert p.timepoints == ["V0", "V1", "V2"]
    assert p.treatment_start == dt.date(2021, 2, 6)
    # baseline: last scan on or before treatment_start (V0 on 2021-02-03)
    assert p.baseline.timepoint == "V0"
    assert [s.days for s in p] == [0, 56, 112]
    assert [s.study_day for s in p] == [-3, 53, 109]
    assert p.clinical["arm"] == "A" and p.clinical["age"] == 61
    assert len(cohort["P001"].events) == 1 and cohort["P001"].events.event[0] == "resection"
    scan = p["V1"]
    assert scan.image().GetSize() == (32, 32, 12)
    assert (
        sitk.GetArrayFromImage(scan.lesion_mask()).sum() == mini_cohort["expected"][("P002", "V1")]
    )
    assert scan.liver_mask().GetPixelID() == sitk.sitkUInt8
    assert "3 patients" in repr(cohort) and "<table>" in cohort._repr_html_()
    assert "P002" in p._repr_html_() and "baseline V0" in repr(p)
    import pickle

    assert pickle.loads(pickle.dumps(p)).scans == p.scans


def test_missing_required_column(mini_cohort):
    m = _manifest(mini_cohort).drop(columns=["lesion_mask"])
    with pytest.raises(ManifestError, match=r"lacks required column\(s\) \['lesion_mask'\]"):
        open_cohort(_save(mini_cohort, m))


def test_missing_file_sets_patient_aside(mini_cohort):
    (mini_cohort["root"] / "P002" / "V1" / "lesion.nii.gz").unlink()
    with pytest.warns(DataQualityWarning, match=r"1 patient\(s\) set aside.*P002.*file not found"):
        cohort = open_cohort(mini_cohort["manifest"])
    assert cohort.patient_ids == ["P001", "P003"]
    with pytest.raises(ImageReadError, match=r"timepoint V1\).*lesion_mask .*lesion\.nii\.gz"):
        cohort["P002"]
    fails = cohort.failures()
    assert fails.patient_id.tolist() == ["P002"] and fails.stage.tolist() == ["validate"]
    with pytest.raises(ImageReadError):
        open_cohort(mini_cohort["manifest"], errors="raise")


def test_unparseable_date(mini_cohort):
    m = _manifest(mini_cohort)
    m.loc[4, "date"] = "03/02/2021"
    with pytest.warns(
        DataQualityWarning,
        match=r"P002: .*line 6 \(patient P002, timepoint V1\): date '03/02/2021' is not an ISO date",
    ):
        cohort = open_cohort(_save(mini_cohort, m))
    assert "P002" not in cohort.patient_ids


def test_duplicate_timepoint(mini_cohort):
    m = _manifest(mini_cohort)
    m.loc[1, "timepoint"] = "V0"
    with pytest.raises(
        ManifestError, match=r"patient P001 has 2 rows for timepoint 'V0' \(lines 2, 3\)"
    ):
        open_cohort(_save(mini_cohort, m), errors="raise")


def test_same_date_needs_distinct_phases(mini_cohort):
    m = _manifest(mini_cohort)
    extra = m.iloc[[0]].copy()
    extra["timepoint"] = "V0a"
    m2 = pd.concat([m, extra], ignore_index=True)
    with pytest.raises(ManifestError, match=r"2 scans on 2021-01-04 .*the same phase"):
        open_cohort(_save(mini_cohort, m2), errors="raise")
    extra["phase"] = "arterial"
    m3 = _save(mini_cohort, pd.concat([m, extra], ignore_index=True))
    p = open_cohort(m3)["P001"]  # portal venous by default
    assert p.timepoints == ["V0", "V1", "V2"]
    assert [s.timepoint for s in p.skipped_scans] == ["V0a"]
    # analysing the arterial phase instead makes the phase change across visits
    with pytest.warns(
        ProtocolWarning, match="P001: phase changes from arterial at V0a to portal_venous at V1"
    ):
        p = open_cohort(m3, phase="arterial")["P001"]
    assert p.timepoints == ["V0a", "V1", "V2"]


def test_phase_selection_default_portal(mini_cohort):
    m = _manifest(mini_cohort)
    extra = m.iloc[[0]].copy()
    extra["timepoint"], extra["phase"] = "V0art", "arterial"
    cohort = open_cohort(_save(mini_cohort, pd.concat([extra, m], ignore_index=True)))
    assert cohort["P001"].timepoints == ["V0", "V1", "V2"]


def test_protocol_change_warns(mini_cohort):
    m = _manifest(mini_cohort)
    m.loc[2, "slice_thickness_mm"] = "5.0"
    with pytest.warns(
        ProtocolWarning, match=r"P001: slice thickness \(mm\) changes from 3.0 at V1 to 5.0 at V2"
    ):
        open_cohort(_save(mini_cohort, m))


def test_single_visit_patient_is_valid(mini_cohort):
    m = _manifest(mini_cohort)
    m = m[~((m.patient_id == "P003") & (m.timepoint != "V0"))]
    cohort = open_cohort(_save(mini_cohort, m))
    assert len(cohort["P003"]) == 1 and cohort["P003"].baseline.timepoint == "V0"


def test_geometry_mismatch_and_resample(mini_cohort):
    path = mini_cohort["root"] / "P001" / "V1" / "lesion.nii.gz"
    arr = sitk.GetArrayFromImage(sitk.ReadImage(str(path)))
    write_image(path, arr, spacing=(2.0, 2.0, 3.0), origin=(4.0, 0.0, 0.0))
    cohort = open_cohort(mini_cohort["manifest"])
    scan = cohort["P001"]["V1"]
    with pytest.raises(
        GeometryError,
        match=r"patient P001, timepoint V1 \(lesion mask\): mask does not share the image grid \(image .*ct\.nii\.gz, mask .*lesion\.nii\.gz\): origin .*resample_masks=True",
    ):
        scan.lesion_mask()
    cohort = open_cohort(mini_cohort["manifest"], resample_masks=True)
    resampled = cohort["P001"]["V1"].lesion_mask()
    assert resampled.GetOrigin() == (0.0, 0.0, 0.0)
    # shifted by 2 voxels in x: the same voxels, moved
    assert sitk.GetArrayViewFromImage(resampled).sum() == arr.sum()


def test_mask_values_contradict_kind(mini_cohort):
    path = mini_cohort["root"] / "P001" / "V1" / "lesion.nii.gz"
    arr = sitk.GetArrayFromImage(sitk.ReadImage(str(path))).astype(np.uint8)
    arr[0, 0, 0] = 3
    write_image(path, arr)
    cohort = open_cohort(mini_cohort["manifest"])
    with pytest.raises(
        MaskValueError,
        match=r"patient P001, timepoint V1 \(lesion mask\).*2 distinct non-zero values \(1, 3\)",
    ):
        cohort["P001"]["V1"].lesion_mask()
    inst = open_cohort(mini_cohort["manifest"], lesion_mask_kind="instances")["P001"]["V1"]
    assert inst.lesion_mask_kind == "instances"
    assert set(np.unique(sitk.GetArrayFromImage(inst.lesion_mask()))) == {0, 1, 3}


def test_empty_lesion_mask_is_valid(mini_cohort):
    path = mini_cohort["root"] / "P001" / "V2" / "lesion.nii.gz"
    write_image(path, np.zeros((12, 32, 32), np.uint8))
    cohort = open_cohort(mini_cohort["manifest"])
    assert sitk.GetArrayFromImage(cohort["P001"]["V2"].lesion_mask()).sum() == 0


def test_baseline_window_fallback(mini_cohort):
    c = pd.read_csv(mini_cohort["clinical"], dtype=str)
    c.loc[0, "treatment_start"] = "2020-06-01"  # long before any scan
    path = _save(mini_cohort, c, "clinical.csv")
    with pytest.warns(
        DataQualityWarning,
        match=r"first scan used as baseline for 1 patient\(s\): P001 \(no scan within 28 days",
    ):
        cohort = open_cohort(mini_cohort["manifest"], clinical=path)
    assert cohort["P001"].baseline.timepoint == "V0"
    # a later treatment start picks the last scan within the window
    c.loc[0, "treatment_start"] = "2021-03-10"  # V1 is 2021-03-01
    cohort = open_cohort(mini_cohort["manifest"], clinical=_save(mini_cohort, c, "clinical.csv"))
    assert cohort["P001"].baseline.timepoint == "V1"


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("os_days", "", r"column os_days: expected a non-negative number of days, found nan"),
        ("os_days", "-3", r"column os_days: expected a non-negative number of days, found -3.0"),
        ("os_event", "2", r"column os_event: expected 0 \(censored\) or 1 \(event\), found '2'"),
        ("treatment_start", "soon", r"treatment_start: 'soon' is not an ISO date"),
    ],
)
def test_bad_clinical_rows(mini_cohort, column, value, message):
    c = pd.read_csv(mini_cohort["clinical"], dtype=str)
    c.loc[1, column] = value
    path = _save(mini_cohort, c, "clinical.csv")
    with pytest.raises(ClinicalTableError, match=r"clinical table .*patient P002.*" + message):
        open_cohort(mini_cohort["manifest"], clinical=path, errors="raise")
    if column == "treatment_start":  # the baseline depends on it: the patient is set aside
        with pytest.warns(DataQualityWarning, match="set aside"):
            cohort = open_cohort(mini_cohort["manifest"], clinical=path)
        assert cohort.patient_ids == ["P001", "P003"]
        return
    # a survival column only costs the survival analyses (issue 11): warning naming the patient
    with pytest.warns(DataQualityWarning, match=r"patient P002.*" + message + r".*Patient P002 "
                      r"is left out of the OS survival analyses; its imaging"):
        cohort = open_cohort(mini_cohort["manifest"], clinical=path)
    assert cohort.patient_ids == ["P001", "P002", "P003"]
    assert np.isnan(cohort["P002"].clinical["os_days"]) and pd.isna(cohort["P002"].clinical["os_event"])
    from metevo.survival import survival_data

    assert survival_data(cohort.clinical).patient_id.tolist() == ["P001", "P003"]


def test_clinical_missing_columns_and_unknown_ids(mini_cohort):
    c = pd.read_csv(mini_cohort["clinical"], dtype=str)
    with pytest.raises(ClinicalTableError, match=r"lacks required column\(s\) \['os_event'\]"):
        open_cohort(
            mini_cohort["manifest"],
            clinical=_save(mini_cohort, c.drop(columns="os_event"), "c.csv"),
        )
    extra = pd.concat([c, c.iloc[[0]].assign(patient_id="X999")], ignore_index=True)
    with pytest.warns(
        DataQualityWarning, match=r"1 patient id\(s\) not in the manifest are ignored: X999"
    ):
        open_cohort(mini_cohort["manifest"], clinical=_save(mini_cohort, extra, "c.csv"))
    with pytest.warns(
        DataQualityWarning, match=r"no row for 1 patient\(s\) of the manifest \(P003\)"
    ):
        cohort = open_cohort(
            mini_cohort["manifest"], clinical=_save(mini_cohort, c.iloc[:2], "c.csv")
        )
    assert cohort["P003"].clinical is None and cohort["P003"].treatment_start is None


def test_events_unknown_type(mini_cohort):
    e = pd.read_csv(mini_cohort["events"], dtype=str)
    e.loc[0, "event"] = "surgery"
    path = _save(mini_cohort, e, "events.csv")
    with pytest.raises(
        EventsTableError, match=r"unknown event type 'surgery'; expected one of resection, ablation"
    ):
        open_cohort(mini_cohort["manifest"], events=path, errors="raise")
    with pytest.raises(EventsTableError, match=r"lacks required column\(s\) \['event'\]"):
        open_cohort(
            mini_cohort["manifest"], events=_save(mini_cohort, e.drop(columns="event"), "e.csv")
        )


def test_events_of_patients_not_in_the_manifest_are_ignored_with_a_warning(mini_cohort):
    e = pd.read_csv(mini_cohort["events"], dtype=str)
    extra = pd.concat(
        [e, e.iloc[[0] * 12].assign(patient_id=[f"X{i:02d}" for i in range(12)])],
        ignore_index=True,
    )
    path = _save(mini_cohort, extra, "events.csv")
    with pytest.warns(DataQualityWarning) as record:
        cohort = open_cohort(mini_cohort["manifest"], events=path)
    assert [str(w.message) for w in record] == [
        f"events table {path}: 12 patient id(s) not in the manifest are ignored: "
        + ", ".join(f"X{i:02d}" for i in range(10))
        + " ...."
    ]
    assert record[0].filename == __file__  # points at the open_cohort call
    assert sorted(cohort.events.patient_id.unique()) == sorted(e.patient_id.unique())


def test_unknown_option_is_a_type_error(mini_cohort):
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['lesion_kind'\]"):
        open_cohort(mini_cohort["manifest"], lesion_kind="binary")
    with pytest.raises(ValueError, match="needs lesion_label"):
        open_cohort(mini_cohort["manifest"], lesion_mask_kind="labels")
