"""``pattern_analysis``: the cohort-level patterns step of ``metevo demo``/``patterns``.

Reads the tables of an analysis folder, fits the evolution patterns, relates them to survival
(landmark, cross-validated assignment) and to response, writes the tables back into the folder
and returns them with the fitted models. The default method is the latent-class trajectory model
(``method="lcmm"``, :class:`~metevo.patterns.LatentClassTrajectories`): best in every cell of the
generalisation benchmark (``docs/patterns.md``); ``method="kmeans"`` (and the other clustering
methods of :class:`~metevo.patterns.EvolutionPatterns`) stay available. Figures are drawn by the faces
(:func:`metevo.run_patterns`, the CLI), never here: compute does not import plotting.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from metevo.columns import Patterns as P
from metevo.exceptions import ClinicalTableError, StatisticsWarning

__all__ = [
    "DEFAULT_SURVIVAL_LANDMARK_DAYS",
    "METHODS",
    "TABLES",
    "PatternAnalysis",
    "pattern_analysis",
]

#: landmark of the survival analysis when none is given: the ~24-week CT
DEFAULT_SURVIVAL_LANDMARK_DAYS = 168.0
TABLES = (
    "patterns",
    "pattern_selection",
    "pattern_summary",
    "pattern_posteriors",
    "survival_km",
    "survival_cox",
    "response_association",
)
#: methods of :func:`pattern_analysis`: the latent-class model, then the clustering methods
METHODS = ("lcmm", "kmeans", "euclidean", "dtw", "softdtw", "kshape", "gmm")


@dataclass
class PatternAnalysis:
    """What :func:`pattern_analysis` produced: the tables and the fitted models behind them."""

    #: ``patterns``, ``pattern_selection``, ``pattern_summary``, ``pattern_posteriors``,
    #: ``survival_km``, ``survival_cox``, ``response_association`` (also written as Parquet
    #: into the analysis folder)
    tables: dict[str, pd.DataFrame]
    #: the fitted :class:`~metevo.patterns.LatentClassTrajectories` (``method="lcmm"``) or
    #: :class:`~metevo.patterns.EvolutionPatterns`
    model: Any
    #: the model refitted at the survival landmark (None when survival was skipped)
    survival_model: Any
    #: the lesion-level trajectories used (None when absent)
    lesions: pd.DataFrame | None


def _read_optional(folder: Path, *names: str) -> pd.DataFrame | None:
    for name in names:
        path = folder / name
        if path.exists():
            return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    return None


def _clinical(clinical: Any, folder: Path) -> pd.DataFrame | None:
    if clinical is None:
        return _read_optional(folder, "clinical.parquet", "clinical.csv", "../cohort/clinical.csv")
    if isinstance(clinical, pd.DataFrame):
        return clinical
    path = Path(clinical)
    if not path.exists():
        raise ClinicalTableError(f"clinical table {path} does not exist; pass an existing CSV.")
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)


def _empty(table: str) -> pd.DataFrame:
    from metevo.dictionary import load_schema

    dtypes = {"number": "float64", "integer": "Int64", "boolean": "boolean", "string": "string"}
    schema = load_schema(table)
    return pd.DataFrame(
        {f["name"]: pd.Series(dtype=dtypes.get(f["type"], object)) for f in schema["fields"]}
    )


def make_model(
    method: str,
    k: int | str,
    *,
    landmark_days: float | None = None,
    representation: str | None = None,
    n_bootstrap: int = 10,
    random_state: int = 0,
) -> Any:
    """The unfitted pattern model of ``method`` (``"lcmm"``: latent-class trajectories)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; found {method!r}.")
    if k != "auto" and (isinstance(k, bool) or not isinstance(k, int | np.integer)):
        raise TypeError(f"k must be an int or 'auto'; found {k!r}.")
    if method == "lcmm":
        from metevo.patterns._latent_class import LatentClassTrajectories

        if representation not in (None, "log_ratio"):
            raise ValueError(
                f"method='lcmm' models the log-ratio to baseline; representation="
                f"{representation!r} is for the clustering methods (e.g. method='kmeans')."
            )
        return LatentClassTrajectories(
            k, landmark_days=landmark_days, random_state=random_state
        )
    from metevo.patterns._patterns import EvolutionPatterns

    return EvolutionPatterns(
        k,
        method=method,
        representation=representation,
        landmark_days=landmark_days,
        n_bootstrap=n_bootstrap,
        random_state=random_state,
    )


