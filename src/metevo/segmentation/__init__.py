"""Automatic liver and lesion segmentation (optional extras ``metevo[segmentation]``, ``[nnunet]``).

Segmentation is the expensive step: :func:`segment` runs once over a manifest of CTs and writes
masks that the rest of metevo reads like any precomputed segmentation; :func:`evaluate` compares
them with reference masks; :func:`train` fits a model described by a :class:`ModelCard`.
:func:`load_model` runs ``"demo"`` (a small demo model trained on the synthetic cohort, not a
clinical model), metevo model cards, trained nnU-Net v2 folders (``"nnunet:PATH"``) and
TotalSegmentator tasks from its local weights (``"totalsegmentator:TASK"``).

Importing this package does not import torch: the names that need it (:func:`load_model`,
:func:`predict_labels`, :func:`train`, :class:`SegmentationModel`, :func:`build_network`) are
loaded on first use, so that checking what is up to date stays cheap.

Examples
--------
>>> from metevo.segmentation import load_model, segment, evaluate   # doctest: +SKIP
>>> new_manifest = segment("manifest.csv", "demo", "masks_out")     # doctest: +SKIP
>>> table = evaluate("masks_out/manifest.csv", "manifest.csv")       # doctest: +SKIP
"""

from metevo.segmentation._card import ARCHITECTURES, ModelCard
from metevo.segmentation._detection import detection_summary
from metevo.segmentation._evaluate import evaluate, evaluation_summary
from metevo.segmentation._segment import read_ct, segment

__all__ = [
    "ARCHITECTURES",
    "ModelCard",
    "SegmentationModel",
    "build_network",
    "detection_summary",
    "evaluate",
    "evaluation_summary",
    "load_model",
    "predict_labels",
    "read_ct",
    "segment",
    "train",
]

# names whose modules import torch: re-exported lazily (PEP 562)
_LAZY = {
    "SegmentationModel": "metevo.segmentation._model",
    "build_network": "metevo.segmentation._model",
    "load_model": "metevo.segmentation._model",
    "predict_labels": "metevo.segmentation._core",
    "train": "metevo.segmentation._train",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'metevo.segmentation' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
