"""The ``recist`` pipeline stage: one patient's graph measurements in, the ``recist`` (per scan),
``recist_lesions`` and ``patients`` (outcomes, kinetics, Choi) tables out
(:func:`assess_patient`, tables in and tables out, does the work).
"""

from __future__ import annotations

import datetime as dt
import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from metevo.columns import Lesions as L
from metevo.columns import Patients as P
from metevo.columns import Recist as R
from metevo.columns import Scans as S
from metevo.response._choi import choi_response
from metevo.response._kinetics import fit_growth_kinetics, tumour_growth_rate
from metevo.response._local_therapy import RESECTION_POINT_TOLERANCE_MM, local_therapies
from metevo.response._outcomes import (
    best_overall_response,
    confirmed_response,
    depth_of_response,
    early_tumour_shrinkage,
    imaging_pfs,
    time_to_nadir,
)
from metevo.response._recist import recist_from_measurements
from metevo.response._recist_graph import SCOPE, GraphMeasurements, graph_measurements

if TYPE_CHECKING:
    from metevo.cohort._cohort import Patient

__all__ = ["assess_patient", "recist_stage"]


# --------------------------------------------------------------------------------------------
# the per-patient assessment (tables in, tables out)
# --------------------------------------------------------------------------------------------
def _is_false(value: Any) -> bool:
    """True for an explicit False flag (None / NA mean unknown, not False)."""
    if value is None or value is pd.NA:
        return False
    if isinstance(value, float) and math.isnan(value):
        return False
    return not bool(value)


def _not_evaluable(sc: pd.DataFrame, lesions: pd.DataFrame, baseline: str) -> dict[str, str]:
    """``timepoint -> reason`` of the follow-up scans that cannot be assessed.

    ``lesion_outside_fov``: a lesion region that matters is not fully imaged (``lesions_in_fov``
    False; tables without that column fall back on ``liver_in_fov``, reason
    ``liver_outside_fov``). A liver merely touching the first or last slice is not a reason.
    ``registration_failed``: registration failed QC *and* matching cannot be trusted -- a lesion
    at the visit has no one-to-one predecessor (new, split, merged) or one of the previous
    visit disappeared; with every lesion matched one-to-one the fallback alignment sufficed.
    """
    tps = sc[S.TIMEPOINT].tolist()
    changes = {}
    if L.CHANGE in lesions.columns:
        changes = lesions.groupby(L.TIMEPOINT)[L.CHANGE].agg(set).to_dict()
    reasons: dict[str, str] = {}
    for i, (_, r) in enumerate(sc.iterrows()):
        why = []
        if S.LESIONS_IN_FOV in sc.columns:
            if _is_false(r.get(S.LESIONS_IN_FOV)):
                why.append("lesion_outside_fov")
        elif _is_false(r.get(S.LIVER_IN_FOV)):
            why.append("liver_outside_fov")
        if _is_false(r.get(S.REGISTRATION_OK)):
            here = changes.get(r[S.TIMEPOINT], set())
            before = changes.get(tps[i - 1], set()) if i > 0 else set()
            # in-degree 1 for every lesion here, out-degree 1 for every lesion before
            one_to_one = here <= {"persistent", "disappeared", "split"} and not (
                before & {"split", "complex", "disappeared"}
            )
            if not (changes and one_to_one):
                why.append("registration_failed")
        if r.get(S.QC_FLAG) == "excluded":
            why = ["scan_unreadable"]
        if why and r[S.TIMEPOINT] != baseline:
            reasons[r[S.TIMEPOINT]] = "+".join(why)
    return reasons


def _events_of(events: pd.DataFrame | None, kind: str) -> list[dt.date]:
    if events is None or len(events) == 0:
        return []
    sel = events[events["event"] == kind]
    return sorted(pd.to_datetime(sel["date"]).dt.date.tolist())


