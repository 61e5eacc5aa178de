"""Segmentation throughput: metevo's inference pipeline vs a plain MONAI baseline, same run.

Workload (issue 8): an abdominal CT of 512 x 512 x 200 voxels at 0.8 x 0.8 x 2.5 mm, stored in
RAS order (so both pipelines must reorient), SegResNet at 1.5 mm, one model, no test-time
augmentation, 25 % sliding-window overlap. The volume is built here (a body ellipse with fat,
muscle, liver, lesions, spine and noise), already decoded in host memory as int16 (file
decoding is excluded for both pipelines). The network's weights are random; a fixed intensity
head is added to its logits so that the masks look like a liver with lesions and the
post-processing does realistic work (the network's compute is unchanged).

- ``metevo``: :func:`metevo.segmentation._core.predict_labels`: reorientation and resampling
  on the device, bf16 autocast, ``--sw-batch-size`` windows per forward pass, Gaussian blending,
  chunked back-resampling of the logits on the device, argmax, lesions kept inside the dilated
  liver, small components removed.
- ``baseline``: MONAI as in its tutorials: ``Orientation`` + ``Spacing`` + ``ScaleIntensityRange``
  on the CPU, ``sliding_window_inference`` in fp32 with one window per pass (stitched on the
  CPU, where the input lives), the prediction inverted to the original grid by MONAI's
  ``Compose.inverse`` on the CPU, argmax.

Figures: CT volumes per minute (after one warm-up volume), seconds per volume, peak GPU memory
(``torch.cuda.max_memory_allocated``) and peak host RSS, and the liver/lesion Dice between the
two pipelines' masks (they should agree closely).

Runs with Python + numpy + torch + MONAI + nibabel only (no SimpleITK, scipy, pandas, network):
the metevo modules are loaded from ``src/`` without executing ``metevo/__init__``; metevo's core
needs neither nibabel nor scipy, MONAI's ``Orientation`` (baseline) needs nibabel. On a bare GPU
machine, from the repository root, with the two pure-Python wheels carried in ``.whl/``::

    pip install --no-deps .whl/monai-*.whl .whl/nibabel-*.whl   # about 3 + 3 MB
    python benchmarks/bench_segmentation.py        # full workload on CUDA

On a CPU (small input, it takes minutes otherwise)::

    python benchmarks/bench_segmentation.py --device cpu --shape 160 160 48 --repeats 2

Several small CTs per forward pass (``--multi-cts N``, instead of the workload above): N small
CTs (``--small-shape``, default 96 x 96 x 40 voxels at 1.5 x 1.5 x 2.4 mm, one 48 x 48 x 32
window of the bundled demo model at 3 mm) are segmented with the demo model one CT at a time
(:func:`predict_labels`, ``--sw-batch-size`` windows per pass: one here) and then several at
once (:func:`metevo.segmentation._multi.predict_many`: the windows of ``--cts-per-batch`` CTs in
flight share a forward pass; resampling and post-processing run in worker threads), same run,
same CTs (in memory). Figures: CT/min of both, the speed-up, and whether every mask is
identical::

    python benchmarks/bench_segmentation.py --device cpu --multi-cts 16 --threads 1
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time
import types
from pathlib import Path

import numpy as np
import torch

SRC = Path(__file__).resolve().parents[1] / "src"


def _import_core():
    """Import metevo's inference core without running metevo/__init__ (which needs pandas...)."""
    for name in ("metevo", "metevo.segmentation"):
        if name not in sys.modules:
            module = types.ModuleType(name)
            module.__path__ = [str(SRC / name.replace(".", "/"))]
            sys.modules[name] = module
    from metevo.segmentation import _card, _core, _model

    return _card, _core, _model


