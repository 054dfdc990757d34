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
    k2 = FWHM_TO_SIGMA**2

    def unpack(p):  # (x, y, amp, bkg, fwhm): the FWHM is a parameter only when fitted
        return p[0], p[1], p[2], p[3], (p[4] if fit_fwhm else fwhm0)

    def residuals(p):
        x, y, amp, bkg, fw = unpack(p)
        return (amp * fiber_fraction(fx - x, fy - y, fw) + bkg - flux) / err

    def jacobian(p):  # analytic: d(model)/d(parameter) / err
        x, y, amp, bkg, fw = unpack(p)
        var = fw**2 * k2 + FIBER_RADIUS**2 / 4.0
        dx, dy = fx - x, fy - y
        f = fiber_fraction(dx, dy, fw)
        cols = [amp * f * dx / var, amp * f * dy / var, f, np.ones_like(f)]
        if fit_fwhm:
            cols.append(amp * f * (0.5 * (dx**2 + dy**2) / var**2 - 1.0 / var) * 2.0 * k2 * fw)
        return np.column_stack(cols) / err[:, None]

    amp0 = max(flux.max() / fiber_fraction(0, 0, fwhm0), 1e-6)
    p0 = [x0, y0, amp0, 0.0] + ([fwhm0] if fit_fwhm else [])
    lo = [x0 - max_shift, y0 - max_shift, 0.0, -np.inf] + ([0.8] if fit_fwhm else [])
    hi = [x0 + max_shift, y0 + max_shift, np.inf, np.inf] + ([4.0] if fit_fwhm else [])
    res = least_squares(residuals, p0, jac=jacobian, bounds=(lo, hi), x_scale="jac")
    x, y, amp, bkg, fw = unpack(res.x)
    chi2 = float(np.sum(res.fun**2) / max(len(flux) - (5 if fit_fwhm else 4), 1))
    return {"x": x, "y": y, "amp": amp, "fwhm": fw, "bkg": bkg, "chi2": chi2, "n": int(len(flux))}


def optimal_weights(fx, fy, x, y, fwhm):
    """PSF weights of each fiber for a source at (x, y) (the fiber fractions)."""
    return fiber_fraction(np.asarray(fx) - x, np.asarray(fy) - y, fwhm)
