"""The GLDZM's distance map (IBSI 3.9) against scipy's city-block distance transform."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from metevo.radiomics._border import border_distance


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_border_distance_equals_scipy_city_block_transform(seed):
    rng = np.random.default_rng(seed)
    roi = ndimage.binary_opening(rng.random((13, 17, 19)) < 0.8)  # holes, several parts
    roi[0, :, :] = True  # touching the grid's edge: the padding is outside the ROI
    expected = ndimage.distance_transform_cdt(np.pad(roi, 1), metric="taxicab")
    got = border_distance(roi)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, expected)
    assert got.max() > 2  # deep voxels exist, so both sweeps matter


def test_border_distance_of_a_block_by_hand():
    roi = np.ones((3, 5, 5), bool)
    d = border_distance(roi)[1:-1, 1:-1, 1:-1]
    # the centre voxel is 2 steps from the border along z (border voxels at 1)
    assert d[1, 2, 2] == 2
    assert d[0].max() == 1 and d[2].max() == 1
    assert d[1, 1, 1] == 2 and d[1, 0, 2] == 1
