"""Robust statistics along the last axis of an array, in native code (``native/filters``).

``running_median`` is ``scipy.ndimage.median_filter`` with a window along the last axis only,
with scipy's edge modes, from a sorted window updated one value at a time (about twenty times
faster at the windows the CCD kernels use). ``nanmedian`` is ``np.nanmedian`` over the last axis
without numpy's masked-array path for short rows. ``biweight`` is Tukey's biweight location and scale,
one iteration from the median with the MAD as scale, as ``astropy.stats.biweight_location`` and
``biweight_scale`` compute them (c = 6 and c = 9), over many small windows at once.

The robust scale is astropy's: :func:`mad_std` is ``astropy.stats.mad_std`` (the MAD times
1 / Phi^-1(3/4) = 1.4826..., a Gaussian's sigma), and :data:`MAD_TO_SIGMA` is that same factor for
the forms astropy does not compute (a MAD over moving windows, or about a fixed centre).  The
pipelines use these two, never a constant of their own (1.4826, 1 / 0.6745).
"""

from __future__ import annotations

import numpy as np

from astroflow import _filters

#: The factor ``astropy.stats.mad_std`` applies to the median absolute deviation: 1 / Phi^-1(3/4).
MAD_TO_SIGMA = float(1.0 / __import__("scipy.special", fromlist=["ndtri"]).ndtri(0.75))


def mad_std(x, axis=None, ignore_nan: bool = False):
    """``astropy.stats.mad_std``: the median absolute deviation scaled to a Gaussian's sigma (a
    float, or an array with ``axis``); NaN for an empty array instead of astropy's warning."""
    from astropy.stats import mad_std as astropy_mad_std

    x = np.asarray(x, dtype=float)
    if x.size == 0:
        return np.nan
    out = astropy_mad_std(x, axis=axis, ignore_nan=ignore_nan)
    return float(out) if np.ndim(out) == 0 else np.asarray(out)


_PAD = {"nearest": "edge", "reflect": "symmetric", "mirror": "reflect", "wrap": "wrap"}


def running_median(a: np.ndarray, size: int, mode: str = "nearest") -> np.ndarray:
    """Median over ``size`` consecutive values along the last axis, same shape as ``a``.

    Equal to ``scipy.ndimage.median_filter(a, size=(1, ..., size), mode=mode)`` for the modes
    nearest, reflect, mirror and wrap (for an even ``size`` the upper middle value, as scipy).
    Floating inputs keep their type; NaN is refused.
    """
    a = np.asarray(a)
    if not np.issubdtype(a.dtype, np.floating):
        a = a.astype(np.float64)
    try:
        pad = _PAD[mode]
    except KeyError:
        raise ValueError(f"running_median: unknown mode {mode!r}; one of {', '.join(_PAD)}") from None
    widths = [(0, 0)] * (a.ndim - 1) + [(size // 2, (size - 1) // 2)]
    return _filters.running_median(np.pad(a, widths, mode=pad), int(size))


def biweight(x: np.ndarray, c_loc: float = 6.0, c_scale: float = 9.0, scale: bool = True):
    """(location, scale) of the biweight over the last axis (float64); NaN entries are ignored.

    With ``scale=False`` the second element is None. A window with no finite value gives NaN.
    """
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    return _filters.biweight(x, float(c_loc), float(c_scale), bool(scale))


def nanmedian(x: np.ndarray) -> np.ndarray:
    """Median of the finite values over the last axis (float64; NaN where a row has none)."""
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    return _filters.median(x)
