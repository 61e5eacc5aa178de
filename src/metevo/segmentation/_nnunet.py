"""nnU-Net v2 inference, re-implemented: the same masks as ``nnUNetPredictor``, faster.

The steps and their order are nnU-Net's (``DefaultPreprocessor.run_case_npy``,
``nnUNetPredictor.predict_sliding_window_return_logits`` and
``convert_predicted_logits_to_segmentation_with_correct_shape``):

1. the image as nnU-Net's reader gives it: SimpleITK array order ``(z, y, x)``, spacing reversed
   (``NibabelIOWithReorient``: reoriented to RAS first);
2. ``transpose_forward``; crop to the bounding box of the non-zero voxels (holes filled);
3. normalisation (``CTNormalization``: clip to the foreground 0.5 / 99.5 percentiles, then
   z-score with the foreground mean and standard deviation of the plans);
4. resampling to the configuration's spacing (third-order spline, ``skimage.transform.resize``
   with ``mode="edge"``; in-plane only then nearest along the low-resolution axis when the
   spacing is anisotropic, ratio > 3), as ``resample_data_or_seg_to_shape``;
5. sliding window: padding to the patch size, nnU-Net's tile positions (step 0.5 of the patch),
   its Gaussian importance map (sigma 1/8 of the patch), optional mirroring over the axes the
   checkpoint allows, fold ensembles averaged;
6. the logits resampled back to the cropped grid (linear, or linear in-plane and nearest along
   the low-resolution axis), argmax, un-cropped, transposed back.

Differences that do not change the masks beyond rounding: tiles are batched (several per
forward), logits are accumulated in float32 (nnU-Net: float16), steps 5 and 6 run on the
device (GPU when present) and the argmax is taken slab by slab so that full-resolution logits
are never held at once.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from metevo.segmentation._nnunet_plans import NnUNetFolder, load_nnunet_checkpoint, nnunet_identity

__all__ = ["NnUNetModel", "gaussian_map", "sliding_window_steps"]

#: nnU-Net's anisotropy threshold (``nnunetv2.configuration.ANISO_THRESHOLD``).
ANISO_THRESHOLD = 3


def sliding_window_steps(
    image_size: Sequence[int], tile_size: Sequence[int], step: float = 0.5
) -> list[list[int]]:
    """Tile start positions along each axis (nnU-Net's ``compute_steps_for_sliding_window``)."""
    out = []
    for n, t in zip(image_size, tile_size, strict=True):
        n_steps = int(math.ceil((n - t) / (t * step))) + 1
        if n_steps > 1:
            actual = (n - t) / (n_steps - 1)
            out.append([int(np.round(actual * i)) for i in range(n_steps)])
        else:
            out.append([0])
    return out


def gaussian_map(tile_size: Sequence[int], *, sigma_scale: float = 1 / 8) -> np.ndarray:
    """nnU-Net's Gaussian importance map: peak 10, zeros replaced by the smallest positive value."""
    from scipy.ndimage import gaussian_filter

    tmp = np.zeros(tile_size)
    tmp[tuple(i // 2 for i in tile_size)] = 1
    g = gaussian_filter(tmp, [i * sigma_scale for i in tile_size], 0, mode="constant", cval=0)
    g /= np.max(g) / 10
    g = g.astype(np.float32)
    g[g == 0] = g[g > 0].min()
    return g


def _separate_axis(
    current: Sequence[float], new: Sequence[float], force: bool | None
) -> int | None:
    """The low-resolution axis when nnU-Net resamples it separately, else ``None``."""

    def lowres(spacing: Sequence[float]) -> list[int]:
        s = np.asarray(spacing, dtype=float)
        return list(np.where(max(s) / s == 1)[0])

    if force is not None:
        axes = lowres(current) if force else []
        separate = bool(force)
    elif np.max(current) / np.min(current) > ANISO_THRESHOLD:
        separate, axes = True, lowres(current)
    elif np.max(new) / np.min(new) > ANISO_THRESHOLD:
        separate, axes = True, lowres(new)
    else:
        separate, axes = False, []
    if not separate or len(axes) != 1:
        return None
    return int(axes[0])


def _nearest_index(n_out: int, n_in: int) -> np.ndarray:
    """``map_coordinates(order=0, mode='nearest')`` source index of nnU-Net's z resampling."""
    coord = (n_in / n_out) * (np.arange(n_out) + 0.5) - 0.5
    return np.clip(np.floor(coord + 0.5), 0, n_in - 1).astype(np.int64)


def resample_data(
    data: np.ndarray,
    new_shape: Sequence[int],
    current: Sequence[float],
    new: Sequence[float],
    *,
    order: int = 3,
    order_z: int = 0,
    force_separate_z: bool | None = None,
) -> np.ndarray:
    """Image resampling as nnU-Net's ``resample_data_or_seg_to_shape`` (``is_seg=False``)."""
    from skimage.transform import resize

    new_shape = tuple(int(v) for v in new_shape)
    if tuple(data.shape[1:]) == new_shape:
        return data
    if order_z != 0:
        raise ValueError(f"order_z={order_z} is not reproduced by metevo (nnU-Net's default is 0).")
    axis = _separate_axis(current, new, force_separate_z)
    out = np.zeros((data.shape[0], *new_shape), dtype=data.dtype)
    for c in range(data.shape[0]):
        channel = data[c].astype(float, copy=False)
        if axis is None:
            out[c] = resize(channel, new_shape, order, mode="edge", anti_aliasing=False)
            continue
        plane = tuple(s for i, s in enumerate(new_shape) if i != axis)
        moved = np.moveaxis(channel, axis, 0)
        slices = np.stack(
            [resize(s, plane, order, mode="edge", anti_aliasing=False) for s in moved]
        )
        if moved.shape[0] != new_shape[axis]:
            slices = slices[_nearest_index(new_shape[axis], moved.shape[0])]
        out[c] = np.moveaxis(slices, 0, axis)
    return out


def _normalise(data: np.ndarray, mask: np.ndarray, schemes, use_mask, props) -> np.ndarray:
    for c, scheme in enumerate(schemes):
        image = data[c]
        if scheme == "CTNormalization":
            p = props[str(c)] if str(c) in props else props
            np.clip(image, p["percentile_00_5"], p["percentile_99_5"], out=image)
            image -= p["mean"]
            image /= max(p["std"], 1e-8)
        elif scheme == "ZScoreNormalization":
            if use_mask[c]:
                values = image[mask]
                mean, std = values.mean(), values.std()
                image[mask] = (image[mask] - mean) / max(std, 1e-8)
            else:
                mean, std = image.mean(), image.std()
                image -= mean
                image /= max(std, 1e-8)
        elif scheme == "RescaleTo01Normalization":
            image -= image.min()
            image /= np.clip(image.max(), a_min=1e-8, a_max=None)
        data[c] = image
    return data


def _bbox(mask: np.ndarray) -> list[tuple[int, int]]:
    out = []
    for axis in range(mask.ndim):
        other = tuple(a for a in range(mask.ndim) if a != axis)
        hit = np.flatnonzero(mask.any(axis=other))
        out.append((int(hit[0]), int(hit[-1]) + 1) if hit.size else (0, mask.shape[axis]))
    return out


class NnUNetModel:
    """A trained nnU-Net v2 model run by metevo (``load_model("nnunet:PATH")``).

    Parameters
    ----------
    folder : path
        Trained model folder (``dataset.json``, ``plans.json``, ``fold_*/checkpoint_final.pth``)
        or a dataset results folder holding several (then ``configuration`` picks one).
    configuration : str, optional
        Plans configuration (default: the folder's, e.g. ``3d_fullres``).
    folds : list, optional
        Folds to ensemble (default: every fold with a checkpoint).
    checkpoint : str
        Checkpoint file name in each fold folder.
    mirroring : bool
        Test-time mirroring over the axes the checkpoint allows (nnU-Net's default: on).
    step_size : float
        Sliding-window step as a fraction of the patch (nnU-Net's default 0.5).
    liver, lesion : list of str or int, optional
        Labels read as liver / lesion (default: recognised ``dataset.json`` names).
    name : str, optional
        Model name for provenance (default ``nnunet:<folder name>``).
    reorient : bool, optional
        Reorient to RAS+ first (default: when the plans' reader reorients).
    sha256 : callable, optional
        File hasher for the checksum (default
        :func:`~metevo.segmentation._card.file_sha256`; a memoised one lets models that share
        checkpoints read them once).
    """

    backend = "nnunet"

    def __init__(
        self,
        folder: str | Path,
        *,
        configuration: str | None = None,
        folds: list[int | str] | None = None,
        checkpoint: str = "checkpoint_final.pth",
        mirroring: bool = True,
        step_size: float = 0.5,
        liver: list[str] | None = None,
        lesion: list[str] | None = None,
        name: str | None = None,
        reorient: bool | None = None,
        sha256: Any = None,
    ) -> None:
        import torch

        self.info = NnUNetFolder.read(
            folder, configuration=configuration, folds=folds, checkpoint=checkpoint
        )
        if not 0 < step_size <= 1:
            raise ValueError(f"step_size must be in (0, 1], found {step_size}.")
        self.step_size = float(step_size)
        self.mirroring = bool(mirroring)
        where = self.info.where
        self.identity = nnunet_identity(
            self.info,
            mirroring=self.mirroring,
            step_size=self.step_size,
            reorient=reorient,
            liver=liver,
            lesion=lesion,
            name=name,
            sha256=sha256,
        )
        self.reorient = self.identity["reorient"]
        self.liver_labels = self.identity["liver_labels"]
        self.lesion_labels = self.identity["lesion_labels"]
        self.label_roles = self.identity["roles"]
        self.name = self.identity["name"]
        self.n_classes = len(self.info.labels)
        self.networks: list[torch.nn.Module] = []
        self.mirror_axes: tuple[int, ...] = ()
        for i, path in enumerate(self.info.checkpoints):
            ckpt = load_nnunet_checkpoint(path)
            if i == 0:
                axes = ckpt.get("inference_allowed_mirroring_axes")
                self.mirror_axes = tuple(int(a) for a in axes) if axes else ()
                trained = (ckpt.get("init_args") or {}).get("configuration")
                if trained and trained != self.info.configuration_name:
                    raise ValueError(
                        f"{where}: {path} was trained with configuration {trained!r}, the "
                        f"plans configuration asked for is {self.info.configuration_name!r}."
                    )
            network = self.info.build_network(self.n_classes)
            from metevo.segmentation._weights import check_state_dict

            check_state_dict(network, ckpt["network_weights"], where=f"{where}: {path.name}")
            self.networks.append(network.eval())
        self.gaussian = torch.from_numpy(gaussian_map(self.info.configuration["patch_size"]))
        self.device = torch.device("cpu")

    # -- the interface segment() uses ---------------------------------------------------------
    def to(self, device: Any) -> NnUNetModel:
        import torch

        self.device = torch.device(device)
        self.networks = [n.to(self.device) for n in self.networks]
        self.gaussian = self.gaussian.to(self.device)
        return self

    @property
    def checksum(self) -> str:
        """SHA-256 over the checkpoints and every setting that changes the output."""
        return self.identity["checksum"]

    def settings(self) -> dict[str, Any]:
        """Settings that determine the output, for provenance."""
        return dict(self.identity["settings"])

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.networks[0].parameters())

    def __repr__(self) -> str:
        c = self.info.configuration
        return (
            f"NnUNetModel({self.info.folder}, configuration={self.info.configuration_name!r}, "
            f"folds={self.info.folds}, spacing={c['spacing']}, patch_size={c['patch_size']}, "
            f"labels={self.label_roles})"
        )

    # -- preprocessing (numpy, CPU: runs in the reader threads) ---------------------------------
    def preprocess(
        self, volume: np.ndarray, affine: np.ndarray, *, where: str = "image"
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """nnU-Net's preprocessing of a ``(x, y, z)`` volume with its index-to-LPS ``affine``.

        Returns the ``(1, *shape)`` float32 network input and the context to go back.
        """
        from scipy.ndimage import binary_fill_holes

        from metevo.segmentation._core import canonical_transform

        volume = np.asarray(volume)
        if volume.ndim != 3:
            raise ValueError(f"{where}: expected a 3-D CT volume, found shape {volume.shape}.")
        perm, flips = (0, 1, 2), (False, False, False)
        spacing_xyz = tuple(float(v) for v in np.linalg.norm(np.asarray(affine)[:3, :3], axis=0))
        if self.reorient:
            perm, flips, spacing_xyz = canonical_transform(affine, "RAS")
            volume = volume.transpose(perm)
            volume = volume[tuple(slice(None, None, -1) if f else slice(None) for f in flips)]
        tf = [int(t) for t in self.info.plans["transpose_forward"]]
        data = volume.transpose(2, 1, 0)[None].astype(np.float32)
        spacing = spacing_xyz[::-1]
        data = np.ascontiguousarray(data.transpose([0, *(t + 1 for t in tf)]))
        original_spacing = [spacing[i] for i in tf]
        shape_before = data.shape[1:]
        nonzero = binary_fill_holes(data[0] != 0)
        bbox = _bbox(nonzero)
        crop = tuple(slice(a, b) for a, b in bbox)
        data = data[(slice(None), *crop)]
        mask = nonzero[crop]
        c = self.info.configuration
        target = [float(v) for v in c["spacing"]]
        new_shape = [
            int(round(o / t * n))
            for o, t, n in zip(original_spacing, target, data.shape[1:], strict=True)
        ]
        data = _normalise(
            np.array(data),
            mask,
            c["normalization_schemes"],
            c["use_mask_for_norm"],
            self.info.plans["foreground_intensity_properties_per_channel"],
        )
        kw = dict(c["resampling_fn_data_kwargs"])
        data = resample_data(
            data,
            new_shape,
            original_spacing,
            target,
            order=int(kw.get("order", 3)),
            order_z=int(kw.get("order_z", 0)),
            force_separate_z=kw.get("force_separate_z"),
        )
        ctx = {
            "shape_before": shape_before,
            "bbox": bbox,
            "shape_cropped": tuple(int(v) for v in mask.shape),
            "original_spacing": original_spacing,
            "perm": perm,
            "flips": flips,
        }
        return np.ascontiguousarray(data, dtype=np.float32), ctx

    # -- inference (torch, on the device) -----------------------------------------------------
    def logits(self, data: np.ndarray, *, batch_size: int = 4, precision: str = "auto") -> Any:
        """Sliding-window logits ``(C, *shape)`` (float32, on the device) of preprocessed data."""
        import torch
        import torch.nn.functional as F

        from metevo.segmentation._core import uses_bf16

        dev = self.device
        patch = [int(v) for v in self.info.configuration["patch_size"]]
        x = torch.from_numpy(data).to(dev)
        shape = list(x.shape[1:])
        pad = []
        revert = []
        for n, p in zip(shape, patch, strict=True):
            diff = max(0, p - n)
            pad.append((diff // 2, diff - diff // 2))
            revert.append(slice(diff // 2, diff // 2 + n))
        if any(sum(p) for p in pad):
            x = F.pad(x, [v for lo_hi in reversed(pad) for v in lo_hi], mode="constant", value=0)
        size = list(x.shape[1:])
        steps = sliding_window_steps(size, patch, self.step_size)
        starts = list(itertools.product(*steps))
        out = torch.zeros((self.n_classes, *size), dtype=torch.float32, device=dev)
        weight = torch.zeros(size, dtype=torch.float32, device=dev)
        g = self.gaussian
        use_bf16 = uses_bf16(precision, dev)
        mirror = [a + 2 for a in self.mirror_axes] if self.mirroring else []
        combos = [c for i in range(len(mirror)) for c in itertools.combinations(mirror, i + 1)]
        with torch.inference_mode():
            for first in range(0, len(starts), int(batch_size)):
                group = starts[first : first + int(batch_size)]
                tiles = torch.stack(
                    [
                        x[(slice(None), *(slice(s, s + p) for s, p in zip(st, patch, strict=True)))]
                        for st in group
                    ]
                )
                pred = None
                for network in self.networks:
                    with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=use_bf16):
                        y = network(tiles).float()
                        for axes in combos:
                            y += torch.flip(network(torch.flip(tiles, axes)), axes).float()
                    y /= len(combos) + 1
                    pred = y if pred is None else pred + y
                pred /= len(self.networks)
                for k, st in enumerate(group):
                    region = tuple(slice(s, s + p) for s, p in zip(st, patch, strict=True))
                    out[(slice(None), *region)] += pred[k] * g
                    weight[region] += g
            out /= weight
        return out[(slice(None), *revert)]

    def labels_from_logits(
        self, logits: Any, ctx: dict[str, Any], *, chunk_mb: int = 256
    ) -> np.ndarray:
        """Resample logits to the cropped grid, argmax, un-crop, transpose back: ``(x, y, z)``."""
        import torch

        c = self.info.configuration
        kw = dict(c["resampling_fn_probabilities_kwargs"])
        if int(kw.get("order", 1)) not in (0, 1) or int(kw.get("order_z", 0)) != 0:
            raise ValueError(
                f"{self.info.where}: probability resampling order {kw.get('order')} / order_z "
                f"{kw.get('order_z')} is not reproduced by metevo (supported: order 0/1, "
                "order_z 0)."
            )
        shape = ctx["shape_cropped"]
        axis = _separate_axis(
            [float(v) for v in c["spacing"]], ctx["original_spacing"], kw.get("force_separate_z")
        )
        if tuple(logits.shape[1:]) == tuple(shape):
            seg = logits.argmax(0).to(torch.uint8)
        else:
            seg = _resize_argmax(
                logits, shape, axis=axis, linear=int(kw.get("order", 1)) == 1, chunk_mb=chunk_mb
            )
        full = torch.zeros(ctx["shape_before"], dtype=torch.uint8, device=seg.device)
        full[tuple(slice(a, b) for a, b in ctx["bbox"])] = seg
        tb = [int(t) for t in self.info.plans["transpose_backward"]]
        out = full.permute(*tb).permute(2, 1, 0)  # nnU-Net (z, y, x) -> metevo (x, y, z)
        if self.reorient:
            dims = [i for i, f in enumerate(ctx["flips"]) if f]
            if dims:
                out = out.flip(dims)
            out = out.permute(*np.argsort(ctx["perm"]).tolist())
        return np.ascontiguousarray(out.cpu().numpy())

    def predict(
        self,
        volume: np.ndarray,
        affine: np.ndarray,
        *,
        batch_size: int = 4,
        precision: str = "auto",
        where: str = "image",
        prepared: tuple[np.ndarray, dict[str, Any]] | None = None,
    ) -> np.ndarray:
        """Label map (uint8, nnU-Net's label values) on the input grid of ``volume``."""
        data, ctx = (
            prepared if prepared is not None else self.preprocess(volume, affine, where=where)
        )
        logits = self.logits(data, batch_size=batch_size, precision=precision)
        return self.labels_from_logits(logits, ctx)


def _resize_argmax(
    logits: Any, shape: Sequence[int], *, axis: int | None, linear: bool, chunk_mb: int
) -> Any:
    """Argmax of logits resampled to ``shape``, slab by slab.

    Linear resampling is skimage's ``order=1, mode='edge'`` (the same as PyTorch's
    ``align_corners=False`` with edge clamping); along ``axis`` (nnU-Net's separate-z case) the
    source slice is the nearest one, as ``map_coordinates(order=0, mode='nearest')``.
    """
    import torch
    import torch.nn.functional as F

    from metevo.segmentation._core import resize_argmax

    if axis is None and linear:
        return resize_argmax(logits[None], shape, chunk_bytes=chunk_mb * 2**20)
    dev = logits.device
    if axis is None:  # order 0 everywhere
        idx = [
            torch.from_numpy(_nearest_index(n, m)).to(dev)
            for n, m in zip(shape, logits.shape[1:], strict=True)
        ]
        sub = logits[:, idx[0]][:, :, idx[1]][:, :, :, idx[2]]
        return sub.argmax(0).to(torch.uint8)
    moved = logits.movedim(axis + 1, 1)  # (C, A, p, q)
    plane = tuple(int(s) for i, s in enumerate(shape) if i != axis)
    source = torch.from_numpy(_nearest_index(int(shape[axis]), moved.shape[1])).to(dev)
    out = torch.empty((int(shape[axis]), *plane), dtype=torch.uint8, device=dev)
    per_slice = moved.shape[0] * plane[0] * plane[1] * 4 * 2
    step = max(1, (chunk_mb * 2**20) // max(per_slice, 1))
    rows = torch.from_numpy(_nearest_index(plane[0], moved.shape[2])).to(dev)
    cols = torch.from_numpy(_nearest_index(plane[1], moved.shape[3])).to(dev)
    for start in range(0, out.shape[0], step):
        sl = moved[:, source[start : start + step]].transpose(0, 1)  # (a, C, p, q)
        if tuple(sl.shape[2:]) != plane:
            if linear:
                sl = F.interpolate(sl.float(), size=plane, mode="bilinear", align_corners=False)
            else:
                sl = sl[:, :, rows][:, :, :, cols]
        out[start : start + step] = sl.argmax(1).to(torch.uint8)
    return out.movedim(0, axis)
