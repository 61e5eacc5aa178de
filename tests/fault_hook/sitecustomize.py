"""Test-only fault injection for metevo's cohort runner (never imported by the product).

Put this folder first on ``PYTHONPATH`` and set ``METEVO_TEST_FAULTS`` to comma-separated
``PATIENT:STAGE:FAULT`` items; every Python process started with that environment (the patient
worker processes included) then wraps the named stage so that, for that patient, it

- ``segfault``: dereferences a NULL pointer through ctypes (SIGSEGV);
- ``abort``: calls ``os.abort()`` (SIGABRT);
- ``oomkill``: sends itself SIGKILL, as the kernel's out-of-memory killer does;
- ``sleep``: sleeps for 10 minutes (for ``--patient-timeout``);
- ``raise``: raises ``RuntimeError``.
"""

from __future__ import annotations

import os

_SPEC = os.environ.get("METEVO_TEST_FAULTS", "")


def _fault(kind: str) -> None:
    import ctypes
    import signal
    import time

    if kind == "segfault":
        ctypes.string_at(0)
    elif kind == "abort":
        os.abort()
    elif kind == "oomkill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif kind == "sleep":
        time.sleep(600)
    elif kind == "raise":
        raise RuntimeError("injected failure")
    raise ValueError(f"unknown fault {kind!r}")


def _install(spec: str) -> None:
    """Replace the named stages in the runner's ``STAGES`` list (in place) by faulty wrappers."""
    import functools
    import importlib

    try:
        from metevo.runner import pipeline
    except ImportError:
        from metevo import pipeline
    by_stage: dict[str, dict[str, str]] = {}
    for item in filter(None, spec.split(",")):
        patient, stage, kind = item.split(":")
        by_stage.setdefault(stage, {})[patient] = kind
    for i, (name, target) in enumerate(pipeline.STAGES):
        if name not in by_stage:
            continue
        if isinstance(target, str):  # "module:function"
            module_name, _, func_name = target.partition(":")
            target = getattr(importlib.import_module(module_name), func_name)

        @functools.wraps(target)
        def faulty(patient, result, _original=target, _faults=by_stage[name], **options):
            if patient.patient_id in _faults:
                _fault(_faults[patient.patient_id])
            return _original(patient, result, **options)

        pipeline.STAGES[i] = (name, faulty)


if _SPEC:
    _install(_SPEC)
