"""Radial velocities of NRES spectra by cross-correlation with a template (banzai-nres ``rv.py``):
a coarse search from -2000 to 2000 km/s at 1 km/s, a fine one of +-2 km/s at 1 m/s around the
sigma-clipped mean of the coarse order peaks, per-order peaks combined with 4-sigma clipping
(median centre, robust scatter), RVERR = std / sqrt(N). The template is an observed ZERO (a coadd
of exposures of a standard shifted to rest, ``make_zero``) or a model spectrum.

The cross-correlation is the matched filter of Zackay & Ofek (2017, ApJ 836, 187) as banzai-nres
uses it, applied to line depths: ``X(v) = sum(d t_v / sigma^2) / sqrt(sum(t_v^2 / sigma^2))`` with
``d = 1 - normflux`` and ``t_v`` the template depth ``1 - T`` at ``lambda / (1 + v/c)`` (so that
the continuum, which carries no velocity information, does not enter): ``X`` is the
signal-to-noise of the template in the data at velocity ``v``. The coarse CCF is evaluated by FFT on
a grid uniform in ln(lambda) (1 km/s steps), the fine one exactly every 20 m/s and interpolated
(cubic spline) to 1 m/s. Velocities here are in m/s unless the name says km/s.
"""

from __future__ import annotations

import numpy as np
from scipy.interpolate import CubicSpline, PPoly, make_interp_spline

from astroflow.filters import mad_std

__all__ = [
    "C_MS",
    "coarse_ccf",
    "cross_correlate",
    "doppler_shift",
    "make_zero",
    "measure_rv",
    "observed_velocity",
    "template_match",
]

C_MS = 299792458.0
C_KMS = C_MS / 1000.0


def doppler_shift(wavelength, v_ms):
    """Wavelengths seen from a source receding at ``v_ms``: ``lambda (1 + v/c)``."""
    return np.asarray(wavelength, float) * (1.0 + v_ms / C_MS)


def observed_velocity(rv_ms, barycorr_ms):
    """The velocity a spectrum shows (topocentric, the optical convention) for a star of
    barycentric radial velocity ``rv_ms`` and a barycentric correction ``barycorr_ms``: the inverse
    of Wright & Eastman (2014) ``RV = v + BC + v BC / c``, i.e. ``v = (RV - BC) / (1 + BC / c)``."""
    return (np.asarray(rv_ms, float) - barycorr_ms) / (1.0 + np.asarray(barycorr_ms, float) / C_MS)


def _clean(wavelength, flux, uncertainty, mask=None):
    w = np.asarray(wavelength, float)
    f = np.asarray(flux, float)
    e = np.asarray(uncertainty, float)
    ok = np.isfinite(w) & np.isfinite(f) & np.isfinite(e) & (e > 0) & (w > 0)
    if mask is not None:
        ok &= np.asarray(mask) == 0
    o = np.argsort(w[ok])
    return w[ok][o], f[ok][o], e[ok][o]


def _template_depth(template_wavelength, template_flux):
    tw = np.asarray(template_wavelength, float)
    tf = np.asarray(template_flux, float)
    ok = np.isfinite(tw) & np.isfinite(tf) & (tw > 0)
    return _increasing(tw[ok], 1.0 - tf[ok])


def _spline(w, f):
    """The interpolating spline of degree 5 through ``(w, f)`` (``w`` increasing; linear with fewer
    than 6 samples), as a piecewise polynomial (fast to evaluate).  The data and the ZEROs are
    sampled at about 2.8 pixels per resolution element: a cubic spline leaves ~1 m/s errors that
    depend on the sub-pixel phase of a shift, and 4 m/s for a star broader than the template, the
    same in every order (NRES's pixels are a constant velocity step); degree 5 takes both under the
    1 m/s grid (tests/nres/test_science_rv.py)."""
    if w.size < 6:
        return lambda q: np.interp(q, w, f)
    return PPoly.from_spline(make_interp_spline(w, f, k=5))


