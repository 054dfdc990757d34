"""Cosmic-ray tracks for the instrument simulators (NRES, SEDM): one model, each detector its own
numbers.

An exposure of ``seconds`` (exposure plus readout) on a detector of ``ny`` x ``nx`` pixels of
``pixel_cm`` gets a Poisson number of events at ``rate`` per cm^2 per minute (about 1 at sea level
to 2000 m); each is a straight track at a uniform angle, 1 + Exp(``mean_length``) pixels long (at
most ``max_length``), depositing log-normal charge per pixel (median ``electrons``, 0.5 in ln).
"""

from __future__ import annotations

import math

import numpy as np


def cosmic_ray_tracks(ny: int, nx: int, seconds: float, rng: np.random.Generator, *, rate: float, pixel_cm: float,
                      mean_length: float, max_length: float, electrons: float) -> tuple[np.ndarray, np.ndarray]:
    """(flat pixel indices, electrons) of the cosmic-ray tracks of one exposure."""
    n = rng.poisson(rate * ny * nx * pixel_cm ** 2 * seconds / 60.0)
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    length = np.minimum(1 + rng.exponential(mean_length, n), max_length)
    angle = rng.uniform(0.0, np.pi, n)
    y0, x0 = rng.uniform(0, ny, n), rng.uniform(0, nx, n)
    steps = np.arange(math.ceil(max_length) + 1)
    yy = (y0[:, None] + np.sin(angle)[:, None] * steps).astype(np.int64)
    xx = (x0[:, None] + np.cos(angle)[:, None] * steps).astype(np.int64)
    ok = (steps[None, :] <= length[:, None]) & (yy >= 0) & (yy < ny) & (xx >= 0) & (xx < nx)
    charge = rng.lognormal(np.log(electrons), 0.5, yy.shape)
    return (yy * nx + xx)[ok], charge[ok]
