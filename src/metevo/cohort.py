"""Cohorts, patients and scans: the cohort contract of metevo.

A cohort is described by a **manifest** (CSV or Parquet, one row per scan), an optional
**clinical table** (one row per patient) and an optional **events table** (resections, ablations,
new treatment lines, extrahepatic progression, deaths).

Manifest columns: ``patient_id``, ``timepoint`` (label such as ``V0``), ``date`` (ISO
``YYYY-MM-DD``), ``image``, ``lesion_mask``, optional ``liver_mask``, ``phase``,
``slice_thickness_mm``, ``kernel``; optional per-row overrides of the mask options
``lesion_mask_kind``, ``lesion_label``, ``liver_mask_kind``, ``liver_label``. Relative paths
resolve against the manifest's folder.

Clinical columns: ``patient_id``, ``treatment_start`` (date of first treatment or randomisation;
strongly recommended), ``os_days``, ``os_event`` (0/1), optional ``pfs_days``, ``pfs_event``,
``arm`` and any covariates (kept as given). ``os_days`` and ``pfs_days`` count from
``treatment_start`` (from the baseline scan when there is none).

Events columns: ``patient_id``, ``date``, ``event`` (one of :data:`EVENT_KINDS`), optional ``note``.

Time: analysed scans are ordered by date; ``days`` counts from the patient's first analysed scan
and ``study_day`` from ``treatment_start``. The **baseline** is the last scan on or before
``treatment_start`` within ``baseline_window_days`` (default 28), else the first scan (flagged).

Problems that concern one patient (a missing file, an unparseable date, a duplicate timepoint, a
bad clinical row...) set that patient aside with a precise message (``errors="warn"``, the
default) or raise at once (``errors="raise"``); problems of a whole table (a missing column) always
raise.

Examples
--------
>>> import metevo
>>> demo = metevo.datasets.load_demo_cohort()                      # doctest: +SKIP
>>> cohort = metevo.open_cohort(demo.manifest, clinical=demo.clinical, events=demo.events)  # doctest: +SKIP
>>> patient = cohort[cohort.patient_ids[0]]                       # doctest: +SKIP
>>> patient.baseline.timepoint                                    # doctest: +SKIP
'V0'
"""

from __future__ import annotations

import datetime as dt
import functools
import html
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk

from metevo import io as mio
from metevo.columns import Clinical, Events, Manifest
from metevo.exceptions import (
    ClinicalTableError,
    CohortError,
    DataQualityWarning,
    EventsTableError,
    ImageReadError,
    ManifestError,
    MetevoError,
    ProtocolWarning,
)

__all__ = ["EVENT_KINDS", "Cohort", "CohortOptions", "Patient", "Scan", "ScanReads", "open_cohort"]

EVENT_KINDS = Events.KINDS
_MASK_OVERRIDES = ("lesion_mask_kind", "lesion_label", "liver_mask_kind", "liver_label")


@dataclass(frozen=True)
class CohortOptions:
    """Cohort-wide options; the manifest may override the mask options per row.

    Parameters
    ----------
    lesion_mask_kind
        ``"binary"`` (default), ``"instances"`` or ``"labels"`` (with ``lesion_label``).
    lesion_label
        Class value of lesions in a multi-class mask (LiTS/MSD: 2).
    liver_mask_kind
        Kind of the liver mask; default ``"labels"`` when ``liver_label`` is given, else
        ``"binary"``.
    liver_label
        Class value of the liver in a multi-class mask (LiTS/MSD: 1, TotalSegmentator: 5).
    phase
        Contrast phase analysed when a patient has several scans on one date; default
        ``"portal_venous"`` when the manifest has a ``phase`` column.
    baseline_window_days
        The baseline is the last scan at most this many days before ``treatment_start``.
    resample_masks
        Resample masks nearest-neighbour onto the image grid instead of raising
        :class:`~metevo.exceptions.GeometryError`.
    """

    lesion_mask_kind: str = "binary"
    lesion_label: int | None = None
    liver_mask_kind: str | None = None
    liver_label: int | None = None
    phase: str | None = None
    baseline_window_days: int = 28
    resample_masks: bool = False

    def __post_init__(self) -> None:
        for name in ("lesion_mask_kind", "liver_mask_kind"):
            kind = getattr(self, name)
            if kind is not None and kind not in mio.MASK_KINDS:
                raise ValueError(f"{name} must be one of {mio.MASK_KINDS}; got {kind!r}.")
        if self.lesion_mask_kind == "labels" and self.lesion_label is None:
            raise ValueError(
                "lesion_mask_kind='labels' needs lesion_label= (e.g. 2 for LiTS/MSD masks)."
            )
        if self.baseline_window_days < 0:
            raise ValueError(
                f"baseline_window_days must be >= 0; got {self.baseline_window_days}."
            )


