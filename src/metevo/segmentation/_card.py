"""Model cards: what a segmentation network is, how to feed it and how to read its output.

A model card is a small JSON (or YAML) file beside a ``state_dict`` weights file. It fixes
everything that must be identical between training and inference (orientation, spacing, HU
window, patch size, labels) so that a model is reproducible from its card alone.

This module needs only the standard library (and PyYAML for ``.yaml`` cards).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

__all__ = ["ARCHITECTURES", "HashCache", "ModelCard", "file_sha256"]

#: MONAI networks a card may name (``monai.networks.nets.<name>``).
ARCHITECTURES = ("SegResNet", "UNet", "DynUNet", "BasicUNet")

_AXCODES = set("LRAPSI")

#: The demo model's card, shipped with the package.
DEMO_CARD = Path(__file__).with_name("models") / "demo.json"


def file_sha256(path: str | Path, *, chunk_bytes: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes (read in chunks, memory bounded)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk_bytes), b""):
            digest.update(block)
    return digest.hexdigest()


class HashCache:
    """``file_sha256`` remembered by (path, size, modification time) in a JSON file.

    A file whose size and modification time are unchanged is not read again (as make and rsync
    decide); ``save()`` writes the cache atomically.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.data = {}
        self.dirty = False

    def __call__(self, file: str | Path) -> str:
        file = Path(file)
        stat = file.stat()
        key = str(file.resolve())
        found = self.data.get(key)
        if found and found[:2] == [stat.st_size, stat.st_mtime_ns]:
            return found[2]
        sha = file_sha256(file)
        self.data[key] = [stat.st_size, stat.st_mtime_ns, sha]
        self.dirty = True
        return sha

    def save(self) -> None:
        if self.dirty:
            tmp = self.path.with_name(f".{self.path.name}.tmp")
            tmp.write_text(json.dumps(self.data, indent=0) + "\n", encoding="utf-8")
            tmp.replace(self.path)
            self.dirty = False


