"""Lesion tracking: masks in, a lesion graph out.

In: a :class:`~metevo.cohort.Patient` (its scans' lesion and liver masks). Out: lesion instances
and their measurements at every visit (``lesions``), inter-visit registrations
(``registrations``), lesion matches (``lesion_edges``) and the :class:`LesionGraph` with each
lesion's track and change class; the ``graph`` stage of the pipeline.
"""

from metevo.tracking._graph import (
    LesionGraph,
    build_lesion_graph,
    change_classes,
    graph_stage,
    lesion_graph,
    match_lesions,
)
from metevo.tracking._lesions import label_lesions, lesions, measure_lesions
from metevo.tracking._registration import Registration, compose, register_pair, resample_labels

__all__ = ["LesionGraph", "Registration", "build_lesion_graph", "change_classes", "compose", "graph_stage", "label_lesions", "lesion_graph", "lesions", "match_lesions", "measure_lesions", "register_pair", "resample_labels"]
