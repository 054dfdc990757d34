"""astroflow.filters (native running median, median and biweight) against scipy, numpy and astropy."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.stats import biweight_location, biweight_scale
from scipy import ndimage

from astroflow.filters import biweight, nanmedian, running_median


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mode", ["nearest", "reflect", "mirror", "wrap"])
@pytest.mark.parametrize("size", [1, 2, 7, 8, 41])
def test_running_median_is_scipys_median_filter(dtype, mode, size):
    rng = np.random.default_rng(size)
    a = rng.normal(size=(5, 3, 120)).astype(dtype)
    a[0, 1, 10:30] = 2.0  # ties
    got = running_median(a, size, mode)
    assert got.dtype == a.dtype and got.shape == a.shape
    assert np.array_equal(got, ndimage.median_filter(a, size=(1, 1, size), mode=mode))


def test_running_median_refuses_nan_and_unknown_modes():
    a = np.ones((2, 10))
    a[1, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        running_median(a, 3)
    with pytest.raises(ValueError, match="unknown mode"):
        running_median(np.ones(10), 3, mode="constant")


def test_biweight_and_nanmedian_match_astropy_and_numpy_ignoring_nan():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(400, 15))
    x[rng.random(x.shape) < 0.1] = np.nan
    x[rng.random(x.shape) < 0.1] += 40.0  # outliers
    x[5] = np.nan  # a row with no data
    x[6] = 3.0  # a row with no spread (MAD 0): the median
    loc, scale = biweight(x)
    med = nanmedian(x)
    assert np.isnan(loc[5]) and np.isnan(scale[5]) and np.isnan(med[5])
    assert loc[6] == 3.0
    for i in [i for i in range(len(x)) if i not in (5, 6)]:
        row = x[i][np.isfinite(x[i])]
        assert loc[i] == pytest.approx(biweight_location(row), abs=1e-10)
        assert scale[i] == pytest.approx(biweight_scale(row), abs=1e-10)
        assert med[i] == np.median(row)
    assert biweight(x, scale=False)[1] is None
