"""Reading a trained nnU-Net v2 model folder without nnU-Net: plans, labels, checkpoints, network.

A trained model folder (``nnUNet_results/DatasetXXX_Name/Trainer__Plans__Configuration``) holds
``dataset.json``, ``plans.json`` and ``fold_<f>/checkpoint_final.pth``. This module reads them
with the standard library, numpy and torch only:

* ``plans.json``: the configuration (inheritance resolved as nnU-Net's ``PlansManager`` does),
  target spacing, patch size, normalisation schemes and intensity properties, transpose, the
  resampling functions and the network (a ``dynamic_network_architectures`` class);
* checkpoints: read with ``torch.load(weights_only=True)`` and a short allow-list of numpy scalar
  types (nnU-Net stores its training log as numpy floats); nothing else is unpickled, so a
  checkpoint cannot run code when loaded;
* the label map: ``dataset.json`` ``labels`` names mapped to metevo's ``liver`` and ``lesion``.

Only the network class needs ``dynamic-network-architectures`` (extra ``metevo[nnunet]``).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import pickle
import re
from pathlib import Path
from typing import Any

from metevo.exceptions import MissingDependencyError

__all__ = [
    "LIVER_NAMES",
    "LESION_NAMES",
    "NnUNetFolder",
    "label_roles",
    "load_nnunet_checkpoint",
]

#: ``dataset.json`` label names read as liver / as lesion (lower case, spaces -> ``_``).
LIVER_NAMES = ("liver",)
LESION_NAMES = (
    "tumor",
    "tumour",
    "liver_tumor",
    "liver_tumour",
    "lesion",
    "lesions",
    "liver_lesion",
    "liver_lesions",
    "metastasis",
    "metastases",
    "liver_metastasis",
    "liver_metastases",
)

#: Resampling functions of plans.json that metevo reproduces.
_RESAMPLING = ("resample_data_or_seg_to_shape",)
#: Normalisation schemes of plans.json that metevo reproduces.
NORMALIZATIONS = (
    "CTNormalization",
    "ZScoreNormalization",
    "NoNormalization",
    "RescaleTo01Normalization",
)
#: Image readers: SimpleITK's and nibabel's index order are the same; ``WithReorient`` goes to RAS.
READERS = ("SimpleITKIO", "NibabelIO", "NibabelIOWithReorient")
#: Modules a plans.json may name for the network and its building blocks.
_IMPORTABLE = ("dynamic_network_architectures.", "torch.nn.")


def _norm(name: str) -> str:
    return re.sub(r"[\s-]+", "_", str(name).strip().lower())


def label_roles(
    labels: dict[str, Any],
    *,
    liver: list[str] | None = None,
    lesion: list[str] | None = None,
    where: str,
) -> tuple[tuple[int, ...], tuple[int, ...], dict[str, str]]:
    """Map a ``{name: value}`` label table to metevo's liver and lesion values.

    ``liver`` / ``lesion`` name the labels explicitly (names or integer values); otherwise the
    names of :data:`LIVER_NAMES` / :data:`LESION_NAMES` are recognised. Returns
    ``(liver_values, lesion_values, roles)`` with ``roles`` ``{name: "liver"|"lesion"|"ignored"}``.
    """
    table: dict[str, int] = {}
    for name, value in labels.items():
        if isinstance(value, (list, tuple)):
            raise ValueError(
                f"{where}: label {name!r} is a region ({value}); metevo reads label maps, not "
                "nnU-Net region-based models."
            )
        table[str(name)] = int(value)

    def pick(given: list[str] | None, known: tuple[str, ...], role: str) -> tuple[int, ...]:
        if given is None:
            return tuple(sorted(v for n, v in table.items() if _norm(n) in known and v != 0))
        out = []
        for item in given:
            if str(item).lstrip("-").isdigit():
                value = int(item)
                if value not in table.values():
                    raise ValueError(
                        f"{where}: {role} label value {value} is not in the model's labels {table}."
                    )
                out.append(value)
            elif str(item) in table:
                out.append(table[str(item)])
            else:
                raise ValueError(
                    f"{where}: {role} label {item!r} is not one of the model's labels "
                    f"{sorted(table)}; give names or values from that list."
                )
        return tuple(sorted(set(out)))

    liver_values = pick(liver, LIVER_NAMES, "liver")
    lesion_values = pick(lesion, LESION_NAMES, "lesion")
    if not liver_values and not lesion_values:
        raise ValueError(
            f"{where}: none of the model's labels {sorted(table)} is recognised as liver "
            f"({list(LIVER_NAMES)}) or lesion ({list(LESION_NAMES)}); state them with "
            "liver=[...] / lesion=[...] (CLI: --liver-label / --lesion-label)."
        )
    both = set(liver_values) & set(lesion_values)
    if both:
        raise ValueError(f"{where}: label values {sorted(both)} are named both liver and lesion.")
    roles = {
        n: "liver" if v in liver_values else "lesion" if v in lesion_values else "ignored"
        for n, v in table.items()
        if v != 0
    }
    return liver_values, lesion_values, roles


def load_nnunet_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read an nnU-Net checkpoint with ``weights_only=True`` (numpy scalars allow-listed).

    Returns the checkpoint dict; ``network_weights`` is a mapping of names to tensors. A
    checkpoint holding any other Python object (a class instance, a function) is refused.
    """
    import numpy as np
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"nnU-Net checkpoint {path} does not exist.")
    multiarray = getattr(np, "_core", np.core).multiarray
    safe: list[Any] = [multiarray.scalar, multiarray._reconstruct, np.ndarray, np.dtype]
    safe += [type(np.dtype(t)) for t in (np.float64, np.float32, np.float16, np.int64, np.int32)]
    safe += [type(np.dtype(t)) for t in (np.bool_, np.uint8, np.int8, np.int16)]
    try:
        with torch.serialization.safe_globals(safe):
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, AttributeError, TypeError) as exc:
        raise ValueError(
            f"nnU-Net checkpoint {path} holds Python objects other than tensors, numbers, "
            "strings and numpy scalars, which metevo refuses to unpickle (torch.load("
            f"weights_only=True) failed: {str(exc).splitlines()[0]}). Re-save it with plain "
            "types, e.g. {'network_weights': state_dict, 'trainer_name': ..., 'init_args': "
            "{'configuration': ...}}."
        ) from exc
    weights = checkpoint.get("network_weights") if isinstance(checkpoint, dict) else None
    if not isinstance(weights, dict) or not all(
        isinstance(v, torch.Tensor) for v in weights.values()
    ):
        raise ValueError(
            f"nnU-Net checkpoint {path}: expected a dict with 'network_weights' (a state_dict), "
            f"found {type(checkpoint).__name__} with keys "
            f"{sorted(checkpoint)[:8] if isinstance(checkpoint, dict) else '-'}."
        )
    return checkpoint


