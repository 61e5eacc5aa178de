"""pyradiomics 3.1.0 timings for ``bench_radiomics_scaling.py`` (runs in the pyradiomics venv).

Usage: python _peer_scaling_pyradiomics.py SPEC.json  (SPEC: cases, repeats, configs)
Configs: ``default`` (pyradiomics defaults: no resampling, bin width 25, shape, firstorder,
GLCM, GLRLM, GLSZM, GLDM, NGTDM), ``class:<name>`` (one feature class, same settings).
Prints ``RESULT {json}``: (wall, CPU) seconds per config, per case, per repeat (images read beforehand).
"""

import json
import logging
import sys

from _peer_timing import time_cases


def main():
    spec = json.load(open(sys.argv[1]))
    import radiomics
    import SimpleITK as sitk
    from radiomics import featureextractor

    radiomics.setVerbosity(logging.ERROR)
    cases = [(sitk.ReadImage(i), sitk.ReadImage(m)) for i, m in spec["cases"]]
    times = {}
    n_features = {}
    for config in spec["configs"]:
        extractor = featureextractor.RadiomicsFeatureExtractor()
        if config.startswith("class:"):
            extractor.disableAllFeatures()
            extractor.enableFeatureClassByName(config.split(":", 1)[1])
        out = extractor.execute(*cases[0])  # first call outside the timing
        times[config] = time_cases(
            lambda image, mask, extractor=extractor: extractor.execute(image, mask, label=1),
            cases,
            spec["repeats"],
        )
        n_features[config] = sum(1 for k in out if k.startswith("original_"))
    print(
        "\nRESULT "
        + json.dumps({"seconds": times, "n_features": n_features, "version": radiomics.__version__})
    )


if __name__ == "__main__":
    main()
