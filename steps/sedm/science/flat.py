"""The 3D flat: each spaxel's throughput relative to the others, per wavelength, from the dome
flat (pysedm's ``{date}_Flat``), as pure functions.

``on_grid``: a spaxel's extracted spectrum (electrons per column) as a flux density per A on a
wavelength grid, through its wavelength solution (electrons per column over the local
dispersion, interpolated at the grid's wavelengths; NaN outside the columns it covers).
``flat3d``: every spaxel's dome spectrum over the median spaxel's, wavelength by wavelength (the
dome lamp's colour and the spectrograph's efficiency divide out, what is left is the spaxel's
throughput and its own colour).  ``throughput``: the median of that ratio over a band, scaled to
a mean of 1 over the spaxels that have one.
"""

from __future__ import annotations

import numpy as np


def on_grid(columns: np.ndarray, electrons: np.ndarray, wavelength_of, grid: np.ndarray) -> np.ndarray:
    """Flux density (electrons per A) at ``grid`` of a spectrum sampled at detector ``columns``;
    ``wavelength_of(x)`` is the spaxel's solution (monotonic over the columns)."""
    ok = np.isfinite(electrons)
    x, e = columns[ok].astype(float), electrons[ok]
    out = np.full(grid.size, np.nan)
    if x.size < 3:
        return out
    lam = wavelength_of(x)
    dispersion = np.gradient(lam, x)
    if not (np.all(dispersion > 0) or np.all(dispersion < 0)):
        return out
    order = np.argsort(lam)
    density = (e / np.abs(dispersion))[order]
    lam = lam[order]
    inside = (grid >= lam[0]) & (grid <= lam[-1])
    out[inside] = np.interp(grid[inside], lam, density)
    return out


def flat3d(dome: np.ndarray) -> np.ndarray:
    """(n_spaxels, n_lambda) each dome spectrum on the grid over the median spaxel's."""
    reference = np.nanmedian(dome, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(reference > 0, dome / reference, np.nan)


def throughput(flat: np.ndarray, grid: np.ndarray, band: tuple[float, float]) -> np.ndarray:
    """Per spaxel the median of its 3D flat over ``band`` (A), mean 1 over the finite ones."""
    inband = (grid >= band[0]) & (grid <= band[1])
    t = np.nanmedian(np.where(inband[None, :], flat, np.nan), axis=1) if inband.any() else np.full(len(flat), np.nan)
    finite = np.isfinite(t) & (t > 0)
    return t / t[finite].mean() if finite.any() else t
