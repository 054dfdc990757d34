"""Extraction of a point source from an SEDM cube (pysedm's ``extract_pointsource``, in our words).

Pure functions over NumPy arrays; spaxel positions and centroids in arcsec east and north of the
IFU centre; flux in the cube's units (e-/s/A per spaxel in, e-/s/A of the whole source out).

1. The centroid guess: the guider's (the target's coordinates through the WCS), a hand-given one,
   or :func:`brightest` -- pysedm's "brightest" mode: the mean position of the spaxels above the
   ``percentile`` (95) of the image summed over the metaslice range.
2. The region: the spaxels within ``buffer`` spaxel spacings of the guess (pysedm's buffer, 10).
3. :func:`metaslices`: the cube averaged over ``n_bins`` (7) bands evenly covering ``band``
   (4000-8000 A); the PSF is fitted on each (:func:`steps.sedm.science.psf.fit_slice`) and made
   smooth in wavelength (:func:`steps.sedm.science.psf.smooth_psf`).
4. PSF-forced photometry at every wavelength of the cube with the sky as a fitted background
   (:func:`steps.sedm.science.psf.forced_photometry`).

:func:`negative_fraction` -- the fraction of the spectrum's wavelengths (where it is finite)
whose flux is negative: the runbook's quality 4 criterion ("more than 20 % of the flux is
negative") read per wavelength bin.  :func:`in_ifu` -- whether a position falls on a spaxel
(within the circumradius of a hexagonal lenslet of the nearest spaxel centre).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from steps.sedm.science import psf as psfmod


@dataclass(frozen=True)
class Extraction:
    wavelength: np.ndarray
    flux: np.ndarray  # e-/s/A, the whole source
    variance: np.ndarray
    background: np.ndarray  # e-/s/A per spaxel, the fitted sky at the region's centre
    psf: psfmod.PsfModel
    slices: list  # SliceFit per metaslice
    guess: tuple[float, float]
    region: np.ndarray  # indexes of the spaxels used
    centroid: tuple[float, float]  # the PSF position at the reference wavelength
    fwhm: float  # arcsec at the reference wavelength


def metaslices(wavelength: np.ndarray, flux: np.ndarray, variance: np.ndarray, band: tuple[float, float],
               n_bins: int):
    """(centres, images (n_bins, n_spaxel), variances): the mean over each band's wavelengths."""
    edges = np.linspace(band[0], band[1], n_bins + 1)
    centres, imgs, vars_ = [], [], []
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (wavelength >= lo) & (wavelength < hi)
        if not sel.any():
            continue
        f, v = flux[sel], variance[sel]
        ok = np.isfinite(f) & np.isfinite(v)
        n = ok.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            imgs.append(np.where(n > 0, np.where(ok, f, 0.0).sum(axis=0) / n, np.nan))
            vars_.append(np.where(n > 0, np.where(ok, v, 0.0).sum(axis=0) / n ** 2, np.nan))
        centres.append(0.5 * (lo + hi))
    return np.array(centres), np.array(imgs), np.array(vars_)


def brightest(x: np.ndarray, y: np.ndarray, image: np.ndarray, percentile: float = 95.0) -> tuple[float, float]:
    """Mean position of the spaxels at or above ``percentile`` of ``image`` (pysedm's brightest mode)."""
    good = np.isfinite(image)
    cut = np.percentile(image[good], percentile)
    top = good & (image >= cut)
    return float(np.mean(x[top])), float(np.mean(y[top]))


def in_ifu(x: np.ndarray, y: np.ndarray, position: tuple[float, float]) -> bool:
    pitch = psfmod.pitch_of(x, y)
    d = np.hypot(x - position[0], y - position[1]).min()
    return bool(d <= pitch / np.sqrt(3.0))


def negative_fraction(flux: np.ndarray) -> float:
    f = np.asarray(flux, float)
    f = f[np.isfinite(f)]
    return float(np.mean(f < 0)) if f.size else 1.0


def extract_point_source(wavelength, flux, variance, x, y, guess: tuple[float, float], *, centroid_err: float,
                         band: tuple[float, float] = (4000.0, 8000.0), n_bins: int = 7, buffer: float = 10.0,
                         fwhm_guess: float = 2.0, background: str = "tilted", min_snr: float = 5.0,
                         region: np.ndarray | None = None, exclude=(), method: str = "psf",
                         aperture_fwhm: float = 1.5) -> Extraction:
    """Steps 2-4 of the module docstring; ``centroid_err`` in spaxel spacings, like ``buffer``;
    ``region`` (spaxel indexes, a hand-drawn region or one without a bad spaxel) replaces the
    buffer's, and the spaxels in ``exclude`` are left out of it.  ``method="aperture"`` replaces
    step 4 by :func:`steps.sedm.science.psf.aperture_photometry` in a circle of ``aperture_fwhm``
    times the PSF's FWHM (the PSF still fitted, for its position and the aperture correction)."""
    wavelength = np.asarray(wavelength, float)
    x, y = np.asarray(x, float), np.asarray(y, float)
    pitch = psfmod.pitch_of(x, y)
    side = psfmod.lenslet_side(pitch)
    if region is not None:
        region = np.asarray(region, dtype=np.int64)
    else:
        region = np.flatnonzero(np.hypot(x - guess[0], y - guess[1]) <= buffer * pitch)
    if region.size < 8:  # a guess off the IFU: the nearest spaxels
        region = np.argsort(np.hypot(x - guess[0], y - guess[1]))[:max(8, min(x.size, 19))]
    if len(exclude):
        region = np.setdiff1d(region, np.asarray(exclude, dtype=np.int64))
    rx, ry = x[region], y[region]
    f, v = flux[:, region], variance[:, region]
    centres, imgs, ivars = metaslices(wavelength, f, v, band, n_bins)
    slices = []
    start = guess
    for lam, img, var in zip(centres, imgs, ivars):
        fit = psfmod.fit_slice(rx, ry, img, var, start, wavelength=float(lam), centroid_err=centroid_err * pitch,
                               fwhm_guess=fwhm_guess, side=side, background=background)
        slices.append(fit)
    model = psfmod.smooth_psf(slices, wavelength, guess, fwhm_guess=fwhm_guess, min_snr=min_snr)
    spec, var_out, bkg = psfmod.forced_photometry(rx, ry, f, v, model, side=side, background=background)
    if method == "aperture":
        radius = aperture_fwhm * float(np.nanmedian(model.fwhm))
        spec, var_out = psfmod.aperture_photometry(rx, ry, f, v, model, side=side, radius=radius,
                                                   annulus=(radius + pitch, radius + 3 * pitch))
    ref = int(np.argmin(np.abs(wavelength - psfmod.REFERENCE_A)))
    return Extraction(wavelength, spec, var_out, bkg, model, slices, guess, region,
                      (float(model.x[ref]), float(model.y[ref])), float(model.fwhm[ref]))
