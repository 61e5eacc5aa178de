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

Events columns: ``patient_id``, ``date``, ``event`` (one of :data:`EVENT_KINDS`), optional ``note``
and, on ``resection`` / ``ablation`` rows, the treated lesions: ``lesion_ids`` or ``track_ids``
(ids of the lesions table at the last scan before the event, ``;``-separated) or a point
``point_x_mm``, ``point_y_mm``, ``point_z_mm`` (physical LPS mm in that scan; the nearest lesion
within :data:`metevo.response.RESECTION_POINT_TOLERANCE_MM` is the treated one). Without them the
treated lesions are inferred (see :mod:`metevo.response._recist_graph`). A checked row keeps its
source ``line`` for later error messages.

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

from metevo.cohort import io as mio
from metevo.cohort._options import CohortOptions
from metevo.cohort._tables import (
    EVENT_COLUMNS,
    _check_clinical,
    _check_events,
    _check_manifest,
    _Problems,
    _read_table,
)
from metevo.columns import Clinical, Events, Manifest
from metevo.exceptions import (
    ClinicalTableError,
    CohortError,
    DataQualityWarning,
    EventsTableError,
    ManifestError,
    MetevoError,
    ProtocolWarning,
)

__all__ = ["EVENT_KINDS", "Cohort", "CohortOptions", "Patient", "Scan", "ScanReads", "open_cohort"]

EVENT_KINDS = Events.KINDS
_MASK_OVERRIDES = ("lesion_mask_kind", "lesion_label", "liver_mask_kind", "liver_label")


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

    :class:`~metevo.runner.PatientResult` carries one (``result.reads``) and empties it when
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
    return pd.DataFrame({c: pd.Series(dtype=object) for c in EVENT_COLUMNS})


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
