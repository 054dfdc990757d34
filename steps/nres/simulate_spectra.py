"""Light sources for the NRES simulator: the ThAr lamp, the tungsten lamp, and stars.

Pure functions from pixel-edge wavelengths to electrons per column of one trace (no file I/O
but :func:`thar_lines`, which reads the packaged line list).

What is simulated
    ThAr: every line of PypeIt's ThAr list (``steps/nres/data/thar_lines.csv``, vacuum
    wavelengths, the list's relative amplitudes; the same list the wavelength step identifies
    against) as a Gaussian of the instrument's constant-velocity line-spread function,
    integrated exactly over each pixel (differences of the normal CDF at the pixel edges).
    Tungsten: a 3100 K black body.  Stars: a black body at Teff times a synthetic absorption
    spectrum, the same line list for every star of a simulation (so a template star and the
    targets share their lines): ~10,000 metal lines (density rising toward the blue, depths
    mostly shallow with a tail of strong ones, Gaussian optical-depth profiles of 1.6-2.6 km/s
    thermal width, deeper in cooler stars) and the strong lines of a solar-type star with
    Lorentzian wings (Ca II H & K, the Balmer lines, Mg b, Na D, the Ca II infrared triplet), in
    vacuum wavelengths.  The star's spectrum is Doppler-shifted exactly (relativistic factor
    ``1 + z`` applied to wavelength), convolved with the line-spread function on a 0.25 km/s
    log-wavelength grid and integrated over each pixel.  All sources are multiplied by the
    blaze and by one smooth efficiency curve (telescope, fibers, CCD quantum efficiency).

What is simplified, and why
    Rotation broadens each line's optical-depth profile by a Gaussian of sigma = vsini / 2.5
    rather than convolving the emergent spectrum with a rotation kernel: the line centres, which
    carry the radial velocity, are unaffected and templates and targets stay alike.  No telluric
    lines, no sky, no moon: the simulated stars are bright and the RV orders are chosen by the
    pipeline.  Line depths scale with (5800 K / Teff)^2 only; a real G-to-K sequence also changes
    which lines are strong.  The ThAr lamp has no continuum and no ageing.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.special import ndtr

from steps.nres.simulate_optics import C_KM_S

THAR_LIST = Path(__file__).with_name("data") / "thar_lines.csv"
HC_K = 1.438777e8  # h c / k in Angstrom K
TUNGSTEN_K = 3100.0
GRID_KMS = 0.25  # velocity step of the stellar spectrum grid

# strong lines: vacuum wavelength (A), central depth, Lorentzian half width (A)
STRONG_LINES = np.array([
    (3934.777, 0.92, 6.0), (3969.591, 0.90, 5.0),  # Ca II K, H
    (4102.892, 0.75, 1.6), (4341.692, 0.78, 1.8), (4862.691, 0.80, 2.0), (6564.614, 0.82, 2.2),  # H delta..alpha
    (5168.761, 0.75, 0.25), (5174.125, 0.80, 0.30), (5185.048, 0.85, 0.35),  # Mg b
    (5891.583, 0.90, 0.25), (5897.558, 0.88, 0.20),  # Na D2, D1
    (8500.36, 0.55, 0.9), (8544.44, 0.65, 1.2), (8664.52, 0.62, 1.1),  # Ca II IR triplet
])


@lru_cache(maxsize=1)
def thar_lines() -> tuple[np.ndarray, np.ndarray]:
    """(vacuum wavelength A, relative amplitude) of the ThAr lines with a positive amplitude."""
    with THAR_LIST.open() as fh:
        rows = list(csv.DictReader(line for line in fh if not line.startswith("#")))
    lam = np.array([float(r["wavelength"]) for r in rows])
    amp = np.array([float(r["amplitude"]) for r in rows])
    keep = amp > 0
    return lam[keep], amp[keep]


def efficiency(lam) -> np.ndarray:
    """Telescope, fiber and CCD efficiency (relative, peak 1 near 630 nm)."""
    lam = np.asarray(lam, dtype=float)
    return np.exp(-0.5 * ((lam - 6300.0) / 2200.0) ** 2)


def planck_photons(lam, temperature: float) -> np.ndarray:
    """Photon flux per Angstrom of a black body, relative (lambda^-4 / (exp(hc/lambda k T) - 1))."""
    lam = np.asarray(lam, dtype=float)
    return (5000.0 / lam) ** 4 / np.expm1(HC_K / (lam * temperature))


def line_counts(edges: np.ndarray, lam: np.ndarray, electrons: np.ndarray, sigma_kms: float) -> np.ndarray:
    """Electrons per pixel of emission lines (total ``electrons`` each, Gaussian of ``sigma_kms``)
    between the pixel-edge wavelengths ``edges`` (increasing, nx + 1)."""
    nx = edges.size - 1
    reach = 6.0 * edges[-1] * sigma_kms / C_KM_S  # lines just off the ends still spill in
    inside = (lam > edges[0] - reach) & (lam < edges[-1] + reach)
    lam, electrons = lam[inside], electrons[inside]
    out = np.zeros(nx)
    if lam.size == 0:
        return out
    sig = lam * sigma_kms / C_KM_S
    width = float(np.min(np.diff(edges)))
    half = int(np.ceil(6.0 * sig.max() / width)) + 1
    centre = np.searchsorted(edges, lam) - 1
    pix = centre[:, None] + np.arange(-half, half + 1)
    pix = np.clip(pix, 0, nx - 1)
    lo = (edges[pix] - lam[:, None]) / sig[:, None]
    hi = (edges[pix + 1] - lam[:, None]) / sig[:, None]
    frac = ndtr(hi) - ndtr(lo)
    # clipped duplicates at the detector's ends: count each pixel once per line
    first = np.ones_like(pix, dtype=bool)
    first[:, 1:] = pix[:, 1:] != pix[:, :-1]
    np.add.at(out, pix[first], (frac * electrons[:, None])[first])
    return out


def thar_counts(edges: np.ndarray, sigma_kms: float, electrons_per_amplitude: Callable) -> np.ndarray:
    """ThAr electrons per pixel; ``electrons_per_amplitude(lam)`` scales the list's amplitudes."""
    lam, amp = thar_lines()
    inside = (lam > edges[0] - 1.0) & (lam < edges[-1] + 1.0)
    return line_counts(edges, lam[inside], amp[inside] * electrons_per_amplitude(lam[inside]), sigma_kms)


