"""Emission-line search and refinement on calibrated fibers (runbook 14: rdet0, fitradecsp).

Search: PSF-weighted spectra on a grid over the IFU (all exposures together), continuum removed
by a running median, a Gaussian matched filter in wavelength; S/N normalised by its robust scale
over the whole grid (the noise_ratio).  Refinement: the line's fiber fluxes re-centre the source
(smallest chi^2), the spectrum is re-extracted there and a Gaussian plus continuum is fitted;
the detection S/N is the matched filter of the fitted profile (the search's statistic).
"""

from __future__ import annotations

import numpy as np
from astropy.stats import biweight_scale
from scipy import ndimage, sparse
from scipy.optimize import least_squares
from scipy.spatial import cKDTree

from astroflow.filters import nanmedian, running_median
from steps.hetdex.science.instrument import DWAVE, RECT_WAVE
from steps.hetdex.science.psf import fiber_fraction, fit_point_source

KERNEL_SIGMA_BINS = 1.4


def fiber_ivar(err: np.ndarray) -> np.ndarray:
    """Each fiber's inverse variance, one value for all wavelengths (median over its good bins).

    Weights constant in wavelength keep an extraction a fixed combination of fibers: with
    per-bin weights, a sky line or a masked pixel shifts the weight between a bright star's core
    and wing fibers, and the star's light makes a false emission line next to it.
    """
    good = np.isfinite(err) & (err > 0)
    iv = np.where(good, 1.0 / np.where(good, err, 1.0) ** 2, np.nan)
    return np.nan_to_num(row_nanmedian(iv))  # a fiber with no data gets weight 0


def row_nanmedian(x: np.ndarray) -> np.ndarray:
    """``np.nanmedian(x, axis=1)`` of a 2-D float array, the same values in the same type, from
    the native median (numpy's masked-array path for short rows was most of the refinement)."""
    return nanmedian(x).astype(x.dtype)


