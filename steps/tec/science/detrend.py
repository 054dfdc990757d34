"""TEC's alternative detrending of a PDC light curve.

Replaces ``smoothn.smoothn`` and ``fluxts_conditioning.detrend_with_smoothn_edgefix``.
Steps: per-sector median scale, divide by a straight line, a median filter of
10 x the search duration to set the smoothing strength, robust penalised
least-squares smoothing (Garcia 2010) of each data segment with in-transit
cadences weighted 0, divide; then repair segment edges that carry positive
outliers above 6 MAD.

Differences from the original, on purpose: the long median filter pads with
the nearest value instead of zeros (its ends are trimmed anyway), and a
non-finite smoothing strength falls back to the GCV choice per segment.
"""
from __future__ import annotations

import numpy as np
from scipy.fft import dct, idct
from scipy.ndimage import median_filter
from scipy.optimize import minimize_scalar

from .gapfill import mad_std


def _bisquare(r: np.ndarray, finite: np.ndarray, h: float) -> np.ndarray:
    """Tukey bisquare weights of studentised residuals (Garcia 2010, eq. 19)."""
    sigma = mad_std(r[finite])
    with np.errstate(divide="ignore", invalid="ignore"):
        u = np.abs(r / sigma / np.sqrt(1.0 - h)) / 4.685
        w = (1.0 - u * u) ** 2
    w[(u > 1.0) | ~finite | ~np.isfinite(w)] = 0.0
    return w


def smoothn(y: np.ndarray, w: np.ndarray | None = None, s: float | None = None,
            robust: bool = True, tol: float = 1e-5, max_iter: int = 100
            ) -> tuple[np.ndarray, float]:
    """Robust penalised least-squares smoothing of a 1-D series.

    Garcia (2010, Comput. Stat. Data Anal. 54, 1167) "smoothn", 1-D case;
    replaces TEC's ``smoothn.smoothn``. NaN samples and zero weights are
    ignored (filled by linear interpolation for the initial guess). ``s`` is
    the smoothing parameter; None chooses it by generalised cross-validation.
    ``robust`` runs three bisquare reweighting passes. Returns ``(z, s)``.
    """
    y = np.array(y, dtype=float)
    n = y.size
    if n < 2:
        return y, (np.nan if s is None else s)
    finite = np.isfinite(y)
    w = np.ones(n) if w is None else np.array(w, dtype=float)
    w[~finite] = 0.0
    w = w / w.max()
    weighted = bool((w < 1.0).any())
    auto = s is None
    nof = int(finite.sum())

    lam2 = (2.0 * np.cos(np.pi * np.arange(n) / n) - 2.0) ** 2
    # bounds of s from the leverage bounds h in [5e-3, 0.99] (1-D)
    s_of_h = lambda h: (((1.0 + np.sqrt(1.0 + 8.0 * h * h)) / (4.0 * h * h)) ** 2 - 1.0) / 16.0
    log_s_bounds = (np.log10(s_of_h(0.99)), np.log10(s_of_h(5e-3)))

    if not finite.all():
        x = np.arange(n)
        y = np.interp(x, x[finite], y[finite])
    if weighted:   # initial guess: the lowest tenth of the DCT spectrum
        c = dct(y, norm="ortho")
        c[int(np.ceil(n / 10)):] = 0.0
        z = idct(c, norm="ortho")
    else:
        z = np.zeros(n)
    relax = 1.75 if weighted else 1.0
    gamma = None if auto else 1.0 / (1.0 + s * lam2)
    wtot = w

    def gcv(log_s, dcty, aow):
        g = 1.0 / (1.0 + 10.0 ** log_s * lam2)
        if aow > 0.9:
            rss = np.sum((dcty * (g - 1.0)) ** 2)
        else:
            yhat = idct(g * dcty, norm="ortho")
            rss = np.sum(wtot[finite] * (y[finite] - yhat[finite]) ** 2)
        return rss / nof / (1.0 - g.sum() / n) ** 2

    for _ in range(3 if robust else 1):
        aow = wtot.sum() / n
        for it in range(1, max_iter + 1):
            dcty = dct(wtot * (y - z) + z, norm="ortho")
            if auto and (it & (it - 1)) == 0:      # it is a power of two
                res = minimize_scalar(gcv, bounds=log_s_bounds, args=(dcty, aow),
                                      method="bounded", options={"xatol": 0.1})
                s = 10.0 ** res.x
                gamma = 1.0 / (1.0 + s * lam2)
            z_new = relax * idct(gamma * dcty, norm="ortho") + (1.0 - relax) * z
            change = np.linalg.norm(z - z_new) / np.linalg.norm(z_new)
            z = z_new
            if not weighted or change <= tol:
                break
        if robust:
            h = np.sqrt(1.0 + 16.0 * s)
            h = np.sqrt(1.0 + h) / np.sqrt(2.0) / h
            wtot = w * _bisquare(y - z, finite, h)
            weighted = True
    return z, float(s)


