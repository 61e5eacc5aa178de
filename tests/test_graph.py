"""Lesion graph: matching, change classes, tracks, tables, drawing and accuracy."""

from __future__ import annotations

import datetime
import math

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from metevo.evaluation import map_to_reference, score_graph
from metevo.exceptions import RegistrationWarning
from metevo.tracking import LesionGraph, build_lesion_graph, change_classes, match_lesions

# ------------------------------------------------------------------------------------------------
# A hand-made 4-visit sequence with rigid patient motion, a merge, a split, a vanishing lesion,
# a new lesion and a lesion missed at one visit. Lesions are defined in body coordinates (mm).
# ------------------------------------------------------------------------------------------------
SHAPE = (36, 80, 80)  # z, y, x
SPACING = (1.5, 1.5, 3.0)  # x, y, z mm
LESIONS = {  # reference id -> {visit: [(centre, radius), ...]} (several balls = one lesion)
    1: {
        0: [((40, 50, 50), 7)],
        1: [((40, 50, 50), 6)],
        2: [((40, 50, 50), 5)],
        3: [((40, 50, 50), 5)],
    },
    2: {0: [((75, 45, 45), 5)], 1: [((75, 45, 45), 5)]},  # merges with 3 into 4
    3: {0: [((75, 60, 45), 5)], 1: [((75, 59, 45), 5)]},
    4: {2: [((75, 45, 45), 5), ((75, 59, 45), 5), ((75, 52, 45), 4)], 3: [((75, 52, 45), 8)]},
    5: {0: [((45, 80, 60), 8)]},  # splits into 6 and 7
    6: {1: [((45, 74, 60), 4.5)], 2: [((45, 74, 60), 4.5)], 3: [((45, 74, 60), 4)]},
    7: {1: [((45, 86, 60), 4.5)], 2: [((45, 86, 60), 4.5)], 3: [((45, 86, 60), 4)]},
    8: {0: [((80, 80, 65), 5)], 1: [((80, 80, 65), 4)]},  # gone at V3
    9: {2: [((60, 95, 40), 5)], 3: [((60, 95, 40), 6)]},  # new at V3
    10: {0: [((95, 60, 60), 5)], 2: [((95, 60, 60), 5)], 3: [((95, 60, 60), 5)]},  # missed at V2
}
REFERENCE_EDGES = [
    ((0, 1), (1, 1)), ((1, 1), (2, 1)), ((2, 1), (3, 1)),
    ((0, 2), (1, 2)), ((0, 3), (1, 3)), ((1, 2), (2, 4)), ((1, 3), (2, 4)), ((2, 4), (3, 4)),
    ((0, 5), (1, 6)), ((0, 5), (1, 7)), ((1, 6), (2, 6)), ((2, 6), (3, 6)), ((1, 7), (2, 7)), ((2, 7), (3, 7)),
    ((0, 8), (1, 8)), ((2, 9), (3, 9)), ((0, 10), (2, 10)), ((2, 10), (3, 10)),
]  # fmt: skip
MOTION = [
    ((0, 0, 0), (0, 0, 0)),
    ((6, -4, 3), (0, 0, 4)),
    ((-5, 3, -6), (2, -2, -3)),
    ((3, 5, 3), (-3, 2, 5)),
]
TIMEPOINTS = ["V1", "V2", "V3", "V4"]


