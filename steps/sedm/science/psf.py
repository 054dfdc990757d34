"""The point-source model of an SEDM cube and its fit (pysedm's ``extractstar`` / psfcube, in our words).

Pure functions over NumPy arrays; positions in arcsec east and north of the IFU centre.

* :func:`moffat` -- the PSF: a circular Moffat profile of full width ``fwhm`` and index ``beta``,
  normalised to one over the plane, integrated over each spaxel's lenslet (a square of the
  lenslet's area, sampled ``SUBSAMPLE`` x ``SUBSAMPLE``): a spaxel's model is the fraction of the
  source's light it receives.  pysedm fits a Gaussian + Moffat sum (NormalMoffat); one Moffat with
  a free index covers the same range of wing shapes with fewer degenerate parameters.
* :func:`fit_slice` -- one (meta)slice: flux per spaxel = amplitude x PSF + background, the
  background flat or tilted (pysedm's NormalMoffatFlat / NormalMoffatTilted, a plane in x and y):
  the sky is part of the fit, so the cube need not be sky-subtracted.  Position, width and index
  are fitted by least squares with the linear terms (amplitude, background) solved exactly at
  each step (variable projection), weighted by the variance; the position is bounded to within
  ``centroid_err`` of the guess (pysedm: 3 spaxels from the guider, 5 from the brightest spaxel,
  1.5 for a hand-given centroid).
* :func:`smooth_psf` -- the metaslice fits turned into a PSF at every wavelength: the position a
  quadratic in wavelength (differential atmospheric refraction is smooth), the width a power law
  ``fwhm(l) = fwhm_6000 (l / 6000) ** index`` (seeing goes as l^-0.2), the Moffat index their
  weighted median; slices whose amplitude has S/N below ``min_snr`` are left out and, when fewer
  than two remain, the guess position and ``fwhm_guess`` stand.
* :func:`forced_photometry` -- the PSF held fixed, amplitude and background fitted per wavelength
  (linear, weighted): the spectrum and its variance in the cube's units.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

SUBSAMPLE = 3
BETA_BOUNDS = (1.5, 10.0)
REFERENCE_A = 6000.0


def lenslet_side(pitch: float) -> float:
    """Side of the square with a hexagonal lenslet's area (pitch = centre spacing)."""
    return float(np.sqrt(np.sqrt(3.0) / 2.0) * pitch)


def pitch_of(x: np.ndarray, y: np.ndarray) -> float:
    """The spaxel spacing: median distance from each spaxel to its nearest neighbour."""
    d = np.hypot(x[:, None] - x[None, :], y[:, None] - y[None, :])
    np.fill_diagonal(d, np.inf)
    return float(np.median(d.min(axis=1)))


def moffat(x: np.ndarray, y: np.ndarray, x0: float, y0: float, fwhm: float, beta: float, side: float) -> np.ndarray:
    """Fraction of a point source at (x0, y0) falling in each spaxel (centres x, y; lenslet side)."""
    alpha2 = (fwhm / (2.0 * np.sqrt(2.0 ** (1.0 / beta) - 1.0))) ** 2
    sub = (np.arange(SUBSAMPLE) - (SUBSAMPLE - 1) / 2.0) * side / SUBSAMPLE
    dx = (x - x0)[:, None, None] + sub[None, :, None]
    dy = (y - y0)[:, None, None] + sub[None, None, :]
    density = (beta - 1.0) / (np.pi * alpha2) * (1.0 + (dx ** 2 + dy ** 2) / alpha2) ** -beta
    return density.reshape(x.size, -1).mean(axis=1) * side ** 2


def background_terms(x: np.ndarray, y: np.ndarray, background: str) -> np.ndarray:
    """Design columns (n, k) of the background: ``flat`` (k=1), ``tilted`` (a plane, k=3), ``none``."""
    if background == "none":
        return np.zeros((x.size, 0))
    if background == "flat":
        return np.ones((x.size, 1))
    if background == "tilted":
        return np.column_stack([np.ones(x.size), x - x.mean(), y - y.mean()])
    raise ValueError(f"background {background!r}: expected none, flat or tilted")


