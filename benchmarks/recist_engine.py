"""Speed of the RECIST engine on a plain measurement table (no images).

Usage: python benchmarks/recist_engine.py [n_patients]
Prints rows/second of metevo.recist_from_measurements and of the best-response derivation.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import pandas as pd

from metevo import best_overall_response, recist_from_measurements


def table(n_patients: int, n_visits: int = 6, n_lesions: int = 4, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    pid = np.repeat(np.arange(n_patients), n_visits * n_lesions)
    visit = np.tile(np.repeat(np.arange(n_visits), n_lesions), n_patients)
    lesion = np.tile(np.arange(n_lesions), n_patients * n_visits)
    d0 = rng.uniform(8, 40, (n_patients, n_lesions))
    d = rng.uniform(0.0, 0.02, (n_patients, 1))
    g = rng.uniform(0.0, 0.006, (n_patients, 1))
    t = visit * 56.0
    size = d0[pid, lesion] * (np.exp(-d[pid, 0] * t) + np.exp(g[pid, 0] * t) - 1)
    size = np.where(size < 4, 0.0, size)
    dates = pd.Timestamp("2020-01-01") + pd.to_timedelta(t, unit="D")
    return pd.DataFrame(
        {
            "patient_id": pid.astype(str),
            "timepoint": "V" + visit.astype(str),
            "date": dates.strftime("%Y-%m-%d"),
            "lesion_id": lesion.astype(str),
            "ld_mm": size,
        }
    )


def main(n: int) -> None:
    m = table(n)
    t0 = time.perf_counter()
    res = recist_from_measurements(m)
    t1 = time.perf_counter()
    for _, grp in res[res["overall_response"].notna()].groupby("patient_id"):
        best_overall_response(grp["date"], grp["overall_response"], "2020-01-01", confirmed=True)
    t2 = time.perf_counter()
    print(f"{n} patients, {len(m)} measurement rows -> {len(res)} assessments")
    print(
        f"recist_from_measurements: {t1 - t0:.2f} s ({len(m) / (t1 - t0):,.0f} rows/s, {1000 * (t1 - t0) / n:.2f} ms/patient)"
    )
    print(f"confirmed best response:  {t2 - t1:.2f} s ({1000 * (t2 - t1) / n:.2f} ms/patient)")
    print(res["overall_response"].value_counts().to_string())


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
