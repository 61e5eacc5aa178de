"""Weights files: a plain ``state_dict`` read safely, and checked against a network.

Needs torch only. ``torch.load(weights_only=True)``: a file holding pickled Python objects (a
whole model, a training checkpoint with optimizer objects...) is refused, because unpickling can
run arbitrary code.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

__all__ = ["check_state_dict", "load_state_dict"]


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a plain ``state_dict`` safely (``weights_only=True``); refuse pickled objects."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} does not exist.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, AttributeError, TypeError) as exc:
        raise ValueError(
            f"weights file {path} is not a plain state_dict: it holds pickled Python objects, "
            "which metevo refuses to load (torch.load(weights_only=True) failed: "
            f"{str(exc).splitlines()[0]}). Save only the tensors: "
            "torch.save(model.state_dict(), path)."
        ) from exc
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        hint = ""
        if isinstance(state, dict) and "state_dict" in state:
            hint = " It looks like a training checkpoint: save checkpoint['state_dict'] alone."
        raise ValueError(
            f"weights file {path}: expected a state_dict (mapping of parameter names to tensors), "
            f"found {type(state).__name__}.{hint}"
        )
    return state


def check_state_dict(network: torch.nn.Module, state: dict[str, Any], *, where: str) -> None:
    """Load ``state`` into ``network``; a mismatch names the missing, extra and misshapen keys."""
    own = network.state_dict()
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    shapes = [
        f"{k}: weights {tuple(state[k].shape)} vs card {tuple(own[k].shape)}"
        for k in sorted(set(own) & set(state))
        if tuple(own[k].shape) != tuple(state[k].shape)
    ]
    if missing or extra or shapes:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} keys (e.g. {missing[:3]})")
        if extra:
            parts.append(f"unexpected {len(extra)} keys (e.g. {extra[:3]})")
        if shapes:
            parts.append(f"{len(shapes)} shape mismatches (e.g. {shapes[:2]})")
        raise ValueError(
            f"{where}: the weights do not fit the network the card describes: "
            + "; ".join(parts)
            + ". The card's architecture/arguments/labels and the weights disagree."
        )
    network.load_state_dict(state)
