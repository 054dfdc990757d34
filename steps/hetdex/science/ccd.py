"""CCD kernels of runbook step 4 (monthly bias, charge traps) and Chenxu's pixel flats.

Pure numpy over one amplifier's frames (rows = fibers, columns = wavelength).
"""

from __future__ import annotations

import warnings

import numpy as np
from astropy.stats import biweight_location, biweight_scale
from numpy.lib.stride_tricks import sliding_window_view
from scipy import ndimage

from astroflow.filters import biweight, nanmedian, running_median
from steps.hetdex.science.instrument import NX_ACTIVE, OVERSCAN, OVERSCAN_ROWS

SENTINEL = -666.0
BIWEIGHT_GAUSS = 1.0102  # biweight scale (c = 9) of a unit Gaussian: the consistency correction
CENTRAL = (slice(300, 700), slice(300, 700))


def overscan_level(raw: np.ndarray) -> float:
    """Biweight of the overscan region (columns 1034-1060, rows 10-1032)."""
    region = raw[OVERSCAN_ROWS[0]:OVERSCAN_ROWS[1], OVERSCAN[0]:OVERSCAN[1]]
    return float(biweight_location(region, ignore_nan=True))


def trim(raw: np.ndarray) -> np.ndarray:
    """Overscan-subtracted active area (1032 x 1032, float32)."""
    return (raw[:, :NX_ACTIVE] - overscan_level(raw)).astype(np.float32)


def frame_scale(frame: np.ndarray) -> float:
    """Biweight scale in the central [300:700, 300:700] box (the bias-frame acceptance test)."""
    return float(biweight_scale(frame[CENTRAL], ignore_nan=True))


def combine(frames: np.ndarray) -> np.ndarray:
    """Per-pixel biweight combine ignoring the -666 sentinel (and NaN); the mean of one or two
    frames.  Pixels NaN in every frame (masked traps) stay NaN."""
    stack = np.where(frames == SENTINEL, np.nan, frames)
    if len(stack) == 1:  # the mean of one frame is that frame
        return stack[0].astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if len(stack) <= 2:
            return np.nanmean(stack, axis=0).astype(np.float32)
        return biweight(np.moveaxis(stack, 0, -1), scale=False)[0].astype(np.float32)


def box_1x7(image: np.ndarray) -> np.ndarray:
    """Biweight smoothing with a box 1 column wide and 7 rows tall (edges keep shorter boxes)."""
    padded = np.pad(image, ((3, 3), (0, 0)), mode="reflect")
    win = sliding_window_view(padded, 7, axis=0)  # (ny, nx, 7)
    return biweight(win, scale=False)[0].astype(np.float32)


def read_noise(frames: list[np.ndarray]) -> float:
    """Read noise (ADU) from differences of consecutive overscan-subtracted zero frames."""
    if len(frames) < 2:
        return frame_scale(frames[0]) / BIWEIGHT_GAUSS
    vals = [biweight_scale((a - b)[CENTRAL]) / np.sqrt(2.0) for a, b in zip(frames[:-1], frames[1:])]
    return float(np.median(vals)) / BIWEIGHT_GAUSS


def find_traps(mbias: np.ndarray, half: int = 9, nsigma: float = 10.0, min_hits: int = 50) -> list[dict]:
    """Charge traps in a master bias (runbook 4, imgetctrap).

    Each pixel is scored against the biweight location/scale of the ``half`` neighbours on each
    side in its row; a column with more than ``min_hits`` pixels above ``nsigma`` is a trap,
    masked from (first hit - 10) to the top, or from row 0 when the first hit is below row 100.
    Returns dicts(column, first_row, mask_from, n_hits) with 0-based pixel indices.
    """
    # cheap pre-selection (running median, global scale), then the exact biweight score
    finite = np.isfinite(mbias)  # pixels no zero frame covered stand in at the frame's median
    med = running_median(np.where(finite, mbias, np.median(mbias[finite])), 2 * half + 1, mode="reflect")
    _, gscale = biweight((mbias - med).ravel()[::7])
    cand = np.argwhere((mbias - med) > 0.5 * nsigma * gscale)
    hits = np.zeros(mbias.shape, bool)
    if len(cand):
        padded = np.pad(mbias, ((0, 0), (half, half)), mode="reflect")
        cols = cand[:, 1][:, None] + np.r_[np.arange(half), np.arange(half + 1, 2 * half + 1)][None, :]
        neigh = padded[cand[:, 0][:, None], cols]
        loc, scale = biweight(neigh)
        score = (mbias[cand[:, 0], cand[:, 1]] - loc) / np.maximum(scale, 1e-3)
        hits[cand[score > nsigma, 0], cand[score > nsigma, 1]] = True
    traps = []
    for col in np.flatnonzero(hits.sum(axis=0) > min_hits):
        rows = np.flatnonzero(hits[:, col])
        first = int(rows[0])
        traps.append({"column": int(col), "first_row": first,
                      "mask_from": 0 if first < 100 else first - 10, "n_hits": int(rows.size)})
    return traps


