"""Continuum normalisation of extracted NRES spectra (banzai-nres ``ContinuumNormalizer``): divide
by the blaze, mask absorption and emission features and the broad stellar lines (the regions CERES
masks, Brahm et al. 2017, PASP 129, 034002), fill them from the neighbouring continuum, and divide
by a 201-pixel running median.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from astroflow.filters import mad_std

__all__ = ["WAVELENGTHS_TO_MASK", "continuum_model", "mark_features", "normalize", "normalize_orders"]

# Broad stellar lines (Balmer, Ca II H&K, ...), vacuum Angstrom ranges (banzai-nres/CERES)
WAVELENGTHS_TO_MASK = np.array([[6755, 6769], [6530, 6600], [4840, 4880], [4320, 4360],
                                [4085, 4120], [3950, 3990], [3880, 3910], [3825, 3850]], float)


def mark_features(flux, nsigma: float = 3.0, resolution_px: int = 4, noise=None):
    """Pixels in spectral features (banzai-nres ``mark_features``): the upper envelope of the
    spectrum is a running 90th percentile over ``3 * resolution_px`` pixels; pixels farther than
    ``nsigma`` times the noise from it (the robust scatter of the spectrum about a smoothed copy, or
    ``noise``) are features, and the mask is dilated by ``resolution_px`` to cover the line wings.
    Returns a boolean mask (True = feature); none when everything would be masked."""
    f = np.asarray(flux, float)
    good = np.isfinite(f)
    fz = np.where(good, f, np.nanmedian(f) if good.any() else 0.0)
    if noise is None:
        smooth = ndimage.gaussian_filter1d(fz, max(resolution_px / 2.0, 0.5))
        r = (fz - smooth)[good]
        s = mad_std(r) if r.size else 0.0
        noise = np.full(f.size, s)
    noise = np.broadcast_to(np.asarray(noise, float), f.shape)
    top = ndimage.percentile_filter(fz, 90, size=max(3, 3 * resolution_px), mode="nearest")
    feature = ~(np.abs(top - fz) <= nsigma * noise) | ~good
    feature = ndimage.binary_dilation(feature, iterations=max(1, int(resolution_px)))
    if feature.all():
        return np.zeros(f.size, bool)
    return feature


def continuum_model(flux, wavelength=None, window: int = 201, mask=None, nsigma: float = 3.0,
                    resolution_px: int = 4, regions=WAVELENGTHS_TO_MASK, noise=None):
    """Continuum of one (blaze-divided) order: masked pixels (``mask``, features from
    ``mark_features``, the broad-line ``regions`` when ``wavelength`` is given) are replaced by the
    nearest unmasked value, then a running median of ``window`` pixels (edges by reflection) is
    taken. Returns (continuum, feature_mask)."""
    f = np.asarray(flux, float)
    n = f.size
    m = np.zeros(n, bool) if mask is None else np.asarray(mask).astype(bool).copy()
    m |= ~np.isfinite(f)
    if wavelength is not None and regions is not None and len(regions):
        w = np.asarray(wavelength, float)
        for lo, hi in np.asarray(regions, float):
            m |= (w >= min(lo, hi)) & (w <= max(lo, hi))
    free = ~m
    if free.sum() > 10:
        feat = np.zeros(n, bool)
        feat[free] = mark_features(f[free], nsigma=nsigma, resolution_px=resolution_px,
                                   noise=None if noise is None else np.asarray(noise)[free])
        m |= feat
    keep = ~m
    if keep.sum() < 2:
        keep = np.isfinite(f)
        if keep.sum() < 2:
            return np.ones(n), m
    x = np.arange(n)
    filled = f.copy()
    idx = np.flatnonzero(keep)
    nearest = idx[np.clip(np.searchsorted(idx, x), 0, idx.size - 1)]
    left = idx[np.clip(np.searchsorted(idx, x) - 1, 0, idx.size - 1)]
    pick = np.where(np.abs(left - x) <= np.abs(nearest - x), left, nearest)
    filled[~keep] = f[pick[~keep]]
    win = int(min(window, 2 * (n // 2) - 1)) | 1
    cont = ndimage.median_filter(filled, size=win, mode="reflect")
    cont = np.where(cont > 0, cont, np.nan)
    return cont, m


def normalize(flux, uncertainty, blaze, blaze_error=None, wavelength=None, window: int = 201,
              mask=None, nsigma: float = 3.0, resolution_px: int = 4, regions=WAVELENGTHS_TO_MASK):
    """Normalised spectrum of one order (banzai-nres): ``flux / blaze`` with the uncertainties of
    both propagated, divided by ``continuum_model`` (201-px running median after masking lines).

    Returns a dict: ``normflux``, ``normuncertainty``, ``continuum`` (blaze-divided units),
    ``feature_mask`` (bool), ``blaze_corrected`` and its uncertainty."""
    flux = np.asarray(flux, float)
    unc = np.asarray(uncertainty, float)
    blaze = np.asarray(blaze, float)
    berr = np.zeros_like(blaze) if blaze_error is None else np.asarray(blaze_error, float)
    ok = np.isfinite(blaze) & (blaze > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        bc = np.where(ok, flux / np.where(ok, blaze, 1), np.nan)
        rel = np.sqrt((unc / np.where(flux != 0, np.abs(flux), np.inf)) ** 2
                      + (berr / np.where(ok, blaze, np.inf)) ** 2)
        bc_err = np.where(ok, np.abs(bc) * rel, np.nan)
        # where the flux is ~0 the relative form fails: fall back to unc / blaze
        bc_err = np.where(ok & (flux == 0), unc / np.where(ok, blaze, 1), bc_err)
    m = ~ok if mask is None else (np.asarray(mask).astype(bool) | ~ok)
    cont, feat = continuum_model(bc, wavelength, window=window, mask=m, nsigma=nsigma,
                                 resolution_px=resolution_px, regions=regions, noise=bc_err)
    with np.errstate(divide="ignore", invalid="ignore"):
        nf = bc / cont
        nu = bc_err / cont
    return {"normflux": nf, "normuncertainty": nu, "continuum": cont, "feature_mask": feat,
            "blaze_corrected": bc, "blaze_corrected_uncertainty": bc_err}


def normalize_orders(flux, uncertainty, blaze, blaze_error=None, wavelength=None, mask=None, **kw):
    """``normalize`` applied to every row of (n_orders, nx) arrays. Returns ``(normflux,
    normuncertainty)`` arrays of the same shape."""
    flux = np.atleast_2d(flux)
    nf = np.full(flux.shape, np.nan)
    nu = np.full(flux.shape, np.nan)
    for i in range(flux.shape[0]):
        r = normalize(flux[i], np.atleast_2d(uncertainty)[i], np.atleast_2d(blaze)[i],
                      None if blaze_error is None else np.atleast_2d(blaze_error)[i],
                      None if wavelength is None else np.atleast_2d(wavelength)[i],
                      mask=None if mask is None else np.atleast_2d(mask)[i], **kw)
        nf[i], nu[i] = r["normflux"], r["normuncertainty"]
    return nf, nu
