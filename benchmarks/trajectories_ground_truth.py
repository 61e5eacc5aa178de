"""Patient-level trajectories against the synthetic ground truth.

Usage: python benchmarks/trajectories_ground_truth.py DEMO_DIR
where DEMO_DIR is the folder `metevo demo --out DEMO_DIR` wrote (cohort/ and analysis/).
Prints how many visits agree on the lesion counts (all, new, disappeared) and the volume errors.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import metevo  # noqa: E402
from tests.test_trajectories import _gt_counts  # noqa: E402  (the same rules as the test)


def main(root: str) -> None:
    pt = metevo.trajectories(f"{root}/analysis", level="patient")
    gt = _gt_counts(f"{root}/cohort/ground_truth")
    both = pt.merge(gt, on=["patient_id", "timepoint"])
    print(f"visits {len(both)}, patients {both.patient_id.nunique()}")
    for ours, truth in (
        ("n_lesions", "gt_n"),
        ("n_new_lesions", "gt_new"),
        ("n_disappeared_lesions", "gt_gone"),
    ):
        print(f"{ours}: {int((both[ours] == both[truth]).sum())}/{len(both)} visits agree")
    rel = np.abs(both.total_volume_ml - both.gt_volume_ml) / np.maximum(both.gt_volume_ml, 1e-9)
    print(f"total volume vs ground-truth instance masks: max relative error {rel.max():.2g}")
    true = (
        pd.read_parquet(f"{root}/cohort/ground_truth/lesions.parquet")
        .groupby(["patient_id", "timepoint"])
        .volume_ml.sum()
        .rename("true_ml")
    )
    m = pt.set_index(["patient_id", "timepoint"]).join(true, how="left").fillna({"true_ml": 0.0})
    big = m[m.true_ml > 2]
    err = np.median(np.abs(big.total_volume_ml / big.true_ml - 1))
    print(
        f"vs the true (noise-free) shapes, visits > 2 ml: {len(big)}, median |relative error| {err:.3f}"
    )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "metevo_demo")
