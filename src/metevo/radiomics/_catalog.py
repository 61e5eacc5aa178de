"""The catalogue of radiomics feature columns: name, family, IBSI code and aggregation, unit.

The catalogue is the single source of the feature columns: the engine fills them in this
order, and the data dictionary schema of ``radiomics.parquet`` is generated from it.
IBSI codes and aggregation codes are those of the IBSI-1 reference manual (Zwanenburg et al.,
Radiology 2020; https://ibsi.readthedocs.io).
"""

from __future__ import annotations

from functools import lru_cache

import pandas as pd

__all__ = ["CATALOG_COLUMNS", "FAMILIES", "feature_catalog", "feature_families", "feature_names"]

CATALOG_COLUMNS = (
    "feature",
    "family",
    "ibsi_code",
    "ibsi_aggregation",
    "unit",
    "description",
    "reference_tag",
)

# family -> (IBSI family code, human name)
FAMILIES: dict[str, tuple[str, str]] = {
    "morphology": ("HCUG", "Morphological features"),
    "local_intensity": ("9ST6", "Local intensity features"),
    "intensity_statistics": ("UHIW", "Intensity-based statistical features"),
    "intensity_histogram": ("ZVCW", "Intensity histogram features"),
    "intensity_volume_histogram": ("P88C", "Intensity-volume histogram features"),
    "glcm": ("LFYI", "Grey level co-occurrence based features"),
    "glrlm": ("TP0I", "Grey level run length based features"),
    "glszm": ("9SAK", "Grey level size zone based features"),
    "gldzm": ("VMDZ", "Grey level distance zone based features"),
    "ngtdm": ("IPET", "Neighbourhood grey tone difference based features"),
    "ngldm": ("REK0", "Neighbouring grey level dependence based features"),
}

_I = "HU"  # intensity unit (Hounsfield units on CT; image units otherwise)

# (column, reference tag, IBSI code, unit, description)
_MORPHOLOGY = [
    (
        "morph_volume_mm3",
        "morph_volume",
        "RNU0",
        "mm3",
        "Volume of the triangle mesh (marching cubes at 0.5) of the ROI.",
    ),
    ("morph_vol_approx_mm3", "morph_vol_approx", "YEKZ", "mm3", "Volume by voxel counting."),
    ("morph_area_mesh_mm2", "morph_area_mesh", "C0JK", "mm2", "Surface area of the mesh."),
    ("morph_av_per_mm", "morph_av", "2PR5", "1/mm", "Surface to volume ratio."),
    ("morph_comp_1", "morph_comp_1", "SKGS", "1", "Compactness 1: V / (pi^(1/2) A^(3/2))."),
    ("morph_comp_2", "morph_comp_2", "BQWJ", "1", "Compactness 2: 36 pi V^2 / A^3."),
    (
        "morph_sph_dispr",
        "morph_sph_dispr",
        "KRCK",
        "1",
        "Spherical disproportion: A / (36 pi V^2)^(1/3).",
    ),
    ("morph_sphericity", "morph_sphericity", "QCFX", "1", "Sphericity: (36 pi V^2)^(1/3) / A."),
    (
        "morph_asphericity",
        "morph_asphericity",
        "25C7",
        "1",
        "Asphericity: (A^3 / (36 pi V^2))^(1/3) - 1.",
    ),
    (
        "morph_com_mm",
        "morph_com",
        "KLMA",
        "mm",
        "Distance between the geometric centre and the intensity-weighted centre of mass.",
    ),
    (
        "morph_diam_mm",
        "morph_diam",
        "L0JK",
        "mm",
        "Maximum 3D diameter: largest distance between two mesh vertices.",
    ),
    (
        "morph_pca_maj_axis_mm",
        "morph_pca_maj_axis",
        "TDIC",
        "mm",
        "Major axis length: 4 sqrt(largest eigenvalue of the voxel position covariance).",
    ),
    (
        "morph_pca_min_axis_mm",
        "morph_pca_min_axis",
        "P9VJ",
        "mm",
        "Minor axis length: 4 sqrt(second eigenvalue).",
    ),
    (
        "morph_pca_least_axis_mm",
        "morph_pca_least_axis",
        "7J51",
        "mm",
        "Least axis length: 4 sqrt(smallest eigenvalue).",
    ),
    (
        "morph_pca_elongation",
        "morph_pca_elongation",
        "Q3CK",
        "1",
        "Elongation: sqrt(minor / major eigenvalue).",
    ),
    (
        "morph_pca_flatness",
        "morph_pca_flatness",
        "N17B",
        "1",
        "Flatness: sqrt(least / major eigenvalue).",
    ),
    (
        "morph_vol_dens_aabb",
        "morph_vol_dens_aabb",
        "PBX1",
        "1",
        "Volume density of the axis-aligned bounding box.",
    ),
    (
        "morph_area_dens_aabb",
        "morph_area_dens_aabb",
        "R59B",
        "1",
        "Area density of the axis-aligned bounding box.",
    ),
    (
        "morph_vol_dens_aee",
        "morph_vol_dens_aee",
        "6BDE",
        "1",
        "Volume density of the approximate enclosing ellipsoid (PCA axes).",
    ),
    (
        "morph_area_dens_aee",
        "morph_area_dens_aee",
        "RDD2",
        "1",
        "Area density of the approximate enclosing ellipsoid.",
    ),
    (
        "morph_vol_dens_conv_hull",
        "morph_vol_dens_conv_hull",
        "R3ER",
        "1",
        "Volume density of the convex hull (solidity).",
    ),
    (
        "morph_area_dens_conv_hull",
        "morph_area_dens_conv_hull",
        "7T7F",
        "1",
        "Area density of the convex hull.",
    ),
    (
        "morph_integ_int",
        "morph_integ_int",
        "99N0",
        "HU mm3",
        "Integrated intensity: mesh volume times mean intensity.",
    ),
    (
        "morph_moran_i",
        "morph_moran_i",
        "N365",
        "1",
        "Moran's I index of spatial autocorrelation (inverse-distance weights, all voxel pairs; "
        "approximated above autocorrelation_exact_max_voxels).",
    ),
    (
        "morph_geary_c",
        "morph_geary_c",
        "NPT7",
        "1",
        "Geary's C measure of spatial autocorrelation (inverse-distance weights, all voxel pairs; "
        "approximated above autocorrelation_exact_max_voxels).",
    ),
]

