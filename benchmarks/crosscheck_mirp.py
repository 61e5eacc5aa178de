"""Cross-check metevo's radiomic features against MIRP (an independent IBSI implementation).

Same CT-like lesions (``radiomics_phantom_ct.py``, 3 lesions of 10-43 mm), same settings:
fixed bin size 25 HU from -1000 HU, re-segmentation [-1000, 400] HU, IVH in 1 HU bins, GLCM
distance 1, 3D texture; once without interpolation and once with metevo's ``ct_default``
interpolation to 1 mm (trilinear image, trilinear mask >= 0.5, no anti-aliasing). MIRP runs in
its own venv (see ``bench_radiomics.py``). Prints, per feature, the largest relative
difference over the lesions and a summary; ``--out`` writes it as JSON.

Usage::

    .venv/bin/python benchmarks/crosscheck_mirp.py [--mirp-json none=PATH ct_default=PATH] [--out F]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _mirp_names import mirp_name  # noqa: E402
from bench_radiomics import MIRP, _peer  # noqa: E402
from radiomics_phantom_ct import write_case  # noqa: E402


def compare(mirp: dict, image: Path, mask: Path, resample: bool) -> pd.DataFrame:
    from metevo.radiomics import feature_catalog, radiomic_features

    ours = radiomic_features(image, mask, resample=resample).set_index("lesion_id")
    rows = []
    for label, feats in mirp["features"].items():
        for r in feature_catalog().itertuples():
            name = mirp_name(r.reference_tag, r.family)
            theirs = feats.get(name, np.nan)
            mine = float(ours.loc[int(label), r.feature])
            rel = abs(mine - theirs) / max(abs(theirs), 1e-12)
            rows.append((r.feature, r.family, int(label), mine, theirs, rel))
    return pd.DataFrame(rows, columns=["feature", "family", "lesion", "metevo", "mirp", "rel_diff"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mirp-json", nargs="*", default=[], help="PRESET=PATH of saved MIRP runs")
    parser.add_argument("--data", type=Path, default=HERE.parent / ".bench" / "data")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    saved = dict(item.split("=", 1) for item in args.mirp_json)
    image, mask = write_case(args.data, 3)
    summary = {}
    for preset, resample in (("none", False), ("ct_default", True)):
        if preset in saved:
            mirp = json.loads(Path(saved[preset]).read_text())
        else:
            mirp = _peer(MIRP, "_peer_mirp.py", image, mask, 3, 1, preset)
        table = compare(mirp, image, mask, resample)
        worst = table.groupby("feature")["rel_diff"].max()
        family = table.groupby("family")["rel_diff"].median()
        summary[preset] = {
            "n_features": int(worst.size),
            "within_1pct": int((worst <= 0.01).sum()),
            "within_5pct": int((worst <= 0.05).sum()),
            "over_5pct": {
                k: round(float(v), 4) for k, v in worst[worst > 0.05].sort_values().items()
            },
            "median_rel_diff_by_family": {k: float(f"{v:.3g}") for k, v in family.items()},
        }
        print(f"\n== {preset}: interpolation {'1 mm' if resample else 'none'}")
        print(json.dumps(summary[preset], indent=1))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
