"""Rest wavelengths (vacuum, Angstrom) and the wavelength grid of HETDEX spectra."""

from __future__ import annotations

import numpy as np

LYA = 1215.67
OII = 3727.8  # [OII] 3726/3729 doublet, unresolved by VIRUS

WAVE_GRID = 3470.0 + 2.0 * np.arange(1036)  # the rectified HETDEX grid (Angstrom)

# lines that may accompany a detection, by the frame they belong to
LINES = {
    "NV": 1240.8, "SiIV": 1397.6, "CIV": 1549.5, "HeII": 1640.4, "CIII]": 1908.7, "MgII": 2799.1,
    "[OII]": OII, "[NeIII]": 3869.0, "H-delta": 4101.7, "H-gamma": 4340.5, "H-beta": 4861.3,
    "[OIII]4959": 4958.9, "[OIII]": 5006.8,
}
# multiline frames: the main line's identity and the companions searched for
FRAMES = {
    "LyA": ("LyA", LYA, ["NV", "SiIV", "CIV", "HeII", "CIII]"]),
    "OII": ("OII", OII, ["[NeIII]", "H-gamma", "H-beta", "[OIII]4959", "[OIII]"]),
    "H-beta": ("H-beta", LINES["H-beta"], ["[OII]", "[NeIII]", "H-gamma", "[OIII]4959", "[OIII]"]),
    "OIII": ("OIII", LINES["[OIII]"], ["[OII]", "[NeIII]", "H-gamma", "H-beta", "[OIII]4959"]),
    "CIV": ("CIV", LINES["CIV"], ["NV", "SiIV", "HeII", "CIII]", "MgII"]),
    "MgII": ("MgII", LINES["MgII"], ["CIV", "HeII", "CIII]", "[OII]", "[NeIII]"]),
}
