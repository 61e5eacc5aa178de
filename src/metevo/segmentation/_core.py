"""Inference core: CT volume + geometry in, label map on the same voxel grid out.

Needs only numpy, torch and MONAI (scipy is used for connected components on the CPU when it is
installed), so that it runs on a bare GPU machine (see ``benchmarks/bench_segmentation.py``).
Nothing here reads or writes files.

Geometry convention: ``volume`` is indexed ``[i, j, k]`` (x fastest in the file, i.e. NIfTI / ITK
index order, *not* SimpleITK's ``(z, y, x)`` array order) and ``affine`` is the 4 x 4 matrix that
maps ``(i, j, k, 1)`` to LPS millimetres (ITK / DICOM patient coordinates). The pipeline never
moves the voxel grid: it permutes and flips the array into the model's canonical orientation,
resamples in index space to the model spacing, predicts, resamples the logits back to the
canonical array and undoes the permutation and flips. The label map therefore sits exactly on the
input grid whatever the input's direction cosines.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from metevo.exceptions import DataQualityWarning, MissingDependencyError

try:
    import torch
    import torch.nn.functional as F
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingDependencyError(
        "metevo.segmentation needs PyTorch and MONAI: pip install 'metevo[segmentation]' "
        "(on CPU-only machines install torch from https://download.pytorch.org/whl/cpu first)."
    ) from exc

__all__ = [
    "canonical_transform",
    "dilate",
    "from_canonical",
    "label_components",
    "lps_affine",
    "predict_labels",
    "preprocess",
    "resize_argmax",
    "to_canonical",
    "uses_bf16",
]

# LPS world: +x towards the patient's left, +y posterior, +z superior.
_LETTER = {"L": (0, 1), "R": (0, -1), "P": (1, 1), "A": (1, -1), "S": (2, 1), "I": (2, -1)}


def lps_affine(
    spacing: Sequence[float], origin: Sequence[float], direction: Sequence[float]
) -> np.ndarray:
    """4 x 4 index-to-LPS affine from ITK-style spacing, origin and (row-major 3 x 3) direction."""
    out = np.eye(4)
    out[:3, :3] = np.asarray(direction, dtype=float).reshape(3, 3) * np.asarray(spacing, float)
    out[:3, 3] = np.asarray(origin, dtype=float)
    return out


def canonical_transform(
    affine: np.ndarray, orientation: str = "RAS"
) -> tuple[tuple[int, int, int], tuple[bool, bool, bool], tuple[float, float, float]]:
    """Axis permutation and flips that bring an array into ``orientation``.

    Returns ``(perm, flips, spacing)``: ``canonical = flip(volume.permute(perm), flips)``, and the
    voxel spacing (mm) along the canonical axes. Oblique directions are assigned to their closest
    world axis (the grid itself is never rotated).
    """
    affine = np.asarray(affine, dtype=float)
    if affine.shape != (4, 4) or not np.all(np.isfinite(affine)):
        raise ValueError(f"affine must be a finite 4 x 4 matrix, found shape {affine.shape}.")
    columns = affine[:3, :3]
    spacing = np.linalg.norm(columns, axis=0)
    if np.any(spacing <= 0):
        raise ValueError(f"affine has a zero-length axis (spacing {spacing.tolist()}).")
    direction = columns / spacing
    # Greedy assignment of array axes to world axes, strongest component first.
    world_of_axis = [-1, -1, -1]
    used: set[int] = set()
    for flat in np.argsort(-np.abs(direction), axis=None):
        world, axis = divmod(int(flat), 3)
        if world_of_axis[axis] == -1 and world not in used:
            world_of_axis[axis] = world
            used.add(world)
    perm, flips = [], []
    for letter in orientation:
        world, sign = _LETTER[letter]
        axis = world_of_axis.index(world)
        perm.append(axis)
        flips.append(bool(np.sign(direction[world, axis]) != sign))
    return (
        tuple(perm),
        tuple(flips),
        tuple(float(spacing[a]) for a in perm),
    )


def to_canonical(t: torch.Tensor, perm: Sequence[int], flips: Sequence[bool]) -> torch.Tensor:
    """Permute the last three axes of ``t`` by ``perm`` and flip those marked in ``flips``."""
    lead = t.ndim - 3
    t = t.permute(*range(lead), *(lead + p for p in perm))
    dims = [lead + i for i, f in enumerate(flips) if f]
    return t.flip(dims) if dims else t


def from_canonical(t: torch.Tensor, perm: Sequence[int], flips: Sequence[bool]) -> torch.Tensor:
    """Inverse of :func:`to_canonical`."""
    lead = t.ndim - 3
    dims = [lead + i for i, f in enumerate(flips) if f]
    if dims:
        t = t.flip(dims)
    inverse = np.argsort(perm)
    return t.permute(*range(lead), *(lead + int(p) for p in inverse))


def model_shape(
    shape: Sequence[int], spacing: Sequence[float], target: Sequence[float]
) -> tuple[int, int, int]:
    """Grid size at the model spacing covering the same field of view."""
    return tuple(
        max(1, int(round(n * s / t))) for n, s, t in zip(shape, spacing, target, strict=True)
    )


def check_hu(volume: np.ndarray | torch.Tensor, *, where: str = "image") -> None:
    """Warn (:class:`DataQualityWarning`) when intensities do not look like CT Hounsfield units."""
    t = torch.as_tensor(volume)
    step = max(1, int(round((t.numel() / 2e5) ** (1 / 3))))
    sample = t[::step, ::step, ::step].float().flatten()
    low = float(sample.min())
    high = float(torch.quantile(sample, 0.99)) if sample.numel() > 1 else float(sample.max())
    if low > -200 or high > 4000:
        warnings.warn(
            f"{where}: intensities do not look like CT Hounsfield units (min {low:.0f}, 99th "
            f"percentile {high:.0f}; expected air near -1000 and tissue below ~3000). The model "
            "expects HU: check RescaleSlope/RescaleIntercept or that this is a CT.",
            DataQualityWarning,
            stacklevel=3,
        )


def preprocess(
    volume: torch.Tensor,
    affine: np.ndarray,
    *,
    orientation: str,
    spacing_mm: Sequence[float],
    window_hu: Sequence[float],
) -> tuple[torch.Tensor, dict[str, Any]]:
    """Canonical orientation, resampling to ``spacing_mm`` and HU window scaled to [0, 1].

    ``volume`` is a 3-D tensor (any dtype, any device). Returns the ``(1, 1, X, Y, Z)`` float32
    model input on the same device and the context needed to go back.
    """
    perm, flips, spacing = canonical_transform(affine, orientation)
    canon = to_canonical(volume, perm, flips)
    shape = tuple(canon.shape)
    target = model_shape(shape, spacing, spacing_mm)
    x = canon.float()[None, None]
    low, high = float(window_hu[0]), float(window_hu[1])
    x = (x.clamp(low, high) - low) / (high - low)
    if target != shape:
        x = F.interpolate(x, size=target, mode="trilinear", align_corners=False)
    ctx = {"perm": perm, "flips": flips, "shape": shape, "spacing": spacing, "model_shape": target}
    return x.contiguous(), ctx


def _source_index(n_out: int, n_in: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Lower source index and weight of linear interpolation (PyTorch ``align_corners=False``)."""
    scale = n_in / n_out
    src = ((torch.arange(n_out, device=device, dtype=torch.float64) + 0.5) * scale - 0.5).clamp(
        min=0
    )
    lower = src.floor().long().clamp(max=n_in - 1)
    return lower, (src - lower).float()


