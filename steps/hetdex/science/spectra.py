"""Fiber spectra from an amplifier frame (runbook 6 and 7: vred, getxtr, getwavo, vrecon).

Trace finding on a flat, Gaussian cross-dispersion profile, optimal extraction, arc-line
wavelength solutions, fiber-to-fiber from twilights, and rectification onto the 2 A grid.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from astroflow.filters import biweight, mad_std, running_median
from steps.hetdex.science.instrument import ARC_LINES, DWAVE, N_FIBERS_AMP, NX_ACTIVE, RECT_WAVE

HALF = 4  # extraction half-width in rows


def _log_parabola(ym, y0, yp):
    """Sub-pixel offset and Gaussian sigma from three samples around a peak (log-parabola)."""
    lm, l0, lp = (np.log(np.maximum(v, 1e-3)) for v in (ym, y0, yp))
    den = lm - 2 * l0 + lp
    den = np.where(den < -1e-6, den, -1e-6)
    off = 0.5 * (lm - lp) / den
    sigma = np.sqrt(-1.0 / den)
    return np.clip(off, -1, 1), sigma


def find_trace(flat: np.ndarray, n_fibers: int = N_FIBERS_AMP, step: int = 16, half_width: int = 4,
               deg: int = 3) -> dict:
    """Fiber traces y(x) and profile widths from a bright flat.

    Columns are summed in blocks of ``2*half_width+1`` every ``step`` columns; peaks are found in
    each block and centred with a log-parabola; blocks that do not show ``n_fibers`` peaks are
    counted as bad; each fiber's centres are fitted by a polynomial of degree ``deg`` in x.
    Returns dict(trace (nfib, nx), sigma (nfib,), n_bad_blocks, rms).
    """
    ny, nx = flat.shape
    xcs, ycs, sgs = [], [], []
    n_bad = 0
    for xc in range(half_width + 8, nx - half_width - 8, step):
        prof = np.nansum(flat[:, xc - half_width:xc + half_width + 1], axis=1)
        thr = 0.2 * np.percentile(prof, 99)
        pk = np.flatnonzero((prof[1:-1] > prof[:-2]) & (prof[1:-1] >= prof[2:]) & (prof[1:-1] > thr)) + 1
        if pk.size != n_fibers:
            n_bad += 1
            continue
        off, sig = _log_parabola(prof[pk - 1], prof[pk], prof[pk + 1])
        xcs.append(xc)
        ycs.append(pk + off)
        sgs.append(sig)
    if len(xcs) < deg + 2:
        raise ValueError(f"trace: only {len(xcs)} column blocks with {n_fibers} fibers")
    xcs, ycs, sgs = np.array(xcs), np.array(ycs), np.array(sgs)  # (nb,), (nb, nfib)
    x = np.arange(nx)
    xn = (xcs - nx / 2) / (nx / 2)
    coef = np.polynomial.polynomial.polyfit(xn, ycs, deg)  # (deg+1, nfib)
    fit = np.polynomial.polynomial.polyval(xn, coef)  # (nfib, nb)
    rms = float(np.sqrt(np.mean((fit.T - ycs) ** 2)))
    trace = np.polynomial.polynomial.polyval((x - nx / 2) / (nx / 2), coef)  # (nfib, nx)
    return {"trace": trace, "sigma": np.median(sgs, axis=0), "n_bad_blocks": n_bad, "rms": rms}


def profile_weights(trace: np.ndarray, sigma: np.ndarray, ny: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (nfib, 2*HALF+1, nx) and normalised Gaussian profile weights of the same shape."""
    base = np.rint(trace).astype(int)
    offs = np.arange(-HALF, HALF + 1)
    rows = base[:, None, :] + offs[None, :, None]
    prof = np.exp(-0.5 * ((rows - trace[:, None, :]) / sigma[:, None, None]) ** 2)
    prof[(rows < 0) | (rows >= ny)] = 0.0
    prof /= np.maximum(prof.sum(axis=1, keepdims=True), 1e-12)
    return rows.clip(0, ny - 1), prof


