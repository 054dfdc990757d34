"""CCD kernels for NRES frames: FITS sections, overscan, trim, robust stacking, read noise.

Pure functions over NumPy arrays (no file I/O). Conventions: images are indexed ``[y, x]``
(NumPy row-major, as astropy reads FITS), FITS sections are 1-based inclusive ``[x1:x2,y1:y2]``.
"""

from __future__ import annotations

import itertools
import re

import numpy as np
from scipy import ndimage

from astroflow.filters import MAD_TO_SIGMA, mad_std

__all__ = [
    "overscan_correct",
    "overscan_level",
    "parse_section",
    "read_noise",
    "sigma_clipped_stack",
    "trim",
]

_SECTION = re.compile(r"^\s*\[\s*(\d+)\s*:\s*(\d+)\s*,\s*(\d+)\s*:\s*(\d+)\s*\]\s*$")


def parse_section(section: str) -> tuple[slice, slice]:
    """Parse a FITS section string ``[x1:x2,y1:y2]`` (1-based, inclusive; IRAF/FITS convention, as
    in the BIASSEC, TRIMSEC and DATASEC keywords) into NumPy slices ``(rows, columns)``.

    Reversed ranges (``[100:1,...]``) are accepted and return the same pixels in ascending order
    (flipping, where a camera reads out backwards, is the caller's business).
    Raises ValueError on a malformed string.
    """
    m = _SECTION.match(str(section))
    if not m:
        raise ValueError(f"not a FITS section: {section!r}")
    x1, x2, y1, y2 = (int(v) for v in m.groups())
    if min(x1, x2, y1, y2) < 1:
        raise ValueError(f"FITS sections are 1-based: {section!r}")
    xs = slice(min(x1, x2) - 1, max(x1, x2))
    ys = slice(min(y1, y2) - 1, max(y1, y2))
    return ys, xs


def overscan_level(image, biassec: str, smooth_rows: int = 25) -> np.ndarray:
    """Per-row overscan level: the median of each row of the BIASSEC region, smoothed along y with
    a running median of ``smooth_rows`` rows (0 or 1: no smoothing), as banzai's overscan stage and
    the IDL pipeline's per-row bias do.

    Returns an array with one value per image row (ADU).
    """
    image = np.asarray(image)
    ys, xs = parse_section(biassec)
    region = np.asarray(image[ys, xs], dtype=float)
    if region.size == 0:
        raise ValueError(f"BIASSEC {biassec} is outside the {image.shape} image")
    per_row = np.median(region, axis=1)
    if smooth_rows and smooth_rows > 1 and per_row.size > 1:
        size = int(min(smooth_rows, per_row.size))
        per_row = ndimage.median_filter(per_row, size=size, mode="nearest")
    level = np.full(image.shape[0], np.median(per_row), dtype=float)
    level[ys] = per_row
    return level


def trim(image, trimsec: str) -> np.ndarray:
    """Cut the TRIMSEC region (FITS 1-based inclusive section) out of ``image``; returns a view."""
    ys, xs = parse_section(trimsec)
    image = np.asarray(image)
    if ys.stop > image.shape[0] or xs.stop > image.shape[1]:
        raise ValueError(f"TRIMSEC {trimsec} is outside the {image.shape} image")
    return image[ys, xs]


def overscan_correct(image, biassec: str, trimsec: str | None = None, smooth_rows: int = 25,
                     gain: float = 1.0):
    """Overscan subtraction and trim: subtract the smoothed per-row median of BIASSEC from every row,
    keep TRIMSEC (the whole frame when None), multiply by ``gain`` (e-/ADU; 1.0 keeps ADU).

    Returns ``(corrected, level)``: the trimmed float32 image and the per-row level (ADU) that was
    subtracted from the untrimmed rows.
    """
    image = np.asarray(image, dtype=np.float32)
    level = overscan_level(image, biassec, smooth_rows=smooth_rows)
    corrected = image - level[:, None].astype(np.float32)
    if trimsec:
        corrected = trim(corrected, trimsec)
    if gain != 1.0:
        corrected = corrected * np.float32(gain)
    return np.ascontiguousarray(corrected, dtype=np.float32), level


# 1 / E[MAD_TO_SIGMA MAD] of N unit-normal values: the MAD of a few frames underestimates the scatter
_MAD_SMALL_N = {3: 1.483, 4: 1.362, 5: 1.219, 6: 1.190, 7: 1.137, 8: 1.128, 9: 1.103, 10: 1.097,
                11: 1.080, 12: 1.079, 13: 1.066, 14: 1.063, 15: 1.057, 16: 1.056, 17: 1.049, 18: 1.048,
                19: 1.044, 20: 1.042}


