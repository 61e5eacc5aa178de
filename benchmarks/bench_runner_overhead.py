"""Cost of one process per patient: ``analyze(isolate=True)`` vs ``isolate=False``, same run.

Usage::

    PYTHONPATH=src python benchmarks/bench_runner_overhead.py /tmp/overhead

Builds the tests' hand-made cohort (4 patients x 3 visits, 32 x 32 x 12 voxels) and analyses it
with every stage, alternating in-process and isolated runs; prints CPU time (this process and its
children) and wall time of each run.
"""

from __future__ import annotations

import resource
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from conftest import make_mini_cohort  # noqa: E402

import metevo  # noqa: E402


def _cpu() -> float:
    s = resource.getrusage(resource.RUSAGE_SELF)
    ch = resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + ch.ru_utime + ch.ru_stime


def main(root: Path) -> None:
    c = make_mini_cohort(root / "cohort", n_patients=4, n_visits=3)
    cohort = metevo.open_cohort(c["manifest"], clinical=c["clinical"], events=c["events"])
    warnings.simplefilter("ignore")
    metevo.analyze(cohort, root / "warm", workers=1, isolate=False, progress=False)
    for isolate in (False, True, False, True):
        c0, t0 = _cpu(), time.perf_counter()
        metevo.analyze(cohort, root / f"run-{isolate}", workers=1, isolate=isolate, force=True,
                       progress=False)
        print(f"isolate={isolate}: cpu {_cpu() - c0:.1f} s, wall {time.perf_counter() - t0:.1f} s "
              "for 4 patients x 3 visits (all stages)", flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