def _rotation(degrees) -> np.ndarray:
    ax, ay, az = (math.radians(d) for d in degrees)
    rx = np.array([[1, 0, 0], [0, math.cos(ax), -math.sin(ax)], [0, math.sin(ax), math.cos(ax)]])
    ry = np.array([[math.cos(ay), 0, math.sin(ay)], [0, 1, 0], [-math.sin(ay), 0, math.cos(ay)]])
    rz = np.array([[math.cos(az), -math.sin(az), 0], [math.sin(az), math.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


def make_sequence(visits=(0, 1, 2, 3), *, empty=()):
    """Images, binary lesion masks, liver masks and reference instances, one per visit."""
    z, y, x = np.indices(SHAPE).astype(float)
    pts = np.stack([x * SPACING[0], y * SPACING[1], z * SPACING[2]], axis=-1)
    centre = np.array([60.0, 60.0, 54.0])
    out = {"lesion": [], "liver": [], "image": [], "reference": []}
    for v in visits:
        shift, degrees = MOTION[v]
        body = (pts - centre) @ _rotation(degrees).T + centre + np.array(shift)
        liver = ((body[..., 0] - 62) / 52) ** 2 + ((body[..., 1] - 62) / 50) ** 2 + (
            (body[..., 2] - 54) / 40
        ) ** 2 <= 1
        liver |= ((body[..., 0] - 35) / 25) ** 2 + ((body[..., 1] - 90) / 20) ** 2 + (
            (body[..., 2] - 60) / 25
        ) ** 2 <= 1
        ref = np.zeros(SHAPE, np.uint32)
        if v not in empty:
            for name, per_visit in LESIONS.items():
                for c, r in per_visit.get(v, []):
                    ref[((body - np.array(c)) ** 2).sum(-1) <= r * r] = name
        ct = np.where(liver, 60, -100).astype(np.int16)
        ct[ref > 0] = 20
        for arr, key, dtype in (
            (ref > 0, "lesion", np.uint8),
            (liver, "liver", np.uint8),
            (ct, "image", np.int16),
            (ref, "reference", np.uint32),
        ):
            img = sitk.GetImageFromArray(arr.astype(dtype))
            img.SetSpacing(SPACING)
            img.SetOrigin((-10.0 * v, 5.0 * v, 0.0))  # each visit has its own field of view
            out[key].append(img)
    return out


def _reference_edges(timepoints=TIMEPOINTS) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "timepoint_from": timepoints[a[0]],
                "lesion_id_from": a[1],
                "timepoint_to": timepoints[b[0]],
                "lesion_id_to": b[1],
            }
            for a, b in REFERENCE_EDGES
        ]
    )


@pytest.fixture(scope="module")
def sequence():
    data = make_sequence()
    graph = build_lesion_graph(
        data["lesion"],
        data["image"],
        liver_masks=data["liver"],
        timepoints=TIMEPOINTS,
        dates=[datetime.date(2024, 1, 8) + datetime.timedelta(days=56 * i) for i in range(4)],
        days=[56 * i for i in range(4)],
        patient_id="P001",
    )
    mapping = map_to_reference(
        graph.instances, dict(zip(TIMEPOINTS, data["reference"], strict=True))
    )
    return data, graph, mapping


def _by_reference(graph: LesionGraph, mapping: pd.DataFrame) -> dict:
    """{(timepoint, reference id): node row} of the graph."""
    nodes = graph.nodes.merge(mapping, on=["timepoint", "lesion_id"])
    return {(r.timepoint, r.reference_id): r for r in nodes.itertuples()}


def test_sequence_is_matched_perfectly(sequence):
    _, graph, mapping = sequence
    assert (mapping["reference_id"] > 0).all() and (mapping["fraction"] == 1.0).all()
    scores = score_graph(graph.edges, _reference_edges(), mapping, timepoints=TIMEPOINTS)
    assert scores["precision"] == 1.0 and scores["recall"] == 1.0 and scores["f1"] == 1.0
    assert scores["change_accuracy"] == 1.0 and scores["n_scored_lesions"] == 24
    assert graph.registrations["qc_pass"].all()
    assert (graph.registrations["liver_dice_after"] > 0.9).all()


def test_change_classes_and_tracks_of_the_sequence(sequence):
    _, graph, mapping = sequence
    node = _by_reference(graph, mapping)
    assert node[("V1", 5)].change == "split"
    assert node[("V3", 4)].change == "merged"
    assert node[("V2", 8)].change == "disappeared"
    assert node[("V3", 9)].change == "new"
    assert node[("V1", 10)].change == "persistent"  # bridged by a skip edge to V3
    assert node[("V4", 1)].change == "persistent"  # the last visit has a virtual successor
    skip = graph.edges[graph.edges["skip"]]
    assert len(skip) == 1 and skip.iloc[0][["timepoint_from", "timepoint_to"]].tolist() == [
        "V1",
        "V3",
    ]
    kinds = graph.tracks.set_index("track_id")["track_class"]
    assert kinds[node[("V1", 5)].track_id] == "splitting"
    assert kinds[node[("V1", 2)].track_id] == "merging"
    assert kinds[node[("V1", 1)].track_id] == "linear"
    assert node[("V1", 2)].track_id == node[("V4", 4)].track_id
    changes = graph.changes.set_index("timepoint")
    assert changes.loc["V3", "n_new"] == 1 and changes.loc["V1", "n_split"] == 1
    assert (changes["n_lesions"] == 6).all()


