"""metevo.view: the widget state (volumes, overlays, selected lesion), without a browser."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

pytest.importorskip("ipyniivue", reason="the viewer extra (ipyniivue) is not installed")


@pytest.fixture(scope="module")
def viewer(tiny_cohort, tiny_analysis, tmp_path_factory):
    import metevo

    cohort = metevo.open_cohort(tiny_cohort.manifest)
    lesions = tiny_analysis.read("lesions")
    # the patient with the most tracks seen at more than one visit
    multi = lesions.groupby(["patient_id", "track_id"]).size()
    pid = (multi[multi > 1].groupby(level=0).size()).idxmax()
    edges = tiny_analysis.read("lesion_edges")
    return metevo.view(cohort[pid], lesions, edges, workdir=tmp_path_factory.mktemp("view")), lesions[
        lesions.patient_id == pid
    ]


def test_volumes_and_track_overlay(viewer):
    from metevo.viewer import track_colours

    v, lesions = viewer
    tp = v.visit.value
    vols = v.niivue.volumes
    assert [x.name for x in vols] == [f"{tp}_ct.nii.gz", f"{tp}_tracks.nii.gz"]
    assert vols[0].colormap == "gray" and (vols[0].cal_min, vols[0].cal_max) == (-150, 250)
    assert vols[1].colormap == "metevo_tracks" and vols[1].opacity == pytest.approx(0.6)
    overlay = sitk.GetArrayFromImage(sitk.ReadImage(str(v.workdir / f"{tp}_tracks.nii.gz")))
    rows = lesions[lesions.timepoint == tp]
    expected = rows.groupby("track_id").n_voxels.sum()
    got = pd.Series(np.bincount(overlay.ravel()))
    for track, n in expected.items():
        assert got[track + 1] == n
    assert got.iloc[1:].sum() == expected.sum()
    # each track has the colour the figures and the report give it (one palette everywhere)
    from metevo.plotting.graph import track_color

    lut = v.niivue._cluts["metevo_tracks"] if hasattr(v.niivue, "_cluts") else None
    colours = track_colours(lesions.track_id)
    if lut is not None:
        for track, rgb in colours.items():
            assert (lut.R[track + 1], lut.G[track + 1], lut.B[track + 1]) == rgb
    assert len(set(colours.values())) == len(colours)
    for track, rgb in colours.items():
        assert rgb == tuple(int(round(255 * c)) for c in track_color(track))


def test_selecting_a_row_centres_on_the_lesion(viewer):
    v, lesions = viewer
    rows = lesions[lesions.timepoint == v.visit.value].sort_values("lesion_id")
    lid = int(rows.lesion_id.iloc[-1])
    v.table.value = lid
    assert v.selected == (v.visit.value, lid)
    row = rows[rows.lesion_id == lid].iloc[0]
    img = sitk.ReadImage(str(v.workdir / f"{v.visit.value}_ct.nii.gz"))
    idx = np.array(img.TransformPhysicalPointToContinuousIndex(
        [float(row.centroid_x_mm), float(row.centroid_y_mm), float(row.centroid_z_mm)]
    ))
    size = np.array(img.GetSize())
    assert img.GetDirection() == (1, 0, 0, 0, 1, 0, 0, 0, 1)  # LPS axes: x and y flip to RAS
    expected = [1 - (idx[0] + 0.5) / size[0], 1 - (idx[1] + 0.5) / size[1], (idx[2] + 0.5) / size[2]]
    np.testing.assert_allclose(v.niivue.scene.crosshair_pos, expected, atol=1e-9)
    with pytest.raises(ValueError, match="no lesion 999"):
        v.select(999)


def test_visit_selector_swaps_volumes_and_table(viewer):
    v, lesions = viewer
    other = v.patient.timepoints[-1]
    v.visit.value = other
    assert v.niivue.volumes[0].name == f"{other}_ct.nii.gz"
    ids = sorted(int(i) for i in lesions[lesions.timepoint == other].lesion_id)
    assert [value for _, value in v.table.options] == ids
    assert v.selected is None
    with pytest.raises(ValueError, match="no visit 'V99'"):
        v.show("V99")


def _click(fig, trace_index: int, point_index: int) -> None:
    """What the browser sends when a point is clicked (plotly's FigureWidget protocol)."""
    trace = fig.data[trace_index]
    fig._js2py_pointsCallback = {
        "event_type": "plotly_click",
        "points": {"trace_indexes": [trace_index], "point_indexes": [point_index],
                   "xs": [trace.x[point_index]], "ys": [trace.y[point_index]]},
        "device_state": {"alt": False, "ctrl": False, "meta": False, "shift": False, "button": 0, "buttons": 1},
        "selector": None,
    }


def _expected_crosshair(v, row):
    img = sitk.ReadImage(str(v.workdir / f"{row.timepoint}_ct.nii.gz"))
    idx = np.array(img.TransformPhysicalPointToContinuousIndex(
        [float(row.centroid_x_mm), float(row.centroid_y_mm), float(row.centroid_z_mm)]
    ))
    size = np.array(img.GetSize())
    return [1 - (idx[0] + 0.5) / size[0], 1 - (idx[1] + 0.5) / size[1], (idx[2] + 0.5) / size[2]]


def test_the_graph_shows_every_lesion_and_match(viewer):
    v, lesions = viewer
    nodes = v.graph.data[-1]
    assert nodes.name == "lesions" and len(v.node_keys) == len(lesions) == len(nodes.x)
    for (tp, lid), x, y in zip(v.node_keys, nodes.x, nodes.y, strict=True):
        row = lesions[(lesions.timepoint == tp) & (lesions.lesion_id == lid)].iloc[0]
        assert (x, y) == (float(row.days), int(row.track_id))
    # one line segment (3 coordinates: from, to, gap) per lesion_edges row of the patient
    lines = v.graph.data[0]
    assert lines.x.count(None) == int(v.graph.data[0].y.count(None)) > 0


def test_clicking_a_graph_node_selects_its_visit_and_centres_on_it(viewer):
    v, lesions = viewer
    v.show(v.patient.timepoints[0])
    # a node of another visit than the shown one
    i = next(k for k, (tp, _) in enumerate(v.node_keys) if tp != v.visit.value)
    tp, lid = v.node_keys[i]
    _click(v.graph, len(v.graph.data) - 1, i)
    assert v.visit.value == tp
    assert v.niivue.volumes[0].name == f"{tp}_ct.nii.gz"
    assert v.selected == (tp, lid) and v.table.value == lid
    row = lesions[(lesions.timepoint == tp) & (lesions.lesion_id == lid)].iloc[0]
    np.testing.assert_allclose(v.niivue.scene.crosshair_pos, _expected_crosshair(v, row), atol=1e-9)
    sizes = list(v.graph.data[-1].marker.size)
    assert sizes[i] > max(sizes[:i] + sizes[i + 1:])
    assert v.graph.data[-1].marker.line.width[i] == 3.0
    # a click on the match lines (another trace) changes nothing
    _click(v.graph, 0, 0)
    assert v.selected == (tp, lid)


def test_selecting_a_row_highlights_its_node(viewer):
    v, lesions = viewer
    tp = v.patient.timepoints[-1]
    v.show(tp)
    assert max(v.graph.data[-1].marker.size) == min(v.graph.data[-1].marker.size)  # nothing selected
    lid = int(lesions[lesions.timepoint == tp].lesion_id.min())
    v.table.value = lid
    i = v.node_keys.index((tp, lid))
    sizes = list(v.graph.data[-1].marker.size)
    assert sizes[i] > max(sizes[:i] + sizes[i + 1:])
