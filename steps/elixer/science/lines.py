"""Rest wavelengths (vacuum, Angstrom) and the wavelength grid of HETDEX spectra."""

from __future__ import annotations

import numpy as np

LYA = 1215.67
OII = 3727.8  # [OII] 3726/3729 doublet, unresolved by VIRUS
OII_DOUBLET = (3726.03, 3728.82)  # the two members; F(3729)/F(3726) from 0.35 (dense) to 1.5 (low density)
LYB, LYMAN_LIMIT = 1025.72, 911.75
BREAK_4000 = (3850.0, 3950.0, 4000.0, 4100.0)  # D_n(4000) bands (Balogh et al. 1999): blue lo/hi, red lo/hi
CA_K, CA_H = 3933.66, 3968.47

WAVE_GRID = 3470.0 + 2.0 * np.arange(1036)  # the rectified HETDEX grid (Angstrom)

# lines that may accompany a detection, by the frame they belong to
LINES = {
    "NV": 1240.8, "SiIV": 1397.6, "CIV": 1549.5, "HeII": 1640.4, "CIII]": 1908.7, "MgII": 2799.1,
    "[OII]": OII, "[NeIII]": 3869.0, "H-delta": 4101.7, "H-gamma": 4340.5, "H-beta": 4861.3,
    "[OIII]4959": 4958.9, "[OIII]": 5006.8,
}
# interstellar absorption lines of a star-forming galaxy's UV continuum (Shapley et al. 2003 composite)
ISM_UV = {"SiII1260": 1260.42, "OI1302": 1303.27, "CII1334": 1334.53, "SiIV1394": 1393.76, "SiIV1403": 1402.77,
          "SiII1527": 1526.71, "CIV1549": 1549.48, "FeII1608": 1608.45, "AlII1671": 1670.79}
# multiline frames: the main line's identity and the companions searched for
FRAMES = {
    "LyA": ("LyA", LYA, ["NV", "SiIV", "CIV", "HeII", "CIII]"]),
    "OII": ("OII", OII, ["[NeIII]", "H-gamma", "H-beta", "[OIII]4959", "[OIII]"]),
    "H-beta": ("H-beta", LINES["H-beta"], ["[OII]", "[NeIII]", "H-gamma", "[OIII]4959", "[OIII]"]),
    "OIII": ("OIII", LINES["[OIII]"], ["[OII]", "[NeIII]", "H-gamma", "H-beta", "[OIII]4959"]),
    "CIV": ("CIV", LINES["CIV"], ["NV", "SiIV", "HeII", "CIII]", "MgII"]),
    "MgII": ("MgII", LINES["MgII"], ["CIV", "HeII", "CIII]", "[OII]", "[NeIII]"]),
}