@dataclass(frozen=True)
class Scan:
    """One CT scan of a patient with its masks (paths only; pixels are read on demand)."""

    patient_id: str
    timepoint: str
    date: dt.date
    image_path: Path
    lesion_mask_path: Path
    liver_mask_path: Path | None = None
    phase: str | None = None
    slice_thickness_mm: float | None = None
    kernel: str | None = None
    days: int = 0
    study_day: int | None = None
    is_baseline: bool = False
    lesion_kind: str = "binary"
    lesion_label: int | None = None
    liver_kind: str = "binary"
    liver_label: int | None = None
    resample_masks: bool = False

    @property
    def context(self) -> str:
        """``"patient P001, timepoint V1"``: how messages name this scan."""
        return f"patient {self.patient_id}, timepoint {self.timepoint}"

    @property
    def lesion_mask_kind(self) -> str:
        """What :meth:`lesion_mask` returns: ``"instances"`` labels or a ``"binary"`` mask."""
        return "instances" if self.lesion_kind == "instances" else "binary"

    def header(self) -> dict:
        """Geometry of the image without decoding its pixels."""
        return _cached_header(str(self.image_path), _mtime(self.image_path))

    def image(self) -> sitk.Image:
        """The CT image (HU, pixel type as stored)."""
        return _read(self.image_path, self.context, "image")

    def lesion_mask(self) -> sitk.Image:
        """Lesion mask on the image grid: UInt8 0/1, or UInt32 instance labels."""
        return self._mask(self.lesion_mask_path, self.lesion_kind, self.lesion_label, "lesion")

    def liver_mask(self) -> sitk.Image | None:
        """Liver mask on the image grid (UInt8 0/1), or ``None`` when the manifest has none."""
        if self.liver_mask_path is None:
            return None
        return self._mask(self.liver_mask_path, self.liver_kind, self.liver_label, "liver")

    def _mask(self, path: Path, kind: str, label: int | None, what: str) -> sitk.Image:
        header = self.header()
        raw = _read(path, self.context, f"{what} mask", reference=header)
        diff = mio.grid_difference(header, raw)
        if diff:
            if not self.resample_masks:
                mio.check_same_grid(
                    header,
                    raw,
                    context=f"{self.context} ({what} mask)",
                    image_path=self.image_path,
                    mask_path=path,
                )
            raw = mio.resample_to_grid(raw, header)
        return mio.interpret_mask(
            raw, kind, label=label, context=f"{self.context} ({what} mask)", path=path
        )

    def __repr__(self) -> str:
        flag = ", baseline" if self.is_baseline else ""
        phase = f", {self.phase}" if self.phase else ""
        return (
            f"Scan({self.patient_id} {self.timepoint} {self.date.isoformat()}, day {self.days}"
            f"{phase}{flag}, image={self.image_path.name})"
        )


class ScanReads:
    """Each scan's image and masks, decoded once and shared by the stages of one patient run.

    :class:`~metevo.pipeline.PatientResult` carries one (``result.reads``) and empties it when
    the patient is done, so a scan decoded by the ``scans`` stage is not decoded again by the
    lesion graph, radiomics or trajectories. Callers must not modify the returned images.
    """

    def __init__(self) -> None:
        self._store: dict[tuple[Scan, str], sitk.Image | None] = {}

    @classmethod
    def of(cls, result: object) -> ScanReads:
        """The cache a stage's ``result`` carries, or a fresh one for a result without it."""
        reads = getattr(result, "reads", None)
        return reads if isinstance(reads, cls) else cls()

    def image(self, scan: Scan) -> sitk.Image:
        return self._get(scan, "image", scan.image)

    def lesion_mask(self, scan: Scan) -> sitk.Image:
        return self._get(scan, "lesion_mask", scan.lesion_mask)

    def liver_mask(self, scan: Scan) -> sitk.Image | None:
        return self._get(scan, "liver_mask", scan.liver_mask)

    def clear(self) -> None:
        self._store.clear()

    def _get(self, scan: Scan, what: str, read):
        key = (scan, what)
        if key not in self._store:
            self._store[key] = read()
        return self._store[key]


