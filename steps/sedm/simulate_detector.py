"""The SEDM IFU CCD for the simulator: bias at two ADC speeds, overscan, gain, noise, cosmic rays, readout.

Pure functions over NumPy arrays (no file I/O).

What is simulated
    One amplifier read into 16-bit unsigned counts (stored as the observatory stores them: BITPIX 16
    with BZERO 32768), the last ``N_OVERSCAN`` = 4 columns a serial overscan (``OSCANX0``/``OSCANX1``
    in the header; columns 2045-2048 of a full frame, 1-based).  GAIN is 1.8 e-/ADU at both ADC
    speeds.  Each speed (2.0 MHz for the afternoon calibrations, 0.1 MHz for the sky) has its own
    bias level (about 988 and 1013 ADU), read noise (about 11 and 4.5 e-) and fixed bias structure
    (a column pattern and a gentle gradient of the imaging area, a few ADU).  Per frame the level
    wanders by ~1 ADU, a row ramp is common to the overscan and the image (what a per-row overscan
    median removes), the imaging area has a 0.5 % pixel-response non-uniformity and cosmic rays
    (short tracks, ~1 per cm^2 per minute of exposure and readout, 13.5 um pixels, 1000 e- per
    pixel).

What is simplified, and why
    Shot noise and read noise are one Gaussian of variance ``electrons + read_noise^2`` (exact in
    mean and variance, a fraction of the cost of Poisson draws; SEDM's sky-limited frames are far
    from the few-electron regime where the difference shows).  No dark current (the CCD is
    LN2-cooled: < 1 e-/h), no saturation bleeding, no charge-transfer inefficiency.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from astroflow.cosmics import cosmic_ray_tracks

ADC_MAX = 65535
N_OVERSCAN = 4
GAIN = 1.8  # e- per ADU (the header's GAIN)
PIXEL_CM = 13.5e-4
COSMIC_RATE = 1.0  # events per cm^2 per minute
READOUT_S = {2.0: 10.0, 0.1: 40.0}  # seconds to read the chip at each ADC speed (MHz)


@dataclass(frozen=True)
class Readout:
    """What one ADC speed adds to a frame (the truth a master bias should recover)."""

    speed_mhz: float
    level_adu: float  # overscan level
    read_noise_e: float
    structure: np.ndarray  # (ny, nx_image) ADU above the overscan in a bias


@dataclass(frozen=True)
class Ccd:
    ny: int
    nx: int  # columns written, overscan included
    prnu: np.ndarray  # (ny, nx_image) relative response to light
    readouts: dict  # ADC speed (MHz) -> Readout

    @property
    def nx_image(self) -> int:
        return self.nx - N_OVERSCAN


def make_ccd(ny: int, nx: int, rng: np.random.Generator) -> Ccd:
    nxi = nx - N_OVERSCAN
    x = np.arange(nxi) / (nxi - 1) - 0.5
    y = np.arange(ny)[:, None] / (ny - 1) - 0.5
    readouts = {}
    for speed, level, noise in ((2.0, 988.0, 11.0), (0.1, 1013.0, 4.5)):
        structure = (1.5 + rng.normal(0.0, 0.6, nxi)[None, :] + rng.normal(0.0, 1.0) * x[None, :]
                     + rng.normal(0.0, 0.8) * y)
        readouts[speed] = Readout(speed, level + rng.normal(0.0, 2.0), noise * rng.uniform(0.95, 1.05),
                                  structure.astype(np.float32))
    prnu = (1.0 + rng.normal(0.0, 0.005, (ny, nxi))).astype(np.float32)
    return Ccd(ny=ny, nx=nx, prnu=prnu, readouts=readouts)


def cosmic_rays(ny: int, nx: int, seconds: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(flat pixel indices, electrons) of the cosmic-ray tracks of one exposure on this detector."""
    return cosmic_ray_tracks(ny, nx, seconds, rng, rate=COSMIC_RATE, pixel_cm=PIXEL_CM, mean_length=2.0, max_length=12.0, electrons=1000.0)


def read_out(ccd: Ccd, speed: float, light_e: np.ndarray | None, exptime: float,
             rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """The raw frame (ny, nx) uint16 of ``light_e`` expected electrons (or none) read at ``speed``
    MHz, and the frame's own draws (overscan level, the pixels hit by cosmic rays: their number and
    flat indices ``row * nx_image + column`` in the imaging area)."""
    ro = ccd.readouts[speed]
    shape = (ccd.ny, ccd.nx_image)
    expected = np.zeros(shape, np.float32) if light_e is None else (light_e * ccd.prnu).astype(np.float32)
    electrons = expected + rng.standard_normal(shape, dtype=np.float32) * np.sqrt(
        np.maximum(expected, 0.0) + np.float32(ro.read_noise_e ** 2))
    cr_index, cr_e = cosmic_rays(ccd.ny, ccd.nx_image, exptime + READOUT_S[speed], rng)
    np.add.at(electrons.ravel(), cr_index, cr_e.astype(np.float32))
    level = ro.level_adu + rng.normal(0.0, 1.0)
    rows = np.float32(level) + np.float32(rng.normal(0.0, 1.0)) * (
        np.arange(ccd.ny, dtype=np.float32)[:, None] / (ccd.ny - 1) - np.float32(0.5))
    raw = np.empty((ccd.ny, ccd.nx), dtype=np.float32)
    raw[:, :ccd.nx_image] = electrons / np.float32(GAIN) + ro.structure + rows
    raw[:, ccd.nx_image:] = rows + rng.standard_normal((ccd.ny, N_OVERSCAN), dtype=np.float32) * np.float32(
        ro.read_noise_e / GAIN)
    counts = np.clip(np.rint(raw), 0, ADC_MAX).astype(np.uint16)
    hit = np.unique(cr_index)
    return counts, {"overscan_adu": float(level), "n_cosmics": int(hit.size), "cosmic_pixels": hit}
