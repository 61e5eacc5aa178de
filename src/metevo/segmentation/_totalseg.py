"""TotalSegmentator tasks as its own command line runs them: its steps around nnU-Net.

The ``TotalSegmentator`` CLI does more than run a task's nnU-Net model (``python_api.py``,
``nnunet.py`` and ``map_tasks_config.py`` of wasserth/TotalSegmentator, read at commit 0e65a44,
v2.x). For one CT and one task it:

1. **crops** to an organ when the task says so (the liver tasks): the organ is segmented first
   by TotalSegmentator's coarse ``total`` model (dataset 298 at 6 mm, or dataset 297 at 3 mm for
   tasks with ``robust_crop``), its bounding box on the input grid is widened by 20 mm along each
   axis (``python_api``: ``crop_addon = [20, 20, 20]`` whenever the task has no own crop model;
   the task's ``crop_addon`` is not used then), converted to voxels with ``int(20 / spacing)`` and
   clipped to the image, and the CT is cut to that box;
2. reorients to the closest RAS+ orientation (``nibabel.as_closest_canonical``);
3. **resamples** to the task's spacing when it has one (``change_spacing``: ``scipy.ndimage.zoom``
   with zoom ``spacing / target``, linear (order 1), ``mode="nearest"``, cast to int32), so that
   nnU-Net's own resampling to its plans' spacing starts from that grid;
4. runs nnU-Net (here :class:`~metevo.segmentation._nnunet.NnUNetModel`, fold 0, no mirroring);
5. resamples the label map back to the canonical grid (``zoom`` to the exact shape, nearest
   neighbour), undoes the reorientation and pastes the crop back into an empty volume (an empty
   organ mask gives an empty label map, as the CLI does).

:data:`TASK_STEPS` holds the per-task settings. When the crop model's weights are absent, the
task runs on the uncropped CT: a :class:`~metevo.exceptions.DataQualityWarning` says so when
the model is loaded, and the provenance records ``"crop": "not done"``, so masks near the organ
can differ from the CLI's. Nothing is downloaded.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from metevo.exceptions import DataQualityWarning

__all__ = [
    "TASK_STEPS",
    "TOTALSEGMENTATOR_TASKS",
    "TotalSegmentatorModel",
    "crop_task",
    "totalsegmentator_folder",
    "totalsegmentator_home",
    "totalsegmentator_identity",
]

#: TotalSegmentator tasks metevo runs: (dataset id, trainer, configuration), as in
#: TotalSegmentator's ``map_tasks_config.py`` (``total`` is its organ part, dataset 291, which
#: holds the liver).
TOTALSEGMENTATOR_TASKS = {
    "total": (291, "nnUNetTrainerNoMirroring", "3d_fullres"),
    "total_fast": (297, "nnUNetTrainer_4000epochs_NoMirroring", "3d_fullres"),
    "liver_segments": (570, "nnUNetTrainerNoMirroring", "3d_fullres"),
    "liver_lesions": (591, "nnUNetTrainer", "3d_fullres_high"),
    "liver_vessels": (8, "nnUNetTrainer", "3d_fullres"),
    # the coarse organ model TotalSegmentator crops the liver tasks with (6 mm; 297 is 3 mm)
    "total_fastest": (298, "nnUNetTrainer_4000epochs_NoMirroring", "3d_fullres"),
}
#: ``totalseg_download_weights -t`` argument that installs a task's dataset (its TASK_TO_ID)
_DOWNLOAD_TASK = {"total_fastest": "total"}

#: per task: TotalSegmentator's own resampling target (x, y, z mm; None: nnU-Net's plans only),
#: the organ it crops to (None: no crop) and whether the crop uses the 3 mm model (robust_crop)
TASK_STEPS: dict[str, dict[str, Any]] = {
    "total": {"resample": (1.5, 1.5, 1.5), "crop": None},
    "total_fast": {"resample": (3.0, 3.0, 3.0), "crop": None},
    "total_fastest": {"resample": (6.0, 6.0, 6.0), "crop": None},
    "liver_segments": {
        "resample": (0.8046879768371582, 0.8046879768371582, 1.5), "crop": "liver",
        "robust_crop": False,
    },
    "liver_lesions": {"resample": (0.75, 0.75, 1.0), "crop": "liver", "robust_crop": True},
    "liver_vessels": {"resample": None, "crop": "liver", "robust_crop": False},
}  # fmt: skip
#: widening of the organ's bounding box before cropping (mm, each side)
CROP_ADDON_MM = 20.0


def totalsegmentator_home() -> Path:
    """TotalSegmentator's folder: ``TOTALSEG_HOME_DIR``, else ``~/.totalsegmentator``."""
    if os.environ.get("TOTALSEG_HOME_DIR"):
        return Path(os.environ["TOTALSEG_HOME_DIR"]).expanduser()
    return Path.home() / ".totalsegmentator"


