"""MIRP timings for ``bench_radiomics_scaling.py`` (runs in the MIRP venv).

Usage: python _peer_scaling_mirp.py SPEC.json  (SPEC: cases, repeats, configs)
Config ``ct_default``: metevo's ct_default in MIRP (1 mm trilinear, mask >= 0.5, no
anti-aliasing, re-segmentation [-1000, 400] HU, bins of 25 HU, IVH on 1 HU bins, every IBSI
family in 3D, GLCM/GLRLM averaged and merged). Prints ``RESULT {json}``: (wall, CPU)
seconds per config, per case, per repeat.
"""

import json
import sys
import warnings

from _peer_mirp import mirp_settings
from _peer_timing import time_cases

warnings.filterwarnings("ignore")


def main():
    spec = json.load(open(sys.argv[1]))
    from importlib.metadata import version

    from mirp import extract_features

    times = {}
    for config in spec["configs"]:
        settings = mirp_settings(config)

        def run(image, mask, settings=settings):
            extract_features(
                image=image,
                mask=mask,
                roi_name="region_1",
                export_features=True,
                write_features=False,
                **settings,
            )

        run(*spec["cases"][0])  # first call outside the timing (MIRP's lazy imports)
        times[config] = time_cases(run, spec["cases"], spec["repeats"])
    print("\nRESULT " + json.dumps({"seconds": times, "version": version("mirp")}))


if __name__ == "__main__":
    main()
