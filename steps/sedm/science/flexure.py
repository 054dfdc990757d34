"""Flexure of one IFU exposure against the night's geometry (pysedm's ``TraceFlexureFit`` and
``Flexure``), as pure functions over arrays.

Across dispersion (:func:`across_shift`): the night's traces (from the dome flats) are moved by
a trial number of rows and the light of the exposure they enclose (a band of +-``half_width``
rows about each centre line, pixels weighted by the fraction of them inside the band) is summed
over every trace; the shift that encloses the most is the flexure (pysedm's j-flexure scans
-3..3 rows and keeps the maximum of the interpolated scan, with a band of +-1 row).  Here the
scan is on a ``step`` grid over ``search`` and refined by a parabola through the maximum and its
neighbours.

Along dispersion (:func:`line_shift`, :func:`along_shift`): a sky feature of known wavelength,
the Na D emission or the 7630 A O2 absorption band, is found in every spaxel's spectrum near the
column where the night's wavelength solution puts it.  The spaxels' windows are stacked in
pixel offsets from those columns (the spaxels sample the feature at every sub-pixel phase) and
one pixel-integrated Gaussian on a linear continuum is fitted to the stack; its centre is the
shift in pixels.  Na D: each spaxel's window less its median (the sources' continua differ from
spaxel to spaxel), weighted by the inverse variance.  O2: each window over its median (the band
is a fraction of whatever continuum the spaxel has; bright spaxels weigh most, as pysedm fits
the band on the brightest spaxels).  pysedm measures both features' wavelengths in a first cube,
turns each into a CCD column shift per trace through its solution and averages the two shifts
with weights 5 (sodium) : 1 (telluric); :func:`combine` does the same in pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares
from scipy.special import erf


def band_weights(yc: np.ndarray, half_width: float, ny: int):
    """Rows (n, k) and the fraction (n, k) of each row's pixel inside ``[yc - h, yc + h]``."""
    lo = np.floor(yc - half_width + 0.5).astype(np.int64)
    k = int(np.ceil(2 * half_width)) + 2
    rows = lo[..., None] + np.arange(k)
    top = np.minimum(rows + 0.5, (yc + half_width)[..., None])
    bottom = np.maximum(rows - 0.5, (yc - half_width)[..., None])
    w = np.clip(top - bottom, 0.0, None)
    w[(rows < 0) | (rows >= ny)] = 0.0
    return np.clip(rows, 0, ny - 1), w


def trace_flux(image: np.ndarray, traces, shifts: np.ndarray, half_width: float = 1.0) -> np.ndarray:
    """Light of ``image`` within +-``half_width`` rows of every trace's centre line moved by each
    of ``shifts`` rows, summed over the traces' columns (one total per shift)."""
    data = np.asarray(image, dtype=np.float64)
    ny, nx = data.shape
    xs = np.concatenate([np.arange(max(t.x_min, 0), min(t.x_max, nx - 1) + 1) for t in traces])
    yc0 = np.concatenate([t.y(np.arange(max(t.x_min, 0), min(t.x_max, nx - 1) + 1)) for t in traces])
    out = np.empty(len(shifts))
    for i, s in enumerate(shifts):
        rows, w = band_weights(yc0 + s, half_width, ny)
        out[i] = float((data[rows, xs[:, None]] * w).sum())
    return out


@dataclass(frozen=True)
class AcrossShift:
    shift: float  # rows the traces move by
    shifts: np.ndarray
    flux: np.ndarray
    at_edge: bool  # the maximum is at an end of the search range


def across_shift(image: np.ndarray, traces, search: tuple[float, float] = (-3.0, 3.0), step: float = 0.1,
                 half_width: float = 1.0) -> AcrossShift:
    shifts = np.arange(search[0], search[1] + step / 2, step)
    flux = trace_flux(image, traces, shifts, half_width)
    k = int(np.argmax(flux))
    best = float(shifts[k])
    if 0 < k < len(shifts) - 1:
        y0, y1, y2 = flux[k - 1:k + 2]
        denom = y0 - 2 * y1 + y2
        if denom < 0:
            best += float(np.clip(0.5 * (y0 - y2) / denom, -0.5, 0.5)) * step
    return AcrossShift(best, shifts, flux, k in (0, len(shifts) - 1))


def column_of(wavelength_of, columns: np.ndarray, lam: float) -> float:
    """The (fractional) column where a spaxel's solution gives ``lam``; NaN outside its columns."""
    w = wavelength_of(columns.astype(float))
    if not (np.all(np.diff(w) > 0) or np.all(np.diff(w) < 0)):
        return float("nan")
    order = np.argsort(w)
    if not w[order[0]] <= lam <= w[order[-1]]:
        return float("nan")
    return float(np.interp(lam, w[order], columns[order].astype(float)))


def _model(p, u):
    c0, c1, amp, mu, sigma = p
    s = np.sqrt(2.0) * abs(sigma)
    return c0 + c1 * u + amp * 0.5 * (erf((u - mu + 0.5) / s) - erf((u - mu - 0.5) / s))


@dataclass(frozen=True)
class LineShift:
    shift: float  # px, feature's column minus where the night's solution puts it
    error: float  # px
    sigma: float  # px, fitted width
    amplitude: float
    n_spaxels: int
    ok: bool
    message: str = ""