def _locate(name: str, where: str) -> Any:
    if not any(name.startswith(prefix) for prefix in _IMPORTABLE):
        raise ValueError(
            f"{where}: plans.json names {name!r}; metevo builds networks only from "
            f"{list(_IMPORTABLE)} modules."
        )
    module, _, attribute = name.rpartition(".")
    try:
        return getattr(importlib.import_module(module), attribute)
    except ImportError as exc:
        if name.startswith("dynamic_network_architectures"):
            raise MissingDependencyError(
                f"{where}: the network {name} needs dynamic-network-architectures: "
                "pip install 'metevo[nnunet]'."
            ) from exc
        raise ValueError(f"{where}: cannot import {name}: {exc}") from exc
    except AttributeError as exc:
        raise ValueError(f"{where}: {module} has no {attribute!r}.") from exc


@dataclasses.dataclass
class NnUNetFolder:
    """A trained nnU-Net v2 model folder, read (no weights loaded yet).

    Attributes
    ----------
    folder : Path
    configuration_name : str
    configuration : dict
        The plans' configuration with inheritance resolved.
    plans, dataset : dict
        ``plans.json`` and ``dataset.json``.
    folds : list of str
        Fold folder suffixes used (``"0"``, ``"all"``).
    checkpoints : list of Path
    """

    folder: Path
    configuration_name: str
    configuration: dict[str, Any]
    plans: dict[str, Any]
    dataset: dict[str, Any]
    folds: list[str]
    checkpoints: list[Path]

    @classmethod
    def read(
        cls,
        folder: str | Path,
        *,
        configuration: str | None = None,
        folds: list[int | str] | None = None,
        checkpoint: str = "checkpoint_final.pth",
    ) -> NnUNetFolder:
        """Find dataset.json, plans.json and the fold checkpoints of a model folder.

        ``folder`` is either a trained model folder or a dataset's results folder holding
        ``<Trainer>__<Plans>__<configuration>`` folders (then ``configuration`` picks one).
        """
        folder = Path(folder).expanduser()
        where = f"nnU-Net model {folder}"
        if not folder.is_dir():
            raise FileNotFoundError(f"{where}: no such folder.")
        if not (folder / "plans.json").is_file():
            subs = sorted(p for p in folder.iterdir() if (p / "plans.json").is_file())
            if configuration is not None:
                subs = [p for p in subs if p.name.split("__")[-1] == configuration]
            if len(subs) != 1:
                raise FileNotFoundError(
                    f"{where}: expected dataset.json, plans.json and fold_*/{checkpoint} (a "
                    "trained model folder such as nnUNetTrainer__nnUNetPlans__3d_fullres); "
                    f"found model folders {[p.name for p in subs]}"
                    + (f" for configuration {configuration!r}" if configuration else "")
                    + ". Pass the trained model folder or --configuration."
                )
            folder = subs[0]
            where = f"nnU-Net model {folder}"
        for name in ("plans.json", "dataset.json"):
            if not (folder / name).is_file():
                raise FileNotFoundError(f"{where}: {name} is missing.")
        plans = json.loads((folder / "plans.json").read_text(encoding="utf-8"))
        dataset = json.loads((folder / "dataset.json").read_text(encoding="utf-8"))
        available = sorted(
            p.name[len("fold_") :] for p in folder.glob("fold_*") if (p / checkpoint).is_file()
        )
        if folds is None:
            chosen = available
        else:
            chosen = [str(f) for f in folds]
            missing = [f for f in chosen if f not in available]
            if missing:
                raise FileNotFoundError(
                    f"{where}: folds {missing} have no {checkpoint}; available folds {available}."
                )
        if not chosen:
            raise FileNotFoundError(
                f"{where}: no fold_*/{checkpoint}; train the model or name another checkpoint."
            )
        if configuration is None:
            configuration = folder.name.split("__")[-1]
        configs = plans.get("configurations", {})
        if configuration not in configs:
            raise ValueError(
                f"{where}: configuration {configuration!r} is not in plans.json (found "
                f"{sorted(configs)}); pass --configuration."
            )
        resolved = _resolve(configs, configuration, where)
        out = cls(
            folder=folder,
            configuration_name=configuration,
            configuration=resolved,
            plans=plans,
            dataset=dataset,
            folds=chosen,
            checkpoints=[folder / f"fold_{f}" / checkpoint for f in chosen],
        )
        out.check()
        return out

    @property
    def where(self) -> str:
        return f"nnU-Net model {self.folder}"

    def check(self) -> None:
        """Refuse what metevo does not reproduce exactly (with the reason)."""
        c = self.configuration
        if len(c["patch_size"]) != 3:
            raise ValueError(
                f"{self.where}: configuration {self.configuration_name!r} is 2-D "
                f"(patch {c['patch_size']}); metevo runs 3-D configurations (3d_fullres, "
                "3d_lowres)."
            )
        if c.get("previous_stage") or "cascade" in self.configuration_name:
            raise ValueError(
                f"{self.where}: cascade configurations need the low-resolution stage's "
                "segmentation as input; run 3d_fullres or 3d_lowres."
            )
        channels = self.dataset.get("channel_names", self.dataset.get("modality", {}))
        if len(channels) != 1:
            raise ValueError(
                f"{self.where}: the model takes {len(channels)} channels ({channels}); metevo "
                "feeds one CT."
            )
        for scheme in c["normalization_schemes"]:
            if scheme not in NORMALIZATIONS:
                raise ValueError(
                    f"{self.where}: normalisation {scheme!r} is not reproduced by metevo "
                    f"(supported: {list(NORMALIZATIONS)})."
                )
        for key in ("resampling_fn_data", "resampling_fn_probabilities"):
            if c[key] not in _RESAMPLING:
                raise ValueError(
                    f"{self.where}: {key} {c[key]!r} is not reproduced by metevo (supported: "
                    f"{list(_RESAMPLING)})."
                )
        if self.reader not in READERS:
            raise ValueError(
                f"{self.where}: image reader {self.reader!r} is not reproduced by metevo "
                f"(supported: {list(READERS)})."
            )

    @property
    def reader(self) -> str:
        return str(
            self.dataset.get("overwrite_image_reader_writer")
            or self.plans.get("image_reader_writer")
            or "SimpleITKIO"
        )

    @property
    def labels(self) -> dict[str, Any]:
        return dict(self.dataset["labels"])

    @property
    def intensity_properties(self) -> dict[str, float]:
        return dict(self.plans["foreground_intensity_properties_per_channel"]["0"])

    def build_network(self, n_classes: int) -> Any:
        """The configuration's network (random weights, deep supervision off)."""
        arch = self.configuration["architecture"]
        where = f"{self.where} ({self.configuration_name})"
        cls = _locate(arch["network_class_name"], where)
        kwargs = dict(arch["arch_kwargs"])
        for key in arch.get("_kw_requires_import", []):
            if kwargs.get(key) is not None:
                kwargs[key] = _locate(kwargs[key], where)
        try:
            return cls(input_channels=1, num_classes=n_classes, deep_supervision=False, **kwargs)
        except TypeError as exc:
            raise ValueError(
                f"{where}: {arch['network_class_name']} does not accept the plans' arguments: "
                f"{exc}."
            ) from exc

    def fingerprint(self) -> dict[str, Any]:
        """What determines the output (for provenance), besides the checkpoints' bytes."""
        c = self.configuration
        return {
            "backend": "nnunet",
            "configuration": self.configuration_name,
            "folds": list(self.folds),
            "spacing": list(c["spacing"]),
            "patch_size": list(c["patch_size"]),
            "normalization_schemes": list(c["normalization_schemes"]),
            "use_mask_for_norm": list(c["use_mask_for_norm"]),
            "transpose_forward": list(self.plans["transpose_forward"]),
            "intensity": self.intensity_properties,
            "resampling": [
                c["resampling_fn_data"],
                c["resampling_fn_data_kwargs"],
                c["resampling_fn_probabilities"],
                c["resampling_fn_probabilities_kwargs"],
            ],
            "reader": self.reader,
            "labels": self.labels,
        }


