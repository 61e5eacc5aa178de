"""metevo: longitudinal CT analysis of colorectal liver metastases.

Lesion graph across visits, size/radiomic/count trajectories, RECIST 1.1, and evolution patterns
related to survival and response, dynamic prediction at every visit and imaging schedules per
pattern. The public API is re-exported here; see ``docs/`` and the
notebooks for a tour.

The re-exports are lazy (PEP 562): ``import metevo`` costs only this file, and each name imports
its subpackage on first use, so ``metevo --help`` and a rerun with nothing to do start in well
under a second instead of importing numba, scikit-learn and the datasets up front. The
``TYPE_CHECKING`` block below lists the same names for IDEs and type checkers;
``tests/test_architecture.py`` checks that it, ``_EXPORTS`` and ``__all__`` agree.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from metevo._version import __version__

if TYPE_CHECKING:
    from metevo import datasets
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

#: public name -> the module it is re-exported from (imported on first access)
_EXPORTS = {
    "AdaptiveSchedule": "metevo.followup",
    "AnalysisResult": "metevo.runner",
    "Cohort": "metevo.cohort",
    "CohortOptions": "metevo.cohort",
    "EvolutionPatterns": "metevo.patterns",
    "LatentClassTrajectories": "metevo.patterns",
    "LesionGraph": "metevo.tracking",
    "Patient": "metevo.cohort",
    "PatientResult": "metevo.runner",
    "RadiomicsSettings": "metevo.radiomics",
    "Scan": "metevo.cohort",
    "SyntheticCohort": "metevo.datasets",
    "analyze": "metevo.runner",
    "analyze_patient": "metevo.runner",
    "best_overall_response": "metevo.response",
    "cross_validated_patterns": "metevo.survival",
    "datasets": "metevo.datasets",
    "evolution_patterns": "metevo.patterns",
    "export_dicom": "metevo.export",
    "feature_catalog": "metevo.radiomics",
    "fit_growth_kinetics": "metevo.response",
    "follow_up": "metevo.followup",
    "imaging_pfs": "metevo.response",
    "landmark_pattern_survival": "metevo.survival",
    "latent_class_trajectories": "metevo.patterns",
    "lesion_graph": "metevo.tracking",
    "lesion_pattern_mix": "metevo.patterns",
    "lesion_patterns": "metevo.patterns",
    "lesions": "metevo.tracking",
    "load_demo_cohort": "metevo.datasets",
    "make_synthetic_cohort": "metevo.datasets",
    "make_synthetic_trajectories": "metevo.datasets",
    "open_cohort": "metevo.cohort",
    "pattern_survival": "metevo.survival",
    "predict": "metevo.followup",
    "radiomic_features": "metevo.radiomics",
    "recist": "metevo.runner",
    "recist_from_measurements": "metevo.response",
    "recist_from_sdtm": "metevo.response",
    "response_association": "metevo.survival",
    "run_patterns": "metevo.runner",
    "scans_table": "metevo.cohort",
    "time_varying_cox": "metevo.survival",
    "to_sdtm": "metevo.response",
    "trajectories": "metevo.runner",
    "view": "metevo.viewer",
}

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


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(_EXPORTS[name])
    value = module if module.__name__ == f"{__name__}.{name}" else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