_LOCAL = [
    (
        "loc_peak_loc",
        "loc_peak_loc",
        "VJGA",
        _I,
        "Local intensity peak: mean intensity in a 1 cm3 sphere centred on the ROI's maximum-intensity voxel.",
    ),
    (
        "loc_peak_glob",
        "loc_peak_glob",
        "0F91",
        _I,
        "Global intensity peak: largest 1 cm3-sphere mean intensity centred on any ROI voxel.",
    ),
]

_STAT = [
    ("mean", "Q4LE", _I, "Mean intensity."),
    ("var", "ECT3", "HU2", "Intensity variance (biased)."),
    ("skew", "KE2A", "1", "Intensity skewness (0 for a constant ROI)."),
    ("kurt", "IPH6", "1", "Excess intensity kurtosis (0 for a constant ROI)."),
    ("median", "Y12H", _I, "Median intensity."),
    ("min", "1GSF", _I, "Minimum intensity."),
    ("p10", "QG58", _I, "10th intensity percentile."),
    ("p90", "8DWT", _I, "90th intensity percentile."),
    ("max", "84IY", _I, "Maximum intensity."),
    ("iqr", "SALO", _I, "Intensity interquartile range."),
    ("range", "2OJQ", _I, "Intensity range."),
    ("mad", "4FUA", _I, "Mean absolute deviation from the mean."),
    (
        "rmad",
        "1128",
        _I,
        "Robust mean absolute deviation (voxels between the 10th and 90th percentiles).",
    ),
    ("medad", "N72L", _I, "Mean absolute deviation from the median."),
    ("cov", "7TET", "1", "Coefficient of variation."),
    ("qcod", "9S40", "1", "Quartile coefficient of dispersion."),
    ("energy", "N8CA", "HU2", "Energy: sum of squared intensities."),
    ("rms", "5ZWQ", _I, "Root mean square intensity."),
]

