"""Evaluation: pipeline outputs and ground truth in, scores out.

Scoring of the lesion graph (matches, change classes) against the synthetic cohort's truth.
"""

from metevo.evaluation._graph_scores import (
    map_to_reference,
    pooled_scores,
    score_graph,
    score_synthetic,
)

__all__ = [
    "map_to_reference",
    "pooled_scores",
    "score_graph",
    "score_synthetic",
]
