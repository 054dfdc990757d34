"""Echelle order traces for NRES: blind tracing from a lamp flat, refinement, fiber and order labels,
and the hand trace file of the IDL pipeline (``config/ref_trace.txt``).

A trace is the centre ``y(x)`` of one fiber in one echelle order, a degree-5 Legendre series in
``x`` (columns, 0-based pixel centres) over the detector width, as banzai-nres fits it (its
``refine_traces``: flux-weighted centroids per column, then a degree-5 polynomial). Images are
indexed ``[y, x]``; orders run along ``x``; the three fibers of an order lie a few pixels apart in
``y``.

Labels: ``order`` counts orders from the bottom of the detector (lowest ``y`` at the centre column
is 0), the same for every fiber of one order; the absolute echelle order number comes later, from
the wavelength solution. ``fiber`` is the NRES fiber number (0, 1, 2 as in OBJECTS ``f0&f1&f2``).
Which way fiber numbers run in ``y`` is measured when two flats with complementary fibers are
given (the shared fiber is the one lit in both); from one flat alone it is the ``fiber_direction``
convention: -1 (the default, as on the NRES units and in the IDL pipeline's hand traces: fiber 0
highest in ``y`` within an order).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.polynomial import legendre
from scipy import ndimage, signal

from astroflow.filters import MAD_TO_SIGMA, mad_std

__all__ = [
    "TraceSet",
    "blind_trace",
    "column_centroids",
    "compare_traces",
    "find_peaks_in_column",
    "hand_trace_from_traces",
    "lit_fibers",
    "read_hand_trace",
    "refine",
    "refine_two_flats",
    "trace_from_hand",
    "trace_two_flats",
    "write_hand_trace",
]

DEGREE = 5


def _xnorm(x, nx):
    return 2.0 * np.asarray(x, dtype=float) / max(nx - 1, 1) - 1.0


@dataclass
class TraceSet:
    """The traces of one flat: Legendre coefficients of ``y(x)`` (``x`` mapped from
    ``[0, nx-1]`` to ``[-1, 1]``) with their labels and the column range each was measured over.

    Attributes: ``coeffs`` (n, degree+1); ``order`` (n,) int; ``fiber`` (n,) int; ``x_min``,
    ``x_max`` (n,) int, inclusive columns where the trace lies on the detector with signal;
    ``nx``, ``ny`` the detector shape; ``rms`` (n,) the rms of the centroids about the fit (px).
    """

    coeffs: np.ndarray
    order: np.ndarray
    fiber: np.ndarray
    nx: int
    ny: int
    x_min: np.ndarray = None
    x_max: np.ndarray = None
    rms: np.ndarray = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        self.coeffs = np.atleast_2d(np.asarray(self.coeffs, dtype=float))
        n = len(self.coeffs)
        self.order = np.asarray(self.order, dtype=int).reshape(n)
        self.fiber = np.asarray(self.fiber, dtype=int).reshape(n)
        self.x_min = np.zeros(n, int) if self.x_min is None else np.asarray(self.x_min, int).reshape(n)
        self.x_max = (np.full(n, self.nx - 1, int) if self.x_max is None
                      else np.asarray(self.x_max, int).reshape(n))
        self.rms = np.full(n, np.nan) if self.rms is None else np.asarray(self.rms, float).reshape(n)

    def __len__(self):
        return len(self.coeffs)

    @property
    def n_orders(self) -> int:
        return len(np.unique(self.order))

    def y(self, x=None) -> np.ndarray:
        """Trace centres: array (n_traces, len(x)); ``x`` defaults to every column."""
        x = np.arange(self.nx) if x is None else np.asarray(x, dtype=float)
        t = _xnorm(x, self.nx)
        return legendre.legval(t, self.coeffs.T).reshape(len(self), -1) if len(self) else np.zeros((0, t.size))

    def index(self, order: int, fiber: int) -> int | None:
        """Row of the trace of ``order`` and ``fiber``, or None."""
        hit = np.flatnonzero((self.order == order) & (self.fiber == fiber))
        return int(hit[0]) if hit.size else None

    def select(self, keep) -> TraceSet:
        """A TraceSet with the rows ``keep`` (boolean mask or indices)."""
        keep = np.asarray(keep)
        return TraceSet(self.coeffs[keep], self.order[keep], self.fiber[keep], self.nx, self.ny,
                        self.x_min[keep], self.x_max[keep], self.rms[keep], dict(self.meta))

    def sorted(self) -> TraceSet:
        """Rows sorted by order, then by fiber."""
        idx = np.lexsort((self.fiber, self.order))
        return self.select(idx)

    def to_arrays(self) -> dict:
        """Plain arrays for a table or FITS extension (``from_arrays`` reads them back)."""
        return {"order": self.order.copy(), "fiber": self.fiber.copy(), "coeffs": self.coeffs.copy(),
                "x_min": self.x_min.copy(), "x_max": self.x_max.copy(), "rms": self.rms.copy(),
                "nx": int(self.nx), "ny": int(self.ny)}

    @classmethod
    def from_arrays(cls, d: dict) -> TraceSet:
        return cls(np.asarray(d["coeffs"]), d["order"], d["fiber"], int(d["nx"]), int(d["ny"]),
                   d.get("x_min"), d.get("x_max"), d.get("rms"))

    @classmethod
    def from_centres(cls, x, y, order, fiber, nx, ny, degree=DEGREE) -> TraceSet:
        """Fit degree-``degree`` Legendre series to sampled centres ``y`` (n, len(x))."""
        x = np.asarray(x, float)
        y = np.atleast_2d(np.asarray(y, float))
        coeffs = np.array([legendre.legfit(_xnorm(x, nx), yy, degree) for yy in y])
        return cls(coeffs, order, fiber, nx, ny, np.full(len(y), int(np.floor(x.min()))),
                   np.full(len(y), int(np.ceil(x.max()))))


def lit_fibers(state, lamps=("tung", "thar", "lamp", "led")) -> list[int]:
    """Fibers lit by a lamp in an OBJECTS-like state: ``"tung&tung&none"`` gives ``[0, 1]``; a list
    or tuple of per-fiber strings or booleans is accepted too. With ``lamps=None`` any fiber that
    is not ``none`` counts (a star, for science frames)."""
    if isinstance(state, str):
        parts = [p.strip().lower() for p in state.split("&")]
    else:
        parts = list(state)
    out = []
    for i, p in enumerate(parts):
        if isinstance(p, (bool, np.bool_)):
            if p:
                out.append(i)
            continue
        p = str(p).strip().lower()
        if lamps is None:
            if p and p != "none":
                out.append(i)
        elif any(p.startswith(l) for l in lamps):
            out.append(i)
    return out


# --------------------------------------------------------------------------- peaks and centroids

def _noise_of_profile(profile):
    """Robust noise of a cross-dispersion cut: MAD of its first differences over sqrt(2), taken
    over the faintest half of the pixels (the inter-order background)."""
    p = np.asarray(profile, float)
    d = np.diff(p)
    lo = p[:-1] <= np.nanpercentile(p, 50)
    d = d[lo] if lo.sum() > 10 else d
    s = mad_std(d, ignore_nan=True) / np.sqrt(2.0)
    return float(max(s, 1e-6))


def find_peaks_in_column(image, x=None, half_width: int = 5, snr: float = 10.0,
                         min_separation: float = 4.0):
    """Fiber peaks across one column: the median of columns ``x-half_width..x+half_width``
    (cosmic rays and bad pixels removed), local maxima at least ``min_separation`` px apart with a
    prominence above ``snr`` times the noise of the cut. Returns ``(y_peaks, heights, noise)``,
    sub-pixel peak positions by a three-point parabola."""
    image = np.asarray(image, float)
    ny, nx = image.shape
    x = nx // 2 if x is None else int(x)
    lo, hi = max(0, x - half_width), min(nx, x + half_width + 1)
    cut = np.nanmedian(image[:, lo:hi], axis=1)
    cut = np.nan_to_num(cut)
    noise = _noise_of_profile(cut)
    peaks, _props = signal.find_peaks(cut, distance=max(1, int(min_separation)),
                                     prominence=snr * noise)
    peaks = peaks[(peaks > 0) & (peaks < ny - 1)]
    a, b, c = cut[peaks - 1], cut[peaks], cut[peaks + 1]
    den = a - 2 * b + c
    off = np.where(np.abs(den) > 0, 0.5 * (a - c) / np.where(den == 0, 1, den), 0.0)
    return peaks + np.clip(off, -0.5, 0.5), b, noise


def _window_centroids(image, yc, x, hw, bg_sub=True):
    """Flux-weighted centroids in windows of half width ``hw`` (fractional edges) centred on
    ``yc`` (n,) at integer columns ``x`` (n,) of ``image``; vectorised. Returns (centroid, flux,
    peak, valid)."""
    ny = image.shape[0]
    k = int(np.ceil(hw)) + 1
    offs = np.arange(-k, k + 1, dtype=np.int32)
    yc = np.asarray(yc, np.float64)
    finite = np.isfinite(yc)
    base = np.round(np.where(finite, yc, 0)).astype(np.int32)
    rows = base[:, None] + offs[None, :]
    valid = (rows[:, 0] >= 0) & (rows[:, -1] < ny) & finite
    np.clip(rows, 0, ny - 1, out=rows)
    vals = image[rows, np.asarray(x, np.int32)[:, None]]
    if vals.dtype != np.float32:
        vals = vals.astype(np.float32)
    vals = np.nan_to_num(vals, copy=False)
    # pixel weights: 1 inside |y - yc| <= hw, linear over the edge pixel (exact symmetric window)
    dy = (base - yc).astype(np.float32)[:, None] + offs[None, :]
    w = np.clip(np.float32(hw + 0.5) - np.abs(dy), 0.0, 1.0)
    if bg_sub:
        vals -= np.minimum(vals[:, 0], vals[:, -1])[:, None]
    np.clip(vals, 0.0, None, out=vals)
    wv = w * vals
    ws = wv.sum(axis=1, dtype=np.float64)
    num = (wv * dy).sum(axis=1, dtype=np.float64)
    ok = ws > 0
    cen = np.where(ok, yc + num / np.where(ok, ws, 1.0), np.nan)
    peak = vals[:, k - 1:k + 2].max(axis=1)
    return cen, ws, peak, valid & ok


def column_centroids(image, y_guess, hw: float = 4.0, n_iter: int = 1, bg_sub: bool = True):
    """Per-column flux-weighted centroids of every trace (banzai-nres ``find_y_center``), in an
    exactly symmetric window of half width ``hw`` px re-centred ``n_iter`` times on the previous
    centroid, after subtracting the lower of the two window-edge pixels as background.

    ``y_guess``: (n_traces, nx) first-guess centres. Returns ``(y, flux, valid)`` arrays of shape
    (n_traces, nx): centroids, summed window flux, and where the window lay on the detector with
    positive flux.
    """
    image = np.asarray(image)
    y_guess = np.atleast_2d(np.asarray(y_guess, float))
    n, nx = y_guess.shape
    xs = np.broadcast_to(np.arange(nx), (n, nx)).ravel()
    yc = y_guess.ravel().copy()
    for _ in range(max(1, n_iter)):
        cen, flux, _, valid = _window_centroids(image, yc, xs, hw, bg_sub=bg_sub)
        ok = valid & (np.abs(cen - yc) < hw)
        yc = np.where(ok, cen, yc)
    cen, flux, _, valid = _window_centroids(image, yc, xs, hw, bg_sub=bg_sub)
    valid &= np.isfinite(cen) & (np.abs(cen - y_guess.ravel()) < 2 * hw)
    return cen.reshape(n, nx), flux.reshape(n, nx), valid.reshape(n, nx)


def _legfit(t, y, deg, w):
    """Weighted Legendre fit by the normal equations (weights ``w`` multiply squared residuals)."""
    V = legendre.legvander(t, deg)
    A = V.T @ (V * w[:, None])
    b = V.T @ (y * w)
    try:
        return np.linalg.solve(A, b)
    except np.linalg.LinAlgError:
        return legendre.legfit(t, y, deg, w=np.sqrt(w))


def _robust_legfit(x, y, w, nx, degree=DEGREE, nsigma=4.0, n_iter=5):
    """Iteratively sigma-clipped weighted Legendre fit; returns (coeffs, rms, kept mask)."""
    t = _xnorm(x, nx)
    keep = np.isfinite(y) & (w > 0)
    coeffs = None
    for _ in range(n_iter):
        if keep.sum() <= degree + 1:
            break
        coeffs = _legfit(t[keep], y[keep], min(degree, keep.sum() - 2), w[keep])
        if coeffs.size < degree + 1:
            coeffs = np.concatenate([coeffs, np.zeros(degree + 1 - coeffs.size)])
        res = y - legendre.legval(t, coeffs)
        s = MAD_TO_SIGMA * np.median(np.abs(res[keep])) + 1e-4
        new = np.isfinite(y) & (w > 0) & (np.abs(res) < nsigma * s)
        if np.array_equal(new, keep):
            break
        keep = new
    if coeffs is None:
        return None, np.nan, keep
    res = y - legendre.legval(t, coeffs)
    return coeffs, float(np.sqrt(np.mean(res[keep] ** 2))) if keep.any() else np.nan, keep


# --------------------------------------------------------------------------- blind trace

def _follow(image, y0, x0, hw, noise, snr, step, max_miss):
    """Follow every trace from column ``x0`` (start centres ``y0``) in steps of ``step`` columns in
    both directions, each position a flux-weighted centroid in a window predicted by the last
    positions; stop a trace after ``max_miss`` steps below ``snr`` (median of ``step`` columns).
    Returns a list of (x array, y array, weight array) per trace."""
    _ny, nx = image.shape
    n = len(y0)
    # the median of ``step`` columns around each column, once (cosmic rays, bad pixels)
    smooth = ndimage.median_filter(np.nan_to_num(image), size=(1, max(1, step | 1)), mode="nearest") \
        if step > 1 else np.nan_to_num(image)
    out_x = [[] for _ in range(n)]
    out_y = [[] for _ in range(n)]
    out_w = [[] for _ in range(n)]
    for direction in (+1, -1):
        alive = np.ones(n, bool)
        miss = np.zeros(n, int)
        hist_x = [[x0] for _ in range(n)]
        hist_y = [[y] for y in y0]
        x = x0
        while True:
            x = x + direction * step
            if x < 0 or x >= nx or not alive.any():
                break
            strip = smooth[:, x]
            idx = np.flatnonzero(alive)
            pred = np.empty(idx.size)
            for j, i in enumerate(idx):
                hx, hy = hist_x[i][-4:], hist_y[i][-4:]
                if len(hx) >= 2:
                    slope = (hy[-1] - hy[0]) / (hx[-1] - hx[0])
                    pred[j] = hy[-1] + slope * (x - hx[-1])
                else:
                    pred[j] = hy[-1]
            col = strip[:, None]
            cen, flux, peak, valid = _window_centroids(col, pred, np.zeros(idx.size, int), hw)
            for _ in range(2):
                ok = valid & (np.abs(cen - pred) < hw)
                cen2, flux2, peak2, valid2 = _window_centroids(col, np.where(ok, cen, pred),
                                                               np.zeros(idx.size, int), hw)
                cen, flux, peak, valid = cen2, flux2, peak2, valid2
            good = valid & (peak > snr * noise) & (np.abs(cen - pred) < 0.75 * hw)
            for j, i in enumerate(idx):
                if good[j]:
                    miss[i] = 0
                    hist_x[i].append(x)
                    hist_y[i].append(cen[j])
                    out_x[i].append(x)
                    out_y[i].append(cen[j])
                    out_w[i].append(flux[j])
                else:
                    miss[i] += 1
                    if miss[i] >= max_miss or not valid[j]:
                        alive[i] = False
    res = []
    for i in range(n):
        order = np.argsort(out_x[i])
        res.append((np.asarray(out_x[i], float)[order], np.asarray(out_y[i], float)[order],
                    np.asarray(out_w[i], float)[order]))
    return res


def _assign_slots(yc, k):
    """Phase of the periodic fiber pattern: ``k`` lit fibers per order, traces sorted by ``yc``.
    Returns (position within order 0..k-1 counted upward in y, order counter)."""
    n = len(yc)
    if k <= 1 or n < 2:
        return np.zeros(n, int), np.arange(n)
    gaps = np.diff(yc)
    mid = 0.5 * (yc[1:] + yc[:-1])
    best = None
    for phase in range(k):
        pos = (np.arange(n) + phase) % k
        inter = pos[:-1] == k - 1          # gap from the last fiber of one order to the next order
        score = 0.0
        for cls in (inter, ~inter):
            if cls.sum() == 0:
                continue
            g, m = gaps[cls], mid[cls]
            deg = min(2, cls.sum() - 1)
            if deg >= 1:
                p = np.polyfit(m, g, deg)
                r = g - np.polyval(p, m)
            else:
                r = g - g.mean()
            score += np.sum(r ** 2)
        # intra-order gaps should be the smaller ones
        if inter.any() and (~inter).any():
            score += np.sum(np.clip(gaps[~inter].mean() - gaps[inter], 0, None) ** 2)
        if best is None or score < best[0]:
            best = (score, phase)
    phase = best[1]
    pos = (np.arange(n) + phase) % k
    order = (np.arange(n) + phase) // k
    return pos, _skip_missing_orders(yc, pos, order, k)


def _skip_missing_orders(yc, pos, order, k):
    """Renumber orders so that a spacing about twice the neighbouring ones (an order with no trace
    found, e.g. a dead or faint one) leaves its number free; orders are otherwise consecutive."""
    uo = np.unique(order)
    if uo.size < 4:
        return order
    # position of a virtual fiber 0 of each order (median intra-order separation removed)
    sep = np.median(np.diff(yc)[(pos[1:] > pos[:-1]) & (order[1:] == order[:-1])]) if k > 1 else 0.0
    base = np.array([np.mean(yc[order == o] - pos[order == o] * sep) for o in uo])
    d = np.diff(base)
    skip = np.zeros(uo.size, int)
    for j in range(d.size):
        nb = np.concatenate([d[max(0, j - 3):j], d[j + 1:j + 4]])
        if nb.size and d[j] > 1.6 * np.median(nb):
            skip[j + 1:] += int(np.round(d[j] / np.median(nb))) - 1
    new = {o: o + sk for o, sk in zip(uo, skip)}
    return np.array([new[o] for o in order])


def blind_trace(flat, lit=(0, 1), hw: float | None = None, snr: float = 10.0,
                min_length: float = 0.2, step: int = 4, fiber_direction: int = -1,
                degree: int = DEGREE, x_center: int | None = None, refine_iter: int = 2):
    """Blind trace of a lamp flat (banzai-nres ``TraceInitializer.blind_solve``, made robust):
    fiber peaks across the median of the columns around the centre, each followed column by column
    with flux-weighted centroids (window predicted from the last positions) until its signal
    drops below ``snr`` times the noise; traces shorter than ``min_length`` (fraction of the
    detector width) or not crossing the centre are rejected as spurious; degree-5 Legendre fits
    of ``y(x)`` with sigma clipping, then one refinement on every column (``refine``).

    ``lit``: the fiber numbers lit in this flat (``lit_fibers("tung&tung&none")``); orders are
    recognised from the periodic pattern of ``len(lit)`` traces per order (the phase chosen so that
    intra-order and inter-order separations are each smooth in ``y``). ``hw``: centroid half width
    (default: 0.3 times the smallest peak separation, 2..8 px).

    Returns a TraceSet (sorted by order and fiber).
    """
    flat = np.asarray(flat, dtype=np.float32)
    ny, nx = flat.shape
    lit = sorted(int(f) for f in lit)
    xc = nx // 2 if x_center is None else int(x_center)
    peaks, _heights, noise = find_peaks_in_column(flat, xc, snr=snr)
    if peaks.size == 0:
        raise ValueError("no trace found across the centre column: not a lit flat?")
    if hw is None:
        sep = np.min(np.diff(peaks)) if peaks.size > 1 else 10.0
        hw = float(np.clip(0.3 * sep, 2.0, 8.0))
    paths = _follow(flat, peaks, xc, hw, noise, snr, step, max_miss=3)
    keep, fits = [], []
    for i, (x, y, w) in enumerate(paths):
        if x.size < degree + 3:
            continue
        length = x.max() - x.min()
        if length < min_length * nx or not (x.min() <= xc <= x.max()):
            continue
        coeffs, rms, _ = _robust_legfit(x, y, w, nx, degree)
        if coeffs is None:
            continue
        keep.append(i)
        fits.append((coeffs, int(x.min()), int(x.max()), rms))
    if not fits:
        raise ValueError("no trace could be followed across the detector")
    coeffs = np.array([f[0] for f in fits])
    yc = legendre.legval(_xnorm(xc, nx), coeffs.T)
    # drop duplicates (two peaks converging on one trace)
    order_y = np.argsort(yc)
    uniq = [order_y[0]]
    for j in order_y[1:]:
        if abs(yc[j] - yc[uniq[-1]]) > hw:
            uniq.append(j)
    uniq = np.asarray(uniq)
    coeffs, yc = coeffs[uniq], yc[uniq]
    xmin = np.array([fits[j][1] for j in uniq])
    xmax = np.array([fits[j][2] for j in uniq])
    pos, order = _assign_slots(yc, len(lit))
    if fiber_direction < 0:
        fiber = np.array([lit[len(lit) - 1 - p] for p in pos])
    else:
        fiber = np.array([lit[p] for p in pos])
    order = order - order.min()
    ts = TraceSet(coeffs, order, fiber, nx, ny, xmin, xmax)
    ts.meta.update({"hw": hw, "noise": noise, "lit": lit, "fiber_direction": fiber_direction})
    if refine_iter > 0:
        ts = refine(flat, ts, hw=hw, degree=degree, n_iter=refine_iter)
    return ts.sorted()


def refine(flat, traces: TraceSet, fibers=None, hw: float | None = None, degree: int = DEGREE,
           snr: float = 5.0, n_iter: int = 2) -> TraceSet:
    """Refine traces on a flat (banzai-nres ``TraceRefiner``; the runbook's trace-refine): on every
    column, the flux-weighted centroid in a symmetric window around the current trace (re-centred
    once on the first centroid), then a new sigma-clipped degree-5 Legendre fit weighted by the window flux;
    columns whose peak is below ``snr`` times the noise, off the detector, or outliers are left out.
    Repeated ``n_iter`` times. Only traces whose fiber is in ``fibers`` are refined (default: all);
    the others are returned unchanged. Returns a new TraceSet with updated ``x_min``, ``x_max``
    and ``rms`` (px).
    """
    flat = np.asarray(flat, dtype=np.float32)
    ny, nx = flat.shape
    if (ny, nx) != (traces.ny, traces.nx):
        raise ValueError(f"flat {flat.shape} and traces {(traces.ny, traces.nx)} differ in shape")
    hw = float(traces.meta.get("hw", 4.0)) if hw is None else float(hw)
    sel = np.ones(len(traces), bool) if fibers is None else np.isin(traces.fiber, list(fibers))
    coeffs = traces.coeffs.copy()
    if coeffs.shape[1] < degree + 1:
        coeffs = np.hstack([coeffs, np.zeros((len(coeffs), degree + 1 - coeffs.shape[1]))])
    x_min, x_max, rms = traces.x_min.copy(), traces.x_max.copy(), traces.rms.copy()
    idx = np.flatnonzero(sel)
    if idx.size == 0:
        return traces
    noise = _noise_of_profile(np.nanmedian(flat[:, nx // 2 - 5:nx // 2 + 6], axis=1))
    xs = np.arange(nx, dtype=float)
    for _ in range(max(1, n_iter)):
        guess = legendre.legval(_xnorm(xs, nx), coeffs[idx].T).reshape(idx.size, nx)
        y, flux, valid = column_centroids(flat, guess, hw=hw)
        # peak of the column within the window ~ flux / (sqrt(2 pi) sigma); use flux per pixel
        good = valid & (flux > snr * noise * np.sqrt(2 * hw + 1))
        for j, i in enumerate(idx):
            g = good[j]
            if g.sum() < degree + 3:
                continue
            # the trace's span: the longest run of good columns containing most of them
            c, r, kept = _robust_legfit(xs[g], y[j, g], flux[j, g], nx, degree)
            if c is None:
                continue
            coeffs[i] = c[:degree + 1]
            rms[i] = r
            gx = xs[g][kept[: g.sum()]] if kept.size == g.sum() else xs[g]
            x_min[i], x_max[i] = int(gx.min()), int(gx.max())
    out = TraceSet(coeffs, traces.order, traces.fiber, nx, ny, x_min, x_max, rms, dict(traces.meta))
    out.meta["hw"] = hw
    return out


def _match_rows(ya, yb, tol):
    """Greedy nearest matches between two sorted position lists within ``tol``: list of (i, j)."""
    pairs = []
    for i, y in enumerate(ya):
        j = int(np.argmin(np.abs(yb - y))) if len(yb) else -1
        if j >= 0 and abs(yb[j] - y) < tol:
            pairs.append((i, j))
    return pairs


def trace_two_flats(flat_a, lit_a, flat_b, lit_b, **kw) -> TraceSet:
    """All fibers from two flats with complementary fibers lit (the runbook's trace-refine with
    "fibers 0 and 1" and "fibers 1 and 2"): blind-trace each, recognise the shared fiber as the
    trace lit in both (which also fixes which way fiber numbers run in ``y`` and aligns the order
    counters of the two flats), keep the shared fiber's trace refined on the sum of both flats.

    ``lit_a``, ``lit_b``: lit fibers of each flat (e.g. ``[0, 1]`` and ``[1, 2]``). Returns one
    TraceSet with every fiber, orders counted from the bottom.
    """
    lit_a, lit_b = sorted(lit_a), sorted(lit_b)
    common = sorted(set(lit_a) & set(lit_b))
    if len(common) != 1:
        raise ValueError(f"flats must share exactly one lit fiber: {lit_a} and {lit_b}")
    shared = common[0]
    flat_a = np.asarray(flat_a, np.float32)
    flat_b = np.asarray(flat_b, np.float32)
    kw.setdefault("refine_iter", 0)          # refined once, below, on the flats where lit
    ta = blind_trace(flat_a, lit_a, fiber_direction=-1, **kw)
    tb = blind_trace(flat_b, lit_b, fiber_direction=-1, **kw)
    ny, nx = flat_a.shape
    xc = nx // 2
    ya, yb = ta.y([xc])[:, 0], tb.y([xc])[:, 0]
    hw = max(ta.meta["hw"], tb.meta["hw"])
    best = None
    for direction in (-1, +1):
        fa = _relabel(ta, lit_a, direction)
        fb = _relabel(tb, lit_b, direction)
        sa = np.flatnonzero(fa.fiber == shared)
        sb = np.flatnonzero(fb.fiber == shared)
        pairs = _match_rows(ya[sa], yb[sb], hw)
        cost = len(sa) + len(sb) - 2 * len(pairs)
        if best is None or cost < best[0]:
            best = (cost, direction, fa, fb, sa, sb, pairs)
    cost, direction, fa, fb, sa, sb, pairs = best
    if not pairs:
        raise ValueError("the two flats share no trace: not complementary fiber states?")
    # align order counters: the shared fiber's order in b minus in a
    shifts = [fb.order[sb[j]] - fa.order[sa[i]] for i, j in pairs]
    shift = int(np.round(np.median(shifts)))
    rows_c, rows_o, rows_f, xmin, xmax = [], [], [], [], []
    for t, off in ((fa, 0), (fb, -shift)):
        for r in range(len(t)):
            if t.fiber[r] == shared:
                continue
            rows_c.append(t.coeffs[r]); rows_o.append(t.order[r] + off); rows_f.append(t.fiber[r])
            xmin.append(t.x_min[r]); xmax.append(t.x_max[r])
    matched_b = set()
    for i, j in pairs:
        ra, rb = sa[i], sb[j]
        matched_b.add(rb)
        rows_c.append(0.5 * (fa.coeffs[ra] + fb.coeffs[rb])); rows_o.append(fa.order[ra])
        rows_f.append(shared); xmin.append(min(fa.x_min[ra], fb.x_min[rb]))
        xmax.append(max(fa.x_max[ra], fb.x_max[rb]))
    matched_a = {sa[i] for i, _ in pairs}
    for r in sa:
        if r not in matched_a:
            rows_c.append(fa.coeffs[r]); rows_o.append(fa.order[r]); rows_f.append(shared)
            xmin.append(fa.x_min[r]); xmax.append(fa.x_max[r])
    for r in sb:
        if r not in matched_b:
            rows_c.append(fb.coeffs[r]); rows_o.append(fb.order[r] - shift); rows_f.append(shared)
            xmin.append(fb.x_min[r]); xmax.append(fb.x_max[r])
    orders = np.asarray(rows_o)
    ts = TraceSet(np.array(rows_c), orders - orders.min(), rows_f, nx, ny, xmin, xmax)
    ts.meta.update({"hw": hw, "fiber_direction": direction})
    both = flat_a + flat_b
    ts = refine(both, ts, fibers=[shared], hw=hw)
    ts = refine(flat_a, ts, fibers=[f for f in lit_a if f != shared], hw=hw)
    ts = refine(flat_b, ts, fibers=[f for f in lit_b if f != shared], hw=hw)
    return _renumber(ts).sorted()


def _relabel(ts: TraceSet, lit, direction) -> TraceSet:
    """Relabel fibers of a single-flat TraceSet for a fiber direction (orders unchanged)."""
    lit = sorted(lit)
    k = len(lit)
    yc = ts.y([ts.nx // 2])[:, 0]
    pos = np.empty(len(ts), int)
    for o in np.unique(ts.order):
        rows = np.flatnonzero(ts.order == o)
        # positions within the order from the original labels (direction -1 convention)
        for r in rows:
            p_orig = k - 1 - lit.index(ts.fiber[r]) if ts.meta.get("fiber_direction", -1) < 0 \
                else lit.index(ts.fiber[r])
            pos[r] = p_orig
    fiber = np.array([lit[k - 1 - p] if direction < 0 else lit[p] for p in pos])
    out = ts.select(np.arange(len(ts)))
    out.fiber = fiber
    out.meta["fiber_direction"] = direction
    del yc
    return out


def _renumber(ts: TraceSet) -> TraceSet:
    """Order counters from 0 at the bottom of the detector (gaps left by orders without light are
    kept); counters that do not increase with ``y`` are replaced by their rank in ``y``."""
    yc = ts.y([ts.nx // 2])[:, 0]
    uo = np.unique(ts.order)
    mean_y = np.array([yc[ts.order == o].mean() for o in uo])
    out = ts.select(np.arange(len(ts)))
    if np.all(np.diff(mean_y) > 0):
        out.order = ts.order - uo.min()
    else:
        rank = {o: r for r, o in enumerate(uo[np.argsort(mean_y)])}
        out.order = np.array([rank[o] for o in ts.order])
    return out


def refine_two_flats(flat_a, lit_a, flat_b, lit_b, traces: TraceSet, **kw) -> TraceSet:
    """Refine an existing TraceSet (e.g. from the hand trace or last night) with two flats of
    complementary fibers (the runbook's ``run_nres_trace_refine``): each fiber on the flat(s) where
    it is lit; the shared fiber on their sum. Returns a new TraceSet."""
    lit_a, lit_b = set(lit_a), set(lit_b)
    shared = lit_a & lit_b
    flat_a = np.asarray(flat_a, np.float32)
    flat_b = np.asarray(flat_b, np.float32)
    ts = traces
    if shared:
        ts = refine(flat_a + flat_b, ts, fibers=shared, **kw)
    ts = refine(flat_a, ts, fibers=lit_a - shared, **kw)
    ts = refine(flat_b, ts, fibers=lit_b - shared, **kw)
    return ts


def compare_traces(traces: TraceSet, truth_y, truth_order=None, truth_fiber=None, x=None):
    """Offsets against true centres: for each trace, the rms and max of ``y - truth`` over the
    columns ``x`` within its range. ``truth_y``: (n_true, len(x)) true centres; matching by label
    when ``truth_order``/``truth_fiber`` are given, else by nearest centre. Returns a dict with
    ``rms`` and ``max`` (per matched trace) and ``matched`` (indices into truth)."""
    x = np.arange(traces.nx) if x is None else np.asarray(x)
    truth_y = np.atleast_2d(truth_y)
    y = traces.y(x)
    mid = len(x) // 2
    rms, mx, matched = [], [], []
    for i in range(len(traces)):
        if truth_order is not None and truth_fiber is not None:
            hit = np.flatnonzero((np.asarray(truth_order) == traces.order[i]) &
                                 (np.asarray(truth_fiber) == traces.fiber[i]))
            j = int(hit[0]) if hit.size else int(np.argmin(np.abs(truth_y[:, mid] - y[i, mid])))
        else:
            j = int(np.argmin(np.abs(truth_y[:, mid] - y[i, mid])))
        sel = (x >= traces.x_min[i]) & (x <= traces.x_max[i])
        d = y[i, sel] - truth_y[j, sel]
        rms.append(float(np.sqrt(np.mean(d ** 2)))); mx.append(float(np.max(np.abs(d))))
        matched.append(j)
    return {"rms": np.array(rms), "max": np.array(mx), "matched": np.array(matched)}


# --------------------------------------------------------------------------- hand trace file

def read_hand_trace(text: str) -> dict:
    """Parse the IDL pipeline's hand trace file (``config/ref_trace.txt``, read by trace0.pro):

    line 1: free text; line 2: ``nfib MFIB FIB0 FIB1`` (number of fibers described, and which);
    line 3: ``iord X1 X2 ...`` (the columns where positions were read); then one row per order and
    described fiber, ``IORD Y1 Y2 ...`` (rows of one order consecutive, fibers in the order given).

    Returns a dict: ``title``, ``fibers`` (list), ``x`` (array of columns), ``order`` (n_orders,)
    and ``y`` (n_orders, n_fibers, len(x)).
    """
    lines = [l for l in text.splitlines() if l.strip()]
    if len(lines) < 4:
        raise ValueError("hand trace file too short: title, nfib line, x line and positions needed")
    title = lines[0].rstrip("\n")
    w = lines[1].split()
    if len(w) < 3:
        raise ValueError(f"second line must be 'nfib MFIB FIB0 FIB1 ...': {lines[1]!r}")
    try:
        mfib = int(w[1])
        fibers = [int(v) for v in w[2:2 + mfib]]
    except ValueError as exc:
        raise ValueError(f"bad fiber line {lines[1]!r}") from exc
    if len(fibers) != mfib:
        raise ValueError(f"fiber line names {len(fibers)} fibers for nfib {mfib}")
    xw = lines[2].split()
    try:
        x = np.array([float(v) for v in xw[1:]])
    except ValueError as exc:
        raise ValueError(f"bad column line {lines[2]!r}") from exc
    rows = []
    for l in lines[3:]:
        v = l.split()
        if len(v) != x.size + 1:
            raise ValueError(f"row {l!r} has {len(v) - 1} positions for {x.size} columns")
        rows.append([float(t) for t in v])
    rows = np.array(rows)
    if len(rows) % mfib:
        raise ValueError(f"{len(rows)} position rows are not a multiple of {mfib} fibers")
    rows = rows.reshape(-1, mfib, x.size + 1)
    order = rows[:, 0, 0].astype(int)
    if np.any(rows[:, :, 0].astype(int) != order[:, None]):
        raise ValueError("rows of one order must be consecutive with the same order number")
    return {"title": title, "fibers": fibers, "x": x, "order": order, "y": rows[:, :, 1:]}


def write_hand_trace(hand: dict) -> str:
    """Write a hand trace dict (as ``read_hand_trace`` returns) in the IDL pipeline's format."""
    x = np.asarray(hand["x"])
    fibers = list(hand["fibers"])
    out = [str(hand.get("title", "By-hand ord posns")).strip(),
           "nfib " + " ".join(str(v) for v in [len(fibers)] + fibers),
           "iord " + " ".join(f"{round(v):6d}" if float(v).is_integer() else f"{v:8.2f}" for v in x)]
    for o, ys in zip(np.asarray(hand["order"]), np.asarray(hand["y"])):
        for y in ys:
            out.append(f"{int(o):3d} " + " ".join(f"{round(v):6d}" if float(v).is_integer()
                                                  else f"{v:8.2f}" for v in y))
    return "\n".join(out) + "\n"


def hand_trace_from_traces(traces: TraceSet, x=None, fibers=(0, 1), orders=None,
                           title="By-hand ord posns (written by astroflow)") -> dict:
    """A hand-trace dict from a TraceSet (positions at columns ``x``, default the IDL file's
    500/1250/2000/2750/3750 scaled to the detector width), for the orders and fibers given."""
    nx = traces.nx
    x = np.round(np.array([500, 1250, 2000, 2750, 3750]) * nx / 4096.0) if x is None else np.asarray(x)
    orders = np.unique(traces.order) if orders is None else np.asarray(orders)
    ys, keep = [], []
    y = traces.y(x)
    for o in orders:
        rows = [traces.index(o, f) for f in fibers]
        if any(r is None for r in rows):
            continue
        ys.append([np.round(y[r], 2) for r in rows])
        keep.append(o)
    return {"title": title, "fibers": list(fibers), "x": x, "order": np.array(keep), "y": np.array(ys)}


def trace_from_hand(hand: dict, nx: int, ny: int, n_fibers: int = 3, n_orders: int | None = None,
                    npoly: int = 4, fiber_direction: int | None = None) -> TraceSet:
    """Traces from a hand trace file (IDL ``trace0.pro``): a quadratic Legendre fit of each
    described order's positions in x, each coefficient fitted as a polynomial of degree ``npoly``
    (``npoly-1``, ``npoly-2`` for the higher terms) in the order number and averaged over the two
    fibers, with a linear fit of the fiber separation versus order; evaluated for every order
    ``0..n_orders-1`` (default: through the last described order), the third fiber extrapolated
    one separation beyond the two described. The result is a starting point for ``refine``.
    Returns a TraceSet (degree-5 Legendre, higher terms zero).
    """
    xs = np.asarray(hand["x"], float)
    fibers = list(hand["fibers"])
    order = np.asarray(hand["order"], int)
    y = np.asarray(hand["y"], float)              # (n_ord, mfib, nsamp)
    if len(fibers) < 1:
        raise ValueError("hand trace describes no fiber")
    t = _xnorm(xs, nx)
    deg_x = min(2, xs.size - 1)
    coc = np.array([[legendre.legfit(t, y[i, j], deg_x) for j in range(len(fibers))]
                    for i in range(len(order))])     # (n_ord, mfib, 3)
    nomax = int(order.max()) if n_orders is None else int(n_orders) - 1
    allord = np.arange(nomax + 1)
    mean_c = coc.mean(axis=1)                      # averaged over fibers
    cpc = []
    for k in range(deg_x + 1):
        deg = max(0, min(npoly - k, len(order) - 1))
        cpc.append(np.polyval(np.polyfit(order, mean_c[:, k], deg), allord))
    cpc = np.array(cpc).T                          # (n_all, deg_x+1)
    if len(fibers) >= 2:
        sep = coc[:, 1, 0] - coc[:, 0, 0]
        spc = np.polyval(np.polyfit(order, sep / (fibers[1] - fibers[0]), min(1, len(order) - 1)), allord)
    else:
        spc = np.zeros(allord.size)
    mean_f = float(np.mean(fibers))
    rows_c, rows_o, rows_f = [], [], []
    for o_i, o in enumerate(allord):
        for f in range(n_fibers):
            c = np.zeros(DEGREE + 1)
            c[:deg_x + 1] = cpc[o_i]
            c[0] += (f - mean_f) * spc[o_i]
            rows_c.append(c); rows_o.append(o); rows_f.append(f)
    ts = TraceSet(np.array(rows_c), rows_o, rows_f, nx, ny)
    yv = ts.y(np.array([0, nx // 2, nx - 1]))
    on = (yv.max(axis=1) > 0) & (yv.min(axis=1) < ny - 1)
    ts = ts.select(on)
    ts.meta["fiber_direction"] = int(np.sign(np.median(spc))) if fiber_direction is None else fiber_direction
    return ts