def sigma_clipped_stack(frames, nsigma: float = 3.0, masks=None, max_iters: int = 2,
                        min_sigma: float = 0.0, strip_rows: int = 256, read_noise: float | None = None,
                        gain: float = 1.0):
    """Robust stack of N frames: per pixel, reject values more than ``nsigma`` robust standard
    deviations from the median of the kept values, iterate ``max_iters`` times, and average what
    is kept (banzai's sigma-clipped-mean combine of calibration frames). The scale is MAD_TO_SIGMA (astropy's mad_std factor) times the MAD
    corrected for the small number of frames, floored at ``min_sigma`` and, when ``read_noise`` is
    given (data units; ``gain`` = electrons per data unit), at the noise model
    ``sqrt(read_noise^2 + median / gain)``. ``masks`` (same shape as frames, nonzero = bad) exclude
    pixels up front. Works in strips of ``strip_rows`` rows to bound the memory of 4k x 4k stacks.

    Returns ``(mean, count)``: the float32 stacked image (NaN where no value survives) and the
    number of frames used per pixel (int16).
    """
    frames = [np.asarray(f) for f in frames]
    if not frames:
        raise ValueError("nothing to stack")
    shape = frames[0].shape
    if any(f.shape != shape for f in frames):
        raise ValueError("frames to stack differ in shape: " + ", ".join(str(f.shape) for f in frames))
    if masks is not None:
        masks = [np.asarray(m) for m in masks]
        if len(masks) != len(frames) or any(m.shape != shape for m in masks):
            raise ValueError("one mask per frame, of the frame's shape")
    ny = shape[0] if len(shape) > 1 else 1
    flat_frames = [f.reshape(ny, -1) for f in frames]
    flat_masks = [m.reshape(ny, -1) for m in masks] if masks is not None else None
    mean = np.empty((ny, flat_frames[0].shape[1]), dtype=np.float32)
    count = np.empty_like(mean, dtype=np.int16)
    for y0 in range(0, ny, strip_rows):
        y1 = min(ny, y0 + strip_rows)
        cube = np.stack([f[y0:y1] for f in flat_frames]).astype(np.float32)
        keep = np.isfinite(cube)
        if flat_masks is not None:
            keep &= np.stack([m[y0:y1] == 0 for m in flat_masks])
        if len(frames) >= 3:
            for _ in range(max(1, max_iters)):
                med = _masked_median(cube, keep)
                dev = np.abs(cube - med)
                nk = keep.sum(axis=0)
                corr = np.interp(nk, list(_MAD_SMALL_N), list(_MAD_SMALL_N.values())).astype(np.float32)
                sig = MAD_TO_SIGMA * corr * _masked_median(dev, keep)
                sig = np.maximum(np.nan_to_num(sig, nan=0.0), min_sigma)
                if read_noise is not None:
                    model = np.sqrt(read_noise ** 2 + np.clip(np.nan_to_num(med), 0, None) / gain)
                    sig = np.maximum(sig, model)
                zero = sig <= 0
                new_keep = keep & ((dev <= nsigma * sig) | zero)
                # where the MAD is zero (most values identical) keep the identical ones only
                if np.any(zero):
                    new_keep &= ~zero | (cube == med)
                if np.array_equal(new_keep, keep):
                    break
                keep = new_keep
        n = keep.sum(axis=0)
        total = np.where(keep, cube, 0.0).sum(axis=0, dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean[y0:y1] = np.where(n > 0, total / np.maximum(n, 1), np.nan)
        count[y0:y1] = n
    return mean.reshape(shape), count.reshape(shape)


def _masked_median(cube, keep):
    """Median along axis 0 of the values where ``keep`` is True (NaN where none): the invalid
    values sort last as +inf, the median is read at the middle of the valid ones (a sort of N
    values per pixel is much faster than nanmedian for the few frames of a stack)."""
    n_frames = cube.shape[0]
    v = np.where(keep, cube, np.inf).astype(np.float32)
    if n_frames <= 6:
        # odd-even transposition network of element-wise min/max: faster than a strided sort
        rows = [v[i] for i in range(n_frames)]
        for p in range(n_frames):
            for j in range(p % 2, n_frames - 1, 2):
                lo = np.minimum(rows[j], rows[j + 1])
                rows[j + 1] = np.maximum(rows[j], rows[j + 1])
                rows[j] = lo
        v = np.stack(rows)
    else:
        v.sort(axis=0)
    n = keep.sum(axis=0)
    lo = np.clip((n - 1) // 2, 0, n_frames - 1)[None]
    hi = np.clip(n // 2, 0, n_frames - 1)[None]
    med = 0.5 * (np.take_along_axis(v, lo, 0)[0] + np.take_along_axis(v, hi, 0)[0])
    return np.where(n > 0, med, np.nan).astype(np.float32)


def read_noise(biases, gain: float = 1.0, region: tuple[slice, slice] | None = None) -> float:
    """Read noise from bias pairs (Janesick, Photon Transfer, 2007): for each consecutive pair the
    robust standard deviation of the difference divided by sqrt(2) (row-wise overscan residuals and
    fixed pattern cancel in the difference), then the median over pairs, times ``gain``.

    ``biases``: a sequence of at least two overscan-corrected (or raw) bias frames; ``region``:
    optional ``(rows, cols)`` slices to use. Returns the read noise in electrons (in ADU when
    ``gain`` is 1).
    """
    frames = [np.asarray(b, dtype=np.float64) for b in biases]
    if len(frames) < 2:
        raise ValueError("read noise needs at least two bias frames")
    values = []
    for a, b in itertools.pairwise(frames):
        if region is not None:
            a, b = a[region], b[region]
        d = (a - b).ravel()
        d = d[np.isfinite(d)]
        # one clip pass against cosmic rays and hot pixels, then the plain std of what is kept
        s = mad_std(d)
        keep = np.abs(d - np.median(d)) < 5 * s if s > 0 else np.ones(d.shape, bool)
        values.append(np.std(d[keep]) / np.sqrt(2.0) / _clip_correction(5.0))
    return float(np.median(values) * gain)


def _clip_correction(k: float) -> float:
    """Ratio of the standard deviation of a unit Gaussian truncated at +-k to 1."""
    from scipy.stats import norm
    p = norm.cdf(k) - norm.cdf(-k)
    return float(np.sqrt(1 - 2 * k * norm.pdf(k) / p))