def _smoothing_strength(lin_oot: np.ndarray, dur_cad: int, medfilt_fac: int) -> float | None:
    """Smoothing parameter scaled from a GCV fit to a long median filter.

    As in TEC: smooth the median-filtered curve (length medfilt_fac x the
    duration, ends trimmed) with GCV, then scale its s by the ratio of the
    point-to-point variances of the raw and median-filtered residuals and by
    the amplitude of the trend over its residual scatter.
    """
    size = int(dur_cad * medfilt_fac) | 1
    med = median_filter(lin_oot, size=size, mode="nearest")
    trim = size if lin_oot.size > 3 * size else max(int(0.1 * lin_oot.size), 1)
    med_t = med[trim:-trim]
    if med_t.size < 4:
        return None
    z_med, s_med = smoothn(med_t)
    amp = (z_med.max() - z_med.min()) / np.std(lin_oot[trim:-trim] - z_med)
    s = np.var(np.diff(lin_oot)) / np.var(np.diff(med_t - z_med)) * s_med * amp
    # Never more flexible than a cut at medfilt_fac / 2 durations: smoothn's response
    # 1 / (1 + s w^4) follows periods longer than 2 pi s^(1/4) cadences, and noise on
    # shorter timescales is left for the search to measure.  TEC's rule alone can be far
    # more flexible; it then removes noise on the transit's own timescale around the
    # masked transit and inflates its MES (by 10-20 % in white noise; measured).
    s_min = (dur_cad * medfilt_fac / 2.0 / (2.0 * np.pi)) ** 4
    return float(max(s, s_min)) if np.isfinite(s) and s > 0 else float(s_min)


def _fix_edges(seg: np.ndarray, s: float | None, win: int, nsig: float
               ) -> tuple[np.ndarray, np.ndarray]:
    """Flatten positive outliers (> nsig MAD) in the first / last win+1 cadences
    of a detrended segment with a stiff local smooth over 4 x win cadences."""
    seg = seg.copy()
    flag = np.zeros(seg.size, dtype=bool)
    s_edge = None if s is None else s / 100.0
    for end in (True, False):
        v = seg[::-1] if end else seg          # examine the start of v
        ref = mad_std(v[win + 1:4 * win])
        if not (np.isfinite(ref) and ref > 0):
            continue
        if np.max((v[:win + 1] - 1.0) / ref) > nsig:
            block = v[:4 * win].copy()
            v[:4 * win] = block / smoothn(block, s=s_edge, robust=False)[0]
            (flag[::-1] if end else flag)[:win + 1] = True
    return seg, flag


def detrend(flux: np.ndarray, valid: np.ndarray, oot: np.ndarray, dur_cad: int,
            sector: np.ndarray | None = None, medfilt_fac: int = 10,
            gap_threshold: int = 5, edge_window: int = 8, edge_sig: float = 6.0,
            edge_min_cad: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Detrend a light curve; replaces ``detrend_with_smoothn_edgefix``.

    flux, valid, oot: per-cadence arrays on a regular cadence grid (oot False
    for in-transit cadences, which get zero weight in the smoothing);
    dur_cad: the search duration in cadences; sector: optional sector number
    per cadence (each sector is scaled to the common median first).
    Returns ``(detrended, bad_edge)``: relative flux near 1 (NaN where not
    valid) and a flag for the cadences repaired by the edge fix.
    """
    flux = np.asarray(flux, dtype=float)
    valid = np.asarray(valid, dtype=bool) & np.isfinite(flux)
    oot = np.asarray(oot, dtype=bool)
    n = flux.size
    cad = np.arange(n, dtype=float)
    use = valid & oot
    if use.sum() < 3:
        use = valid
    f = flux.copy()
    if sector is not None:
        sector = np.asarray(sector)
        level = np.median(f[use])
        for sec in np.unique(sector[valid]):
            m = sector == sec
            ref = f[m & use] if (m & use).any() else f[m & valid]
            f[m] *= level / np.median(ref)

    slope, icpt = np.polyfit(cad[use], f[use], 1)
    lin = f / (slope * cad + icpt)
    s = _smoothing_strength(lin[use], dur_cad, medfilt_fac)

    out = np.full(n, np.nan)
    bad_edge = np.zeros(n, dtype=bool)
    iv = np.flatnonzero(valid)
    for seg_idx in np.split(iv, np.flatnonzero(np.diff(iv) > gap_threshold) + 1):
        y = lin[seg_idx]
        keep = oot[seg_idx]
        if keep.sum() > 3:
            z = smoothn(np.where(keep, y, np.nan), keep.astype(float), s)[0]
            if not np.all(np.isfinite(z)):
                z = np.ones_like(y)
        else:
            z = np.ones_like(y)
        seg = y / z
        if seg.size > edge_min_cad:
            seg, flag = _fix_edges(seg, s, edge_window, edge_sig)
            bad_edge[seg_idx] = flag
        out[seg_idx] = seg
    return out, bad_edge
