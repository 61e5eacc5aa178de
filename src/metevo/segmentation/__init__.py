"""Automatic liver and lesion segmentation with MONAI (optional extra ``metevo[segmentation]``).

Segmentation is the expensive step: :func:`segment` runs once over a manifest of CTs and writes
masks that the rest of metevo reads like any precomputed segmentation; :func:`evaluate` compares
them with reference masks; :func:`train` fits a model described by a :class:`ModelCard`.
``load_model("demo")`` is a small demo model trained on the synthetic cohort (not a clinical
model: bring your own weights for real data).

Examples
--------
>>> from metevo.segmentation import load_model, segment, evaluate   # doctest: +SKIP
>>> new_manifest = segment("manifest.csv", "demo", "masks_out")     # doctest: +SKIP
>>> table = evaluate("masks_out/manifest.csv", "manifest.csv")       # doctest: +SKIP
"""

from metevo.segmentation._card import ARCHITECTURES, ModelCard
from metevo.segmentation._core import predict_labels
from metevo.segmentation._evaluate import evaluate, evaluation_summary
from metevo.segmentation._model import SegmentationModel, build_network, load_model
from metevo.segmentation._segment import read_ct, segment
from metevo.segmentation._train import train

__all__ = [
    "ARCHITECTURES",
    "ModelCard",
    "SegmentationModel",
    "build_network",
    "evaluate",
    "evaluation_summary",
    "load_model",
    "predict_labels",
    "read_ct",
    "segment",
    "train",
]
