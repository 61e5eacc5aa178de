"""metevo: longitudinal CT analysis of colorectal liver metastases.

Lesion graph across visits, size/radiomic/count trajectories, RECIST 1.1, and evolution patterns
related to survival and response, dynamic prediction at every visit and imaging schedules per
pattern. The public API is re-exported here; see ``docs/`` and the
notebooks for a tour.
"""

from metevo import datasets
from metevo._version import __version__
from metevo.cohort import Cohort, CohortOptions, Patient, Scan, open_cohort, scans_table
from metevo.datasets import (
    SyntheticCohort,
    load_demo_cohort,
    make_synthetic_cohort,
    make_synthetic_trajectories,
)
from metevo.export import export_dicom
from metevo.followup import AdaptiveSchedule, follow_up, predict
from metevo.patterns import (
    EvolutionPatterns,
    LatentClassTrajectories,
    evolution_patterns,
    latent_class_trajectories,
    lesion_pattern_mix,
    lesion_patterns,
)
from metevo.radiomics import RadiomicsSettings, feature_catalog, radiomic_features
from metevo.response import (
    best_overall_response,
    fit_growth_kinetics,
    imaging_pfs,
    recist_from_measurements,
    recist_from_sdtm,
    to_sdtm,
)
from metevo.runner import (
    AnalysisResult,
    PatientResult,
    analyze,
    analyze_patient,
    recist,
    run_patterns,
    trajectories,
)
from metevo.survival import (
    cross_validated_patterns,
    landmark_pattern_survival,
    pattern_survival,
    response_association,
    time_varying_cox,
)
from metevo.tracking import LesionGraph, lesion_graph, lesions
from metevo.viewer import view

__all__ = [
    "AdaptiveSchedule",
    "AnalysisResult",
    "Cohort",
    "CohortOptions",
    "EvolutionPatterns",
    "LatentClassTrajectories",
    "LesionGraph",
    "Patient",
    "PatientResult",
    "RadiomicsSettings",
    "Scan",
    "SyntheticCohort",
    "__version__",
    "analyze",
    "analyze_patient",
    "best_overall_response",
    "cross_validated_patterns",
    "datasets",
    "evolution_patterns",
    "export_dicom",
    "feature_catalog",
    "fit_growth_kinetics",
    "follow_up",
    "imaging_pfs",
    "landmark_pattern_survival",
    "latent_class_trajectories",
    "lesion_graph",
    "lesion_pattern_mix",
    "lesion_patterns",
    "lesions",
    "load_demo_cohort",
    "make_synthetic_cohort",
    "make_synthetic_trajectories",
    "open_cohort",
    "pattern_survival",
    "predict",
    "radiomic_features",
    "recist",
    "recist_from_measurements",
    "recist_from_sdtm",
    "response_association",
    "run_patterns",
    "scans_table",
    "time_varying_cox",
    "to_sdtm",
    "trajectories",
    "view",
]
