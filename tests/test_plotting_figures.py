"""Figure fixes of issue 16: labels, legends, swimmer axis, integer counts, 62-track lesion graph,
plot_visits following the registration, track colours."""

from __future__ import annotations

import datetime as dt

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from metevo.plotting._labels import column_label  # noqa: E402
from metevo.plotting.graph import plot_lesion_graph, track_color, track_palette  # noqa: E402
from metevo.plotting.response import spider, swimmer, waterfall  # noqa: E402
from metevo.plotting.trajectories import plot_trajectory_panel  # noqa: E402


def _recist():
    d0 = dt.date(2021, 1, 1)
    rows = []
    for pid, pcts, resp in (
        ("A", [0, -35, -50, 30], [None, "PR", "PR", "PD"]),
        ("B", [0, 10, 5], [None, "SD", "SD"]),
    ):
        for i, (p, r) in enumerate(zip(pcts, resp, strict=True)):
            rows.append({"patient_id": pid, "timepoint": f"V{i}", "date": d0 + dt.timedelta(days=56 * i),
                         "days": 56 * i, "pct_change_baseline": float(p), "overall_response": r,
                         "evaluable": True})
    patients = pd.DataFrame({"patient_id": ["A", "B"], "best_response_confirmed": ["PR", "SD"],
                             "imaging_pfs_event": [True, False]})
    return pd.DataFrame(rows), patients, d0


def _texts(ax) -> list[str]:
    return [t.get_text() for t in ax.texts]


def test_spider_labels_and_legends():
    recist, patients, _ = _recist()
    ax = spider(recist, patients)
    assert ax.get_xlabel() == "days since first scan"  # was "days (days)"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["PR", "SD", "visit with PD"]
    assert ax.get_legend().get_title().get_text() == "line: best response confirmed"
    assert "+20 %: PD" in _texts(ax) and "\u221230 %: PR" in _texts(ax)
    recist["study_day"] = recist["days"] - 7
    assert spider(recist, patients, x="study_day").get_xlabel() == "days since treatment start"
    plt.close("all")
    ax = waterfall(recist, patients)
    assert "+20 %: PD" in _texts(ax) and "\u221230 %: PR" in _texts(ax)
    plt.close("all")


def test_swimmer_late_death_is_a_thin_line_off_the_axis():
    recist, patients, d0 = _recist()
    events = pd.DataFrame({"patient_id": ["A", "B"], "event": ["death", "new_treatment_line"],
                           "date": [d0 + dt.timedelta(days=2000), d0 + dt.timedelta(days=150)]})
    ax = swimmer(recist, patients, events)
    # the axis ends a little after the last scan (day 168), not at the death (day 2000)
    assert ax.get_xlim()[1] == pytest.approx(1.25 * 168 + 30)
    assert "death day 2000" in _texts(ax)
    thin = [ln for ln in ax.lines if ln.get_linewidth() == pytest.approx(0.8)]
    spans = sorted((float(ln.get_xdata()[0]), float(ln.get_xdata()[1])) for ln in thin)
    # B: last scan day 112 -> new line day 150; A: last scan day 168 -> the axis end
    assert spans == [(112.0, 150.0), (168.0, pytest.approx(1.25 * 168 + 30))]
    legends = [c for c in ax.get_children() if isinstance(c, matplotlib.legend.Legend)]
    titles = {lg.get_title().get_text() for lg in legends}
    assert titles == {"bar: confirmed best response", "dot: response at visit"}
    entries = {t.get_text() for lg in legends for t in lg.get_texts()}
    assert {"imaging PFS censored", "follow-up after last scan", "death", "new treatment line"} <= entries
    plt.close("all")


