"""Timing loop shared by the peer scripts of ``bench_radiomics_scaling.py`` (standard library
only: it runs in every peer's venv)."""

import time


def time_cases(run, cases, repeats):
    """``[[(wall s, CPU s) per repeat] per case]`` of ``run(*case)``."""
    out = []
    for case in cases:
        runs = []
        for _ in range(repeats):
            c0 = time.process_time()
            t0 = time.perf_counter()
            run(*case)
            runs.append((time.perf_counter() - t0, time.process_time() - c0))
        out.append(runs)
    return out
