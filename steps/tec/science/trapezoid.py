"""Trapezoid transit fit whose model feeds the model-shift test.

TEC runbook step 13 (original: ``modshift_test.py`` with the minimiser of ``pgmcmc.py``).  The
transit is a symmetric trapezoid: depth ``depth``, total duration ``T``, flat bottom of full
width ``flat_ratio * T`` and linear ingress/egress between.  (The original's docstring calls
the flat-bottom parameter the "ingress/egress duration"; its code, and this module, use it as the
flat-bottom width.)

Fit, as in the original:

* period fixed; free: epoch within ``+-T_DV`` of the DV epoch, depth in ``[0, 10 x DV depth]``,
  ``T`` in ``[0.1, 3] x T_DV``, flat-bottom ratio in ``[0, 1]``;
* data used: ``|phase| < 4 T_DV / P`` and ``|phase| <= 0.25`` around the DV ephemeris;
* cadences within ``1.5 T_DV`` of mid-transit are integrated over the cadence with 15
  sub-samples (cadence = median spacing of the valid times);
* chi-square with the (Gaussian-normalised) MAD of the flux as the error;
* Nelder-Mead from 6 starts drawn uniformly inside the bounds (``rng``, a
  ``numpy.random.Generator``, makes it reproducible), keeping the lowest chi-square.

The fit runs in the native kernel (``astroflow._modshift.trapezoid_fit``, native/modshift/
trapezoid.hpp) where it is built: the same chi-square evaluated in phase (the fitted points sorted
by their offset from the DV epoch, so only the band of points the trial transit can touch is
modelled; every other point adds its flux^2) and a port of scipy's bounded Nelder-Mead, step for
step, so the fits agree with this module's numpy code (``method="numpy"``, the reference and the
fallback) to rounding, about 100 times faster.

The parameters are searched in unit-scaled coordinates (each bound mapped to [0, 1]) with
scipy's bounded Nelder-Mead, where the original used a logistic transform; both keep the
search inside the bounds and make the tolerances relative to the allowed ranges.

Returned model: relative flux with baseline 0 (``-depth`` at the bottom), evaluated at every
input time, the form modshift reads (``time flux model``).  The original evaluates the model
only on the fitted points and leaves the rest at baseline; here every point gets the model (the
same values wherever the transit is, since the transit lies inside the fitted region).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from astroflow.filters import MAD_TO_SIGMA

SUPERSAMPLE = 15
SUPERSAMPLE_WITHIN = 1.5     # in units of the DV duration
FIT_REGION = 4.0             # in units of the DV duration
MAX_FIT_PHASE = 0.25
N_STARTS = 6


def phase_offset(time, period, epoch):
    """Time from the nearest mid-transit, in (-P/2, P/2] (days)."""
    dt = np.mod(np.asarray(time, dtype=float) - epoch, period)
    return np.where(dt > 0.5 * period, dt - period, dt)


def trapezoid_profile(dt, depth, duration, flat_duration):
    """Trapezoid relative flux (baseline 0) at offsets ``dt`` from mid-transit (same units)."""
    x = np.abs(dt)
    half, flat_half = 0.5 * duration, 0.5 * flat_duration
    ramp = max(half - flat_half, 1e-300)
    slope = np.clip((half - x) / ramp, 0.0, 1.0)
    return -depth * np.where(x <= flat_half, 1.0, slope)


def trapezoid_model(time, period, epoch, depth, duration_h, flat_ratio, cadence_days=0.0,
                    supersample=SUPERSAMPLE, supersample_within_h=None):
    """Trapezoid light curve, relative flux with baseline 0, at ``time`` (BTJD).

    ``depth`` is fractional (1e-3 = 1000 ppm), ``duration_h`` the total duration in hours,
    ``flat_ratio`` the flat-bottom width over the total duration.  When ``cadence_days`` > 0,
    points within ``supersample_within_h`` (default 1.5 x duration) of mid-transit are averaged
    over ``supersample`` sub-samples spanning the cadence.
    """
    time = np.asarray(time, dtype=float)
    dur = duration_h / 24.0
    flat = flat_ratio * dur
    dt = phase_offset(time, period, epoch)
    model = trapezoid_profile(dt, depth, dur, flat)
    if cadence_days > 0 and supersample > 1:
        within = (1.5 * dur if supersample_within_h is None else supersample_within_h / 24.0)
        sel = np.abs(dt) < within
        if np.any(sel):
            step = cadence_days / supersample
            sub = (np.arange(supersample) - (supersample - 1) / 2.0) * step
            model[sel] = trapezoid_profile(dt[sel, None] + sub[None, :], depth, dur,
                                           flat).mean(axis=1)
    return model


@dataclass
class TrapezoidFit:
    """Result of ``trapezoid_fit``.  ``model`` is relative flux (baseline 0) at every time."""

    period: float
    epoch: float
    depth: float           # fractional
    depth_ppm: float
    duration_h: float
    flat_ratio: float
    chi2: float
    n_fit: int             # points in the fitted region
    cadence_days: float
    model: np.ndarray
    success: bool


def _native():
    """The compiled kernel, or None where it is not built (the numpy code then runs)."""
    try:
        import astroflow._modshift as native
    except ImportError:
        return None
    return native if hasattr(native, "trapezoid_fit") else None


def trapezoid_fit(time, flux, period, epoch, duration_h, dv_depth_ppm, rng, valid=None,
                  n_starts=N_STARTS, supersample=SUPERSAMPLE, fit_region=FIT_REGION, method=None):
    """Runbook step 13's trapezoid fit of a detrended light curve.

    ``flux``: relative flux with baseline 0 (``altDetrend - 1`` or DV ``lc_med_detrend``);
    ``period`` (d), ``epoch`` (BTJD), ``duration_h`` and ``dv_depth_ppm``: the DV all-transit
    fit, which sets the start region and the bounds.  ``valid``: optional mask of usable
    points (non-finite time or flux are dropped anyway).  ``rng``: numpy Generator for the
    random starts.  Returns a ``TrapezoidFit``; ``success`` is False (model all zero, NaN
    parameters) when there are fewer than 5 points in the fit region or no start converged.
    ``method``: "native" (the compiled kernel), "numpy" (scipy's Nelder-Mead on the numpy
    chi-square) or None (native where built).
    """
    time = np.asarray(time, dtype=float)
    flux = np.asarray(flux, dtype=float)
    good = np.isfinite(time) & np.isfinite(flux)
    if valid is not None:
        good &= np.asarray(valid, dtype=bool)
    t, y = time[good], flux[good]
    cadence = float(np.abs(np.median(np.diff(t)))) if t.size > 1 else 0.0
    sigma = np.median(np.abs(y - np.median(y))) * MAD_TO_SIGMA if y.size else np.nan
    if not np.isfinite(sigma) or sigma <= 0:
        sigma = np.std(y) if y.size > 1 and np.std(y) > 0 else 1.0

    dur_d = duration_h / 24.0
    dt0 = phase_offset(t, period, epoch)
    fit = (np.abs(dt0) < fit_region * dur_d) & (np.abs(dt0) <= MAX_FIT_PHASE * period)
    tf, yf = t[fit], y[fit]
    n_fit = int(fit.sum())

    lo = np.array([epoch - dur_d, 0.0, 0.1 * duration_h, 0.0])
    hi = np.array([epoch + dur_d, 10.0 * dv_depth_ppm / 1e6, 3.0 * duration_h, 1.0])
    span = hi - lo
    # sub-sampling decided once, around the DV ephemeris, as in the original
    sub_sel = np.abs(phase_offset(tf, period, epoch)) < SUPERSAMPLE_WITHIN * dur_d
    step = cadence / supersample
    sub = (np.arange(supersample) - (supersample - 1) / 2.0) * step

    def model_at(params, times, sub_mask):
        t0, depth, dur_h, ratio = params
        dt = phase_offset(times, period, t0)
        d = dur_h / 24.0
        m = np.zeros_like(dt)
        # only points that can overlap the transit need evaluating (the rest stay 0)
        near = np.abs(dt) < 0.5 * d + cadence
        plain = near & ~sub_mask
        m[plain] = trapezoid_profile(dt[plain], depth, d, ratio * d)
        fine = near & sub_mask
        if np.any(fine):
            if cadence > 0 and supersample > 1:
                m[fine] = trapezoid_profile(dt[fine, None] + sub[None, :], depth, d,
                                            ratio * d).mean(axis=1)
            else:
                m[fine] = trapezoid_profile(dt[fine], depth, d, ratio * d)
        return m

    def chi2(u):
        resid = (yf - model_at(lo + u * span, tf, sub_sel)) / sigma
        return float(np.dot(resid, resid))

    nan_fit = TrapezoidFit(period, np.nan, np.nan, np.nan, np.nan, np.nan, np.nan, n_fit,
                           cadence, np.zeros_like(time), False)
    if n_fit < 5 or not (dv_depth_ppm > 0 and duration_h > 0 and period > 0):
        return nan_fit

    # the DV solution is the first start (the original used random starts only, and all of
    # them can stall at zero depth where the model does not touch the data)
    dv_start = (np.array([epoch, dv_depth_ppm / 1e6, duration_h, 0.5]) - lo) / span
    starts = [dv_start] + [rng.uniform(0.0, 1.0, 4) for _ in range(n_starts - 1)]
    best_u, best_chi2 = None, np.inf
    native = _native() if method in (None, "native") else None
    if method == "native" and native is None:
        raise RuntimeError("the native trapezoid fit (astroflow._modshift) is not built")
    if native is not None:
        res = native.trapezoid_fit(tf, yf, sub_sel, float(sigma), cadence,
                                   int(supersample), float(epoch), float(period), lo, span, np.array(starts),
                                   xatol=1e-5, fatol=1e-5, maxiter=2000, maxfev=2000)
        if np.isfinite(res["fun"]):
            best_u, best_chi2 = np.asarray(res["x"]), float(res["fun"])
    else:
        for start in starts:
            res = minimize(chi2, start, method="Nelder-Mead",
                           bounds=[(0.0, 1.0)] * 4,
                           options={"xatol": 1e-5, "fatol": 1e-5, "maxiter": 2000, "maxfev": 2000})
            if np.isfinite(res.fun) and res.fun < best_chi2:
                best_u, best_chi2 = res.x, float(res.fun)
    if best_u is None:
        return nan_fit

    t0, depth, dur_h, ratio = lo + best_u * span
    # full model at every time: sub-sample within 1.5 T_DV of the DV ephemeris as in the fit
    finite = np.isfinite(time)
    model = np.zeros_like(time)
    sub_all = np.abs(phase_offset(time[finite], period, epoch)) < SUPERSAMPLE_WITHIN * dur_d
    model[finite] = model_at((t0, depth, dur_h, ratio), time[finite], sub_all)
    return TrapezoidFit(period=float(period), epoch=float(t0), depth=float(depth),
                        depth_ppm=float(depth * 1e6), duration_h=float(dur_h),
                        flat_ratio=float(ratio), chi2=best_chi2, n_fit=n_fit,
                        cadence_days=cadence, model=model, success=True)
