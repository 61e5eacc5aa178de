"""Keep freed heap memory in the process between lesions (glibc's own adaptive thresholds).

glibc's malloc serves blocks above its mmap threshold (128 KiB at start) by fresh ``mmap``
pages and gives the top of the heap back to the system once more than twice that threshold
is free there. Both thresholds rise by themselves to the size of the largest mmapped block
freed so far (up to 32 MiB). A lesion's arrays (a few MiB each at 110k voxels) therefore keep
being handed back and faulted in again, page by page, on every lesion: about 6,000 page faults
per 110k-voxel lesion, a fifth of its CPU time on this project's benchmark machine. Freeing one
31 MiB block once, untouched, raises the thresholds to where they would settle on a large
scan: the process then keeps up to 62 MiB of freed heap for the next lesion. No setting is
changed by hand (``mallopt``, ``MALLOC_*`` variables), and other allocators ignore it.
"""

from __future__ import annotations

from functools import cache

import numpy as np

__all__ = ["keep_freed_memory"]

_BLOCK_BYTES = 31 * 2**20  # below glibc's 32 MiB cap on the adaptive mmap threshold


@cache
def keep_freed_memory() -> None:
    """Allocate and free one untouched 31 MiB block, once per process (see the module)."""
    block = np.empty(_BLOCK_BYTES, np.uint8)
    del block