def _depth(template_wavelength, template_flux, sampled: bool):
    """The template's sorted wavelengths and its line depth ``1 - T`` as a function of rest
    wavelength (zero outside the template).  A model spectrum, sampled much finer than the data, is
    interpolated linearly; a template ``sampled`` like the data (a ZERO) by the spline through its
    samples (:func:`_spline`).  Linear interpolation, even of a ZERO resampled finer, is smoother
    between the samples than at them, so wherever the data's pixels fall on the template's samples
    all together (the data and the ZERO come through the same pixels) the CCF's normalisation has
    a cusp that pulls the peak of a star unlike the template by up to 20 m/s per order.  Gaps in a
    ZERO (masked pixels) have no depth: a spline does not bridge them."""
    tw, td = _template_depth(template_wavelength, template_flux)
    if not sampled or tw.size < 4:
        return tw, lambda q: np.interp(q, tw, td, left=0.0, right=0.0)
    spline = _spline(tw, td)

    def at(q):
        q = np.asarray(q, float)
        inside = _within(q, tw)
        return np.where(inside, spline(np.where(inside, q, tw[0])), 0.0)

    return tw, at


def cross_correlate(velocities_kms, wavelength, flux, uncertainty, template_wavelength,
                    template_flux, mask=None, chunk: int = 256, sampled: bool = False):
    """The CCF of one order at the given velocities (km/s), evaluated exactly (the template
    interpolated at ``lambda / (1 + v/c)`` as :func:`_depth` says; zero depth outside it). ``flux`` and
    ``template_flux`` are continuum-normalised. Only the pixels the template covers at every one
    of the velocities enter: a pixel that slid off the template's end at some velocities would make
    steps in the CCF (the ZERO ends where its exposures' orders ended) and pull the fine peak by
    tens of m/s. Returns ``xcor`` (signal-to-noise units)."""
    v = np.atleast_1d(np.asarray(velocities_kms, float))
    w, f, e = _clean(wavelength, flux, uncertainty, mask)
    tw, depth = _depth(template_wavelength, template_flux, sampled)
    out = np.zeros(v.size)
    if w.size < 2 or tw.size < 2:
        return out
    covered = (w / (1.0 + v.max() / C_KMS) >= tw[0]) & (w / (1.0 + v.min() / C_KMS) <= tw[-1])
    w, f, e = w[covered], f[covered], e[covered]
    if w.size < 2:
        return out
    d = 1.0 - f
    ivar = 1.0 / e ** 2
    dop = 1.0 / (1.0 + v / C_KMS)
    for a in range(0, v.size, chunk):
        q = w[None, :] * dop[a:a + chunk, None]
        t = depth(q.ravel()).reshape(q.shape)
        num = (t * (d * ivar)[None, :]).sum(axis=1)
        den = (t * t * ivar[None, :]).sum(axis=1)
        out[a:a + chunk] = np.where(den > 0, num / np.sqrt(np.where(den > 0, den, 1.0)), 0.0)
    return out