def multi_ct(args, core, model_mod, device) -> dict:
    """CT/min of the demo model on ``args.multi_cts`` small CTs: one at a time vs several."""
    from metevo.segmentation._multi import predict_many

    model = model_mod.load_model("demo")
    model.to(device)
    network = model.network.eval()
    cts = [make_ct(tuple(args.small_shape), tuple(args.small_spacing), seed=s) for s in range(args.multi_cts)]
    options = {"overlap": 0.25, "check_intensities": False}

    def one_at_a_time():
        return [
            core.predict_labels(
                network, v, a, model.card, device=device, sw_batch_size=args.sw_batch_size,
                **options,
            )
            for v, a in cts
        ]  # fmt: skip

    passes: list[int] = []

    def several():
        passes.clear()
        jobs = [(n, lambda v=v, a=a: (v, a, {})) for n, (v, a) in enumerate(cts)]
        found = dict(
            (key, result[0])
            for key, result, _ in predict_many(
                network, jobs, model.card, predict=core.predict_labels, device=device,
                batch_size=args.cts_per_batch, in_flight=args.cts_per_batch, passes=passes,
                **options,
            )
        )  # fmt: skip
        return [found[n] for n in range(len(cts))]

    figures = {}
    masks = {}
    for name, fn in (("one_ct_at_a_time", one_at_a_time), ("several_cts_per_pass", several)):
        fn()  # warm-up
        walls, cpus = [], []
        for _ in range(args.repeats):
            if device.type == "cuda":
                torch.cuda.synchronize()
            cpu0, tick = time.process_time(), time.perf_counter()
            masks[name] = fn()
            if device.type == "cuda":
                torch.cuda.synchronize()
            walls.append(time.perf_counter() - tick)
            cpus.append(time.process_time() - cpu0)
        wall = float(np.median(walls))
        figures[name] = {
            "seconds": wall,
            "cpu_seconds": float(np.median(cpus)),
            "ct_per_min": 60.0 * len(cts) / wall,
            "repeats": args.repeats,
        }
        print(f"{name:22s} {60.0 * len(cts) / wall:8.1f} CT/min  ({wall:.2f} s wall, "
              f"{np.median(cpus):.2f} s CPU for {len(cts)} CTs, median of {args.repeats})")
    pairs = list(zip(masks["one_ct_at_a_time"], masks["several_cts_per_pass"], strict=True))
    identical = all(np.array_equal(a, b) for a, b in pairs)
    figures["voxels_differing"] = int(sum(int((a != b).sum()) for a, b in pairs))
    figures["voxels_total"] = int(sum(a.size for a, _ in pairs))
    figures["cts_identical"] = int(sum(np.array_equal(a, b) for a, b in pairs))
    figures["speedup"] = (
        figures["one_ct_at_a_time"]["seconds"] / figures["several_cts_per_pass"]["seconds"]
    )
    figures["masks_identical"] = identical
    figures["windows_per_pass_several"] = sorted(set(passes))
    figures["workload"] = {
        "n_cts": len(cts), "shape": list(args.small_shape), "spacing": list(args.small_spacing),
        "model": "demo", "sw_batch_size_one_at_a_time": args.sw_batch_size,
        "cts_per_batch": args.cts_per_batch,
    }  # fmt: skip
    print(f"speed-up {figures['speedup']:.2f}x; masks identical: {identical} "
          f"({figures['cts_identical']} of {len(cts)} CTs; {figures['voxels_differing']} of "
          f"{figures['voxels_total']} voxels differ); windows per pass "
          f"{figures['windows_per_pass_several']}")
    return figures