def test_tables_have_their_keys_first(sequence):
    _, graph, _ = sequence
    assert list(graph.nodes.columns[:7]) == [
        "patient_id",
        "timepoint",
        "date",
        "days",
        "lesion_id",
        "track_id",
        "change",
    ]
    assert list(graph.edges.columns) == [
        "patient_id", "timepoint_from", "lesion_id_from", "timepoint_to", "lesion_id_to",
        "overlap", "distance_mm", "skip", "dilation_voxels",
    ]  # fmt: skip
    assert graph.registrations[["timepoint_from", "timepoint_to"]].values.tolist() == [
        ["V1", "V2"],
        ["V2", "V3"],
        ["V3", "V4"],
    ]
    assert graph.scan_flags["registration_ok"].tolist() == [pd.NA, True, True, True]
    assert graph.scan_flags["mask_empty"].tolist() == [False] * 4
    assert set(graph.instances) == set(TIMEPOINTS)
    assert all(img.GetPixelID() == sitk.sitkUInt32 for img in graph.instances.values())
    assert "P001" in repr(graph) and "<b>LesionGraph</b>" in graph._repr_html_()


def test_transforms_to_baseline_chain_the_visits(sequence):
    data, graph, _ = sequence
    # the centroid of lesion 1 at V4, mapped to V1, lands on lesion 1's centroid at V1
    nodes = graph.nodes.set_index(["timepoint", "lesion_id"])
    ref4 = sitk.GetArrayViewFromImage(data["reference"][3])
    lid4 = int(np.bincount(sitk.GetArrayViewFromImage(graph.instances["V4"])[ref4 == 1]).argmax())
    ref1 = sitk.GetArrayViewFromImage(data["reference"][0])
    lid1 = int(np.bincount(sitk.GetArrayViewFromImage(graph.instances["V1"])[ref1 == 1]).argmax())
    cols = ["centroid_x_mm", "centroid_y_mm", "centroid_z_mm"]
    p4 = nodes.loc[("V4", lid4), cols].to_numpy(float)
    p1 = nodes.loc[("V1", lid1), cols].to_numpy(float)
    mapped = np.array(graph.transforms_to_baseline["V4"].TransformPoint(p4.tolist()))
    assert np.linalg.norm(mapped - p1) < 3.0  # mm; the lesion also shrank


def test_plot_draws_a_timeline(sequence):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from metevo.plotting.graph import plot_lesion_graph

    _, graph, _ = sequence
    ax = plot_lesion_graph(graph)
    # one line per edge, plus one thin row line per track in the track's colour
    assert len(ax.collections) == 1 and len(ax.lines) == len(graph.edges) + len(graph.tracks)
    assert ax.get_xlabel() == "days since first visit" or ax.get_xlabel() == "visit date"
    assert ax.get_legend() is not None
    with pytest.raises(ValueError, match="by must be 'date' or 'days'"):
        plot_lesion_graph(graph, ax=ax, by="week")
    plt.close("all")


def test_empty_visit_makes_every_lesion_disappear():
    data = make_sequence((0, 1), empty=(1,))
    graph = build_lesion_graph(
        data["lesion"], data["image"], liver_masks=data["liver"], timepoints=["V1", "V2"]
    )
    assert (graph.nodes["change"] == "disappeared").all() and len(graph.nodes) == 6
    assert graph.scan_flags["mask_empty"].tolist() == [False, True]
    assert graph.edges.empty


def test_single_visit_gives_lone_nodes():
    data = make_sequence((0,))
    graph = build_lesion_graph(
        data["lesion"], data["image"], liver_masks=data["liver"], timepoints=["V1"]
    )
    assert (graph.nodes["change"] == "lone").all() and graph.registrations.empty
    assert (graph.tracks["track_class"] == "single").all()


def test_missing_liver_masks_register_on_the_image_and_warn_once():
    data = make_sequence((0, 1))
    with pytest.warns(RegistrationWarning, match="no liver mask at V1, V2") as record:
        graph = build_lesion_graph(
            data["lesion"], data["image"], timepoints=["V1", "V2"], patient_id="P002"
        )
    assert len(record) == 1
    assert graph.registrations["driver"].tolist() == ["image"]
    assert graph.registrations["qc_pass"].all()
    assert len(graph.edges) == 6  # 4 persistent + the split of lesion 5