def _linear(profile: np.ndarray, bkg: np.ndarray, data: np.ndarray, weight: np.ndarray):
    """Weighted least squares of data = a * profile + bkg @ b: coefficients, covariance, residual/sigma."""
    design = np.column_stack([profile, bkg])
    sw = np.sqrt(weight)
    a = design * sw[:, None]
    ata = a.T @ a
    try:
        cov = np.linalg.inv(ata)
    except np.linalg.LinAlgError:
        cov = np.linalg.pinv(ata)
    coef = cov @ (a.T @ (data * sw))
    return coef, cov, (data - design @ coef) * sw


@dataclass(frozen=True)
class SliceFit:
    wavelength: float
    x: float
    y: float
    fwhm: float
    beta: float
    amplitude: float
    amplitude_err: float
    x_err: float
    y_err: float
    chi2_dof: float
    ok: bool

    @property
    def snr(self) -> float:
        return self.amplitude / self.amplitude_err if self.amplitude_err > 0 else 0.0


def fit_slice(x, y, data, variance, guess: tuple[float, float], *, wavelength: float, centroid_err: float,
              fwhm_guess: float, side: float, background: str = "tilted",
              fwhm_bounds: tuple[float, float] = (0.5, 6.0)) -> SliceFit:
    """Fit one (meta)slice: data, variance per spaxel at spaxel centres x, y (arcsec)."""
    good = np.isfinite(data) & np.isfinite(variance) & (variance > 0)
    x, y, data, w = x[good], y[good], data[good], 1.0 / variance[good]
    bkg = background_terms(x, y, background)
    gx, gy = guess
    lo = [gx - centroid_err, gy - centroid_err, fwhm_bounds[0], BETA_BOUNDS[0]]
    hi = [gx + centroid_err, gy + centroid_err, fwhm_bounds[1], BETA_BOUNDS[1]]
    start = [gx, gy, float(np.clip(fwhm_guess, *fwhm_bounds)), 3.0]

    def resid(p):
        return _linear(moffat(x, y, p[0], p[1], p[2], p[3], side), bkg, data, w)[2]

    nan = float("nan")
    if x.size < 4 + bkg.shape[1]:
        return SliceFit(wavelength, gx, gy, fwhm_guess, 3.0, nan, nan, nan, nan, nan, False)
    sol = least_squares(resid, start, bounds=(lo, hi), x_scale=[0.2, 0.2, 0.2, 1.0], max_nfev=200)
    coef, cov, r = _linear(moffat(x, y, *sol.x, side), bkg, data, w)
    dof = max(x.size - len(start) - coef.size, 1)
    chi2 = float(r @ r) / dof
    try:
        jcov = np.linalg.inv(sol.jac.T @ sol.jac) * max(chi2, 1.0)
        x_err, y_err = float(np.sqrt(jcov[0, 0])), float(np.sqrt(jcov[1, 1]))
    except np.linalg.LinAlgError:
        x_err = y_err = nan
    amp_err = float(np.sqrt(cov[0, 0] * max(chi2, 1.0)))
    return SliceFit(wavelength, float(sol.x[0]), float(sol.x[1]), float(sol.x[2]), float(sol.x[3]),
                    float(coef[0]), amp_err, x_err, y_err, chi2, bool(sol.success))


@dataclass(frozen=True)
class PsfModel:
    """The PSF at every wavelength: position (arcsec), FWHM (arcsec), Moffat index; ``fitted``
    says whether the metaslices constrained it (else the guess and ``fwhm_guess``)."""

    x: np.ndarray
    y: np.ndarray
    fwhm: np.ndarray
    beta: float
    fitted: bool
    n_slices: int

    def at(self, j: int) -> tuple[float, float, float]:
        return float(self.x[j]), float(self.y[j]), float(self.fwhm[j])


