"""Tiny models in the formats people use (nnU-Net v2 model folder, MONAI bundle), for tests.

:func:`make_toy_nnunet_model` writes a trained nnU-Net v2 model folder exactly as nnU-Net lays
it out (``dataset.json``, ``plans.json`` in the format of nnU-Net's ``ExperimentPlanner``,
``fold_<f>/checkpoint_final.pth`` with the keys and value types of
``nnUNetTrainer.save_checkpoint``), holding a small ``PlainConvUNet`` from
``dynamic-network-architectures`` trained for a few steps on synthetic phantoms (liver-like and
lesion-like intensities). It is small enough for CPU tests and benchmarks; it is not a model of
anything real.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["make_toy_nnunet_model", "toy_phantom"]

#: Intensity properties written to the toy plans (as nnU-Net's fingerprint stores them).
TOY_INTENSITY = {
    "max": 1200.0,
    "mean": 40.0,
    "median": 45.0,
    "min": -1000.0,
    "percentile_00_5": -180.0,
    "percentile_99_5": 260.0,
    "std": 60.0,
}


def toy_phantom(
    shape: tuple[int, int, int], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """A phantom CT (HU) and its labels (0 background, 1 liver, 2 lesion), both ``shape``."""
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij"))
    hu = np.full(shape, -900.0)
    body = ((grid / 0.95) ** 2).sum(0) < 1
    hu[body] = 0.0
    centre = rng.uniform(-0.2, 0.2, 3)
    radii = rng.uniform(0.5, 0.8, 3)
    liver = (((grid - centre[:, None, None, None]) / radii[:, None, None, None]) ** 2).sum(0) < 1
    hu[liver] = 65.0
    labels = liver.astype(np.uint8)
    for _ in range(int(rng.integers(1, 4))):
        c = centre + rng.uniform(-0.6, 0.6, 3) * radii
        r = rng.uniform(0.15, 0.3)
        lesion = liver & (((grid - c[:, None, None, None]) ** 2).sum(0) < r**2)
        hu[lesion] = 15.0
        labels[lesion] = 2
    hu += rng.normal(0, 12, shape)
    return hu.astype(np.float32), labels


def _plans(
    name: str, spacing: list[float], patch: list[int], transpose: list[int]
) -> dict[str, Any]:
    backward = [int(i) for i in np.argsort(transpose)]
    n_stages = 3
    arch = {
        "network_class_name": "dynamic_network_architectures.architectures.unet.PlainConvUNet",
        "arch_kwargs": {
            "n_stages": n_stages,
            "features_per_stage": [4, 8, 16],
            "conv_op": "torch.nn.modules.conv.Conv3d",
            "kernel_sizes": [[3, 3, 3]] * n_stages,
            "strides": [[1, 1, 1], [2, 2, 2], [2, 2, 2]],
            "n_conv_per_stage": [1, 1, 1],
            "n_conv_per_stage_decoder": [1, 1],
            "conv_bias": True,
            "norm_op": "torch.nn.modules.instancenorm.InstanceNorm3d",
            "norm_op_kwargs": {"eps": 1e-05, "affine": True},
            "dropout_op": None,
            "dropout_op_kwargs": None,
            "nonlin": "torch.nn.LeakyReLU",
            "nonlin_kwargs": {"inplace": True},
        },
        "_kw_requires_import": ["conv_op", "norm_op", "dropout_op", "nonlin"],
    }
    fullres = {
        "data_identifier": "nnUNetPlans_3d_fullres",
        "preprocessor_name": "DefaultPreprocessor",
        "batch_size": 2,
        "patch_size": patch,
        "median_image_size_in_voxels": [40, 60, 60],
        "spacing": spacing,
        "normalization_schemes": ["CTNormalization"],
        "use_mask_for_norm": [False],
        "resampling_fn_data": "resample_data_or_seg_to_shape",
        "resampling_fn_seg": "resample_data_or_seg_to_shape",
        "resampling_fn_data_kwargs": {
            "is_seg": False,
            "order": 3,
            "order_z": 0,
            "force_separate_z": None,
        },
        "resampling_fn_seg_kwargs": {
            "is_seg": True,
            "order": 1,
            "order_z": 0,
            "force_separate_z": None,
        },
        "resampling_fn_probabilities": "resample_data_or_seg_to_shape",
        "resampling_fn_probabilities_kwargs": {
            "is_seg": False,
            "order": 1,
            "order_z": 0,
            "force_separate_z": None,
        },
        "architecture": arch,
        "batch_dice": True,
    }
    return {
        "dataset_name": name,
        "plans_name": "nnUNetPlans",
        "original_median_spacing_after_transp": spacing,
        "original_median_shape_after_transp": [40, 60, 60],
        "image_reader_writer": "SimpleITKIO",
        "transpose_forward": transpose,
        "transpose_backward": backward,
        "configurations": {
            "3d_fullres": fullres,
            "3d_lowres": {
                "inherits_from": "3d_fullres",
                "data_identifier": "nnUNetPlans_3d_lowres",
                "spacing": [2 * s for s in spacing],
                "next_stage": "3d_cascade_fullres",
            },
        },
        "experiment_planner_used": "ExperimentPlanner",
        "label_manager": "LabelManager",
        "foreground_intensity_properties_per_channel": {"0": dict(TOY_INTENSITY)},
    }


def make_toy_nnunet_model(
    folder: str | Path,
    *,
    spacing_zyx: tuple[float, float, float] = (4.0, 3.5, 3.5),
    patch_size: tuple[int, int, int] = (24, 24, 24),
    transpose_forward: tuple[int, int, int] = (0, 1, 2),
    folds: tuple[int, ...] = (0, 1),
    steps: int = 100,
    seed: int = 0,
    labels: dict[str, int] | None = None,
    mirror_axes: tuple[int, ...] = (0, 1, 2),
    dataset_name: str = "Dataset901_MetevoToy",
) -> Path:
    """Write a trained nnU-Net v2 model folder; returns its path.

    ``folder/<dataset_name>/nnUNetTrainer__nnUNetPlans__3d_fullres`` holds ``dataset.json``,
    ``plans.json`` and one ``fold_<f>/checkpoint_final.pth`` per fold (each trained ``steps``
    Adam steps from its own seed on :func:`toy_phantom` patches, normalised as the plans say).
    """
    import torch

    labels = dict(labels or {"background": 0, "liver": 1, "tumor": 2})
    model_dir = Path(folder) / dataset_name / "nnUNetTrainer__nnUNetPlans__3d_fullres"
    model_dir.mkdir(parents=True, exist_ok=True)
    plans = _plans(
        dataset_name, [float(s) for s in spacing_zyx], list(patch_size), list(transpose_forward)
    )
    dataset = {
        "channel_names": {"0": "CT"},
        "labels": labels,
        "numTraining": 8,
        "file_ending": ".nii.gz",
        "name": dataset_name,
        "description": "metevo toy model for tests (synthetic phantoms); not a model of anything real",
    }
    (model_dir / "plans.json").write_text(json.dumps(plans, indent=4), encoding="utf-8")
    (model_dir / "dataset.json").write_text(json.dumps(dataset, indent=4), encoding="utf-8")
    p = TOY_INTENSITY
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    network = _toy_network(plans, len(labels))
    optimiser = torch.optim.Adam(network.parameters(), lr=3e-2)
    weight = torch.tensor([0.2, 1.0] + [4.0] * (len(labels) - 2))
    for k, fold in enumerate(folds):
        # fold 0 is trained `steps` steps; each further fold continues it for steps // 10 more
        # (different weights for the ensemble at a tenth of the cost)
        fold_dir = model_dir / f"fold_{fold}"
        fold_dir.mkdir(exist_ok=True)
        losses = []
        for _ in range(steps if k == 0 else max(1, steps // 10)):
            hu, lab = toy_phantom((16, 16, 16), rng)
            x = (np.clip(hu, p["percentile_00_5"], p["percentile_99_5"]) - p["mean"]) / p["std"]
            x = torch.from_numpy(x[None, None]).float()
            y = torch.from_numpy(lab[None]).long()
            loss = torch.nn.functional.cross_entropy(network(x), y, weight=weight)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(np.float64(loss.item()))
        checkpoint = {
            "network_weights": network.state_dict(),
            "optimizer_state": optimiser.state_dict(),
            "grad_scaler_state": None,
            "logging": {
                "mean_fg_dice": [np.float64(0.5)],
                "ema_fg_dice": [np.float64(0.5)],
                "dice_per_class_or_region": [[np.float64(0.6), np.float64(0.4)]],
                "train_losses": losses,
                "val_losses": [np.float64(losses[-1])],
                "lrs": [1e-2] * steps,
                "epoch_start_timestamps": [0.0],
                "epoch_end_timestamps": [1.0],
            },
            "_best_ema": np.float64(0.5),
            "current_epoch": 1,
            "init_args": {
                "plans": plans,
                "configuration": "3d_fullres",
                "fold": int(fold),
                "dataset_json": dataset,
                "device": torch.device("cpu"),
            },
            "trainer_name": "nnUNetTrainer",
            "inference_allowed_mirroring_axes": tuple(mirror_axes),
        }
        torch.save(checkpoint, fold_dir / "checkpoint_final.pth")
    return model_dir


def _toy_network(plans: dict[str, Any], n_classes: int) -> Any:
    from metevo.segmentation._nnunet_plans import _locate

    arch = plans["configurations"]["3d_fullres"]["architecture"]
    kwargs = dict(arch["arch_kwargs"])
    for key in arch["_kw_requires_import"]:
        if kwargs.get(key) is not None:
            kwargs[key] = _locate(kwargs[key], "toy plans")
    cls = _locate(arch["network_class_name"], "toy plans")
    return cls(input_channels=1, num_classes=n_classes, deep_supervision=False, **kwargs)
