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
baseline and from the nadir so far (``<burden>_rel_baseline``, ``<burden>_rel_nadir``). After a
resection or ablation the visits are flagged (``post_resection``) and the burden is also given with
the treated lesions taken out of the baseline as RECIST does (``<burden>_adjusted``); the relative
changes and the evolution patterns use those (:mod:`metevo.evolution._resection`).

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

import numpy as np
import pandas as pd

from metevo.columns import PatientTrajectories as PT
from metevo.evolution._resection import RESECTED, add_resection_columns, resected_tracks
from metevo.tracking._positions import POSITION_COLUMNS

__all__ = ["DEFAULT_FEATURES", "TEXTURE_SUMMARY_FEATURES", "lesion_trajectories", "patient_trajectories", "resolve_features", "to_long", "trajectories_stage"]


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


BURDEN_COLUMNS = ("total_volume_ml", "sum_ld_mm", "target_sum_mm")


_KEYS = ("patient_id", "track_id", "timepoint")


def trajectories_stage(
    patient: object, result: object, *, features: str | Sequence[str] = "default"
) -> None:
    """Pipeline stage: ``trajectories`` and ``patient_trajectories`` tables.

    Reads ``lesions`` (with the positions the graph stage added), ``lesion_edges``, ``scans`` and,
    when present, ``radiomics`` and ``recist`` from ``result.tables``; writes only its own tables.
    """
    feats = resolve_features(features)
    tables = result.tables
    lesions = tables["lesions"]
    edges = tables.get("lesion_edges")
    radiomics = tables.get("radiomics")
    scans = tables["scans"]
    tables["trajectories"] = lesion_trajectories(
        lesions, edges, scans, radiomics, features=feats,
        recist_lesions=tables.get("recist_lesions"),
    )
    tables["patient_trajectories"] = patient_trajectories(
        lesions,
        edges,
        scans,
        tables.get("recist"),
        radiomics,
        features=feats,
        recist_lesions=tables.get("recist_lesions"),
        events=getattr(patient, "events", None),
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
    recist_lesions: pd.DataFrame | None = None,
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
    recist_lesions
        The RECIST stage's per-lesion rows: a track whose baseline lesion was removed by a
        resection or ablation is flagged ``resected`` from that visit on.
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
    removed = resected_tracks(les, recist_lesions, visits["timepoint"].iloc[baseline_idx])
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
            cut = removed.get(int(track))
            row[RESECTED] = cut is not None and v >= order.get(cut, len(visits))
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
    return [*cols, RESECTED]


# --------------------------------------------------------------------------- patient level


def patient_trajectories(
    lesions: pd.DataFrame,
    edges: pd.DataFrame | None,
    scans: pd.DataFrame,
    recist: pd.DataFrame | None = None,
    radiomics: pd.DataFrame | None = None,
    *,
    features: Sequence[str] = DEFAULT_FEATURES,
    recist_lesions: pd.DataFrame | None = None,
    events: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per analysed visit of one patient (see the module docstring for the rules).

    ``recist_lesions`` (the RECIST stage's per-lesion rows) and ``events`` (the patient's events
    table) give the lesions a resection or ablation removed: the ``post_resection`` flag and the
    ``*_adjusted`` burden columns (:mod:`metevo.evolution._resection`).
    """
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
    frame = add_resection_columns(frame, les, recist_lesions, events, baseline_tp)
    base_mask = frame["timepoint"] == baseline_tp
    start = int(np.flatnonzero(base_mask.to_numpy())[0])
    for col in BURDEN_COLUMNS:
        stem = col.removesuffix("_ml").removesuffix("_mm")
        # after a resection: over the remaining disease (treated lesions out of the baseline)
        values = frame[PT.RESECTION_ADJUSTED[col]].to_numpy(float)
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
    return [*cols, PT.POST_RESECTION, *PT.RESECTION_ADJUSTED.values()]


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
