"""Gap filling with autoregressive noise and padding to a power of two.

Replaces TEC's ``fluxts_conditioning.fill_noise`` and
``fluxts_conditioning.fill_extend_fluxts`` (which used ``spectrum.arburg``).
The wavelet search (``tps.py``) needs an evenly sampled series whose length
is a power of two with no holes; every hole (and the padding at the end,
treated circularly so that it joins the start) is filled with noise from
AR(4) models fitted by Burg's method to the data on either side.

Corrections to the original, on purpose:

* The original cross-faded the two fills the wrong way round (the fill
  continuing the data *before* a gap was weighted zero at the start of the
  gap); here each side's fill dominates next to the data it continues.
* The original seeded the forward filter with its initial conditions in the
  wrong order and ran the post-gap model forward; here the pre-gap model
  continues forward from the last samples and the post-gap model runs
  backward in time from the first samples (an AR process has the same
  autocovariance in both directions).
* The runbook hand-edits ``fill_noise`` because a side with no usable data
  gives a NaN or zero noise scale and ``numpy.random.normal`` raised; here a
  side without a usable scale borrows the other side's, and with neither the
  fill is the bare level (no noise).
* The fill follows a straight line between the two sides' means instead of
  assuming that the series sits at 1.0.
"""
from __future__ import annotations

import numpy as np

from astroflow.filters import MAD_TO_SIGMA, mad_std  # astropy's robust scale  # noqa: F401


def burg_ar(x: np.ndarray, order: int) -> tuple[np.ndarray, float]:
    """AR coefficients by Burg's method (replaces ``spectrum.arburg``).

    Returns ``(a, var)`` for the model
    ``x[n] + a[0] x[n-1] + ... + a[p-1] x[n-p] = e[n]``, ``var`` being the
    innovation variance, i.e. ``lfilter([1], [1, *a], e)`` simulates it.
    """
    x = np.asarray(x, dtype=float)
    if x.size <= order:
        raise ValueError(f"need more than {order} samples, got {x.size}")
    f = x[1:].copy()     # forward prediction errors  f_m(n)
    b = x[:-1].copy()    # backward prediction errors b_m(n-1)
    a = np.array([1.0])
    var = float(np.dot(x, x) / x.size)
    for _ in range(order):
        den = np.dot(f, f) + np.dot(b, b)
        k = -2.0 * np.dot(f, b) / den if den > 0 else 0.0
        ext = np.append(a, 0.0)
        a = ext + k * ext[::-1]
        var *= 1.0 - k * k
        f, b = (f + k * b)[1:], (b + k * f)[:-1]
    return a[1:], var


def _clip(y: np.ndarray, nsig: float = 3.0) -> np.ndarray:
    """Drop > nsig outliers of a mean-subtracted segment, loosening the cut
    (robust -> plain std, then 1.5 x) while fewer than 80 % survive."""
    if y.size == 0:
        return y
    need = int(np.floor(0.8 * y.size))
    robust, plain = mad_std(y), np.std(y)
    for scale, mult in ((robust, 1.0), (plain, 1.0), (plain, 1.5)):
        if not np.isfinite(scale) or scale <= 0:
            continue
        keep = np.abs(y) < nsig * mult * scale
        if keep.sum() >= need:
            return y[keep]
    return y


def _ar_continue(y: np.ndarray, n: int, rng: np.random.Generator,
                 order: int) -> tuple[np.ndarray | None, float]:
    """n samples of AR noise continuing the (mean-free) series y forward.

    Returns (fill, process variance); fill is None when y is too short."""
    if y.size <= order + 1:
        return None, (float(np.var(y)) if y.size > 1 else np.nan)
    a, innov = burg_ar(y, order)
    den = np.concatenate(([1.0], a))
    recent = y[::-1][:order]                            # most recent first
    zi = np.array([-np.dot(den[k + 1:], recent[:order - k]) for k in range(order)])
    e = rng.normal(scale=np.sqrt(max(innov, 0.0)), size=n)
    from scipy.signal import lfilter  # here: importing scipy.signal costs a second (astroflow status imports the pipeline)

    return lfilter([1.0], den, e, zi=zi)[0], float(np.var(y))