_G = "grey level"
_IH = [
    ("mean", "X6K6", _G, "Mean discretised intensity."),
    ("var", "CH89", "grey level2", "Discretised intensity variance."),
    ("skew", "88K1", "1", "Discretised intensity skewness (0 for a constant ROI)."),
    ("kurt", "C3I7", "1", "Excess discretised intensity kurtosis (0 for a constant ROI)."),
    ("median", "WIFQ", _G, "Median discretised intensity."),
    ("min", "1PR8", _G, "Minimum discretised intensity."),
    ("p10", "GPMT", _G, "10th discretised intensity percentile."),
    ("p90", "OZ0C", _G, "90th discretised intensity percentile."),
    ("max", "3NCY", _G, "Maximum discretised intensity."),
    (
        "mode",
        "AMMC",
        _G,
        "Intensity histogram mode (the mode closest to the mean, then the lowest).",
    ),
    ("iqr", "WR0O", _G, "Discretised intensity interquartile range."),
    ("range", "5Z3W", _G, "Discretised intensity range."),
    ("mad", "D2ZX", _G, "Intensity histogram mean absolute deviation."),
    ("rmad", "WRZB", _G, "Intensity histogram robust mean absolute deviation."),
    ("medad", "4RNL", _G, "Intensity histogram median absolute deviation."),
    ("cov", "CWYJ", "1", "Intensity histogram coefficient of variation."),
    ("qcod", "SLWD", "1", "Intensity histogram quartile coefficient of dispersion."),
    ("entropy", "TLU2", "bit", "Discretised intensity entropy (log2)."),
    ("uniformity", "BJ5W", "1", "Discretised intensity uniformity."),
    ("max_grad", "12CE", "voxels/grey level", "Maximum histogram gradient."),
    ("max_grad_g", "8E6O", _G, "Grey level of the maximum histogram gradient."),
    ("min_grad", "VQB3", "voxels/grey level", "Minimum histogram gradient."),
    ("min_grad_g", "RHQZ", _G, "Grey level of the minimum histogram gradient."),
]

_IVH = [
    (
        "ivh_v10",
        "ivh_v10",
        "BC2M",
        "1",
        "Volume fraction with intensity at or above 10 % of the intensity range.",
    ),
    (
        "ivh_v90",
        "ivh_v90",
        "BC2M",
        "1",
        "Volume fraction with intensity at or above 90 % of the intensity range.",
    ),
    (
        "ivh_i10",
        "ivh_i10",
        "GBPN",
        _I,
        "Lowest intensity above which lies less than 10 % of the volume.",
    ),
    (
        "ivh_i90",
        "ivh_i90",
        "GBPN",
        _I,
        "Lowest intensity above which lies less than 90 % of the volume.",
    ),
    ("ivh_diff_v10_v90", "ivh_diff_v10_v90", "DDTU", "1", "V10 - V90."),
    ("ivh_diff_i10_i90", "ivh_diff_i10_i90", "CNV2", _I, "I10 - I90."),
]

_GLCM = [
    ("joint_max", "GYBY", "Joint maximum."),
    ("joint_avg", "60VM", "Joint average."),
    ("joint_var", "UR99", "Joint variance."),
    ("joint_entr", "TU9B", "Joint entropy (log2)."),
    ("diff_avg", "TF7R", "Difference average."),
    ("diff_var", "D3YU", "Difference variance."),
    ("diff_entr", "NTRS", "Difference entropy."),
    ("sum_avg", "ZGXS", "Sum average."),
    ("sum_var", "OEEB", "Sum variance."),
    ("sum_entr", "P6QZ", "Sum entropy."),
    ("energy", "8ZQL", "Angular second moment."),
    ("contrast", "ACUI", "Contrast."),
    ("dissimilarity", "8S9J", "Dissimilarity."),
    ("inv_diff", "IB1Z", "Inverse difference."),
    ("inv_diff_norm", "NDRX", "Normalised inverse difference."),
    ("inv_diff_mom", "WF0Z", "Inverse difference moment."),
    ("inv_diff_mom_norm", "1QCO", "Normalised inverse difference moment."),
    ("inv_var", "E8JP", "Inverse variance."),
    ("corr", "NI2N", "Correlation."),
    ("auto_corr", "QWB0", "Autocorrelation."),
    ("clust_tend", "DG8W", "Cluster tendency."),
    ("clust_shade", "7NFM", "Cluster shade."),
    ("clust_prom", "AE86", "Cluster prominence."),
    ("info_corr1", "R8DG", "Information correlation 1."),
    ("info_corr2", "JN9H", "Information correlation 2."),
]