def _gather(image: np.ndarray, var: np.ndarray, profile: tuple[np.ndarray, np.ndarray]):
    """The frame's pixels under every profile weight (nfib, 2*HALF+1, nx): data, variance, usable."""
    rows, _ = profile
    pixel = rows * image.shape[1] + np.arange(image.shape[1])  # flat index: take is faster than [rows, cols]
    d, v = np.take(image, pixel), np.take(var, pixel)
    return d, v, np.isfinite(d) & np.isfinite(v) & (v > 0)


def _solve(d, v, good, prof, axis: int):
    """The optimal-extraction sums over the profile ``axis``: (spectrum, error, chi2), float32."""
    w = np.where(good, 1.0 / np.where(good, v, 1.0), 0.0)
    d = np.where(good, d, 0.0)
    den = np.sum(prof**2 * w, axis=axis)
    spec = np.sum(prof * w * d, axis=axis) / np.where(den > 0, den, np.inf)
    err = np.where(den > 0, 1.0 / np.sqrt(np.where(den > 0, den, 1.0)), np.nan)
    resid = (d - np.expand_dims(spec, axis) * prof) ** 2 * w
    ngood = np.maximum(good.sum(axis=axis) - 1, 1)
    chi2 = resid.sum(axis=axis) / ngood
    spec = np.where(den > 0, spec, np.nan)
    return spec.astype(np.float32), err.astype(np.float32), chi2.astype(np.float32)


def extract(image: np.ndarray, var: np.ndarray, profile: tuple[np.ndarray, np.ndarray], mask=None) -> dict:
    """Optimal (profile-weighted) extraction; masked pixels get zero weight.

    ``profile`` is :func:`profile_weights` of the traces. Returns spectrum, error and chi2 per
    fiber and column (nfib, nx): the spectrum is the total counts of the fiber in that column.
    """
    d, v, good = _gather(image, var, profile)
    if mask is not None:
        rows, _ = profile
        good &= ~mask[rows, np.broadcast_to(np.arange(image.shape[1]), rows.shape)]
    spec, err, chi2 = _solve(d, v, good, profile[1], axis=1)
    return {"spectrum": spec, "error": err, "chi2": chi2}


def model_image(spec: np.ndarray, profile: tuple[np.ndarray, np.ndarray], ny: int) -> np.ndarray:
    """The frame the extracted spectra predict (for cleaning masked pixels)."""
    rows, prof = profile
    nx = spec.shape[1]
    pixel = rows * nx + np.arange(nx)  # flat pixel index of every profile weight
    out = np.bincount(pixel.ravel(), weights=(prof * np.nan_to_num(spec)[:, None, :]).ravel(), minlength=ny * nx)
    return out.reshape(ny, nx).astype(np.float32)


def cosmic_mask(image: np.ndarray, var: np.ndarray, model: np.ndarray, nsig: float = 5.0, grow_nsig: float = 2.5,
                frac: float = 0.3) -> np.ndarray:
    """Pixels the fiber-profile model cannot explain: cosmic-ray hits (bool, image shape).

    A pixel is hit when it exceeds the model by ``nsig`` times its noise (``var``: its own shot
    noise and the read noise, so light the model leaves out between fibers is not a hit) and by
    ``frac`` of the model (a slightly wrong profile on a bright line is not a hit); the mask then
    grows into the 8 neighbours that exceed the model by ``grow_nsig`` (the hit's charge spread).
    """
    excess = image - model
    with np.errstate(invalid="ignore"):
        z = np.where(np.isfinite(excess) & (var > 0), excess / np.sqrt(np.where(var > 0, var, 1.0)), 0.0)
        hit = (z > nsig) & (excess > frac * np.abs(model))
    near = np.zeros_like(hit)  # the hits dilated by 3 x 3 (they are sparse: set the neighbours)
    ys, xs = np.nonzero(hit)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            near[np.clip(ys + dy, 0, hit.shape[0] - 1), np.clip(xs + dx, 0, hit.shape[1] - 1)] = True
    return hit | (near & (z > grow_nsig))


