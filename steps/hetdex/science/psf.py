"""Point sources seen through fibers: the PSF-weighted fiber fraction and the point-source fit.

The PSF is a circular Gaussian of full width ``fwhm``; a fiber of radius 0.75" sees the PSF
convolved with its disc, approximated by a Gaussian of variance sigma^2 + r^2/4, times the fiber
area.  Runbook steps 8-9 (vdrp astrometry, fitradecsp: re-centre at the smallest chi^2, fit FWHM).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import least_squares

from steps.hetdex.science.instrument import FIBER_AREA, FIBER_RADIUS

FWHM_TO_SIGMA = 1.0 / 2.354820045


def fiber_fraction(dx, dy, fwhm):
    """Fraction of a point source's light entering a fiber at offset (dx, dy) arcsec."""
    var = (fwhm * FWHM_TO_SIGMA) ** 2 + FIBER_RADIUS**2 / 4.0
    return FIBER_AREA * np.exp(-0.5 * (np.asarray(dx) ** 2 + np.asarray(dy) ** 2) / var) / (2 * np.pi * var)


def fit_point_source(fx, fy, flux, err, x0, y0, fwhm0=1.7, fit_fwhm=False, max_shift=3.0):
    """Least-squares fit of amplitude, position (and FWHM) to fiber fluxes.

    ``fx, fy``: fiber positions (arcsec); ``flux, err``: one value per fiber (e.g. a band sum).
    Returns dict(x, y, amp, fwhm, chi2, n) or None when fewer than 5 usable fibers.
    """
    fx, fy, flux, err = (np.asarray(a, float) for a in (fx, fy, flux, err))
    ok = np.isfinite(flux) & np.isfinite(err) & (err > 0) & (np.hypot(fx - x0, fy - y0) < 6.0)
    if ok.sum() < 5:
        return None
    fx, fy, flux, err = fx[ok], fy[ok], flux[ok], err[ok]

    def model(p):
        fw = p[3] if fit_fwhm else fwhm0
        return p[2] * fiber_fraction(fx - p[0], fy - p[1], fw) + p[4]

    amp0 = max(flux.max() / fiber_fraction(0, 0, fwhm0), 1e-6)
    p0 = [x0, y0, amp0, fwhm0, 0.0]
    lo = [x0 - max_shift, y0 - max_shift, 0.0, 0.8, -np.inf]
    hi = [x0 + max_shift, y0 + max_shift, np.inf, 4.0, np.inf]
    res = least_squares(lambda p: (model(p) - flux) / err, p0, bounds=(lo, hi), x_scale="jac")
    chi2 = float(np.sum(res.fun**2) / max(len(flux) - (5 if fit_fwhm else 4), 1))
    return {"x": res.x[0], "y": res.x[1], "amp": res.x[2], "fwhm": res.x[3] if fit_fwhm else fwhm0,
            "bkg": res.x[4], "chi2": chi2, "n": int(len(flux))}


def optimal_weights(fx, fy, x, y, fwhm):
    """PSF weights of each fiber for a source at (x, y) (the fiber fractions)."""
    return fiber_fraction(np.asarray(fx) - x, np.asarray(fy) - y, fwhm)