def pixel_flat(flat: np.ndarray, window: int = 41, min_frac: float = 0.1, low: float = 0.666) -> np.ndarray:
    """Pixel-to-pixel flat from a bias-subtracted (combined) LDLS flat.

    The flat is divided by its running median along the dispersion (which keeps the fiber
    profile, whose trace moves < 0.2 px over the window); pixels below ``min_frac`` of their
    row's peak (inter-fiber gaps) are set to 1; values below ``low`` are set to 0 (bad).
    """
    finite = np.isfinite(flat)
    flat = np.where(finite, flat, 0.0)
    smooth = running_median(flat, window, mode="nearest")
    peak = ndimage.maximum_filter(smooth, size=(9, 1))
    lit = (smooth > min_frac * np.maximum(peak, 1e-6)) & (smooth > min_frac * np.percentile(smooth, 99)) & finite
    ratio = np.where(lit, flat / np.where(smooth > 0, smooth, 1), 1.0)
    ratio = np.where(np.isfinite(ratio), ratio, 1.0)
    ratio[ratio < low] = 0.0
    return ratio.astype(np.float32)


def bad_pixel_boxes(pflat: np.ndarray, close: tuple[int, int] = (11, 3)) -> list[tuple[int, int, int, int]]:
    """Boxes (x1, x2, y1, y2; 1-based, inclusive) around the zeroed pixels of a pixel flat.

    Bad columns broken by inter-fiber gaps are joined by a closing of ``close`` (rows, columns):
    ``ndimage.binary_closing`` with that box, computed as the separable maximum then minimum
    filter with zero outside (the same mask, five times faster).
    """
    zero = pflat == 0
    dilated = ndimage.maximum_filter(zero, size=close, mode="constant", cval=0)
    bad = ndimage.minimum_filter(dilated, size=close, mode="constant", cval=0) | zero
    labels, n = ndimage.label(bad)
    boxes = []
    for sl in ndimage.find_objects(labels):
        ys, xs = sl
        boxes.append((xs.start + 1, xs.stop, ys.start + 1, ys.stop))
    return boxes


def frame_level(image: np.ndarray) -> float:
    """Background-model level: the central biweight / 25 (runbook 5)."""
    return float(biweight_location(image[CENTRAL], ignore_nan=True) / 25.0)


def gap_background(image: np.ndarray, deg: int = 2, step: int = 8, half: int = 4) -> np.ndarray:
    """Smooth model of the light between fibers (runbook 5, imgetgap).

    Every ``step`` columns, the gap rows are the lowest rows within +-3 of the profile collapsed
    over ``2*half+1`` columns there (so they follow the traces' curvature along the dispersion);
    a polynomial of degree ``deg`` in x and y is fitted to the gap pixels.
    """
    ny, nx = image.shape
    xs = np.arange(half, nx - half, step)
    profs = nanmedian(image[:, xs[:, None] + np.arange(-half, half + 1)])  # (ny, len(xs)) collapsed profiles
    lowest = ndimage.minimum_filter1d(np.nan_to_num(profs, nan=np.inf), 7, axis=0, mode="nearest")
    gy, gx = [], []
    for k, x in enumerate(xs):
        mins = np.flatnonzero(np.isfinite(profs[:, k]) & (profs[:, k] == lowest[:, k]))[1:-1]  # one per fiber gap (~9 rows)
        gy.append(mins)
        gx.append(np.full(mins.size, x))
    gy, gx = np.concatenate(gy), np.concatenate(gx)
    vals = image[gy.clip(0, ny - 1), gx]
    ok = np.isfinite(vals)
    u, v = gx[ok] / nx - 0.5, gy[ok] / ny - 0.5
    powers = [(i, j) for i in range(deg + 1) for j in range(deg + 1 - i)]
    coef, *_ = np.linalg.lstsq(np.vstack([u**i * v**j for i, j in powers]).T, vals[ok], rcond=None)
    c = np.zeros((deg + 1, deg + 1))
    for (i, j), value in zip(powers, coef):
        c[i, j] = value
    grid = np.polynomial.polynomial.polygrid2d(np.arange(nx) / nx - 0.5, np.arange(ny) / ny - 0.5, c)  # (nx, ny)
    return np.ascontiguousarray(grid.T, dtype=np.float32)  # C order: FITS writes it in one piece
