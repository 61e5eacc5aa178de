"""MONAI bundles (``bundle:PATH``): ``configs/inference.json`` + ``models/model.pt``.

metevo reads the bundle's ``network_def``, ``preprocessing``, ``inferer`` and ``postprocessing``
as plain JSON and builds them from MONAI's own classes, so the masks are those of the bundle's
inference. It does not run the bundle's Python expressions: a value starting with ``$`` (code) or
``@`` (a reference) in those four sections is refused with its location, and only MONAI
transforms known to be pure image operations are built (``SaveImaged`` is skipped: metevo writes
the masks). The CT is read by metevo (NIfTI, NRRD, MHA, DICOM series) and handed to the
preprocessing as ``LoadImaged`` + ``EnsureChannelFirstd`` would (float32, channel first, RAS
affine in the metadata). Weights are read with ``torch.load(weights_only=True)``.

The label names come from ``configs/metadata.json``
(``network_data_format.outputs.pred.channel_def``).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["BundleModel", "bundle_identity", "read_bundle"]

#: Transforms metevo builds from a bundle's preprocessing / postprocessing.
PREPROCESSING = (
    "Orientationd",
    "Spacingd",
    "ScaleIntensityRanged",
    "ScaleIntensityd",
    "NormalizeIntensityd",
    "CropForegroundd",
    "EnsureTyped",
    "CastToTyped",
    "Spacing",
)
#: ``LoadImaged`` and ``EnsureChannelFirstd`` are what metevo's reader does itself.
READING = ("LoadImaged", "EnsureChannelFirstd", "LoadImage", "EnsureChannelFirst")
POSTPROCESSING = ("Activationsd", "Invertd", "AsDiscreted", "KeepLargestConnectedComponentd")
SKIPPED = ("SaveImaged", "SaveImage", "CopyItemsd")
INFERERS = ("SlidingWindowInferer", "SimpleInferer")


def _literal(value: Any, where: str) -> Any:
    if isinstance(value, str) and value.startswith(("$", "@", "%")):
        raise ValueError(
            f"{where}: {value!r} is a Python expression or reference; metevo does not run bundle "
            "code. Replace it by its value in configs/inference.json."
        )
    if isinstance(value, dict):
        return {k: _literal(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_literal(v, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def _target(spec: dict[str, Any], where: str) -> tuple[str, dict[str, Any]]:
    if not isinstance(spec, dict) or "_target_" not in spec:
        raise ValueError(f"{where}: expected an object with '_target_', found {spec!r}.")
    name = str(spec["_target_"]).rsplit(".", 1)[-1]
    kwargs = {k: _literal(v, f"{where}.{k}") for k, v in spec.items() if not k.startswith("_")}
    if "_disabled_" in spec and spec["_disabled_"] not in (False, "false"):
        kwargs["_disabled_"] = True
    return name, kwargs


def _transforms(section: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(section, dict) and "transforms" in section:
        section = section["transforms"]
    if not isinstance(section, list):
        raise ValueError(f"{where}: expected a Compose of transforms, found {section!r}.")
    return section


def _section(
    config: dict[str, Any], key: str, allowed: tuple, skipped: tuple, where: str
) -> list[tuple[str, dict[str, Any]]]:
    """``[(transform name, literal kwargs)]`` of a Compose section; ``skipped`` ones dropped."""
    out = []
    for i, spec in enumerate(_transforms(config[key], f"{where}: {key}")):
        if str(spec.get("_target_", "")).rsplit(".", 1)[-1] in skipped:
            continue
        # Invertd's "transform" names the preprocessing: metevo passes its own Compose
        spec = {k: v for k, v in spec.items() if k != "transform"}
        name, kwargs = _target(spec, f"{where}: {key}[{i}]")
        if kwargs.pop("_disabled_", False):
            continue
        if name not in allowed:
            raise ValueError(
                f"{where}: {key} transform {name!r} is not one metevo builds ({sorted(allowed)})."
            )
        out.append((name, kwargs))
    return out


def read_bundle(folder: str | Path) -> dict[str, Any]:
    """Validate a bundle folder; returns its parsed sections (literal values only)."""
    folder = Path(folder).expanduser()
    where = f"MONAI bundle {folder}"
    config_path = folder / "configs" / "inference.json"
    weights = folder / "models" / "model.pt"
    for path in (config_path, weights):
        if not path.is_file():
            raise FileNotFoundError(f"{where}: {path.relative_to(folder)} is missing.")
    config = json.loads(config_path.read_text(encoding="utf-8"))
    meta_path = folder / "configs" / "metadata.json"
    metadata = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else {}
    for key in ("network_def", "preprocessing", "inferer", "postprocessing"):
        if key not in config:
            raise ValueError(f"{where}: configs/inference.json has no {key!r}.")
    net_name, net_kwargs = _target(config["network_def"], f"{where}: network_def")
    pre = _section(config, "preprocessing", PREPROCESSING, READING, where)
    inf_name, inf_kwargs = _target(config["inferer"], f"{where}: inferer")
    if inf_name not in INFERERS:
        raise ValueError(f"{where}: inferer {inf_name!r} is not one of {list(INFERERS)}.")
    post = _section(config, "postprocessing", POSTPROCESSING, SKIPPED, where)
    channels = (
        metadata.get("network_data_format", {}).get("outputs", {}).get("pred", {}).get("channel_def")
    )
    if not channels:
        raise ValueError(
            f"{where}: configs/metadata.json names no output channels "
            "(network_data_format.outputs.pred.channel_def); metevo needs them to find liver "
            "and lesion."
        )
    return {
        "folder": folder,
        "where": where,
        "weights": weights,
        "network": (net_name, net_kwargs),
        "preprocessing": pre,
        "inferer": (inf_name, inf_kwargs),
        "postprocessing": post,
        "labels": {str(name): int(value) for value, name in channels.items()},
    }


def bundle_identity(
    folder: str | Path,
    *,
    liver: list[str] | None = None,
    lesion: list[str] | None = None,
    sha256: Any = None,
) -> dict[str, Any]:
    """Name, checksum, settings and label roles of a bundle (no torch)."""
    from metevo.segmentation._card import file_sha256
    from metevo.segmentation._nnunet_plans import label_roles

    info = read_bundle(folder)
    liver_values, lesion_values, roles = label_roles(
        info["labels"], liver=liver, lesion=lesion, where=info["where"]
    )
    settings = {
        "backend": "bundle",
        "network": list(info["network"]),
        "preprocessing": [list(t) for t in info["preprocessing"]],
        "inferer": list(info["inferer"]),
        "postprocessing": [list(t) for t in info["postprocessing"]],
        "labels": info["labels"],
        "liver_labels": list(liver_values),
        "lesion_labels": list(lesion_values),
    }
    digest = hashlib.sha256((sha256 or file_sha256)(info["weights"]).encode())
    digest.update(json.dumps(settings, sort_keys=True).encode())
    return {
        "info": info,
        "name": f"bundle:{info['folder'].name}",
        "checksum": digest.hexdigest(),
        "settings": settings,
        "liver_labels": liver_values,
        "lesion_labels": lesion_values,
        "roles": roles,
    }


class BundleModel:
    """A MONAI bundle run by metevo (``load_model("bundle:PATH")``)."""

    backend = "bundle"

    def __init__(
        self,
        folder: str | Path,
        *,
        liver: list[str] | None = None,
        lesion: list[str] | None = None,
    ) -> None:
        import monai.transforms as mt
        import torch
        from monai import inferers
        from monai.networks import nets

        from metevo.segmentation._weights import check_state_dict, load_state_dict

        self.identity = bundle_identity(folder, liver=liver, lesion=lesion)
        info = self.identity["info"]
        self.name = self.identity["name"]
        self.liver_labels = self.identity["liver_labels"]
        self.lesion_labels = self.identity["lesion_labels"]
        net_name, net_kwargs = info["network"]
        if not hasattr(nets, net_name):
            raise ValueError(f"{info['where']}: network {net_name!r} is not in monai.networks.nets.")
        self.network = getattr(nets, net_name)(**net_kwargs)
        check_state_dict(
            self.network, load_state_dict(info["weights"]), where=f"{info['where']}: model.pt"
        )
        self.network.eval()
        self.preprocessing = mt.Compose(
            [getattr(mt, name)(**kwargs) for name, kwargs in info["preprocessing"]]
        )
        inf_name, inf_kwargs = info["inferer"]
        self.inferer = getattr(inferers, inf_name)(**inf_kwargs)
        post = []
        for name, kwargs in info["postprocessing"]:
            if name == "Invertd":
                kwargs = {**kwargs, "transform": self.preprocessing}
            post.append(getattr(mt, name)(**kwargs))
        self.postprocessing = mt.Compose(post)
        self.device = torch.device("cpu")

    @property
    def checksum(self) -> str:
        return self.identity["checksum"]

    def settings(self) -> dict[str, Any]:
        return dict(self.identity["settings"])

    def to(self, device: Any) -> BundleModel:
        import torch

        self.device = torch.device(device)
        self.network = self.network.to(self.device)
        return self

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
        """Label map (uint8, the bundle's channel values) on the input grid of ``volume``."""
        import torch
        from monai.data import MetaTensor

        from metevo.segmentation._core import uses_bf16

        ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ np.asarray(affine, dtype=float)
        image = MetaTensor(
            torch.from_numpy(np.ascontiguousarray(volume, dtype=np.float32))[None],
            affine=torch.from_numpy(ras),
            meta={"original_affine": ras, "space": "RAS", "filename_or_obj": where},
        )
        data = self.preprocessing({"image": image})
        x = data["image"].to(self.device)[None]
        use_bf16 = uses_bf16(precision, self.device)
        with torch.inference_mode():
            if hasattr(self.inferer, "sw_batch_size"):
                self.inferer.sw_batch_size = int(batch_size)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=use_bf16):
                pred = self.inferer(x, self.network)
            data["pred"] = pred[0].float().cpu()
            data["image"] = data["image"].cpu()
            data = self.postprocessing(data)
        out = torch.as_tensor(data["pred"])
        if out.ndim == 4:
            out = out.argmax(0) if out.shape[0] > 1 else out[0]
        if tuple(out.shape) != tuple(np.shape(volume)):
            raise ValueError(
                f"{where}: the bundle's output has shape {tuple(out.shape)}, the CT "
                f"{tuple(np.shape(volume))}; its postprocessing must invert the preprocessing "
                "(Invertd)."
            )
        return np.ascontiguousarray(out.round().to(torch.uint8).numpy())
