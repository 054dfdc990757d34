"""The DARK01 science: master dark, dark current, hot pixels and hot columns.  Pure functions over
NumPy arrays (quadrants in canonical orientation).

* :func:`dark_rates`: each prepared dark frame (counts minus its prescan offset) minus the master
  bias, over its exposure time: ADU/s.  The master bias holds the dark current of the readout a
  0 s frame collects too, so the difference is the exposure's own dark current.
* :func:`master_dark`: the per-pixel median of the rates (vison's ``produce_MasterDark`` stacks the
  prepared frames by median), so that a cosmic ray in one frame does not enter the master.
* :func:`find_defects`: vison's ``get_DarkDefectsMask``: the master's large-scale background (the
  degree-5 2-D polynomial on 300-px bins of :func:`steps.vison.science.bias.poly2d_model`) is
  subtracted and a pixel whose residual, times the exposure time, is above ``hot_adu`` (vison's
  ``DKMSKthresholds``: 50 ADU in its 565 s master) is hot; here it must also be
  ``HOT_SIGMA`` robust standard deviations above, so that a short exposure's noise is not
  called hot.  vison's mask has no columns; here a column whose median residual is beyond
  ``COLUMN_SIGMA`` standard errors of a median (the test BIAS0X applies to its defect columns)
  and at least the quadrant's own dark current (the column at least twice as dark) is a hot
  column, and its pixels are the column's, not hot pixels of their own.
* :func:`dark_level`: the dark current of a quadrant, the mean over the frames of each rate
  frame's 4-sigma-clipped mean (defects left out), with the frames' scatter over sqrt(n) as its
  error: the prescan offsets' noise and the pixels' enter it; the master bias's own level error
  (its offsets averaged over its frames) does not.
"""

from __future__ import annotations

import numpy as np

from steps.vison.science.bias import COLUMN_SIGMA, clipped_stats, master, poly2d_model, robust_sigma

HOT_SIGMA = 5.0
HOT_ADU = 50.0
HOT_PIXEL, HOT_COLUMN = 1, 2  # the defects mask's values
MEDIAN_EFFICIENCY = np.sqrt(np.pi / 2)  # the standard error of a Gaussian sample's median over its mean's


def dark_rates(prepared: np.ndarray, bias: np.ndarray, exptimes) -> np.ndarray:
    """(frames, rows, columns) ADU/s from prepared frames (ADU), the master bias (ADU) and the
    frames' exposure times (s)."""
    t = np.asarray(exptimes, dtype=np.float32)
    if prepared.shape[0] != t.size or not np.all(t > 0):
        raise ValueError(f"exposure times {list(t)} for {prepared.shape[0]} frames: each must be positive")
    return (prepared - bias[None]) / t[:, None, None]


def master_dark(rates: np.ndarray) -> np.ndarray:
    """The per-pixel median of the rate frames (the input is left as it is)."""
    return master(rates.copy())


def find_defects(image: np.ndarray, exptime: float, hot_adu: float = HOT_ADU, degree: int = 5,
                 binsize: int = 300) -> tuple[np.ndarray, list[tuple[int, int, str, float]]]:
    """The defects mask of a master dark's image area (ADU/s): ``HOT_PIXEL``, ``HOT_COLUMN`` or 0,
    and the defects as (x, y, kind, excess ADU/s), y = -1 for a column."""
    background, _ = poly2d_model(image, degree, binsize)
    residual = image - background
    sigma = robust_sigma(residual)
    mask = np.zeros(image.shape, dtype=np.uint8)
    found: list[tuple[int, int, str, float]] = []
    n_rows = np.count_nonzero(np.isfinite(residual), axis=0)
    with np.errstate(all="ignore"):
        column = np.nanmedian(residual, axis=0)
        standard_error = MEDIAN_EFFICIENCY * sigma / np.sqrt(np.maximum(n_rows, 1))
    # and at least the quadrant's own dark current above it (twice as dark), so that the column
    # structure of a long, well-measured dark is not called hot column by column
    floor = max(float(np.nanmedian(background)), 0.0)
    for x in np.flatnonzero((n_rows > 0) & (column > np.maximum(COLUMN_SIGMA * standard_error, floor))):
        mask[:, x] = HOT_COLUMN
        found.append((int(x), -1, "hot_column", float(column[x])))
    with np.errstate(invalid="ignore"):
        hot = (residual * exptime > hot_adu) & (residual > HOT_SIGMA * sigma) & (mask == 0)
    for y, x in zip(*np.nonzero(hot)):
        mask[y, x] = HOT_PIXEL
        found.append((int(x), int(y), "hot_pixel", float(residual[y, x])))
    return mask, found


def dark_level(rates: np.ndarray, mask: np.ndarray) -> tuple[float, float, list[float]]:
    """Dark current (ADU/s), its error and the per-frame levels, from the rate frames' image areas
    with the defects (``mask`` non-zero) left out."""
    good = mask == 0
    levels = [clipped_stats(frame[good])[0] for frame in rates]
    v = np.asarray([x for x in levels if np.isfinite(x)])
    if not v.size:
        return float("nan"), float("nan"), levels
    err = float(v.std(ddof=1) / np.sqrt(v.size)) if v.size > 1 else float("nan")
    return float(v.mean()), err, [float(x) for x in levels]
