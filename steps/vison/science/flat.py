"""The FLAT01 science: individual flats over a smooth 2-D model, master flats, PRNU, response defects.
Pure functions over NumPy arrays (quadrants' image areas in canonical orientation).

* :func:`smooth_model`: vison's ``get_region2Dmodel(kind='spline', splinemethod='cubic',
  doBin=True, binsize=50, filtertype='median')``: the image's median in bins of ``binsize``
  pixels, interpolated by a bicubic spline through the bins' centres to every pixel.  Where an
  axis has fewer than ``MIN_BINS`` bins of ``binsize`` (a reduced geometry), the bins shrink
  so that it has ``MIN_BINS``; where it has fewer than 4 points the spline's degree drops.
* :func:`indiv_flat`: a prepared flat over its model (vison's ``produce_SingleFlatfield``).
* :class:`FlatStack`: the master flat of a fluence level, the per-pixel mean of its individual
  flats with its standard error (the frames' scatter over sqrt(n)).  vison stacks by median;
  here a running mean and variance, so that 80 full-size flats need no more memory than one
  and the master's noise is known exactly for :func:`prnu`; no cosmic-ray rejection (a cosmic
  ray of a few thousand electrons in one of 30-80 frames moves a pixel of a 25-75 % flat by
  less than 0.1 %, and is a single-pixel outlier the defects search may take for a bright pixel).
* :func:`prnu`: vison's ``PRNU_PC``: the std of the master flat over the quadrant's image area,
  in % of its mean; here with the response defects left out, 4-sigma clipped (truncation
  corrected), and the master's own noise (the mean squared standard error) subtracted in
  quadrature: with the default 30-80 frames it is < 1 % of the PRNU, with a test cut to a few
  frames it is not (measured on the simulator: +4 % of the PRNU with 10 frames at 25 %, before the
  correction).
* :func:`response_defects`: vison's flat (PR) mask (``vis_cosmetics_masker``: outside [0.5, 1.5]
  of the normalised flat, a column with more than 200 of its 2066 rows masked is masked whole),
  and, as DARK01's hot pixels, a pixel ``DEFECT_SIGMA`` robust standard deviations (the PRNU and
  noise) off, and a column whose median is ``COLUMN_SIGMA`` standard errors of a median and at
  least one pixel standard deviation off.  vison's bounds alone leave a pixel at 55 % of the
  response unmasked.
"""

from __future__ import annotations

import numpy as np
from scipy.interpolate import RectBivariateSpline

from steps.vison.science.bias import COLUMN_SIGMA, clipped_stats
from steps.vison.science.dark import MEDIAN_EFFICIENCY

BINSIZE = 50
MIN_BINS = 4
DEFECT_SIGMA = 5.0
RESPONSE_LIMITS = (0.5, 1.5)  # vison's flat-mask thresholds (COSMETICS00 inputs_flmask)
COLUMN_FRACTION = 200 / 2066  # vison's mask_badcolumns: colthreshold 200 of the CCD273's rows
PIXEL, COLUMN = 1, 2  # the defects mask's values


