"""The public ``predict_labels``: imports torch (via ``_core``) only when called."""

from __future__ import annotations

from typing import Any

__all__ = ["predict_labels"]


def predict_labels(network: Any, volume: Any, affine: Any, card: Any, **options: Any) -> Any:
    """Segment one CT volume with a MONAI network and its model card; uint8 labels on its grid.

    See :func:`metevo.segmentation._core.predict_labels` for the parameters (``device``,
    ``sw_batch_size``, ``overlap``, ``precision``, ``postprocessing``...).
    """
    from metevo.segmentation._core import predict_labels as run

    return run(network, volume, affine, card, **options)
