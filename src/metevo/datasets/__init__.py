"""Datasets: a seed in, a synthetic cohort with ground truth out.

Synthetic liver CT with metastases (anatomy, kinetics, cohort writer, ground truth), image-free
trajectories for pattern work, the bundled demo cohort loader, and a writer that turns a cohort
into DICOM CT series + DICOM-SEG (``write_dicom_cohort``).
"""

from metevo.datasets._dicom_cohort import write_dicom_cohort
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
    "write_dicom_cohort",
]
