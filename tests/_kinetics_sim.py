"""Small kinetics simulator for the patterns/survival tests (no images).

Stein's tumour growth model: size(t) = size0 * (exp(-d t) + exp(g t) - 1). Five planted
patterns, visits every ~8 weeks with jitter and missed visits, follow-up that ends at
progression/death, overall survival whose hazard is ordered by pattern.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

PATTERNS = ("deep_response", "stable", "mixed_response", "response_then_relapse", "progression")
# (d per day, g per day) ranges of the sum of target lesions
_KINETICS = {
    "deep_response": ((0.015, 0.03), (0.0, 0.0003)),
    "stable": ((0.0, 0.001), (0.0, 0.0008)),
    "mixed_response": ((0.004, 0.008), (0.0015, 0.0025)),
    "response_then_relapse": ((0.012, 0.02), (0.004, 0.006)),
    "progression": ((0.0, 0.0005), (0.006, 0.009)),
}
# OS hazard per day by pattern (ordered: deep response best, progression worst)
_HAZARD = {
    "deep_response": 1 / 1800,
    "stable": 1 / 1000,
    "mixed_response": 1 / 800,
    "response_then_relapse": 1 / 600,
    "progression": 1 / 300,
}


def stein(size0: float, d: float, g: float, t: np.ndarray) -> np.ndarray:
    return size0 * (np.exp(-d * t) + np.exp(g * t) - 1.0)


def simulate(n: int, seed: int = 0, *, max_visits: int = 8) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    rows, clin, truth = [], [], []
    for i in range(n):
        pid = f"P{i:05d}"
        pattern = PATTERNS[i % len(PATTERNS)]
        (dlo, dhi), (glo, ghi) = _KINETICS[pattern]
        d, g = rng.uniform(dlo, dhi), rng.uniform(glo, ghi)
        size0 = rng.uniform(40, 150)
        os_days = rng.exponential(1 / _HAZARD[pattern])
        censor = rng.uniform(300, 1500)
        event = os_days <= censor
        os_days = min(os_days, censor)
        days = [float(rng.integers(-20, 1))]
        nominal = 56.0
        while len(days) < max_visits:
            nxt = nominal * len(days) + rng.normal(0, 6)
            if rng.random() < 0.1:  # missed visit
                nominal += 56.0
                continue
            days.append(nxt)
        t = np.array(days)
        size = stein(size0, d, g, np.clip(t, 0, None)) * rng.lognormal(0, 0.04, t.size)
        # follow-up ends at death/censoring, and two visits after progression (size >= 2x base)
        keep = t <= os_days
        prog = np.flatnonzero(size >= 2 * size0)
        if prog.size:
            keep &= np.arange(t.size) <= prog[0] + 1
        keep[0] = True
        t, size = t[keep], size[keep]
        n_les = np.full(t.size, 3)
        for j, (tt, s) in enumerate(zip(t, size, strict=True)):
            rows.append(
                {
                    "patient_id": pid,
                    "timepoint": f"V{j}",
                    "study_day": int(round(tt)),
                    "days": int(round(tt - t[0])),
                    "n_lesions": int(n_les[j]),
                    "n_new_lesions": 0,
                    "target_sum_mm": float(s),
                    "total_volume_ml": float((s / 30.0) ** 3 * 4.19),
                    "sum_ld_mm": float(s),
                }
            )
        clin.append(
            {
                "patient_id": pid,
                "os_days": float(os_days),
                "os_event": bool(event),
                "age": float(rng.normal(63, 9)),
                "arm": "A" if rng.random() < 0.5 else "B",
            }
        )
        truth.append({"patient_id": pid, "pattern": pattern, "d": d, "g": g})
    return {
        "patient_trajectories": pd.DataFrame(rows),
        "clinical": pd.DataFrame(clin),
        "ground_truth": pd.DataFrame(truth),
    }