def make_ct(shape, spacing, *, seed=0):
    """Synthetic abdominal CT (HU, int16, (x, y, z) order) stored RAS, and its LPS affine."""
    rng = np.random.default_rng(seed)
    nx, ny, nz = shape
    sx, sy, sz = spacing
    # RAS storage: index i increases towards the patient's right (-x in LPS), j anterior (-y)
    affine = np.diag([-sx, -sy, sz, 1.0])
    affine[:3, 3] = [sx * (nx - 1) / 2, sy * (ny - 1) / 2, -sz * (nz - 1) / 2]
    x = (np.arange(nx) - (nx - 1) / 2)[:, None, None] * -sx  # LPS mm
    y = (np.arange(ny) - (ny - 1) / 2)[None, :, None] * -sy
    z = (np.arange(nz) - (nz - 1) / 2)[None, None, :] * sz
    x, y, z = np.broadcast_arrays(x, y, z)
    hu = np.full(shape, -1000.0, np.float32)
    body = (x / 170) ** 2 + (y / 120) ** 2 <= 1
    hu[body] = -100  # fat
    muscle = body & ((x / 160) ** 2 + (y / 110) ** 2 > 0.8)
    hu[muscle] = 50
    # liver on the patient's right (-x in LPS), anterior-ish
    liver = ((x + 70) / 85) ** 2 + ((y + 10) / 70) ** 2 + ((z - 20) / 90) ** 2 <= 1
    hu[liver] = 60
    n_lesions = 6
    for _ in range(n_lesions):
        c = np.array([-70, -10, 20]) + rng.uniform(-40, 40, 3) * [1, 0.8, 1.2]
        r = rng.uniform(6, 20)
        lesion = liver & (((x - c[0]) ** 2 + (y - c[1]) ** 2 + (z - c[2]) ** 2) <= r * r)
        hu[lesion] = 25
    spine = ((x - 0) / 18) ** 2 + ((y - 60) / 18) ** 2 <= 1
    hu[spine] = 700
    hu += rng.normal(0, 12, size=shape).astype(np.float32)
    return np.clip(hu, -1024, 3071).astype(np.int16), affine


class WithIntensityHead(torch.nn.Module):
    """Random SegResNet logits (scaled down) plus a fixed liver/lesion intensity head."""

    def __init__(self, net, window):
        super().__init__()
        self.net = net
        lo, hi = window
        self.to_x = lambda hu: (hu - lo) / (hi - lo)

    def forward(self, x):
        out = self.net(x)
        liver = 40 * torch.minimum(x - self.to_x(40.0), self.to_x(90.0) - x)
        lesion = 40 * torch.minimum(x - self.to_x(5.0), self.to_x(40.0) - x)
        head = torch.cat([torch.zeros_like(x), liver, lesion], 1)
        return 0.01 * out + head.to(out.dtype)


def baseline(network, volume, affine, card, device):
    """Plain MONAI inference: CPU transforms, fp32, one window per pass, CPU inversion."""
    from monai.data import MetaTensor
    from monai.inferers import sliding_window_inference
    from monai.transforms import Compose, Orientation, ScaleIntensityRange, Spacing

    ras_affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine  # MONAI works in RAS
    image = MetaTensor(torch.from_numpy(volume.astype(np.float32))[None], affine=ras_affine)
    pre = Compose(
        [
            Orientation(axcodes="RAS", labels=(("L", "R"), ("P", "A"), ("I", "S"))),
            Spacing(pixdim=card.spacing_mm, mode="bilinear"),
            ScaleIntensityRange(card.window_hu[0], card.window_hu[1], 0.0, 1.0, clip=True),
        ]
    )
    x = pre(image)
    with torch.inference_mode():
        logits = sliding_window_inference(
            x[None], card.patch_size, 1, network, overlap=0.25, sw_device=device
        )
    logits = logits[0].cpu()
    logits.applied_operations = x.applied_operations
    logits.affine = x.affine
    restored = pre.inverse(logits)
    return np.asarray(restored.argmax(0).to(torch.uint8))


