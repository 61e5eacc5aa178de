"""Cross-check metevo against pyradiomics 3.1.0 on the features both define the same way.

Same 3 CT-like lesions as ``crosscheck_mirp.py``; pyradiomics' defaults (no interpolation, fixed
bin width 25 HU) and metevo with ``resample=False``. pyradiomics numbers its bins from the ROI's
lowest bin and metevo from -1000 HU, so only features that do not depend on the grey levels'
absolute values are compared (morphology, first order, and the texture features invariant to a
shift of all grey levels). pyradiomics' kurtosis is not the excess kurtosis (+3), and its
entropies add a 2.2e-16 guard. Runs pyradiomics in its own venv (see ``bench_radiomics.py``).

Usage::

    .venv/bin/python benchmarks/crosscheck_pyradiomics.py [--out F]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_radiomics import PYRADIOMICS, _peer  # noqa: E402
from radiomics_phantom_ct import write_case  # noqa: E402

# pyradiomics name (without "original_") -> (metevo column, offset added to metevo)
PAIRS = {
    "shape_MeshVolume": ("morph_volume_mm3", 0.0),
    "shape_VoxelVolume": ("morph_vol_approx_mm3", 0.0),
    "shape_SurfaceArea": ("morph_area_mesh_mm2", 0.0),
    "shape_SurfaceVolumeRatio": ("morph_av_per_mm", 0.0),
    "shape_Sphericity": ("morph_sphericity", 0.0),
    "shape_Maximum3DDiameter": ("morph_diam_mm", 0.0),
    "shape_MajorAxisLength": ("morph_pca_maj_axis_mm", 0.0),
    "shape_MinorAxisLength": ("morph_pca_min_axis_mm", 0.0),
    "shape_LeastAxisLength": ("morph_pca_least_axis_mm", 0.0),
    "shape_Elongation": ("morph_pca_elongation", 0.0),
    "shape_Flatness": ("morph_pca_flatness", 0.0),
    "firstorder_Mean": ("stat_mean", 0.0),
    "firstorder_Variance": ("stat_var", 0.0),
    "firstorder_Skewness": ("stat_skew", 0.0),
    "firstorder_Kurtosis": ("stat_kurt", 3.0),
    "firstorder_Median": ("stat_median", 0.0),
    "firstorder_Minimum": ("stat_min", 0.0),
    "firstorder_Maximum": ("stat_max", 0.0),
    "firstorder_10Percentile": ("stat_p10", 0.0),
    "firstorder_90Percentile": ("stat_p90", 0.0),
    "firstorder_InterquartileRange": ("stat_iqr", 0.0),
    "firstorder_MeanAbsoluteDeviation": ("stat_mad", 0.0),
    "firstorder_RobustMeanAbsoluteDeviation": ("stat_rmad", 0.0),
    "firstorder_RootMeanSquared": ("stat_rms", 0.0),
    "firstorder_Energy": ("stat_energy", 0.0),
    "firstorder_Entropy": ("ih_entropy", 0.0),
    "firstorder_Uniformity": ("ih_uniformity", 0.0),
    "glcm_Contrast": ("cm_contrast_3d_avg", 0.0),
    "glcm_Correlation": ("cm_corr_3d_avg", 0.0),
    "glcm_JointEnergy": ("cm_energy_3d_avg", 0.0),
    "glcm_JointEntropy": ("cm_joint_entr_3d_avg", 0.0),
    "glcm_Idm": ("cm_inv_diff_mom_3d_avg", 0.0),
    "glcm_Id": ("cm_inv_diff_3d_avg", 0.0),
    "glcm_ClusterTendency": ("cm_clust_tend_3d_avg", 0.0),
    "glcm_ClusterShade": ("cm_clust_shade_3d_avg", 0.0),
    "glcm_ClusterProminence": ("cm_clust_prom_3d_avg", 0.0),
    "glcm_DifferenceAverage": ("cm_diff_avg_3d_avg", 0.0),
    "glcm_DifferenceEntropy": ("cm_diff_entr_3d_avg", 0.0),
    "glcm_DifferenceVariance": ("cm_diff_var_3d_avg", 0.0),
    "glcm_SumEntropy": ("cm_sum_entr_3d_avg", 0.0),
    "glcm_MaximumProbability": ("cm_joint_max_3d_avg", 0.0),
    "glcm_Imc1": ("cm_info_corr1_3d_avg", 0.0),
    "glcm_Imc2": ("cm_info_corr2_3d_avg", 0.0),
    "glcm_InverseVariance": ("cm_inv_var_3d_avg", 0.0),
    "glcm_SumSquares": ("cm_joint_var_3d_avg", 0.0),
    "glrlm_ShortRunEmphasis": ("rlm_sre_3d_avg", 0.0),
    "glrlm_LongRunEmphasis": ("rlm_lre_3d_avg", 0.0),
    "glrlm_GrayLevelNonUniformity": ("rlm_glnu_3d_avg", 0.0),
    "glrlm_GrayLevelNonUniformityNormalized": ("rlm_glnu_norm_3d_avg", 0.0),
    "glrlm_RunLengthNonUniformity": ("rlm_rlnu_3d_avg", 0.0),
    "glrlm_RunLengthNonUniformityNormalized": ("rlm_rlnu_norm_3d_avg", 0.0),
    "glrlm_RunPercentage": ("rlm_r_perc_3d_avg", 0.0),
    "glrlm_GrayLevelVariance": ("rlm_gl_var_3d_avg", 0.0),
    "glrlm_RunVariance": ("rlm_rl_var_3d_avg", 0.0),
    "glrlm_RunEntropy": ("rlm_rl_entr_3d_avg", 0.0),
    "glszm_SmallAreaEmphasis": ("szm_sze_3d", 0.0),
    "glszm_LargeAreaEmphasis": ("szm_lze_3d", 0.0),
    "glszm_GrayLevelNonUniformity": ("szm_glnu_3d", 0.0),
    "glszm_GrayLevelNonUniformityNormalized": ("szm_glnu_norm_3d", 0.0),
    "glszm_SizeZoneNonUniformity": ("szm_zsnu_3d", 0.0),
    "glszm_SizeZoneNonUniformityNormalized": ("szm_zsnu_norm_3d", 0.0),
    "glszm_ZonePercentage": ("szm_z_perc_3d", 0.0),
    "glszm_GrayLevelVariance": ("szm_gl_var_3d", 0.0),
    "glszm_ZoneVariance": ("szm_zs_var_3d", 0.0),
    "glszm_ZoneEntropy": ("szm_zs_entr_3d", 0.0),
    "gldm_SmallDependenceEmphasis": ("ngl_lde_3d", 0.0),
    "gldm_LargeDependenceEmphasis": ("ngl_hde_3d", 0.0),
    "gldm_GrayLevelNonUniformity": ("ngl_glnu_3d", 0.0),
    "gldm_DependenceNonUniformity": ("ngl_dcnu_3d", 0.0),
    "gldm_DependenceNonUniformityNormalized": ("ngl_dcnu_norm_3d", 0.0),
    "gldm_GrayLevelVariance": ("ngl_gl_var_3d", 0.0),
    "gldm_DependenceVariance": ("ngl_dc_var_3d", 0.0),
    "gldm_DependenceEntropy": ("ngl_dc_entr_3d", 0.0),
    "ngtdm_Coarseness": ("ngt_coarseness_3d", 0.0),
    "ngtdm_Contrast": ("ngt_contrast_3d", 0.0),
    "ngtdm_Busyness": ("ngt_busyness_3d", 0.0),
    "ngtdm_Complexity": ("ngt_complexity_3d", 0.0),
    "ngtdm_Strength": ("ngt_strength_3d", 0.0),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=HERE.parent / ".bench" / "data")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    from metevo.radiomics import radiomic_features

    image, mask = write_case(args.data, 3)
    theirs = _peer(PYRADIOMICS, "_peer_pyradiomics.py", image, mask, 3, 1)["features"]
    ours = radiomic_features(image, mask, resample=False).set_index("lesion_id")
    rows = []
    for label, feats in theirs.items():
        for name, (column, offset) in PAIRS.items():
            value = feats[f"original_{name}"]
            mine = float(ours.loc[int(label), column]) + offset
            rows.append(
                (name, column, int(label), mine, value, abs(mine - value) / max(abs(value), 1e-12))
            )
    table = pd.DataFrame(
        rows,
        columns=[
            "pyradiomics",
            "metevo",
            "lesion",
            "metevo_value",
            "pyradiomics_value",
            "rel_diff",
        ],
    )
    worst = table.groupby("pyradiomics")["rel_diff"].max().sort_values()
    summary = {
        "n_features": int(worst.size),
        "within_1pct": int((worst <= 0.01).sum()),
        "over_1pct": {k: float(f"{v:.3g}") for k, v in worst[worst > 0.01].items()},
    }
    print(json.dumps(summary, indent=1))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
