"""Train (and check) the demo segmentation model shipped in ``metevo/segmentation/models``.

The demo model is a small residual U-Net (MONAI ``UNet``, 150 k parameters) at 3 mm trained on synthetic patients of
:func:`metevo.datasets.make_synthetic_cohort` (``size="small"``), and evaluated on synthetic
patients generated with another seed. It is a demo, not a clinical model.

Reproduce it (the command and its time are stored in the card's ``training``)::

    nice python -m metevo.segmentation._demo --out src/metevo/segmentation/models \\
        --data /tmp/metevo-demo-data
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from metevo._version import __version__

#: The demo model's card before training (weights are added by training).
DEMO_SPEC = {
    "name": "demo",
    "architecture": "UNet",
    "arguments": {"channels": [8, 16, 32, 64], "strides": [2, 2, 2], "num_res_units": 1},
    "labels": {"background": 0, "liver": 1, "lesion": 2},
    "spacing_mm": [3.0, 3.0, 3.0],
    "window_hu": [-100.0, 200.0],
    "patch_size": [48, 48, 32],
    "orientation": "RAS",
    "liver_dilation_mm": 10.0,
    "min_lesion_ml": 0.1,
    "min_liver_ml": 50.0,
    "description": (
        "DEMO model, not for clinical use: a small U-Net trained on metevo's synthetic CT "
        "cohort only (make_synthetic_cohort, size 'small'). It shows the segmentation chain "
        "CT -> masks -> analyses end to end; real data need your own weights."
    ),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for demo.json + demo.pt")
    parser.add_argument("--data", type=Path, required=True, help="folder for the synthetic cohorts")
    parser.add_argument("--train-seed", type=int, default=1)
    parser.add_argument("--train-patients", type=int, default=10)
    parser.add_argument("--test-seed", type=int, default=2)
    parser.add_argument("--test-patients", type=int, default=4)
    parser.add_argument("--steps", type=int, default=2400)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--time-limit-s", type=float, default=None)
    args = parser.parse_args(argv)

    import metevo.datasets.datasets as ds
    from metevo.segmentation import (
        ModelCard,
        evaluate,
        evaluation_summary,
        load_model,
        segment,
        train,
    )

    cohorts = {}
    for kind, seed, n in (
        ("train", args.train_seed, args.train_patients),
        ("test", args.test_seed, args.test_patients),
    ):
        folder = args.data / f"{kind}-seed{seed}-n{n}-small"
        if not (folder / "manifest.csv").is_file():
            tick = time.perf_counter()
            ds.make_synthetic_cohort(folder, n_patients=n, seed=seed, size="small")
            print(f"{kind} cohort written in {time.perf_counter() - tick:.0f} s", flush=True)
        cohorts[kind] = folder
    command = "nice python -m metevo.segmentation._demo " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    info = {
        "command": command,
        "data": {
            "generator": "metevo.datasets.make_synthetic_cohort",
            "generator_metevo_version": __version__,
            "size": "small",
            "train_seed": args.train_seed,
            "train_patients": args.train_patients,
            "test_seed": args.test_seed,
            "test_patients": args.test_patients,
        },
    }
    model = train(
        cohorts["train"] / "manifest.csv",
        ModelCard.from_dict(dict(DEMO_SPEC)),
        args.out,
        steps=args.steps,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        seed=args.seed,
        device="cpu",
        num_threads=args.threads,
        time_limit_s=args.time_limit_s,
        training_info=info,
        verbose=True,
    )
    print(f"trained in {model.card.training['seconds']:.0f} s", flush=True)
    model = load_model(args.out / "demo.json")
    tick = time.perf_counter()
    pred = segment(
        cohorts["test"] / "manifest.csv", model, args.data / "test-predictions", overwrite=True
    )
    seconds = time.perf_counter() - tick
    table = evaluate(
        pred, cohorts["test"] / "manifest.csv", base_dir=args.data / "test-predictions"
    )
    summary = evaluation_summary(table)
    print(summary.to_string(index=False), flush=True)
    card = model.card
    card.training["heldout_evaluation"] = {
        "seed": args.test_seed,
        "patients": args.test_patients,
        "scans": int(len(pred)),
        "segment_seconds": round(seconds, 1),
        **{
            f"{row.structure}_{key}": round(float(getattr(row, key)), 4)
            for row in summary.itertuples()
            for key in ("global_dice", "mean_dice", "precision", "recall")
            if getattr(row, key) == getattr(row, key)  # skip NaN
        },
    }
    card.write(args.out / "demo.json")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
