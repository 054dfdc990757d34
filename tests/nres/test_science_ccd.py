"""CCD kernels of steps/nres/science/ccd.py against synthetic frames with known truth."""

import numpy as np
import pytest

from steps.nres.science import ccd


def test_parse_section_is_fits_one_based_inclusive():
    ys, xs = ccd.parse_section("[1025:1056,1:1024]")
    assert (ys, xs) == (slice(0, 1024), slice(1024, 1056))
    assert ccd.parse_section("[ 10:1 , 5:7 ]") == (slice(4, 7), slice(0, 10))
    for bad in ("1025:1056,1:1024", "[0:10,1:5]", "[a:b,1:2]", ""):
        with pytest.raises(ValueError):
            ccd.parse_section(bad)


def test_overscan_and_trim_recover_the_image():
    rng = np.random.default_rng(1)
    ny, nx, nover = 200, 120, 32
    truth = rng.uniform(0, 500, (ny, nx))
    level = 1000.0 + 0.05 * np.arange(ny)           # a bias level that drifts along the rows
    raw = np.empty((ny, nx + nover))
    raw[:, :nx] = truth + level[:, None]
    raw[:, nx:] = level[:, None]
    raw += rng.normal(0, 6.5, raw.shape)
    out, lev = ccd.overscan_correct(raw, f"[{nx + 1}:{nx + nover},1:{ny}]", f"[1:{nx},1:{ny}]")
    assert out.shape == (ny, nx) and out.dtype == np.float32
    assert np.max(np.abs(lev - level)) < 1.5         # smoothed per-row median of 32 px
    resid = out - truth
    assert abs(np.mean(resid)) < 0.3 and np.std(resid) < 7.0
    with pytest.raises(ValueError):
        ccd.trim(raw, "[1:5000,1:10]")


def test_sigma_clipped_stack_rejects_outliers_and_counts():
    rng = np.random.default_rng(2)
    frames = [100.0 + rng.normal(0, 5.0, (50, 60)) for _ in range(5)]
    frames[2][10, 20] = 5000.0                        # a cosmic ray
    masks = [np.zeros((50, 60), np.uint8) for _ in range(5)]
    masks[4][30, 30] = 1                              # a bad pixel in one frame
    mean, count = ccd.sigma_clipped_stack(frames, masks=masks, strip_rows=16)
    assert count[10, 20] == 4 and abs(mean[10, 20] - 100.0) < 15.0
    assert count[30, 30] <= 4
    assert np.median(count) == 5
    assert abs(np.mean(mean) - 100.0) < 0.2
    assert np.std(mean) < 5.0 / np.sqrt(5) * 1.2


def test_read_noise_within_two_percent():
    rng = np.random.default_rng(3)
    gain, rn_e = 1.1, 7.0
    fixed = rng.normal(0, 3.0, (300, 300))            # fixed pattern cancels in the pairs
    biases = [1000 + fixed + rng.normal(0, rn_e / gain, fixed.shape) for _ in range(5)]
    biases[1][5, 5] += 3000                           # a cosmic ray
    rn = ccd.read_noise(biases, gain=gain)
    assert abs(rn / rn_e - 1) < 0.02
    with pytest.raises(ValueError):
        ccd.read_noise(biases[:1])