@dataclasses.dataclass
class ModelCard:
    """Description of a segmentation model (architecture, preprocessing, labels, provenance).

    Parameters
    ----------
    name : str
        Short model name (``"demo"``).
    architecture : str
        A MONAI network class, one of :data:`ARCHITECTURES`.
    arguments : dict
        Keyword arguments of the network besides ``spatial_dims``, ``in_channels`` and
        ``out_channels`` (which come from ``in_channels`` and ``labels``).
    labels : dict[str, int]
        Output channel of each class; must hold ``background``, ``liver`` and ``lesion`` and be
        the channels ``0 .. n-1``.
    spacing_mm : tuple of 3 floats
        Model voxel spacing along the canonical axes (mm).
    window_hu : tuple of 2 floats
        HU window; intensities are clipped to it and scaled to [0, 1].
    patch_size : tuple of 3 ints
        Sliding-window (and training patch) size in voxels at ``spacing_mm``.
    orientation : str
        Canonical orientation: three letters of ``LRAPSI``, each naming the direction in which
        the index along that axis increases (``"RAS"``: first axis towards the patient's right,
        as nibabel's and MONAI's axis codes).
    in_channels : int
        Input channels (1 for CT).
    liver_dilation_mm : float
        A lesion component is kept only if it touches the liver dilated by this radius.
    min_lesion_ml, min_liver_ml : float
        Connected components smaller than this are removed.
    weights : str or None
        Weights file, relative to the card's folder.
    weights_sha256 : str or None
        Checksum of the weights file; loading fails when it differs.
    description : str
        Free text (intended use; "demo, not a clinical model").
    training : dict
        How the weights were obtained (command, seed, data generator version, time taken).
    """

    name: str
    architecture: str
    arguments: dict[str, Any]
    labels: dict[str, int]
    spacing_mm: tuple[float, float, float]
    window_hu: tuple[float, float]
    patch_size: tuple[int, int, int]
    orientation: str = "RAS"
    in_channels: int = 1
    liver_dilation_mm: float = 10.0
    min_lesion_ml: float = 0.1
    min_liver_ml: float = 10.0
    weights: str | None = None
    weights_sha256: str | None = None
    description: str = ""
    training: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        where = f"model card {self.name!r}"
        if self.architecture not in ARCHITECTURES:
            raise ValueError(
                f"{where}: architecture must be one of {ARCHITECTURES}, found "
                f"{self.architecture!r}; use one of those MONAI networks."
            )
        if not isinstance(self.arguments, dict):
            raise TypeError(
                f"{where}: 'arguments' must be a mapping, found {type(self.arguments).__name__}."
            )
        for key in ("spatial_dims", "in_channels", "out_channels"):
            if key in self.arguments:
                raise ValueError(
                    f"{where}: 'arguments' must not hold {key!r} (it comes from "
                    "'in_channels' / 'labels'); remove it."
                )
        labels = {str(k): int(v) for k, v in dict(self.labels).items()}
        missing = {"background", "liver", "lesion"} - set(labels)
        if missing:
            raise ValueError(
                f"{where}: 'labels' must name background, liver and lesion; missing "
                f"{sorted(missing)} in {labels}."
            )
        if sorted(labels.values()) != list(range(len(labels))):
            raise ValueError(
                f"{where}: 'labels' must be the output channels 0..{len(labels) - 1} once each, "
                f"found {labels}."
            )
        self.labels = labels
        self.spacing_mm = _floats(self.spacing_mm, 3, "spacing_mm", where, positive=True)
        self.window_hu = _floats(self.window_hu, 2, "window_hu", where)
        if not self.window_hu[0] < self.window_hu[1]:
            raise ValueError(
                f"{where}: 'window_hu' must be [low, high] with low < high, found {self.window_hu}."
            )
        patch = tuple(int(v) for v in self.patch_size)
        if len(patch) != 3 or min(patch) < 1:
            raise ValueError(
                f"{where}: 'patch_size' must be 3 positive integers, found {self.patch_size}."
            )
        self.patch_size = patch
        code = str(self.orientation).upper()
        axes = sorted({"L": 0, "R": 0, "P": 1, "A": 1, "S": 2, "I": 2}.get(c, -1) for c in code)
        if len(code) != 3 or not set(code) <= _AXCODES or axes != [0, 1, 2]:
            raise ValueError(
                f"{where}: 'orientation' must be three letters naming each axis once "
                f"(e.g. 'RAS' or 'LPS'), found {self.orientation!r}."
            )
        self.orientation = code
        if int(self.in_channels) != 1:
            raise ValueError(
                f"{where}: metevo feeds one CT channel, the card says in_channels="
                f"{self.in_channels}; train a single-channel model."
            )
        self.in_channels = 1
        for key in ("liver_dilation_mm", "min_lesion_ml", "min_liver_ml"):
            value = float(getattr(self, key))
            if value < 0:
                raise ValueError(f"{where}: {key!r} must be >= 0, found {value}.")
            setattr(self, key, value)

    @property
    def out_channels(self) -> int:
        """Number of output channels (classes, background included)."""
        return len(self.labels)

    def preprocessing(self) -> dict[str, Any]:
        """The settings that determine a model's output for a given image (for provenance)."""
        return {
            "architecture": self.architecture,
            "arguments": self.arguments,
            "labels": self.labels,
            "orientation": self.orientation,
            "spacing_mm": list(self.spacing_mm),
            "window_hu": list(self.window_hu),
            "patch_size": list(self.patch_size),
            "liver_dilation_mm": self.liver_dilation_mm,
            "min_lesion_ml": self.min_lesion_ml,
            "min_liver_ml": self.min_liver_ml,
        }

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form of the card."""
        out = dataclasses.asdict(self)
        for key in ("spacing_mm", "window_hu", "patch_size"):
            out[key] = list(out[key])
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "model card") -> ModelCard:
        """Build a card from a mapping, naming unknown or missing keys."""
        if not isinstance(data, dict):
            raise TypeError(f"{source}: expected a mapping, found {type(data).__name__}.")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"{source}: unknown keys {unknown}; expected some of {sorted(known)}. "
                "Fix the spelling or remove them."
            )
        required = {
            f.name
            for f in dataclasses.fields(cls)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        }
        missing = sorted(required - set(data))
        if missing:
            raise ValueError(f"{source}: missing required keys {missing}.")
        return cls(**data)

    @classmethod
    def read(cls, path: str | Path) -> ModelCard:
        """Read a card from ``.json`` or ``.yaml``/``.yml``."""
        path = Path(path)
        text = path.read_text(encoding="utf-8")
        if path.suffix.lower() in (".yaml", ".yml"):
            try:
                import yaml
            except ImportError as exc:  # pragma: no cover - depends on the environment
                from metevo.exceptions import MissingDependencyError

                raise MissingDependencyError(
                    f"reading the YAML model card {path} needs PyYAML: pip install pyyaml "
                    "(or convert the card to JSON)."
                ) from exc
            data = yaml.safe_load(text)
        else:
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"model card {path} is not valid JSON: {exc}") from exc
        return cls.from_dict(data, source=f"model card {path}")

    def write(self, path: str | Path) -> Path:
        """Write the card as JSON (atomically) and return its path."""
        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)
        return path


def _floats(values: Any, n: int, key: str, where: str, *, positive: bool = False) -> tuple:
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: {key!r} must be {n} numbers, found {values!r}.") from exc
    if len(out) != n or (positive and min(out) <= 0):
        kind = "positive numbers" if positive else "numbers"
        raise ValueError(f"{where}: {key!r} must be {n} {kind}, found {values!r}.")
    return out