@dataclass(frozen=True)
class Patient:
    """One patient: analysed scans in date order, clinical row and events."""

    patient_id: str
    scans: tuple[Scan, ...]
    skipped_scans: tuple[Scan, ...] = ()
    treatment_start: dt.date | None = None
    clinical: Mapping[str, object] | None = None
    events: pd.DataFrame = field(default_factory=lambda: _empty_events())
    baseline_note: str | None = None
    protocol_notes: tuple[str, ...] = ()

    @property
    def baseline(self) -> Scan:
        """The baseline scan (see the module docstring for the rule)."""
        return next(s for s in self.scans if s.is_baseline)

    @property
    def timepoints(self) -> list[str]:
        return [s.timepoint for s in self.scans]

    def __len__(self) -> int:
        return len(self.scans)

    def __iter__(self) -> Iterator[Scan]:
        return iter(self.scans)

    def __getitem__(self, timepoint: str) -> Scan:
        for scan in self.scans:
            if scan.timepoint == timepoint:
                return scan
        raise KeyError(
            f"patient {self.patient_id} has no analysed scan at timepoint {timepoint!r}; "
            f"timepoints: {', '.join(self.timepoints)}."
        )

    def __repr__(self) -> str:
        first, last = self.scans[0].date, self.scans[-1].date
        return (
            f"Patient({self.patient_id}, {len(self.scans)} visits {first}..{last}, "
            f"baseline {self.baseline.timepoint}, {len(self.events)} events)"
        )

    def _repr_html_(self) -> str:
        header = self.baseline.header()
        geometry = (
            f"size {tuple(header['size'])}, spacing "
            f"({', '.join(f'{v:.3g}' for v in header['spacing'])}) mm"
        )
        rows = "".join(
            f"<tr><td>{html.escape(s.timepoint)}</td><td>{s.date}</td><td>{s.days}</td>"
            f"<td>{'' if s.study_day is None else s.study_day}</td>"
            f"<td>{html.escape(s.phase or '')}</td><td>{'yes' if s.is_baseline else ''}</td></tr>"
            for s in self.scans
        )
        notes = "".join(
            f"<li>{html.escape(n)}</li>"
            for n in ((self.baseline_note,) if self.baseline_note else ()) + self.protocol_notes
        )
        return (
            f"<b>Patient {html.escape(self.patient_id)}</b>: {len(self.scans)} analysed visits, "
            f"{len(self.skipped_scans)} skipped scans, {len(self.events)} events; baseline "
            f"geometry {geometry}<table><tr><th>timepoint</th><th>date</th><th>days</th>"
            f"<th>study_day</th><th>phase</th><th>baseline</th></tr>{rows}</table>"
            + (f"<ul>{notes}</ul>" if notes else "")
        )


