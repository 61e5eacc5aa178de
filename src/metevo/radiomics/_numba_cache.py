"""Fingerprints that keep numba's on-disk cache of a kernel in step with the modules it calls.

numba keys a cached kernel on its own source file only: a kernel that calls compiled functions
of other modules keeps their old machine code after those modules change (a checkout or merge
that touches ``_mesh.py`` but not ``_shape_fast.py``). The cache key also holds the values a
closure captures, so the fused kernels are built by a factory that captures the fingerprint of
the modules they call: any change there misses the cache and recompiles.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from types import ModuleType

__all__ = ["sources_fingerprint"]


def sources_fingerprint(*modules: ModuleType) -> int:
    """A positive int64 hash of the source files of ``modules`` (1 where one is unreadable)."""
    digest = hashlib.sha256()
    try:
        for module in modules:
            digest.update(Path(str(module.__file__)).read_bytes())
    except (OSError, TypeError):  # pragma: no cover - e.g. no source file
        return 1
    return int(digest.hexdigest()[:15], 16) | 1