def _combine(a, w, flux, err):
    """Spectra (rows of ``a``, fiber weights; an array or a scipy sparse matrix) of a point
    source with PSF fractions ``w``: the weighted fiber sum over sum(a w) and its error, from
    the bins with data."""
    good = np.isfinite(flux) & np.isfinite(err) & (err > 0)
    aw, aa = (a.multiply(w).tocsr(), a.multiply(a).tocsr()) if sparse.issparse(a) else (a * w, a * a)
    den = aw @ good.astype(float)
    num = a @ np.where(good, flux, 0.0)
    var = aa @ np.where(good, err**2, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        spec = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
        spec_err = np.where(den > 0, np.sqrt(var) / np.where(den > 0, den, 1.0), np.inf)
    return spec, spec_err


def extract_at(x, y, fx, fy, flux, err, fwhm, rmax=4.0):
    """PSF-weighted total-flux spectrum and error at (x, y) from fibers (n, 1036)."""
    near = np.hypot(fx - x, fy - y) < rmax
    w = fiber_fraction(fx[near] - x, fy[near] - y, fwhm)
    spec, spec_err = _combine(w * fiber_ivar(err[near]), w, flux[near], err[near])
    return spec, spec_err, near, w


def grid_search(fx, fy, flux, err, fwhm, x0, y0, half=26.0, step=1.0, sn_min=4.5, cont_window=51):
    """Candidates (x, y, wave, sn) above ``sn_min`` on a grid centred on (x0, y0)."""
    gx, gy = np.meshgrid(np.arange(-half, half + 1e-6, step) + x0, np.arange(-half, half + 1e-6, step) + y0)
    gx, gy = gx.ravel(), gy.ravel()
    d2 = (gx[:, None] - fx[None, :]) ** 2 + (gy[:, None] - fy[None, :]) ** 2
    w = sparse.csr_matrix(np.where(d2 < 16.0, fiber_fraction(np.sqrt(d2), 0.0, fwhm), 0.0))  # ~20 fibers per point
    spec, spec_err = _combine(w.multiply(fiber_ivar(err)[None, :]).tocsr(), w, flux, err)
    den = np.where(np.isfinite(spec_err), 1.0 / spec_err**2, 0.0)  # inverse variance per grid point and bin
    keep = den.sum(axis=1) > 0
    gx, gy, den, spec = gx[keep], gy[keep], den[keep], np.nan_to_num(spec[keep])
    cont = running_median(spec, cont_window, mode="nearest")
    line = spec - cont
    bright = cont * np.sqrt(den) > 10.0  # continuum sources are the continuum step's business
    line[bright] = 0.0
    k = np.exp(-0.5 * (np.arange(-5, 6) / KERNEL_SIGMA_BINS) ** 2)
    s = ndimage.convolve1d(line * den, k, axis=1, mode="constant")
    n = np.sqrt(ndimage.convolve1d(den, k * k, axis=1, mode="constant"))
    sn = np.where(n > 0, s / np.where(n > 0, n, 1), 0.0)
    sn[:, :8] = 0
    sn[:, -8:] = 0
    ratio = float(biweight_scale(sn[:, 10:-10].ravel()[::3]))
    sn /= ratio
    peaks = (sn == ndimage.maximum_filter(sn, size=(1, 7))) & (sn > sn_min)
    gi, li = np.nonzero(peaks)
    order = np.argsort(-sn[gi, li])
    cands = []
    for g, l in zip(gi[order], li[order]):
        x, y, wv = gx[g], gy[g], RECT_WAVE[l]
        if any(np.hypot(x - c["x"], y - c["y"]) < 3.0 and abs(wv - c["wave"]) < 8.0 for c in cands):
            continue
        cands.append({"x": float(x), "y": float(y), "wave": float(wv), "sn_search": float(sn[g, l])})
    return cands, ratio


def local_peaks(x, y, value, radius: float) -> np.ndarray:
    """Indices of the points brightest within ``radius`` of themselves (one per source, so two
    sources further apart than ``radius`` stay two even when their bright fibers touch)."""
    if len(x) == 0:
        return np.zeros(0, int)
    tree = cKDTree(np.column_stack([x, y]))
    v = np.asarray(value, float)
    return np.array([i for i, nb in enumerate(tree.query_ball_point(np.column_stack([x, y]), radius))
                     if v[i] >= v[nb].max()], int)


def distinct_centres(centres, brightness, min_sep: float) -> list[int]:
    """Indices of centres kept brightest first, dropping any closer than ``min_sep`` to a kept one."""
    kept: list[int] = []
    for i in np.argsort(-np.asarray(brightness, float), kind="stable"):
        if all(np.hypot(centres[i][0] - centres[k][0], centres[i][1] - centres[k][1]) >= min_sep for k in kept):
            kept.append(int(i))
    return sorted(kept)


def gaussian_fit(wave, spec, err, w0, half=30.0):
    """Gaussian (flux per 2 A bin units) + constant fitted around ``w0``; dict or None."""
    sel = (np.abs(wave - w0) < half) & np.isfinite(spec) & np.isfinite(err) & (err > 0) & (err < np.inf)
    if sel.sum() < 10:
        return None
    x, y, e = wave[sel], spec[sel], err[sel]

    def model(p):
        amp, mu, sig, c = p
        return amp * DWAVE * np.exp(-0.5 * ((x - mu) / sig) ** 2) / (np.sqrt(2 * np.pi) * sig) + c

    p0 = [max(np.sum(y - np.median(y)), 1e-3), w0, 2.8, np.median(y)]
    res = least_squares(lambda p: (model(p) - y) / e, p0, bounds=([0, w0 - 6, 1.5, -np.inf], [np.inf, w0 + 6, 12, np.inf]))
    try:
        cov = np.linalg.inv(res.jac.T @ res.jac)
        perr = np.sqrt(np.diag(cov))
    except np.linalg.LinAlgError:
        return None
    chi2 = float(np.sum(res.fun**2) / max(sel.sum() - 4, 1))
    amp, mu, sig, c = res.x
    # detection significance: the matched filter of the fitted profile on the continuum-subtracted
    # spectrum (flux_err, from the full covariance, is larger: flux and width are correlated)
    prof = model([1.0, mu, sig, 0.0])
    sn = float(np.sum(prof * (y - c) / e**2) / np.sqrt(np.sum(prof**2 / e**2)))
    return {"flux": amp, "flux_err": perr[0], "wave": mu, "wave_err": perr[1], "linewidth": sig, "linewidth_err": perr[2],
            "continuum": c, "continuum_err": perr[3], "chi2": chi2, "sn": sn}


def refine(cand, fx, fy, flux, err, fwhm, noise_ratio=1.0, min_ew_obs=1.0):
    """Re-centre on the line's fiber fluxes and fit the line; dict or None.

    A line on a significant continuum is kept (the [OII] emitters with low equivalent widths
    are what ELiXer needs to see) unless its observed equivalent width is under ``min_ew_obs``
    A: a wiggle on a bright continuum, not an emission line.
    """
    sel = np.abs(RECT_WAVE - cand["wave"]) < 2.5 * 2.8
    cont = row_nanmedian(flux[:, np.abs(RECT_WAVE - cand["wave"]) < 50])
    lf = np.nansum(flux[:, sel] - cont[:, None], axis=1)
    le = np.sqrt(np.nansum(err[:, sel] ** 2, axis=1))
    fit = fit_point_source(fx, fy, lf, le, cand["x"], cand["y"], fwhm, max_shift=1.5)
    x, y = (fit["x"], fit["y"]) if fit else (cand["x"], cand["y"])
    spec, spec_err, near, w = extract_at(x, y, fx, fy, flux, err, fwhm)
    g = gaussian_fit(RECT_WAVE, spec, spec_err * noise_ratio, cand["wave"])
    if g is None:
        return None
    near_line = np.abs(RECT_WAVE - g["wave"]) < 50
    significant = g["continuum"] > 3.0 * np.nanmedian(spec_err[near_line] * noise_ratio)
    if significant and DWAVE * g["flux"] < min_ew_obs * g["continuum"]:
        return None  # EW_obs = line flux / (continuum per A) = DWAVE * flux / continuum per bin
    return {**g, "x": x, "y": y, "spec": spec, "spec_err": spec_err * noise_ratio, "fibers": np.flatnonzero(near), "weights": w,
            "chi2fib": fit["chi2"] if fit else np.nan}