def assess_patient(
    patient_id: str,
    scans: pd.DataFrame,
    lesions: pd.DataFrame,
    edges: pd.DataFrame,
    *,
    treatment_start: dt.date | None = None,
    events: pd.DataFrame | None = None,
    slice_thickness_mm: float | None = None,
    max_targets: int = 2,
    max_targets_per_organ: int = 2,
    min_measurable_mm: float = 10.0,
    new_lesion_min_mm: float = 10.0,
    nontarget_volume_factor: float = 2.0,
    nontarget_min_increase_ml: float = 1.0,
    burden_volume_factor: float = 1.2**3,
    sd_min_days: int = 42,
    ref_confirm: int = 28,
    max_nr_ne: int = 1,
    pfs_rules: str = "fda2018",
    assessment_interval_days: float | None = None,
    ets_window_days: tuple[float, float] = (42, 70),
    ets_threshold_pct: float = 20.0,
    min_kinetics_assessments: int = 3,
    kinetics_pval: float = 0.05,
    resection_point_tolerance_mm: float = RESECTION_POINT_TOLERANCE_MM,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """RECIST, Choi and per-patient outcomes of one patient from its pipeline tables.

    Parameters
    ----------
    patient_id : str
    scans : DataFrame
        The patient's ``scans`` rows (``timepoint``, ``date``, ``days``, ``study_day``,
        ``is_baseline`` and, when known, ``phase``, ``liver_in_fov``, ``registration_ok``).
    lesions, edges : DataFrame
        The patient's ``lesions`` and ``lesion_edges`` rows.
    treatment_start : date, optional
        Start of treatment (reference of SD duration, ETS window, PFS); the baseline scan date
        when unknown.
    events : DataFrame, optional
        The patient's events (``date``, ``event``; on resection / ablation rows optionally the
        treated lesions: ``lesion_ids``, ``track_ids`` or ``point_x_mm``/``_y_mm``/``_z_mm``,
        see :mod:`metevo.response._local_therapy`).
    slice_thickness_mm : float, optional
        Baseline slice thickness (measurability).
    max_targets ... burden_volume_factor
        See :func:`graph_measurements`.
    sd_min_days, ref_confirm, max_nr_ne
        Best-response rules (:func:`metevo.response.best_overall_response`).
    pfs_rules, assessment_interval_days
        Imaging PFS censoring (:func:`metevo.response.imaging_pfs`).
    ets_window_days, ets_threshold_pct
        Early tumour shrinkage.
    min_kinetics_assessments, kinetics_pval
        Growth kinetics (:func:`metevo.response.fit_growth_kinetics`).
    resection_point_tolerance_mm : float
        How far a point of the events table may lie from the lesion it names (mm).

    Returns
    -------
    (recist, patients, recist_lesions) : tuple of DataFrame
        The ``recist`` rows (one per scan), the ``patients`` row and the ``recist_lesions``
        rows (one per scan x RECIST lesion: ``lesion_id`` ``L<id>`` for baseline lesion
        ``<id>``, ``N<timepoint>:<id>`` for a new lesion first seen as ``<id>`` at
        ``<timepoint>``; ``role``; ``ld_mm``, the value entering RECIST; ``state``;
        ``removal_reason`` after a resection or ablation).
    """
    sc = scans.copy()
    sc[S.TIMEPOINT] = sc[S.TIMEPOINT].astype(str)
    sc["_date"] = pd.to_datetime(sc[S.DATE])
    sc = sc.sort_values("_date", kind="stable").reset_index(drop=True)
    tps = sc[S.TIMEPOINT].tolist()
    if not tps:
        raise ValueError(
            f"patient {patient_id!r} has no scan; RECIST needs at least a baseline scan."
        )
    if S.IS_BASELINE in sc and sc[S.IS_BASELINE].fillna(False).astype(bool).any():
        baseline = sc.loc[sc[S.IS_BASELINE].fillna(False).astype(bool), S.TIMEPOINT].iloc[0]
    else:
        baseline = tps[0]
    b_date = sc.loc[sc[S.TIMEPOINT] == baseline, "_date"].iloc[0].date()
    start = treatment_start or b_date
    # not evaluable assessments
    reasons = _not_evaluable(sc, lesions, baseline)
    dates = dict(zip(sc[S.TIMEPOINT], sc["_date"].dt.date, strict=True))
    after_local = local_therapies(
        patient_id, events, lesions, tps, dates, tolerance_mm=resection_point_tolerance_mm
    )
    gm = graph_measurements(
        lesions,
        edges,
        timepoints=tps,
        baseline=baseline,
        not_evaluable=reasons,
        local_therapy=after_local,
        max_targets=max_targets,
        max_targets_per_organ=max_targets_per_organ,
        min_measurable_mm=min_measurable_mm,
        slice_thickness_mm=slice_thickness_mm,
        new_lesion_min_mm=new_lesion_min_mm,
        nontarget_volume_factor=nontarget_volume_factor,
        nontarget_min_increase_ml=nontarget_min_increase_ml,
        burden_volume_factor=burden_volume_factor,
    )
    # events acting on assessments
    new_tx = _events_of(events, "new_treatment_line")
    new_tx_date = new_tx[0] if new_tx else None
    stopped = {tp for tp in tps if new_tx_date is not None and dates[tp] > new_tx_date}
    extra = _events_of(events, "extrahepatic_progression")
    extra_tp: dict[str, str] = {}
    extra_unscanned = None
    for d in extra:
        later = [tp for tp in tps if dates[tp] >= d and dates[tp] > b_date and tp not in stopped]
        if later:
            extra_tp.setdefault(later[0], "extrahepatic_progression")
        elif extra_unscanned is None:
            extra_unscanned = d
    visits = pd.DataFrame(
        {
            R.PATIENT_ID: patient_id,
            R.TIMEPOINT: tps,
            "visit_order": range(len(tps)),
            "not_evaluable_reason": [reasons.get(tp) for tp in tps],
            "progression_reason": [extra_tp.get(tp) for tp in tps],
        }
    )
    meas = gm.measurements.assign(**{R.PATIENT_ID: patient_id, "organ": SCOPE})
    meas["date"] = meas["timepoint"].map(lambda tp: dates[tp].isoformat())
    meas = meas[meas["lesion_id"] != "-"]
    res = recist_from_measurements(
        meas,
        visits,
        baseline={patient_id: baseline},
        max_targets=max_targets,
        max_targets_per_organ=max_targets_per_organ,
        min_measurable_mm=min_measurable_mm,
    )
    res = res.set_index(R.TIMEPOINT).reindex(tps).reset_index()
    # assessments after a new treatment line are not assessed
    for col in (R.TARGET_RESPONSE, R.NONTARGET_RESPONSE, R.NEW_LESIONS, R.OVERALL_RESPONSE):
        res[col] = res[col].astype(object)
        res.loc[res[R.TIMEPOINT].isin(stopped), col] = None
    res.loc[res[R.TIMEPOINT].isin(stopped), R.TARGET_RESPONSE_MARGIN_MM] = math.nan
    res.loc[res[R.TIMEPOINT].isin(stopped), R.EVALUABLE] = False
    res.loc[res[R.TIMEPOINT].isin(stopped), R.NOT_EVALUABLE_REASON] = "after_new_treatment_line"
    res.loc[res[R.TIMEPOINT] == baseline, R.NOT_EVALUABLE_REASON] = None
    # Choi per assessment
    burden = gm.burden.set_index("timepoint")
    phase = dict(
        zip(sc[S.TIMEPOINT], sc[S.PHASE] if S.PHASE in sc else [None] * len(sc), strict=True)
    )
    base_sum = res.loc[res[R.TIMEPOINT] == baseline, R.TARGET_SUM_MM].iloc[0]
    base_hu = burden.loc[baseline, "target_density_hu"] if baseline in burden.index else math.nan
    choi = []
    for _, r in res.iterrows():
        tp = r[R.TIMEPOINT]
        if tp == baseline or tp not in burden.index or tp in stopped or not gm.targets:
            choi.append(None)
            continue
        if r[R.OVERALL_RESPONSE] == "NE":
            choi.append("NE")
            continue
        choi.append(
            choi_response(
                base_sum,
                r[R.TARGET_SUM_MM] if r[R.TARGET_RESPONSE] != "NE" else math.nan,
                base_hu,
                burden.loc[tp, "target_density_hu"],
                new_lesions=r[R.NEW_LESIONS] == "Y",
                same_phase=phase.get(tp) == phase.get(baseline),
            )
        )
    res[R.CHOI_RESPONSE] = choi
    res[R.PATIENT_ID] = patient_id
    res[R.DATE] = [dates[tp] for tp in res[R.TIMEPOINT]]
    res[R.DAYS] = (
        res[R.TIMEPOINT].map(dict(zip(sc[S.TIMEPOINT], sc[S.DAYS], strict=True)))
        if S.DAYS in sc
        else [(dates[tp] - dates[tps[0]]).days for tp in res[R.TIMEPOINT]]
    )
    res["_from_start"] = [(dates[tp] - start).days for tp in res[R.TIMEPOINT]]
    res[R.STUDY_DAY] = [
        (dates[tp] - treatment_start).days if treatment_start is not None else None
        for tp in res[R.TIMEPOINT]
    ]
    res[R.SCOPE] = SCOPE
    recist_table = res[list(R.COLUMNS)].copy()
    from_start = res["_from_start"].to_numpy()
    recist_table[R.DAYS] = recist_table[R.DAYS].astype("Int64")
    recist_table[R.STUDY_DAY] = recist_table[R.STUDY_DAY].astype("Int64")
    recist_table[R.EVALUABLE] = recist_table[R.EVALUABLE].astype(bool)
    summary = _summary(
        patient_id,
        recist_table.assign(_from_start=from_start),
        gm,
        baseline=baseline,
        start=start,
        has_baseline=True,
        events=events,
        new_tx_date=new_tx_date,
        extra_unscanned=extra_unscanned,
        sd_min_days=sd_min_days,
        ref_confirm=ref_confirm,
        max_nr_ne=max_nr_ne,
        pfs_rules=pfs_rules,
        assessment_interval_days=assessment_interval_days,
        ets_window_days=ets_window_days,
        ets_threshold_pct=ets_threshold_pct,
        min_kinetics_assessments=min_kinetics_assessments,
        kinetics_pval=kinetics_pval,
    )
    roles = meas.groupby("lesion_id")["role"].agg(lambda v: next((x for x in v if x), None))
    lesion_table = pd.DataFrame(
        {
            R.PATIENT_ID: patient_id,
            R.TIMEPOINT: meas["timepoint"].astype(str).to_numpy(),
            R.DATE: [dates[tp] for tp in meas["timepoint"]],
            "lesion_id": meas["lesion_id"].astype(str).to_numpy(),
            "role": meas["lesion_id"].map(roles).to_numpy(),
            "ld_mm": meas["ld_mm"].astype(float).to_numpy() if "ld_mm" in meas else np.nan,
            "state": meas["state"].to_numpy(),
            "removal_reason": (
                meas["removal_reason"].to_numpy() if "removal_reason" in meas else None
            ),
        }
    )
    lesion_table = lesion_table[~lesion_table[R.TIMEPOINT].isin(stopped)].reset_index(drop=True)
    return recist_table, summary, lesion_table


def _summary(
    patient_id: str,
    rec: pd.DataFrame,
    gm: GraphMeasurements,
    *,
    baseline: str,
    start: dt.date,
    has_baseline: bool,
    events: pd.DataFrame | None,
    new_tx_date: dt.date | None,
    extra_unscanned: dt.date | None,
    sd_min_days: int,
    ref_confirm: int,
    max_nr_ne: int,
    pfs_rules: str,
    assessment_interval_days: float | None,
    ets_window_days: tuple[float, float],
    ets_threshold_pct: float,
    min_kinetics_assessments: int,
    kinetics_pval: float,
) -> pd.DataFrame:
    b_pos = int(np.flatnonzero(rec[R.TIMEPOINT].to_numpy() == baseline)[0])
    post = rec.iloc[b_pos + 1 :]
    post = post[post[R.OVERALL_RESPONSE].notna()]
    dates = post[R.DATE].tolist()
    resp = post[R.OVERALL_RESPONSE].tolist()
    measurable = bool(gm.targets)
    bor, _ = best_overall_response(dates, resp, start, ref_start_window=sd_min_days)
    cbor, _ = best_overall_response(
        dates,
        resp,
        start,
        confirmed=True,
        ref_start_window=sd_min_days,
        ref_confirm=ref_confirm,
        max_nr_ne=max_nr_ne,
    )
    pd_rows = post[post[R.OVERALL_RESPONSE] == "PD"]
    first_pd = pd_rows[R.DATE].iloc[0] if len(pd_rows) else None
    if extra_unscanned is not None and (first_pd is None or extra_unscanned < first_pd):
        first_pd = extra_unscanned
    deaths = _events_of(events, "death")
    pfs = imaging_pfs(
        dates,
        resp,
        start,
        has_baseline=has_baseline,
        death_date=deaths[0] if deaths else None,
        new_treatment_date=new_tx_date,
        extra_pd_date=extra_unscanned,
        rules=pfs_rules,
        assessment_interval_days=assessment_interval_days,
    )
    confirmed, resp_date = confirmed_response(
        dates, resp, ref_confirm=ref_confirm, max_nr_ne=max_nr_ne
    )
    dor = math.nan
    if confirmed:
        dor = float((pfs.date - resp_date).days + 1) if pfs.date >= resp_date else math.nan
    # shrinkage metrics on evaluable assessments up to first PD
    upto = rec.iloc[b_pos:]
    upto = upto[upto[R.EVALUABLE] & upto[R.TARGET_SUM_MM].notna()]
    if first_pd is not None:
        upto = upto[pd.to_datetime(upto[R.DATE]) <= pd.Timestamp(first_pd)]
    dpr = ttn = math.nan
    ets_value: bool | None = None
    exclusion = None if measurable else "non_measurable_baseline"
    if measurable:
        ets_value = early_tumour_shrinkage(
            upto["_from_start"].astype(float).tolist(),
            upto[R.PCT_CHANGE_BASELINE].tolist(),
            window_days=ets_window_days,
            threshold_pct=ets_threshold_pct,
        )
        dpr = depth_of_response(upto[R.PCT_CHANGE_BASELINE].tolist())
        days_from_start = [float(max((d - start).days, 0)) for d in upto[R.DATE]]
        ttn = time_to_nadir(days_from_start, upto[R.TARGET_SUM_MM].tolist())
    # kinetics: baseline + on-treatment evaluable assessments before a new treatment line
    on = rec.iloc[b_pos:]
    on = on[(on[R.EVALUABLE] & on[R.OVERALL_RESPONSE].notna()) | (on[R.TIMEPOINT] == baseline)]
    on = on[(on[R.TIMEPOINT] == baseline) | (on["_from_start"].astype(float) > 0)]
    if measurable:
        fit = fit_growth_kinetics(
            on[R.DAYS].astype(float).tolist(),
            on[R.TARGET_SUM_MM].tolist(),
            min_assessments=min_kinetics_assessments,
            pval=kinetics_pval,
        )
        vol = gm.burden.set_index("timepoint").reindex(on[R.TIMEPOINT])["total_volume_ml"]
        vfit = fit_growth_kinetics(
            on[R.DAYS].astype(float).tolist(),
            vol.tolist(),
            min_assessments=min_kinetics_assessments,
            pval=kinetics_pval,
        )
        tgr = (
            tumour_growth_rate(
                float(on[R.TARGET_SUM_MM].iloc[0]),
                float(on[R.TARGET_SUM_MM].iloc[1]),
                float(on[R.DAYS].iloc[1] - on[R.DAYS].iloc[0]),
            )
            if len(on) >= 2
            else math.nan
        )
        tgk = (fit.model, fit.g_per_day, fit.d_per_day, fit.status)
        vtgk = (vfit.model, vfit.g_per_day, vfit.d_per_day, vfit.status)
    else:
        tgk = vtgk = (None, math.nan, math.nan, "excluded")
        tgr = math.nan
    row = {
        P.PATIENT_ID: patient_id,
        P.MEASURABLE_AT_BASELINE: measurable,
        P.BEST_RESPONSE: bor,
        P.BEST_RESPONSE_CONFIRMED: cbor,
        P.FIRST_PD_DATE: first_pd,
        P.IMAGING_PFS_DAYS: float(pfs.days),
        P.IMAGING_PFS_EVENT: bool(pfs.event),
        P.IMAGING_PFS_CENSOR_REASON: pfs.censor_reason,
        P.DURATION_OF_RESPONSE_DAYS: dor,
        P.ETS: ets_value,
        P.DEPTH_OF_RESPONSE: dpr,
        P.TIME_TO_NADIR_DAYS: ttn,
        P.TGK_MODEL: tgk[0],
        P.TGK_G_PER_DAY: tgk[1],
        P.TGK_D_PER_DAY: tgk[2],
        P.TGK_STATUS: tgk[3],
        P.TGR_PCT_PER_MONTH: tgr,
        P.EXCLUSION_REASON: exclusion,
        P.TGK_VOLUME_MODEL: vtgk[0],
        P.TGK_VOLUME_G_PER_DAY: vtgk[1],
        P.TGK_VOLUME_D_PER_DAY: vtgk[2],
        P.TGK_VOLUME_STATUS: vtgk[3],
        P.SCOPE: SCOPE,
    }
    out = pd.DataFrame([row])
    out[P.ETS] = out[P.ETS].astype("boolean")
    return out


# --------------------------------------------------------------------------------------------
# pipeline stage
# --------------------------------------------------------------------------------------------
#: clinical-table column with a patient's planned interval between assessments (days)
INTERVAL_COLUMN = "assessment_interval_days"


def protocol_interval(patient: Patient, cohort_interval: float | None = None) -> float | None:
    """The protocol's assessment interval (days) for the missed-assessment censoring rule.

    The patient's ``assessment_interval_days`` clinical column when present, else
    ``cohort_interval`` (the cohort runner passes the median gap between consecutive analysed
    scans over the whole cohort), else None (:func:`~metevo.response.imaging_pfs` then uses the
    patient's own median gap). An explicit ``assessment_interval_days`` stage option
    (``--assessment-interval-days``) overrides both.
    """
    value = (patient.clinical or {}).get(INTERVAL_COLUMN)
    try:
        value = float(value)
    except (TypeError, ValueError):
        value = math.nan
    if math.isfinite(value) and value > 0:
        return value
    return cohort_interval


def cohort_assessment_interval(patients) -> float | None:
    """Median gap (days) between consecutive analysed scans over all patients of a cohort."""
    gaps = [
        (b.date - a.date).days
        for patient in patients
        for a, b in zip(patient.scans[:-1], patient.scans[1:], strict=True)
    ]
    gaps = [g for g in gaps if g > 0]
    return float(np.median(gaps)) if gaps else None


def recist_stage(patient: Patient, result: Any, **options: Any) -> None:
    """Pipeline stage ``recist``: the ``recist`` (per scan), ``patients`` (per patient) and
    ``recist_lesions`` (per scan and RECIST lesion, for the SDTM export) tables, from the
    ``scans`` and ``lesions`` tables and the ``graph`` hand-off.

    Options are those of :func:`assess_patient` (e.g. ``max_targets``, ``pfs_rules``), plus
    ``cohort_assessment_interval_days`` (set by the cohort runner); the assessment interval of
    the PFS censoring rules comes from :func:`protocol_interval` unless given.
    """
    for name in ("scans", "lesions"):
        if name not in result.tables:
            raise ValueError(
                f"patient {patient.patient_id!r}: the recist stage needs the {name!r} table of an "
                "earlier stage; run the 'scans' and 'lesion_graph' stages first."
            )
    graph = result.objects.get("graph")
    edges = graph.edges if graph is not None else result.tables.get("lesion_edges")
    if edges is None:
        raise ValueError(
            f"patient {patient.patient_id!r}: the recist stage needs the lesion graph "
            "(result.objects['graph'] or the 'lesion_edges' table); run 'lesion_graph' first."
        )
    options = dict(options)
    cohort_interval = options.pop("cohort_assessment_interval_days", None)
    if options.get("assessment_interval_days") is None:
        options["assessment_interval_days"] = protocol_interval(patient, cohort_interval)
    thick = None
    try:
        thick = patient.baseline.slice_thickness_mm
    except AttributeError:
        thick = None
    recist_table, summary, lesion_table = assess_patient(
        patient.patient_id,
        result.tables["scans"],
        result.tables["lesions"],
        edges,
        treatment_start=patient.treatment_start,
        events=patient.events,
        slice_thickness_mm=thick if thick is not None and np.isfinite(thick) else None,
        **options,
    )
    result.tables["recist"] = recist_table
    result.tables["patients"] = summary
    result.tables["recist_lesions"] = lesion_table
