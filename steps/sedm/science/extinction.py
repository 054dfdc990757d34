"""Palomar atmospheric extinction (pysedm's ``get_palomar_extinction``), as pure functions.

The curve is ``steps/sedm/data/palomar_extinction.csv``: Hayes & Latham (1975), mag per airmass
at 35 wavelengths from 3200 to 10870 A, interpolated linearly (held at the end values outside).
A spectrum observed at ``airmass`` is corrected to above the atmosphere by multiplying it by
``10 ** (0.4 * k(lambda) * airmass)``.  The telluric bands are not part of it (``calibrate``
corrects them).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np

CURVE = Path(__file__).resolve().parents[1] / "data" / "palomar_extinction.csv"
SOURCE = "Hayes & Latham 1975 (Palomar)"


@cache
def curve(path: str | Path = CURVE) -> tuple[np.ndarray, np.ndarray]:
    """(wavelength A, extinction mag per airmass) of the curve file."""
    table = np.loadtxt(path, delimiter=",", skiprows=1)
    return table[:, 0], table[:, 1]


def extinction_mag(lam, path: str | Path = CURVE) -> np.ndarray:
    """Extinction (mag per airmass) at ``lam`` (A)."""
    wave, k = curve(path)
    return np.interp(np.asarray(lam, float), wave, k)


def correction(lam, airmass: float, path: str | Path = CURVE) -> np.ndarray:
    """The factor that takes a spectrum observed at ``airmass`` to above the atmosphere."""
    return 10.0 ** (0.4 * extinction_mag(lam, path) * float(airmass))
