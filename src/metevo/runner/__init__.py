"""Runner: a cohort in, an analysis folder out.

:func:`analyze_patient` runs the stages of :data:`STAGES` (imported stage functions, in order)
on one patient; :func:`analyze` maps it over a cohort (one process per patient, locally or on
Dask), writes each patient's shard as it finishes, skips the patients an earlier run into the
same folder finished, and gathers one Parquet file per table plus ``failures.parquet``.
:func:`recist` and :func:`trajectories` run the pipeline for one patient and return one table;
:func:`run_patterns` runs the cohort-level patterns step and draws its figures; :mod:`.demo`
runs the whole demo (synthetic cohort, analysis, patterns, figures, SDTM export).
"""

from metevo.runner._patient import recist, trajectories
from metevo.runner._patterns import run_patterns
from metevo.runner._run import AnalysisResult, analyze
from metevo.runner.pipeline import STAGES, PatientResult, analyze_patient

__all__ = [
    "AnalysisResult",
    "PatientResult",
    "STAGES",
    "analyze",
    "analyze_patient",
    "recist",
    "run_patterns",
    "trajectories",
]