def resize_argmax(
    logits: torch.Tensor,
    shape: Sequence[int],
    *,
    device: torch.device | str | None = None,
    chunk_bytes: int = 256 * 2**20,
) -> torch.Tensor:
    """Trilinear resize of ``(1, C, X, Y, Z)`` logits to ``shape`` followed by argmax, in slabs.

    Equivalent to ``F.interpolate(logits, size=shape, mode="trilinear").argmax(1)[0]`` but never
    holds more than about ``chunk_bytes`` of full-resolution float logits, so that a large
    volume does not need one float32 buffer per class. Returns uint8 ``(X, Y, Z)`` on ``device``
    (default: the logits' device).
    """
    device = torch.device(device) if device is not None else logits.device
    n_class = logits.shape[1]
    nx, ny, nz = (int(v) for v in shape)
    out = torch.empty((nx, ny, nz), dtype=torch.uint8, device=device)
    in_z = logits.shape[-1]
    lower, weight = _source_index(nz, in_z, device)
    per_slice = n_class * nx * ny * 4 * 2
    step = max(1, min(nz, chunk_bytes // max(per_slice, 1)))
    for start in range(0, nz, step):
        stop = min(nz, start + step)
        lo = int(lower[start])
        hi = min(in_z - 1, int(lower[stop - 1]) + 1)
        slab = logits[..., lo : hi + 1].to(device, non_blocking=True).float()
        if slab.shape[2:4] != (nx, ny):
            slab = F.interpolate(
                slab, size=(nx, ny, slab.shape[-1]), mode="trilinear", align_corners=False
            )
        idx = lower[start:stop] - lo
        nxt = (idx + 1).clamp(max=slab.shape[-1] - 1)
        w = weight[start:stop]
        resized = slab[..., idx] * (1 - w) + slab[..., nxt] * w
        out[..., start:stop] = resized.argmax(1)[0].to(torch.uint8)
        del slab, resized
    return out


def dilate(mask: torch.Tensor, radius_mm: float, spacing: Sequence[float]) -> torch.Tensor:
    """Box dilation of a boolean 3-D mask by ``radius_mm`` along each axis (separable max-pool)."""
    x = mask[None, None].to(torch.float16 if mask.is_cuda else torch.float32)
    for axis, sp in enumerate(spacing):
        r = int(math.floor(radius_mm / sp))
        if r <= 0:
            continue
        kernel = [1, 1, 1]
        pad = [0, 0, 0]
        kernel[axis] = 2 * r + 1
        pad[axis] = r
        x = F.max_pool3d(x, kernel_size=kernel, stride=1, padding=pad)
    return x[0, 0] > 0


def _components_scipy(mask: torch.Tensor) -> tuple[torch.Tensor, int] | None:
    try:
        from scipy import ndimage
    except ImportError:
        return None
    labels, n = ndimage.label(mask.cpu().numpy(), structure=np.ones((3, 3, 3), dtype=bool))
    return torch.from_numpy(labels.astype(np.int64)).to(mask.device), int(n)


def _components_torch(mask: torch.Tensor) -> tuple[torch.Tensor, int]:
    """26-connected components by max-label propagation with pointer jumping (GPU friendly)."""
    out = torch.zeros(mask.shape, dtype=torch.int64, device=mask.device)
    if not bool(mask.any()):
        return out, 0
    nz = mask.nonzero()
    lo = nz.min(0).values
    hi = nz.max(0).values + 1
    crop = mask[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
    n = crop.numel()
    dtype = torch.float32 if n < 2**24 else torch.float64
    index = torch.arange(1, n + 1, device=mask.device, dtype=dtype).view(crop.shape)
    keep = crop.to(dtype)
    lab = index * keep
    while True:
        new = F.max_pool3d(lab[None, None], 3, 1, 1)[0, 0] * keep
        # pointer jumping: adopt the label held by the voxel one's label points at
        ptr = (new.long() - 1).clamp(min=0).flatten()
        new = torch.maximum(new, new.flatten()[ptr].view_as(new) * keep)
        if torch.equal(new, lab):
            break
        lab = new
    values, inverse = torch.unique(lab.long(), return_inverse=True)
    # values[0] is 0 (background) because the bounding box of a mask always holds background or
    # every voxel is foreground; handle both.
    if int(values[0]) == 0:
        comp = inverse
        count = values.numel() - 1
    else:
        comp = inverse + 1
        count = values.numel()
    out[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = comp
    return out, int(count)


def label_components(mask: torch.Tensor, *, backend: str = "auto") -> tuple[torch.Tensor, int]:
    """26-connected components of a boolean 3-D mask: ``(labels int64, n)``, labels ``1..n``.

    ``backend``: ``"scipy"`` (CPU, ``scipy.ndimage.label``), ``"torch"`` (max-label propagation,
    runs on the mask's device) or ``"auto"`` (scipy for CPU tensors when installed, else torch).
    Component numbering differs between backends; the partition is the same.
    """
    if backend not in ("auto", "scipy", "torch"):
        raise ValueError(f"backend must be 'auto', 'scipy' or 'torch', found {backend!r}.")
    if backend == "scipy" or (backend == "auto" and not mask.is_cuda):
        result = _components_scipy(mask)
        if result is not None:
            return result
        if backend == "scipy":
            raise MissingDependencyError("backend='scipy' needs scipy: pip install scipy.")
    return _components_torch(mask)


def postprocess(
    labels: torch.Tensor,
    spacing: Sequence[float],
    *,
    liver: int,
    lesion: int,
    liver_dilation_mm: float,
    min_lesion_ml: float,
    min_liver_ml: float,
) -> torch.Tensor:
    """Clean an argmax label map (in place semantics, returns the cleaned map).

    1. Organ components (liver or lesion voxels) smaller than ``min_liver_ml`` are removed.
    2. A lesion component is kept only if it is at least ``min_lesion_ml`` and touches the liver
       dilated by ``liver_dilation_mm``; a dropped lesion component becomes liver where it lies
       inside the dilated liver, background elsewhere.
    """
    voxel_ml = float(np.prod(spacing)) / 1000.0
    organ = (labels == liver) | (labels == lesion)
    if min_liver_ml > 0 and bool(organ.any()):
        comp, n = label_components(organ)
        sizes = torch.bincount(comp.flatten(), minlength=n + 1)
        small = sizes < math.ceil(min_liver_ml / voxel_ml)
        small[0] = False
        drop = small[comp]
        labels = labels.masked_fill(drop, 0)
    is_lesion = labels == lesion
    if not bool(is_lesion.any()):
        return labels
    near_liver = dilate(labels == liver, liver_dilation_mm, spacing)
    comp, n = label_components(is_lesion)
    sizes = torch.bincount(comp.flatten(), minlength=n + 1)
    touches = torch.bincount(comp[near_liver & is_lesion], minlength=n + 1) > 0
    keep = (sizes >= math.ceil(min_lesion_ml / voxel_ml)) & touches
    keep[0] = True
    dropped = ~keep[comp]
    labels = torch.where(dropped & near_liver, torch.full_like(labels, liver), labels)
    labels = labels.masked_fill(dropped & ~near_liver, 0)
    return labels


def uses_bf16(precision: str, device: torch.device) -> bool:
    """Whether inference runs under bf16 autocast: ``"bf16"`` always, ``"auto"`` on CUDA only."""
    return precision == "bf16" or (precision == "auto" and device.type == "cuda")


def _resolve_device(device: str | torch.device) -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def predict_labels(
    network: torch.nn.Module,
    volume: np.ndarray | torch.Tensor,
    affine: np.ndarray,
    card: Any,
    *,
    device: str | torch.device = "auto",
    sw_batch_size: int = 4,
    overlap: float = 0.25,
    precision: str = "auto",
    max_buffer_gb: float = 4.0,
    chunk_mb: int = 256,
    postprocessing: bool = True,
    check_intensities: bool = True,
    where: str = "image",
    timings: dict[str, float] | None = None,
) -> np.ndarray:
    """Segment one CT volume; returns a uint8 label map on the input grid.

    Parameters
    ----------
    network : torch.nn.Module
        The model, already on ``device`` and in eval mode.
    volume : array, shape (I, J, K)
        HU intensities in ITK index order (x, y, z); a torch tensor may already be on the GPU.
    affine : array, shape (4, 4)
        Index-to-LPS affine of ``volume`` (see :func:`lps_affine`).
    card : ModelCard
        Preprocessing, labels, patch size and post-processing settings.
    device : str
        ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda[:n]"``.
    sw_batch_size : int
        Sliding windows per forward pass.
    overlap : float
        Sliding-window overlap, in [0, 1).
    precision : {"auto", "bf16", "fp32"}
        ``"auto"`` is bf16 autocast on CUDA and fp32 on the CPU.
    max_buffer_gb : float
        Largest sliding-window output buffer kept on the GPU; larger volumes aggregate on the CPU.
    chunk_mb : int
        Size of the full-resolution slabs used for back-resampling and argmax.
    postprocessing : bool
        Apply :func:`postprocess` (lesions inside the dilated liver, small components removed).

    Returns
    -------
    numpy.ndarray of uint8, shape (I, J, K)
        Values are the card's label channels (0 background, ``card.labels['liver']``, ...).
    """
    from monai.inferers import sliding_window_inference

    if not 0 <= overlap < 1:
        raise ValueError(f"overlap must be in [0, 1), found {overlap}.")
    if int(sw_batch_size) < 1:
        raise ValueError(f"sw_batch_size must be >= 1, found {sw_batch_size}.")
    if precision not in ("auto", "bf16", "fp32"):
        raise ValueError(f"precision must be 'auto', 'bf16' or 'fp32', found {precision!r}.")
    dev = _resolve_device(device)
    tick = time.perf_counter()
    t = torch.as_tensor(volume)
    if t.ndim == 4 and 1 in (t.shape[0], t.shape[-1]):
        t = t[0] if t.shape[0] == 1 else t[..., 0]
    if t.ndim != 3:
        raise ValueError(
            f"{where}: expected a 3-D CT volume (one channel), found shape {tuple(t.shape)}; "
            f"the model takes {card.in_channels} channel(s). Split multi-channel or 4-D images "
            "into one volume per scan."
        )
    if check_intensities:
        check_hu(t, where=where)
    t = t.to(dev, non_blocking=True)
    x, ctx = preprocess(
        t,
        affine,
        orientation=card.orientation,
        spacing_mm=card.spacing_mm,
        window_hu=card.window_hu,
    )
    del t
    _sync(dev)
    now = time.perf_counter()
    if timings is not None:
        timings["preprocess_s"] = timings.get("preprocess_s", 0.0) + now - tick
    tick = now

    use_bf16 = uses_bf16(precision, dev)
    n_class = card.out_channels
    buffer_bytes = (n_class + 2) * x.numel() * 4
    agg = (
        dev if (dev.type == "cpu" or buffer_bytes <= max_buffer_gb * 2**30) else torch.device("cpu")
    )

    def predictor(window: torch.Tensor) -> torch.Tensor:
        if use_bf16:
            with torch.autocast(device_type=dev.type, dtype=torch.bfloat16):
                return network(window).float()
        return network(window)

    with torch.inference_mode():
        logits = sliding_window_inference(
            x,
            roi_size=card.patch_size,
            sw_batch_size=int(sw_batch_size),
            predictor=predictor,
            overlap=float(overlap),
            mode="gaussian",
            sw_device=dev,
            device=agg,
        )
        del x
        logits = torch.as_tensor(logits)  # plain tensor (MONAI may return a MetaTensor)
        if logits.shape[1] != n_class:
            raise ValueError(
                f"model card {card.name!r}: the network returned {logits.shape[1]} channels, the "
                f"card's labels name {n_class}; fix 'labels' or the weights."
            )
        _sync(dev)
        now = time.perf_counter()
        if timings is not None:
            timings["inference_s"] = timings.get("inference_s", 0.0) + now - tick
        tick = now
        labels = resize_argmax(logits, ctx["shape"], device=dev, chunk_bytes=chunk_mb * 2**20)
        del logits
        if postprocessing:
            labels = postprocess(
                labels,
                ctx["spacing"],
                liver=card.labels["liver"],
                lesion=card.labels["lesion"],
                liver_dilation_mm=card.liver_dilation_mm,
                min_lesion_ml=card.min_lesion_ml,
                min_liver_ml=card.min_liver_ml,
            )
        out = from_canonical(labels, ctx["perm"], ctx["flips"]).cpu().numpy()
    if timings is not None:
        timings["postprocess_s"] = timings.get("postprocess_s", 0.0) + time.perf_counter() - tick
    return np.ascontiguousarray(out)


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
