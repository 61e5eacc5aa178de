"""Lesion tracking: masks in, a lesion graph out.

In: a :class:`~metevo.cohort.Patient` (its scans' lesion and liver masks). Out: lesion instances
and their measurements at every visit (``lesions``), inter-visit registrations
(``registrations``), lesion matches (``lesion_edges``) and the :class:`LesionGraph` with each
lesion's track and change class; the ``graph`` stage of the pipeline.
"""

from metevo.tracking._affine import affine_columns, affine_from_row, affine_matrix_from_row
from metevo.tracking._build import build_lesion_graph, graph_stage, lesion_graph, lesions
from metevo.tracking._changes import CHANGES, TRACK_CLASSES, change_classes, edge_pairs
from metevo.tracking._colors import track_color, track_palette
from metevo.tracking._graph import LesionGraph
from metevo.tracking._lesions import label_lesions, measure_lesions
from metevo.tracking._match import match_lesions
from metevo.tracking._positions import POSITION_COLUMNS, lesion_positions
from metevo.tracking._registration import Registration, compose, register_pair, resample_labels

__all__ = [
    "CHANGES",
    "LesionGraph",
    "POSITION_COLUMNS",
    "Registration",
    "TRACK_CLASSES",
    "affine_columns",
    "affine_from_row",
    "affine_matrix_from_row",
    "build_lesion_graph",
    "change_classes",
    "compose",
    "edge_pairs",
    "graph_stage",
    "label_lesions",
    "lesion_graph",
    "lesion_positions",
    "lesions",
    "match_lesions",
    "measure_lesions",
    "register_pair",
    "resample_labels",
    "track_color",
    "track_palette",
]