def test_trajectory_panel_counts_are_integers_and_features_readable():
    lt = pd.DataFrame({"patient_id": "P", "track_id": [1, 1, 2], "days": [0, 60, 60],
                       "present": True, "axial_ld_mm": [10.0, 12, 8], "volume_ml": [1.0, 1.5, 0.4],
                       "mean_hu": [40.0, 45, 50], "cm_joint_entr_3d_avg": [2.0, 2.2, 1.9]})
    pt = pd.DataFrame({"patient_id": "P", "days": [0, 60], "n_lesions": [1, 2],
                       "n_new_lesions": [0, 1], "n_disappeared_lesions": [0, 0]})
    axes = plot_trajectory_panel(lt, pt)
    axes[0].figure.canvas.draw()
    ticks = axes[2].get_yticks()
    assert len(ticks) >= 2 and np.allclose(ticks, np.round(ticks))  # no 0.5 lesion ticks
    assert axes[3]._metevo_twin.get_ylabel() == "joint entropy (GLCM) (dashed)"
    plt.close("all")


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("volume_ml", "volume (ml)"),
        ("total_volume_rel_baseline", "total lesion volume, change from baseline (fraction)"),
        ("sum_ld_rel_nadir", "sum of longest diameters, change from nadir (fraction)"),
        ("main_morph_sphericity", "largest lesion: sphericity"),
        ("vw_cm_joint_entr_3d_avg", "volume-weighted joint entropy (GLCM)"),
        ("stat_var", "intensity variance (HU²)"),
        ("not_a_column", "not a column"),
    ],
)
def test_column_label(name, label):
    assert column_label(name) == label


def test_track_colours_are_stable_and_distinct():
    pal = track_palette(range(1, 63))
    assert pal[5] == track_color(5) == track_palette([5, 9])[5]
    rgb = np.array(list(pal.values()))
    d = np.sqrt(((rgb[:, None] - rgb[None]) ** 2).sum(-1))
    assert np.min(d[np.triu_indices(10, 1)]) > 0.15  # the first ten tracks differ visibly


def _many_tracks(n_tracks=62, n_visits=8):
    d0 = dt.date(2020, 1, 6)
    rows, edges = [], []
    for v in range(n_visits):
        for t in range(1, n_tracks + 1):
            if v and t % 7 == 0 and v > 4:
                continue
            rows.append({"patient_id": "P62", "timepoint": f"V{v}", "date": d0 + dt.timedelta(days=63 * v),
                         "days": 63 * v, "lesion_id": t, "track_id": t,
                         "change": "persistent" if v else "lone", "volume_ml": 1.0 + t % 5})
            if v and not (t % 7 == 0 and v > 4) and not (t % 7 == 0 and v - 1 > 4):
                edges.append({"patient_id": "P62", "timepoint_from": f"V{v - 1}", "lesion_id_from": t,
                              "timepoint_to": f"V{v}", "lesion_id_to": t, "skip": False})
    return pd.DataFrame(rows), pd.DataFrame(edges)


def _overlap(boxes) -> bool:
    return any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])


def test_lesion_graph_with_62_tracks_is_readable():
    lesions, edges = _many_tracks()
    ax = plot_lesion_graph(lesions, edges)
    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    w, h = fig.get_size_inches()
    assert w == 8 and 10 < h <= 30  # grows with the tracks, not a 2,600-px strip
    fig_box = fig.bbox
    legend = ax.get_legend().get_window_extent(renderer)
    assert fig_box.x0 <= legend.x0 and legend.x1 <= fig_box.x1 and legend.y1 <= fig_box.y1  # not cut
    xt = [t.get_window_extent(renderer) for t in ax.get_xticklabels() if t.get_text()]
    yt = [t.get_window_extent(renderer) for t in ax.get_yticklabels() if t.get_text()]
    assert len(xt) >= 3 and not _overlap(xt)
    assert 5 <= len(yt) <= 21 and not _overlap(yt)
    assert ax.get_title(loc="right") == "lesion graph, patient P62 (62 tracks)"
    plt.close(fig)


def test_lesion_graph_bad_input():
    lesions, edges = _many_tracks(3, 2)
    with pytest.raises(ValueError, match="lacks column"):
        plot_lesion_graph(lesions.drop(columns="track_id"), edges)
    with pytest.raises(ValueError, match="patient 'X' has no row"):
        plot_lesion_graph(lesions, edges, patient_id="X")


