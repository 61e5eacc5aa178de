"""Datasets: a seed in, a synthetic cohort with ground truth out.

Synthetic liver CT with metastases (anatomy, kinetics, cohort writer, ground truth), image-free
trajectories for pattern work, and the bundled demo cohort loader.
"""

from metevo.datasets.datasets import (
    SyntheticCohort,
    load_demo_cohort,
    make_synthetic_cohort,
    make_synthetic_trajectories,
)

__all__ = [
    "SyntheticCohort",
    "load_demo_cohort",
    "make_synthetic_cohort",
    "make_synthetic_trajectories",
]