def extract_clean(image: np.ndarray, var: np.ndarray, trace: np.ndarray, sigma: np.ndarray, nsig: float = 5.0,
                  iterations: int = 2) -> dict:
    """Optimal extraction with cosmic-ray rejection: extract, mask the pixels the profile model
    cannot explain, extract again without them (``iterations`` times).  Adds ``cosmics`` (the
    mask) and ``model`` (the frame the final spectra predict) to :func:`extract`'s dict.

    The frame is gathered once; a new mask re-extracts only the (fiber, column) windows it
    touches (summed in the same order, so the result is :func:`extract` with the mask, bit for bit).
    """
    ny = image.shape[0]
    profile = profile_weights(trace, sigma, ny)
    rows, prof = profile
    d, v, good = _gather(image, var, profile)
    mask = np.zeros(image.shape, bool)
    spec, err, chi2 = _solve(d, v, good, prof, axis=1)
    model = model_image(spec, profile, ny)
    cols = np.broadcast_to(np.arange(image.shape[1]), rows.shape)
    for _ in range(iterations):
        new = cosmic_mask(image, var, model, nsig) & ~mask
        if not new.any():
            break
        mask |= new
        fi, xi = np.nonzero(new[rows, cols].any(axis=1))  # the windows holding a new masked pixel

        def window(a):  # (2*HALF+1, k), contiguous: summed over axis 0 in the order axis 1 sums
            return np.ascontiguousarray(a[fi, :, xi].T)

        ok = window(good) & ~mask[window(rows), xi[None, :]]
        spec[fi, xi], err[fi, xi], chi2[fi, xi] = _solve(window(d), window(v), ok, window(prof), axis=0)
        model = model_image(spec, profile, ny)
    return {"spectrum": spec, "error": err, "chi2": chi2, "cosmics": mask, "model": model}


def nominal_wavelength(x):
    """Nominal VIRUS dispersion (first guess for line identification)."""
    return 3461.0 + 2.027 * np.asarray(x, float)


def arc_centroids(spec: np.ndarray, lines=ARC_LINES, search: int = 6) -> np.ndarray:
    """Column centroids (nfib, nlines) of the arc lines, NaN where not found."""
    nfib, nx = spec.shape
    x = np.arange(nx)
    guess = np.interp(lines, nominal_wavelength(x), x)
    out = np.full((nfib, len(lines)), np.nan)
    level = 5 * np.nanmedian(np.abs(spec), axis=1) + 1  # a line is strong above this
    # coarse shift per fiber from the brightest line, then local peaks
    for j, g in enumerate(guess):
        lo, hi = int(max(g - search, 2)), int(min(g + search, nx - 3))
        seg = np.nan_to_num(spec[:, lo:hi + 1])
        pk = lo + np.argmax(seg, axis=1)
        ym, y0, yp = (spec[np.arange(nfib), pk + k] for k in (-1, 0, 1))
        off, _ = _log_parabola(ym, y0, yp)
        strong = y0 > level
        out[:, j] = np.where(strong, pk + off, np.nan)
    return out


def fit_wavelength(cents: np.ndarray, lines=ARC_LINES, deg: int = 3, nx: int = NX_ACTIVE) -> dict:
    """Per-fiber polynomial wavelength solutions from arc centroids, clipped twice at 4 sigma
    (sigma: astropy's ``mad_std`` of the line residuals, at least 0.02 A).

    Returns wavelength (nfib, nx), residual rms (A) and the number of lines used per fiber.
    """
    nfib = cents.shape[0]
    wave = np.zeros((nfib, nx))
    resid_all, nused = [], np.zeros(nfib, int)
    x = np.arange(nx)
    for f in range(nfib):
        ok = np.isfinite(cents[f])
        for _ in range(2):
            if ok.sum() < deg + 2:
                break
            c = np.polynomial.polynomial.polyfit(cents[f, ok] / nx, lines[ok], deg)
            r = lines - np.polynomial.polynomial.polyval(cents[f] / nx, c)
            s = max(mad_std(r[ok]), 0.02)
            ok &= np.abs(np.nan_to_num(r, nan=1e9)) < 4 * s
        if ok.sum() < deg + 2:
            wave[f] = np.nan
            continue
        c = np.polynomial.polynomial.polyfit(cents[f, ok] / nx, lines[ok], deg)
        wave[f] = np.polynomial.polynomial.polyval(x / nx, c)
        resid_all.extend(lines[ok] - np.polynomial.polynomial.polyval(cents[f, ok] / nx, c))
        nused[f] = ok.sum()
    rms = float(np.sqrt(np.mean(np.square(resid_all)))) if resid_all else np.nan
    return {"wavelength": wave, "rms": rms, "n_lines": nused}