def smooth_psf(fits_: list[SliceFit], wavelength: np.ndarray, guess: tuple[float, float], *, fwhm_guess: float,
               min_snr: float = 5.0, beta_guess: float = 3.0) -> PsfModel:
    """The metaslice fits as a smooth PSF on ``wavelength`` (see the module docstring)."""
    lam = np.asarray(wavelength, float)
    use = [f for f in fits_ if f.ok and np.isfinite(f.amplitude) and f.snr >= min_snr]
    if len(use) < 2:
        n = lam.size
        return PsfModel(np.full(n, guess[0]), np.full(n, guess[1]), np.full(n, fwhm_guess), beta_guess, False, len(use))
    wl = np.array([f.wavelength for f in use]) / REFERENCE_A - 1.0
    u = lam / REFERENCE_A - 1.0
    deg = min(2, len(use) - 1)

    def poly(values, errors):
        err = np.where(np.isfinite(errors) & (errors > 0), errors, np.nanmedian(errors[errors > 0])
                       if np.any(errors > 0) else 1.0)
        return np.polynomial.polynomial.polyval(u, np.polynomial.polynomial.polyfit(wl, values, deg, w=1.0 / err))

    x = poly(np.array([f.x for f in use]), np.array([f.x_err for f in use]))
    y = poly(np.array([f.y for f in use]), np.array([f.y_err for f in use]))
    snr = np.array([f.snr for f in use])
    logl = np.log(np.array([f.wavelength for f in use]) / REFERENCE_A)
    logf = np.log(np.array([f.fwhm for f in use]))
    if len(use) >= 3 and np.ptp(logl) > 0:
        slope, icept = np.polynomial.polynomial.polyfit(logl, logf, 1, w=snr)[::-1]
    else:
        slope, icept = -0.2, float(np.average(logf - (-0.2) * logl, weights=snr))
    fwhm = np.exp(icept + slope * np.log(lam / REFERENCE_A))
    order = np.argsort([f.beta for f in use])
    cum = np.cumsum(snr[order])
    beta = float(np.array([f.beta for f in use])[order][np.searchsorted(cum, cum[-1] / 2.0)])
    return PsfModel(x, y, fwhm, beta, True, len(use))


def forced_photometry(x, y, flux, variance, psf: PsfModel, *, side: float, background: str = "tilted"):
    """Amplitude (the source's total flux) and its variance at every wavelength, the PSF fixed.

    ``flux``/``variance``: (n_lambda, n_spaxel).  Returns flux, variance and the background's
    level per spaxel (at the centre of the spaxels used), each (n_lambda,); NaN where a wavelength
    has too few good spaxels."""
    nl = flux.shape[0]
    out_f, out_v, out_b = np.full(nl, np.nan), np.full(nl, np.nan), np.full(nl, np.nan)
    bkg_all = background_terms(x, y, background)
    for j in range(nl):
        good = np.isfinite(flux[j]) & np.isfinite(variance[j]) & (variance[j] > 0)
        if good.sum() < 2 + bkg_all.shape[1]:
            continue
        x0, y0, fw = psf.at(j)
        prof = moffat(x[good], y[good], x0, y0, fw, psf.beta, side)
        coef, cov, _ = _linear(prof, bkg_all[good], flux[j, good], 1.0 / variance[j, good])
        out_f[j], out_v[j] = coef[0], cov[0, 0]
        if coef.size > 1:
            out_b[j] = coef[1]
    return out_f, out_v, out_b


def aperture_photometry(x, y, flux, variance, psf: PsfModel, *, side: float, radius: float,
                        annulus: tuple[float, float]):
    """The source's flux summed in a circle of ``radius`` (arcsec) about the PSF position at every
    wavelength, less the sky (the median spaxel of the ``annulus``, inner and outer radius, times
    the spaxels summed), divided by the fraction of the PSF the circle holds (so that it compares
    with :func:`forced_photometry`): the runbook's hand extraction ("aperture").  Returns flux and
    variance, each (n_lambda,); NaN where the circle or the annulus has no good spaxel."""
    nl = flux.shape[0]
    out_f, out_v = np.full(nl, np.nan), np.full(nl, np.nan)
    for j in range(nl):
        x0, y0, fw = psf.at(j)
        r = np.hypot(x - x0, y - y0)
        good = np.isfinite(flux[j]) & np.isfinite(variance[j])
        inside, ring = good & (r <= radius), good & (r >= annulus[0]) & (r <= annulus[1])
        if not inside.any() or not ring.any():
            continue
        enclosed = moffat(x[inside], y[inside], x0, y0, fw, psf.beta, side).sum()
        sky = float(np.median(flux[j, ring]))
        sky_var = np.pi / 2.0 * float(np.mean(variance[j, ring])) / ring.sum()  # variance of a median
        out_f[j] = (flux[j, inside].sum() - sky * inside.sum()) / enclosed
        out_v[j] = (variance[j, inside].sum() + sky_var * inside.sum() ** 2) / enclosed ** 2
    return out_f, out_v
