"""Reading and checking the cohort's tables: manifest, clinical table, events table (private).

Table-level problems (a missing column, an unreadable file) raise; problems of one patient's rows
are handed to :class:`_Problems`, which raises them or sets that patient aside
(``open_cohort(errors=...)``). Used by :mod:`metevo.cohort`.
"""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from metevo.cohort import io as mio
from metevo.columns import Clinical, Events, Manifest
from metevo.exceptions import (
    ClinicalTableError,
    CohortError,
    DataQualityWarning,
    EventsTableError,
    ImageReadError,
    ManifestError,
)

if TYPE_CHECKING:
    from metevo.cohort._options import CohortOptions

EVENT_KINDS = Events.KINDS


class _Problems:
    """Collects per-patient problems (or raises them at once)."""

    def __init__(self, errors: str) -> None:
        self.errors = errors
        self.by_patient: dict[str, CohortError] = {}

    def add(self, patient_id: str, error: CohortError) -> None:
        if self.errors == "raise":
            raise error
        self.by_patient.setdefault(patient_id, error)


def _read_table(
    obj: str | Path | pd.DataFrame,
    what: str,
    error: type[CohortError],
    base_dir: str | Path | None,
) -> tuple[pd.DataFrame, Path, str]:
    if isinstance(obj, pd.DataFrame):
        base = Path(base_dir) if base_dir is not None else Path.cwd()
        return obj.copy(), base, f"<{what} DataFrame>"
    path = Path(obj)
    if not path.exists():
        raise error(f"{what} not found: {path}.")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            table = pd.read_parquet(path)
        else:
            table = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except Exception as exc:
        raise error(
            f"could not read {what} {path}: {exc}. Expected a CSV or Parquet file."
        ) from exc
    base = Path(base_dir) if base_dir is not None else path.resolve().parent
    return table, base, str(path)


def _require_columns(
    table: pd.DataFrame, required: tuple[str, ...], what: str, source: str, error: type
) -> None:
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise error(
            f"{what} {source} lacks required column(s) {missing}; found columns "
            f"{list(table.columns)}. Required: {list(required)}."
        )


def _warn_unknown_patients(
    table: pd.DataFrame, what: str, source: str, manifest_ids: set[str]
) -> None:
    """Warn that the table's rows of patients the manifest lacks are ignored (at most 10 named)."""
    unknown = sorted(set(table.patient_id) - manifest_ids)
    if unknown:
        warnings.warn(
            f"{what} {source}: {len(unknown)} patient id(s) not in the manifest are "
            f"ignored: {', '.join(unknown[:10])}{' ...' if len(unknown) > 10 else ''}.",
            DataQualityWarning,
            stacklevel=4,  # the caller of open_cohort, as the table checks' own warnings
        )


def _parse_date(value: object) -> dt.date | None:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp | dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text[:10]) if len(text) in (10, 19) else dt.date.fromisoformat(text)
    except ValueError:
        return None


