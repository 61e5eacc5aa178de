"""metevo: longitudinal CT analysis of colorectal liver metastases.

Lesion graph across visits, size/radiomic/count trajectories, RECIST 1.1, and evolution patterns
related to survival and response. The public API is re-exported here; see ``docs/`` and the
notebooks for a tour.
"""

from metevo._version import __version__
from metevo.cohort import Cohort, CohortOptions, Patient, Scan, open_cohort
from metevo.pipeline import AnalysisResult, PatientResult, analyze, analyze_patient
from metevo.radiomics import RadiomicsSettings, feature_catalog, radiomic_features
from metevo.scans import scans_table

__all__ = [
    "AnalysisResult",
    "Cohort",
    "CohortOptions",
    "Patient",
    "PatientResult",
    "RadiomicsSettings",
    "Scan",
    "__version__",
    "analyze",
    "analyze_patient",
    "feature_catalog",
    "open_cohort",
    "radiomic_features",
    "scans_table",
]
