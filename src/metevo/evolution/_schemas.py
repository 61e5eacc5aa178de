"""Table Schemas of ``trajectories`` and ``patient_trajectories`` (their columns depend on the
radiomic features carried along); ``write_schemas`` refreshes ``data_dictionary/``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from metevo.columns import PatientTrajectories as PT
from metevo.evolution._trajectories import (
    BURDEN_COLUMNS,
    DEFAULT_FEATURES,
    SIZE_COLUMNS,
    TEXTURE_SUMMARY_FEATURES,
)

__all__ = ["trajectory_schemas", "write_schemas"]


# --------------------------------------------------------------------------- data dictionary

_PATIENT_ID = ("patient_id", "string", "", "Patient identifier.", True)
#: the visit's key and dates, in both tables
_VISIT_FIELDS = [
    ("timepoint", "string", "", "Visit label.", True),
    ("date", "date", "", "Scan date.", True),
    ("days", "integer", "day", "Days since the patient's first analysed scan.", True),
    ("study_day", "integer", "day", "Days since treatment_start (empty when unknown).", False),
]

_STATIC_LESION_FIELDS = [
    _PATIENT_ID,
    ("track_id", "integer", "", "Lesion track: connected group of the patient's lesion graph (lesions linked across visits, merges and splits included).", True),
    *_VISIT_FIELDS,
    ("present", "boolean", "", "Whether the track has at least one lesion at this visit (false: vanished, resected or not seen; sizes are then 0).", True),
    ("n_lesions", "integer", "", "Number of lesions of the track at this visit (more than one after a split or before a merge).", True),
    ("change", "string", "", "Change class of the track's lesion(s) at this visit from the lesion graph; `complex` when its lesions differ; `absent` when the track has no lesion at this visit.", True),
    ("volume_ml", "number", "ml", "Sum of the volumes of the track's lesions at this visit (0 when absent).", True),
    ("axial_ld_mm", "number", "mm", "Sum of the RECIST axial longest diameters of the track's lesions at this visit (0 when absent).", True),
    ("axial_sa_mm", "number", "mm", "Sum of the axial short axes (perpendicular to the longest diameter) of the track's lesions (0 when absent).", True),
    ("mean_hu", "number", "HU", "Volume-weighted mean density of the track's lesions (empty when absent).", False),
    ("liver_pos_x", "number", "1", "Centroid of the track's largest lesion across the liver's extent along the patient's right-to-left axis (0 = rightmost liver point, 1 = leftmost; LPS x).", False),
    ("liver_pos_y", "number", "1", "Same along the anterior-to-posterior axis (0 = most anterior liver point).", False),
    ("liver_pos_z", "number", "1", "Same along the inferior-to-superior axis (0 = most caudal liver point).", False),
    ("liver_side", "string", "", "Side of the liver: right or left of an approximate Cantlie plane (sagittal plane leaving 60 % of the liver volume on the right).", False),
    ("depth_mm", "number", "mm", "Distance from the lesion centroid to the liver surface (liver and lesion masks united).", False),
]

_STATIC_PATIENT_FIELDS = [
    _PATIENT_ID,
    *_VISIT_FIELDS,
    ("is_baseline", "boolean", "", "Whether this visit is the patient's baseline.", True),
    ("n_lesions", "integer", "", "Number of lesions (graph nodes) at this visit.", True),
    ("n_new_lesions", "integer", "", "Lesions at this visit with no predecessor in the lesion graph (fragments of a split and reappearing lesions are not new); 0 at the first visit.", True),
    ("n_disappeared_lesions", "integer", "", "Lesions of the previous analysed visit with no edge to any lesion of this visit (vanished, resected or unseen here; a later reappearance does not undo the count); 0 at the first visit.", True),
    ("total_volume_ml", "number", "ml", "Sum of all lesion volumes at this visit.", True),
    ("sum_ld_mm", "number", "mm", "Sum of the axial longest diameters of all lesions at this visit.", True),
    ("target_sum_mm", "number", "mm", "RECIST 1.1 sum of target lesion diameters at this visit (recist table; over the remaining targets after a resection; empty when not evaluable or when the RECIST stage did not run).", False),
    ("liver_volume_ml", "number", "ml", "Liver volume including lesions (scans.liver_total_volume_ml).", False),
    ("tumour_burden_fraction", "number", "1", "total_volume_ml / liver_volume_ml: share of the liver occupied by tumour (resection must leave at least 30 % of the parenchyma).", False),
    ("mean_hu_weighted", "number", "HU", "Volume-weighted mean density of all lesions.", False),
    ("main_volume_ml", "number", "ml", "Volume of the main lesion's track (the largest lesion at baseline, followed through the graph; 0 once it vanished).", False),
    ("main_axial_ld_mm", "number", "mm", "Axial longest diameter (summed over fragments) of the main lesion's track.", False),
]


def trajectory_schemas(features: Sequence[str] = DEFAULT_FEATURES) -> dict[str, dict]:
    """Table Schemas of ``trajectories`` and ``patient_trajectories`` for ``features``.

    Radiomic fields take their description and unit from :func:`metevo.feature_catalog`, so the
    dictionary and the engine cannot drift; ``tests/test_trajectories.py`` checks that the
    committed schema files equal this output.
    """
    from metevo.radiomics import feature_catalog

    catalog = feature_catalog().set_index("feature")

    def feat(name: str, prefix: str, text: str) -> dict:
        row = catalog.loc[name]
        return {
            "name": f"{prefix}{name}",
            "type": "number",
            "unit": str(row["unit"]),
            "description": f"{text}{row['description']} [IBSI {row['ibsi_code']}]",
        }

    def field(name, kind, unit, desc, required):
        out = {"name": name, "type": kind, "description": desc}
        if unit:
            out["unit"] = unit
        if required:
            out["constraints"] = {"required": True}
        return out

    lesion_fields = [field(*f) for f in _STATIC_LESION_FIELDS]
    lesion_fields += [feat(f, "", "Largest lesion of the track at this visit: ") for f in features]
    units = {"volume_ml": "ml", "axial_ld_mm": "mm", "axial_sa_mm": "mm", "mean_hu": "HU"}
    for col in (*SIZE_COLUMNS, "mean_hu", *features):
        unit = units.get(col) or str(catalog.loc[col]["unit"])
        lesion_fields.append(
            {"name": f"delta_{col}", "type": "number", "unit": unit,
             "description": f"{col} minus its value at the track's reference visit (the patient's baseline when the track is present there, else its first visit); empty for single-visit patients."}
        )
        lesion_fields.append(
            {"name": f"rel_change_{col}", "type": "number", "unit": "1",
             "description": f"{col} / reference value - 1 (fraction; empty when the reference is 0 or for single-visit patients)."}
        )
    patient_fields = [field(*f) for f in _STATIC_PATIENT_FIELDS]
    patient_fields[-2:-2] = [
        feat(f, "vw_", "Volume-weighted mean over all lesions at this visit of: ")
        for f in TEXTURE_SUMMARY_FEATURES
    ]
    patient_fields += [feat(f, "main_", "Main lesion (largest of its track at this visit): ") for f in features]
    for col in BURDEN_COLUMNS:
        stem = col.removesuffix("_ml").removesuffix("_mm")
        patient_fields.append(
            {"name": f"{stem}_rel_baseline", "type": "number", "unit": "1",
             "description": f"{col} / its baseline value - 1 (fraction; empty when the baseline value is 0 or missing); after a resection or ablation over the remaining disease (from {PT.RESECTION_ADJUSTED[col]})."}
        )
        patient_fields.append(
            {"name": f"{stem}_rel_nadir", "type": "number", "unit": "1",
             "description": f"{col} / the smallest value of the earlier visits from baseline on (nadir) - 1; empty at and before baseline or when the nadir is 0; from {PT.RESECTION_ADJUSTED[col]} (the resection-adjusted values)."}
        )
    patient_fields.append(field(
        "post_resection", "boolean", "",
        "Whether this visit follows a resection or ablation: after the patient's first "
        "resection/ablation event (events table), or from the first visit where RECIST removed a "
        "treated lesion (recist_lesions.state removed). The burden trajectory is then read from the "
        "*_adjusted columns.", True,
    ))
    adjusted_units = {"target_sum_mm": "mm", "total_volume_ml": "ml", "sum_ld_mm": "mm", "n_lesions": ""}
    for col, adjusted in PT.RESECTION_ADJUSTED.items():
        patient_fields.append(field(
            adjusted, "number", adjusted_units[col],
            f"{col} with the lesions removed by a resection or ablation taken out of its baseline, "
            f"as RECIST 1.1 does: {col} x B / (B - R), B the baseline {col}, R the baseline share of "
            "the baseline lesions removed by this visit (recist_lesions state removed), so that its "
            "ratio to B is the ratio to the remaining baseline disease (for the target sum, RECIST's "
            f"pct_change_baseline). Equal to {col} before any removal; empty when nothing of the "
            "baseline is left. Evolution patterns and the *_rel_baseline / *_rel_nadir columns use it.",
            False,
        ))
    lesion_fields.append(field(
        "resected", "boolean", "",
        "Whether the track's baseline lesion was removed by a resection or ablation by this visit "
        "(recist_lesions state removed): its sizes are then 0 (present false) and lesion-level "
        "patterns and the lesion spread end its course before this visit.", True,
    ))
    return {
        "trajectories": {
            "name": "trajectories",
            "title": "Lesion-level trajectories",
            "description": "One row per lesion track x analysed visit, from the track's first appearance to the patient's last visit: sizes summed over the track's lesions, density, position, radiomic features of its largest lesion, and changes from the track's reference visit. Written by `metevo analyze` (stage trajectories); `metevo.trajectories(patient)`.",
            "primaryKey": ["patient_id", "track_id", "timepoint"],
            "fields": lesion_fields,
        },
        "patient_trajectories": {
            "name": "patient_trajectories",
            "title": "Patient-level trajectories",
            "description": "One row per patient x analysed visit: lesion counts (all, new, disappeared), tumour burden (volume, sum of diameters, RECIST target sum, fraction of the liver), volume-weighted density and texture, the main lesion's features, and relative changes from baseline and nadir. `metevo.trajectories(patient, level='patient')`.",
            "primaryKey": ["patient_id", "timepoint"],
            "fields": patient_fields,
        },
    }


def write_schemas(folder: str | Path | None = None) -> list[Path]:
    """Write the trajectory schemas into the data dictionary folder."""
    import json

    from metevo.dictionary import dictionary_dir

    folder = Path(folder) if folder is not None else dictionary_dir()
    paths = []
    for name, schema in trajectory_schemas().items():
        path = folder / f"{name}.schema.json"
        path.write_text(json.dumps(schema, indent=2) + "\n", encoding="utf-8")
        paths.append(path)
    return paths
