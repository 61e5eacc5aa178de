"""pictologics timings for ``bench_radiomics_scaling.py`` (runs in the pictologics venv).

Usage: python _peer_scaling_pictologics.py SPEC.json  (SPEC: cases, repeats, configs)
Configs: ``pyradiomics_like`` (no resampling, fixed bin size 25 HU from -1000 HU; intensity,
morphology, histogram and the texture families of pyradiomics: GLCM, GLRLM, GLSZM, NGTDM,
NGLDM; no spatial or local intensity), ``ct_default`` (1 mm linear resampling with mask
threshold 0.5 and rounding, re-segmentation [-1000, 400] HU, bins of 25 HU from -1000 HU, every
family with spatial and local intensity), ``family:<name>`` (one family, pyradiomics_like
settings). Prints ``RESULT {json}``: (wall, CPU) seconds per config, per case, per repeat.
"""

import json
import sys
import warnings

from _peer_timing import time_cases

warnings.filterwarnings("ignore")

PYRAD_FAMILIES = [
    "intensity",
    "morphology",
    "histogram",
    "glcm",
    "glrlm",
    "glszm",
    "ngtdm",
    "ngldm",
]


def _steps(config):
    disc = {
        "step": "discretise",
        "params": {"method": "FBS", "bin_width": 25.0, "min_val": -1000.0},
    }
    if config == "ct_default":
        return [
            {
                "step": "resample",
                "params": {
                    "new_spacing": [1.0, 1.0, 1.0],
                    "interpolation": "linear",
                    "mask_threshold": 0.5,
                    "round_intensities": True,
                },
            },
            {"step": "resegment", "params": {"range_min": -1000.0, "range_max": 400.0}},
            disc,
            {
                "step": "extract_features",
                "params": {
                    "families": ["intensity", "morphology", "texture", "histogram", "ivh"],
                    "include_spatial_intensity": True,
                    "include_local_intensity": True,
                },
            },
        ]
    families = PYRAD_FAMILIES if config == "pyradiomics_like" else [config.split(":", 1)[1]]
    return [disc, {"step": "extract_features", "params": {"families": families}}]


def main():
    spec = json.load(open(sys.argv[1]))
    import pictologics
    from pictologics import RadiomicsPipeline, load_image

    cases = [(load_image(i), load_image(m)) for i, m in spec["cases"]]
    pipe = RadiomicsPipeline()
    times = {}
    n_features = {}
    for config in spec["configs"]:
        pipe.add_config(config, _steps(config))
        out = pipe.run(*cases[0], config_names=[config])  # first call outside the timing
        times[config] = time_cases(
            lambda image, mask, config=config: pipe.run(image, mask, config_names=[config]),
            cases,
            spec["repeats"],
        )
        n_features[config] = int(len(out[config]))
    print(
        "\nRESULT "
        + json.dumps(
            {
                "seconds": times,
                "n_features": n_features,
                "version": pictologics.__version__,
                "threads": pictologics.get_num_threads(),
            }
        )
    )


if __name__ == "__main__":
    main()
