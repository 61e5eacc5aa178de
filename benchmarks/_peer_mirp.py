"""Run MIRP on an image and a labelled lesion mask; print timings and features as JSON.

Runs inside the MIRP benchmark venv (see bench_radiomics.py), not in metevo's environment.
Usage: python _peer_mirp.py IMAGE MASK N_LESIONS REPEATS PRESET
"""

import json
import sys
import time
import warnings

import numpy as np

warnings.filterwarnings("ignore")


def mirp_settings(preset):
    """MIRP settings matching metevo's (``preset`` ``"ct_default"`` adds the interpolation)."""
    settings = dict(
        base_feature_families="all",
        base_discretisation_method="fixed_bin_size",
        base_discretisation_bin_width=25.0,
        ivh_discretisation_method="fixed_bin_size",
        ivh_discretisation_bin_width=1.0,
        glcm_spatial_method=["3d_average", "3d_volume_merge"],
        glrlm_spatial_method=["3d_average", "3d_volume_merge"],
        glszm_spatial_method="3d",
        gldzm_spatial_method="3d",
        ngtdm_spatial_method="3d",
        ngldm_spatial_method="3d",
        resegmentation_intensity_range=[-1000.0, 400.0],
        image_modality="CT",
    )
    if preset == "ct_default":
        # IBSI-style interpolation as in metevo: trilinear image, trilinear mask >= 0.5, no
        # anti-aliasing filter (MIRP applies one by default)
        settings.update(
            new_spacing=1.0,
            spline_order=1,
            anti_aliasing=False,
            roi_spline_order=1,
            roi_interpolation_mask_inclusion_threshold=0.5,
        )
    return settings


def main():
    image, mask, n, repeats, preset = (
        sys.argv[1],
        sys.argv[2],
        int(sys.argv[3]),
        int(sys.argv[4]),
        sys.argv[5],
    )
    from mirp import extract_features

    settings = mirp_settings(preset)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = extract_features(
            image=image,
            mask=mask,
            roi_name=[f"region_{i}" for i in range(1, n + 1)],
            export_features=True,
            write_features=False,
            **settings,
        )
        times.append(time.perf_counter() - t0)
        tables = out if isinstance(out, list) else [out]
    features = {}
    rows = [row for table in tables for _, row in table.iterrows()]
    for row in rows:
        label = str(row.get("image_mask_label", "")).replace("region_", "")
        features[label] = {
            k: float(v)
            for k, v in row.items()
            if isinstance(v, (int, float, np.floating, np.integer)) and not isinstance(v, bool)
        }
    print("\nRESULT " + json.dumps({"seconds": times, "n_lesions": n, "features": features}))


if __name__ == "__main__":
    main()