def totalsegmentator_folder(task: str) -> Path:
    """The trained nnU-Net folder of a TotalSegmentator task in the local weights folder."""
    if task not in TOTALSEGMENTATOR_TASKS:
        raise ValueError(
            f"TotalSegmentator task {task!r} is not one metevo runs; choose one of "
            f"{sorted(TOTALSEGMENTATOR_TASKS)}."
        )
    dataset_id, trainer, configuration = TOTALSEGMENTATOR_TASKS[task]
    weights = totalsegmentator_home() / "nnunet" / "results"
    pattern = f"Dataset{dataset_id:03d}_*/{trainer}__nnUNetPlans__{configuration}"
    found = sorted(p for p in weights.glob(pattern) if (p / "plans.json").is_file())
    if not found:
        raise FileNotFoundError(
            f"TotalSegmentator weights for task {task!r} (nnU-Net dataset {dataset_id}, "
            f"{trainer}__nnUNetPlans__{configuration}) are not in {weights}. Install them once "
            f"with `totalseg_download_weights -t {_DOWNLOAD_TASK.get(task, task)}` (set "
            "TOTALSEG_HOME_DIR to use another folder); metevo never downloads weights at run "
            "time."
        )
    return found[-1]


def crop_task(task: str) -> str | None:
    """The task whose model gives the crop mask (``total_fast``: 3 mm, ``total_fastest``: 6 mm)."""
    steps = TASK_STEPS[task]
    if steps["crop"] is None:
        return None
    return "total_fast" if steps.get("robust_crop") else "total_fastest"


def _crop_folder(task: str) -> Path | None:
    helper = crop_task(task)
    if helper is None:
        return None
    try:
        return totalsegmentator_folder(helper)
    except FileNotFoundError:
        return None


def totalsegmentator_identity(
    task: str, identity: dict[str, Any], *, sha256: Any = None
) -> dict[str, Any]:
    """Add TotalSegmentator's steps (and the crop model's checkpoints) to an nnU-Net identity."""
    from metevo.segmentation._nnunet_plans import NnUNetFolder, nnunet_identity

    steps = TASK_STEPS[task]
    folder = _crop_folder(task)
    crop: dict[str, Any] | str | None = None
    digest = hashlib.sha256(identity["checksum"].encode())
    if steps["crop"] is not None and folder is None:
        crop = "not done"
    elif steps["crop"] is not None:
        helper = nnunet_identity(
            NnUNetFolder.read(folder, folds=[0]), mirroring=False, step_size=0.5, reorient=True,
            liver=None, lesion=None, name=None, sha256=sha256,
        )  # fmt: skip
        digest.update(helper["checksum"].encode())
        crop = {"organ": steps["crop"], "model": crop_task(task), "addon_mm": CROP_ADDON_MM}
    settings = {
        **identity["settings"],
        "totalsegmentator": {"task": task, "resample_mm": steps["resample"], "crop": crop},
    }
    digest.update(json.dumps(settings["totalsegmentator"], sort_keys=True).encode())
    return {**identity, "checksum": digest.hexdigest(), "settings": settings}


def _zoom(data: np.ndarray, zoom: Any, order: int) -> np.ndarray:
    from scipy import ndimage

    return ndimage.zoom(data, zoom, order=order, mode="nearest")


