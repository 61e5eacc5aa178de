"""Size, radiomic and count trajectories at lesion-track and patient level.

``metevo.trajectories(patient)`` is the API the product is named for. It works over the tables of
the earlier stages (``lesions``, ``lesion_edges``, ``scans``, ``recist``, ``radiomics``) and
returns tidy tables:

**Lesion level** (``trajectories.parquet``): one row per lesion *track* × analysed visit. A track
is a connected group of the lesion graph (``track_id``). When a track holds several lesions at a
visit (it split, or lesions merged into it), its sizes are **summed over the group's lesions at
that visit** (``volume_ml``, ``axial_ld_mm``, ``axial_sa_mm``), its density is the
volume-weighted mean HU, and its radiomic features and position are those of its **largest
lesion** at that visit; ``n_lesions`` says how many lesions the track holds. Rows start at the
track's first appearance and continue to the patient's last analysed visit: a visit where the
track has no lesion (vanished, resected, or missed by the mask and seen again later) has sizes
0 (not missing) and ``present`` false. Visits without a scan have no row (nothing is invented).
Deltas are taken from the track's reference visit (the patient's baseline when the track is
present there, else its first visit): ``delta_<size>`` (absolute) and ``rel_change_<size>``
(``value / reference - 1``). They are NaN for a patient with a single visit (no follow-up).

**Patient level** (``patient_trajectories.parquet``): one row per analysed visit with counts
(``n_lesions``, ``n_new_lesions``: lesions without any predecessor in the graph, the first visit
excluded; ``n_disappeared_lesions``: lesions of the previous visit with no edge to this visit),
burden (``total_volume_ml``, ``sum_ld_mm``, ``target_sum_mm`` from RECIST, ``liver_volume_ml``
including lesions, ``tumour_burden_fraction``), volume-weighted density and texture
(``mean_hu_weighted``, ``vw_<feature>``), the **main lesion** (largest at baseline, followed through
its track: ``main_volume_ml``, ``main_axial_ld_mm``, ``main_<feature>``), and relative changes from
baseline and from the nadir so far (``<burden>_rel_baseline``, ``<burden>_rel_nadir``).

**Lesion position** (added to the ``lesions`` table and carried into the trajectories): each
lesion's centroid in the liver's frame (``liver_pos_x``/``_y``/``_z``: 0–1 across the liver's
extent along the patient's right→left, anterior→posterior and inferior→superior axes), its side
(``liver_side``: right or left of an approximate Cantlie plane, placed so that 60 % of the liver
volume lies on the right, the usual right-lobe share) and ``depth_mm``, the distance from the
lesion's centroid to the liver surface (liver and lesion masks united).

Examples
--------
>>> import metevo
>>> demo = metevo.datasets.load_demo_cohort()                                 # doctest: +SKIP
>>> cohort = metevo.open_cohort(demo.manifest, clinical=demo.clinical, events=demo.events)  # doctest: +SKIP
>>> metevo.trajectories(cohort[cohort.patient_ids[0]])                        # doctest: +SKIP
>>> metevo.trajectories(cohort[cohort.patient_ids[0]], level="patient")       # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk

from metevo.cohort import ScanReads

__all__ = [
    "DEFAULT_FEATURES",
    "TEXTURE_SUMMARY_FEATURES",
    "lesion_positions",
    "lesion_trajectories",
    "patient_trajectories",
    "trajectories",
    "trajectories_stage",
]

#: Radiomic features carried into the trajectories by default (IBSI names, see feature_catalog()).
DEFAULT_FEATURES: tuple[str, ...] = (
    "stat_var",
    "stat_skew",
    "ih_entropy",
    "ih_uniformity",
    "cm_joint_entr_3d_avg",
    "cm_contrast_3d_avg",
    "cm_inv_diff_norm_3d_avg",
    "szm_zs_entr_3d",
    "ngt_coarseness_3d",
    "morph_sphericity",
)
#: Features summarised volume-weighted over all lesions at patient level (``vw_<feature>``).
TEXTURE_SUMMARY_FEATURES: tuple[str, ...] = (
    "ih_entropy",
    "cm_joint_entr_3d_avg",
    "cm_inv_diff_norm_3d_avg",
)
SIZE_COLUMNS = ("volume_ml", "axial_ld_mm", "axial_sa_mm")
POSITION_COLUMNS = ("liver_pos_x", "liver_pos_y", "liver_pos_z", "liver_side", "depth_mm")
BURDEN_COLUMNS = ("total_volume_ml", "sum_ld_mm", "target_sum_mm")
RIGHT_LOBE_SHARE = 0.6
_KEYS = ("patient_id", "track_id", "timepoint")


# --------------------------------------------------------------------------- public API


def trajectories(
    obj: object,
    *,
    level: str = "lesion",
    features: str | Sequence[str] = "default",
    long: bool = False,
) -> pd.DataFrame:
    """Trajectories of a patient, a cohort, or an analysed cohort.

    Parameters
    ----------
    obj
        A :class:`~metevo.cohort.Patient` (computed now), a :class:`~metevo.cohort.Cohort`
        (computed patient by patient), or an analysed cohort — an
        :class:`~metevo.pipeline.AnalysisResult` or the folder ``metevo analyze`` wrote — whose
        ``trajectories.parquet`` / ``patient_trajectories.parquet`` are read, not recomputed.
    level
        ``"lesion"`` (one row per track × visit) or ``"patient"`` (one row per visit).
    features
        Radiomic features carried along: ``"default"`` (:data:`DEFAULT_FEATURES`), ``"all"``
        (every feature of :func:`metevo.feature_catalog`), or a list of feature names.
    long
        Return a long ``(feature, value)`` frame (keys kept), ready for seaborn.

    Returns
    -------
    pandas.DataFrame
        Columns described in ``data_dictionary/trajectories.schema.json`` and
        ``patient_trajectories.schema.json`` (module docstring for the rules).
    """
    if level not in ("lesion", "patient"):
        raise ValueError(f"level must be 'lesion' or 'patient'; got {level!r}.")
    table = "trajectories" if level == "lesion" else "patient_trajectories"
    from metevo._cohort_run import AnalysisResult
    from metevo.cohort import Cohort, Patient

    if isinstance(obj, Patient):
        frame = _compute(obj, features)[table]
    elif isinstance(obj, Cohort):
        frames = [_compute(p, features)[table] for p in obj]
        frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    elif isinstance(obj, AnalysisResult | str | Path):
        folder = obj.out_dir if isinstance(obj, AnalysisResult) else Path(obj)
        path = folder / f"{table}.parquet"
        if not path.exists():
            raise FileNotFoundError(
                f"{path} not found: run `metevo analyze` on the cohort first (it writes "
                f"{table}.parquet), or pass a Patient/Cohort to compute the trajectories."
            )
        frame = _select_stored(pd.read_parquet(path), features, level)
    else:
        raise TypeError(
            "trajectories() takes a Patient, a Cohort, an AnalysisResult or an analysis folder; "
            f"got {type(obj).__name__}."
        )
    return to_long(frame, level) if long else frame


def trajectories_stage(
    patient: object, result: object, *, features: str | Sequence[str] = "default"
) -> None:
    """Pipeline stage: ``trajectories`` and ``patient_trajectories`` tables, lesion positions.

    Reads ``lesions``, ``lesion_edges``, ``scans`` and, when present, ``radiomics`` and
    ``recist`` from ``result.tables``; adds the position columns to ``result.tables["lesions"]``.
    """
    feats = resolve_features(features)
    tables = result.tables
    lesions = tables["lesions"]
    positions = lesion_positions(patient, lesions, reads=ScanReads.of(result))
    lesions = lesions.drop(columns=[c for c in POSITION_COLUMNS if c in lesions.columns])
    lesions = lesions.merge(positions, on=["timepoint", "lesion_id"], how="left")
    tables["lesions"] = lesions
    edges = tables.get("lesion_edges")
    radiomics = tables.get("radiomics")
    scans = tables["scans"]
    tables["trajectories"] = lesion_trajectories(
        lesions, edges, scans, radiomics, features=feats
    )
    tables["patient_trajectories"] = patient_trajectories(
        lesions, edges, scans, tables.get("recist"), radiomics, features=feats
    )


def resolve_features(features: str | Sequence[str]) -> tuple[str, ...]:
    """Check a feature selection against :func:`metevo.feature_catalog`."""
    from metevo.radiomics import feature_catalog

    known = list(feature_catalog()["feature"])
    if isinstance(features, str):
        if features == "default":
            return DEFAULT_FEATURES
        if features == "all":
            return tuple(known)
        features = [features]
    unknown = [f for f in features if f not in known]
    if unknown:
        raise ValueError(
            f"unknown radiomic feature(s) {unknown}; use 'default', 'all' or names from "
            f"metevo.feature_catalog(): {', '.join(known)}."
        )
    return tuple(dict.fromkeys(features))


# --------------------------------------------------------------------------- lesion level


def lesion_trajectories(
    lesions: pd.DataFrame,
    edges: pd.DataFrame | None,
    scans: pd.DataFrame,
    radiomics: pd.DataFrame | None = None,
    *,
    features: Sequence[str] = DEFAULT_FEATURES,
) -> pd.DataFrame:
    """One row per lesion track × analysed visit (see the module docstring for the rules).

    Parameters
    ----------
    lesions
        One patient's lesion table (``timepoint``, ``lesion_id``, ``track_id``, ``change``, sizes,
        ``mean_hu``, optionally position columns).
    edges
        The patient's ``lesion_edges`` table (unused here; kept for a uniform signature).
    scans
        The patient's ``scans`` table: the analysed visits, in order, with ``date``, ``days``,
        ``study_day`` and ``is_baseline``.
    radiomics
        The patient's ``radiomics`` table (``timepoint``, ``lesion_id``, features), or ``None``.
    features
        Radiomic features to carry (columns missing from ``radiomics`` come out NaN).
    """
    del edges
    visits = _visits(scans)
    columns = _lesion_columns(features)
    if lesions.empty or visits.empty:
        return pd.DataFrame(columns=columns)
    pid = str(scans["patient_id"].iloc[0])
    les = _with_features(lesions, radiomics, features)
    order = {tp: i for i, tp in enumerate(visits["timepoint"])}
    les = les[les["timepoint"].isin(order)].copy()
    les["_visit"] = les["timepoint"].map(order)
    baseline_idx = int(np.flatnonzero(visits["is_baseline"].to_numpy())[0]) if visits["is_baseline"].any() else 0
    single_visit = len(visits) == 1
    rows = []
    for track, grp in les.groupby("track_id", sort=True):
        first = int(grp["_visit"].min())
        by_visit = {v: g for v, g in grp.groupby("_visit")}
        ref_visit = baseline_idx if baseline_idx in by_visit else first
        track_rows = []
        for v in range(first, len(visits)):
            visit = visits.iloc[v]
            row = {
                "patient_id": pid,
                "track_id": int(track),
                "timepoint": visit["timepoint"],
                "date": visit["date"],
                "days": visit["days"],
                "study_day": visit["study_day"],
            }
            g = by_visit.get(v)
            if g is None:
                row.update(_absent_row(features))
            else:
                row.update(_aggregate(g, features))
            track_rows.append(row)
        ref = next(r for r, v in zip(track_rows, range(first, len(visits)), strict=True) if v == ref_visit)
        for r in track_rows:
            for col in (*SIZE_COLUMNS, "mean_hu", *features):
                value, base = r.get(col), ref.get(col)
                if single_visit or base is None or pd.isna(base) or value is None or pd.isna(value):
                    r[f"delta_{col}"] = np.nan
                    r[f"rel_change_{col}"] = np.nan
                    continue
                r[f"delta_{col}"] = value - base
                r[f"rel_change_{col}"] = (value / base - 1.0) if base != 0 else np.nan
        rows.extend(track_rows)
    return pd.DataFrame.from_records(rows, columns=columns)


def _aggregate(group: pd.DataFrame, features: Sequence[str]) -> dict:
    vol = group["volume_ml"].to_numpy(float)
    largest = group.iloc[int(np.argmax(vol))]
    changes = sorted(set(group["change"].astype(str)))
    out = {
        "present": True,
        "n_lesions": len(group),
        "change": changes[0] if len(changes) == 1 else "complex",
        "volume_ml": float(vol.sum()),
        "axial_ld_mm": float(group["axial_ld_mm"].sum()),
        "axial_sa_mm": float(group["axial_sa_mm"].sum()),
        "mean_hu": _weighted(group["mean_hu"].to_numpy(float), vol),
    }
    for col in POSITION_COLUMNS:
        out[col] = largest[col] if col in group.columns else (None if col == "liver_side" else np.nan)
    for f in features:
        out[f] = float(largest[f]) if f in group.columns and pd.notna(largest[f]) else np.nan
    return out


def _absent_row(features: Sequence[str]) -> dict:
    out = {
        "present": False,
        "n_lesions": 0,
        "change": "absent",
        "volume_ml": 0.0,
        "axial_ld_mm": 0.0,
        "axial_sa_mm": 0.0,
        "mean_hu": np.nan,
    }
    for col in POSITION_COLUMNS:
        out[col] = None if col == "liver_side" else np.nan
    for f in features:
        out[f] = np.nan
    return out


def _lesion_columns(features: Sequence[str]) -> list[str]:
    cols = [
        "patient_id", "track_id", "timepoint", "date", "days", "study_day", "present",
        "n_lesions", "change", *SIZE_COLUMNS, "mean_hu", *POSITION_COLUMNS, *features,
    ]
    for col in (*SIZE_COLUMNS, "mean_hu", *features):
        cols += [f"delta_{col}", f"rel_change_{col}"]
    return cols


# --------------------------------------------------------------------------- patient level


def patient_trajectories(
    lesions: pd.DataFrame,
    edges: pd.DataFrame | None,
    scans: pd.DataFrame,
    recist: pd.DataFrame | None = None,
    radiomics: pd.DataFrame | None = None,
    *,
    features: Sequence[str] = DEFAULT_FEATURES,
) -> pd.DataFrame:
    """One row per analysed visit of one patient (see the module docstring for the rules)."""
    visits = _visits(scans)
    columns = _patient_columns(features)
    if visits.empty:
        return pd.DataFrame(columns=columns)
    pid = str(scans["patient_id"].iloc[0])
    les = _with_features(lesions, radiomics, features) if len(lesions) else lesions
    tps = list(visits["timepoint"])
    new_counts, gone_counts = _new_and_disappeared(les, edges, tps)
    baseline_tp = visits.loc[visits["is_baseline"], "timepoint"]
    baseline_tp = baseline_tp.iloc[0] if len(baseline_tp) else tps[0]
    main_track = _main_track(les, baseline_tp)
    target = {}
    if recist is not None and len(recist) and "target_sum_mm" in recist.columns:
        target = dict(zip(recist["timepoint"], recist["target_sum_mm"], strict=True))
    rows = []
    for visit in visits.itertuples(index=False):
        g = les[les["timepoint"] == visit.timepoint] if len(les) else les
        vol = g["volume_ml"].to_numpy(float) if len(g) else np.zeros(0)
        liver_ml = getattr(visit, "liver_total_volume_ml", np.nan)
        total = float(vol.sum())
        row = {
            "patient_id": pid,
            "timepoint": visit.timepoint,
            "date": visit.date,
            "days": visit.days,
            "study_day": visit.study_day,
            "is_baseline": bool(visit.is_baseline),
            "n_lesions": len(g),
            "n_new_lesions": new_counts.get(visit.timepoint, 0),
            "n_disappeared_lesions": gone_counts.get(visit.timepoint, 0),
            "total_volume_ml": total,
            "sum_ld_mm": float(g["axial_ld_mm"].sum()) if len(g) else 0.0,
            "target_sum_mm": _num(target.get(visit.timepoint, np.nan)),
            "liver_volume_ml": _num(liver_ml),
            "tumour_burden_fraction": total / liver_ml if liver_ml and liver_ml > 0 else np.nan,
            "mean_hu_weighted": _weighted(g["mean_hu"].to_numpy(float), vol) if len(g) else np.nan,
        }
        for f in TEXTURE_SUMMARY_FEATURES:
            row[f"vw_{f}"] = (
                _weighted(g[f].to_numpy(float), vol) if len(g) and f in g.columns else np.nan
            )
        main = g[g["track_id"] == main_track] if main_track is not None and len(g) else g.iloc[0:0]
        if len(main):
            big = main.iloc[int(np.argmax(main["volume_ml"].to_numpy(float)))]
            row["main_volume_ml"] = float(main["volume_ml"].sum())
            row["main_axial_ld_mm"] = float(main["axial_ld_mm"].sum())
            for f in features:
                row[f"main_{f}"] = float(big[f]) if f in main.columns and pd.notna(big[f]) else np.nan
        else:
            row["main_volume_ml"] = 0.0 if main_track is not None else np.nan
            row["main_axial_ld_mm"] = 0.0 if main_track is not None else np.nan
            for f in features:
                row[f"main_{f}"] = np.nan
        rows.append(row)
    frame = pd.DataFrame.from_records(rows)
    base_mask = frame["timepoint"] == baseline_tp
    start = int(np.flatnonzero(base_mask.to_numpy())[0])
    for col in BURDEN_COLUMNS:
        stem = col.removesuffix("_ml").removesuffix("_mm")
        values = frame[col].to_numpy(float)
        base = values[start]
        with np.errstate(divide="ignore", invalid="ignore"):
            frame[f"{stem}_rel_baseline"] = values / base - 1.0 if base > 0 else np.nan
            nadir = np.full(len(values), np.nan)
            running = np.nan
            for i in range(len(values)):
                if i >= start and not np.isnan(values[i]):
                    running = values[i] if np.isnan(running) else min(running, values[i])
                nadir[i] = running
            prev_nadir = np.concatenate([[np.nan], nadir[:-1]])
            prev_nadir[: start + 1] = np.nan
            frame[f"{stem}_rel_nadir"] = np.where(prev_nadir > 0, values / prev_nadir - 1.0, np.nan)
    return frame.reindex(columns=columns)


def _patient_columns(features: Sequence[str]) -> list[str]:
    cols = [
        "patient_id", "timepoint", "date", "days", "study_day", "is_baseline", "n_lesions",
        "n_new_lesions", "n_disappeared_lesions", *BURDEN_COLUMNS, "liver_volume_ml",
        "tumour_burden_fraction", "mean_hu_weighted",
        *(f"vw_{f}" for f in TEXTURE_SUMMARY_FEATURES),
        "main_volume_ml", "main_axial_ld_mm", *(f"main_{f}" for f in features),
    ]
    for col in BURDEN_COLUMNS:
        stem = col.removesuffix("_ml").removesuffix("_mm")
        cols += [f"{stem}_rel_baseline", f"{stem}_rel_nadir"]
    return cols


def _new_and_disappeared(
    lesions: pd.DataFrame, edges: pd.DataFrame | None, timepoints: list[str]
) -> tuple[dict, dict]:
    """New lesions (no predecessor, first visit excluded) and lesions lost since the previous visit."""
    new, gone = {}, {}
    if lesions is None or lesions.empty:
        return new, gone
    if edges is None or edges.empty:
        incoming, outgoing_next = set(), set()
    else:
        incoming = set(zip(edges["timepoint_to"], edges["lesion_id_to"], strict=True))
        direct = edges
        outgoing_next = set(zip(direct["timepoint_from"], direct["lesion_id_from"], direct["timepoint_to"], strict=True))
    nodes = set(zip(lesions["timepoint"], lesions["lesion_id"], strict=True))
    for i, tp in enumerate(timepoints):
        here = [n for n in nodes if n[0] == tp]
        if i > 0:
            new[tp] = sum(1 for n in here if n not in incoming)
            prev = timepoints[i - 1]
            gone[tp] = sum(
                1 for n in nodes if n[0] == prev and (prev, n[1], tp) not in outgoing_next
            )
    return new, gone


def _main_track(lesions: pd.DataFrame, baseline_tp: str) -> int | None:
    if lesions is None or lesions.empty:
        return None
    base = lesions[lesions["timepoint"] == baseline_tp]
    if base.empty:
        return None
    return int(base.iloc[int(np.argmax(base["volume_ml"].to_numpy(float)))]["track_id"])


# --------------------------------------------------------------------------- positions


def lesion_positions(
    patient: object, lesions: pd.DataFrame, *, reads: ScanReads | None = None
) -> pd.DataFrame:
    """Position of each lesion within the liver (see the module docstring).

    Reads each visit's liver and lesion masks; returns ``timepoint``, ``lesion_id`` and
    :data:`POSITION_COLUMNS`. Without a liver mask the position columns are empty.
    """
    reads = reads if reads is not None else ScanReads()
    out = []
    for scan in patient.scans:
        here = lesions[lesions["timepoint"] == scan.timepoint]
        if here.empty:
            continue
        liver = reads.liver_mask(scan)
        if liver is None:
            for lid in here["lesion_id"]:
                out.append({"timepoint": scan.timepoint, "lesion_id": int(lid), "liver_pos_x": np.nan,
                            "liver_pos_y": np.nan, "liver_pos_z": np.nan, "liver_side": None, "depth_mm": np.nan})
            continue
        organ = (sitk.GetArrayFromImage(liver) > 0) | (sitk.GetArrayFromImage(reads.lesion_mask(scan)) > 0)
        centroids = here[["centroid_x_mm", "centroid_y_mm", "centroid_z_mm"]].to_numpy(float)
        frame = _liver_frame(organ, liver, centroids)
        for lid, pos in zip(here["lesion_id"], frame, strict=True):
            out.append({"timepoint": scan.timepoint, "lesion_id": int(lid), **pos})
    return pd.DataFrame.from_records(out, columns=["timepoint", "lesion_id", *POSITION_COLUMNS])


def _liver_frame(organ: np.ndarray, ref: sitk.Image, centroids: np.ndarray) -> list[dict]:
    if not organ.any():
        return [dict.fromkeys(POSITION_COLUMNS, np.nan) | {"liver_side": None} for _ in centroids]
    zyx = np.argwhere(organ)
    # physical coordinates of the organ's voxels (LPS, mm), subsampled for speed
    step = max(1, len(zyx) // 200_000)
    sample = zyx[::step][:, ::-1].astype(float)
    spacing = np.asarray(ref.GetSpacing())
    direction = np.asarray(ref.GetDirection()).reshape(3, 3)
    origin = np.asarray(ref.GetOrigin())
    pts = origin + (sample * spacing) @ direction.T
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    split_x = float(np.quantile(pts[:, 0], RIGHT_LOBE_SHARE))  # LPS: +x is the patient's left
    box = tuple(slice(a, b + 1) for a, b in zip(zyx.min(axis=0), zyx.max(axis=0), strict=True))
    crop = np.pad(organ[box], 1)
    crop_img = sitk.GetImageFromArray(crop.astype(np.uint8))
    crop_img.SetSpacing(ref.GetSpacing())
    dist = sitk.GetArrayFromImage(
        sitk.SignedMaurerDistanceMap(crop_img, insideIsPositive=True, squaredDistance=False, useImageSpacing=True)
    )
    inv = np.linalg.inv(direction * spacing)
    result = []
    for c in centroids:
        idx_xyz = inv @ (c - origin)
        k = np.round(idx_xyz[::-1]).astype(int) - np.array([s.start for s in box]) + 1
        k = np.clip(k, 0, np.array(crop.shape) - 1)
        depth = float(dist[tuple(k)])
        span = np.where(hi > lo, hi - lo, np.nan)
        rel = (c - lo) / span
        result.append(
            {
                "liver_pos_x": float(rel[0]),
                "liver_pos_y": float(rel[1]),
                "liver_pos_z": float(rel[2]),
                "liver_side": "right" if c[0] < split_x else "left",
                "depth_mm": max(depth, 0.0),
            }
        )
    return result


# --------------------------------------------------------------------------- helpers


def to_long(frame: pd.DataFrame, level: str = "lesion") -> pd.DataFrame:
    """Melt a trajectory table into ``(feature, value)`` pairs, keys and time kept."""
    ids = [c for c in (*_KEYS, "date", "days", "study_day") if c in frame.columns]
    if level == "patient":
        ids = [c for c in ("patient_id", "timepoint", "date", "days", "study_day") if c in frame.columns]
    values = [
        c for c in frame.columns
        if c not in ids and pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
    ]
    return frame.melt(id_vars=ids, value_vars=values, var_name="feature", value_name="value")


def _select_stored(frame: pd.DataFrame, features: str | Sequence[str], level: str) -> pd.DataFrame:
    if isinstance(features, str) and features == "default":
        return frame
    wanted = resolve_features(features)
    prefix = "" if level == "lesion" else "main_"
    missing = [f for f in wanted if f"{prefix}{f}" not in frame.columns]
    if missing:
        raise ValueError(
            f"the stored trajectories lack feature(s) {missing[:10]}{' ...' if len(missing) > 10 else ''}"
            "; rerun the analysis with stage_options={'trajectories': {'features': ...}} or pass "
            "the Patient/Cohort to compute them."
        )
    return frame


def _compute(patient: object, features: str | Sequence[str]) -> dict[str, pd.DataFrame]:
    from metevo.pipeline import analyze_patient

    result = analyze_patient(
        patient, stages=["trajectories"], stage_options={"trajectories": {"features": features}}
    )
    if result.failures:
        failure = result.failures[0]
        raise RuntimeError(
            f"patient {patient.patient_id}: stage {failure['stage']} failed "
            f"({failure['error_type']}): {failure['error']}"
        )
    return result.tables


def _visits(scans: pd.DataFrame) -> pd.DataFrame:
    if scans is None or scans.empty:
        return pd.DataFrame(columns=["timepoint", "date", "days", "study_day", "is_baseline"])
    return scans.sort_values(["date", "timepoint"], kind="stable").reset_index(drop=True)


def _with_features(
    lesions: pd.DataFrame, radiomics: pd.DataFrame | None, features: Iterable[str]
) -> pd.DataFrame:
    features = [f for f in features if f not in lesions.columns]
    if radiomics is None or radiomics.empty or not features:
        out = lesions.copy()
        for f in features:
            out[f] = np.nan
        return out
    keep = ["timepoint", "lesion_id", *[f for f in features if f in radiomics.columns]]
    out = lesions.merge(radiomics[keep], on=["timepoint", "lesion_id"], how="left")
    for f in features:
        if f not in out.columns:
            out[f] = np.nan
    return out


def _weighted(values: np.ndarray, weights: np.ndarray) -> float:
    ok = ~np.isnan(values) & (weights > 0)
    if not ok.any():
        return float("nan")
    return float(np.sum(values[ok] * weights[ok]) / np.sum(weights[ok]))


def _num(v: object) -> float:
    try:
        return float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return float("nan")


# --------------------------------------------------------------------------- data dictionary

_STATIC_LESION_FIELDS = [
    ("patient_id", "string", "", "Patient identifier.", True),
    ("track_id", "integer", "", "Lesion track: connected group of the patient's lesion graph (lesions linked across visits, merges and splits included).", True),
    ("timepoint", "string", "", "Visit label.", True),
    ("date", "date", "", "Scan date.", True),
    ("days", "integer", "day", "Days since the patient's first analysed scan.", True),
    ("study_day", "integer", "day", "Days since treatment_start (empty when unknown).", False),
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
    ("patient_id", "string", "", "Patient identifier.", True),
    ("timepoint", "string", "", "Visit label.", True),
    ("date", "date", "", "Scan date.", True),
    ("days", "integer", "day", "Days since the patient's first analysed scan.", True),
    ("study_day", "integer", "day", "Days since treatment_start (empty when unknown).", False),
    ("is_baseline", "boolean", "", "Whether this visit is the patient's baseline.", True),
    ("n_lesions", "integer", "", "Number of lesions (graph nodes) at this visit.", True),
    ("n_new_lesions", "integer", "", "Lesions at this visit with no predecessor in the lesion graph (fragments of a split and reappearing lesions are not new); 0 at the first visit.", True),
    ("n_disappeared_lesions", "integer", "", "Lesions of the previous analysed visit with no edge to any lesion of this visit (vanished, resected or unseen here; a later reappearance does not undo the count); 0 at the first visit.", True),
    ("total_volume_ml", "number", "ml", "Sum of all lesion volumes at this visit.", True),
    ("sum_ld_mm", "number", "mm", "Sum of the axial longest diameters of all lesions at this visit.", True),
    ("target_sum_mm", "number", "mm", "RECIST 1.1 sum of target lesion diameters at this visit (recist table; empty when not evaluable or when the RECIST stage did not run).", False),
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
             "description": f"{col} / its baseline value - 1 (fraction; empty when the baseline value is 0 or missing)."}
        )
        patient_fields.append(
            {"name": f"{stem}_rel_nadir", "type": "number", "unit": "1",
             "description": f"{col} / the smallest value of the earlier visits from baseline on (nadir) - 1; empty at and before baseline or when the nadir is 0."}
        )
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
