"""Association of evolution patterns with response: crosstabs with best overall response, early
tumour shrinkage and arm; Fisher/chi-square tests, Cramer's V, Benjamini-Hochberg p-values.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["response_association"]


# ---------------------------------------------------------------------------- response
#: response variables derived from the same CT measurements as the patterns
SAME_MEASUREMENT_VARIABLES = ("best_response", "ets", "depth_of_response")
ETS_THRESHOLD = 0.2  # early tumour shrinkage: >= 20 % decrease of the target sum at ~8 weeks


def _ets_levels(values: pd.Series) -> pd.Series:
    """ETS as "yes"/"no": booleans as given, numbers as shrinkage >= 20 %.

    A numeric column is read as relative change (negative = shrinkage) when any value is
    negative, else as shrinkage fraction (positive = shrinkage).
    """
    if pd.api.types.is_bool_dtype(values) or values.dropna().isin([0, 1, True, False]).all():
        return values.map({True: "yes", False: "no"})  # 1 == True and 0 == False
    num = pd.to_numeric(values, errors="coerce")
    shrink = -num if (num < 0).any() else num
    return pd.Series(np.where(shrink >= ETS_THRESHOLD, "yes", "no"), index=values.index).where(
        num.notna()
    )


def _crosstab_test(table: np.ndarray, seed: int) -> tuple[str, float, float]:
    from scipy.stats import MonteCarloMethod, chi2_contingency, fisher_exact

    if table.shape == (2, 2):
        res = fisher_exact(table)
        return "fisher_exact", float(res.statistic), float(res.pvalue)
    expected = chi2_contingency(table, correction=False).expected_freq
    if (expected < 5).any():
        res = fisher_exact(table, method=MonteCarloMethod(n_resamples=9999, rng=seed))
        stat, p = np.ravel(res.statistic)[0], np.ravel(res.pvalue)[0]
        return "fisher_exact_monte_carlo", float(stat), float(p)
    res = chi2_contingency(table, correction=False)
    return "chi_square", float(res.statistic), float(res.pvalue)


def response_association(
    patterns: pd.DataFrame,
    patients: pd.DataFrame | None = None,
    clinical: pd.DataFrame | None = None,
    *,
    variables: tuple[str, ...] = ("best_response", "ets", "arm"),
    random_state: int = 0,
) -> pd.DataFrame:
    """Pattern x response / arm crosstabs with tests, Cramér's V and BH-adjusted p-values.

    The table is descriptive: p-values are Benjamini-Hochberg adjusted across the variables
    tested, and ``same_measurements`` is True when the variable derives from the CT
    measurements the patterns were built from (best response, ETS), so that an association
    there is expected by construction. Tests: Fisher's exact test for 2 x 2 tables, chi-square
    when every expected count is >= 5, else Fisher's test for r x c by Monte Carlo (9,999
    tables, SciPy ``fisher_exact(method=MonteCarloMethod)``).

    Returns
    -------
    DataFrame
        ``response_association`` rows: one per variable x pattern x level, with the variable's
        test repeated on each of its rows.
    """
    from scipy.stats import false_discovery_control
    from scipy.stats.contingency import association

    from metevo.columns import ResponseAssociation as RA

    pat = patterns.dropna(subset=["pattern"])[["patient_id", "pattern"]].copy()
    pat["patient_id"] = pat["patient_id"].astype(str)
    sources = [t for t in (patients, clinical) if t is not None]
    frames, tests = [], []
    for var in variables:
        src = next((t for t in sources if var in t.columns), None)
        if src is None:
            continue
        vals = src[["patient_id", var]].copy()
        vals["patient_id"] = vals["patient_id"].astype(str)
        vals = vals.drop_duplicates("patient_id")
        if var == "ets":
            vals[var] = _ets_levels(vals[var])
        d = pat.merge(vals, on="patient_id").dropna(subset=[var])
        d[var] = d[var].astype(str)
        ct = pd.crosstab(d["pattern"], d[var])
        note = "descriptive"
        if var in SAME_MEASUREMENT_VARIABLES:
            note += "; pattern and response derive from the same CT measurements"
        if ct.shape[0] < 2 or ct.shape[1] < 2:
            test, stat, p, v = "none", np.nan, np.nan, np.nan
            note += "; fewer than two patterns or levels: no test"
        else:
            test, stat, p = _crosstab_test(ct.to_numpy(), random_state)
            v = float(association(ct.to_numpy(), method="cramer"))
        long = ct.stack().rename(RA.N).reset_index()
        long.columns = [RA.PATTERN, RA.LEVEL, RA.N]
        long[RA.ROW_FRACTION] = long[RA.N] / long.groupby(RA.PATTERN)[RA.N].transform("sum")
        long.insert(0, RA.VARIABLE, var)
        long[RA.TEST] = test
        long[RA.STATISTIC] = stat
        long[RA.P_VALUE] = p
        long[RA.CRAMERS_V] = v
        long[RA.SAME_MEASUREMENTS] = var in SAME_MEASUREMENT_VARIABLES
        long[RA.NOTE] = note
        frames.append(long)
        tests.append((var, p))
    if not frames:
        return pd.DataFrame(
            columns=[
                RA.VARIABLE,
                RA.PATTERN,
                RA.LEVEL,
                RA.N,
                RA.ROW_FRACTION,
                RA.TEST,
                RA.STATISTIC,
                RA.P_VALUE,
                RA.P_ADJUSTED,
                RA.CRAMERS_V,
                RA.SAME_MEASUREMENTS,
                RA.NOTE,
            ]
        )
    out = pd.concat(frames, ignore_index=True)
    pv = pd.Series({v: p for v, p in tests}).dropna()
    adj = pd.Series(false_discovery_control(pv.to_numpy()), index=pv.index) if len(pv) else pv
    out.insert(out.columns.get_loc(RA.P_VALUE) + 1, RA.P_ADJUSTED, out[RA.VARIABLE].map(adj))
    out[RA.N] = out[RA.N].astype(int)
    return out