def continuum_counts(edges: np.ndarray, photons_per_a: Callable) -> np.ndarray:
    """Electrons per pixel of a smooth source (``photons_per_a(lam)``), midpoint rule per pixel."""
    mid = 0.5 * (edges[1:] + edges[:-1])
    return photons_per_a(mid) * np.diff(edges)


def stellar_lines(rng: np.random.Generator) -> np.ndarray:
    """The weak-line list shared by every star of a simulation: rows (vacuum A, depth, sigma km/s)."""
    lo, hi = 3600.0, 9100.0
    # density 2.4 lines/A at 5000 A, falling as lambda^-2: draw u uniform in 1/lambda
    n = rng.poisson(2.4 * 5000.0 ** 2 * (1.0 / lo - 1.0 / hi))
    lam = 1.0 / rng.uniform(1.0 / hi, 1.0 / lo, n)
    depth = 0.01 + 0.80 * rng.uniform(0.0, 1.0, n) ** 3.5
    width = rng.uniform(1.6, 2.6, n)
    return np.column_stack([np.sort(lam), depth, width])


def _optical_depth(log_rest: np.ndarray, lines: np.ndarray, teff: float, vsini: float) -> np.ndarray:
    """Optical depth on a uniform grid of ln(rest wavelength)."""
    step = log_rest[1] - log_rest[0]
    scale = np.clip((5800.0 / teff) ** 2, 0.5, 1.8)
    tau = np.zeros(log_rest.size)
    lam = np.exp(log_rest)
    sel = (lines[:, 0] > lam[0] * 0.999) & (lines[:, 0] < lam[-1] * 1.001)
    w = lines[sel]
    if w.size:
        depth = np.clip(w[:, 1] * scale, 0.0, 0.95)
        tau0 = -np.log1p(-depth)
        sig = np.sqrt(w[:, 2] ** 2 + (vsini / 2.5) ** 2) / C_KM_S  # in ln(lambda)
        centre = (np.log(w[:, 0]) - log_rest[0]) / step
        half = int(np.ceil(5.0 * sig.max() / step))
        idx = np.round(centre).astype(np.int64)[:, None] + np.arange(-half, half + 1)
        ok = (idx >= 0) & (idx < log_rest.size)
        idxc = np.clip(idx, 0, log_rest.size - 1)
        prof = tau0[:, None] * np.exp(-0.5 * ((idx - centre[:, None]) * step / sig[:, None]) ** 2)
        np.add.at(tau, idxc[ok], prof[ok])
    strong = STRONG_LINES[(STRONG_LINES[:, 0] > lam[0] - 60.0) & (STRONG_LINES[:, 0] < lam[-1] + 60.0)]
    for lam0, depth, hwhm in strong:
        d = min(depth * np.sqrt(scale), 0.97)
        tau += -np.log1p(-d) / (1.0 + ((lam - lam0) / hwhm) ** 2)
    return tau


def star_counts(edges: np.ndarray, z: float, teff: float, vsini: float, lines: np.ndarray,
                sigma_kms: float, photons_per_a: Callable) -> np.ndarray:
    """Electrons per pixel of a star whose light reaches the detector redshifted by ``1 + z``
    (pixel edges ``edges`` in the wavelengths that reach them), continuum ``photons_per_a(lam)``."""
    pad = 8.0 * sigma_kms / C_KM_S
    step = GRID_KMS / C_KM_S
    log_obs = np.arange(np.log(edges[0]) - pad, np.log(edges[-1]) + pad + step, step)
    log_rest = log_obs - np.log1p(z)
    transmission = np.exp(-_optical_depth(log_rest, lines, teff, vsini))
    observed = gaussian_filter1d(transmission, sigma_kms / GRID_KMS, mode="nearest")
    lam = np.exp(log_obs)
    density = observed * photons_per_a(lam)
    cumulative = np.concatenate([[0.0], np.cumsum(0.5 * (density[1:] + density[:-1]) * np.diff(lam))])
    return np.diff(np.interp(edges, lam, cumulative))
