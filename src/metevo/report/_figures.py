"""``metevo figures DIR``: every figure the tables of an analysis folder allow, as PNG and PDF."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

__all__ = ["draw_figures", "read_tables"]

_TABLES = (
    "scans",
    "lesions",
    "lesion_edges",
    "recist",
    "recist_lesions",
    "patients",
    "trajectories",
    "patient_trajectories",
    "patterns",
    "pattern_selection",
    "survival_km",
    "survival_cox",
    "response_association",
    "failures",
    "registrations",
)
_FIGURE_COLUMNS = ["figure", "patient_id", "png", "pdf", "status", "note"]


def read_tables(analysis: str | Path) -> dict[str, pd.DataFrame]:
    """The Parquet tables of an analysis folder (``{name: DataFrame}``, absent ones left out)."""
    analysis = Path(analysis)
    if not analysis.is_dir():
        raise FileNotFoundError(
            f"analysis folder {analysis} does not exist; pass the --out folder of `metevo analyze`."
        )
    tables = {n: pd.read_parquet(analysis / f"{n}.parquet") for n in _TABLES if (analysis / f"{n}.parquet").exists()}
    if "recist" not in tables and "lesions" not in tables and "scans" not in tables:
        raise FileNotFoundError(
            f"{analysis} holds none of scans.parquet, lesions.parquet, recist.parquet: it is not an "
            "analysis folder of `metevo analyze`."
        )
    return tables


def _events(events: str | Path | pd.DataFrame | None) -> pd.DataFrame | None:
    if events is None or isinstance(events, pd.DataFrame):
        return events
    path = Path(events)
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)


def draw_figures(
    analysis: str | Path,
    out: str | Path | None = None,
    *,
    events: str | Path | pd.DataFrame | None = None,
    patient_ids: Sequence[str] | None = None,
    dpi: int = 150,
    formats: Sequence[str] = ("png", "pdf"),
    echo: Callable[[str], object] | None = None,
) -> pd.DataFrame:
    """Draw every figure the tables of ``analysis`` allow, into ``out`` (default ``analysis/figures``).

    Cohort figures: waterfall, spider and swimmer (``recist``, ``patients``, events), and when
    ``metevo patterns`` ran, the pattern selection, Kaplan-Meier curves per endpoint, the Cox
    forest plot and the pattern x response heatmaps. Per patient (``patients/<id>/``): the
    lesion graph (``lesions`` + ``lesion_edges``), the trajectory panel (``trajectories``) and the
    patient's swimmer row.

    Parameters
    ----------
    analysis
        Folder written by ``metevo analyze``.
    out
        Output folder (default ``analysis/figures``).
    events
        Events table (CSV/Parquet path or DataFrame) for the swimmer plot's markers.
    patient_ids
        Patients to draw per-patient figures for (default: all).
    dpi, formats
        Resolution of the PNGs; file formats (default PNG and PDF).
    echo
        Called with one line per figure drawn (progress), or None.

    Returns
    -------
    pandas.DataFrame
        One row per figure: ``figure``, ``patient_id`` (empty for cohort figures), ``png``,
        ``pdf`` (paths relative to ``out``), ``status`` (``written`` or ``skipped``), ``note``
        (why a figure was skipped).
    """
    import matplotlib.pyplot as plt

    from metevo.plotting import patterns as pp
    from metevo.plotting.graph import plot_lesion_graph
    from metevo.plotting.response import spider, swimmer, waterfall
    from metevo.plotting.trajectories import plot_trajectory_panel

    tables = read_tables(analysis)
    out = Path(out) if out is not None else Path(analysis) / "figures"
    out.mkdir(parents=True, exist_ok=True)
    ev = _events(events)
    rows: list[dict] = []

    def save(fig, name: str, pid: str = "") -> None:
        base = out / ("patients/" + pid if pid else "") / name
        base.parent.mkdir(parents=True, exist_ok=True)
        paths = {}
        for fmt in formats:
            path = base.with_suffix("." + fmt)
            fig.savefig(path, dpi=dpi, bbox_inches="tight")
            paths[fmt] = str(path.relative_to(out))
        plt.close(fig)
        rows.append({"figure": name, "patient_id": pid, "png": paths.get("png", ""),
                     "pdf": paths.get("pdf", ""), "status": "written", "note": ""})
        if echo is not None:
            echo(f"  {base.relative_to(out)}")

    def skip(name: str, note: str, pid: str = "") -> None:
        rows.append({"figure": name, "patient_id": pid, "png": "", "pdf": "", "status": "skipped", "note": note})

    recist = tables.get("recist")
    patients = tables.get("patients")
    post = recist is not None and recist["overall_response"].notna().any()
    if recist is None:
        for name in ("waterfall", "spider", "swimmer"):
            skip(name, "no recist.parquet")
    else:
        if post:
            for name, draw in (("waterfall", waterfall), ("spider", spider)):
                fig, ax = plt.subplots(figsize=(8, 4.5), constrained_layout=True)
                draw(recist, patients, ax=ax)
                save(fig, name)
        else:
            for name in ("waterfall", "spider"):
                skip(name, "no post-baseline RECIST assessment (single visit per patient)")
        n = recist["patient_id"].nunique()
        fig, ax = plt.subplots(figsize=(8, 1.2 + 0.3 * n), constrained_layout=True)
        swimmer(recist, patients, ev, ax=ax)
        save(fig, "swimmer")

    if "patterns" in tables and "patient_trajectories" in tables and tables["patterns"]["pattern"].notna().any():
        save(pp.plot_pattern_members(tables["patterns"], tables["patient_trajectories"]), "pattern_members")
    if "pattern_selection" in tables:
        save(pp.plot_pattern_selection(tables["pattern_selection"]), "pattern_selection")
    km = tables.get("survival_km")
    if km is not None and len(km):
        keys = ["endpoint"] + (["analysis"] if "analysis" in km else [])
        groups = list(km.groupby(keys, sort=True))
        for i, (key, sub) in enumerate(groups):
            endpoint = key[0] if isinstance(key, tuple) else key
            fig, ax = plt.subplots(figsize=(6.0, 4.4), constrained_layout=True)
            pp.plot_km(sub, ax=ax)
            if "analysis" in sub and isinstance(sub["analysis"].iloc[0], str):
                ax.set_title(sub["analysis"].iloc[0], fontsize=8, wrap=True)
            save(fig, f"survival_km_{endpoint}" + (f"_{i + 1}" if len(groups) > 1 else ""))
    cox = tables.get("survival_cox")
    if cox is not None and len(cox):
        fitted = cox["fitted"].astype(bool) if "fitted" in cox else pd.Series(True, index=cox.index)
        if fitted.all():
            save(pp.plot_forest(cox).figure, "survival_forest")
        else:  # too few events per parameter: the table says why, no forest plot is drawn
            skip("survival_forest", str(cox.loc[~fitted, "note"].iloc[0]))
    assoc = tables.get("response_association")
    if assoc is not None and len(assoc):
        for variable in sorted(assoc["variable"].unique()):
            save(pp.plot_response_heatmap(assoc, variable).figure, f"patterns_{variable}")

    ids = _patient_ids(tables, patient_ids)
    lesions, edges = tables.get("lesions"), tables.get("lesion_edges")
    traj, ptraj = tables.get("trajectories"), tables.get("patient_trajectories")
    for pid in ids:
        if lesions is not None and (lesions["patient_id"] == pid).any():
            e = edges if edges is not None else pd.DataFrame(columns=["patient_id"])
            save(plot_lesion_graph(lesions, e, patient_id=pid).figure, "lesion_graph", pid)
        else:
            skip("lesion_graph", "no lesion in the lesions table", pid)
        n_visits = traj.loc[traj["patient_id"] == pid, "timepoint"].nunique() if traj is not None else 0
        if n_visits >= 2:
            axes = plot_trajectory_panel(traj, ptraj, patient_id=pid)
            save(axes[0].figure, "trajectory_panel", pid)
        else:
            skip("trajectory_panel", f"{n_visits} visit(s) in trajectories.parquet: no trajectory", pid)
        if recist is not None and (recist["patient_id"] == pid).any():
            fig, ax = plt.subplots(figsize=(8, 1.7), constrained_layout=True)
            mine = recist[recist["patient_id"] == pid]
            pat = patients[patients["patient_id"] == pid] if patients is not None else None
            swimmer(mine, pat, ev[ev["patient_id"] == pid] if ev is not None else None, ax=ax)
            save(fig, "timeline", pid)
    return pd.DataFrame(rows, columns=_FIGURE_COLUMNS)


def _patient_ids(tables: dict[str, pd.DataFrame], wanted: Sequence[str] | None) -> list[str]:
    found: set[str] = set()
    for name in ("scans", "recist", "lesions"):
        if name in tables:
            found |= set(tables[name]["patient_id"].astype(str))
    if wanted is None:
        return sorted(found)
    unknown = [p for p in wanted if p not in found]
    if unknown:
        raise ValueError(
            f"patient(s) {unknown} are not in the analysis tables; patients: {', '.join(sorted(found)[:10])}."
        )
    return list(wanted)
