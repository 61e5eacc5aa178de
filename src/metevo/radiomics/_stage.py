"""The ``radiomics`` pipeline stage and the data dictionary schema of ``radiomics.parquet``."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd

from metevo import columns as C
from metevo.exceptions import MetevoError
from metevo.radiomics._catalog import feature_catalog, feature_names
from metevo.radiomics._engine import NOTE, radiomic_features
from metevo.radiomics._settings import RadiomicsSettings, check_settings

__all__ = ["TABLE", "empty_table", "radiomics_schema", "radiomics_stage", "write_schema"]

TABLE = "radiomics"
KEYS = C.Radiomics.KEYS


def _with_keys(table: pd.DataFrame, patient_id: str, timepoint: str) -> pd.DataFrame:
    keys = pd.DataFrame(
        {
            C.PATIENT_ID: pd.Series([patient_id] * len(table), dtype="string"),
            C.TIMEPOINT: pd.Series([timepoint] * len(table), dtype="string"),
        },
        index=table.index,
    )
    return pd.concat([keys, table], axis=1)


def empty_table(names: list[str] | None = None) -> pd.DataFrame:
    """A ``radiomics`` table with no rows and the right columns (``names``: the selected
    feature columns, default all) and dtypes."""
    names = feature_names() if names is None else list(names)
    features = pd.DataFrame(np.zeros((0, len(names))), columns=names)
    table = pd.concat(
        [
            pd.DataFrame({C.LESION_ID: pd.Series(dtype="int64")}),
            features,
            pd.DataFrame({NOTE: pd.Series(dtype="string")}),
        ],
        axis=1,
    )
    return _with_keys(table, "", "")


def radiomics_stage(patient: object, result: object, **options: object) -> None:
    """Pipeline stage: radiomic features of every lesion instance at every visit.

    Reads ``result.objects["instances"]`` (``{timepoint: SimpleITK.Image}`` UInt32 lesion
    labels on each scan's grid, from the lesions stage) and each scan's image (``result.reads``);
    adds ``result.tables["radiomics"]``: one row per lesion per visit with ``patient_id``,
    ``timepoint``, ``lesion_id``, the feature columns of :func:`metevo.feature_catalog` and
    ``radiomics_note``.

    Parameters
    ----------
    patient : metevo.cohort.Patient
    result : metevo.runner.PatientResult
    **options
        Passed to :func:`metevo.radiomic_features` (``settings="ct_default"``, ``bin_width``...).

    Raises
    ------
    metevo.exceptions.MetevoError
        The lesions stage's instances are missing.
    """
    instances = result.objects.get("instances")
    if instances is None:
        raise MetevoError(
            f"{patient.patient_id}: the radiomics stage needs result.objects['instances'] "
            "(lesion instance labels per timepoint) from the lesions stage, found none. Run the "
            "lesions stage before the radiomics stage (pipeline.STAGES order)."
        )
    from metevo.cohort._cohort import ScanReads

    reads = ScanReads.of(result)
    parts = []
    order = [scan.timepoint for scan in patient.scans]
    timepoints = [t for t in order if t in instances]
    timepoints += sorted(str(t) for t in instances if t not in order)
    for timepoint in timepoints:
        labels = instances[timepoint]
        scan = patient[timepoint]
        table = radiomic_features(
            reads.image(scan), labels, context=f"{patient.patient_id} {timepoint}", **options
        )
        parts.append(_with_keys(table, patient.patient_id, timepoint))
    parts = [p for p in parts if len(p)]
    if parts:
        out = pd.concat(parts, ignore_index=True)
    else:
        fields = {f.name for f in dataclasses.fields(RadiomicsSettings)}
        overrides = {k: v for k, v in options.items() if k in fields}
        selected = check_settings(options.get("settings"), **overrides).selected()
        out = empty_table(list(selected))
    result.tables[TABLE] = out


def radiomics_schema() -> dict:
    """Frictionless Table Schema of ``radiomics.parquet``, generated from the feature catalogue."""
    fields = [
        {
            "name": C.PATIENT_ID,
            "type": "string",
            "description": "Patient identifier, as in the manifest.",
            "constraints": {"required": True},
        },
        {
            "name": C.TIMEPOINT,
            "type": "string",
            "description": "Visit label, as in the manifest.",
            "constraints": {"required": True},
        },
        {
            "name": C.LESION_ID,
            "type": "integer",
            "description": "Lesion instance label in the scan's instance mask (lesions stage).",
            "constraints": {"required": True},
        },
    ]
    for row in feature_catalog().itertuples(index=False):
        code = f"IBSI {row.ibsi_code}" + (
            f", aggregation {row.ibsi_aggregation}" if row.ibsi_aggregation else ""
        )
        fields.append(
            {
                "name": row.feature,
                "type": "number",
                "unit": row.unit,
                "description": f"{row.description} [{row.family}; {code}]",
                "constraints": {"required": False},
            }
        )
    fields.append(
        {
            "name": NOTE,
            "type": "string",
            "description": "Why features of this lesion are NaN or how the lesion was treated "
            "(tiny lesion, constant intensity, outside the re-segmentation range, touches the "
            "scan border); empty when there is nothing to say.",
            "constraints": {"required": False},
        }
    )
    return {
        "name": TABLE,
        "title": "IBSI radiomic features per lesion and visit",
        "description": "One row per lesion instance per visit: IBSI-1 features (morphology, "
        "local intensity, intensity statistics, intensity histogram, intensity-volume "
        "histogram, GLCM and GLRLM 3D averaged and merged, GLSZM, GLDZM, NGTDM, NGLDM 3D) "
        "computed by metevo.radiomic_features with the pipeline's radiomics settings "
        "(default preset ct_default). Generated from metevo.feature_catalog().",
        "primaryKey": list(KEYS),
        "fields": fields,
    }


def write_schema(directory: str | Path = "data_dictionary") -> Path:
    """Write ``radiomics.schema.json`` into ``directory`` and return its path."""
    path = Path(directory) / f"{TABLE}.schema.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(radiomics_schema(), indent=2, ensure_ascii=False) + "\n")
    return path


if __name__ == "__main__":  # pragma: no cover
    print(write_schema())