def dice(a, b):
    s = a.sum() + b.sum()
    return float(2 * np.logical_and(a, b).sum() / s) if s else 1.0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--shape", type=int, nargs=3, default=(512, 512, 200))
    parser.add_argument("--spacing", type=float, nargs=3, default=(0.8, 0.8, 2.5))
    parser.add_argument("--model-spacing", type=float, default=1.5)
    parser.add_argument("--patch", type=int, nargs=3, default=(128, 128, 128))
    parser.add_argument("--init-filters", type=int, default=16)
    parser.add_argument("--sw-batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--baseline-repeats", type=int, default=None)
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (CPU)")
    parser.add_argument("--multi-cts", type=int, default=0, help="several-CT mode: N small CTs")
    parser.add_argument("--small-shape", type=int, nargs=3, default=(96, 96, 40))
    parser.add_argument("--small-spacing", type=float, nargs=3, default=(1.5, 1.5, 2.4))
    parser.add_argument("--cts-per-batch", type=int, default=8)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    _card, core, model_mod = _import_core()
    import monai

    device = torch.device(args.device)
    if args.multi_cts:
        if args.sw_batch_size == parser.get_default("sw_batch_size"):
            args.sw_batch_size = 4  # metevo segment's default
        figures = {"device": str(device), "torch": torch.__version__, "monai": monai.__version__}
        figures["multi_ct"] = multi_ct(args, core, model_mod, device)
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2))
        return figures
    torch.manual_seed(0)
    card = _card.ModelCard(
        name="bench",
        architecture="SegResNet",
        arguments={"init_filters": args.init_filters},
        labels={"background": 0, "liver": 1, "lesion": 2},
        spacing_mm=(args.model_spacing,) * 3,
        window_hu=(-100, 250),
        patch_size=tuple(args.patch),
    )
    network = WithIntensityHead(model_mod.build_network(card), card.window_hu).to(device).eval()
    volume, affine = make_ct(tuple(args.shape), tuple(args.spacing))
    shape_model = core.model_shape(args.shape, args.spacing, card.spacing_mm)
    print(
        f"device {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else platform.processor() or platform.machine()}), "
        f"torch {torch.__version__}, monai {monai.__version__}, python {platform.python_version()}"
    )
    print(
        f"volume {tuple(args.shape)} at {tuple(args.spacing)} mm -> model grid {shape_model} at "
        f"{args.model_spacing} mm; SegResNet init_filters={args.init_filters}, patch "
        f"{tuple(args.patch)}, overlap 0.25"
    )
    results = {"device": str(device), "shape": list(args.shape), "spacing": list(args.spacing)}

    def run(name, fn, repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        out = fn()  # warm-up (cudnn autotune, allocator)
        times = []
        for _ in range(repeats):
            if device.type == "cuda":
                torch.cuda.synchronize()
            tick = time.perf_counter()
            out = fn()
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - tick)
        sec = float(np.median(times))
        peak_gpu = (
            torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")
        )
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        results[name] = {
            "seconds_per_ct": sec,
            "ct_per_min": 60.0 / sec,
            "peak_gpu_gib": peak_gpu,
            "peak_rss_gib_so_far": rss,
            "repeats": repeats,
        }
        print(
            f"{name:9s} {60.0 / sec:8.2f} CT/min  {sec:7.3f} s/CT (median of {repeats})  "
            f"peak GPU {peak_gpu:6.2f} GiB  peak host RSS so far {rss:6.2f} GiB"
        )
        return out

    timings = {}

    def metevo_run():
        return core.predict_labels(
            network,
            volume,
            affine,
            card,
            device=device,
            sw_batch_size=args.sw_batch_size,
            overlap=0.25,
            precision="auto",
            check_intensities=False,
            timings=timings,
        )

    ours = run("metevo", metevo_run, args.repeats)
    n = args.repeats + 1
    print("          stages (mean s): " + ", ".join(f"{k} {v / n:.3f}" for k, v in timings.items()))
    results["metevo"]["stages_s"] = {k: v / n for k, v in timings.items()}
    if not args.skip_baseline:
        reps = args.baseline_repeats or max(1, args.repeats // 2)
        base = run("baseline", lambda: baseline(network, volume, affine, card, device), reps)
        speedup = results["baseline"]["seconds_per_ct"] / results["metevo"]["seconds_per_ct"]
        results["speedup"] = speedup
        agree = {
            "liver_dice": dice(ours == 1, base == 1),
            "lesion_dice": dice(ours == 2, base == 2),
        }
        results["agreement"] = agree
        print(
            f"speed-up {speedup:.1f}x; masks agree: liver Dice {agree['liver_dice']:.3f}, lesion "
            f"Dice {agree['lesion_dice']:.3f} (metevo post-processes, the baseline does not)"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
