"""A registration's affine part as ``registrations`` table columns and back (private).

Split from :mod:`metevo.tracking._registration` (module size); re-exported there and from
:mod:`metevo.tracking`.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from metevo.columns import Registrations as R

__all__ = ["affine_columns", "affine_from_row", "affine_matrix_from_row"]


def affine_columns(transform: sitk.Transform) -> dict[str, float]:
    """A linear transform as the ``registrations`` table's ``affine_*`` columns (q = A p + t).

    Read off the transform at the origin and the three unit points, so it holds for any
    SimpleITK transform whose mapping is affine (translation, Euler, affine, a composite of them).
    """
    t = np.asarray(transform.TransformPoint((0.0, 0.0, 0.0)), float)
    a = np.column_stack(
        [np.asarray(transform.TransformPoint(tuple(e)), float) - t for e in np.eye(3)]
    )
    return {
        **{name: float(v) for name, v in zip(R.AFFINE, a.ravel(), strict=True)},
        **{name: float(v) for name, v in zip(R.AFFINE_T, t, strict=True)},
    }


def affine_matrix_from_row(row) -> np.ndarray:
    """The 4x4 homogeneous matrix of the affine a ``registrations`` row holds (see
    :func:`affine_from_row`)."""
    m = np.eye(4)
    m[:3, :3] = np.array([float(row[name]) for name in R.AFFINE]).reshape(3, 3)
    m[:3, 3] = [float(row[name]) for name in R.AFFINE_T]
    if not np.isfinite(m).all():
        raise ValueError(
            f"registration {row[R.TIMEPOINT_FROM]}->{row[R.TIMEPOINT_TO]} has no affine columns; "
            "re-run `metevo analyze` with this metevo version."
        )
    return m


def affine_from_row(row) -> sitk.AffineTransform:
    """The affine transform a ``registrations`` row holds (inverse of :func:`affine_columns`).

    It maps points of the row's ``timepoint_to`` visit to its ``timepoint_from`` visit.
    """
    m = affine_matrix_from_row(row)
    out = sitk.AffineTransform(3)
    out.SetMatrix(tuple(m[:3, :3].ravel()))
    out.SetTranslation(tuple(m[:3, 3]))
    return out
