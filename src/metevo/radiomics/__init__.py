"""IBSI-1 radiomics per lesion: :func:`radiomic_features`, :func:`feature_catalog`, the
``radiomics`` pipeline stage and the data dictionary schema of ``radiomics.parquet``."""

from metevo.radiomics._catalog import feature_catalog
from metevo.radiomics._engine import radiomic_features
from metevo.radiomics._settings import PRESETS, RadiomicsSettings
from metevo.radiomics._stage import radiomics_schema, radiomics_stage, write_schema

__all__ = [
    "PRESETS",
    "RadiomicsSettings",
    "feature_catalog",
    "radiomic_features",
    "radiomics_schema",
    "radiomics_stage",
    "write_schema",
]
