"""MIRP timings for ``bench_radiomics_scaling.py`` (runs in the MIRP venv).

Usage: python _peer_scaling_mirp.py SPEC.json  (SPEC: cases, repeats, configs)
Config ``ct_default``: metevo's ct_default in MIRP (1 mm trilinear, mask >= 0.5, no
anti-aliasing, re-segmentation [-1000, 400] HU, bins of 25 HU, IVH on 1 HU bins, every IBSI
family in 3D, GLCM/GLRLM averaged and merged). Prints ``RESULT {json}``: (wall, CPU)
seconds per config, per case, per repeat.
"""

import json
import sys
import time
import warnings

warnings.filterwarnings("ignore")

SETTINGS = dict(
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
    new_spacing=1.0,
    spline_order=1,
    anti_aliasing=False,
    roi_spline_order=1,
    roi_interpolation_mask_inclusion_threshold=0.5,
)


def main():
    spec = json.load(open(sys.argv[1]))
    from importlib.metadata import version

    from mirp import extract_features

    times = {}
    for config in spec["configs"]:
        times[config] = []
        for image, mask in spec["cases"]:
            runs = []
            for _ in range(spec["repeats"]):
                c0 = time.process_time()
                t0 = time.perf_counter()
                extract_features(
                    image=image,
                    mask=mask,
                    roi_name="region_1",
                    export_features=True,
                    write_features=False,
                    **SETTINGS,
                )
                runs.append((time.perf_counter() - t0, time.process_time() - c0))
            times[config].append(runs)
    print("\nRESULT " + json.dumps({"seconds": times, "version": version("mirp")}))


if __name__ == "__main__":
    main()