def rectify(spec: np.ndarray, err: np.ndarray, wave: np.ndarray, grid=RECT_WAVE) -> tuple[np.ndarray, np.ndarray]:
    """Counts per native pixel -> counts per 2 A bin on the rectified grid (linear interpolation
    of the flux density; errors interpolated the same way; NaN outside the fiber's coverage)."""
    nfib = spec.shape[0]
    out = np.full((nfib, grid.size), np.nan, np.float32)
    oute = np.full((nfib, grid.size), np.nan, np.float32)
    for f in range(nfib):
        w = wave[f]
        if not np.all(np.isfinite(w)):
            continue
        dl = np.gradient(w)
        dens = spec[f] / dl
        edens = err[f] / dl
        inside = (grid >= w[0]) & (grid <= w[-1])
        out[f] = np.where(inside, np.interp(grid, w, dens) * DWAVE, np.nan)
        oute[f] = np.where(inside, np.interp(grid, w, edens) * DWAVE, np.nan)
    return out, oute


def smooth_ratio(ratio: np.ndarray, width: int = 51) -> np.ndarray:
    """Smooth each row of a spectrum ratio along wavelength (running median then mean)."""
    r = np.where(np.isfinite(ratio), ratio, np.nanmedian(ratio))
    r = running_median(r, width, mode="nearest")
    return ndimage.uniform_filter1d(r, 11, axis=1, mode="nearest")


def fiber_to_fiber(rect_twi: np.ndarray) -> np.ndarray:
    """Fiber-to-fiber (nfib, 1036) from rectified twilight spectra: each fiber over the biweight
    of all fibers, smoothed in wavelength (the solar lines cancel)."""
    ref = biweight(rect_twi.T, scale=False)[0]
    return smooth_ratio(rect_twi / ref[None, :]).astype(np.float32)


def biweight_sky(rect: np.ndarray) -> np.ndarray:
    """Sky spectrum: biweight over fibers at each wavelength."""
    return biweight(rect.T, scale=False)[0].astype(np.float32)


def native_sky(spec: np.ndarray, wave: np.ndarray, f2f_native: np.ndarray, step: float = 0.5) -> np.ndarray:
    """Sky counts per native pixel of every fiber (nfib, nx), from all fibers of the amp.

    The fibers' flux densities (counts / dlambda / fiber-to-fiber) at their own wavelengths are
    pooled and medianed in ``step`` A bins, then evaluated back at each fiber's pixels;
    sky lines are subtracted before rectification, so no interpolation ringing is left.
    """
    dl = np.gradient(wave, axis=1)
    dens = spec / dl / f2f_native
    ok = np.isfinite(dens) & np.isfinite(wave)
    lam, val = wave[ok], dens[ok]
    edges = np.arange(np.nanmin(wave) - step, np.nanmax(wave) + 2 * step, step)
    idx = np.digitize(lam, edges) - 1
    order = np.lexsort((val, idx))  # by bin, then by value: each bin's median is its middle
    idx, val = idx[order], val[order]
    bounds = np.searchsorted(idx, np.arange(len(edges)))
    start, count = bounds[:-1], np.diff(bounds)
    full = count >= 3
    med = np.full(len(edges) - 1, np.nan)
    lo, hi = start[full] + (count[full] - 1) // 2, start[full] + count[full] // 2
    med[full] = 0.5 * (val[lo] + val[hi])
    centers = 0.5 * (edges[1:] + edges[:-1])
    good = np.isfinite(med)
    med = np.interp(centers, centers[good], med[good])
    return (np.interp(wave, centers, med) * dl * f2f_native).astype(np.float32)
