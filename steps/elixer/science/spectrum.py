"""Measurements on one 1-D HETDEX spectrum: the line fit, the continuum, the slope, other lines.

Spectra are flux densities in 1e-17 erg/s/cm^2/A on any wavelength grid (the callers halve the
per-2-A values of the detections file).  Everything here is a pure function of arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import curve_fit

from steps.elixer.science.lines import FRAMES, LINES

C_A_S = 2.99792458e18  # speed of light, A/s
SQRT2PI = np.sqrt(2 * np.pi)
FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))


def gaussian(w, flux, mu, sigma, cont):
    return flux * np.exp(-0.5 * ((w - mu) / sigma) ** 2) / (SQRT2PI * sigma) + cont


@dataclass
class LineFit:
    wave: float
    wave_err: float
    flux: float
    flux_err: float
    sigma: float
    sigma_err: float
    cont: float
    cont_err: float
    chi2: float
    ok: bool

    @property
    def sn(self) -> float:
        return self.flux / self.flux_err if self.flux_err > 0 else 0.0


def _good(wave, flam, err):
    return np.isfinite(wave) & np.isfinite(flam) & np.isfinite(err) & (err > 0)


def fit_line(wave, flam, err, center: float, sigma0: float = 3.0, flux0: float | None = None,
             window: float = 40.0) -> LineFit:
    """Gaussian plus constant fitted within +-window A of ``center`` (least squares, data errors)."""
    sel = _good(wave, flam, err) & (np.abs(wave - center) < window)
    w, f, e = wave[sel], flam[sel], err[sel]
    sigma0 = float(np.clip(sigma0 if np.isfinite(sigma0) and sigma0 > 0 else 3.0, 1.2, 12.0))
    cont0 = float(np.median(f[np.abs(w - center) > 3 * sigma0])) if np.sum(np.abs(w - center) > 3 * sigma0) > 3 else 0.0
    if flux0 is None or not np.isfinite(flux0) or flux0 <= 0:
        flux0 = max(float(np.sum((f - cont0)[np.abs(w - center) < 2.5 * sigma0]) * 2.0), 1.0)
    fallback = LineFit(center, np.nan, float(flux0), np.nan, sigma0, np.nan, cont0, np.nan, np.nan, False)
    if len(w) < 8:
        return fallback
    try:
        popt, pcov = curve_fit(
            gaussian, w, f, p0=[flux0, center, sigma0, cont0], sigma=e, absolute_sigma=True,
            bounds=([-np.inf, center - 8, 1.0, -np.inf], [np.inf, center + 8, 20.0, np.inf]), maxfev=2000,
        )
    except (RuntimeError, ValueError):
        return fallback
    perr = np.sqrt(np.abs(np.diag(pcov)))
    resid = (f - gaussian(w, *popt)) / e
    chi2 = float(np.sum(resid**2) / max(len(w) - 4, 1))
    return LineFit(float(popt[1]), float(perr[1]), float(popt[0]), float(perr[0]), float(popt[2]),
                   float(perr[2]), float(popt[3]), float(perr[3]), chi2, True)


@dataclass
class Continuum:
    at_line: float  # 1e-17 erg/s/cm^2/A at the line
    at_line_err: float
    g_flam: float  # at the g-band pivot
    g_flam_err: float
    mag_g: float
    mag_g_err: float
    slope: float  # beta of f_lambda ~ lambda^beta (-2: flat in f_nu)
    slope_err: float
    blue: tuple[float, float]  # mean f_lambda and error, blue window
    red: tuple[float, float]
    slope_red: float = np.nan  # beta redward of the line (beyond a 4000-A break, free of the LyA forest)
    slope_red_err: float = np.nan


G_PIVOT = 4686.0  # SDSS g pivot wavelength (A)


def flam_to_mag(flam_1e17, wave):
    """AB magnitude of a flux density in 1e-17 erg/s/cm^2/A at ``wave``; 99.9 when not positive."""
    fnu = np.asarray(flam_1e17, float) * 1e-17 * wave**2 / C_A_S
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(fnu > 0, -2.5 * np.log10(np.where(fnu > 0, fnu, 1.0)) - 48.6, 99.9)


def _window_mean(wave, flam, err, mask, lo, hi):
    sel = mask & (wave >= lo) & (wave <= hi)
    if sel.sum() < 10:
        return np.nan, np.nan
    wt = 1.0 / err[sel] ** 2
    return float(np.sum(flam[sel] * wt) / np.sum(wt)), float(1.0 / np.sqrt(np.sum(wt)))


def continuum(wave, flam, err, line_wave: float, line_sigma: float, mask_lines=()) -> Continuum:
    """Straight-line continuum over the whole spectrum (line and other lines masked; three passes
    that each drop points more than 3.5 sigma from the fit, sigma being each point's error)."""
    mask = _good(wave, flam, err) & (np.abs(wave - line_wave) > max(20.0, 5 * line_sigma))
    for lw in mask_lines:
        mask &= np.abs(wave - lw) > 15.0
    x0 = 4500.0
    coef, cov = np.zeros(2), np.eye(2)
    for _ in range(3):
        if mask.sum() < 20:
            break
        a = np.vstack([np.ones(mask.sum()), wave[mask] - x0]).T / err[mask, None]
        b = flam[mask] / err[mask]
        coef, *_ = np.linalg.lstsq(a, b, rcond=None)
        cov = np.linalg.inv(a.T @ a)
        resid = (flam - (coef[0] + coef[1] * (wave - x0))) / np.where(err > 0, err, np.inf)
        mask &= np.abs(resid) < 3.5
    # a smooth continuum's errors are larger than the white-noise formula: inflate by the scatter
    if mask.sum() > 20:
        scatter = np.std((flam[mask] - (coef[0] + coef[1] * (wave[mask] - x0))) / err[mask])
        cov = cov * max(1.0, scatter**2)

    def at(wl):
        v = np.array([1.0, wl - x0])
        return float(coef[0] + coef[1] * (wl - x0)), float(np.sqrt(v @ cov @ v))

    c_line, c_line_err = at(line_wave)
    g, g_err = at(G_PIVOT)
    mag = float(flam_to_mag(g, G_PIVOT))
    mag_err = float(2.5 / np.log(10) * g_err / g) if g > 0 else np.nan
    blue = _window_mean(wave, flam, err, mask, 3600.0, 4300.0)
    red = _window_mean(wave, flam, err, mask, 4700.0, 5400.0)
    slope, slope_err = np.nan, np.nan
    if all(np.isfinite(v) for v in (*blue, *red)) and blue[0] > 0 and red[0] > 0:
        lever = np.log(5050.0 / 3950.0)
        slope = float(np.log(red[0] / blue[0]) / lever)
        slope_err = float(np.hypot(red[1] / red[0], blue[1] / blue[0]) / lever)
    slope_red, slope_red_err = _power_law_slope(wave, flam, err, mask & (wave > 1.09 * line_wave + 20) & (wave < 5450))
    return Continuum(c_line, c_line_err, g, g_err, mag, mag_err, slope, slope_err, blue, red, slope_red, slope_red_err)


def _power_law_slope(wave, flam, err, sel, min_span: float = 250.0):
    """beta of f_lambda ~ lambda^beta from a weighted linear fit (value and slope at the centre)."""
    if sel.sum() < 40 or np.ptp(wave[sel]) < min_span:
        return np.nan, np.nan
    w, f, e = wave[sel], flam[sel], err[sel]
    x0 = float(np.mean(w))
    a = np.vstack([np.ones_like(w), w - x0]).T / e[:, None]
    coef, *_ = np.linalg.lstsq(a, f / e, rcond=None)
    cov = np.linalg.inv(a.T @ a)
    if coef[0] <= 0:
        return np.nan, np.nan
    beta = coef[1] * x0 / coef[0]  # dlnf/dlnlambda at x0
    beta_err = x0 / coef[0] * np.sqrt(cov[1, 1] + (coef[1] / coef[0]) ** 2 * cov[0, 0])
    return float(beta), float(beta_err)


def line_flux_at(wave, flam, err, center: float, sigma: float) -> tuple[float, float]:
    """Flux and error of a Gaussian of fixed centre and width (linear least squares with a constant)."""
    sel = _good(wave, flam, err) & (np.abs(wave - center) < 4 * sigma + 12.0)
    if sel.sum() < 6:
        return np.nan, np.nan
    prof = np.exp(-0.5 * ((wave[sel] - center) / sigma) ** 2) / (SQRT2PI * sigma)
    a = np.vstack([prof, np.ones(sel.sum())]).T / err[sel, None]
    b = flam[sel] / err[sel]
    coef, *_ = np.linalg.lstsq(a, b, rcond=None)
    cov = np.linalg.inv(a.T @ a)
    return float(coef[0]), float(np.sqrt(cov[0, 0]))


@dataclass
class Solution:
    """One redshift solution: the main line is ``name`` and these companions were measured."""

    name: str
    rest: float
    z: float
    score: float = 0.0
    lines: list[dict] = field(default_factory=list)  # name, rest, wave, flux, flux_err, sn, found

    @property
    def n_found(self) -> int:
        return sum(1 for ln in self.lines if ln["found"])


def multiline_solutions(wave, flam, err, line_wave: float, line_sigma: float, min_sn: float = 4.0,
                        wave_range=(3500.0, 5520.0)) -> list[Solution]:
    """Try each frame of :data:`FRAMES`: measure its companion lines where they would fall.

    Returns the solutions with at least one companion at S/N >= ``min_sn``, best score first
    (score: the sum of the companions' S/N, each capped at 20).
    """
    sigma = float(np.clip(line_sigma if np.isfinite(line_sigma) else 3.0, 1.5, 8.0))
    out = []
    for name, rest, companions in FRAMES.values():
        z = line_wave / rest - 1.0
        if z < 0.0:
            continue
        sol = Solution(name, rest, z)
        for comp in companions:
            cw = LINES[comp] * (1 + z)
            if not (wave_range[0] <= cw <= wave_range[1]) or abs(cw - line_wave) < 15.0:
                continue
            flux, ferr = line_flux_at(wave, flam, err, cw, sigma)
            sn = flux / ferr if np.isfinite(ferr) and ferr > 0 else 0.0
            found = bool(sn >= min_sn)
            sol.lines.append({"name": comp, "rest": LINES[comp], "wave": cw, "flux": flux, "flux_err": ferr,
                              "sn": sn, "found": found})
            if found:
                sol.score += min(sn, 20.0)
        if sol.n_found:
            out.append(sol)
    return sorted(out, key=lambda s: -s.score)