def fill_noise(n: int, pre: np.ndarray, post: np.ndarray,
               rng: np.random.Generator, order: int = 4) -> np.ndarray:
    """Fill n samples between the data ``pre`` (before) and ``post`` (after).

    Replaces ``fluxts_conditioning.fill_noise``; see the module notes.
    """
    pre = np.asarray(pre, dtype=float)
    post = np.asarray(post, dtype=float)
    mpre = float(np.mean(pre)) if pre.size else np.nan
    mpost = float(np.mean(post)) if post.size else np.nan
    if not np.isfinite(mpre):
        mpre = mpost
    if not np.isfinite(mpost):
        mpost = mpre
    if not np.isfinite(mpre):
        return np.zeros(n)
    pre_c = _clip(pre - mpre)
    post_c = _clip(post - mpost)

    fill_a, var_a = _ar_continue(pre_c, n, rng, order)
    fill_b, var_b = _ar_continue(post_c[::-1], n, rng, order)
    # a side without a usable noise scale borrows the other side's
    if not (np.isfinite(var_a) and var_a > 0):
        var_a = var_b
    if not (np.isfinite(var_b) and var_b > 0):
        var_b = var_a
    if not (np.isfinite(var_a) and var_a > 0):
        var_a = var_b = 0.0
    if fill_a is None:
        fill_a = rng.normal(scale=np.sqrt(var_a), size=n)
    if fill_b is None:
        fill_b = rng.normal(scale=np.sqrt(var_b), size=n)
    fill_b = fill_b[::-1]

    r = (np.arange(n) + 0.5) / n            # 0 next to pre, 1 next to post
    wa, wb = 1.0 - r, r
    num = wa * var_a + wb * var_b
    den = wa * wa * var_a + wb * wb * var_b
    scl = np.sqrt(np.divide(num, den, out=np.ones(n), where=den > 0))
    return (wa * fill_a + wb * fill_b) * scl + (mpre + r * (mpost - mpre))


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) of the runs of True in a boolean array."""
    d = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return np.flatnonzero(d == 1), np.flatnonzero(d == -1)


def fill_extend(flux: np.ndarray, valid: np.ndarray, window: int,
                rng: np.random.Generator, order: int = 4
                ) -> tuple[np.ndarray, np.ndarray]:
    """Pad to the next power of two and fill every gap with AR noise.

    Replaces ``fluxts_conditioning.fill_extend_fluxts``. The padded series is
    treated as circular, so the padding and any invalid cadences at the start
    form one gap between the end and the start of the data. Gaps are filled
    from the last to the first, and filled samples count as data for the gaps
    filled after them. ``window`` is the number of cadences on each side used
    to fit the AR models (raised to twice the median gap length).

    Returns ``(flux_ext, valid_ext)``; ``valid_ext`` is ``valid`` padded with
    False (it marks the real data, not the filled samples).
    """
    flux = np.asarray(flux, dtype=float)
    valid = np.asarray(valid, dtype=bool) & np.isfinite(flux)
    n = flux.size
    if not valid.any():
        raise ValueError("no valid data to fill from")
    n_ext = 1 << int(np.ceil(np.log2(max(n, 2))))
    out = np.zeros(n_ext)
    out[:n] = np.where(valid, flux, 0.0)
    ok = np.zeros(n_ext, dtype=bool)
    ok[:n] = valid
    valid_ext = ok.copy()

    starts, ends = _runs(~ok)
    if starts.size == 0:
        return out, valid_ext
    if starts[0] == 0 and ends[-1] == n_ext and starts.size > 1:
        # the run at the start joins the run at the end (circular)
        ends[-1] = n_ext + ends[0]
        starts, ends = starts[1:], ends[1:]
    window = int(max(window, 2 * int(np.median(ends - starts))))

    for js, je in zip(starts[::-1], ends[::-1]):
        pre_i = np.arange(js - window, js) % n_ext
        post_i = np.arange(je, je + window) % n_ext
        gap_i = np.arange(js, je) % n_ext
        pre = out[pre_i[ok[pre_i]]]
        post = out[post_i[ok[post_i]]]
        out[gap_i] = fill_noise(gap_i.size, pre, post, rng, order)
        ok[gap_i] = True
    return out, valid_ext
