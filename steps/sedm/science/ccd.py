"""CCD kernels of the afternoon calibrations (sedmpy's Debias and Imcombine, as functions).

``overscan_rows``: per-row median of the overscan columns, median-smoothed over 50 rows (the
runbook's "per-row overscan median, 50-px median smoothing"); ``debias``: subtract it, times the
gain (electrons), minus a master bias; ``stack_bias``: the master, a mean with the lowest and
highest value of each pixel rejected when there are more than 7 frames (sedmpy's min/max
``Imcombine``), else the median; ``read_noise``: from the differences of frame pairs.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import median_filter

SMOOTH_ROWS = 50


def overscan_rows(raw: np.ndarray, x0: int, x1: int, smooth: int = SMOOTH_ROWS) -> np.ndarray:
    """(ny,) the overscan level of each row: median over columns ``x0:x1``, median-smoothed over
    ``smooth`` rows (edges reflected)."""
    per_row = np.median(raw[:, x0:x1].astype(np.float32), axis=1)
    return median_filter(per_row, size=smooth, mode="reflect") if smooth > 1 else per_row


def debias(raw: np.ndarray, x0: int, x1: int, gain: float, master: np.ndarray | None = None) -> np.ndarray:
    """Electrons: (raw - overscan per row) x gain, minus ``master`` (electrons above the overscan)."""
    image = (raw.astype(np.float32) - overscan_rows(raw, x0, x1)[:, None]) * np.float32(gain)
    if master is not None:
        if master.shape != image.shape:
            raise ValueError(f"master bias is {master.shape[1]} x {master.shape[0]}, the frame "
                             f"{image.shape[1]} x {image.shape[0]}")
        image -= master.astype(np.float32)
    return image


def stack_bias(frames: list[np.ndarray], minmax_above: int = 7) -> tuple[np.ndarray, str]:
    """The master of debiased bias frames and how it was combined (``minmax mean`` or ``median``)."""
    cube = np.stack([f.astype(np.float32) for f in frames])
    if len(frames) > minmax_above:
        total = cube.sum(axis=0, dtype=np.float64) - cube.min(axis=0) - cube.max(axis=0)
        return (total / (len(frames) - 2)).astype(np.float32), "minmax mean"
    return np.median(cube, axis=0).astype(np.float32), "median"


def clipped_std(values: np.ndarray, nsigma: float = 5.0, iterations: int = 5) -> float:
    """Standard deviation after iterative ``nsigma`` clipping about the median (cosmic rays out)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    for _ in range(iterations):
        med, sd = np.median(v), v.std()
        keep = np.abs(v - med) < nsigma * sd
        if keep.all():
            break
        v = v[keep]
    return float(v.std())


def read_noise(raws: list[np.ndarray], columns: slice, gain: float) -> float:
    """Read noise (electrons) from the raw bias frames: for each consecutive pair, the clipped
    standard deviation of their difference over the imaging ``columns`` after each row's median
    (the level and row ramp, which differ per frame) is taken out, over sqrt(2); the median
    over pairs."""
    values = []
    for a, b in zip(raws[:-1], raws[1:]):
        d = a[:, columns].astype(np.float32) - b[:, columns].astype(np.float32)
        d -= np.median(d, axis=1, keepdims=True)
        values.append(clipped_std(d) / np.sqrt(2.0) * gain)
    return float(np.median(values)) if values else float("nan")


def stack_lamp(frames: list[np.ndarray], masks: list[np.ndarray]) -> np.ndarray:
    """The median of one lamp's debiased frames, each pixel over the frames whose cosmic-ray
    mask leaves it alone; a pixel flagged in every frame keeps all of them.  A cosmic ray hits
    one frame; a flag in every frame is the lamp's own sharp line (LA-Cosmic takes the peaks of
    unresolved arc lines for cosmic rays), so the uncleaned ``b_`` frames are stacked, not the
    cleaned ones, whose line peaks LA-Cosmic replaced by their surroundings."""
    cube = np.stack([f.astype(np.float32) for f in frames])
    flagged = np.stack([np.asarray(m, bool) for m in masks])
    flagged &= ~flagged.all(axis=0)
    cube[flagged] = np.nan
    return np.nanmedian(cube, axis=0).astype(np.float32)
