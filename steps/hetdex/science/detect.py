"""Emission-line search and refinement on calibrated fibers (runbook 14: rdet0, fitradecsp).

Search: PSF-weighted spectra on a grid over the IFU (all exposures together), continuum removed
by a running median, a Gaussian matched filter in wavelength; S/N normalised by its robust scale
over the whole grid (the noise_ratio).  Refinement: the line's fiber fluxes re-centre the source
(smallest chi^2), the spectrum is re-extracted there and a Gaussian plus continuum is fitted.
"""

from __future__ import annotations

import numpy as np
from astropy.stats import biweight_scale
from scipy import ndimage
from scipy.optimize import least_squares
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from steps.hetdex.science.instrument import DWAVE, RECT_WAVE
from steps.hetdex.science.psf import fiber_fraction, fit_point_source

KERNEL_SIGMA_BINS = 1.4


def extract_at(x, y, fx, fy, flux, err, fwhm, rmax=4.0):
    """PSF-weighted total-flux spectrum and error at (x, y) from fibers (n, 1036)."""
    near = np.hypot(fx - x, fy - y) < rmax
    w = fiber_fraction(fx[near] - x, fy[near] - y, fwhm)[:, None]
    e = err[near]
    iv = np.where(e > 0, 1.0 / np.where(e > 0, e, 1) ** 2, 0.0)
    den = np.sum(w * w * iv, axis=0)
    spec = np.sum(w * flux[near] * iv, axis=0) / np.where(den > 0, den, np.inf)
    return spec, np.where(den > 0, 1 / np.sqrt(np.where(den > 0, den, 1)), np.inf), near, w[:, 0]


def grid_search(fx, fy, flux, err, fwhm, x0, y0, half=26.0, step=1.0, sn_min=4.5, cont_window=51):
    """Candidates (x, y, wave, sn) above ``sn_min`` on a grid centred on (x0, y0)."""
    gx, gy = np.meshgrid(np.arange(-half, half + 1e-6, step) + x0, np.arange(-half, half + 1e-6, step) + y0)
    gx, gy = gx.ravel(), gy.ravel()
    d2 = (gx[:, None] - fx[None, :]) ** 2 + (gy[:, None] - fy[None, :]) ** 2
    w = np.where(d2 < 16.0, fiber_fraction(np.sqrt(d2), 0.0, fwhm), 0.0)
    iv = np.where(err > 0, 1.0 / np.where(err > 0, err, 1) ** 2, 0.0)
    den = (w * w) @ iv
    num = w @ (flux * iv)
    keep = den.sum(axis=1) > 0
    gx, gy, den, num = gx[keep], gy[keep], den[keep], num[keep]
    spec = num / np.where(den > 0, den, np.inf)
    cont = ndimage.median_filter(spec, size=(1, cont_window), mode="nearest")
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


def friends_of_friends(x, y, link: float) -> list[np.ndarray]:
    """Groups of points joined by chains of neighbours closer than ``link`` (index arrays)."""
    n = len(x)
    if n == 0:
        return []
    pairs = cKDTree(np.column_stack([x, y])).query_pairs(link, output_type="ndarray")
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    return [np.flatnonzero(label == k) for k in np.unique(label)]


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
    return {"flux": amp, "flux_err": perr[0], "wave": mu, "wave_err": perr[1], "linewidth": sig, "linewidth_err": perr[2],
            "continuum": c, "continuum_err": perr[3], "chi2": chi2, "sn": amp / perr[0] if perr[0] > 0 else 0.0}


def refine(cand, fx, fy, flux, err, fwhm, noise_ratio=1.0):
    """Re-centre on the line's fiber fluxes and fit the line; dict or None."""
    sel = np.abs(RECT_WAVE - cand["wave"]) < 2.5 * 2.8
    cont = np.nanmedian(flux[:, np.abs(RECT_WAVE - cand["wave"]) < 50], axis=1)
    lf = np.nansum(flux[:, sel] - cont[:, None], axis=1)
    le = np.sqrt(np.nansum(err[:, sel] ** 2, axis=1))
    fit = fit_point_source(fx, fy, lf, le, cand["x"], cand["y"], fwhm, max_shift=1.5)
    x, y = (fit["x"], fit["y"]) if fit else (cand["x"], cand["y"])
    spec, spec_err, near, w = extract_at(x, y, fx, fy, flux, err, fwhm)
    g = gaussian_fit(RECT_WAVE, spec, spec_err * noise_ratio, cand["wave"])
    if g is None:
        return None
    near_line = np.abs(RECT_WAVE - g["wave"]) < 50
    if g["continuum"] > 3.0 * np.nanmedian(spec_err[near_line] * noise_ratio):
        return None  # a line on a bright continuum (stars): left to the continuum catalogue
    return {**g, "x": x, "y": y, "spec": spec, "spec_err": spec_err * noise_ratio, "fibers": np.flatnonzero(near), "weights": w,
            "chi2fib": fit["chi2"] if fit else np.nan}
