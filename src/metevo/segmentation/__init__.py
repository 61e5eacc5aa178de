"""Automatic liver and lesion segmentation (optional extras ``metevo[segmentation]``, ``[nnunet]``).

Segmentation is the expensive step: :func:`segment` runs once over a manifest of CTs and writes
masks that the rest of metevo reads like any precomputed segmentation; :func:`evaluate` compares
them with reference masks; :func:`train` fits a model described by a :class:`ModelCard`.
:func:`load_model` runs ``"demo"`` (a small demo model trained on the synthetic cohort, not a
clinical model), metevo model cards, trained nnU-Net v2 folders (``"nnunet:PATH"``) and
TotalSegmentator tasks from its local weights (``"totalsegmentator:TASK"``).

Importing this package does not import torch or MONAI (their modules import them when called),
so that checking what is up to date stays cheap.

Examples
--------
>>> from metevo.segmentation import load_model, segment, evaluate   # doctest: +SKIP
>>> new_manifest = segment("manifest.csv", "demo", "masks_out")     # doctest: +SKIP
>>> table = evaluate("masks_out/manifest.csv", "manifest.csv")       # doctest: +SKIP
"""

from metevo.segmentation._card import ARCHITECTURES, ModelCard
from metevo.segmentation._detection import detection_summary
from metevo.segmentation._evaluate import evaluate, evaluation_summary
from metevo.segmentation._model import SegmentationModel, build_network, load_model
from metevo.segmentation._predict import predict_labels
from metevo.segmentation._segment import read_ct, segment
from metevo.segmentation._train import train

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