def _resolve(configs: dict[str, Any], name: str, where: str, seen: tuple = ()) -> dict[str, Any]:
    if name in seen:
        raise ValueError(f"{where}: plans.json configurations inherit in a circle: {seen}.")
    config = dict(configs[name])
    parent = config.pop("inherits_from", None)
    if parent is None:
        return config
    if parent not in configs:
        raise ValueError(f"{where}: configuration {name!r} inherits from missing {parent!r}.")
    base = _resolve(configs, parent, where, (*seen, name))
    base.update(config)
    return base


def nnunet_identity(
    info: NnUNetFolder,
    *,
    mirroring: bool,
    step_size: float,
    reorient: bool | None,
    liver: list[str] | None,
    lesion: list[str] | None,
    name: str | None,
    sha256: Any = None,
) -> dict[str, Any]:
    """``{"name", "checksum", "settings", "liver_labels", "lesion_labels", "roles", "reorient"}``.

    The checksum covers the checkpoints' bytes and every setting that changes the output.
    """
    import hashlib

    from metevo.segmentation._card import file_sha256

    liver_values, lesion_values, roles = label_roles(
        info.labels, liver=liver, lesion=lesion, where=info.where
    )
    reorient = info.reader == "NibabelIOWithReorient" if reorient is None else bool(reorient)
    settings = {
        **info.fingerprint(),
        "mirroring": bool(mirroring),
        "step_size": float(step_size),
        "reorient": reorient,
        "liver_labels": list(liver_values),
        "lesion_labels": list(lesion_values),
    }
    digest = hashlib.sha256()
    for path in info.checkpoints:
        digest.update((sha256 or file_sha256)(path).encode())
    digest.update(json.dumps(settings, sort_keys=True).encode())
    return {
        "name": name or f"nnunet:{info.folder.parent.name}/{info.folder.name}",
        "checksum": digest.hexdigest(),
        "settings": settings,
        "liver_labels": liver_values,
        "lesion_labels": lesion_values,
        "roles": roles,
        "reorient": reorient,
    }
