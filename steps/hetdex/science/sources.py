"""Spectra of the things HETDEX sees: sky, twilight (solar-like), lamps, stars and galaxies.

Shared by the simulator (to make frames) and the pipeline (star SED models for throughput).
Flux densities in erg/s/cm^2/A (sky per arcsec^2).
"""

from __future__ import annotations

import numpy as np

from steps.hetdex.science.instrument import ARC_LINES, SKY_LINES

LSF_SIGMA = 2.4  # A, VIRUS line-spread function (Gaussian sigma)
BANDS = {"u": 3560.0, "g": 4680.0, "r": 6180.0, "i": 7500.0, "z": 8900.0}  # effective wavelengths
C_A = 2.99792458e18  # speed of light, A/s
SOLAR_LINES = [(3933.7, 0.8, 6.0), (3968.5, 0.7, 6.0), (4101.7, 0.3, 5.0), (4304.0, 0.3, 8.0),
               (4340.5, 0.3, 5.0), (4861.3, 0.3, 5.0), (5175.0, 0.2, 10.0), (5270.0, 0.15, 8.0)]


def gaussian(wave, center, sigma, flux=1.0):
    """A Gaussian line of total ``flux`` (per A)."""
    return flux * np.exp(-0.5 * ((wave - center) / sigma) ** 2) / (np.sqrt(2 * np.pi) * sigma)


def blackbody_shape(wave, temp):
    """B_lambda(T) up to a constant."""
    x = 1.43877735e8 / (np.asarray(wave, float) * temp)
    return 1.0 / (np.asarray(wave, float) ** 5 * np.expm1(x))


def ab_to_flambda(mag, wave):
    """AB magnitude at ``wave`` -> F_lambda (erg/s/cm^2/A)."""
    return 10 ** (-0.4 * (mag + 48.6)) * C_A / np.asarray(wave, float) ** 2


def star_spectrum(wave, temp, gmag):
    """Blackbody star of temperature ``temp`` normalised to AB g magnitude ``gmag``."""
    shape = blackbody_shape(wave, temp)
    return shape / blackbody_shape(BANDS["g"], temp) * ab_to_flambda(gmag, BANDS["g"])


def star_mags(temp, gmag) -> dict:
    """Catalogue ugriz (AB at the band effective wavelengths) of a blackbody star."""
    out = {}
    for band, w in BANDS.items():
        f = star_spectrum(w, temp, gmag)
        out[band] = float(-2.5 * np.log10(f * w**2 / C_A) - 48.6)
    return out


def fit_star_temperature(mags: dict) -> float:
    """The blackbody temperature whose colours best match the catalogue (runbook 10, SED fit)."""
    temps = np.linspace(3000, 12000, 901)
    best, tbest = np.inf, 5800.0
    for t in temps:
        m = star_mags(t, mags["g"])
        chi = sum((m[b] - mags[b]) ** 2 for b in ("u", "r", "i", "z") if b in mags and np.isfinite(mags[b]))
        if chi < best:
            best, tbest = chi, t
    return float(tbest)


def sky_spectrum(wave, level=1.5e-18, lines_flux=2.0e-17):
    """Night sky per arcsec^2: a reddening continuum plus emission lines at the LSF."""
    w = np.asarray(wave, float)
    cont = level * (1.0 + (w - 3500.0) / 2000.0)
    amps = np.linspace(1.0, 0.5, len(SKY_LINES))
    for c, a in zip(SKY_LINES, amps):
        cont = cont + gaussian(w, c, LSF_SIGMA, a * lines_flux)
    return cont


def twilight_spectrum(wave):
    """Solar-like twilight: a 5800 K continuum with the strong absorption lines (arbitrary units)."""
    w = np.asarray(wave, float)
    s = blackbody_shape(w, 5800.0) / blackbody_shape(4500.0, 5800.0)
    for c, depth, width in SOLAR_LINES:
        s = s * (1 - depth * np.exp(-0.5 * ((w - c) / width) ** 2))
    return s


def ldls_spectrum(wave):
    """Laser-driven light source (dome flat): smooth, bluer than the twilight (arbitrary units)."""
    w = np.asarray(wave, float)
    return 1.0 + 0.3 * np.sin((w - 3500.0) / 700.0)


def arc_spectrum(wave, lines=ARC_LINES):
    """Hg+Cd lamp: lines at the LSF on a faint continuum (arbitrary units, line flux ~1)."""
    w = np.asarray(wave, float)
    amps = np.array([0.6, 0.8, 1.0, 0.5, 1.0, 0.7, 0.8, 0.9, 1.0])[: len(lines)]
    s = np.full_like(w, 2e-4)
    for c, a in zip(lines, amps):
        s = s + gaussian(w, c, LSF_SIGMA, a)
    return s
