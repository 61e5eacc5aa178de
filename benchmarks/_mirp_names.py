"""Map metevo feature columns to MIRP 2.x feature names (fixed bin size 25, distance 1)."""

from __future__ import annotations


def mirp_name(reference_tag: str, family: str, bin_width: float = 25.0) -> str:
    """MIRP's column name of the feature whose IBSI reference tag is ``reference_tag``."""
    d = f"_fbs_w{bin_width:.1f}"
    if family == "intensity_histogram":
        return reference_tag + d
    if family == "glcm":
        base, agg = reference_tag.rsplit("_3D_", 1)
        return f"{base}_d1_3d_{'avg' if agg == 'avg' else 'v_mrg'}{d}"
    if family == "glrlm":
        base, agg = reference_tag.rsplit("_3D_", 1)
        return f"{base}_3d_{'avg' if agg == 'avg' else 'v_mrg'}{d}"
    if family == "ngldm":
        return reference_tag.replace("_3D", "_d1_a0.0_3d") + d
    if family in ("glszm", "gldzm", "ngtdm"):
        return reference_tag.replace("_3D", "_3d") + d
    return reference_tag
