"""``metevo report DIR --out REPORT``: a static HTML report of an analysis folder (Jinja2).

The report is a folder: ``index.html`` (cohort: patient list, waterfall, spider, swimmer,
pattern and survival figures, failures, QC per scan) and ``patients/<id>.html`` (timeline,
RECIST table per visit with the reasons for NE, lesion graph, trajectory panel, and for each
visit axial CT slices through every target and new lesion with the lesion contours in their
track colour). Images are PNG files next to the pages, referenced by relative paths, so the
folder opens from disk and can be zipped and sent as it is.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from metevo.cohort import recorded_cohort
from metevo.report._crops import slug as _slug
from metevo.report._crops import track_roles as _track_roles
from metevo.report._crops import visit_slices
from metevo.report._figures import draw_figures, read_tables

__all__ = ["write_report"]

_COHORT_FIGURES = {
    "waterfall": "Waterfall: best change of the target sum",
    "spider": "Spider: change of the target sum over time",
    "swimmer": "Swimmer: follow-up, responses and events",
    "pattern_members": "Evolution patterns: the members' tumour volume over time",
    "pattern_selection": "Evolution patterns: choice of the number of patterns",
    "survival_forest": "Cox model of the patterns",
}
_PATIENT_TOP = {"timeline": "Timeline"}
_PATIENT_BOTTOM = {
    "lesion_graph": "Lesion graph (rows: tracks in their contour colour)",
    "trajectory_panel": "Lesion trajectories",
}
_RECIST_COLUMNS = [
    "timepoint", "date", "days", "evaluable", "not_evaluable_reason", "target_sum_mm",
    "pct_change_baseline", "pct_change_nadir", "target_response", "target_response_margin_mm",
    "nontarget_response", "new_lesions", "overall_response",
]
_QC_COLUMNS = [
    "patient_id", "timepoint", "date", "qc_flag", "qc_note", "registration_ok", "liver_in_fov",
    "mask_empty", "lesion_volume_ml", "liver_volume_ml",
]


def _html_table(df: pd.DataFrame | None, columns: Sequence[str] | None = None) -> str:
    if df is None or df.empty:
        return ""
    if columns is not None:
        df = df[[c for c in columns if c in df.columns]]
    df = df.copy()
    for col in df.columns:
        if pd.api.types.is_float_dtype(df[col]):
            df[col] = df[col].map(lambda v: "" if pd.isna(v) else f"{v:.1f}")
        else:
            df[col] = df[col].map(lambda v: "" if v is None or (not isinstance(v, str) and pd.isna(v)) else v)
    return df.to_html(index=False, escape=True, border=0, na_rep="")


def write_report(
    analysis: str | Path,
    out: str | Path,
    *,
    manifest: str | Path | None = None,
    events: str | Path | pd.DataFrame | None = None,
    cohort_options: Mapping[str, Any] | None = None,
    patient_ids: Sequence[str] | None = None,
    fov_mm: float = 120.0,
    max_slices_per_visit: int = 12,
    dpi: int = 110,
    echo: Callable[[str], object] | None = None,
) -> Path:
    """Write the HTML report of an analysis folder into ``out``; returns ``out/index.html``.

    Parameters
    ----------
    analysis
        Folder written by ``metevo analyze`` (``metevo patterns`` optional).
    out
        Report folder (created; pages and images are overwritten).
    manifest
        The cohort manifest, overriding the one :func:`metevo.analyze` recorded in
        ``analysis/inputs.json``. With a manifest (recorded or given) every visit shows CT slices
        through its target and new lesions (window -150/250 HU), contours in track colour, and a
        track's crops after its first visit show the same anatomy, carried by the registrations
        stored in ``registrations.parquet``; without one the pages hold the tables and figures only.
    events
        Events table (CSV/Parquet or DataFrame) for the swimmer plots.
    cohort_options
        Keyword options of :func:`metevo.open_cohort` (``lesion_mask_kind``, ``liver_label``,
        ``resample_masks``, ...) overriding the recorded ones; None values are ignored.
    patient_ids
        Patients to write pages for (default all).
    fov_mm, max_slices_per_visit, dpi
        Crop width of the CT slices, their number per visit, and image resolution.
    echo
        Called with progress lines, or None.

    Returns
    -------
    pathlib.Path
        ``out/index.html``.
    """
    import jinja2

    from metevo._version import __version__

    analysis, out = Path(analysis), Path(out)
    tables = read_tables(analysis)
    out.mkdir(parents=True, exist_ok=True)
    say = echo or (lambda _line: None)
    say(f"drawing figures into {out / 'figures'}")
    figs = draw_figures(analysis, out / "figures", events=events, patient_ids=patient_ids,
                        dpi=dpi, formats=("png",), echo=None)
    written = figs[figs["status"] == "written"]
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("metevo.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
    )
    common = {
        "version": __version__,
        "written": dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "analysis_name": analysis.name,
    }
    ids = sorted(set(written["patient_id"]) - {""}) if patient_ids is None else list(patient_ids)
    for name in ("scans", "recist"):
        if name in tables:
            ids = sorted(set(ids) | set(tables[name]["patient_id"].astype(str))) if patient_ids is None else ids
    cohort = recorded_cohort(analysis, manifest=manifest, options=cohort_options)
    pages = {pid: f"patients/{_slug(pid)}.html" for pid in ids}
    (out / "patients").mkdir(exist_ok=True)
    patient_tpl = env.get_template("patient.html.j2")
    failures = tables.get("failures")
    for i, pid in enumerate(ids):
        say(f"patient {pid} ({i + 1}/{len(ids)})")
        mine = written[written["patient_id"] == pid].set_index("figure")["png"]

        def fig_list(spec: dict[str, str], mine=mine) -> list[dict]:
            return [{"title": t, "src": "../figures/" + mine[k]} for k, t in spec.items() if k in mine]

        visits, note = visit_slices(pid, tables, cohort, out, fov_mm, max_slices_per_visit, dpi)
        recist = tables.get("recist")
        rec = recist[recist["patient_id"] == pid] if recist is not None else None
        rl = _track_roles(pid, tables)
        fail = failures[failures["patient_id"] == pid] if failures is not None else None
        html = patient_tpl.render(
            title=f"Patient {pid}",
            previous=f"{_slug(ids[i - 1])}.html" if i > 0 else "",
            next=f"{_slug(ids[i + 1])}.html" if i + 1 < len(ids) else "",
            top_figures=fig_list(_PATIENT_TOP),
            bottom_figures=fig_list(_PATIENT_BOTTOM),
            recist=_html_table(rec, _RECIST_COLUMNS),
            recist_lesions=_html_table(rl, ["timepoint", "lesion_id", "track_id", "role", "ld_mm", "state"]),
            visits=visits,
            slices_note=note,
            failures=_html_table(fail, ["stage", "error_type", "error"]),
            **common,
        )
        (out / pages[pid]).write_text(html, encoding="utf-8")
    cohort_figs = written[written["patient_id"] == ""].set_index("figure")["png"]
    titles = dict(_COHORT_FIGURES)
    for key in cohort_figs.index:
        if key.startswith("survival_km"):
            titles[key] = "Kaplan-Meier curves by pattern (" + key.removeprefix("survival_km_").replace("_", " ") + ")"
        elif key.startswith("patterns_"):
            titles[key] = "Patterns and " + key.removeprefix("patterns_").replace("_", " ")
    order = list(_COHORT_FIGURES) + sorted(k for k in cohort_figs.index if k not in _COHORT_FIGURES)
    index = env.get_template("index.html.j2").render(
        title=f"metevo report: {analysis.name}",
        patients=[{"patient_id": p, "href": pages[p]} for p in ids],
        patient_table=_patient_table(ids, pages, tables),
        n_scans=len(tables["scans"]) if "scans" in tables else 0,
        n_failures=len(failures) if failures is not None else 0,
        cohort_figures=[{"title": titles[k], "src": "figures/" + cohort_figs[k]} for k in order if k in cohort_figs],
        skipped="; ".join(f"{r.figure}: {r.note}" for r in figs[figs["status"] == "skipped"].itertuples() if not r.patient_id),
        failures=_html_table(failures),
        qc=_html_table(tables.get("scans"), _QC_COLUMNS),
        **common,
    )
    index_path = out / "index.html"
    index_path.write_text(index, encoding="utf-8")
    say(f"report written: {index_path}")
    return index_path


def _patient_table(ids: Sequence[str], pages: Mapping[str, str], tables: dict[str, pd.DataFrame]) -> str:
    import html

    rows = []
    patients = tables.get("patients")
    scans = tables.get("scans")
    lesions = tables.get("lesions")
    by_pid = patients.set_index("patient_id") if patients is not None else None
    for pid in ids:
        row = {"patient": f'<a href="{html.escape(pages[pid])}">{html.escape(pid)}</a>'}
        row["visits"] = int((scans["patient_id"] == pid).sum()) if scans is not None else ""
        row["tracks"] = (
            int(lesions.loc[lesions["patient_id"] == pid, "track_id"].nunique()) if lesions is not None else ""
        )
        if by_pid is not None and pid in by_pid.index:
            for col in ("best_response", "best_response_confirmed", "imaging_pfs_days"):
                if col in by_pid:
                    v = by_pid.loc[pid, col]
                    row[col.replace("_", " ")] = "" if pd.isna(v) else (f"{v:.0f}" if isinstance(v, float) else html.escape(str(v)))
        rows.append(row)
    return pd.DataFrame(rows).to_html(index=False, escape=False, border=0) if rows else ""
