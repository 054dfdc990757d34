"""Fast biweight location and scale along the last axis (Tukey biweight, one iteration from the
median, as astropy.stats and Karl's biwt.f), for the many small windows of the bias kernels."""

from __future__ import annotations

import numpy as np


def biweight(x: np.ndarray, c_loc: float = 6.0, c_scale: float = 9.0, scale: bool = True):
    """(location, scale) over the last axis; NaN entries are ignored."""
    x = np.asarray(x, np.float32)
    median = np.nanmedian if np.isnan(x).any() else np.median
    med = median(x, axis=-1, keepdims=True)
    d = x - med
    mad = median(np.abs(d), axis=-1, keepdims=True)
    mad = np.where(mad > 0, mad, 1e-6)
    u = d / (c_loc * mad)
    w = np.where(np.abs(u) < 1, (1 - u * u) ** 2, 0.0)
    w = np.where(np.isfinite(d), w, 0.0)
    dd = np.nan_to_num(d)
    loc = (med + np.sum(w * dd, axis=-1, keepdims=True) / np.maximum(np.sum(w, axis=-1, keepdims=True), 1e-12))[..., 0]
    if not scale:
        return loc, None
    u = dd / (c_scale * mad)
    inside = (np.abs(u) < 1) & np.isfinite(d)
    n = np.sum(np.isfinite(d), axis=-1)
    num = np.sum(np.where(inside, dd**2 * (1 - u * u) ** 4, 0.0), axis=-1)
    den = np.sum(np.where(inside, (1 - u * u) * (1 - 5 * u * u), 0.0), axis=-1)
    sc = np.sqrt(n * num) / np.maximum(np.abs(den), 1e-12)
    return loc, sc
