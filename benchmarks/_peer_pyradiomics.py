"""Run pyradiomics 3.1.0 (default settings and feature classes) on every lesion of a labelled
mask; print timings and features as JSON on the last line.

Runs inside the pyradiomics benchmark venv (Python 3.9, numpy<2; see bench_radiomics.py).
Usage: python _peer_pyradiomics.py IMAGE MASK N_LESIONS REPEATS
"""

import json
import logging
import sys
import time


def main():
    image_path, mask_path = sys.argv[1], sys.argv[2]
    n, repeats = int(sys.argv[3]), int(sys.argv[4])
    import radiomics
    import SimpleITK as sitk
    from radiomics import featureextractor

    radiomics.setVerbosity(logging.ERROR)
    extractor = featureextractor.RadiomicsFeatureExtractor()  # defaults: binWidth 25, no resampling
    image = sitk.ReadImage(image_path)
    mask = sitk.ReadImage(mask_path)
    times = []
    features = {}
    for _ in range(repeats):
        t0 = time.perf_counter()
        for label in range(1, n + 1):
            result = extractor.execute(image, mask, label=label)
            features[str(label)] = {
                k: float(v) for k, v in result.items() if k.startswith("original_")
            }
        times.append(time.perf_counter() - t0)
    print(
        "\nRESULT "
        + json.dumps(
            {
                "seconds": times,
                "n_lesions": n,
                "features": features,
                "version": radiomics.__version__,
            }
        )
    )


if __name__ == "__main__":
    main()
