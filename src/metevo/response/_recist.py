"""RECIST 1.1 response engine on a lesion-measurement table.

One engine serves every input: metevo's own lesion graph (:func:`recist`, the ``recist`` pipeline
stage), radiologists' SDTM TU/TR tables (:func:`metevo.recist_from_sdtm`) and any analyst's own
measurements (:func:`recist_from_measurements`).

Rules follow Eisenhauer et al., "New response evaluation criteria in solid tumours: revised RECIST
guideline (version 1.1)", Eur J Cancer 45 (2009) 228-247, cited below by section:

* Baseline targets (sect. 3.2, 4.2): measurable lesions are those with a longest diameter of at
  least 10 mm (and at least twice the slice thickness when slices are thicker than 5 mm); lymph
  nodes are measurable with a short axis of at least 15 mm, pathological non-targets from 10 to
  < 15 mm and normal below 10 mm. The largest measurable lesions become targets, at most
  ``max_targets_per_organ`` per organ and ``max_targets`` in total; the rest are non-targets.
* Target sum (sect. 4.3.1): longest diameter of non-nodal targets plus short axis of nodal
  targets. A lesion recorded as present but too small to measure counts ``too_small_mm``
  (default 5 mm); a lesion recorded as absent counts 0.
* Target response (sect. 4.3.1, Table 1): CR when every non-nodal target is 0 and every nodal
  target is < 10 mm (the sum need not be 0); PD when the sum is at least 20 % and at least 5 mm
  above the nadir (the smallest sum of the evaluable assessments so far, baseline included),
  checked before PR; PR when the sum is at least 30 % below baseline; SD otherwise. An assessment
  where a target could not be assessed is NE unless the assessed targets alone already prove PD
  (sect. 4.3.2 / 4.3.6 "missing" lesions); NE assessments never set the nadir.
* Non-target response (sect. 4.3.3): PD on unequivocal progression; NE if any non-target was not
  assessed; CR when every non-target is absent (nodes < 10 mm); NON-CR/NON-PD otherwise.
* New lesions (sect. 4.3.4): an unequivocal new lesion is PD; an equivocal one is not, but when
  the same lesion is confirmed unequivocal at the next assessment, PD is dated to its first
  appearance.
* Overall response: RECIST Table 1 (targets at baseline) and Table 2 (non-target disease only).

Measurement table (input of :func:`recist_from_measurements`)
-------------------------------------------------------------
One row per lesion per assessment. Required columns: ``patient_id``, ``timepoint``,
``lesion_id``; ``date`` (ISO date, partial dates such as ``2014-02`` accepted) or
``visit_order`` (a number) to order the assessments. Optional columns:

``ld_mm``
    longest diameter (mm); NaN when not assessed.
``sa_mm``
    short axis (mm), used for lymph nodes.
``nodal``
    bool, the lesion is a lymph node (measured by short axis).
``organ``
    organ of the lesion (for ``max_targets_per_organ``); one organ when absent.
``role``
    ``"target"``, ``"non-target"`` or ``"new"``. When absent (or empty at baseline) the engine
    selects the baseline targets itself.
``state``
    ``"present"``, ``"absent"``, ``"too_small"``, ``"not_done"``, ``"progression"`` (unequivocal
    non-target progression), ``"equivocal"`` (an equivocal new lesion or equivocal non-target
    change, which is not progression), ``"removed"`` (the lesion was treated locally, e.g.
    resected or ablated: it leaves the target set from this assessment on).
``slice_thickness_mm``
    slice thickness of the baseline scan (for the measurability rule).

An optional per-assessment ``visits`` table (``patient_id``, ``timepoint`` and any of ``date``,
``visit_order``, ``not_evaluable_reason``, ``progression_reason``, ``new_lesions``) marks whole
assessments not evaluable (e.g. liver outside the field of view), adds progression found outside
the measured lesions (e.g. extrahepatic progression) and lists assessments with no lesion row
(a missing scan, or a complete response with nothing left to measure).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from metevo.columns import Recist
from metevo.response._recist_rules import _ROLES, _STATES, RecistOptions, _flag, _num
from metevo.response._recist_subject import (
    _assess_subject,
    _nt_state,
    _subject_visits,
    _target_value,
)

if TYPE_CHECKING:
    pass


__all__ = ["recist_from_measurements", "select_targets"]


# --------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------
def _check_measurements(measurements: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    if not isinstance(measurements, pd.DataFrame):
        raise TypeError(
            f"measurements must be a pandas DataFrame; got {type(measurements).__name__}."
        )
    required = [*keys, Recist.TIMEPOINT, "lesion_id"]
    missing = [c for c in required if c not in measurements.columns]
    if missing:
        raise ValueError(
            f"measurements lacks column(s) {missing}; expected at least {required} plus 'date' "
            f"or 'visit_order'. Found columns {list(measurements.columns)}. Rename your columns "
            "(see the metevo.response._recist module docstring for the measurement-table format)."
        )
    if "date" not in measurements.columns and "visit_order" not in measurements.columns:
        raise ValueError(
            "measurements needs a 'date' or a 'visit_order' column to order the assessments; "
            f"found columns {list(measurements.columns)}."
        )
    df = measurements.copy()
    for col in ("ld_mm", "sa_mm"):
        if col not in df.columns:
            df[col] = np.nan
        df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
        bad = df[col] < 0
        if bad.any():
            row = df.loc[bad].iloc[0]
            raise ValueError(
                f"{col} must be >= 0 mm; patient {row[keys[0]]!r}, timepoint "
                f"{row[Recist.TIMEPOINT]!r}, lesion {row['lesion_id']!r} has {row[col]}."
            )
    if "nodal" not in df.columns:
        df["nodal"] = False
    df["nodal"] = df["nodal"].map(lambda v: bool(v) if v is not None and v == v else False)
    if "organ" not in df.columns:
        df["organ"] = "unspecified"
    df["organ"] = df["organ"].fillna("unspecified").astype(str)
    for col, allowed in (("role", _ROLES), ("state", _STATES)):
        if col not in df.columns:
            df[col] = None
        values = df[col].where(df[col].notna(), None)
        values = values.map(lambda v: v.strip().lower() if isinstance(v, str) else v)
        bad = values.notna() & ~values.isin(allowed)
        if bad.any():
            row = df.loc[bad].iloc[0]
            raise ValueError(
                f"column {col!r} must be one of {list(allowed)} or empty; patient "
                f"{row[keys[0]]!r}, timepoint {row[Recist.TIMEPOINT]!r}, lesion "
                f"{row['lesion_id']!r} has {row[col]!r}."
            )
        df[col] = values.astype(object)
    df["lesion_id"] = df["lesion_id"].astype(str)
    df[Recist.TIMEPOINT] = df[Recist.TIMEPOINT].astype(str)
    return df


# --------------------------------------------------------------------------------------------
# baseline targets
# --------------------------------------------------------------------------------------------
def select_targets(
    baseline: pd.DataFrame,
    *,
    max_targets: int = 5,
    max_targets_per_organ: int = 2,
    min_measurable_mm: float = 10.0,
    min_measurable_node_mm: float = 15.0,
    min_pathological_node_mm: float = 10.0,
    slice_thickness_mm: float | None = None,
) -> pd.Series:
    """Assign baseline roles (RECIST 1.1 sect. 3.2 and 4.2).

    Parameters
    ----------
    baseline : DataFrame
        One row per baseline lesion with ``ld_mm`` and optionally ``sa_mm``, ``nodal``,
        ``organ`` (see the module docstring).
    max_targets, max_targets_per_organ : int
        At most this many targets in total and per organ (RECIST 1.1: 5 and 2).
    min_measurable_mm : float
        Smallest measurable longest diameter; raised to twice the slice thickness when slices
        are thicker than 5 mm.
    min_measurable_node_mm, min_pathological_node_mm : float
        Short-axis cut-offs of lymph nodes (15 mm measurable, 10 mm pathological).
    slice_thickness_mm : float, optional
        Slice thickness of the baseline scan.

    Returns
    -------
    Series
        Indexed like ``baseline``: "target", "non-target" or None (a normal lymph node, not a
        lesion).

    Examples
    --------
    >>> import pandas as pd
    >>> b = pd.DataFrame({"ld_mm": [30.0, 25.0, 12.0, 8.0], "organ": "liver"})
    >>> select_targets(b).tolist()
    ['target', 'target', 'non-target', 'non-target']
    """
    records = [
        {
            "ld_mm": r.get("ld_mm", math.nan),
            "sa_mm": r.get("sa_mm", math.nan),
            "nodal": r.get("nodal", False),
            "organ": r.get("organ", None),
        }
        for r in baseline.to_dict("records")
    ]
    roles = _select_targets(
        records,
        max_targets=max_targets,
        max_targets_per_organ=max_targets_per_organ,
        min_measurable_mm=min_measurable_mm,
        min_measurable_node_mm=min_measurable_node_mm,
        min_pathological_node_mm=min_pathological_node_mm,
        slice_thickness_mm=slice_thickness_mm,
    )
    return pd.Series(roles, index=baseline.index, dtype=object)


def _select_targets(
    records: list[dict[str, Any]],
    *,
    max_targets: int,
    max_targets_per_organ: int,
    min_measurable_mm: float,
    min_measurable_node_mm: float,
    min_pathological_node_mm: float,
    slice_thickness_mm: float | None,
) -> list[str | None]:
    cut = float(min_measurable_mm)
    if slice_thickness_mm is not None and slice_thickness_mm > 5.0:
        cut = max(cut, 2.0 * float(slice_thickness_mm))
    roles: list[str | None] = []
    candidates = []
    for i, r in enumerate(records):
        ld, sa, nodal = _num(r.get("ld_mm")), _num(r.get("sa_mm")), _flag(r.get("nodal"))
        if nodal and not sa >= min_pathological_node_mm:
            roles.append(None)  # a normal lymph node is not a lesion
            continue
        roles.append("non-target")
        size = sa if nodal else ld
        if (sa >= min_measurable_node_mm) if nodal else (ld >= cut):
            candidates.append((-size, i))
    candidates.sort()
    per_organ: dict[Any, int] = {}
    n = 0
    for _, i in candidates:
        if n >= max_targets:
            break
        organ = records[i].get("organ")
        organ = "unspecified" if organ is None or organ != organ else organ
        if per_organ.get(organ, 0) >= max_targets_per_organ:
            continue
        roles[i] = "target"
        per_organ[organ] = per_organ.get(organ, 0) + 1
        n += 1
    return roles


def recist_from_measurements(
    measurements: pd.DataFrame,
    visits: pd.DataFrame | None = None,
    *,
    by: Sequence[str] = (),
    baseline: Mapping[str, str] | None = None,
    slice_thickness_mm: float | None = None,
    max_targets: int = 5,
    max_targets_per_organ: int = 2,
    min_measurable_mm: float = 10.0,
    min_measurable_node_mm: float = 15.0,
    min_pathological_node_mm: float = 10.0,
    cr_node_mm: float = 10.0,
    too_small_mm: float = 5.0,
    pd_pct: float = 20.0,
    pd_abs_mm: float = 5.0,
    pr_pct: float = 30.0,
    new_lesions_default: str = "N",
) -> pd.DataFrame:
    """RECIST 1.1 on a plain lesion-measurement table.

    Parameters
    ----------
    measurements : DataFrame
        One row per lesion per assessment (format in the :mod:`metevo.response` docstring).
    visits : DataFrame, optional
        One row per assessment: ``patient_id``, ``timepoint`` and optional ``date``,
        ``visit_order``, ``not_evaluable_reason``, ``progression_reason``, ``new_lesions``.
    by : sequence of str
        Extra key columns that split a patient into independent assessment series (e.g. the
        evaluator of a blinded review).
    baseline : mapping, optional
        ``patient_id`` -> baseline timepoint; default: the first assessment. Earlier
        assessments are reported with ``not_evaluable_reason`` "before_baseline".
    slice_thickness_mm : float, optional
        Baseline slice thickness for the measurability rule (a ``slice_thickness_mm`` column,
        when present, wins).
    max_targets, max_targets_per_organ, min_measurable_mm, min_measurable_node_mm,
    min_pathological_node_mm : see :func:`select_targets`.
    cr_node_mm : float
        A nodal target below this short axis (mm) counts as normal for CR (10 mm).
    too_small_mm : float
        Value of a target recorded as present but too small to measure (5 mm).
    pd_pct, pd_abs_mm, pr_pct : float
        PD: +20 % and +5 mm over the nadir; PR: -30 % from baseline.
    new_lesions_default : {"N", "NE"}
        New-lesion status of an assessment with no new-lesion record.

    Returns
    -------
    DataFrame
        One row per subject x assessment: keys, ``timepoint``, ``date``, ``is_baseline``,
        ``evaluable``, ``not_evaluable_reason``, ``n_targets``, ``target_sum_mm``,
        ``pct_change_baseline``, ``pct_change_nadir`` (%), ``target_response``,
        ``nontarget_response``, ``new_lesions``, ``overall_response``,
        ``measurable_at_baseline``. Responses are empty at baseline.

    Examples
    --------
    >>> import pandas as pd
    >>> m = pd.DataFrame({"patient_id": "P1", "timepoint": ["V0", "V0", "V1", "V1"],
    ...                   "date": ["2020-01-01"] * 2 + ["2020-03-01"] * 2,
    ...                   "lesion_id": ["a", "b", "a", "b"], "ld_mm": [30.0, 20.0, 15.0, 10.0]})
    >>> recist_from_measurements(m)["overall_response"].tolist()
    [None, 'PR']
    """
    opts = RecistOptions(
        max_targets=max_targets,
        max_targets_per_organ=max_targets_per_organ,
        min_measurable_mm=min_measurable_mm,
        min_measurable_node_mm=min_measurable_node_mm,
        min_pathological_node_mm=min_pathological_node_mm,
        cr_node_mm=cr_node_mm,
        too_small_mm=too_small_mm,
        pd_pct=pd_pct,
        pd_abs_mm=pd_abs_mm,
        pr_pct=pr_pct,
        new_lesions_default=new_lesions_default,
    )
    keys = [Recist.PATIENT_ID, *by]
    meas = _check_measurements(measurements, keys)
    if visits is not None:
        if not isinstance(visits, pd.DataFrame):
            raise TypeError(f"visits must be a pandas DataFrame; got {type(visits).__name__}.")
        missing = [c for c in [*keys, Recist.TIMEPOINT] if c not in visits.columns]
        if missing:
            raise ValueError(
                f"visits lacks column(s) {missing}; found {list(visits.columns)}. Give one row "
                "per assessment with the same keys as the measurement table."
            )
        visits = visits.copy()
        visits[Recist.TIMEPOINT] = visits[Recist.TIMEPOINT].astype(str)
    subjects = meas[keys].drop_duplicates()
    if visits is not None:
        subjects = pd.concat([subjects, visits[keys].drop_duplicates()]).drop_duplicates()
    rows: list[dict[str, Any]] = []
    by_key: dict[tuple, list[dict[str, Any]]] = {}
    for r in meas.to_dict("records"):
        by_key.setdefault(tuple(r[k] for k in keys), []).append(r)
    vis_by_key: dict[tuple, list[dict[str, Any]]] = {}
    if visits is not None:
        for r in visits.to_dict("records"):
            vis_by_key.setdefault(tuple(r[k] for k in keys), []).append(r)
    for key in subjects.itertuples(index=False, name=None):
        m = by_key.get(key, [])
        vis = vis_by_key.get(key, [])
        rows.extend(
            _one_subject(
                m, vis, dict(zip(keys, key, strict=True)), baseline, slice_thickness_mm, opts
            )
        )
    columns = [
        *keys,
        Recist.TIMEPOINT,
        Recist.DATE,
        "is_baseline",
        Recist.EVALUABLE,
        Recist.NOT_EVALUABLE_REASON,
        "n_targets",
        Recist.TARGET_SUM_MM,
        Recist.PCT_CHANGE_BASELINE,
        Recist.PCT_CHANGE_NADIR,
        Recist.TARGET_RESPONSE,
        Recist.TARGET_RESPONSE_MARGIN_MM,
        Recist.NONTARGET_RESPONSE,
        Recist.NEW_LESIONS,
        Recist.OVERALL_RESPONSE,
        "measurable_at_baseline",
    ]
    out = pd.DataFrame(rows, columns=columns)
    for col in (
        Recist.TARGET_SUM_MM,
        Recist.PCT_CHANGE_BASELINE,
        Recist.PCT_CHANGE_NADIR,
        Recist.TARGET_RESPONSE_MARGIN_MM,
    ):
        out[col] = out[col].astype(float)
    out["n_targets"] = out["n_targets"].astype("Int64")
    return out


def _one_subject(
    m: list[dict[str, Any]],
    vis: list[dict[str, Any]],
    key: dict[str, Any],
    baseline: Mapping[str, str] | None,
    slice_thickness_mm: float | None,
    opts: RecistOptions,
) -> list[dict[str, Any]]:
    ordered = _subject_visits(m, vis)
    pid = key[Recist.PATIENT_ID]
    b_idx = 0
    if baseline is not None and pid in baseline:
        tps = [v.timepoint for v in ordered]
        if str(baseline[pid]) not in tps:
            raise ValueError(
                f"patient {pid!r}: baseline timepoint {baseline[pid]!r} is not among its "
                f"assessments {tps}; pass one of those or drop the patient from `baseline`."
            )
        b_idx = tps.index(str(baseline[pid]))
    before, visits = ordered[:b_idx], ordered[b_idx:]
    # ---- roles at baseline
    base_rows = [r for r in visits[0].rows if r["role"] != "new"]
    if any(r["role"] is not None for r in base_rows):
        roles = [r["role"] for r in base_rows]
    else:
        thick = slice_thickness_mm
        given = [_num(r.get("slice_thickness_mm")) for r in base_rows]
        given = [g for g in given if math.isfinite(g)]
        if given:
            thick = given[0]
        roles = _select_targets(
            base_rows,
            max_targets=opts.max_targets,
            max_targets_per_organ=opts.max_targets_per_organ,
            min_measurable_mm=opts.min_measurable_mm,
            min_measurable_node_mm=opts.min_measurable_node_mm,
            min_pathological_node_mm=opts.min_pathological_node_mm,
            slice_thickness_mm=thick,
        )
    targets = [r["lesion_id"] for r, role in zip(base_rows, roles, strict=True) if role == "target"]
    nontargets = [
        r["lesion_id"] for r, role in zip(base_rows, roles, strict=True) if role == "non-target"
    ]
    nodal = {r["lesion_id"]: r["nodal"] for r in base_rows}
    known = {r["lesion_id"] for r in base_rows}
    target_set, nontarget_set = set(targets), set(nontargets)
    for i, v in enumerate(visits):
        for r in v.rows:
            lid = r["lesion_id"]
            if r["state"] == "removed":
                v.removed.add(lid)
                continue
            if lid in target_set:
                v.target_values[lid] = _target_value(r, opts)
            elif lid in nontarget_set:
                v.nt_states[lid] = _nt_state(r, opts)
            elif i > 0 and lid not in known:
                if r["role"] in ("new", None) and r["state"] not in ("absent", "not_done"):
                    v.new_ids[lid] = "EQUIVOCAL" if r["state"] == "equivocal" else "Y"
        if i == 0:
            bad = [t for t in targets if not math.isfinite(v.target_values.get(t, math.nan))]
            if bad:
                raise ValueError(
                    f"patient {pid!r}, baseline timepoint {v.timepoint!r}: target lesion(s) "
                    f"{bad} have no measurement; every baseline target needs a diameter "
                    "(ld_mm, or sa_mm for lymph nodes)."
                )
    results = _assess_subject(visits, targets, nodal, nontargets, opts)
    measurable = bool(targets)
    out = []
    for v in before:
        out.append(
            {
                **key,
                "timepoint": v.timepoint,
                "date": v.date,
                "is_baseline": False,
                "evaluable": False,
                "not_evaluable_reason": "before_baseline",
                "n_targets": len(targets),
                "target_sum_mm": math.nan,
                "pct_change_baseline": math.nan,
                "pct_change_nadir": math.nan,
                "target_response": None,
                "target_response_margin_mm": math.nan,
                "nontarget_response": None,
                "new_lesions": None,
                "overall_response": None,
                "measurable_at_baseline": measurable,
            }
        )
    for res in results:
        out.append({**key, **res, "n_targets": len(targets), "measurable_at_baseline": measurable})
    return out