def _stack(starts, spectra, variances, predicted, centre, half_window, kind):
    us, ys, ws, used = [], [], [], 0
    for i in range(len(starts)):
        if not np.isfinite(predicted[i]):
            continue
        c = predicted[i] + centre
        k0 = int(np.floor(c - half_window)) - starts[i]
        k1 = int(np.ceil(c + half_window)) - starts[i]
        if k0 < 0 or k1 >= spectra.shape[1]:
            continue
        f, v = spectra[i, k0:k1 + 1], variances[i, k0:k1 + 1]
        if not (np.all(np.isfinite(f)) and np.all(np.isfinite(v))):
            continue
        med = float(np.median(f))
        if kind == "emission":
            y, var = f - med, v
        else:
            if med <= 0:
                continue
            y, var = f / med, v / med ** 2
        u = starts[i] + np.arange(k0, k1 + 1) - predicted[i]
        us.append(u)
        ys.append(y)
        ws.append(1.0 / np.maximum(var, 1e-12))
        used += 1
    if not used:
        return None
    return np.concatenate(us), np.concatenate(ys), np.concatenate(ws), used


def line_shift(starts: np.ndarray, spectra: np.ndarray, variances: np.ndarray, predicted: np.ndarray, *,
               kind: str, search: float = 3.0, half_window: float = 5.0, sigma0: float = 1.2,
               max_sigma: float = 2.5) -> LineShift:
    """The shift (px) of one sky feature over all spaxels.

    ``spectra``/``variances`` (n, m): each spaxel's electrons per column from column
    ``starts[i]``; ``predicted[i]``: the column where the night's solution puts the feature (NaN:
    not covered).  ``kind``: ``"emission"`` or ``"absorption"``.  The fitted width is at most
    ``max_sigma`` px (both features are about SEDM's resolution: a wider dip is a source's own
    broad feature, not the band; a fit at that bound is rejected).  Narrower than the resolution
    is allowed (down to 0.3 px): the simulator samples the telluric band at pixel centres.  Two passes: a window of
    ``search + half_window`` px about the predicted columns, then ``half_window`` about the first
    pass's centre."""
    centre, result = 0.0, None
    for window in (search + half_window, half_window):
        stack = _stack(starts, spectra, variances, predicted, centre, window, kind)
        if stack is None:
            return LineShift(np.nan, np.nan, np.nan, np.nan, 0, False, "no spaxel covers the feature")
        u, y, w, used = stack
        sw = np.sqrt(w)
        sign = 1.0 if kind == "emission" else -1.0
        edge = np.abs(u - centre) > window - 2
        base = float(np.average(y[edge], weights=w[edge])) if edge.any() else float(np.median(y))
        peak = max(float(np.max(sign * (y - base))), 1e-6)
        p0 = [base, 0.0, sign * peak * 2.5 * sigma0, centre, sigma0]
        lo = [-np.inf, -np.inf, -np.inf if sign < 0 else 0.0, centre - window + 1, 0.3]
        hi = [np.inf, np.inf, 0.0 if sign < 0 else np.inf, centre + window - 1, max_sigma]
        try:
            fit = least_squares(lambda p: (_model(p, u) - y) * sw, p0, bounds=(lo, hi), x_scale="jac")
        except ValueError as exc:
            return LineShift(np.nan, np.nan, np.nan, np.nan, used, False, f"fit failed: {exc}")
        J = fit.jac
        dof = max(u.size - len(p0), 1)
        chi2 = float((fit.fun ** 2).sum()) / dof
        try:
            cov = np.linalg.inv(J.T @ J) * chi2
            err, amp_err = float(np.sqrt(cov[3, 3])), float(np.sqrt(cov[2, 2]))
        except np.linalg.LinAlgError:
            err, amp_err = float("nan"), float("nan")
        c0, c1, amp, mu, sigma = fit.x
        snr = abs(amp) / amp_err if np.isfinite(amp_err) and amp_err > 0 else 0.0
        ok = bool(fit.success and np.isfinite(err) and snr > 5.0 and abs(mu) <= search
                  and abs(sigma) < 0.98 * max_sigma)  # a width at the upper bound is no feature
        message = "" if ok else (f"feature not detected (S/N {snr:.1f})" if snr <= 5.0 else
                                 f"shift {mu:+.2f} px outside the search range" if abs(mu) > search else
                                 f"width {abs(sigma):.2f} px at the bound (a broad feature, not this one)")
        result = LineShift(float(mu), err, float(abs(sigma)), float(amp), used, ok, message)
        if not ok:
            return result
        centre = float(mu)
    return result


def combine(shifts: list[LineShift], weights: list[float]) -> tuple[float, list[bool]]:
    """The weighted mean of the features' pixel shifts that were measured (pysedm: 5 sodium : 1
    telluric); NaN when none was."""
    use = [s.ok for s in shifts]
    if not any(use):
        return float("nan"), use
    w = np.array([wt for wt, u in zip(weights, use) if u], float)
    x = np.array([s.shift for s, u in zip(shifts, use) if u], float)
    return float((w * x).sum() / w.sum()), use
