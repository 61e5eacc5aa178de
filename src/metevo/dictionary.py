"""The data dictionary: one Frictionless Table Schema per output table.

Every table metevo writes has ``data_dictionary/<table>.schema.json`` describing each column
(``name``, ``type``, ``unit``, ``description``, ``constraints``: ``required``, ``enum``) and the
table's ``primaryKey``. This module loads the schemas, casts tables to the documented types
before they are written, validates tables against them (with pandera) and renders the Markdown
page ``data_dictionary/README.md``::

    python -m metevo.dictionary          # rewrite data_dictionary/README.md
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import pandas as pd

from metevo.exceptions import MissingDependencyError

__all__ = [
    "coerce_table",
    "dictionary_dir",
    "load_schema",
    "render_markdown",
    "schema_names",
    "validate_table",
]

_TYPES = ("string", "integer", "number", "boolean", "date", "datetime")


def dictionary_dir() -> Path:
    """The folder holding the schemas (inside the installed package, or the source tree)."""
    packaged = Path(__file__).resolve().parent / "_data_dictionary"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "data_dictionary"


def schema_names() -> list[str]:
    """Names of every documented table."""
    folder = dictionary_dir()
    return sorted(p.name[: -len(".schema.json")] for p in folder.glob("*.schema.json"))


@functools.lru_cache(maxsize=128)
def _load(path: str, mtime: float) -> dict:
    with open(path, encoding="utf-8") as fh:
        schema = json.load(fh)
    for f in schema.get("fields", []):
        if f.get("type") not in _TYPES:
            raise ValueError(f"{path}: field {f.get('name')!r} has unknown type {f.get('type')!r}.")
    return schema


def load_schema(table: str) -> dict | None:
    """The Table Schema of ``table`` as a dict, or ``None`` when it is not documented."""
    path = dictionary_dir() / f"{table}.schema.json"
    if not path.exists():
        return None
    return _load(str(path), path.stat().st_mtime)


def coerce_table(frame: pd.DataFrame, table: str) -> pd.DataFrame:
    """Cast the documented columns of ``frame`` to their schema types (a copy).

    integer → pandas ``Int64`` (nullable), number → ``float64``, boolean → ``boolean``,
    string → ``string``, date/datetime → ``datetime64[ns]``. Undocumented columns are left as
    they are (the dictionary test catches them).
    """
    schema = load_schema(table)
    if schema is None:
        return frame
    out = frame.copy()
    for f in schema["fields"]:
        name = f["name"]
        if name not in out.columns:
            continue
        col = out[name]
        kind = f["type"]
        if kind == "integer":
            out[name] = pd.to_numeric(col, errors="raise").astype("Int64") if len(col) else col.astype("Int64")
        elif kind == "number":
            out[name] = pd.to_numeric(col, errors="raise").astype("float64")
        elif kind == "boolean":
            out[name] = col.astype("boolean")
        elif kind == "string":
            out[name] = col.astype("string")
        else:
            out[name] = pd.to_datetime(col).astype("datetime64[ns]")
    return out


def validate_table(frame: pd.DataFrame, table: str) -> pd.DataFrame:
    """Validate ``frame`` against the schema of ``table`` with pandera.

    Checks that every column is documented (no extra columns), every documented required column
    is present and complete, types match, enums hold and the primary key is unique.

    Raises
    ------
    KeyError
        ``table`` has no schema.
    pandera.errors.SchemaErrors
        The table breaks its schema (every failure is listed).
    """
    try:
        import pandera.pandas as pa
    except ImportError as exc:
        raise MissingDependencyError(
            "validating tables needs pandera: pip install 'metevo[dev]' (or pip install pandera)."
        ) from exc
    schema = load_schema(table)
    if schema is None:
        raise KeyError(
            f"table {table!r} is not documented: add data_dictionary/{table}.schema.json."
        )
    checks_by_type = {
        "integer": lambda s: pd.api.types.is_integer_dtype(s.dtype) or s.isna().all(),
        "number": lambda s: (pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype)) or s.isna().all(),
        "boolean": lambda s: pd.api.types.is_bool_dtype(s.dtype) or s.isna().all(),
        "string": lambda s: pd.api.types.is_string_dtype(s.dtype) or pd.api.types.is_object_dtype(s.dtype) or s.isna().all(),
        "date": lambda s: pd.api.types.is_datetime64_any_dtype(s.dtype) or s.isna().all(),
        "datetime": lambda s: pd.api.types.is_datetime64_any_dtype(s.dtype) or s.isna().all(),
    }
    columns = {}
    for f in schema["fields"]:
        constraints = f.get("constraints", {})
        required = bool(constraints.get("required", False))
        checks = [
            pa.Check(checks_by_type[f["type"]], element_wise=False, name=f"type {f['type']}")
        ]
        if "enum" in constraints:
            checks.append(pa.Check.isin(constraints["enum"]))
        if "minimum" in constraints:
            checks.append(pa.Check.ge(constraints["minimum"]))
        if "maximum" in constraints:
            checks.append(pa.Check.le(constraints["maximum"]))
        columns[f["name"]] = pa.Column(
            dtype=None, checks=checks, nullable=not required, required=required
        )
    key = schema.get("primaryKey") or None
    if isinstance(key, str):
        key = [key]
    pa_schema = pa.DataFrameSchema(
        columns, strict=True, unique=key, name=table, coerce=False
    )
    return pa_schema.validate(frame, lazy=True)


def render_markdown() -> str:
    """The data dictionary as one Markdown page (what ``data_dictionary/README.md`` holds)."""
    lines = [
        "# metevo data dictionary",
        "",
        "Generated from the `*.schema.json` files (Frictionless Table Schema) by "
        "`python -m metevo.dictionary`; do not edit by hand.",
        "",
        "| table | description |",
        "|---|---|",
    ]
    names = schema_names()
    for name in names:
        schema = load_schema(name)
        lines.append(f"| [`{name}`](#{name}) | {_one_line(schema.get('description', ''))} |")
    for name in names:
        schema = load_schema(name)
        key = schema.get("primaryKey") or []
        key = [key] if isinstance(key, str) else key
        lines += [
            "",
            f"## {name}",
            "",
            f"**{schema.get('title', name)}** (`{name}.parquet`). {schema.get('description', '')}",
            "",
            f"Primary key: {', '.join(f'`{k}`' for k in key) if key else '(none)'}",
            "",
            "| column | type | unit | required | description |",
            "|---|---|---|---|---|",
        ]
        for f in schema["fields"]:
            c = f.get("constraints", {})
            desc = _one_line(f.get("description", ""))
            if "enum" in c:
                desc += " Values: " + ", ".join(f"`{v}`" for v in c["enum"]) + "."
            lines.append(
                f"| `{f['name']}` | {f['type']} | {f.get('unit', '') or ''} | "
                f"{'yes' if c.get('required') else ''} | {desc} |"
            )
    return "\n".join(lines) + "\n"


def _one_line(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def main(argv: list[str] | None = None) -> int:
    """Write ``data_dictionary/README.md``; with ``--check``, fail when it is out of date."""
    argv = sys.argv[1:] if argv is None else argv
    target = dictionary_dir() / "README.md"
    text = render_markdown()
    if "--check" in argv:
        current = target.read_text(encoding="utf-8") if target.exists() else ""
        if current != text:
            print(f"{target} is out of date: run python -m metevo.dictionary", file=sys.stderr)
            return 1
        return 0
    target.write_text(text, encoding="utf-8")
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