def test_match_lesions_iterative_dilation():
    a = np.zeros((10, 40, 40), np.uint32)
    b = np.zeros_like(a)
    a[3:7, 5:12, 5:12] = 1
    b[3:7, 6:13, 6:13] = 4  # overlaps lesion 1 at round 0
    a[3:7, 20:26, 20:26] = 2
    b[3:7, 28:34, 20:26] = 5  # a 2-voxel gap: the dilated lesions first touch at round 2
    a[3:7, 30:36, 33:38] = 3  # nothing near it: no edge
    touch = match_lesions(sitk.GetImageFromArray(a), sitk.GetImageFromArray(b), min_overlap=1e-3)
    assert touch[["lesion_id_from", "lesion_id_to", "dilation_voxels"]].values.tolist() == [
        [1, 4, 0],
        [2, 5, 2],
    ]
    edges = match_lesions(sitk.GetImageFromArray(a), sitk.GetImageFromArray(b))
    assert edges[["lesion_id_from", "lesion_id_to"]].values.tolist() == [[1, 4], [2, 5]]
    assert edges.loc[1, "dilation_voxels"] > 2 and edges.loc[1, "overlap"] >= 0.10
    assert edges.loc[0, "distance_mm"] == pytest.approx(math.sqrt(2))
    none = match_lesions(sitk.GetImageFromArray(a), sitk.GetImageFromArray(b), max_dilation=0)
    assert none["lesion_id_from"].tolist() == [1]
    with pytest.raises(ValueError, match="min_overlap in"):
        match_lesions(sitk.GetImageFromArray(a), sitk.GetImageFromArray(b), min_overlap=0)


def test_match_lesions_uses_the_transform():
    a = np.zeros((10, 40, 40), np.uint32)
    b = np.zeros_like(a)
    a[3:7, 5:10, 5:10] = 1
    b[3:7, 5:10, 25:30] = 2  # 20 voxels (mm) along x: out of reach without the transform
    earlier, later = sitk.GetImageFromArray(a), sitk.GetImageFromArray(b)
    assert match_lesions(earlier, later).empty
    shift = sitk.TranslationTransform(3, (-20.0, 0.0, 0.0))  # later point -> earlier point
    edges = match_lesions(earlier, later, shift)
    assert edges[["lesion_id_from", "lesion_id_to", "dilation_voxels"]].values.tolist() == [
        [1, 2, 0]
    ]
    assert edges.loc[0, "overlap"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("edges", "expected"),
    [
        ([], {("V2", 1): "lone"}),
        ([(("V1", 1), ("V2", 1))], {("V1", 1): "persistent", ("V2", 1): "disappeared"}),
        ([(("V2", 1), ("V3", 1))], {("V2", 1): "new", ("V3", 1): "persistent"}),
        (
            [(("V1", 1), ("V2", 1)), (("V1", 2), ("V2", 1)), (("V2", 1), ("V3", 1))],
            {("V2", 1): "merged"},
        ),
        (
            [(("V1", 1), ("V2", 1)), (("V2", 1), ("V3", 1)), (("V2", 1), ("V3", 2))],
            {("V2", 1): "split"},
        ),
        (
            [
                (("V1", 1), ("V2", 1)),
                (("V1", 2), ("V2", 1)),
                (("V2", 1), ("V3", 1)),
                (("V2", 1), ("V3", 2)),
            ],
            {("V2", 1): "complex"},
        ),
        ([(("V1", 1), ("V3", 1))], {("V1", 1): "persistent", ("V3", 1): "persistent"}),
    ],
)
def test_change_class_rules(edges, expected):
    nodes = sorted({n for e in edges for n in e} | set(expected))
    classes = change_classes(nodes, edges, ["V1", "V2", "V3"])
    for node, kind in expected.items():
        assert classes[node] == kind
    # first and last visits have virtual neighbours: alone there they are not new/disappeared
    assert change_classes([("V1", 9), ("V3", 9)], [], ["V1", "V2", "V3"]) == {
        ("V1", 9): "disappeared",
        ("V3", 9): "new",
    }
    assert change_classes([("V1", 9)], [], ["V1"]) == {("V1", 9): "lone"}


def test_score_graph_known_answer():
    mapping = pd.DataFrame(
        {
            "timepoint": ["V1", "V1", "V2", "V2"],
            "lesion_id": [1, 2, 1, 2],
            "reference_id": [10, 20, 10, 20],
        }
    )
    reference = pd.DataFrame(
        {
            "timepoint_from": ["V1", "V1"],
            "lesion_id_from": [10, 20],
            "timepoint_to": ["V2", "V2"],
            "lesion_id_to": [10, 20],
        }
    )
    predicted = pd.DataFrame(
        {
            "timepoint_from": ["V1", "V1"],
            "lesion_id_from": [1, 2],
            "timepoint_to": ["V2", "V2"],
            "lesion_id_to": [1, 1],
        }
    )
    s = score_graph(predicted, reference, mapping, timepoints=["V1", "V2"])
    assert (s["precision"], s["recall"], s["f1"]) == (0.5, 0.5, 0.5)
    # reference: both persistent; predicted: V2/1 merged, V2/2 new (0 predecessors); V1s persistent
    assert s["change_accuracy"] == 0.5 and s["n_scored_lesions"] == 4


