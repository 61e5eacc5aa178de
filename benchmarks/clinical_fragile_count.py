"""How many follow-ups of the clinical preset are fragile by construction, from the truth alone.

A follow-up is fragile when the true target sum lies within ``--fragile-mm`` of a RECIST
threshold (the truth's ``target_response_margin_mm``) or the truth chose its targets between
baseline lesions less than ``--tie-mm`` apart (``bench_clinical._target_tie``), as in
``bench_clinical.py``. No pipeline run: only the ground truth of the cached cohorts (generated
by ``bench_clinical.py`` into ``.bench/``). Pair it with the misses that ``bench_clinical.py``
lists (each with its true margin and tie gap) to get the agreement on the follow-ups that are
not fragile under other limits.

Usage::

    PYTHONPATH=src python benchmarks/clinical_fragile_count.py --seeds 0 1 2 3 4 5 6 7 \\
        --limits 1.6,0.8 0.85,0.4
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_clinical  # noqa: E402
from recist_synthetic import truth_recist  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--patients", type=int, default=12)
    ap.add_argument("--size", default="clinical_crop")
    ap.add_argument("--limits", nargs="+", default=["1.6,0.8"], help="fragile_mm,tie_mm")
    args = ap.parse_args()
    limits = [tuple(float(v) for v in pair.split(",")) for pair in args.limits]
    counts = {pair: [0, 0] for pair in limits}
    warnings.simplefilter("ignore")
    for seed in args.seeds:
        synth = bench_clinical.cohort(args.size, args.patients, seed)
        clinical = pd.read_csv(synth.clinical).set_index("patient_id")
        events = pd.read_csv(synth.events)
        for pid in clinical.index:
            truth, truth_lesions = truth_recist(synth, pid, clinical, events, lesions=True)
            gap = bench_clinical._target_tie(truth_lesions)
            follow = truth.iloc[1:]
            follow = follow[follow["target_response"].notna()]
            for fragile_mm, tie_mm in limits:
                fragile = (follow["target_response_margin_mm"] < fragile_mm) | (gap < tie_mm)
                counts[(fragile_mm, tie_mm)][0] += int(fragile.sum())
                counts[(fragile_mm, tie_mm)][1] += len(follow)
    for (fragile_mm, tie_mm), (n_fragile, n) in counts.items():
        print(
            f"margin < {fragile_mm} mm or targets < {tie_mm} mm apart: {n_fragile} of {n} "
            f"scored follow-ups fragile ({100 * n_fragile / max(n, 1):.0f} %)"
        )


if __name__ == "__main__":
    main()
