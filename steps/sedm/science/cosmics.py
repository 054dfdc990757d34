"""Cosmic rays: LA-Cosmic (van Dokkum 2001) through astroscrappy, with the runbook's parameters.

sedmpy's ``CosmicX.py`` call: 4 iterations, sigclip 5, sigfrac 0.3, objlim 4.8, read noise 5 e-,
PSF FWHM 2 px, gain 1 (the frames are already in electrons), ``meanmask`` cleaning, and
CosmicX's default fine-structure image, the standard LA-Cosmic median filter (``fsmode="median"``;
astroscrappy uses the PSF FWHM only in its ``convolve`` mode, which on SEDM-like frames finds a
few percent of the cosmic rays).  Columns outside the imaging area (prescan, overscan) are masked
out of the search.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LaCosmic:
    niter: int = 4
    sigclip: float = 5.0
    sigfrac: float = 0.3
    objlim: float = 4.8
    readnoise: float = 5.0  # electrons
    psffwhm: float = 2.0  # px
    fsmode: str = "median"
    psfmodel: str = "gauss"
    cleantype: str = "meanmask"
    satlevel: float = 1.1e5  # electrons: about the 16-bit ADC's top at gain 1.8 (saturated stars are left alone)


def clean(image_e: np.ndarray, imaging: np.ndarray, p: LaCosmic = LaCosmic()) -> tuple[np.ndarray, np.ndarray]:
    """(cosmic-ray mask, cleaned image) of a bias-subtracted frame in electrons; ``imaging`` is
    True on the pixels that see light (the rest is neither searched nor changed)."""
    import astroscrappy  # a step-only dependency: imported where used

    data = np.ascontiguousarray(image_e, dtype=np.float32)
    mask, cleaned = astroscrappy.detect_cosmics(
        data, inmask=~imaging, sigclip=p.sigclip, sigfrac=p.sigfrac, objlim=p.objlim, gain=1.0,
        readnoise=p.readnoise, satlevel=p.satlevel, niter=p.niter, sepmed=True, cleantype=p.cleantype,
        fsmode=p.fsmode, psfmodel=p.psfmodel, psffwhm=p.psffwhm, verbose=False)
    mask = np.asarray(mask, dtype=bool) & imaging
    return mask, np.where(imaging, cleaned, data).astype(np.float32)