def _edges(n: int, binsize: int) -> np.ndarray:
    size = max(1, min(binsize, n // MIN_BINS))
    return np.linspace(0, n, max(n // size, 1) + 1).round().astype(int)


def smooth_model(image: np.ndarray, binsize: int = BINSIZE) -> np.ndarray:
    """The smooth 2-D model of ``image`` (float, NaN where lost or saturated), float32."""
    ny, nx = image.shape
    ey, ex = _edges(ny, binsize), _edges(nx, binsize)
    med = np.full((ey.size - 1, ex.size - 1), np.nan)
    with np.errstate(all="ignore"):
        for i, (y0, y1) in enumerate(zip(ey[:-1], ey[1:])):
            for j, (x0, x1) in enumerate(zip(ex[:-1], ex[1:])):
                block = image[y0:y1, x0:x1]
                if np.isfinite(block).any():
                    med[i, j] = np.nanmedian(block)
    if not np.isfinite(med).any():
        raise FloatingPointError("no valid pixel to model the flat")
    med[~np.isfinite(med)] = np.nanmedian(med)
    yc, xc = (ey[:-1] + ey[1:] - 1) / 2.0, (ex[:-1] + ex[1:] - 1) / 2.0
    if yc.size < 2 or xc.size < 2:  # a line of pixels: its median
        return np.full(image.shape, np.nanmedian(med), dtype=np.float32)
    spline = RectBivariateSpline(yc, xc, med, bbox=[0, ny - 1, 0, nx - 1], kx=min(3, yc.size - 1),
                                 ky=min(3, xc.size - 1), s=0)
    return spline(np.arange(ny), np.arange(nx)).astype(np.float32)


def indiv_flat(image: np.ndarray, binsize: int = BINSIZE) -> tuple[np.ndarray, float]:
    """The individual flat (``image`` over its smooth model) and the model's median level (ADU)."""
    model = smooth_model(image, binsize)
    with np.errstate(all="ignore"):
        return image / model, float(np.median(model))


class FlatStack:
    """Running per-pixel mean and variance of the individual flats of one fluence level."""

    def __init__(self, shape: tuple[int, int]):
        self.n = np.zeros(shape, dtype=np.int32)
        self.sum = np.zeros(shape, dtype=np.float64)
        self.sum2 = np.zeros(shape, dtype=np.float64)
        self.frames = 0

    def add(self, flat: np.ndarray) -> None:
        ok = np.isfinite(flat)
        v = np.where(ok, flat, 0.0).astype(np.float64)
        self.n += ok
        self.sum += v
        self.sum2 += v * v
        self.frames += 1

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """The master flat (NaN where no frame had the pixel) and its standard error (NaN with one frame)."""
        with np.errstate(all="ignore"):
            mean = self.sum / self.n
            var = (self.sum2 - self.n * mean * mean) / (self.n - 1)
            err = np.sqrt(np.maximum(var, 0.0) / self.n)
        mean[self.n == 0] = np.nan
        err[self.n < 2] = np.nan
        return mean.astype(np.float32), err.astype(np.float32)


def prnu(master: np.ndarray, err: np.ndarray, mask: np.ndarray) -> dict:
    """PRNU (% rms) of a master flat's image area with the defects (``mask`` non-zero) left out:
    ``prnu_pct`` (the master's noise subtracted), ``prnu_raw_pct`` (vison's std), ``noise_pct``."""
    good = (mask == 0) & np.isfinite(master)
    if np.count_nonzero(good) < 2:
        return {"prnu_pct": float("nan"), "prnu_raw_pct": float("nan"), "noise_pct": float("nan"), "n_pixels": 0}
    mean, std = clipped_stats(master[good])
    e = err[good]
    e = e[np.isfinite(e)]
    noise = float(np.sqrt(np.mean(e.astype(np.float64) ** 2))) / mean if e.size else 0.0
    raw = std / mean
    return {"prnu_pct": float(np.sqrt(max(raw * raw - noise * noise, 0.0)) * 100.0), "prnu_raw_pct": raw * 100.0,
            "noise_pct": noise * 100.0, "n_pixels": int(np.count_nonzero(good))}


def column_outliers(residual: np.ndarray, sigma: float, flagged: np.ndarray) -> np.ndarray:
    """Columns of ``residual`` (NaN-aware) that are defects as a whole: more than ``COLUMN_FRACTION``
    of their pixels ``flagged``, or a median ``COLUMN_SIGMA`` standard errors of a median and at
    least ``sigma`` (one pixel standard deviation) from zero.  Returns the columns' signed medians
    where they are defects, 0 elsewhere."""
    n = np.count_nonzero(np.isfinite(residual), axis=0)
    with np.errstate(all="ignore"):
        median = np.nanmedian(residual, axis=0)
        se = MEDIAN_EFFICIENCY * sigma / np.sqrt(np.maximum(n, 1))
        bad = (n > 0) & (np.abs(median) > np.maximum(COLUMN_SIGMA * se, sigma))
    bad |= np.count_nonzero(flagged, axis=0) > COLUMN_FRACTION * residual.shape[0]
    return np.where(bad, np.nan_to_num(median), 0.0)


def response_defects(flat: np.ndarray, sigma: float = DEFECT_SIGMA, limits: tuple[float, float] = RESPONSE_LIMITS
                     ) -> tuple[np.ndarray, list[tuple[int, int, str, float]]]:
    """The response-defects mask of a (master) flat's image area: ``PIXEL``, ``COLUMN`` or 0, and
    the defects as (x, y, kind, relative response), y = -1 for a column; kinds ``cold_pixel`` /
    ``cold_column`` (low response) and ``bright_pixel`` / ``bright_column``."""
    level, scale = clipped_stats(flat)
    with np.errstate(all="ignore"):
        response = flat / level
        s = scale / level
        flagged = (response < limits[0]) | (response > limits[1]) | (np.abs(response - 1.0) > sigma * s)
    mask = np.zeros(flat.shape, dtype=np.uint8)
    found: list[tuple[int, int, str, float]] = []
    columns = column_outliers(response - 1.0, s, flagged)
    for x in np.flatnonzero(columns):
        mask[:, x] = COLUMN
        found.append((int(x), -1, "cold_column" if columns[x] < 0 else "bright_column", float(1.0 + columns[x])))
    for y, x in zip(*np.nonzero(flagged & (mask == 0))):
        mask[y, x] = PIXEL
        r = float(response[y, x])
        found.append((int(x), int(y), "cold_pixel" if r < 1.0 else "bright_pixel", r))
    return mask, found
