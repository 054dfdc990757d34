"""Plain-numpy reference of the model-shift (modshift) test.

The native code (native/modshift/modshift.cpp, ``astroflow._modshift``) that
replaces the ``modshift`` program of TESS-ExoClass step 13 (modshift_test.py) is
checked against this file. It follows the same algorithm with the simplest
numpy that does the job: a direct (not FFT) shift scan, one ``np.median`` per
point for the running median, and plain loops where they read best. It is slow
next to the native code but handles 20,000 points in about a second.

The algorithm and the places where both implementations differ from the
original program are described at the top of modshift.cpp.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

OUTLIER_WINDOW = 0.02043981  # days, half-width of the running-median window
IN_TRANSIT_TOL = 1e-10  # |model - baseline| above this is in transit
DEFAULT_HALF_WIDTH = 0.0208333  # days, used when the model has < 2 in-transit points

OUTPUT_KEYS = (
    "sigma_pri", "sigma_sec", "sigma_ter", "sigma_pos", "sigma_oe", "dmm", "shape", "tat",
    "fa1", "fa2", "fred", "phase_pri", "phase_sec", "phase_ter", "phase_pos", "sec_depth", "sec_depth_err",
)


def inverfc(p: float) -> float:
    """x with erfc(x) = p (rational guess, then Halley steps); +-100 outside (0, 2)."""
    if p >= 2.0:
        return -100.0
    if p <= 0.0:
        return 100.0
    q = p if p < 1.0 else 2.0 - p
    t = math.sqrt(-2.0 * math.log(q / 2.0))
    x = -0.70711 * ((2.30753 + t * 0.27061) / (1.0 + t * (0.99229 + t * 0.04481)) - t)
    for _ in range(20):
        err = math.erfc(x) - q
        step = err / (2.0 / math.sqrt(math.pi) * math.exp(-x * x) - x * err)
        x += step
        if abs(step) <= 1e-16 * abs(x):
            break
    return x if p < 1.0 else -x


def cycle(t, epoch, period):
    """Fractional cycle in [0, 1)."""
    x = (t - epoch) / period
    return x - np.floor(x)


def mode(values) -> float:
    """Most frequent value; the smallest of equally frequent ones."""
    uniq, counts = np.unique(values, return_counts=True)
    return float(uniq[np.argmax(counts)])


def fit_scale(flux, model, base) -> float:
    g = model - base
    den = float(np.sum(g * g))
    return float(np.sum((flux - base) * g)) / den if den > 0 else 1.0


def mad(x) -> float:
    return float(np.median(np.abs(x - np.median(x))))


def running_median_outliers(phase, resid, window, threshold):
    """Flag points whose residual minus the median residual within +-window of phase exceeds threshold."""
    lo = np.searchsorted(phase, phase - 2 * window, "left")
    hi = np.searchsorted(phase, phase + 2 * window, "right")
    bad = np.zeros(len(phase), bool)
    for i in range(len(phase)):
        seg = slice(lo[i], hi[i])
        v = np.sort(resid[seg][np.abs(phase[i] - phase[seg]) < window])
        k = len(v)
        bad[i] = abs(resid[i] - (v[(k - 1) // 2] + v[k // 2]) / 2) > threshold
    return bad


def shift_sums(flux, model, base, start, end, chunk=1024):
    """S_i = sum_j (flux[(i+j) % n] - shifted model_j)^2 with the model = base outside [start, end).

    Written as the original's definition: all points contribute (flux - base)^2
    except the window, where the residual against the model is used.
    """
    n = len(flux)
    flat_total = float(np.sum((flux - base) ** 2))
    length = end - start
    if length == 0:
        return np.full(n, flat_total)
    m = model[start:end]
    ext = np.concatenate([flux, flux])[start:start + n + length - 1]
    windows = sliding_window_view(ext, length)  # windows[i, l] = flux[(start + l + i) % n]
    out = np.empty(n)
    for a in range(0, n, chunk):
        block = windows[a:a + chunk]
        out[a:a + chunk] = flat_total + np.sum((block - m) ** 2 - (block - base) ** 2, axis=1)
    return out


def outside(ph, c, w, tstart, tend, period):
    lo, hi = c + w * tstart, c + w * tend
    return ((ph < lo) | (ph > hi)) & ((ph < lo + period) | (ph > hi + period)) & ((ph < lo - period) | (ph > hi - period))


def _argbest(values, mask, largest=False):
    idx = np.flatnonzero(mask)
    if len(idx) == 0:
        return None
    return int(idx[np.argmax(values[idx]) if largest else np.argmin(values[idx])])


def shift_pass(phase, flux, model, geo, window=OUTLIER_WINDOW):
    """One model-shift pass over phase-sorted points. Returns a dict or None when invalid."""
    base, period, tstart, tend = geo["base"], geo["period"], geo["tstart"], geo["tend"]
    if len(phase) == 0 or not np.any(np.abs(model - base) > IN_TRANSIT_TOL):
        return None
    model = base + fit_scale(flux, model, base) * (model - base)
    resid = flux - model
    threshold = math.sqrt(2.0) * inverfc(1.0 / len(phase)) * 1.4826 * mad(resid)
    keep = ~running_median_outliers(phase, resid, window, threshold)
    phase, flux, model = phase[keep], flux[keep], model[keep]
    n = len(phase)
    if n == 0:
        return None
    model = base + fit_scale(flux, model, base) * (model - base)

    mid = int(np.argmin(np.abs(phase)))
    depth = model[mid] - base
    halfwidth = 0.5 * geo["duration"]
    j = 0
    while j < n and not phase[j] > -halfwidth:
        j += 1
    start = j - 1 if j > 0 else 0
    while j < n and not abs(phase[j]) > halfwidth:
        j += 1
    end = max(j, start)

    s = shift_sums(flux, model, base, start, end)
    if not s.min() > 0:
        return None
    chi2 = n * s / s.min()
    nin = int(np.sum((phase > tstart) & (phase < tend)))
    if nin == 0:
        return None

    at = (np.arange(n) + mid) % n  # shift i centres the model on point at[i]
    ph = phase[at]
    out_pri = outside(ph, 0.0, 4.0, tstart, tend, period)
    ipri = _argbest(chi2, ~out_pri)
    if ipri is None:
        return None
    isec = _argbest(chi2, out_pri)
    if isec is None:
        isec = _argbest(chi2, (ph > 0.4 * period) & (ph < 0.6 * period))

    def clear(w):
        ok = outside(ph, ph[ipri], w, tstart, tend, period)
        if isec is not None:
            ok &= outside(ph, ph[isec], w, tstart, tend, period)
        return ok

    iter_ = _argbest(chi2, clear(4.0))
    ipos = _argbest(chi2, clear(6.0), largest=True)
    w = 2.0
    while True:
        quiet = clear(w) | (w < -1.0)
        if np.sum(quiet) >= 0.1 * n:
            break
        w -= 0.01
    chi2_med = float(np.median(chi2[quiet]))
    span = chi2[ipri] - chi2_med
    if span == 0:
        return None

    def chi2_of(i):
        return chi2_med if i is None else chi2[i]

    conv = depth * (chi2 - chi2_med) / span
    rq = (flux - model)[at[quiet]]
    rms = math.sqrt(float(np.mean(rq * rq)))
    if not rms > 0:
        return None
    fred = math.sqrt(nin) * float(np.std(conv[quiet])) / rms
    depsig = rms / math.sqrt(nin)

    def sig(dchi2):
        v = -depth * dchi2 / span / depsig
        return 0.0 if abs(v) < 1e-2 else v

    def ph_of(i):
        return math.nan if i is None else ph[i]

    return dict(
        depth=depth, depsig=depsig, rms=rms, fred=fred, n_in_transit=nin, n_used=n,
        sigma_pri=sig(chi2[ipri] - chi2_med), sigma_sec=sig(chi2_of(isec) - chi2_med),
        sigma_ter=sig(chi2_of(iter_) - chi2_med), sigma_pos=sig(chi2_med - chi2_of(ipos)),
        phase_pri=ph_of(ipri), phase_sec=ph_of(isec), phase_ter=ph_of(iter_), phase_pos=ph_of(ipos),
        depfac_sec=(chi2_of(isec) - chi2_med) / span, conv_max=float(conv.max()), conv_min=float(conv.min()),
    )


def depth_difference(a, b):
    if a is None or b is None or a["depth"] == 0 or b["depth"] == 0:
        return 0.0
    return abs(a["depth"] - b["depth"]) / math.sqrt(a["depsig"] ** 2 + b["depsig"] ** 2)


def modshift(time, flux, model, period, epoch, window=OUTLIER_WINDOW):
    """The whole test; returns the 17 outputs of the original program and some internals."""
    time, flux, model = (np.asarray(a, float) for a in (time, flux, model))
    o = np.argsort(time, kind="stable")
    time, flux, model = time[o], flux[o], model[o]
    P = float(period)
    E = epoch + math.floor((time[0] - epoch) / P) * P
    while E > time[0]:
        E -= P
    cyc = cycle(time, E, P)
    phase = P * cyc
    phase = np.where(phase > 0.75 * P, phase - P, phase)
    base = mode(model)

    s = np.argsort(phase, kind="stable")  # ties stay in time order
    sp, sf, sm, st, sc = phase[s], flux[s], model[s], time[s], cyc[s]
    intr = np.abs(sm - base) > IN_TRANSIT_TOL
    tstart, tend = -DEFAULT_HALF_WIDTH, DEFAULT_HALF_WIDTH
    if intr.sum() > 1:
        k = int(np.argmax(intr))
        tstart = sp[k]
        while k + 1 < len(sp) and intr[k + 1]:
            k += 1
        tend = sp[k]
        if tstart > 0:
            tstart = -tend
        if tend < 0:
            tend = -tstart
    geo = dict(period=P, base=base, tstart=tstart, tend=tend, duration=tend - tstart)
    full_depth = abs(sm[int(np.argmin(np.abs(sp)))] - base)

    def run_on(mask):
        return shift_pass(sp[mask], sf[mask], sm[mask], geo, window)

    c = np.where(sc > 0.75, sc - 1.0, sc)
    left = run_on((c <= 0.0) | (c > 0.5))
    right = run_on((c > 0.0) & (c <= 0.5))
    c_odd = cycle(st, E, 2.0 * P)
    c_odd = np.where(c_odd > 0.75, c_odd - 1.0, c_odd)
    c_even = cycle(st, E - P, 2.0 * P)
    c_even = np.where(c_even > 0.75, c_even - 1.0, c_even)
    odd = run_on(c_odd < 0.25)
    even = run_on(c_even < 0.25)

    depths = []
    half = 1.5 * geo["duration"]
    k = 0
    while E + k * P <= time[-1]:
        centre = E + k * P
        sel = (time > centre - half) & (time < centre + half)
        if np.sum(np.abs(model[sel] - base) > IN_TRANSIT_TOL) >= 2:
            depths.append(fit_scale(flux[sel], model[sel], base) * full_depth)
        k += 1
    dmm = 0.0
    if depths and np.median(depths) != 0:
        dmm = float(np.mean(depths) / np.median(depths))

    main = shift_pass(sp, sf, sm, geo, window)
    out = dict(
        fa1=math.sqrt(2) * inverfc(geo["duration"] / (P * 20000.0)),
        fa2=math.sqrt(2) * inverfc(geo["duration"] / P),
        tat=depth_difference(left, right), sigma_oe=depth_difference(odd, even), dmm=dmm,
        valid=main is not None, duration=geo["duration"], baseflux=base, n_events=len(depths),
        odd_depth=odd["depth"] if odd else 0.0, even_depth=even["depth"] if even else 0.0,
        left_depth=left["depth"] if left else 0.0, right_depth=right["depth"] if right else 0.0,
    )
    if main is None:
        out.update({k: 0.0 for k in OUTPUT_KEYS if k not in out})
        out.update(phase_pri=math.nan, phase_sec=math.nan, phase_ter=math.nan, phase_pos=math.nan)
        return out
    span = main["conv_max"] - main["conv_min"]
    out.update(
        sigma_pri=main["sigma_pri"], sigma_sec=main["sigma_sec"], sigma_ter=main["sigma_ter"],
        sigma_pos=main["sigma_pos"], fred=main["fred"],
        phase_pri=main["phase_pri"] / P, phase_sec=main["phase_sec"] / P,
        phase_ter=main["phase_ter"] / P, phase_pos=main["phase_pos"] / P,
        sec_depth=-main["depfac_sec"] * main["depth"], sec_depth_err=main["depsig"],
        shape=main["conv_max"] / span if span != 0 else 0.0,
        depth=main["depth"], depsig=main["depsig"], rms=main["rms"],
        n_in_transit=main["n_in_transit"], n_used=main["n_used"],
    )
    return out


# ---------------------------------------------------------------- test light curves

def trapezoid(time, period, epoch, duration, depth, ingress_fraction=0.1):
    """Trapezoid transit (relative flux, 0 out of transit, -depth at the bottom) and the phase (days) about epoch."""
    ph = (time - epoch + 0.5 * period) % period - 0.5 * period
    a = np.abs(ph)
    ingress = ingress_fraction * duration
    m = np.where(a <= duration / 2 - ingress, -depth, 0.0)
    edge = (a > duration / 2 - ingress) & (a < duration / 2)
    m[edge] = -depth * (duration / 2 - a[edge]) / ingress
    return m, ph


def synthetic_light_curve(kind="planet", n=20000, period=3.0, duration=0.125, depth=1e-3, noise=5e-4,
                          cadence=2.0 / 1440, start=1325.3, epoch=1326.1, seed=1):
    """(time, flux, model) of a simulated light curve with known truth.

    kind: "planet" (the transit only); "eb" (plus a secondary eclipse of 0.4
    depth at phase 0.5, not in the model); "oe" (odd transits twice as deep as
    even ones, the model at the mean depth 1.5x); "random" (random ephemeris,
    depth, noise, gaps and outliers).
    """
    rng = np.random.default_rng(seed)
    time = start + np.arange(n) * cadence
    if kind == "random":
        keep = rng.random(n) > 0.15  # gaps
        time = time[keep]
        period = rng.uniform(0.8, 6.0)
        duration = rng.uniform(0.03, 0.08) * period
        depth = rng.uniform(3e-4, 5e-3)
        noise = rng.uniform(2e-4, 2e-3)
        epoch = start + rng.uniform(0, period)
    model, ph = trapezoid(time, period, epoch, duration, depth)
    flux = model + rng.normal(0.0, noise, len(time))
    if kind == "eb":
        flux += trapezoid(time, period, epoch + 0.5 * period, duration, 0.4 * depth)[0]
    elif kind == "oe":
        odd = np.floor((time - epoch + 0.5 * period) / period).astype(int) % 2 == 1
        flux = np.where(odd, 2.0 * model, model) + rng.normal(0.0, noise, len(time))
        model = 1.5 * model
    elif kind == "random":
        hit = rng.choice(len(time), size=max(1, len(time) // 500), replace=False)
        flux[hit] += rng.choice([-1.0, 1.0], size=len(hit)) * rng.uniform(10, 30, size=len(hit)) * noise
    return time, flux, model, dict(period=period, epoch=epoch, duration=duration, depth=depth, noise=noise)
