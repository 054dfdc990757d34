"""An IFU exposure as a cube (pysedm's ``build_sedmcube``), as pure functions over arrays.

``to_grid``: one spaxel's box spectrum (electrons per detector column, and its variance) as a
flux density (electrons per A) at the cube's wavelengths, through the spaxel's wavelength
solution moved by the frame's along-dispersion flexure: the density at each column is its
electrons over the local dispersion, interpolated linearly at the grid's wavelengths (the same
operation as the 3D flat's, :func:`steps.sedm.science.flat.on_grid`, so the flat divides out
exactly), the variance propagated through the interpolation weights; NaN outside the columns
the spaxel covers.  ``sky_positions``: a spaxel's place on the sky from its place on the
hexagonal grid.
"""

from __future__ import annotations

import numpy as np


def to_grid(columns: np.ndarray, electrons: np.ndarray, variance: np.ndarray, wavelength_of,
            grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(flux density e/A, its variance) at ``grid`` of a spectrum sampled at detector ``columns``;
    ``wavelength_of(x)`` is the spaxel's (flexure-corrected) solution."""
    flux = np.full(grid.size, np.nan)
    var = np.full(grid.size, np.nan)
    ok = np.isfinite(electrons) & np.isfinite(variance)
    x, e, v = columns[ok].astype(float), electrons[ok], variance[ok]
    if x.size < 3:
        return flux, var
    lam = wavelength_of(x)
    dispersion = np.gradient(lam, x)
    if not (np.all(dispersion > 0) or np.all(dispersion < 0)):
        return flux, var
    order = np.argsort(lam)
    lam, d = lam[order], np.abs(dispersion[order])
    density, dvar = e[order] / d, v[order] / d ** 2
    inside = (grid >= lam[0]) & (grid <= lam[-1])
    g = grid[inside]
    k = np.clip(np.searchsorted(lam, g) - 1, 0, lam.size - 2)
    t = (g - lam[k]) / (lam[k + 1] - lam[k])
    flux[inside] = (1 - t) * density[k] + t * density[k + 1]
    var[inside] = (1 - t) ** 2 * dvar[k] + t ** 2 * dvar[k + 1]
    return flux, var


def sky_positions(x_grid: np.ndarray, y_grid: np.ndarray, spaxel_arcsec: float, rotation_deg: float = 0.0,
                  east_flip: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(east, north) arcsec of grid positions in spaxel units (the hexagonal grid's ``x, y``),
    relative to the grid's origin: scaled, flipped east-west if the optics mirror the field, and
    turned by ``rotation_deg`` (counter-clockwise, from the grid's +x to east)."""
    x = np.asarray(x_grid, float) * spaxel_arcsec
    y = np.asarray(y_grid, float) * spaxel_arcsec
    if east_flip:
        x = -x
    a = np.radians(rotation_deg)
    return x * np.cos(a) - y * np.sin(a), x * np.sin(a) + y * np.cos(a)
