"""Per-patient shards: written atomically as each patient finishes, reused by the next run.

Layout of an analysis folder::

    out/
      _shards/<patient>/shard.json          fingerprint, failures, warnings, table names
      _shards/<patient>/<table>.parquet      that patient's rows of each table
      <table>.parquet                        gathered from the shards of the cohort's patients
      failures.parquet

A patient's shard folder is built under a temporary name (``_shards/.tmp-...``) and renamed into
place when complete, so a run killed at any moment leaves either the previous complete shard or
none; ``shard.json`` is written last inside it. Leftover temporary folders are removed by the
next run.

The **fingerprint** (:func:`patient_fingerprint`) is a SHA-256 over: the metevo version; the
stages run and their options; everything the :class:`~metevo.cohort.Patient` holds (each scan's
timepoint, date, phase, file paths and mask options; the clinical row; the events rows; the
baseline and protocol notes); and, for every input file (image, lesion mask, liver mask, each
file of a DICOM folder), its size in bytes and modification time in nanoseconds. Sizes and
mtimes are used rather than content hashes because hashing a cohort means reading every byte of
it again (minutes per patient on a network share) while a copy, a re-export or an edit changes
the mtime. A patient is skipped on a rerun when its shard's fingerprint matches and its run
completed; a patient whose stage failed or whose worker crashed is computed again.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import quote

import pandas as pd

__all__ = ["SHARDS", "ShardStore", "patient_fingerprint"]

SHARDS = "_shards"
_META = "shard.json"


def _jsonable(value: object) -> object:
    """A canonical, JSON-serialisable form of a value (sorted mappings, paths as strings)."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(_jsonable(v) for v in value)
    if isinstance(value, pd.DataFrame):
        return value.to_csv(index=False)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "__dataclass_fields__"):
        return {k: _jsonable(getattr(value, k)) for k in sorted(value.__dataclass_fields__)}
    return repr(value)


def _file_stats(path: Path | None) -> list:
    if path is None:
        return []
    path = Path(path)
    if path.is_dir():
        return [s for f in sorted(path.iterdir()) for s in _file_stats(f)]
    try:
        st = path.stat()
    except OSError:
        return [str(path), None, None]
    return [str(path), st.st_size, st.st_mtime_ns]


def patient_fingerprint(
    patient: object,
    *,
    stages: Iterable[str],
    stage_options: Mapping[str, Mapping[str, object]] | None = None,
) -> str:
    """SHA-256 (hex) of a patient's inputs, the stages and their options, and the metevo version.

    See the module docstring for what enters it and why sizes + mtimes rather than hashes.
    """
    from metevo._version import __version__

    files = []
    for scan in patient.scans:
        for p in (scan.image_path, scan.lesion_mask_path, scan.liver_mask_path):
            files.append(_file_stats(p))
    payload = {
        "metevo": __version__,
        "stages": list(stages),
        "stage_options": _jsonable(stage_options or {}),
        "patient": _jsonable(patient),
        "files": files,
    }
    text = json.dumps(payload, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


class ShardStore:
    """The ``_shards`` folder of an analysis folder (see the module docstring)."""

    def __init__(self, out_dir: str | Path) -> None:
        self.out_dir = Path(out_dir)
        self.root = self.out_dir / SHARDS

    def folder(self, patient_id: str) -> Path:
        return self.root / quote(patient_id, safe="")

    def clean_leftovers(self) -> None:
        """Remove the temporary folders a killed run left behind."""
        if self.root.exists():
            for p in self.root.iterdir():
                if p.name.startswith((".tmp-", ".old-")):
                    shutil.rmtree(p, ignore_errors=True)

    def meta(self, patient_id: str) -> dict | None:
        """The patient's ``shard.json``, or ``None`` when it has no complete shard."""
        try:
            return json.loads((self.folder(patient_id) / _META).read_text())
        except (OSError, ValueError):
            return None

    def is_current(self, patient_id: str, fingerprint: str) -> bool:
        """Whether the patient's shard was computed from these inputs and completed."""
        meta = self.meta(patient_id)
        return bool(meta and meta.get("fingerprint") == fingerprint and meta.get("complete"))

    def commit(
        self,
        patient_id: str,
        *,
        fingerprint: str,
        tables: Mapping[str, pd.DataFrame],
        failures: list[dict],
        warnings: list[tuple[str, str]],
        complete: bool,
    ) -> Path:
        """Write the patient's tables and record atomically (temporary folder + rename)."""
        from metevo.dictionary import coerce_table

        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".tmp-{uuid.uuid4().hex}"
        tmp.mkdir()
        for table, frame in tables.items():
            coerce_table(frame, table).to_parquet(tmp / f"{table}.parquet", index=False)
        meta = {
            "patient_id": patient_id,
            "fingerprint": fingerprint,
            "complete": bool(complete),
            "tables": sorted(tables),
            "failures": [{k: _jsonable(v) for k, v in f.items()} for f in failures],
            "warnings": [list(w) for w in warnings],
        }
        (tmp / _META).write_text(json.dumps(meta, indent=1, sort_keys=True))
        final = self.folder(patient_id)
        olds = []
        for attempt in range(5):  # another run may commit the same patient at the same moment
            if final.exists():
                olds.append(self.root / f".old-{uuid.uuid4().hex}")
                try:
                    os.replace(final, olds[-1])
                except FileNotFoundError:
                    olds.pop()
            try:
                os.replace(tmp, final)
                break
            except OSError:
                if attempt == 4:
                    raise
        for old in olds:
            shutil.rmtree(old, ignore_errors=True)
        return final

    def read_tables(self, patient_id: str) -> dict[str, pd.DataFrame]:
        meta = self.meta(patient_id) or {}
        folder = self.folder(patient_id)
        return {t: pd.read_parquet(folder / f"{t}.parquet") for t in meta.get("tables", [])}

    def gather(self, patient_ids: Iterable[str]) -> list[str]:
        """Concatenate the patients' shards into ``<table>.parquet`` (sorted by patient).

        One table is held in memory at a time. Returns the names of the tables written.
        """
        from metevo.dictionary import coerce_table

        ids = sorted(patient_ids)
        metas = {pid: self.meta(pid) for pid in ids}
        names = sorted({t for m in metas.values() if m for t in m.get("tables", [])})
        for table in names:
            frames = [
                pd.read_parquet(self.folder(pid) / f"{table}.parquet")
                for pid in ids
                if metas[pid] and table in metas[pid].get("tables", [])
            ]
            frames = [f for f in frames if len(f.columns)]
            frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
            atomic_parquet(coerce_table(frame, table), self.out_dir / f"{table}.parquet")
        return names

    def failures(self, patient_ids: Iterable[str]) -> list[dict]:
        return [f for pid in sorted(patient_ids) for f in (self.meta(pid) or {}).get("failures", [])]


def atomic_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Write ``frame`` to ``path`` through a temporary file and a rename."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)