def coarse_ccf(wavelength, flux, uncertainty, template_wavelength, template_flux, mask=None,
               v_min: float = -2000.0, v_max: float = 2000.0, step_kms: float = 1.0, sampled: bool = False):
    """The coarse CCF (km/s grid ``v_min..v_max`` by ``step_kms``) by FFT: data, weights and template
    resampled on a grid uniform in ln(lambda) with the velocity step, the numerator and denominator
    of ``cross_correlate`` as correlations, the result interpolated to the velocity grid and scaled
    for the oversampling (the template interpolated as :func:`_depth` says). Returns ``(v_kms, xcor)``."""
    vgrid = np.arange(v_min, v_max + 0.5 * step_kms, step_kms)
    w, f, e = _clean(wavelength, flux, uncertainty, mask)
    tw, depth = _depth(template_wavelength, template_flux, sampled)
    if w.size < 4 or tw.size < 4:
        return vgrid, np.zeros(vgrid.size)
    delta = np.log1p(step_kms / C_KMS)
    lw = np.log(w)
    n = int(np.floor((lw[-1] - lw[0]) / delta)) + 1
    g = lw[0] + delta * np.arange(n)
    d = np.interp(g, lw, 1.0 - f)
    ivar = np.interp(g, lw, 1.0 / e ** 2)
    # pixels masked out of the order leave gaps: no weight where the nearest samples are far
    gap = np.diff(lw)
    big = np.flatnonzero(gap > 3 * np.median(gap))
    for b in big:
        ivar[(g > lw[b]) & (g < lw[b + 1])] = 0.0
    kmax = int(np.ceil(max(np.log1p(v_max / C_KMS), -np.log1p(v_min / C_KMS)) / delta)) + 2
    gt = lw[0] - kmax * delta + delta * np.arange(n + 2 * kmax)
    t = depth(np.exp(gt))
    L = 1 << int(np.ceil(np.log2(n + 2 * kmax + n)))
    fa = np.conj(np.fft.rfft(d * ivar, L))
    fw = np.conj(np.fft.rfft(ivar, L))
    num_c = np.fft.irfft(fa * np.fft.rfft(t, L), L)
    den_c = np.fft.irfft(fw * np.fft.rfft(t * t, L), L)
    ks = np.arange(-kmax, kmax + 1)
    num = num_c[kmax - ks]
    den = den_c[kmax - ks]
    xc = np.where(den > 1e-30, num / np.sqrt(np.clip(den, 1e-30, None)), 0.0)
    vk = C_KMS * np.expm1(ks * delta)
    # oversampling: samples per pixel in ln(lambda)
    over = max(1.0, np.median(gap) / delta)
    return vgrid, np.interp(vgrid, vk, xc) / np.sqrt(over)


def _sigma_clip(values, nsigma=4.0, max_iter=5, min_scale=0.0):
    """Iterative clipping about the median with the robust scatter (astropy's mad_std, at least
    ``min_scale``); returns the boolean mask of kept (finite) values."""
    v = np.asarray(values, float)
    keep = np.isfinite(v)
    for _ in range(max_iter):
        if keep.sum() < 3:
            break
        med = np.median(v[keep])
        s = max(mad_std(v[keep]), min_scale)
        if s <= 0:
            break
        new = np.isfinite(v) & (np.abs(v - med) <= nsigma * s)
        if np.array_equal(new, keep):
            break
        keep = new
    return keep


def _templates(template, wavelength, v_range_kms, order_labels=None):
    """Per-order ``(wavelength, flux, sampled)`` templates, sorted, from a per-order template
    (arrays (n_orders, npix), a dict with ``wavelength``/``flux`` and optionally ``order`` labels
    matched to ``order_labels``, or a list of pairs: ``sampled`` like the data, see :func:`_depth`)
    or one model spectrum used for every order, cut to each order's range widened by the velocity
    search."""
    if isinstance(template, dict):
        tw, tf = template["wavelength"], template["flux"]
        if order_labels is not None and template.get("order") is not None and np.ndim(tw) == 2:
            where = {int(o): i for i, o in enumerate(np.asarray(template["order"]))}
            empty = np.full(np.shape(tw)[1], np.nan)
            tw = [np.asarray(tw)[where[int(o)]] if int(o) in where else empty for o in order_labels]
            tf = [np.asarray(tf)[where[int(o)]] if int(o) in where else empty for o in order_labels]
    else:
        tw, tf = template
    n_orders = wavelength.shape[0]
    single = not isinstance(tw, list) and np.ndim(tw) == 1
    if single:
        w_all, d_all = _template_depth(tw, tf)
    elif len(tw) < n_orders:
        raise ValueError(f"the template has {len(tw)} orders for {n_orders} in the spectrum")
    out = []
    lo_f = 1.0 + min(v_range_kms) / C_KMS
    hi_f = 1.0 + max(v_range_kms) / C_KMS
    for i in range(n_orders):
        w = wavelength[i]
        if not np.isfinite(w).any():
            out.append((np.zeros(0), np.zeros(0), False))
            continue
        lo, hi = np.nanmin(w) / hi_f * 0.9999, np.nanmax(w) / lo_f * 1.0001
        if single:
            a, b = np.searchsorted(w_all, [lo, hi])
            a, b = max(0, a - 1), min(w_all.size, b + 1)
            out.append((w_all[a:b], 1.0 - d_all[a:b], False))
        else:
            ww, dd = _template_depth(tw[i], tf[i])
            out.append((ww, 1.0 - dd, True))
    return out


