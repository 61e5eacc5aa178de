"""Segmentation models: a MONAI network built from a model card plus ``state_dict`` weights.

Needs torch and MONAI only. Weights are loaded with ``torch.load(weights_only=True)``: a file
holding pickled Python objects (a whole model, a training checkpoint with optimizer objects...)
is refused, because unpickling can run arbitrary code.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from metevo.segmentation._backends import card_checksum
from metevo.segmentation._card import DEMO_CARD, ModelCard, file_sha256
from metevo.segmentation._weights import check_state_dict, load_state_dict

if TYPE_CHECKING:
    import torch

__all__ = ["DEMO_CARD", "SegmentationModel", "build_network", "load_model", "load_state_dict"]



def build_network(card: ModelCard) -> torch.nn.Module:
    """Instantiate the card's MONAI network (random weights)."""
    from monai.networks import nets

    cls = getattr(nets, card.architecture)
    try:
        return cls(
            spatial_dims=3,
            in_channels=card.in_channels,
            out_channels=card.out_channels,
            **card.arguments,
        )
    except TypeError as exc:
        raise ValueError(
            f"model card {card.name!r}: {card.architecture} does not accept the arguments "
            f"{sorted(card.arguments)}: {exc}. Fix 'arguments' (see monai.networks.nets."
            f"{card.architecture})."
        ) from exc


def _first_conv_in_channels(state: dict[str, torch.Tensor]) -> int | None:
    for value in state.values():
        if value.ndim == 5:
            return int(value.shape[1])
    return None


class SegmentationModel:
    """A model card and its network, ready for inference.

    Parameters
    ----------
    card : ModelCard
        What the network is and how to feed it.
    network : torch.nn.Module
        The network; when it comes from :func:`load_model` its weights match the card.
    weights_sha256 : str, optional
        Checksum of the weights (part of the provenance of every mask).

    Examples
    --------
    >>> from metevo.segmentation import load_model
    >>> model = load_model("demo")
    >>> model.card.spacing_mm
    (3.0, 3.0, 3.0)
    """

    def __init__(
        self, card: ModelCard, network: torch.nn.Module, *, weights_sha256: str | None = None
    ) -> None:
        self.card = card
        self.network = network
        self.weights_sha256 = weights_sha256

    @property
    def checksum(self) -> str:
        """SHA-256 over the weights and the card's preprocessing settings."""
        if self.weights_sha256 is not None:
            return card_checksum(self.weights_sha256, self.card.preprocessing())
        digest = hashlib.sha256()
        for key, value in sorted(self.network.state_dict().items()):
            digest.update(key.encode())
            digest.update(value.detach().cpu().contiguous().numpy().tobytes())
        digest.update(json.dumps(self.card.preprocessing(), sort_keys=True).encode())
        return digest.hexdigest()

    def to(self, device: Any) -> SegmentationModel:
        """Move the network to ``device``; returns self."""
        self.network = self.network.to(device)
        return self

    backend = "card"

    @property
    def name(self) -> str:
        return self.card.name

    @property
    def liver_labels(self) -> tuple[int, ...]:
        return (self.card.labels["liver"],)

    @property
    def lesion_labels(self) -> tuple[int, ...]:
        return (self.card.labels["lesion"],)

    def settings(self) -> dict[str, Any]:
        """Settings that determine the output, for provenance."""
        return self.card.preprocessing()

    def n_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.network.parameters())

    def __repr__(self) -> str:
        c = self.card
        return (
            f"SegmentationModel(name={c.name!r}, architecture={c.architecture}, "
            f"parameters={self.n_parameters():,}, spacing_mm={list(c.spacing_mm)}, "
            f"patch_size={list(c.patch_size)}, labels={c.labels})"
        )


def load_model(
    model: str | Path | Any,
    *,
    configuration: str | None = None,
    folds: list[int | str] | None = None,
    mirroring: bool | None = None,
    liver: list[str] | None = None,
    lesion: list[str] | None = None,
) -> Any:
    """Load a segmentation model from a ``--model`` specification.

    * ``"demo"`` or the path of a metevo model card (``.json``/``.yaml``): the weights file
      named by the card is read with ``torch.load(weights_only=True)``, its SHA-256 is checked
      against ``weights_sha256`` when the card has one, and the tensors must match the network
      the card describes. Returns a :class:`SegmentationModel`.
    * ``"nnunet:PATH"``: a trained nnU-Net v2 model folder (``configuration``, ``folds`` and
      ``mirroring`` as nnU-Net's ``-c``, ``-f`` and ``--disable_tta``); returns an
      :class:`~metevo.segmentation._nnunet.NnUNetModel`.
    * ``"totalsegmentator:TASK"``: the task's nnU-Net model in TotalSegmentator's local weights
      folder (``TOTALSEG_HOME_DIR`` or ``~/.totalsegmentator``), reoriented to RAS as
      TotalSegmentator does; nothing is downloaded.
    * ``"bundle:PATH"``: a MONAI bundle (``configs/inference.json``, ``configs/metadata.json``,
      ``models/model.pt``) built from MONAI's classes without running the bundle's code.

    ``liver`` / ``lesion`` name the model's labels read as liver and lesion when its label
    names are not recognised (``liver``; ``tumor``, ``liver_tumor``, ``lesion``...).
    """
    if isinstance(model, SegmentationModel) or hasattr(model, "predict"):
        return model
    from metevo.segmentation._backends import check_options, parse_model_spec

    kind, value = parse_model_spec(str(model))
    check_options(
        kind, configuration=configuration, folds=folds, mirroring=mirroring, liver=liver,
        lesion=lesion,
    )
    if kind in ("nnunet", "totalsegmentator"):
        from metevo.segmentation._nnunet import NnUNetModel

        if kind == "nnunet":
            return NnUNetModel(
                value, configuration=configuration, folds=folds,
                mirroring=True if mirroring is None else mirroring, liver=liver, lesion=lesion,
            )
        from metevo.segmentation._totalseg import TotalSegmentatorModel

        return TotalSegmentatorModel(
            value, folds=folds, mirroring=bool(mirroring), liver=liver, lesion=lesion
        )
    if kind == "bundle":
        from metevo.segmentation._bundle import BundleModel

        return BundleModel(value, liver=liver, lesion=lesion)
    from metevo.segmentation._backends import card_path

    path = card_path(model)
    card = ModelCard.read(path)
    if not card.weights:
        raise ValueError(f"model card {path}: 'weights' is empty; name the state_dict file.")
    weights = path.parent / card.weights
    sha = file_sha256(weights) if weights.is_file() else None
    if sha is not None and card.weights_sha256 and sha != card.weights_sha256:
        raise ValueError(
            f"model card {path}: weights file {weights.name} has SHA-256 {sha[:12]}..., the card "
            f"expects {card.weights_sha256[:12]}...; the card and the weights disagree (retrain, "
            "or update 'weights_sha256' if the weights were replaced on purpose)."
        )
    state = load_state_dict(weights)
    network = build_network(card)
    n_in = _first_conv_in_channels(state)
    if n_in is not None and n_in != card.in_channels:
        raise ValueError(
            f"model card {path}: the weights expect {n_in} input channels, the card says "
            f"in_channels={card.in_channels}; the card and the weights disagree."
        )
    check_state_dict(network, state, where=f"model card {path}")
    network.eval()
    return SegmentationModel(card, network, weights_sha256=sha)
