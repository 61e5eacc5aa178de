"""metevo vs nnU-Net's own predictor on the same CTs and the same nnU-Net v2 model, same run.

Both pipelines go from CT files on disk to label files on disk:

- ``nnunet``: ``nnUNetPredictor.predict_from_files`` (nnU-Net's ``nnUNetv2_predict``: background
  processes for preprocessing and export, ``--npp`` / ``--nps``), Gaussian sliding window, step 0.5,
  mirroring as the checkpoint allows, the folds ensembled;
- ``metevo``: ``metevo.segmentation.segment(manifest, "nnunet:FOLDER")``: the same steps
  re-implemented (tiles batched, logits resampling + argmax on the device, reading/preprocessing of
  the next CT and writing of the masks in threads), plus metevo's provenance and run-once log.

Reported: CT per minute (wall), process CPU seconds (children included), and the Dice between the
two pipelines' masks per label and CT. Then the up-to-date rerun of metevo (nothing to do).

Default workload: the real example CT (``../shared/data/ct_example/example_ct.nii.gz``, 122 x 101 x
112 at 3 mm) written ``--n-ct`` times with different noise, and the toy nnU-Net model of
:func:`metevo.segmentation._toy.make_toy_nnunet_model` (2 folds, patch 24^3), or ``--model FOLDER``
(any trained nnU-Net v2 folder, e.g. a TotalSegmentator one) and ``--ct FILE``.

    python benchmarks/bench_segmentation_nnunet.py --device cpu --n-ct 4 --threads 2 \
        --nnunet-api sequential
    python benchmarks/bench_segmentation_nnunet.py --device cuda --n-ct 20 --model FOLDER

Needs ``pip install -e '.[segmentation,nnunet]'`` (on a GPU box too).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch

ROOT = Path(__file__).resolve().parents[1]


def cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def write_cts(source: Path, folder: Path, n: int, seed: int) -> list[Path]:
    image = sitk.ReadImage(str(source))
    array = sitk.GetArrayFromImage(image).astype(np.float32)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        noisy = array + rng.normal(0, 5, array.shape).astype(np.float32)
        out = sitk.GetImageFromArray(np.round(noisy).astype(np.int16))
        out.CopyInformation(image)
        path = folder / f"ct{i:03d}_0000.nii.gz"
        sitk.WriteImage(out, str(path))
        paths.append(path)
    return paths


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--n-ct", type=int, default=4)
    parser.add_argument(
        "--ct", type=Path, default=ROOT.parent / "shared/data/ct_example/example_ct.nii.gz"
    )
    parser.add_argument("--model", type=Path, default=None, help="trained nnU-Net v2 folder")
    parser.add_argument("--folds", nargs="*", default=None)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (both pipelines)")
    parser.add_argument(
        "--nnunet-api",
        choices=["files", "sequential"],
        default="files",
        help="nnU-Net's predict_from_files (worker processes, its CLI) or "
        "predict_from_files_sequential (one process: fairer on a small, busy CPU)",
    )
    parser.add_argument("--npp", type=int, default=2, help="nnU-Net preprocessing processes")
    parser.add_argument("--nps", type=int, default=2, help="nnU-Net export processes")
    parser.add_argument("--batch-size", type=int, default=8, help="metevo tiles per forward")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON")
    args = parser.parse_args()

    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    from metevo.segmentation import segment
    from metevo.segmentation._toy import make_toy_nnunet_model

    torch.set_num_threads(args.threads)
    work = args.work or Path(tempfile.mkdtemp(prefix="metevo-bench-nnunet-"))
    work.mkdir(parents=True, exist_ok=True)
    model = args.model or make_toy_nnunet_model(work / "model", folds=(0, 1))
    folds = args.folds or sorted(p.name[5:] for p in model.glob("fold_*"))
    (work / "ct").mkdir(exist_ok=True)
    cts = write_cts(args.ct, (work / "ct").resolve(), args.n_ct, args.seed)
    device = torch.device(args.device)

    # -- nnU-Net's predictor ------------------------------------------------------------------
    ref_out = work / "nnunet"
    shutil.rmtree(ref_out, ignore_errors=True)
    ref_out.mkdir()
    predictor = nnUNetPredictor(
        tile_step_size=0.5,
        use_gaussian=True,
        use_mirroring=True,
        perform_everything_on_device=device.type == "cuda",
        device=device,
        verbose=False,
        verbose_preprocessing=False,
        allow_tqdm=False,
    )
    predictor.initialize_from_trained_model_folder(str(model), use_folds=tuple(folds))
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    inputs = [[str(p)] for p in cts]
    outputs = [str(ref_out / p.name.replace("_0000.nii.gz", "")) for p in cts]
    if args.nnunet_api == "files":
        predictor.predict_from_files(
            inputs,
            outputs,
            save_probabilities=False,
            overwrite=True,
            num_processes_preprocessing=args.npp,
            num_processes_segmentation_export=args.nps,
        )
    else:
        predictor.predict_from_files_sequential(
            inputs, outputs, save_probabilities=False, overwrite=True
        )
    nn_wall, nn_cpu = time.perf_counter() - t0, cpu_seconds() - cpu0

    # -- metevo ---------------------------------------------------------------------------------
    import pandas as pd

    manifest = pd.DataFrame(
        {
            "patient_id": [f"P{i:03d}" for i in range(len(cts))],
            "timepoint": "V0",
            "image": [str(p) for p in cts],
        }
    )
    out = work / "metevo"
    shutil.rmtree(out, ignore_errors=True)
    options = {"folds": folds}
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        new = segment(
            manifest,
            f"nnunet:{model}",
            out,
            device=args.device,
            batch_size=args.batch_size,
            model_options=options,
        )
    mt_wall, mt_cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    t0 = time.perf_counter()
    again = segment(manifest, f"nnunet:{model}", out, device=args.device, model_options=options)
    rerun = time.perf_counter() - t0
    assert again.attrs["log"].status.eq("reused").all()

    # -- agreement ------------------------------------------------------------------------------
    rows = []
    for i, p in enumerate(cts):
        ref = sitk.GetArrayFromImage(sitk.ReadImage(str(ref_out / p.name.replace("_0000", ""))))
        liver = sitk.GetArrayFromImage(sitk.ReadImage(str(out / new.liver_mask[i]))) > 0
        lesion = sitk.GetArrayFromImage(sitk.ReadImage(str(out / new.lesion_mask[i]))) > 0
        rows.append(
            {
                "ct": p.name,
                "liver_dice": dice(liver, ref >= 1),
                "lesion_dice": dice(lesion, ref == 2),
                "liver_voxels_nnunet": int((ref >= 1).sum()),
                "lesion_voxels_nnunet": int((ref == 2).sum()),
            }
        )
    result = {
        "command": "python benchmarks/bench_segmentation_nnunet.py "
        + " ".join(
            f"--{k.replace('_', '-')} {v}"
            for k, v in vars(args).items()
            if v is not None and k not in ("work", "out")
        ),
        "machine": {
            "platform": platform.platform(),
            "torch": torch.__version__,
            "device": str(device),
            "threads": args.threads,
        },
        "workload": {
            "ct": str(args.ct),
            "n_ct": len(cts),
            "shape_xyz": list(sitk.ReadImage(str(cts[0])).GetSize()),
            "model": str(model),
            "folds": folds,
        },
        "nnunet": {
            "wall_s": round(nn_wall, 2),
            "cpu_s": round(nn_cpu, 2),
            "ct_per_min": round(60 * len(cts) / nn_wall, 2),
        },
        "metevo": {
            "wall_s": round(mt_wall, 2),
            "cpu_s": round(mt_cpu, 2),
            "ct_per_min": round(60 * len(cts) / mt_wall, 2),
            "rerun_up_to_date_s": round(rerun, 3),
        },
        "speedup_wall": round(nn_wall / mt_wall, 2),
        "speedup_cpu": round(nn_cpu / mt_cpu, 2),
        "agreement": {
            "min_liver_dice": min(r["liver_dice"] for r in rows),
            "min_lesion_dice": min(r["lesion_dice"] for r in rows),
            "per_ct": rows,
        },
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