def _check_manifest(
    table: pd.DataFrame, base: Path, source: str, opts: CohortOptions, problems: _Problems
) -> pd.DataFrame:
    _require_columns(table, Manifest.REQUIRED, "manifest", source, ManifestError)
    table = table.copy()
    table["patient_id"] = table["patient_id"].map(lambda v: None if pd.isna(v) else str(v).strip())
    table["timepoint"] = table["timepoint"].map(lambda v: None if pd.isna(v) else str(v).strip())
    blank_ids = table["patient_id"].isna() | (table["patient_id"] == "")
    if blank_ids.any():
        lines = ", ".join(str(i + 2) for i in np.flatnonzero(blank_ids.to_numpy())[:10])
        raise ManifestError(
            f"manifest {source}: empty patient_id on line(s) {lines}; every scan needs its patient."
        )
    table["_line"] = np.arange(len(table)) + 2  # header is line 1 of a CSV
    has_phase = Manifest.PHASE in table.columns
    phase = opts.phase or ("portal_venous" if has_phase else None)
    records = []
    for rec in table.to_dict("records"):
        pid, tp = rec["patient_id"], rec["timepoint"]
        where = f"manifest {source}, line {rec['_line']} (patient {pid}, timepoint {tp})"
        if not tp:
            problems.add(pid, ManifestError(f"{where}: empty timepoint label."))
            continue
        date = _parse_date(rec["date"])
        if date is None:
            problems.add(
                pid,
                ManifestError(
                    f"{where}: date {rec['date']!r} is not an ISO date; expected YYYY-MM-DD."
                ),
            )
            continue
        rec["date"] = date
        for col in (Manifest.IMAGE, Manifest.LESION_MASK, Manifest.LIVER_MASK):
            value = rec.get(col)
            if value is None or (isinstance(value, float) and np.isnan(value)) or value == "":
                rec[col] = None
                continue
            p = Path(str(value))
            rec[col] = p if p.is_absolute() else (base / p)
        if rec[Manifest.IMAGE] is None or rec[Manifest.LESION_MASK] is None:
            missing = "image" if rec[Manifest.IMAGE] is None else "lesion_mask"
            problems.add(pid, ManifestError(f"{where}: empty {missing} path."))
            continue
        absent = [
            f"{col} {rec[col]}"
            for col in (Manifest.IMAGE, Manifest.LESION_MASK, Manifest.LIVER_MASK)
            if rec[col] is not None and not Path(rec[col]).exists()
        ]
        if absent:
            problems.add(
                pid,
                ImageReadError(
                    f"{where}: file not found: {', '.join(absent)}. Relative paths resolve "
                    f"against {base}."
                ),
            )
            continue
        st = rec.get(Manifest.SLICE_THICKNESS_MM)
        if st is not None and not (isinstance(st, float) and np.isnan(st)) and st != "":
            try:
                rec[Manifest.SLICE_THICKNESS_MM] = float(st)
            except ValueError:
                problems.add(
                    pid,
                    ManifestError(f"{where}: slice_thickness_mm {st!r} is not a number (mm)."),
                )
                continue
        else:
            rec[Manifest.SLICE_THICKNESS_MM] = None
        for col in (Manifest.PHASE, Manifest.KERNEL):
            v = rec.get(col)
            rec[col] = None if v is None or (isinstance(v, float) and np.isnan(v)) or v == "" else str(v)
        try:
            rec.update(_row_mask_options(rec, opts, where))
        except CohortError as exc:
            problems.add(pid, exc)
            continue
        records.append(rec)
    rows = pd.DataFrame.from_records(records)
    if rows.empty:
        rows = pd.DataFrame(columns=[*Manifest.REQUIRED, "_line"])
        return rows
    # duplicates (patient, timepoint)
    dup = rows.duplicated(["patient_id", "timepoint"], keep=False)
    for (pid, tp), grp in rows[dup].groupby(["patient_id", "timepoint"]):
        problems.add(
            pid,
            ManifestError(
                f"manifest {source}: patient {pid} has {len(grp)} rows for timepoint {tp!r} "
                f"(lines {', '.join(map(str, grp._line))}); each (patient_id, timepoint) must "
                "be unique. Give each scan its own timepoint label."
            ),
        )
    # several scans on one date: allowed only with distinct phases
    rows["_analysed"] = True
    for (pid, date), grp in rows.groupby(["patient_id", "date"]):
        if len(grp) == 1:
            continue
        phases = grp[Manifest.PHASE] if has_phase else pd.Series([None] * len(grp))
        if phases.isna().any() or phases.duplicated().any():
            problems.add(
                pid,
                ManifestError(
                    f"manifest {source}: patient {pid} has {len(grp)} scans on {date} "
                    f"(timepoints {', '.join(grp.timepoint)}) with "
                    f"{'missing' if phases.isna().any() else 'the same'} phase; several scans "
                    "on one date need distinct values in the 'phase' column (e.g. arterial, "
                    "portal_venous)."
                ),
            )
            continue
        keep = grp.index[phases == phase] if phase is not None else grp.index[:0]
        chosen = keep[0] if len(keep) else grp.index[0]
        rows.loc[grp.index.difference([chosen]), "_analysed"] = False
    return rows


