"""Training a segmentation model on any cohort with liver and lesion masks.

Preprocessing is the inference preprocessing (:func:`metevo.segmentation._core.preprocess`), so a
trained model sees at inference exactly what it saw in training. Patches are sampled around
background, liver and lesion voxels (lesions oversampled), augmented with MONAI intensity
transforms, and the network is trained with Dice + cross-entropy (MONAI ``DiceCELoss``).
"""

from __future__ import annotations

import math
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

from metevo._version import __version__
from metevo.exceptions import ManifestError
from metevo.segmentation._card import ModelCard, file_sha256

__all__ = ["load_training_cases", "train"]


def load_training_cases(
    manifest: Any, card: ModelCard, *, base_dir: Any = None, **cohort_options: Any
) -> list[dict[str, Any]]:
    """Read and preprocess every scan of a cohort: ``[{"image", "label", "where"}]``.

    ``image`` is a ``(1, X, Y, Z)`` float32 tensor at the model spacing (canonical orientation,
    HU window), ``label`` a ``(X, Y, Z)`` uint8 tensor (0 background, liver and lesion channels
    of the card; lesion wins where both masks are set).
    """
    import SimpleITK as sitk
    import torch
    import torch.nn.functional as F

    from metevo.cohort._cohort import open_cohort
    from metevo.segmentation._core import lps_affine, preprocess

    options = dict(cohort_options)
    if base_dir is not None:
        options["base_dir"] = base_dir
    cohort = open_cohort(manifest, errors="raise", **options)
    cases = []
    for patient in cohort:
        for scan in [*patient.scans, *patient.skipped_scans]:
            where = f"patient {scan.patient_id}, timepoint {scan.timepoint}"
            liver = scan.liver_mask()
            if liver is None:
                raise ManifestError(
                    f"{where}: training needs a liver mask and the manifest's liver_mask is "
                    "empty; add liver masks (or drop the scan)."
                )
            image = scan.image()
            affine = lps_affine(image.GetSpacing(), image.GetOrigin(), image.GetDirection())
            volume = torch.from_numpy(
                sitk.GetArrayFromImage(image).astype(np.float32).transpose(2, 1, 0).copy()
            )
            lab = np.zeros(volume.shape, dtype=np.int64)
            lab[sitk.GetArrayViewFromImage(liver).transpose(2, 1, 0) != 0] = card.labels["liver"]
            lesion = sitk.GetArrayFromImage(scan.lesion_mask()).transpose(2, 1, 0) != 0
            lab[lesion] = card.labels["lesion"]
            x, ctx = preprocess(
                volume,
                affine,
                orientation=card.orientation,
                spacing_mm=card.spacing_mm,
                window_hu=card.window_hu,
            )
            # labels follow the same path as logits at inference: one-hot, trilinear, argmax
            from metevo.segmentation._core import to_canonical

            onehot = F.one_hot(
                to_canonical(torch.from_numpy(lab), ctx["perm"], ctx["flips"]), card.out_channels
            )
            onehot = onehot.permute(3, 0, 1, 2)[None].float()
            if ctx["model_shape"] != ctx["shape"]:
                onehot = F.interpolate(
                    onehot, size=ctx["model_shape"], mode="trilinear", align_corners=False
                )
            label = onehot.argmax(1)[0].to(torch.uint8)
            cases.append({"image": x[0], "label": label, "where": where})
    if not cases:
        raise ManifestError("the training manifest holds no usable scan.")
    return cases