@dataclass(frozen=True)
class Cohort:
    """A validated cohort: patients by id, plus the tables it was built from.

    ``set_aside`` maps the id of every patient whose data broke the contract to the error that
    says why; those patients are not in :attr:`patient_ids` and are reported as failures by the
    cohort runner.
    """

    patients: Mapping[str, Patient]
    manifest: pd.DataFrame
    clinical: pd.DataFrame | None
    events: pd.DataFrame | None
    options: CohortOptions
    set_aside: Mapping[str, CohortError] = field(default_factory=dict)
    source: str | None = None

    @property
    def patient_ids(self) -> list[str]:
        return sorted(self.patients)

    def __len__(self) -> int:
        return len(self.patients)

    def __iter__(self) -> Iterator[Patient]:
        return (self.patients[pid] for pid in self.patient_ids)

    def __getitem__(self, patient_id: str) -> Patient:
        if patient_id in self.patients:
            return self.patients[patient_id]
        if patient_id in self.set_aside:
            raise self.set_aside[patient_id]
        raise KeyError(
            f"no patient {patient_id!r} in this cohort ({len(self.patients)} patients)."
        )

    def failures(self) -> pd.DataFrame:
        """The set-aside patients as a failures table (``stage`` = ``"validate"``)."""
        rows = [
            {
                "patient_id": pid,
                "stage": "validate",
                "error_type": type(err).__name__,
                "error": str(err),
            }
            for pid, err in sorted(self.set_aside.items())
        ]
        return pd.DataFrame(rows, columns=["patient_id", "stage", "error_type", "error"])

    def _span(self) -> tuple[dt.date | None, dt.date | None, int]:
        scans = [s for p in self.patients.values() for s in p.scans]
        if not scans:
            return None, None, 0
        return min(s.date for s in scans), max(s.date for s in scans), len(scans)

    def __repr__(self) -> str:
        first, last, n = self._span()
        aside = f", {len(self.set_aside)} set aside" if self.set_aside else ""
        return f"Cohort({len(self.patients)} patients, {n} analysed scans, {first}..{last}{aside})"

    def _repr_html_(self) -> str:
        first, last, n = self._span()
        rows = "".join(
            f"<tr><td>{html.escape(p.patient_id)}</td><td>{len(p.scans)}</td>"
            f"<td>{p.scans[0].date}</td><td>{p.scans[-1].date}</td>"
            f"<td>{p.baseline.timepoint}</td><td>{'' if p.treatment_start is None else p.treatment_start}</td>"
            f"<td>{len(p.events)}</td></tr>"
            for p in self
        )
        aside = "".join(
            f"<li>{html.escape(pid)}: {html.escape(str(err))}</li>"
            for pid, err in sorted(self.set_aside.items())
        )
        return (
            f"<b>Cohort</b>: {len(self.patients)} patients, {n} analysed scans, {first} to {last}"
            + (f" (source {html.escape(self.source)})" if self.source else "")
            + "<table><tr><th>patient</th><th>visits</th><th>first</th><th>last</th>"
            "<th>baseline</th><th>treatment start</th><th>events</th></tr>"
            + rows
            + "</table>"
            + (f"<b>Set aside</b><ul>{aside}</ul>" if aside else "")
        )