def _row_mask_options(rec: dict, opts: CohortOptions, where: str) -> dict:
    def get(name: str, default: object) -> object:
        v = rec.get(name)
        if v is None or (isinstance(v, float) and np.isnan(v)) or v == "":
            return default
        return v

    lesion_kind = str(get("lesion_mask_kind", opts.lesion_mask_kind))
    liver_label = get("liver_label", opts.liver_label)
    lesion_label = get("lesion_label", opts.lesion_label)
    liver_kind = get("liver_mask_kind", opts.liver_mask_kind)
    try:
        lesion_label = None if lesion_label is None else int(float(lesion_label))
        liver_label = None if liver_label is None else int(float(liver_label))
    except ValueError as exc:
        raise ManifestError(f"{where}: lesion_label/liver_label must be integers ({exc}).") from exc
    if liver_kind is None:
        liver_kind = "labels" if liver_label is not None else "binary"
    for name, kind in (("lesion_mask_kind", lesion_kind), ("liver_mask_kind", liver_kind)):
        if kind not in mio.MASK_KINDS:
            raise ManifestError(f"{where}: {name} {kind!r} is not one of {mio.MASK_KINDS}.")
    if lesion_kind == "labels" and lesion_label is None:
        raise ManifestError(f"{where}: lesion_mask_kind 'labels' needs lesion_label.")
    if liver_kind == "labels" and liver_label is None:
        raise ManifestError(f"{where}: liver_mask_kind 'labels' needs liver_label.")
    return {
        "_lesion_kind": lesion_kind,
        "_lesion_label": lesion_label,
        "_liver_kind": str(liver_kind),
        "_liver_label": liver_label,
    }


def _survival_pair(rec: dict, days_col: str, event_col: str, where: str) -> tuple[float, int]:
    """A checked ``(days, event)`` pair of a clinical row."""
    days = _number(rec[days_col], f"{where}, column {days_col}")
    if np.isnan(days) or days < 0:
        raise ClinicalTableError(
            f"{where}, column {days_col}: expected a non-negative number of days, found "
            f"{days!r}. Use the last follow-up time with event 0 when the event was not observed."
        )
    ev = _number(rec[event_col], f"{where}, column {event_col}")
    if ev not in (0.0, 1.0):
        raise ClinicalTableError(
            f"{where}, column {event_col}: expected 0 (censored) or 1 (event), found "
            f"{rec[event_col]!r}."
        )
    return days, int(ev)