def test_plot_visits_follows_the_registration(tmp_path):
    """Visit 2 is visit 1 moved 9 mm (3 slices) down, plus a larger new lesion 6 slices higher:
    the same anatomy is slice k, then k + 3 (the largest lesion's slice would be k - 3)."""
    import SimpleITK as sitk
    from conftest import ball, write_image

    from metevo.cohort import open_cohort
    from metevo.plotting.scans import plot_visits

    shape = (24, 40, 40)
    liver = np.zeros(shape, np.uint8)
    liver[4:16, 8:30, 6:34] = 1
    liver[4:10, 8:20, 6:20] = 0  # an asymmetric liver, so the shift is unambiguous
    lesion = (ball(shape, (12, 20, 26), 3) & (liver > 0)).astype(np.uint8)
    ct = np.full(shape, -1000, np.int16)
    ct[liver == 1] = 60
    ct[lesion == 1] = 20
    rows = []
    for v, shift in enumerate((0, 3)):
        base = tmp_path / f"V{v}"
        moved = {n: np.roll(a, shift, axis=0) for n, a in (("ct", ct), ("lesion", lesion), ("liver", liver))}
        if v:
            new = ball(shape, (9, 25, 12), 4) & (moved["liver"] > 0)
            moved["lesion"][new] = 1
            moved["ct"][new] = 20
        for name, arr in moved.items():
            write_image(base / f"{name}.nii.gz", arr)
        rows.append({"patient_id": "P1", "timepoint": f"V{v}", "date": f"2021-0{v + 1}-01",
                     "image": f"V{v}/ct.nii.gz", "lesion_mask": f"V{v}/lesion.nii.gz",
                     "liver_mask": f"V{v}/liver.nii.gz"})
    pd.DataFrame(rows).to_csv(tmp_path / "m.csv", index=False)
    patient = open_cohort(tmp_path / "m.csv")["P1"]
    axes = plot_visits(patient)
    titles = [ax.get_title() for ax in axes]
    assert titles == ["V0 2021-01-01 (slice 12)", "V1 2021-02-01 (slice 15)"]
    # the lesion is drawn in its track's colour at both visits
    colour = track_color(1)
    for ax in axes:
        cols = [tuple(np.round(c.get_edgecolor()[0][:3], 3)) for c in ax.collections if len(c.get_edgecolor())]
        assert tuple(np.round(colour, 3)) in cols
    axes[0].figure.savefig(tmp_path / "visits.png")
    plt.close("all")
    assert sitk.ReadImage(str(tmp_path / "V1" / "ct.nii.gz")).GetSize() == (40, 40, 24)


def test_plot_slice_is_radiological_for_ras_and_lps_files():
    """A voxel at the patient's right-anterior shows top-left, however the file is stored."""
    import SimpleITK as sitk

    from metevo.plotting.scans import plot_slice

    arr = np.zeros((3, 10, 12), np.int16)
    lps = sitk.GetImageFromArray(arr)
    lps.SetSpacing((2.0, 2.0, 2.0))
    idx = (1, 2, 1)  # x=1 (towards the patient's right), y=2 (anterior), z=1
    lps.SetPixel(idx, 300)
    ras = sitk.DICOMOrient(lps, "RAS")
    assert ras.GetDirection()[0] == -1 and ras.GetPixel(idx) == 0
    shown = []
    for img in (lps, ras):
        ax = plot_slice(img, 1)
        a = np.asarray(ax.images[0].get_array())
        shown.append(tuple(int(v) for v in np.argwhere(a == 300)[0]))
    assert shown == [(2, 1), (2, 1)]  # row 2 from the top, column 1 from the left
    plt.close("all")


def test_pattern_members_from_tables():
    from metevo.plotting.patterns import plot_pattern_members

    patterns = pd.DataFrame({"patient_id": ["a", "b", "c"], "pattern": ["shrink", "grow", "shrink"],
                             "pattern_id": [0, 1, 0]})
    traj = pd.DataFrame({"patient_id": ["a", "a", "b", "b", "c", "c"], "study_day": [0, 60] * 3,
                         "total_volume_rel_baseline": [0.0, -0.5, 0.0, 1.0, 0.0, -0.75]})
    fig = plot_pattern_members(patterns, traj)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["shrink (n=2)", "grow (n=1)"]
    member_lines = [ln for ln in axes[1].lines if ln.get_linewidth() == pytest.approx(0.9)]
    assert list(member_lines[0].get_ydata()) == [1.0, 2.0]  # ratio = 1 + relative change
    assert axes[0].get_ylabel() == "total lesion volume,\nratio to baseline (log)"
    with pytest.raises(ValueError, match="lacks column"):
        plot_pattern_members(patterns.drop(columns="pattern"), traj)
    plt.close("all")
