"""VIRUS and HET facts the pipeline and the simulator share (nominal values, not truth).

Frame geometry (one amplifier): 1032 active columns (dispersion, blue at low x) plus overscan,
1032 rows (112 fibers); the rectified wavelength grid of the H5 files; the nominal IFU fiber
layout (the ``ifucen`` file of the real pipeline); the Hg+Cd arc line list; the nominal
throughput shape; the photometric constants that turn counts into flux.
"""

from __future__ import annotations

import numpy as np

AMPS = ("LL", "LU", "RL", "RU")
NX_ACTIVE = 1032  # trimmed columns (wavelength)
NY = 1032  # rows (fibers)
NX_RAW = 1064  # raw columns: active + overscan
OVERSCAN = (1034, 1060)  # overscan columns used (0-based, end exclusive)
OVERSCAN_ROWS = (9, 1032)  # rows of the overscan region used
N_FIBERS_AMP = 112
N_FIBERS_IFU = 4 * N_FIBERS_AMP
N_EXP = 3
EXPTIME = 360.0  # s, science exposure

WAVE0, DWAVE, N_RECT = 3470.0, 2.0, 1036
RECT_WAVE = WAVE0 + DWAVE * np.arange(N_RECT)  # the H5 calfib grid

TEL_AREA_CM2 = 5.0e5  # effective HET pupil, cm^2
HC_ERG_A = 1.98644586e-8  # h c in erg Angstrom
FIBER_RADIUS = 0.75  # arcsec
FIBER_AREA = np.pi * FIBER_RADIUS**2
FLUX_UNIT = 1e-17  # calfib unit, erg/s/cm^2 per 2 A bin

# Hg + Cd lamp lines in the VIRUS band (air, Angstrom)
ARC_LINES = np.array([3610.51, 3650.15, 4046.56, 4077.83, 4358.33, 4678.16, 4799.91, 5085.82, 5460.74])

# bright night-sky lines in the band (Angstrom) and the dither pattern (arcsec, focal plane)
SKY_LINES = np.array([3914.4, 4046.56, 4358.33, 4678.2, 4799.9, 5085.8, 5199.0, 5460.74])
DITHERS = np.array([[0.0, 0.0], [1.27, -0.73], [1.27, 0.73]])
IFU_SPACING = 100.0  # arcsec between IFU centres in the focal plane


def ifucen() -> np.ndarray:
    """Nominal fiber positions in an IFU (arcsec), shape (448, 2), in amp order LL, LU, RL, RU.

    A hexagonal pack of 2.54" pitch: rows 2.2" apart, alternate rows shifted by half a pitch;
    each amplifier reads 112 consecutive fibers (fibnum 1..112).
    """
    pitch, row_dy = 2.54, 2.2
    pts = []
    for row in range(23):
        n = 20 if row % 2 == 0 else 19
        x0 = -9.5 * pitch if row % 2 == 0 else -9.0 * pitch
        for i in range(n):
            pts.append((x0 + i * pitch, -24.2 + row * row_dy))
    return np.array(pts[:N_FIBERS_IFU])


def amp_fibers(amp: str) -> np.ndarray:
    """ifux, ifuy of one amplifier's fibers, fibnum order (shape (112, 2))."""
    k = AMPS.index(amp)
    return ifucen()[k * N_FIBERS_AMP:(k + 1) * N_FIBERS_AMP]


def nominal_throughput(wave) -> np.ndarray:
    """Nominal system throughput shape (atmosphere + telescope + VIRUS), peak about 0.2 near 4800 A."""
    w = np.asarray(wave, float)
    return 0.2 * np.exp(-0.5 * ((w - 4800.0) / 900.0) ** 2) * (1 - 0.35 * np.exp(-((w - 3500.0) / 250.0) ** 2))


def electrons_per_flux(wave, dlam, exptime) -> np.ndarray:
    """Detected electrons per unit F_lambda (erg/s/cm^2/A) per pixel of width dlam, before throughput."""
    return TEL_AREA_CM2 * exptime * np.asarray(dlam) * np.asarray(wave) / HC_ERG_A


def ifuslot_position(ifuslot: str) -> tuple[float, float]:
    """Nominal focal-plane position (arcsec) of an IFU slot ``CCR`` (2-digit column, 1-digit row)."""
    col, row = int(ifuslot[:2]), int(ifuslot[2])
    return (col - 5) * IFU_SPACING, (row - 5) * IFU_SPACING


def ifuslots(n: int) -> list[str]:
    """The first ``n`` IFU slots, nearest the field centre first (the centre slot 055 is empty)."""
    slots = [(c, r) for c in range(1, 10) for r in range(1, 10) if (c, r) != (5, 5)]
    slots.sort(key=lambda cr: ((cr[0] - 5) ** 2 + (cr[1] - 5) ** 2, cr))
    return [f"{c:02d}{r}" for c, r in slots[:n]]