def _increasing(w, *values):
    """Samples sorted by wavelength with repeated wavelengths dropped (a spline's knots increase)."""
    o = np.argsort(w, kind="stable")
    w = np.asarray(w, float)[o]
    keep = np.concatenate([[True], np.diff(w) > 0])
    return (w[keep], *(np.asarray(v, float)[o][keep] for v in values))


def _within(x, w, max_gap: float = 2.0):
    """Where ``x`` lies among the increasing samples ``w``, not in a gap wider than ``max_gap``
    typical spacings."""
    inside = np.isfinite(x) & (x >= w[0]) & (x <= w[-1])
    j = np.clip(np.searchsorted(w, x), 1, w.size - 1)
    return inside & ((w[j] - w[j - 1]) <= max_gap * np.median(np.diff(w)))


def _resample(x, w, f, e, max_gap: float = 2.0):
    """A spectrum sampled at ``w`` (increasing) resampled at ``x``: the flux by :func:`_spline`, the
    uncertainty linearly.  Linear interpolation of a spectrum sampled at about two pixels per
    resolution element is not shift-accurate: it leaves a line a fraction of the way back to where
    its samples were (in the simulated NRES orders 2 m/s of a 60 m/s offset, the barycentric
    motion of an hour), so a coadd of exposures taken at different barycentric velocities would
    sit at the velocity of the first, not at rest.  Returns ``(flux, uncertainty, inside)`` where
    ``inside`` is False outside the samples and in gaps wider than ``max_gap`` typical spacings
    (masked pixels), which are not filled."""
    x = np.asarray(x, float)
    inside = _within(x, w, max_gap)
    fr = np.zeros(x.shape)
    fr[inside] = _spline(w, f)(x[inside])
    return fr, np.interp(x, w, e), inside


def peak_error(v_kms, xcor, peak, half_width_kms: float = 0.3):
    """Per-order photon-noise velocity error (m/s) from the curvature of the matched-filter CCF at its
    peak: ``X`` is a signal-to-noise, the log-likelihood ``X^2 / 2``, so ``sigma_v^2 = -1 / (X X'')``
    (a parabola fitted over +-``half_width_kms``). NaN where the peak is not a maximum."""
    out = np.full(len(xcor), np.nan)
    step = float(v_kms[1] - v_kms[0])
    k = max(2, int(round(half_width_kms / step)))
    for i, (x, p) in enumerate(zip(xcor, peak)):
        lo, hi = max(0, p - k), min(len(x), p + k + 1)
        if hi - lo < 5:
            continue
        a = np.polyfit(v_kms[lo:hi] - v_kms[p], x[lo:hi], 2)[0]
        if a < 0 and x[p] > 0:
            out[i] = 1000.0 / np.sqrt(-2.0 * a * x[p])
    return out


