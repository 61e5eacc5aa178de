"""Freed heap memory kept between lesions (glibc's adaptive malloc thresholds)."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

# a fresh interpreter: the test process's own history of large frees would hide the effect
_CODE = """
import resource
import numpy as np
{call}
def faults():
    block = np.ones(375_000)  # 3 MB, touched (below numpy's 4 MB huge-page advice)
    del block
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = np.ones(375_000)
    del block
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(faults())
"""


def _faults(call: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", _CODE.format(call=call)],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout.strip())


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
    reason="glibc's malloc thresholds",
)
def test_a_3_mb_array_reuses_freed_pages_after_keep_freed_memory():
    # without the call a 3 MB array is a fresh mmap each time: ~730 page faults
    assert _faults("") > 500
    kept = _faults("from metevo.radiomics._memory import keep_freed_memory\nkeep_freed_memory()")
    assert kept < 50
