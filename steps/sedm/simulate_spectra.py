"""The light of an SEDM night for the simulator: lamps, sky, atmosphere, the standard and the transients.

Pure functions of vacuum wavelength in A (no file I/O but reading ``data/``).

What is simulated
    * Arc lamps: the strong Hg, Cd and Xe lines of ``data/arc_lines.csv`` (NIST air wavelengths,
      converted to vacuum with Morton 2000), as unresolved lines of the instrument's line width.
    * The dome lamp: a 3100 K halogen continuum.
    * Dark sky: a continuum of V ~ 21 mag/arcsec^2 (a solar-like slope) with the Na D streetlight
      blend at 5891.6 A (vacuum 5894.5; ~300 Rayleigh) and the [O I] 5577 (~250 R), 6300 and 6364
      airglow lines.
    * The atmosphere: Palomar-like extinction (a Rayleigh term scaled to the site's pressure plus
      an aerosol power law; 0.16 mag per airmass at 5000 A, 0.04 at 8000 A) and telluric bands:
      the O2 A band (head 7594 A, centred near 7630 A) and B band (6870 A) deepening as
      ``airmass ** 0.55``, and a weak H2O band near 9350 A.
    * Instrument efficiency (telescope, IFU, prism, CCD): ~0.28 at 6500 A, falling to ~0.07 at
      3700 A and ~0.15 at 9300 A; the P60 collecting area 1.54e4 cm^2.
    * The standard BD+33d2642 from the shipped CALSPEC-like ``data/BD+33d2642.csv``.
    * Transients: SN Ia-like (a 10500 K photosphere with broad Ca II, Si II 6355, S II, Fe II and
      Ca II IR absorptions at ~11000 km/s) and SN II-like (a 7500 K photosphere with Balmer P-Cygni
      profiles, H alpha emission strongest), redshifted by a known z and scaled to a known AB
      magnitude at 6200 A (observed frame).

What is simplified, and why
    The transient spectra are analytic stand-ins (photosphere times Gaussian features), not
    template spectra: they carry what a pipeline must recover (type-defining features, z, the
    flux scale) with their shape known exactly; no host galaxy light (the IFU's PSF photometry is
    scored on isolated points).  Sky and telluric absorption do not change during the night.
"""

from __future__ import annotations

import csv
from functools import cache
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parent / "data"
H_CGS = 6.62607015e-27
C_CGS = 2.99792458e10
K_CGS = 1.380649e-16
HC_ERG_A = H_CGS * C_CGS * 1e8  # erg A
AREA_CM2 = 1.54e4  # P60 clear aperture
STANDARD = "BD+33d2642"
NA_D_VAC = 5894.5
SKY_LINES = ((NA_D_VAC, 1.0), (5578.9, 0.8), (6302.0, 0.3), (6365.5, 0.1))  # vacuum A, relative to Na D
RAYLEIGH = 1e6 / (4 * np.pi) / 4.2545e10  # photons / s / cm^2 / arcsec^2
SKY_NA = 300.0 * RAYLEIGH  # the Na D blend of streetlights near Palomar (~300 R)


def air_to_vacuum(lam_air):
    """Vacuum wavelength (A) of air wavelength ``lam_air`` (A), Morton (2000) / IAU."""
    lam_air = np.asarray(lam_air, float)
    s2 = (1e4 / lam_air) ** 2
    n = 1.0 + 8.336624212083e-5 + 2.408926869968e-2 / (130.1065924522 - s2) + 1.599740894897e-4 / (38.92568793293 - s2)
    return lam_air * n


@cache
def arc_lines() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """lamp -> (vacuum A, relative intensity) from ``data/arc_lines.csv``."""
    rows = list(csv.DictReader((DATA / "arc_lines.csv").open()))
    out = {}
    for lamp in ("Hg", "Cd", "Xe"):
        mine = [r for r in rows if r["lamp"] == lamp]
        out[lamp] = (air_to_vacuum([float(r["wavelength_air"]) for r in mine]),
                     np.array([float(r["relative_intensity"]) for r in mine]))
    return out


def planck(lam, temperature):
    """Planck B_lambda shape (arbitrary units) at ``lam`` A."""
    x = np.asarray(lam, float) * 1e-8
    return 1.0 / x ** 5 / np.expm1(H_CGS * C_CGS / (x * K_CGS * temperature))


def efficiency(lam):
    """Telescope x IFU x prism x CCD efficiency (fraction of photons counted)."""
    lam = np.asarray(lam, float)
    return 0.28 * np.exp(-0.5 * (np.log(lam / 6500.0) / 0.33) ** 2)