def _check_clinical(
    table: pd.DataFrame, source: str, manifest_ids: set[str], problems: _Problems
) -> pd.DataFrame:
    _require_columns(table, Clinical.REQUIRED, "clinical table", source, ClinicalTableError)
    table = table.copy()
    table["patient_id"] = table["patient_id"].map(lambda v: str(v).strip())
    if Clinical.TREATMENT_START not in table.columns:
        warnings.warn(
            f"clinical table {source} has no 'treatment_start' column: baselines fall back to "
            "the first scan and os_days/pfs_days are taken to count from it. Add the date of "
            "first treatment or randomisation (strongly recommended).",
            DataQualityWarning,
            stacklevel=3,
        )
    pfs_cols = [c for c in (Clinical.PFS_DAYS, Clinical.PFS_EVENT) if c in table.columns]
    if len(pfs_cols) == 1:
        raise ClinicalTableError(
            f"clinical table {source} has {pfs_cols[0]!r} without its partner; give both "
            "pfs_days and pfs_event, or neither."
        )
    dup = table.patient_id[table.patient_id.duplicated()]
    for pid in sorted(set(dup)):
        problems.add(
            pid, ClinicalTableError(f"clinical table {source}: patient {pid} has several rows.")
        )
    table = table[~table.patient_id.duplicated(keep=False)]
    _warn_unknown_patients(table, "clinical table", source, manifest_ids)
    missing = sorted(manifest_ids - set(table.patient_id))
    if missing:
        warnings.warn(
            f"clinical table {source}: no row for {len(missing)} patient(s) of the manifest "
            f"({', '.join(missing[:10])}{' ...' if len(missing) > 10 else ''}); they are "
            "analysed without clinical data.",
            DataQualityWarning,
            stacklevel=3,
        )
    out = []
    for rec in table.to_dict("records"):
        pid = rec["patient_id"]
        where = f"clinical table {source}, patient {pid}"
        try:
            for days_col, event_col in (
                (Clinical.OS_DAYS, Clinical.OS_EVENT),
                (Clinical.PFS_DAYS, Clinical.PFS_EVENT),
            ):
                if days_col not in rec:
                    continue
                try:
                    rec[days_col], rec[event_col] = _survival_pair(rec, days_col, event_col, where)
                except ClinicalTableError as exc:
                    if problems.errors == "raise":
                        raise
                    # only the survival analyses need these columns: keep the patient's imaging
                    warnings.warn(
                        f"{exc} Patient {pid} is left out of the {days_col[:-5].upper()} survival "
                        "analyses; its imaging, RECIST and trajectory tables are written.",
                        DataQualityWarning,
                        stacklevel=3,
                    )
                    rec[days_col], rec[event_col] = np.nan, None
            if Clinical.TREATMENT_START in rec:
                raw = rec[Clinical.TREATMENT_START]
                ts = _parse_date(raw)
                if ts is None and not _is_blank(raw):
                    raise ClinicalTableError(
                        f"{where}, column treatment_start: {raw!r} is not an ISO date "
                        "(YYYY-MM-DD)."
                    )
                rec[Clinical.TREATMENT_START] = ts
        except ClinicalTableError as exc:
            if pid in manifest_ids:
                problems.add(pid, exc)
            continue
        out.append(rec)
    frame = pd.DataFrame.from_records(out, columns=list(table.columns))
    for col in table.columns:
        if col in (Clinical.PATIENT_ID, Clinical.TREATMENT_START):
            continue
        if col in (Clinical.OS_EVENT, Clinical.PFS_EVENT):
            frame[col] = frame[col].astype("Int64")
        elif col in (Clinical.OS_DAYS, Clinical.PFS_DAYS):
            frame[col] = frame[col].astype(float)
        else:
            frame[col] = _maybe_numeric(frame[col])
    return frame.set_index("patient_id")


def _check_events(
    table: pd.DataFrame, source: str, manifest_ids: set[str], problems: _Problems
) -> pd.DataFrame:
    _require_columns(
        table, (Events.PATIENT_ID, Events.DATE, Events.EVENT), "events table", source, EventsTableError
    )
    table = table.copy()
    table["patient_id"] = table["patient_id"].map(lambda v: str(v).strip())
    _warn_unknown_patients(table, "events table", source, manifest_ids)
    out = []
    for i, rec in enumerate(table.to_dict("records")):
        pid = rec["patient_id"]
        if pid not in manifest_ids:
            continue
        where = f"events table {source}, line {i + 2} (patient {pid})"
        kind = str(rec[Events.EVENT]).strip().lower()
        if kind not in EVENT_KINDS:
            problems.add(
                pid,
                EventsTableError(
                    f"{where}: unknown event type {rec[Events.EVENT]!r}; expected one of "
                    f"{', '.join(EVENT_KINDS)}."
                ),
            )
            continue
        date = _parse_date(rec[Events.DATE])
        if date is None:
            problems.add(
                pid,
                EventsTableError(
                    f"{where}: date {rec[Events.DATE]!r} is not an ISO date (YYYY-MM-DD)."
                ),
            )
            continue
        note = rec.get(Events.NOTE)
        try:
            named = _treated_lesions(rec, kind, where)
        except EventsTableError as exc:
            problems.add(pid, exc)
            continue
        out.append(
            {
                "patient_id": pid,
                "date": date,
                "event": kind,
                "note": None if _is_blank(note) else str(note),
                **named,
                Events.LINE: i + 2,
            }
        )
    frame = pd.DataFrame.from_records(out, columns=["patient_id", *EVENT_COLUMNS])
    return frame.sort_values(["patient_id", "date"], kind="stable").reset_index(drop=True)


