"""Shared fixtures. Each module's tests may append fixtures here (keep them session-scoped and cheap)."""

from __future__ import annotations

import datetime as dt
import locale
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def run_python(*args: str) -> subprocess.CompletedProcess:
    """``python ARGS`` in a fresh process with this checkout's ``src`` first on the path."""
    path = os.pathsep.join(p for p in (str(REPO / "src"), os.environ.get("PYTHONPATH", "")) if p)
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, check=False,
        env={**os.environ, "PYTHONPATH": path},
    )  # fmt: skip


@pytest.fixture(autouse=True)
def _restore_locale():
    """GDCM's DICOM writer (SimpleITK) switches the process locale to "C", which makes Python's
    default text encoding ASCII for every later test; restore it after each test."""
    saved = locale.setlocale(locale.LC_ALL)
    yield
    locale.setlocale(locale.LC_ALL, saved)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (reference data laid beside the checkout); skips when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(
            f"reference data folder {SHARED_DATA} is absent (it lies beside the checkout in CI)"
        )
    return SHARED_DATA


def write_image(
    path: Path,
    array: np.ndarray,
    *,
    spacing=(2.0, 2.0, 3.0),
    origin=(0.0, 0.0, 0.0),
    direction=(1, 0, 0, 0, 1, 0, 0, 0, 1),
) -> Path:
    """Write a (z, y, x) array as an image with the given geometry."""
    img = sitk.GetImageFromArray(array)
    img.SetSpacing([float(v) for v in spacing])
    img.SetOrigin([float(v) for v in origin])
    img.SetDirection([float(v) for v in direction])
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(img, str(path))
    return path


def ball(shape, center, radius) -> np.ndarray:
    """Boolean ball in voxel units on a (z, y, x) grid."""
    zz, yy, xx = np.indices(shape)
    return (zz - center[0]) ** 2 + (yy - center[1]) ** 2 + (xx - center[2]) ** 2 <= radius**2


def make_mini_cohort(
    root: Path, n_patients: int = 3, n_visits: int = 3, *, shape=(12, 32, 32)
) -> dict:
    """A tiny hand-made cohort: images, binary lesion masks, liver masks, manifest, clinical, events.

    Patient k has one lesion of radius 3 + visit voxels in the liver block; returns paths and
    the expected lesion voxel counts per (patient, timepoint).
    """
    rows, clinical, expected = [], [], {}
    start = dt.date(2021, 1, 4)
    for p in range(n_patients):
        pid = f"P{p + 1:03d}"
        ts = start + dt.timedelta(days=30 * p + 3)
        clinical.append(
            {
                "patient_id": pid,
                "treatment_start": ts.isoformat(),
                "os_days": 400 + 10 * p,
                "os_event": p % 2,
                "arm": "A" if p % 2 else "B",
                "age": 60 + p,
            }
        )
        for v in range(n_visits):
            date = start + dt.timedelta(days=30 * p + 56 * v)
            liver = np.zeros(shape, np.uint8)
            liver[2:-2, 6:-6, 6:-6] = 1
            lesion = ball(shape, (shape[0] // 2, shape[1] // 2, shape[2] // 2), 2 + v).astype(
                np.uint8
            )
            lesion &= liver
            ct = np.full(shape, -1000, np.int16)
            ct[liver == 1] = 60
            ct[lesion == 1] = 30
            ct[2:-2, -4:-2, 14:18] = 400  # a vertebra: real CT holds bone, not only soft tissue
            base = root / pid / f"V{v}"
            write_image(base / "ct.nii.gz", ct)
            write_image(base / "lesion.nii.gz", lesion)
            write_image(base / "liver.nii.gz", liver)
            rows.append(
                {
                    "patient_id": pid,
                    "timepoint": f"V{v}",
                    "date": date.isoformat(),
                    "image": f"{pid}/V{v}/ct.nii.gz",
                    "lesion_mask": f"{pid}/V{v}/lesion.nii.gz",
                    "liver_mask": f"{pid}/V{v}/liver.nii.gz",
                    "phase": "portal_venous",
                    "slice_thickness_mm": 3.0,
                    "kernel": "B30f",
                }
            )
            expected[(pid, f"V{v}")] = int(lesion.sum())
    manifest = root / "manifest.csv"
    pd.DataFrame(rows).to_csv(manifest, index=False)
    clin = root / "clinical.csv"
    pd.DataFrame(clinical).to_csv(clin, index=False)
    events = root / "events.csv"
    pd.DataFrame(
        [
            {
                "patient_id": "P001",
                "date": (start + dt.timedelta(days=70)).isoformat(),
                "event": "resection",
                "note": "segment VI",
            }
        ]
    ).to_csv(events, index=False)
    return {
        "root": root,
        "manifest": manifest,
        "clinical": clin,
        "events": events,
        "expected": expected,
    }


@pytest.fixture()
def mini_cohort(tmp_path) -> dict:
    """A fresh hand-made 3-patient cohort in ``tmp_path`` (tests may damage it)."""
    return make_mini_cohort(tmp_path)


@pytest.fixture(scope="session")
def tiny_analysis(tiny_cohort, tmp_path_factory):
    """The tiny synthetic cohort analysed once by every pipeline stage (``metevo.analyze``).

    Shared by the tests of every stage and by the data-dictionary test; returns the
    :class:`metevo.AnalysisResult`.
    """
    import warnings

    from metevo import analyze, open_cohort

    cohort = open_cohort(
        tiny_cohort.manifest, clinical=tiny_cohort.clinical, events=tiny_cohort.events
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # stage warnings are checked by the stages' own tests
        return analyze(cohort, tmp_path_factory.mktemp("tiny_analysis"), workers=2, progress=False)


@pytest.fixture(scope="session")
def tiny_cohort(tmp_path_factory):
    """The tiny synthetic image cohort (6 patients, seed 0) with ground truth, generated once.

    A :class:`metevo.datasets.SyntheticCohort` (``.root``, ``.manifest``, ``.clinical``,
    ``.events``, ``.ground_truth``); every pattern and every hard case is present.
    """
    from metevo.datasets import make_synthetic_cohort

    return make_synthetic_cohort(tmp_path_factory.mktemp("tiny_cohort"), n_patients=6, seed=0)


@pytest.fixture(scope="session")
def tiny_cohort_dir(tiny_cohort) -> Path:
    """Folder of the tiny synthetic cohort (``manifest.csv``, ``clinical.csv``, ``events.csv``)."""
    return tiny_cohort.root


@pytest.fixture(scope="session")
def synthetic_trajectories() -> dict:
    """Image-free synthetic trajectory tables of 300 patients (seed 0)."""
    from metevo.datasets import make_synthetic_trajectories

    return make_synthetic_trajectories(300, seed=0)