def extinction_mag(lam):
    """Palomar-like extinction (mag per airmass) at ``lam`` A."""
    um = np.asarray(lam, float) / 1e4
    return 0.82 * 0.0088 * um ** -4.05 + 0.035 * (um / 0.55) ** -1.3


def telluric(lam, airmass: float):
    """Telluric transmission at ``lam`` A: O2 A and B bands and a weak H2O band."""
    lam = np.asarray(lam, float)
    scale = airmass ** 0.55
    a_band = 0.55 * np.exp(-0.5 * ((lam - 7630.0) / 18.0) ** 2) * (lam > 7590.0) + 0.3 * np.exp(
        -0.5 * ((lam - 7600.0) / 6.0) ** 2)
    b_band = 0.25 * np.exp(-0.5 * ((lam - 6880.0) / 10.0) ** 2)
    water = 0.15 * np.exp(-0.5 * ((lam - 9350.0) / 60.0) ** 2)
    return np.exp(-scale * (a_band + b_band + water))


def atmosphere(lam, airmass: float):
    """Extinction times telluric transmission."""
    return 10.0 ** (-0.4 * extinction_mag(lam) * airmass) * telluric(lam, airmass)


def photons(f_lambda, lam):
    """Photons / s / cm^2 / A of F_lambda (erg / s / cm^2 / A) at ``lam`` A."""
    return np.asarray(f_lambda) * np.asarray(lam) / HC_ERG_A


def ab_flux(mag: float, lam):
    """F_lambda (erg / s / cm^2 / A) of a flat-in-F_nu source of AB magnitude ``mag``."""
    return 10.0 ** (-0.4 * (mag + 48.6)) * C_CGS * 1e8 / np.asarray(lam, float) ** 2


def sky_continuum(lam):
    """Dark-sky continuum, photons / s / arcsec^2 / cm^2 / A above the atmosphere's absorption."""
    return photons(ab_flux(21.0, lam), lam) * (np.asarray(lam) / 5500.0) ** 0.5


def halogen(lam):
    """The dome lamp's spectrum (shape only)."""
    return planck(lam, 3100.0) / planck(6000.0, 3100.0)


@cache
def standard_reference() -> tuple[np.ndarray, np.ndarray]:
    """(vacuum A, F_lambda) of the shipped reference spectrum of the standard."""
    table = np.loadtxt(DATA / f"{STANDARD}.csv", delimiter=",", skiprows=1)
    return table[:, 0], table[:, 1]


def standard_flux(lam):
    wave, flux = standard_reference()
    return np.interp(lam, wave, flux)


def _features(lam_rest, features):
    out = np.ones_like(lam_rest)
    for centre, depth, sigma in features:
        out *= 1.0 - depth * np.exp(-0.5 * ((lam_rest - centre) / sigma) ** 2)
    return out


SN_TYPES = ("Ia", "II")
# rest-frame (centre A, depth, sigma A); negative depth is emission
SN_IA = ((3800.0, 0.55, 60.0), (4300.0, 0.30, 70.0), (4900.0, 0.30, 70.0), (5300.0, 0.25, 40.0),
         (5520.0, 0.25, 40.0), (6120.0, 0.45, 60.0), (8150.0, 0.45, 120.0))
SN_II = ((6563.0, -0.9, 55.0), (6390.0, 0.30, 45.0), (4861.0, -0.35, 40.0), (4740.0, 0.30, 35.0),
         (5880.0, 0.20, 40.0), (8500.0, -0.15, 80.0))


def transient_flux(kind: str, z: float, mag: float, lam):
    """Observed F_lambda (erg / s / cm^2 / A) of a transient of type ``kind`` at redshift ``z``,
    AB magnitude ``mag`` at 6200 A (observed)."""
    lam = np.asarray(lam, float)
    rest = lam / (1.0 + z)
    temperature, features = (10500.0, SN_IA) if kind == "Ia" else (7500.0, SN_II)
    shape = planck(rest, temperature) * _features(rest, features)
    ref_rest = np.array([6200.0 / (1.0 + z)])
    norm = planck(ref_rest, temperature) * _features(ref_rest, features)
    return shape / norm[0] * ab_flux(mag, 6200.0)


def star_flux(mag: float, temperature: float, lam):
    """F_lambda of a field star (a blackbody of AB magnitude ``mag`` at 6200 A)."""
    return planck(lam, temperature) / planck(6200.0, temperature) * ab_flux(mag, 6200.0)