def measure_rv(wavelength, normflux, normuncertainty, template, orders=None, mask=None,
               v_range_kms=(-2000.0, 2000.0), coarse_step_kms: float = 1.0,
               fine_half_width_kms: float = 2.0, fine_step_kms: float = 0.001,
               fine_knot_kms: float = 0.02, nsigma: float = 4.0, min_snr: float = 5.0,
               order_labels=None):
    """Radial velocity of one spectrum (banzai-nres ``calculate_rv``).

    ``wavelength``, ``normflux``, ``normuncertainty``, ``mask``: arrays (n_orders, nx) of the
    science fiber (wavelengths already drift-corrected; NaN or masked pixels are left out);
    ``template``: a ZERO from ``make_zero`` (per-order arrays or dict), or one model spectrum
    ``(wavelength, flux)``, continuum-normalised and at rest; ``orders``: the rows to use (default:
    all with data and template overlap); ``order_labels``: the order label of each row, matched to
    the template's ``order`` (a ZERO dict) when both are given (else rows are matched by index). Orders whose coarse CCF peak has a signal-to-noise under
    ``min_snr`` are left out.

    Returns a dict: ``rv`` and ``rv_err`` (m/s; the velocity relative to the template, before the
    barycentric correction), ``order_rv`` (m/s per used order), ``orders`` (their rows), ``used``
    (bool, kept by the clipping), ``n_orders``, ``coarse_rv`` (km/s), and the CCFs: ``coarse_v``
    (km/s grid), ``coarse_xcor`` (n, nv), ``fine_v`` (km/s, 1 m/s grid), ``fine_xcor`` (n, nfine).
    """
    wavelength = np.atleast_2d(np.asarray(wavelength, float))
    normflux = np.atleast_2d(np.asarray(normflux, float))
    normuncertainty = np.atleast_2d(np.asarray(normuncertainty, float))
    n_orders = wavelength.shape[0]
    masks = None if mask is None else np.atleast_2d(mask)
    temps = _templates(template, wavelength, v_range_kms, order_labels)
    rows = list(range(n_orders)) if orders is None else list(orders)
    use_rows, coarse = [], []
    vgrid = None
    for r in rows:
        tw, tf, sampled = temps[r]
        w = wavelength[r]
        if not np.isfinite(w).any() or tw.size < 4:
            continue
        lo, hi = np.nanmin(w), np.nanmax(w)
        if np.nanmax(tw) < lo or np.nanmin(tw) > hi:
            continue
        vgrid, xc = coarse_ccf(w, normflux[r], normuncertainty[r], tw, tf,
                               None if masks is None else masks[r], *v_range_kms, coarse_step_kms, sampled)
        if not np.any(xc):
            continue
        use_rows.append(r)
        coarse.append(xc)
    if not use_rows:
        raise ValueError("no order overlaps the template")
    coarse = np.array(coarse)
    peaks_c = vgrid[np.argmax(coarse, axis=1)]
    snr_c = coarse.max(axis=1)
    good = snr_c >= min_snr
    if good.sum() == 0:
        good = np.ones(len(use_rows), bool)
    keep = _sigma_clip(peaks_c[good], 3.0, min_scale=coarse_step_kms)
    best_v = float(np.mean(peaks_c[good][keep]))
    # fine: exact CCF on knots every fine_knot_kms, cubic spline to the 1 m/s grid
    nf = round(fine_half_width_kms / fine_step_kms)
    fine_v = best_v + fine_step_kms * np.arange(-nf, nf + 1)
    nk = int(np.ceil(fine_half_width_kms / fine_knot_kms))
    knots = best_v + fine_knot_kms * np.arange(-nk - 1, nk + 2)
    fine = []
    sel_rows = [r for r, g in zip(use_rows, good) if g]
    for r in sel_rows:
        tw, tf, sampled = temps[r]
        xk = cross_correlate(knots, wavelength[r], normflux[r], normuncertainty[r], tw, tf,
                             None if masks is None else masks[r], sampled=sampled)
        fine.append(CubicSpline(knots, xk)(fine_v))
    fine = np.array(fine)
    peak = np.argmax(fine, axis=1)
    order_rv = fine_v[peak] * 1000.0
    # orders whose peak sits on the edge of the fine window did not converge
    edge = (peak == 0) | (peak == fine.shape[1] - 1)
    order_err = peak_error(fine_v, fine, peak)
    # the clipping scale is never below the photon noise of a typical order: a few orders that agree
    # by chance do not make the others outliers (and RVERR too small)
    floor = float(np.nanmedian(order_err[~edge])) if np.isfinite(order_err[~edge]).any() else 1.0
    used = _sigma_clip(np.where(edge, np.nan, order_rv), nsigma, min_scale=max(floor, 1.0))
    if used.sum() == 0:
        raise ValueError("no order gave a velocity peak")
    rv = float(np.mean(order_rv[used]))
    rv_err = float(np.std(order_rv[used]) / np.sqrt(used.sum())) if used.sum() > 1 else np.nan
    return {"rv": rv, "rv_err": rv_err, "order_rv": order_rv, "order_err": order_err, "orders": np.array(sel_rows),
            "used": used, "n_orders": int(used.sum()), "coarse_rv": best_v,
            "coarse_v": vgrid, "coarse_xcor": coarse[good], "coarse_orders": np.array(use_rows)[good],
            "fine_v": fine_v, "fine_xcor": fine}