class TotalSegmentatorModel:
    """A TotalSegmentator task run as its CLI runs it (``load_model("totalsegmentator:TASK")``).

    Wraps the task's :class:`~metevo.segmentation._nnunet.NnUNetModel` with the steps of
    :data:`TASK_STEPS`; same interface (``preprocess``, ``predict``, labels, ``checksum``).
    """

    backend = "totalsegmentator"

    def __init__(
        self, task: str, *, folds=None, mirroring: bool = False, liver=None, lesion=None,
        sha256: Any = None,
    ):  # fmt: skip
        from metevo.segmentation._card import file_sha256
        from metevo.segmentation._nnunet import NnUNetModel

        self.task = task
        weights = totalsegmentator_folder(task)  # first: a clear error for an unknown task
        self.steps = TASK_STEPS[task]
        # one hasher for this model, its crop model and the identity: the crop model's
        # checkpoints enter both its own identity and this task's, and are read once
        sha256 = sha256 or functools.cache(file_sha256)
        self.inner = NnUNetModel(
            weights, folds=folds or [0], mirroring=bool(mirroring), liver=liver, lesion=lesion,
            reorient=True, name=f"totalsegmentator:{task}", sha256=sha256,
        )  # fmt: skip
        self.crop_model: TotalSegmentatorModel | None = None
        self.crop_label: int | None = None
        folder = _crop_folder(task)
        if self.steps["crop"] is not None and folder is None:
            warnings.warn(
                f"totalsegmentator:{task}: the TotalSegmentator CLI crops the CT to the "
                f"{self.steps['crop']} (+{CROP_ADDON_MM:g} mm) found by its "
                f"'{crop_task(task)}' model, whose weights are not installed; metevo computes "
                "the mask on the uncropped CT, which can differ from the CLI's near the organ. "
                f"Install them with `totalseg_download_weights -t "
                f"{_DOWNLOAD_TASK.get(crop_task(task), crop_task(task))}`.",
                DataQualityWarning,
                stacklevel=3,
            )
        elif folder is not None:
            self.crop_model = TotalSegmentatorModel(crop_task(task), liver=["liver"], sha256=sha256)
            self.crop_label = self.crop_model.liver_labels[0]
        self.identity = totalsegmentator_identity(task, self.inner.identity, sha256=sha256)
        self.name = self.inner.name
        self.liver_labels = self.inner.liver_labels
        self.lesion_labels = self.inner.lesion_labels
        self.label_roles = self.inner.label_roles
        self.reorient, self.mirroring = self.inner.reorient, self.inner.mirroring

    @property
    def checksum(self) -> str:
        return self.identity["checksum"]

    def settings(self) -> dict[str, Any]:
        return dict(self.identity["settings"])

    def n_parameters(self) -> int:
        return self.inner.n_parameters()

    def to(self, device: Any) -> TotalSegmentatorModel:
        self.inner.to(device)
        if self.crop_model is not None:
            self.crop_model.to(device)
        return self

    def __repr__(self) -> str:
        return f"TotalSegmentatorModel({self.task!r}, steps={self.steps}, nnunet={self.inner!r})"

    def preprocess(self, volume: np.ndarray, affine: np.ndarray, *, where: str = "image"):
        """Steps 1-3 and nnU-Net's preprocessing; returns ``(nnU-Net input and context, ctx)``."""
        from metevo.segmentation._core import canonical_transform
        from metevo.segmentation._nnunet import _bbox

        volume = np.asarray(volume)
        affine = np.asarray(affine, dtype=float)
        ctx: dict[str, Any] = {"shape": volume.shape, "bbox": None}
        if self.crop_model is not None:
            organ = self.crop_model.predict(volume, affine, where=where) == self.crop_label
            if not organ.any():
                return None, {**ctx, "empty": True}
            spacing = np.linalg.norm(affine[:3, :3], axis=0)
            addon = (CROP_ADDON_MM / spacing).astype(int)
            bbox = [
                (max(0, lo - a), min(n, hi + a))
                for (lo, hi), a, n in zip(_bbox(organ), addon, volume.shape, strict=True)
            ]
            volume = volume[tuple(slice(lo, hi) for lo, hi in bbox)]
            affine = affine.copy()
            affine[:3, 3] += affine[:3, :3] @ np.array([lo for lo, _ in bbox], dtype=float)
            ctx["bbox"] = bbox
        perm, flips, spacing_ras = canonical_transform(affine, "RAS")
        canon = volume.transpose(perm)[
            tuple(slice(None, None, -1) if f else slice(None) for f in flips)
        ]
        ctx.update(perm=perm, flips=flips, canonical_shape=canon.shape)
        target = self.steps["resample"]
        if target is not None and not np.array_equal(np.array(spacing_ras), np.array(target)):
            zoom = np.array(spacing_ras) / np.array(target)
            canon = _zoom(canon.astype(np.float64), zoom, order=1).astype(np.int32)
            spacing_ras = tuple(s / z for s, z in zip(spacing_ras, zoom, strict=True))
        ras_affine = np.diag([-spacing_ras[0], -spacing_ras[1], spacing_ras[2], 1.0])
        return self.inner.preprocess(canon, ras_affine, where=where), ctx

    def predict(
        self,
        volume: np.ndarray,
        affine: np.ndarray,
        *,
        batch_size: int = 4,
        precision: str = "auto",
        where: str = "image",
        prepared: Any = None,
    ) -> np.ndarray:
        """Label map (uint8, the task's label values) on the input grid of ``volume``."""
        inner, ctx = (
            prepared if prepared is not None else self.preprocess(volume, affine, where=where)
        )
        if ctx.get("empty"):
            return np.zeros(ctx["shape"], np.uint8)
        logits = self.inner.logits(inner[0], batch_size=batch_size, precision=precision)
        labels = self.inner.labels_from_logits(logits, inner[1])
        if labels.shape != ctx["canonical_shape"]:
            zoom = np.array(ctx["canonical_shape"]) / np.array(labels.shape)
            labels = _zoom(labels, zoom, order=0)
        labels = labels[tuple(slice(None, None, -1) if f else slice(None) for f in ctx["flips"])]
        labels = labels.transpose(np.argsort(ctx["perm"]))
        if ctx["bbox"] is None:
            return np.ascontiguousarray(labels, dtype=np.uint8)
        full = np.zeros(ctx["shape"], np.uint8)
        full[tuple(slice(lo, hi) for lo, hi in ctx["bbox"])] = labels
        return full