def open_cohort(
    manifest: str | Path | pd.DataFrame,
    clinical: str | Path | pd.DataFrame | None = None,
    events: str | Path | pd.DataFrame | None = None,
    *,
    base_dir: str | Path | None = None,
    errors: str = "warn",
    **options: object,
) -> Cohort:
    """Read and validate a cohort.

    Parameters
    ----------
    manifest
        Path to a CSV or Parquet manifest, or a DataFrame (then relative paths resolve against
        ``base_dir``, default the working directory).
    clinical, events
        Optional clinical and events tables (path or DataFrame).
    errors
        ``"warn"``: set aside a patient whose rows break the contract and warn once
        (:class:`~metevo.exceptions.DataQualityWarning`); ``"raise"``: raise the first problem.
    **options
        :class:`CohortOptions` fields (``lesion_mask_kind``, ``lesion_label``,
        ``liver_mask_kind``, ``liver_label``, ``phase``, ``baseline_window_days``,
        ``resample_masks``).

    Returns
    -------
    Cohort

    Raises
    ------
    ManifestError, ClinicalTableError, EventsTableError
        A table lacks a required column (always), or a row is bad and ``errors="raise"``.
    """
    if errors not in ("warn", "raise"):
        raise ValueError(f"errors must be 'warn' or 'raise'; got {errors!r}.")
    unknown = set(options) - set(CohortOptions.__dataclass_fields__)
    if unknown:
        raise TypeError(
            f"open_cohort() got unknown option(s) {sorted(unknown)}; known options: "
            f"{sorted(CohortOptions.__dataclass_fields__)}."
        )
    opts = CohortOptions(**options)  # type: ignore[arg-type]
    table, base, source = _read_table(manifest, "manifest", ManifestError, base_dir)
    problems = _Problems(errors)
    rows = _check_manifest(table, base, source, opts, problems)
    clin = None
    if clinical is not None:
        ctable, _, csource = _read_table(clinical, "clinical table", ClinicalTableError, None)
        clin = _check_clinical(ctable, csource, set(rows.patient_id), problems)
    ev = None
    if events is not None:
        etable, _, esource = _read_table(events, "events table", EventsTableError, None)
        ev = _check_events(etable, esource, set(rows.patient_id), problems)

    patients: dict[str, Patient] = {}
    baseline_notes: list[str] = []
    protocol: list[str] = []
    for pid, group in rows.groupby("patient_id", sort=True):
        if pid in problems.by_patient:
            continue
        clin_row = None
        if clin is not None and pid in clin.index:
            clin_row = {k: _py(v) for k, v in clin.loc[pid].items()}
        patient_events = (
            ev[ev.patient_id == pid].drop(columns="patient_id").reset_index(drop=True)
            if ev is not None
            else _empty_events()
        )
        patient = _build_patient(pid, group, clin_row, patient_events, opts)
        patients[pid] = patient
        if patient.baseline_note and clin_row is not None:
            baseline_notes.append(f"{pid} ({patient.baseline_note})")
        protocol.extend(f"{pid}: {n}" for n in patient.protocol_notes)

    if problems.by_patient:
        lines = "; ".join(f"{pid}: {err}" for pid, err in sorted(problems.by_patient.items()))
        warnings.warn(
            f"{len(problems.by_patient)} patient(s) set aside, the others are kept: {lines}",
            DataQualityWarning,
            stacklevel=2,
        )
    if baseline_notes and clin is not None:
        warnings.warn(
            "first scan used as baseline for "
            f"{len(baseline_notes)} patient(s): {'; '.join(baseline_notes[:10])}"
            f"{' ...' if len(baseline_notes) > 10 else ''}",
            DataQualityWarning,
            stacklevel=2,
        )
    if protocol:
        warnings.warn(
            f"acquisition protocol changes between visits: {'; '.join(protocol[:10])}"
            f"{' ...' if len(protocol) > 10 else ''}",
            ProtocolWarning,
            stacklevel=2,
        )
    return Cohort(
        patients=patients,
        manifest=rows.reset_index(drop=True),
        clinical=None if clin is None else clin.reset_index(),
        events=ev,
        options=opts,
        set_aside=dict(problems.by_patient),
        source=source,
    )