def template_match(wavelength, normflux, normuncertainty, template, mask=None, order_labels=None,
                   v_range_kms=(-2000.0, 2000.0), step_kms: float = 1.0) -> dict:
    """How well ``template`` matches a spectrum (banzai-nres classify's criterion): the coarse
    CCFs of every order overlapping the template summed over orders, at their common peak.
    ``X`` is the matched filter's signal-to-noise, largest for the template most like the data
    (Cauchy-Schwarz), so the best of several templates is the one with the largest ``peak``.
    Arguments as :func:`measure_rv`.  Returns ``peak`` (0 when no order overlaps), ``v_kms``
    there and ``n_orders`` summed."""
    wavelength = np.atleast_2d(np.asarray(wavelength, float))
    temps = _templates(template, wavelength, v_range_kms, order_labels)
    total, vgrid, n = None, None, 0
    for r, (tw, tf, sampled) in enumerate(temps):
        if tw.size < 4 or not np.isfinite(wavelength[r]).any():
            continue
        vgrid, xc = coarse_ccf(wavelength[r], np.atleast_2d(normflux)[r], np.atleast_2d(normuncertainty)[r], tw, tf,
                               None if mask is None else np.atleast_2d(mask)[r], *v_range_kms, step_kms, sampled)
        if np.any(xc):
            total = xc if total is None else total + xc
            n += 1
    if total is None:
        return {"peak": 0.0, "v_kms": np.nan, "n_orders": 0}
    k = int(np.argmax(total))
    return {"peak": float(total[k]), "v_kms": float(vgrid[k]), "n_orders": n}


def make_zero(wavelengths, normfluxes, normuncertainties, velocities_ms, masks=None):
    """A ZERO template (the IDL pipeline's RV standard; banzai-nres's TEMPLATE stack): each
    exposure's wavelengths shifted to rest with its observed velocity (``observed_velocity`` of the
    standard's catalogue RV and the exposure's barycentric correction), resampled on the first
    exposure's rest-frame grid (:func:`_resample`), and averaged order by order with
    inverse-variance weights.

    ``wavelengths``, ``normfluxes``, ``normuncertainties``: sequences of (n_orders, nx) arrays, one
    per exposure; ``velocities_ms``: one per exposure. Returns a dict of (n_orders, nx) arrays
    ``wavelength`` (rest), ``flux``, ``uncertainty``, and ``n`` (exposures combined)."""
    n_exp = len(wavelengths)
    if n_exp == 0:
        raise ValueError("a ZERO needs at least one exposure")
    ref = np.atleast_2d(np.asarray(wavelengths[0], float)) / (1.0 + velocities_ms[0] / C_MS)
    n_orders, nx = ref.shape
    num = np.zeros((n_orders, nx))
    wsum = np.zeros((n_orders, nx))
    for k in range(n_exp):
        w = np.atleast_2d(np.asarray(wavelengths[k], float)) / (1.0 + velocities_ms[k] / C_MS)
        f = np.atleast_2d(np.asarray(normfluxes[k], float))
        e = np.atleast_2d(np.asarray(normuncertainties[k], float))
        m = None if masks is None else np.atleast_2d(masks[k])
        for i in range(n_orders):
            ok = np.isfinite(w[i]) & np.isfinite(f[i]) & np.isfinite(e[i]) & (e[i] > 0)
            if m is not None:
                ok &= m[i] == 0
            if ok.sum() < 2:
                continue
            wi, fi, ei = _increasing(w[i][ok], f[i][ok], e[i][ok])
            fr, er, inside = _resample(ref[i], wi, fi, ei)
            wt = np.where(inside, 1.0 / er ** 2, 0.0)
            num[i] += wt * fr
            wsum[i] += wt
    with np.errstate(invalid="ignore", divide="ignore"):
        flux = np.where(wsum > 0, num / wsum, np.nan)
        unc = np.where(wsum > 0, 1.0 / np.sqrt(wsum), np.nan)
    return {"wavelength": ref, "flux": flux, "uncertainty": unc, "n": n_exp}