def test_build_rejects_inconsistent_inputs():
    data = make_sequence((0,))
    with pytest.raises(ValueError, match="timepoints has 2 entries but lesion_masks has 1"):
        build_lesion_graph(data["lesion"], timepoints=["V1", "V2"], patient_id="P003")
    with pytest.raises(ValueError, match="no visits"):
        build_lesion_graph([], patient_id="P003")


@pytest.mark.parametrize("table", ["lesions", "lesion_edges", "registrations"])
def test_tables_follow_the_data_dictionary(sequence, table):
    from metevo.dictionary import coerce_table, validate_table

    _, graph, _ = sequence
    frame = {
        "lesions": graph.nodes,
        "lesion_edges": graph.edges,
        "registrations": graph.registrations,
    }[table]
    validate_table(coerce_table(frame, table), table)


def test_graph_stage_through_the_pipeline(mini_cohort):
    from metevo import analyze_patient, lesion_graph, lesions, open_cohort

    cohort = open_cohort(mini_cohort["manifest"], clinical=mini_cohort["clinical"])
    patient = cohort["P002"]
    result = analyze_patient(patient, stages=["graph"])
    assert result.ok, result.failures
    table = result.tables["lesions"]
    assert table["timepoint"].tolist() == ["V0", "V1", "V2"]
    assert table["change"].tolist() == ["persistent"] * 3 and table["track_id"].nunique() == 1
    # one growing ball of radius 2 + visit voxels on a 2 x 2 x 3 mm grid
    assert table["n_voxels"].tolist() == [
        mini_cohort["expected"][("P002", f"V{v}")] for v in range(3)
    ]
    assert len(result.tables["lesion_edges"]) == 2 and len(result.tables["registrations"]) == 2
    scans = result.tables["scans"]
    assert scans["registration_ok"].tolist()[1:] == [True, True] and pd.isna(
        scans["registration_ok"].iloc[0]
    )
    assert set(result.objects["instances"]) == {"V0", "V1", "V2"}
    assert isinstance(result.objects["graph"], LesionGraph)
    direct = lesions(patient)
    pd.testing.assert_frame_equal(direct, table)
    assert lesion_graph(patient, max_skip=0).edges["skip"].sum() == 0


def test_accuracy_on_the_tiny_synthetic_cohort(tiny_cohort, tiny_analysis):
    """Edge F1 >= 0.95 against the synthetic ground truth (motion, warp, merges, splits, skips)."""
    from metevo import open_cohort
    from metevo.evaluation import pooled_scores, score_synthetic
    from metevo.tracking import label_lesions

    failures = tiny_analysis.failures
    assert not (failures["stage"] == "graph").any(), failures
    cohort = open_cohort(tiny_cohort.manifest, clinical=tiny_cohort.clinical)
    edges = tiny_analysis.read("lesion_edges")
    table = tiny_analysis.read("lesions")
    scores = []
    for patient in cohort:
        pid = patient.patient_id
        # the analysis' instance labels, recomputed (labelling is deterministic and cheap)
        instances = {
            s.timepoint: label_lesions(s.lesion_mask(), s.liver_mask()) for s in patient.scans
        }
        for tp, img in instances.items():
            rows = table[(table["patient_id"] == pid) & (table["timepoint"] == tp)]
            counts = np.bincount(sitk.GetArrayFromImage(img).ravel())[1:]
            assert sorted(rows["n_voxels"]) == sorted(counts[counts > 0].tolist())
        scores.append(
            score_synthetic(
                tiny_cohort.ground_truth,
                pid,
                edges[edges["patient_id"] == pid],
                instances,
                timepoints=[s.timepoint for s in patient.scans],
            )
        )
    pooled = pooled_scores(scores)
    assert pooled["n_reference_edges"] > 50
    assert pooled["f1"] >= 0.95, (pooled, scores)
    assert pooled["change_accuracy"] >= 0.90, (pooled, scores)


def test_cli_lesion_graph(mini_cohort, tmp_path):
    from typer.testing import CliRunner

    from metevo.cli import app

    runner = CliRunner()
    res = runner.invoke(
        app, ["lesion-graph", str(mini_cohort["manifest"]), "-p", "P001", "-o", str(tmp_path)]
    )
    assert res.exit_code == 0, res.output
    assert "LesionGraph(patient_id='P001', visits=3, lesions=3" in res.output
    assert pd.read_parquet(tmp_path / "lesion_edges.parquet").shape[0] == 2
    assert (tmp_path / "lesion_graph_P001.png").stat().st_size > 0
    bad = runner.invoke(app, ["lesion-graph", str(mini_cohort["manifest"]), "-p", "P999"])
    assert bad.exit_code == 2 and "patient 'P999' is not in" in bad.output
