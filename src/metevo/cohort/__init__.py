"""The cohort: what comes in.

In: a manifest (one row per scan: image, lesion mask, liver mask paths and dates), optional
clinical and events tables. Out: validated :class:`Cohort` / :class:`Patient` / :class:`Scan`
objects (paths and options, no pixels), image and mask I/O with geometry checks (``io``), the
per-patient pixel cache :class:`ScanReads`, and the ``scans`` stage (``scans.parquet``).
"""

from metevo.cohort import io
from metevo.cohort._cohort import Cohort, Patient, Scan, ScanReads, open_cohort
from metevo.cohort._options import CohortOptions
from metevo.cohort._scans import scans_stage, scans_table
from metevo.cohort._validation import validate_cohort

__all__ = [
    "Cohort",
    "CohortOptions",
    "Patient",
    "Scan",
    "ScanReads",
    "io",
    "open_cohort",
    "scans_stage",
    "scans_table",
    "validate_cohort",
]