_GLRLM = [
    ("sre", "22OV", "Short runs emphasis."),
    ("lre", "W4KF", "Long runs emphasis."),
    ("lgre", "V3SW", "Low grey level run emphasis."),
    ("hgre", "G3QZ", "High grey level run emphasis."),
    ("srlge", "HTZT", "Short run low grey level emphasis."),
    ("srhge", "GD3A", "Short run high grey level emphasis."),
    ("lrlge", "IVPO", "Long run low grey level emphasis."),
    ("lrhge", "3KUM", "Long run high grey level emphasis."),
    ("glnu", "R5YN", "Grey level non-uniformity."),
    ("glnu_norm", "OVBL", "Normalised grey level non-uniformity."),
    ("rlnu", "W92Y", "Run length non-uniformity."),
    ("rlnu_norm", "IC23", "Normalised run length non-uniformity."),
    ("r_perc", "9ZK5", "Run percentage."),
    ("gl_var", "8CE5", "Grey level variance."),
    ("rl_var", "SXLW", "Run length variance."),
    ("rl_entr", "HJ9O", "Run entropy."),
]

_GLSZM = [
    ("sze", "5QRC", "Small zone emphasis."),
    ("lze", "48P8", "Large zone emphasis."),
    ("lgze", "XMSY", "Low grey level zone emphasis."),
    ("hgze", "5GN9", "High grey level zone emphasis."),
    ("szlge", "5RAI", "Small zone low grey level emphasis."),
    ("szhge", "HW1V", "Small zone high grey level emphasis."),
    ("lzlge", "YH51", "Large zone low grey level emphasis."),
    ("lzhge", "J17V", "Large zone high grey level emphasis."),
    ("glnu", "JNSA", "Grey level non-uniformity."),
    ("glnu_norm", "Y1RO", "Normalised grey level non-uniformity."),
    ("zsnu", "4JP3", "Zone size non-uniformity."),
    ("zsnu_norm", "VB3A", "Normalised zone size non-uniformity."),
    ("z_perc", "P30P", "Zone percentage."),
    ("gl_var", "BYLV", "Grey level variance."),
    ("zs_var", "3NSA", "Zone size variance."),
    ("zs_entr", "GU8N", "Zone size entropy."),
]

_GLDZM = [
    ("sde", "0GBI", "Small distance emphasis."),
    ("lde", "MB4I", "Large distance emphasis."),
    ("lgze", "S1RA", "Low grey level zone emphasis."),
    ("hgze", "K26C", "High grey level zone emphasis."),
    ("sdlge", "RUVG", "Small distance low grey level emphasis."),
    ("sdhge", "DKNJ", "Small distance high grey level emphasis."),
    ("ldlge", "A7WM", "Large distance low grey level emphasis."),
    ("ldhge", "KLTH", "Large distance high grey level emphasis."),
    ("glnu", "VFT7", "Grey level non-uniformity."),
    ("glnu_norm", "7HP3", "Normalised grey level non-uniformity."),
    ("zdnu", "V294", "Zone distance non-uniformity."),
    ("zdnu_norm", "IATH", "Normalised zone distance non-uniformity."),
    ("z_perc", "VIWW", "Zone percentage."),
    ("gl_var", "QK93", "Grey level variance."),
    ("zd_var", "7WT1", "Zone distance variance."),
    ("zd_entr", "GBDU", "Zone distance entropy."),
]

_NGTDM = [
    ("coarseness", "QCDE", "Coarseness (NaN when no grey tone differs from its neighbourhood)."),
    ("contrast", "65HE", "Contrast."),
    ("busyness", "NQ30", "Busyness."),
    ("complexity", "HDEZ", "Complexity."),
    ("strength", "1X9X", "Strength."),
]

_NGLDM = [
    ("lde", "SODN", "Low dependence emphasis."),
    ("hde", "IMOQ", "High dependence emphasis."),
    ("lgce", "TL9H", "Low grey level count emphasis."),
    ("hgce", "OAE7", "High grey level count emphasis."),
    ("ldlge", "EQ3F", "Low dependence low grey level emphasis."),
    ("ldhge", "JA6D", "Low dependence high grey level emphasis."),
    ("hdlge", "NBZI", "High dependence low grey level emphasis."),
    ("hdhge", "9QMG", "High dependence high grey level emphasis."),
    ("glnu", "FP8K", "Grey level non-uniformity."),
    ("glnu_norm", "5SPA", "Normalised grey level non-uniformity."),
    ("dcnu", "Z87G", "Dependence count non-uniformity."),
    ("dcnu_norm", "OKJI", "Normalised dependence count non-uniformity."),
    ("dc_perc", "6XV8", "Dependence count percentage."),
    ("gl_var", "1PFV", "Grey level variance."),
    ("dc_var", "DNX2", "Dependence count variance."),
    ("dc_entr", "FCBV", "Dependence count entropy."),
    ("dc_energy", "CAS9", "Dependence count energy."),
]

