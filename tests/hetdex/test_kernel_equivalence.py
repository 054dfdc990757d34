"""The faster forms of the HETDEX kernels give the slower forms' results, bit for bit."""

from __future__ import annotations

import warnings

import numpy as np
from scipy import ndimage

from steps.hetdex.science import ccd, spectra
from steps.hetdex.science.detect import row_nanmedian


def _frame(seed: int):
    """A 200 x 300 frame of 20 Gaussian fibers with noise, cosmic-ray hits and a NaN column."""
    rng = np.random.default_rng(seed)
    ny, nx, nfib = 200, 300, 20
    trace = 5.0 + 9.7 * np.arange(nfib)[:, None] + 0.002 * np.arange(nx)[None, :]
    sigma = np.full(nfib, 1.3)
    y = np.arange(ny)[:, None, None]
    flux = 400 + 300 * rng.random((1, nfib, nx))
    truth = (flux * np.exp(-0.5 * ((y - trace[None, :, :]) / 1.3) ** 2) / (np.sqrt(2 * np.pi) * 1.3)).sum(axis=1)
    var = (truth + 25.0).astype(np.float32)
    img = (truth + rng.normal(size=truth.shape) * np.sqrt(var)).astype(np.float32)
    hits = rng.integers(0, ny, 40), rng.integers(0, nx, 40)
    img[hits] += 3000
    img[hits[0].clip(0, ny - 2) + 1, hits[1]] += 800  # charge spread into the next row
    img[:, 77] = np.nan
    return img, var, trace, sigma, hits


def test_cosmic_clean_extraction_is_the_masked_extraction():
    for seed in range(3):
        img, var, trace, sigma, hits = _frame(seed)
        clean = spectra.extract_clean(img, var, trace, sigma)
        assert clean["cosmics"][hits].mean() > 0.9  # the hits were found and masked
        full = spectra.extract(img, var, spectra.profile_weights(trace, sigma, img.shape[0]), mask=clean["cosmics"])
        for k in ("spectrum", "error", "chi2"):
            assert np.array_equal(clean[k], full[k], equal_nan=True), k
        assert np.array_equal(clean["model"], spectra.model_image(full["spectrum"], spectra.profile_weights(
            trace, sigma, img.shape[0]), img.shape[0]))


def test_bad_pixel_boxes_close_as_binary_closing_does():
    rng = np.random.default_rng(4)
    pf = np.where(rng.random((300, 200)) < 0.003, 0.0, 1.0)
    pf[::9, 50] = 0.0  # a bad column broken by gaps
    pf[0:2, :] = 0.0  # bad rows at the edge
    pf[:, -1] = 0.0
    closed = ndimage.binary_closing(pf == 0, structure=np.ones((11, 3), bool)) | (pf == 0)
    labels, _ = ndimage.label(closed)
    expect = [(xs.start + 1, xs.stop, ys.start + 1, ys.stop) for ys, xs in ndimage.find_objects(labels)]
    assert ccd.bad_pixel_boxes(pf) == expect
    assert any(x1 <= 51 <= x2 and y2 - y1 > 250 for x1, x2, y1, y2 in expect)  # the broken column, joined


def test_row_nanmedian_is_numpys():
    rng = np.random.default_rng(5)
    for dtype in (np.float32, np.float64):
        for shape in ((50, 40), (30, 7), (9, 1036)):
            x = (rng.normal(size=shape) * 10 ** rng.normal(size=shape)).astype(dtype)
            x[rng.random(shape) < 0.2] = np.nan
            x[0] = np.nan
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # the all-NaN row
                expect = np.nanmedian(x, axis=1)
            got = row_nanmedian(x)
            assert got.dtype == expect.dtype and np.array_equal(got, expect, equal_nan=True)


def test_a_single_frame_combines_to_itself():
    rng = np.random.default_rng(6)
    frame = rng.normal(1000, 4, (1, 40, 50)).astype(np.float32)
    frame[0, 3, 4], frame[0, 5, 6] = ccd.SENTINEL, np.nan
    got = ccd.combine(frame)
    assert got.dtype == np.float32
    assert np.isnan(got[3, 4]) and np.isnan(got[5, 6])
    assert np.array_equal(np.nan_to_num(got), np.nan_to_num(np.where(frame[0] == ccd.SENTINEL, np.nan, frame[0])))
