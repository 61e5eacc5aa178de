"""Evaluation: pipeline outputs and ground truth in, scores out.

Scoring of the lesion graph (matches, change classes) against the synthetic cohort's truth.
"""


__all__ = []
