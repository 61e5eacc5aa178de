"""Runner: a cohort in, an analysis folder out.

:func:`analyze_patient` runs the stages of :data:`STAGES` in order on one patient;
:func:`analyze` maps it over a cohort (local process pool or Dask), writes shards and gathers one
Parquet file per table plus ``failures.parquet``. :mod:`.demo` runs the whole demo.
"""

from metevo.runner.pipeline import STAGES, AnalysisResult, PatientResult, analyze, analyze_patient

__all__ = ["AnalysisResult", "PatientResult", "STAGES", "analyze", "analyze_patient"]
