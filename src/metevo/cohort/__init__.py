"""The cohort: what comes in.

In: a manifest (one row per scan: image, lesion mask, liver mask paths and dates), optional
clinical and events tables. Out: validated :class:`Cohort` / :class:`Patient` / :class:`Scan`
objects (paths and options, no pixels), image and mask I/O with geometry checks (``io``), the
per-patient pixel cache :class:`ScanReads`, and the ``scans`` stage (``scans.parquet``), and the record of what an analysis folder was made
from (``inputs.json``: manifest and options).
"""

from metevo.cohort import io
from metevo.cohort._cohort import Cohort, Patient, Scan, ScanReads, open_cohort
from metevo.cohort._inputs import record_inputs, recorded_cohort, recorded_inputs
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
    "record_inputs",
    "recorded_cohort",
    "recorded_inputs",
    "scans_stage",
    "scans_table",
    "validate_cohort",
]