_AGG_TEXT = {
    "ITBB": "3D, features averaged over the 13 directions",
    "IAZD": "3D, matrices of the 13 directions merged",
    "KOBO": "3D",
}


def _rows() -> list[tuple[str, str, str, str, str, str, str]]:
    rows = []
    for col, tag, code, unit, desc in _MORPHOLOGY:
        rows.append((col, "morphology", code, "", unit, desc, tag))
    for col, tag, code, unit, desc in _LOCAL:
        rows.append((col, "local_intensity", code, "", unit, desc, tag))
    for base, code, unit, desc in _STAT:
        rows.append((f"stat_{base}", "intensity_statistics", code, "", unit, desc, f"stat_{base}"))
    for base, code, unit, desc in _IH:
        rows.append((f"ih_{base}", "intensity_histogram", code, "", unit, desc, f"ih_{base}"))
    for col, tag, code, unit, desc in _IVH:
        rows.append((col, "intensity_volume_histogram", code, "", unit, desc, tag))
    for prefix, family, table, aggs in (
        ("cm", "glcm", _GLCM, (("ITBB", "3d_avg", "3D_avg"), ("IAZD", "3d_comb", "3D_comb"))),
        ("rlm", "glrlm", _GLRLM, (("ITBB", "3d_avg", "3D_avg"), ("IAZD", "3d_comb", "3D_comb"))),
        ("szm", "glszm", _GLSZM, (("KOBO", "3d", "3D"),)),
        ("dzm", "gldzm", _GLDZM, (("KOBO", "3d", "3D"),)),
        ("ngt", "ngtdm", _NGTDM, (("KOBO", "3d", "3D"),)),
        ("ngl", "ngldm", _NGLDM, (("KOBO", "3d", "3D"),)),
    ):
        for agg_code, suffix, tag_suffix in aggs:
            for base, code, desc in table:
                rows.append(
                    (
                        f"{prefix}_{base}_{suffix}",
                        family,
                        code,
                        agg_code,
                        "1",
                        f"{desc[:-1]} ({family.upper()}, {_AGG_TEXT[agg_code]}).",
                        f"{prefix}_{base}_{tag_suffix}",
                    )
                )
    return rows


@lru_cache(maxsize=1)
def _catalog() -> pd.DataFrame:
    return pd.DataFrame(_rows(), columns=list(CATALOG_COLUMNS))


def feature_catalog() -> pd.DataFrame:
    """Describe every radiomics feature column that :func:`metevo.radiomic_features` returns.

    Returns
    -------
    pandas.DataFrame
        One row per feature column, in column order, with columns ``feature`` (column name),
        ``family`` (``morphology``, ``local_intensity``, ``intensity_statistics``,
        ``intensity_histogram``, ``intensity_volume_histogram``, ``glcm``, ``glrlm``,
        ``glszm``, ``gldzm``, ``ngtdm``, ``ngldm``), ``ibsi_code`` (4-character IBSI
        identifier), ``ibsi_aggregation`` (IBSI aggregation code: ``ITBB`` 3D averaged,
        ``IAZD`` 3D merged, ``KOBO`` 3D; empty where not applicable), ``unit``
        (``HU`` stands for the image's intensity unit), ``description`` and
        ``reference_tag`` (the feature's name in the IBSI reference tables and in MIRP).

    Examples
    --------
    >>> import metevo
    >>> cat = metevo.feature_catalog()
    >>> int(cat.groupby("family").size()["glcm"])
    50
    """
    return _catalog().copy()


@lru_cache(maxsize=1)
def _families() -> dict[str, str]:
    return dict(zip(_catalog()["feature"], _catalog()["family"], strict=True))


def feature_families() -> dict[str, str]:
    """Feature column -> family, in output order."""
    return dict(_families())


def feature_names() -> list[str]:
    """Feature column names, in output order."""
    return list(_catalog()["feature"])
