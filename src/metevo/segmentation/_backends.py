"""``--model`` specifications: which back-end runs a model, and where its files are.

``demo`` or a model card path (metevo's own MONAI models), ``nnunet:PATH`` (a trained nnU-Net v2
model folder), ``totalsegmentator:TASK`` (a TotalSegmentator task from its local weights folder).
Resolving a specification reads no weights and imports nothing heavy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from metevo.segmentation._totalseg import (
    TOTALSEGMENTATOR_TASKS,
    totalsegmentator_folder,
    totalsegmentator_home,
)

__all__ = [
    "TOTALSEGMENTATOR_TASKS",
    "parse_model_spec",
    "totalsegmentator_folder",
    "totalsegmentator_home",
]


def parse_model_spec(model: str) -> tuple[str, str]:
    """Split ``"kind:value"``; returns ``("card", model)`` for ``demo`` and card paths."""
    kind, sep, value = str(model).partition(":")
    if sep and kind in ("nnunet", "totalsegmentator", "bundle"):
        if not value:
            raise ValueError(f"model {model!r}: nothing after '{kind}:'; give a path or task.")
        return kind, value
    return "card", str(model)


def check_options(kind: str, **options: object) -> None:
    """nnU-Net options given to a metevo card model are an error, not silently ignored."""
    given = sorted(k for k, v in options.items() if v is not None)
    if kind == "card" and given:
        raise ValueError(
            f"options {given} apply to nnunet:/totalsegmentator: models; a metevo model card "
            "fixes its own labels and has no folds or configurations."
        )
    nnunet_only = sorted(set(given) & {"configuration", "folds", "mirroring"})
    if kind == "bundle" and nnunet_only:
        raise ValueError(
            f"options {nnunet_only} apply to nnunet:/totalsegmentator: models, not to MONAI "
            "bundles."
        )


def card_path(model: str | Path) -> Path:
    """The model card file of ``"demo"``, a card path or a folder holding one card."""
    from metevo.segmentation._card import DEMO_CARD

    if str(model) == "demo":
        if not DEMO_CARD.is_file():
            raise FileNotFoundError(
                f"the demo model card {DEMO_CARD} is missing from this installation; reinstall "
                "metevo."
            )
        return DEMO_CARD
    path = Path(model)
    if path.is_dir():
        cards = sorted(path.glob("*.json"))
        if len(cards) != 1:
            raise FileNotFoundError(
                f"model folder {path}: expected exactly one model card (*.json), found "
                f"{[c.name for c in cards]}; pass the card's path."
            )
        path = cards[0]
    if not path.is_file():
        raise FileNotFoundError(
            f"model {str(model)!r}: no such card file; pass 'demo', the path of a model card "
            "(.json/.yaml) whose 'weights' names a state_dict file beside it, 'nnunet:PATH' or "
            "'totalsegmentator:TASK'."
        )
    return path


def card_checksum(weights_sha256: str, preprocessing: dict) -> str:
    """Checksum of a card model: its weights' SHA-256 and its preprocessing settings."""
    import hashlib
    import json

    digest = hashlib.sha256(weights_sha256.encode())
    digest.update(json.dumps(preprocessing, sort_keys=True).encode())
    return digest.hexdigest()


def describe_spec(
    model: str,
    *,
    configuration: str | None = None,
    folds: list[int | str] | None = None,
    mirroring: bool | None = None,
    liver: list[str] | None = None,
    lesion: list[str] | None = None,
    sha256: Any = None,
) -> dict:
    """``{"name", "checksum", "settings"}`` of a model specification, read without torch.

    ``sha256`` hashes files (default :func:`~metevo.segmentation._card.file_sha256`; segment()
    passes a :class:`~metevo.segmentation._card.HashCache`).

    Equal to what the loaded model reports (:func:`~metevo.segmentation.load_model`), so that
    what is up to date is known before anything heavy is imported.
    """
    from metevo.segmentation._card import ModelCard, file_sha256
    from metevo.segmentation._nnunet_plans import NnUNetFolder, nnunet_identity

    sha256 = sha256 or file_sha256
    kind, value = parse_model_spec(model)
    check_options(
        kind,
        configuration=configuration,
        folds=folds,
        mirroring=mirroring,
        liver=liver,
        lesion=lesion,
    )
    if kind == "card":
        path = card_path(value)
        card = ModelCard.read(path)
        weights = path.parent / (card.weights or "")
        if not card.weights or not weights.is_file():
            raise FileNotFoundError(f"model card {path}: weights file {weights} does not exist.")
        sha = sha256(weights)
        return {
            "name": card.name,
            "checksum": card_checksum(sha, card.preprocessing()),
            "settings": card.preprocessing(),
        }
    if kind in ("nnunet", "totalsegmentator"):
        ts = kind == "totalsegmentator"
        info = NnUNetFolder.read(
            totalsegmentator_folder(value) if ts else value,
            configuration=None if ts else configuration,
            folds=(folds or [0]) if ts else folds,
        )
        identity = nnunet_identity(
            info,
            mirroring=bool(mirroring) if ts else mirroring is not False,
            step_size=0.5,
            reorient=True if ts else None,
            liver=liver,
            lesion=lesion,
            name=f"totalsegmentator:{value}" if ts else None,
            sha256=sha256,
        )
        if ts:  # TotalSegmentator's own resampling and organ crop around nnU-Net
            from metevo.segmentation._totalseg import totalsegmentator_identity

            identity = totalsegmentator_identity(value, identity, sha256=sha256)
        return identity
    from metevo.segmentation._bundle import bundle_identity

    identity = bundle_identity(value, liver=liver, lesion=lesion, sha256=sha256)
    return {k: identity[k] for k in ("name", "checksum", "settings")}