def _sample_patch(
    case: dict[str, Any],
    patch: tuple[int, int, int],
    rng: np.random.Generator,
    lesion: int,
    liver: int,
) -> tuple[Any, Any]:
    import torch.nn.functional as F

    image, label = case["image"], case["label"]
    shape = label.shape
    pad = [max(0, p - s) for p, s in zip(patch, shape, strict=True)]
    if any(pad):
        spec = []
        for p in reversed(pad):
            spec += [p // 2, p - p // 2]
        image = F.pad(image, spec, value=0.0)
        label = F.pad(label, spec, value=0)
        shape = label.shape
    # class of the patch centre: lesion 50 %, liver 25 %, anywhere 25 % (when present)
    r = rng.random()
    want = lesion if r < 0.5 else (liver if r < 0.75 else None)
    centre = None
    if want is not None:
        key = f"_idx{want}"
        if key not in case or case.get("_shape") != tuple(shape):
            case[key] = (label == want).nonzero()
            case["_shape"] = tuple(shape)
        idx = case[key]
        if len(idx):
            centre = idx[int(rng.integers(len(idx)))].tolist()
    if centre is None:
        centre = [int(rng.integers(s)) for s in shape]
    starts = [
        int(min(max(c - p // 2, 0), s - p)) for c, p, s in zip(centre, patch, shape, strict=True)
    ]
    sl = tuple(slice(a, a + p) for a, p in zip(starts, patch, strict=True))
    return image[(slice(None), *sl)], label[sl]


def train(
    manifest: Any,
    model_card: ModelCard | dict | str | Path,
    out: str | Path,
    *,
    steps: int = 1000,
    batch_size: int = 4,
    learning_rate: float = 2e-3,
    seed: int = 0,
    device: str = "auto",
    num_threads: int | None = None,
    time_limit_s: float | None = None,
    training_info: dict[str, Any] | None = None,
    base_dir: Any = None,
    verbose: bool = False,
    **cohort_options: Any,
) -> Any:
    """Train the network a model card describes and write card + weights to ``out``.

    Parameters
    ----------
    manifest : path or DataFrame
        A cohort manifest with ``lesion_mask`` and ``liver_mask`` (e.g. the synthetic cohort of
        :func:`metevo.datasets.make_synthetic_cohort`, or a LiTS/MSD-style folder described by a
        manifest); read with :func:`metevo.open_cohort` and ``**cohort_options``.
    model_card : ModelCard, dict or path
        Architecture, preprocessing, labels and patch size. Its ``weights`` and
        ``weights_sha256`` are set by training.
    out : path
        Folder receiving ``<name>.pt`` (a plain state_dict) and ``<name>.json`` (the card).
    steps, batch_size, learning_rate : int, int, float
        Optimiser steps (AdamW, cosine schedule), patches per step, peak learning rate.
    seed : int
        Seeds patch sampling, augmentation and initialisation.
    time_limit_s : float, optional
        Stop early (and save) when training has run this long.
    training_info : dict, optional
        Extra provenance stored in the card's ``training`` (command, data generator version).

    Returns
    -------
    SegmentationModel
        The trained model (eval mode, on the CPU), as :func:`load_model` would return it.
    """
    import monai
    import torch
    from monai.losses import DiceCELoss
    from monai.transforms import Compose, RandGaussianNoise, RandScaleIntensity, RandShiftIntensity

    from metevo.segmentation._core import _resolve_device
    from metevo.segmentation._model import SegmentationModel, build_network

    if isinstance(model_card, ModelCard):
        card = ModelCard.from_dict(model_card.to_dict())
    elif isinstance(model_card, dict):
        card = ModelCard.from_dict(model_card)
    else:
        card = ModelCard.read(model_card)
    if steps < 1 or batch_size < 1 or learning_rate <= 0:
        raise ValueError(
            f"steps and batch_size must be >= 1 and learning_rate > 0; found steps={steps}, "
            f"batch_size={batch_size}, learning_rate={learning_rate}."
        )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    dev = _resolve_device(device)
    old_threads = torch.get_num_threads()
    if num_threads:
        torch.set_num_threads(int(num_threads))
    try:
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        tick = time.perf_counter()
        cpu_tick = time.process_time()
        cases = load_training_cases(manifest, card, base_dir=base_dir, **cohort_options)
        load_s = time.perf_counter() - tick
        network = build_network(card).to(dev)
        network.train()
        optimiser = torch.optim.AdamW(network.parameters(), lr=learning_rate, weight_decay=1e-5)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimiser, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps))
        )
        loss_fn = DiceCELoss(to_onehot_y=True, softmax=True, batch=True)
        augment = Compose(
            [
                RandScaleIntensity(factors=0.1, prob=0.5),
                RandShiftIntensity(offsets=0.05, prob=0.5),
                RandGaussianNoise(prob=0.3, std=0.02),
            ]
        )
        augment.set_random_state(seed=seed)
        lesion, liver = card.labels["lesion"], card.labels["liver"]
        done = 0
        losses: list[float] = []
        train_tick = time.perf_counter()
        for step in range(steps):
            images, labels = [], []
            for _ in range(batch_size):
                case = cases[int(rng.integers(len(cases)))]
                img, lab = _sample_patch(case, card.patch_size, rng, lesion, liver)
                img = augment(img)
                images.append(img.as_tensor() if hasattr(img, "as_tensor") else img)
                labels.append(lab[None].long())
            x = torch.stack(images).to(dev)
            y = torch.stack(labels).to(dev)
            optimiser.zero_grad(set_to_none=True)
            pred = network(x)
            if pred.ndim == 6:  # DynUNet deep supervision: keep the full-resolution head
                pred = pred[:, 0]
            loss = loss_fn(pred, y)
            loss.backward()
            optimiser.step()
            schedule.step()
            done = step + 1
            losses.append(float(loss.detach()))
            if verbose and (done % 50 == 0 or done == steps):
                print(
                    f"step {done}/{steps} loss {np.mean(losses[-50:]):.4f} "
                    f"({time.perf_counter() - train_tick:.0f} s)",
                    flush=True,
                )
            if time_limit_s is not None and time.perf_counter() - tick > time_limit_s:
                break
        seconds = time.perf_counter() - tick
        cpu_seconds = time.process_time() - cpu_tick
    finally:
        torch.set_num_threads(old_threads)

    network.eval().cpu()
    weights = out / f"{card.name}.pt"
    tmp = out / f".{card.name}.pt.tmp"
    torch.save({k: v.detach().cpu().contiguous() for k, v in network.state_dict().items()}, tmp)
    tmp.replace(weights)
    sha = file_sha256(weights)
    card.weights = weights.name
    card.weights_sha256 = sha
    card.training = {
        **(training_info or {}),
        "steps": done,
        "steps_requested": steps,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "seed": seed,
        "n_scans": len(cases),
        "final_loss": float(np.mean(losses[-50:])) if losses else None,
        "seconds": round(seconds, 1),
        "seconds_loading": round(load_s, 1),
        "cpu_seconds": round(cpu_seconds, 1),
        "device": str(dev),
        "threads": torch.get_num_threads() if not num_threads else int(num_threads),
        "cpu": platform.processor() or platform.machine(),
        "metevo_version": __version__,
        "torch_version": torch.__version__,
        "monai_version": monai.__version__,
    }
    card.write(out / f"{card.name}.json")
    return SegmentationModel(card, network, weights_sha256=sha)