# --------------------------------------------------------------------------- tables


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
    unknown = sorted(set(table.patient_id) - manifest_ids)
    if unknown:
        warnings.warn(
            f"clinical table {source}: {len(unknown)} patient id(s) not in the manifest are "
            f"ignored: {', '.join(unknown[:10])}{' ...' if len(unknown) > 10 else ''}.",
            DataQualityWarning,
            stacklevel=3,
        )
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
                rec[days_col] = _number(rec[days_col], f"{where}, column {days_col}")
                if np.isnan(rec[days_col]) or rec[days_col] < 0:
                    raise ClinicalTableError(
                        f"{where}, column {days_col}: expected a non-negative number of days, "
                        f"found {rec[days_col]!r}. Use the last follow-up time with event 0 "
                        "when the event was not observed."
                    )
                ev = _number(rec[event_col], f"{where}, column {event_col}")
                if ev not in (0.0, 1.0):
                    raise ClinicalTableError(
                        f"{where}, column {event_col}: expected 0 (censored) or 1 (event), "
                        f"found {rec[event_col]!r}."
                    )
                rec[event_col] = int(ev)
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
    unknown = sorted(set(table.patient_id) - manifest_ids)
    if unknown:
        warnings.warn(
            f"events table {source}: {len(unknown)} patient id(s) not in the manifest are "
            f"ignored: {', '.join(unknown[:10])}{' ...' if len(unknown) > 10 else ''}.",
            DataQualityWarning,
            stacklevel=3,
        )
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
        out.append(
            {
                "patient_id": pid,
                "date": date,
                "event": kind,
                "note": None if _is_blank(note) else str(note),
            }
        )
    frame = pd.DataFrame.from_records(out, columns=["patient_id", "date", "event", "note"])
    return frame.sort_values(["patient_id", "date"], kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------- patients


def _build_patient(
    pid: str,
    group: pd.DataFrame,
    clinical: dict | None,
    events: pd.DataFrame,
    opts: CohortOptions,
) -> Patient:
    group = group.sort_values(["date", "timepoint"], kind="stable")
    analysed = group[group["_analysed"]]
    skipped = group[~group["_analysed"]]
    treatment_start = clinical.get(Clinical.TREATMENT_START) if clinical else None
    first = analysed["date"].iloc[0]

    def make(rec: dict) -> Scan:
        return Scan(
            patient_id=pid,
            timepoint=rec["timepoint"],
            date=rec["date"],
            image_path=Path(rec[Manifest.IMAGE]),
            lesion_mask_path=Path(rec[Manifest.LESION_MASK]),
            liver_mask_path=None if rec.get(Manifest.LIVER_MASK) is None else Path(rec[Manifest.LIVER_MASK]),
            phase=rec.get(Manifest.PHASE),
            slice_thickness_mm=rec.get(Manifest.SLICE_THICKNESS_MM),
            kernel=rec.get(Manifest.KERNEL),
            days=(rec["date"] - first).days,
            study_day=None if treatment_start is None else (rec["date"] - treatment_start).days,
            lesion_kind=rec["_lesion_kind"],
            lesion_label=rec["_lesion_label"],
            liver_kind=rec["_liver_kind"],
            liver_label=rec["_liver_label"],
            resample_masks=opts.resample_masks,
        )

    scans = [make(r) for r in analysed.to_dict("records")]
    baseline_idx, note = _baseline_index(scans, treatment_start, opts.baseline_window_days)
    scans[baseline_idx] = replace(scans[baseline_idx], is_baseline=True)
    return Patient(
        patient_id=pid,
        scans=tuple(scans),
        skipped_scans=tuple(make(r) for r in skipped.to_dict("records")),
        treatment_start=treatment_start,
        clinical=clinical,
        events=events,
        baseline_note=note,
        protocol_notes=tuple(_protocol_changes(scans)),
    )


def _baseline_index(
    scans: list[Scan], treatment_start: dt.date | None, window: int
) -> tuple[int, str | None]:
    if treatment_start is None:
        return 0, "no treatment_start: first scan used as baseline"
    candidates = [
        i
        for i, s in enumerate(scans)
        if s.date <= treatment_start and (treatment_start - s.date).days <= window
    ]
    if candidates:
        return candidates[-1], None
    return 0, (
        f"no scan within {window} days on or before treatment_start {treatment_start}: first "
        f"scan ({scans[0].timepoint}, {scans[0].date}) used as baseline"
    )


def _protocol_changes(scans: list[Scan]) -> list[str]:
    notes = []
    for attr, label in (
        ("phase", "phase"),
        ("slice_thickness_mm", "slice thickness (mm)"),
        ("kernel", "kernel"),
    ):
        values = [(s.timepoint, getattr(s, attr)) for s in scans if getattr(s, attr) is not None]
        for (tp0, v0), (tp1, v1) in zip(values, values[1:], strict=False):
            if v0 != v1:
                notes.append(f"{label} changes from {v0} at {tp0} to {v1} at {tp1}")
    return notes


# --------------------------------------------------------------------------- helpers


def _empty_events() -> pd.DataFrame:
    return pd.DataFrame({"date": pd.Series(dtype=object), "event": pd.Series(dtype=str), "note": pd.Series(dtype=object)})


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


def _py(v: object) -> object:
    if isinstance(v, np.generic):
        return v.item()
    if v is pd.NA:
        return None
    return v


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


@functools.lru_cache(maxsize=4096)
def _cached_header(path: str, mtime: float) -> dict:
    return mio.read_image_header(path)


def _read(path: Path, context: str, what: str, reference: dict | None = None) -> sitk.Image:
    try:
        return mio.read_image(path, reference=reference)
    except MetevoError as exc:
        raise type(exc)(f"{context} ({what}): {exc}") from exc
