"""The NRES CCD for the simulator: bias, dark current, hot pixels, cosmic rays, noise, readout.

Pure functions over NumPy arrays (no file I/O).

What is simulated
    A CCD read through one amplifier into 16-bit unsigned counts, with a serial overscan of
    ``n_overscan`` columns on the right (``BIASSEC``).  Per CCD (fixed over the nights): gain,
    read noise, the overscan level, a fixed bias structure of the imaging area (a mean offset from
    the overscan, a column pattern and a gradient), per-pixel dark current (log-normal around a
    mean of a few 1e-3 e-/s, as a -100 C CCD), a few hot pixels (0.5-30 e-/s) and a 0.5 %
    pixel-response non-uniformity.  Per frame: the overscan level wanders by ~1 ADU and a small
    row ramp is common to the overscan and the image; cosmic rays (1.2 per cm^2 per minute of
    exposure and readout, 15 um pixels) deposit short tracks of ~1000 e- per pixel; counts are
    rounded and clipped at 0 and 65535 (the ADC's range, the SATURATE level: bright ThAr lines
    saturate).

What is simplified, and why
    Shot noise of light and dark current and the read noise are drawn as one Gaussian of variance
    ``electrons + read_noise^2`` per pixel: exact in mean and variance, and with a read noise of
    ~7 e- within a skewness of 0.06 of the Poisson-plus-Gaussian it stands for, at a fifth of the
    cost of Poisson draws.  No charge bleeding from saturated pixels, no charge-transfer
    inefficiency, no non-linearity, no dark-current dependence on temperature (the CCDs are
    regulated to 0.1 C).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from astroflow.cosmics import cosmic_ray_tracks

from steps.nres.simulate_optics import Geometry

ADC_MAX = 65535
PIXEL_CM = 15e-4
COSMIC_RATE = 1.2  # events per cm^2 per minute
READOUT_S = 20.0


@dataclass(frozen=True)
class Ccd:
    """One camera's CCD (the truth the calibrations should recover)."""

    camera: str
    nx: int
    ny: int
    n_overscan: int
    gain: float  # e- per ADU (the header's GAIN)
    read_noise_e: float
    overscan_adu: float
    bias_structure: np.ndarray  # (ny, nx) ADU above the overscan in a bias frame
    dark_e_s: np.ndarray  # (ny, nx) e- per second, hot pixels included
    prnu: np.ndarray  # (ny, nx) relative response to light
    hot: np.ndarray  # (n, 3): y, x, e- per second
    temperature_c: float = -100.0


def make_ccd(camera: str, geometry: Geometry, rng: np.random.Generator) -> Ccd:
    ny, nx = geometry.ny, geometry.nx
    x = np.arange(nx) / (nx - 1)
    y = np.arange(ny)[:, None] / (ny - 1)
    structure = (2.5 + rng.normal(0.0, 0.3) + rng.normal(0.0, 0.8, nx)[None, :]
                 + rng.normal(0.0, 1.5) * (x[None, :] - 0.5) + rng.normal(0.0, 1.0) * (y - 0.5))
    mean_dark = rng.uniform(0.002, 0.005)
    dark = mean_dark * rng.lognormal(-0.5 * 0.3 ** 2, 0.3, (ny, nx))
    n_hot = max(8, round(25 * nx * ny / 1024 ** 2))
    flat_index = rng.choice(nx * ny, n_hot, replace=False)
    rate = np.exp(rng.uniform(np.log(0.5), np.log(30.0), n_hot))
    hy, hx = np.divmod(flat_index, nx)
    dark.ravel()[flat_index] = rate
    return Ccd(
        camera=camera, nx=nx, ny=ny, n_overscan=geometry.n_overscan,
        gain=round(float(rng.uniform(0.95, 1.15)), 3),
        read_noise_e=float(rng.uniform(6.5, 8.0)),
        overscan_adu=float(rng.uniform(980.0, 1020.0)),
        bias_structure=structure.astype(np.float32),
        dark_e_s=dark.astype(np.float32),
        prnu=(1.0 + rng.normal(0.0, 0.005, (ny, nx))).astype(np.float32),
        hot=np.column_stack([hy, hx, rate]),
    )


def cosmic_rays(ny: int, nx: int, seconds: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(flat pixel indices, electrons) of the cosmic-ray tracks of one exposure on this detector."""
    return cosmic_ray_tracks(ny, nx, seconds, rng, rate=COSMIC_RATE, pixel_cm=PIXEL_CM, mean_length=2.5, max_length=15.0, electrons=900.0)


def read_out(ccd: Ccd, light_e: np.ndarray | None, exptime: float, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """The raw frame (ny, nx + n_overscan) uint16 of ``light_e`` expected electrons (or none),
    and what the frame's own draws were (overscan level, cosmic-ray count)."""
    expected = ccd.dark_e_s * np.float32(exptime)
    if light_e is not None:
        expected = expected + light_e * ccd.prnu
    electrons = expected + rng.standard_normal(expected.shape, dtype=np.float32) * np.sqrt(
        expected + np.float32(ccd.read_noise_e ** 2))
    cr_index, cr_e = cosmic_rays(ccd.ny, ccd.nx, exptime + READOUT_S, rng)
    np.add.at(electrons.ravel(), cr_index, cr_e.astype(np.float32))
    level = ccd.overscan_adu + rng.normal(0.0, 1.0)
    rows = np.float32(level) + np.float32(rng.normal(0.0, 0.8)) * (
        np.arange(ccd.ny, dtype=np.float32)[:, None] / (ccd.ny - 1) - np.float32(0.5))
    raw = np.empty((ccd.ny, ccd.nx + ccd.n_overscan), dtype=np.float32)
    raw[:, :ccd.nx] = electrons / np.float32(ccd.gain) + ccd.bias_structure + rows
    raw[:, ccd.nx:] = rows + rng.standard_normal((ccd.ny, ccd.n_overscan), dtype=np.float32) * np.float32(
        ccd.read_noise_e / ccd.gain)
    counts = np.clip(np.rint(raw), 0, ADC_MAX).astype(np.uint16)
    return counts, {"overscan_adu": float(level), "n_cosmics": int(np.unique(cr_index).size)}