def pattern_analysis(
    analysis_dir: str | Path,
    clinical: str | Path | pd.DataFrame | None = None,
    *,
    k: int | str = "auto",
    landmark_days: float | None = None,
    method: str = "lcmm",
    endpoint: str = "os",
    representation: str | None = None,
    n_bootstrap: int = 10,
    random_state: int = 0,
    time_varying: bool = False,
    echo: Callable[[str], object] | None = None,
) -> PatternAnalysis:
    """Fit evolution patterns on an analysis folder and relate them to survival and response.

    Parameters
    ----------
    analysis_dir : path
        Folder of ``metevo analyze`` with ``patient_trajectories.parquet`` (required),
        ``patients.parquet`` and ``trajectories.parquet`` (lesion level, optional).
    clinical : path, DataFrame or None
        Clinical table (endpoints, covariates); None looks for ``clinical.csv`` in the folder
        and in ``../cohort`` (the demo layout). Without one, survival is skipped (with a
        message) unless ``endpoint="imaging_pfs"``.
    k : int or "auto"
        Number of patterns.
    landmark_days : float or None
        Landmark mode for the patterns and the survival analysis. None: the patterns use the
        whole follow-up (descriptive) and the survival analysis refits them at the
        24-week landmark (``DEFAULT_SURVIVAL_LANDMARK_DAYS``) on the scans up to that day,
        with k selected again there and names matched to the full fit
        (:func:`~metevo.survival.landmark_pattern_survival`).
    method : {"lcmm", "kmeans", "euclidean", "dtw", "softdtw", "kshape", "gmm"}
        ``"lcmm"`` (default): :class:`~metevo.patterns.LatentClassTrajectories` (k by ICL
        among k whose smallest class holds >= 5 % and >= 5 patients, horizon the 75th
        percentile of follow-up); the others: :class:`~metevo.patterns.EvolutionPatterns`.
    representation, n_bootstrap, random_state
        See :class:`~metevo.patterns.EvolutionPatterns` (``representation`` and
        ``n_bootstrap`` are for the clustering methods). With ``representation=None`` and
        lesion trajectories present, k-means uses the multivariate representation with the
        lesion spread channel.
    endpoint : {"os", "pfs", "imaging_pfs"}
    time_varying : bool
        Add a time-varying Cox model on per-visit features (log-ratio of the target sum, new
        lesions; :func:`~metevo.survival.time_varying_cox`) to ``survival_cox``.

    Returns
    -------
    PatternAnalysis
        ``tables``: ``patterns``, ``pattern_selection`` (every k tried, with the ``reason``
        it was or was not chosen), ``pattern_summary`` (each pattern's course and name
        check), ``pattern_posteriors`` (probability of each pattern per patient),
        ``survival_km``, ``survival_cox``, ``response_association`` (also written as Parquet
        into ``analysis_dir``), and the fitted models.
    """
    from metevo.survival._landmark import landmark_pattern_survival
    from metevo.survival._patterns_cv import time_varying_cox
    from metevo.survival._response import response_association

    say = echo or (lambda _msg: None)
    folder = Path(analysis_dir)
    traj_path = folder / "patient_trajectories.parquet"
    if not traj_path.exists():
        raise FileNotFoundError(
            f"{traj_path} not found: run `metevo analyze` first (the trajectories stage writes "
            "patient_trajectories.parquet), or point to the analysis folder."
        )
    traj = pd.read_parquet(traj_path)
    patients = _read_optional(folder, "patients.parquet")
    lesions = _read_optional(folder, "trajectories.parquet", "lesion_trajectories.parquet")
    clin = _clinical(clinical, folder)
    if lesions is not None and not {"track_id", "axial_ld_mm"} <= set(lesions.columns):
        lesions = None
    if representation is None and method == "kmeans" and lesions is not None:
        representation = "multivariate"
    options = dict(
        representation=representation, n_bootstrap=n_bootstrap, random_state=random_state
    )
    n_patterns = k if k == "auto" else int(k)
    model = make_model(method, n_patterns, landmark_days=landmark_days, **options).fit(
        traj, lesion_trajectories=lesions
    )
    say(f"patterns: {model!r}")
    table = model.patterns_
    tables: dict[str, pd.DataFrame] = {
        "patterns": table,
        "pattern_selection": model.selection_,
        "pattern_summary": model.summary_table(),
        "pattern_posteriors": model.posteriors_,
    }

    surv_landmark = landmark_days if landmark_days is not None else DEFAULT_SURVIVAL_LANDMARK_DAYS
    km, cox, message, surv_model, surv = (
        _empty("survival_km"),
        _empty("survival_cox"),
        "",
        None,
        None,
    )
    need_clin = endpoint != "imaging_pfs"
    if need_clin and clin is None:
        message = "survival skipped: no clinical table (pass --clinical CSV)."
    else:
        try:
            # landmark refit on scans up to the landmark only, k selected there, names matched
            # to the full-follow-up fit by centroid (metevo.survival.landmark_pattern_survival)
            surv = landmark_pattern_survival(
                model,
                traj,
                clin,
                landmark_days=surv_landmark,
                patients=patients,
                lesion_trajectories=lesions,
                reference=model if landmark_days is None else None,
                endpoint=endpoint,
                random_state=random_state,
            )
            surv_model, cv = surv.model, surv.assignment
            message = surv.message
            if len(surv.km):
                km = surv.km
            if len(surv.cox):
                cox = surv.cox
            table = table.merge(
                cv[[P.PATIENT_ID, "pattern"]].rename(columns={"pattern": P.SURVIVAL_PATTERN}),
                on=P.PATIENT_ID,
                how="left",
            )
        except (ClinicalTableError, ValueError, np.linalg.LinAlgError) as exc:
            # ValueError includes lifelines' ConvergenceError (tiny or separated cohorts)
            message = f"survival skipped: {exc}"
            warnings.warn(message, StatisticsWarning, stacklevel=2)
    if time_varying and (clin is not None or not need_clin):
        try:
            tv, _ = time_varying_cox(traj, clin, patients=patients, endpoint=endpoint)
            cox = pd.concat([c for c in (cox, tv) if len(c)], ignore_index=True)
        except (ClinicalTableError, ValueError, np.linalg.LinAlgError) as exc:
            say(f"time-varying Cox skipped: {exc}")
    if P.SURVIVAL_PATTERN not in table.columns:
        table[P.SURVIVAL_PATTERN] = pd.Series([None] * len(table), dtype="string")
    table[P.SURVIVAL_PATTERN] = table[P.SURVIVAL_PATTERN].astype("string")
    table[P.SURVIVAL_LANDMARK_DAYS] = np.where(
        table[P.SURVIVAL_PATTERN].notna(), surv_landmark, np.nan
    )
    if message:
        say(message)
    tables["patterns"] = table
    tables["survival_km"] = km
    tables["survival_cox"] = cox
    tables["response_association"] = response_association(model.patterns_, patients, clin)
    for name in TABLES:
        from metevo.dictionary import coerce_table

        coerce_table(tables[name], name).to_parquet(folder / f"{name}.parquet", index=False)
    return PatternAnalysis(tables, model, surv_model, lesions)