#: columns of a checked events table (besides ``patient_id``)
EVENT_COLUMNS = (
    Events.DATE, Events.EVENT, Events.NOTE, Events.LESION_IDS, Events.TRACK_IDS, *Events.POINT,
    Events.LINE,
)


def _treated_lesions(rec: dict, kind: str, where: str) -> dict:
    """The optional naming of the lesions a resection or ablation treated, checked.

    ``lesion_ids`` / ``track_ids``: integers separated by ``;``, ``,`` or spaces (ids of the
    lesions table at the last scan before the event); ``point_x_mm``, ``point_y_mm``,
    ``point_z_mm``: a physical LPS point (mm) in that scan, all three or none. One way per row;
    only on ``resection`` / ``ablation`` rows.
    """
    out: dict = {Events.LESION_IDS: None, Events.TRACK_IDS: None}
    given = []
    for col in (Events.LESION_IDS, Events.TRACK_IDS):
        value = rec.get(col)
        if _is_blank(value):
            continue
        text = str(value)
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            text = str(int(value))  # a single id read as a number
        parts = [p for p in text.replace(";", " ").replace(",", " ").split() if p]
        try:
            ids = tuple(sorted({int(p) for p in parts}))
        except ValueError:
            ids = ()
        if not ids or any(v < 0 for v in ids):
            raise EventsTableError(
                f"{where}, column {col}: {value!r} is not a list of lesion ids; expected "
                "non-negative integers separated by ';' (e.g. '3' or '3;5')."
            )
        out[col] = ids
        given.append(col)
    raw = {c: rec.get(c) for c in Events.POINT}
    filled = [c for c in Events.POINT if not _is_blank(raw[c])]
    if filled and len(filled) < 3:
        missing = [c for c in Events.POINT if c not in filled]
        raise EventsTableError(
            f"{where}: a point needs {', '.join(Events.POINT)} together; {', '.join(filled)} "
            f"given, {', '.join(missing)} empty."
        )
    for c in Events.POINT:
        if _is_blank(raw[c]):
            out[c] = np.nan
            continue
        try:
            out[c] = float(raw[c])
        except (TypeError, ValueError):
            out[c] = np.nan
        if not np.isfinite(out[c]):
            raise EventsTableError(
                f"{where}, column {c}: {raw[c]!r} is not a coordinate in mm (a finite number)."
            )
    if filled:
        given.append("point")
    if len(given) > 1:
        raise EventsTableError(
            f"{where}: the treated lesions are named more than one way ({', '.join(given)}); "
            "give lesion_ids, track_ids or a point, one per row (use one row per lesion)."
        )
    if given and kind not in Events.LOCAL_THERAPY:
        raise EventsTableError(
            f"{where}: {given[0]} names treated lesions, which only a "
            f"{' or '.join(Events.LOCAL_THERAPY)} row may do; this row's event is {kind!r}."
        )
    return out


def _is_blank(v: object) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v)) or (isinstance(v, str) and not v.strip())


def _number(v: object, where: str) -> float:
    if _is_blank(v):
        return float("nan")
    try:
        return float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ClinicalTableError(f"{where}: {v!r} is not a number.") from None


def _maybe_numeric(series: pd.Series) -> pd.Series:
    converted = pd.to_numeric(series, errors="coerce")
    if converted.notna().sum() == series.notna().sum():
        return converted
    return series
