"""ThAr wavelength calibration for NRES: line finding in extracted arc spectra, blind identification
against a line list with the echelle relation, the 2D solution lambda(x, m) per fiber, its quality
figures (SIGLAM, RVPRECSN, NLINEDET, NLINES), and the drift of the simultaneous ThAr fiber.

Method. In an echelle the grating equation gives ``m * lambda = G(x)`` with ``G`` the same smooth
function for every order (to first order), so that ``ln lambda = ln G0 - ln m + H(u)`` with
``u = (x - x_c) / nx`` and ``H`` common to all orders (the velocity per pixel is the same in every
order). Absolute order numbers are not known, but the traces are consecutive orders: ``m_i = m0 + s
i`` for trace order index ``i`` with ``s = +-1``. The blind search (no per-site first guess):

1. Geometric hashing of line triplets (the affine-invariant position ratio of the middle line, the
   idea of astrometry.net's quads and PypeIt's pattern matching): in each order of a block of
   consecutive orders, triplets of the brightest lines of the central part of the order are
   matched to catalogue triplets of the same ratio, the catalogue thinned to the density the
   detections show (the brightest lines of every neighbourhood); each match votes for a local
   dispersion ``h`` and offset ``c`` (ln lambda at the centre). Scanned per octave of velocity per
   pixel (0.5-8 km/s, the common 1-4 km/s first) and for a relative curvature ``kappa`` of H (``u``
   warped to ``u + kappa u^2``; 0 first, then +-0.15, +-0.3, +-0.45) until a convincing solution.
2. The most significant cells of every order are verified by matching the order's lines; verified
   cells are grouped by a dispersion common to all orders, and ``(s, m0)`` is the pair that makes
   most orders agree on ``ln G0 = ln lambda_c,i + ln(m0 + s i)`` (the echelle relation across the
   traces; the principle of Brandt et al. 2020, AJ 160, 25, xwavecal, without needing overlapping
   orders).
3. Refinement: lines matched to the nearest catalogue line with tolerances that shrink while the
   window of columns grows from the centre, the 2D solution ``lambda(x, m)`` (Legendre polynomial
   in ``x`` and ``1/m``) refitted with growing degrees and iterative sigma clipping; the candidate
   with most lines beyond chance (the matches of the same solution displaced by a few pixels)
   wins; the block solution is then extended to every order.

Quality figures as banzai-nres defines them (qc_wavelength): SIGLAM the (robust) standard deviation
of measured minus catalogue wavelengths of the matched lines (Angstrom); RVPRECSN that scatter in
velocity, ``std(dlambda/lambda) c / sqrt(N)`` (m/s); NLINEDET lines detected; NLINES lines matched.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.polynomial import legendre
from scipy import ndimage, signal

from astroflow.filters import MAD_TO_SIGMA, mad_std

__all__ = [
    "C_KMS",
    "WavelengthSolution",
    "apply_drift",
    "drift",
    "find_lines",
    "fit_solution",
    "identify_blind",
    "parse_line_list",
    "quality",
    "solve",
    "solve_guided",
]

C_KMS = 299792.458
C_MS = C_KMS * 1000.0


# --------------------------------------------------------------------------- line list

def parse_line_list(text: str):
    """Parse a line list CSV (``wavelength,ion,amplitude,...`` with ``#`` comments, as
    ``steps/nres/data/thar_lines.csv``, PypeIt's ThAr list in vacuum Angstrom) into sorted arrays
    ``(wavelength, amplitude)``. A plain two-column or one-column list works too."""
    wl, amp = [], []
    header = None
    for line in text.splitlines():
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        parts = [p.strip() for p in (s.split(",") if "," in s else s.split())]
        if header is None:
            try:
                float(parts[0])
            except ValueError:
                header = [p.lower() for p in parts]
                continue
            header = []
        try:
            w = float(parts[header.index("wavelength")] if "wavelength" in header else parts[0])
        except (ValueError, IndexError):
            continue
        a = 1.0
        if "amplitude" in header:
            try:
                a = float(parts[header.index("amplitude")])
            except (ValueError, IndexError):
                a = 0.0
        elif len(parts) > 1 and not header:
            try:
                a = float(parts[1])
            except ValueError:
                a = 1.0
        wl.append(w)
        amp.append(a)
    wl, amp = np.asarray(wl, float), np.asarray(amp, float)
    o = np.argsort(wl)
    return wl[o], amp[o]


# --------------------------------------------------------------------------- line finding

def find_lines(flux, variance=None, snr: float = 5.0, background_window: int = 51,
               half_window: int = 3, mask=None):
    """Emission lines in an extracted arc spectrum: a running 20th-percentile background
    (``background_window`` px) is subtracted, local maxima with a prominence above ``snr`` times
    the noise (from ``variance``, else the robust scatter of the spectrum) are fitted with a Gaussian
    plus constant on ``+-half_window`` pixels (weighted Gauss-Newton, vectorised over lines). Lines
    whose fit wanders off the peak, or with widths far from the median, are dropped.

    Returns a dict of arrays: ``x`` (centroid, px), ``x_err`` (formal error, px), ``amplitude``
    (peak above background), ``sigma`` (Gaussian width, px), ``flux`` (amplitude*sigma*sqrt(2 pi)),
    ``snr`` (amplitude / noise at the peak).
    """
    flux = np.asarray(flux, float)
    n = flux.size
    good = np.isfinite(flux)
    if mask is not None:
        good &= np.asarray(mask) == 0
    f = np.where(good, flux, 0.0)
    empty = {k: np.zeros(0) for k in ("x", "x_err", "amplitude", "sigma", "flux", "snr")}
    if n < 4 * half_window + 3 or not good.any():
        return empty
    win = int(min(background_window, max(5, n // 4)) | 1)
    bg = ndimage.percentile_filter(f, 20, size=win, mode="nearest")
    bg = ndimage.uniform_filter1d(bg, win, mode="nearest")
    r = f - bg
    if variance is None:
        s = MAD_TO_SIGMA * np.median(np.abs(np.diff(r[good]))) / np.sqrt(2.0)
        noise = np.full(n, max(s, 1e-12))
    else:
        v = np.asarray(variance, float)
        noise = np.sqrt(np.where(np.isfinite(v) & (v > 0), v, np.nanmedian(v[v > 0]) if np.any(v > 0) else 1.0))
    base_noise = np.median(noise[good])
    peaks, _ = signal.find_peaks(np.where(good, r, 0.0), prominence=snr * base_noise, distance=2)
    k = int(half_window)
    peaks = peaks[(peaks >= k) & (peaks < n - k)]
    if peaks.size:
        peaks = peaks[r[peaks] > snr * noise[peaks]]
        win_ok = np.array([good[p - k:p + k + 1].all() for p in peaks], bool) if peaks.size else peaks
        peaks = peaks[win_ok]
    if peaks.size == 0:
        return empty
    offs = np.arange(-k, k + 1)
    idx = peaks[:, None] + offs[None, :]
    y = r[idx]
    wgt = 1.0 / noise[idx] ** 2
    xx = idx.astype(float)
    # starting values: 3-point parabola and a width from the curvature
    amp = y[:, k].copy()
    mu = peaks.astype(float)
    a_, b_, c_ = y[:, k - 1], y[:, k], y[:, k + 1]
    den = a_ - 2 * b_ + c_
    mu += np.where(den < 0, np.clip(0.5 * (a_ - c_) / np.where(den == 0, -1, den), -0.5, 0.5), 0.0)
    sig = np.full(peaks.size, 1.2)
    base = np.zeros(peaks.size)
    eye = 1e-9 * np.eye(4)
    A = None
    for _ in range(20):
        d = (xx - mu[:, None]) / sig[:, None]
        g = np.exp(-0.5 * d * d)
        res = y - (amp[:, None] * g + base[:, None])
        J = np.stack([g, amp[:, None] * g * d / sig[:, None], amp[:, None] * g * d * d / sig[:, None],
                      np.ones_like(g)], axis=-1)
        JW = J * wgt[..., None]
        A = np.einsum("nki,nkj->nij", JW, J) + eye
        b = np.einsum("nki,nk->ni", JW, res)
        try:
            step = np.linalg.solve(A, b[..., None])[..., 0]
        except np.linalg.LinAlgError:
            break
        step = np.where(np.isfinite(step), step, 0.0)
        amp = amp + step[:, 0]
        mu = mu + np.clip(step[:, 1], -0.5, 0.5)
        sig = np.clip(sig + np.clip(step[:, 2], -0.5, 0.5), 0.3, 3.0 * k)
        base = base + step[:, 3]
        if np.all(np.abs(step[:, 1]) < 1e-5):
            break
    try:
        cov = np.linalg.inv(A)
        mu_err = np.sqrt(np.clip(cov[:, 1, 1], 0, None))
    except np.linalg.LinAlgError:
        mu_err = np.full(mu.size, np.nan)
    ok = np.isfinite(mu) & (np.abs(mu - peaks) < 1.0) & (amp > 0) & np.isfinite(mu_err)
    if ok.sum() >= 5:
        msig = np.median(sig[ok])
        ok &= (sig > 0.5 * msig) & (sig < 2.0 * msig)
    out = {"x": mu[ok], "x_err": mu_err[ok], "amplitude": amp[ok], "sigma": sig[ok],
           "flux": (amp * sig * np.sqrt(2 * np.pi))[ok], "snr": (amp / noise[peaks])[ok]}
    o = np.argsort(out["x"])
    return {kk: v[o] for kk, v in out.items()}


# --------------------------------------------------------------------------- the 2D solution

@dataclass
class WavelengthSolution:
    """``lambda(x, m) = sum_pq c[p, q] L_p(xt) L_q(wt)``: Legendre series in the column ``x``
    (``xt = 2 x / (nx - 1) - 1``) and the inverse order number (``wt`` = ``1/m`` mapped from
    ``[1/m_max, 1/m_min]`` to ``[-1, 1]``); vacuum Angstrom. ``m_of_index`` gives the absolute order
    number of trace order index ``i``: ``m0 + s * i``."""

    coeffs: np.ndarray
    nx: int
    m_min: float
    m_max: float
    m0: int
    s: int
    rms: float = np.nan
    n_lines: int = 0
    meta: dict = field(default_factory=dict)

    def m_of_index(self, index):
        return self.m0 + self.s * np.asarray(index)

    def _wt(self, m):
        w = 1.0 / np.asarray(m, float)
        w0, w1 = 1.0 / self.m_max, 1.0 / self.m_min
        return 2.0 * (w - w0) / (w1 - w0) - 1.0 if w1 > w0 else np.zeros_like(w)

    def __call__(self, x, m):
        """Wavelength (Angstrom) at columns ``x`` and absolute orders ``m`` (broadcast)."""
        x, m = np.broadcast_arrays(np.asarray(x, float), np.asarray(m, float))
        xt = 2.0 * x / max(self.nx - 1, 1) - 1.0
        return legendre.legval2d(xt, self._wt(m), self.coeffs)

    def grid(self, orders_m, nx: int | None = None):
        """Wavelengths of every pixel: array (len(orders_m), nx)."""
        nx = self.nx if nx is None else nx
        x = np.arange(nx)[None, :]
        return self(x, np.asarray(orders_m, float)[:, None])

    def dispersion(self, x, m):
        """d lambda / d x (Angstrom per pixel) by a central difference."""
        return 0.5 * (self(np.asarray(x) + 1.0, m) - self(np.asarray(x) - 1.0, m))

    def to_arrays(self) -> dict:
        return {"coeffs": self.coeffs.copy(), "nx": int(self.nx), "m_min": float(self.m_min),
                "m_max": float(self.m_max), "m0": int(self.m0), "s": int(self.s),
                "rms": float(self.rms), "n_lines": int(self.n_lines)}

    @classmethod
    def from_arrays(cls, d: dict) -> WavelengthSolution:
        return cls(np.asarray(d["coeffs"], float), int(d["nx"]), float(d["m_min"]), float(d["m_max"]),
                   int(d["m0"]), int(d["s"]), float(d.get("rms", np.nan)), int(d.get("n_lines", 0)))


def _design(x, m, nx, m_min, m_max, deg_x, deg_m):
    xt = 2.0 * np.asarray(x, float) / max(nx - 1, 1) - 1.0
    w = 1.0 / np.asarray(m, float)
    w0, w1 = 1.0 / m_max, 1.0 / m_min
    wt = 2.0 * (w - w0) / (w1 - w0) - 1.0 if w1 > w0 else np.zeros_like(w)
    vx = legendre.legvander(xt, deg_x)
    vm = legendre.legvander(wt, deg_m)
    return (vx[:, :, None] * vm[:, None, :]).reshape(len(xt), -1)


def _wlsq(V, y, w):
    """Weighted linear least squares by the normal equations (the Legendre basis keeps them well
    conditioned), with an SVD fallback."""
    A = V.T @ (V * w[:, None])
    b = V.T @ (y * w)
    try:
        c = np.linalg.solve(A, b)
        if np.all(np.isfinite(c)):
            return c
    except np.linalg.LinAlgError:
        pass
    sw = np.sqrt(w)
    return np.linalg.lstsq(V * sw[:, None], y * sw, rcond=None)[0]


def fit_solution(x, m, wavelength, nx: int, deg_x: int = 5, deg_m: int = 3, weights=None,
                 nsigma: float = 3.0, max_iter: int = 10, m_range=None, m0: int = 0, s: int = 1):
    """Least-squares fit of ``lambda(x, m)`` (Legendre in ``x`` and ``1/m``, see
    ``WavelengthSolution``) to identified lines, iteratively rejecting lines beyond ``nsigma``
    robust standard deviations. Degrees are lowered when lines or orders are too few.

    Returns ``(solution, kept)``: the WavelengthSolution (``rms`` the rms residual in Angstrom of
    the kept lines, ``n_lines`` their number) and the boolean mask of kept lines.
    """
    x = np.asarray(x, float)
    m = np.asarray(m, float)
    lam = np.asarray(wavelength, float)
    w = np.ones_like(x) if weights is None else np.asarray(weights, float)
    n_orders = len(np.unique(m))
    deg_m = int(max(0, min(deg_m, n_orders - 1)))
    deg_x = int(max(1, deg_x))
    while (deg_x + 1) * (deg_m + 1) > max(3, len(x) // 2) and (deg_x > 1 or deg_m > 0):
        if deg_x >= deg_m + 2 and deg_x > 1:
            deg_x -= 1
        elif deg_m > 0:
            deg_m -= 1
        else:
            deg_x -= 1
    mr = (float(np.min(m)), float(np.max(m))) if m_range is None else (float(m_range[0]), float(m_range[1]))
    if mr[0] == mr[1]:
        mr = (mr[0] - 0.5, mr[1] + 0.5)
    V = _design(x, m, nx, mr[0], mr[1], deg_x, deg_m)
    keep = np.isfinite(lam) & np.isfinite(x) & (w > 0)
    coeffs = np.zeros((deg_x + 1) * (deg_m + 1))
    for _ in range(max_iter):
        if keep.sum() < V.shape[1]:
            break
        coeffs = _wlsq(V[keep], lam[keep], w[keep])
        res = lam - V @ coeffs
        s_ = mad_std(res[keep])
        s_ = max(s_, 1e-6)
        new = np.isfinite(lam) & (w > 0) & (np.abs(res) < nsigma * s_)
        if np.array_equal(new, keep):
            break
        keep = new
    res = lam - V @ coeffs
    rms = float(np.sqrt(np.mean(res[keep] ** 2))) if keep.any() else np.nan
    sol = WavelengthSolution(coeffs.reshape(deg_x + 1, deg_m + 1), nx, mr[0], mr[1], int(m0), int(s),
                             rms, int(keep.sum()))
    return sol, keep


# --------------------------------------------------------------------------- catalogue helpers

def _local_rank(lnl, amp, width):
    """Rank of each catalogue line by amplitude among the lines within +-width/2 in ln lambda
    (0 = the brightest of its neighbourhood)."""
    lo = np.searchsorted(lnl, lnl - width / 2)
    hi = np.searchsorted(lnl, lnl + width / 2)
    rank = np.empty(lnl.size, int)
    for i in range(lnl.size):
        rank[i] = int(np.count_nonzero(amp[lo[i]:hi[i]] > amp[i]))
    return rank


class _Catalogue:
    """A line list in ln(lambda) with subsets of matching local density: ``subset_for(width, n)``
    keeps the lines among the ``n`` brightest within every window of ``width`` in ln(lambda) (the
    catalogue thinned to look like the detections: faint lines where the list is dense are not
    the ones an arc shows)."""

    def __init__(self, wavelength, amplitude=None):
        o = np.argsort(wavelength)
        self.wl = np.asarray(wavelength, float)[o]
        self.amp = (np.asarray(amplitude, float)[o] if amplitude is not None
                    else np.ones(len(o)))
        self.lnl = np.log(self.wl)
        self._ranks = {}

    def subset_for(self, width, n):
        if width is None or n is None:
            return np.ones(self.lnl.size, bool)
        key = round(float(np.log(width)), 1)
        if key not in self._ranks:
            self._ranks[key] = _local_rank(self.lnl, self.amp, float(np.exp(key)))
        return self._ranks[key] < max(1.0, n)

    def nearest(self, lam, keep=None):
        """Nearest catalogue wavelength to each of ``lam`` (among ``keep``)."""
        wl = self.wl if keep is None else self.wl[keep]
        j = np.clip(np.searchsorted(wl, lam), 1, len(wl) - 1)
        left, right = wl[j - 1], wl[j]
        pick = np.where(np.abs(lam - left) <= np.abs(right - lam), j - 1, j)
        return wl[pick], pick


# --------------------------------------------------------------------------- blind identification

def _detected_triplets(u, smin, smax):
    """Triplets a < b < c of sorted positions with span in [smin, smax]: (a, b, c, ratio, span)."""
    n = u.size
    if n < 3:
        e = np.zeros(0, int)
        return e, e, e, np.zeros(0), np.zeros(0)
    a, b, c = np.meshgrid(np.arange(n), np.arange(n), np.arange(n), indexing="ij")
    ok = (a < b) & (b < c)
    a, b, c = a[ok], b[ok], c[ok]
    span = u[c] - u[a]
    ok = (span >= smin) & (span <= smax)
    a, b, c = a[ok], b[ok], c[ok]
    span = u[c] - u[a]
    return a, b, c, (u[b] - u[a]) / span, span


def _catalogue_triplets(lnl, smin, smax):
    """All triplets k1 < k2 < k3 of sorted ln(lambda) with span in [smin, smax]:
    (k1, k2, k3, ratio, span)."""
    n = lnl.size
    hi = np.searchsorted(lnl, lnl + smax)
    K1, K2, K3 = [], [], []
    triu = {}
    for k1 in range(n):
        m = hi[k1] - k1 - 1
        if m < 2:
            continue
        ks = np.arange(k1 + 1, hi[k1])
        if m not in triu:
            triu[m] = np.triu_indices(m, 1)
        i2, i3 = triu[m]
        k2, k3 = ks[i2], ks[i3]
        ok = (lnl[k3] - lnl[k1]) >= smin
        K1.append(np.full(int(ok.sum()), k1)); K2.append(k2[ok]); K3.append(k3[ok])
    if not K1:
        e = np.zeros(0, int)
        return e, e, e, np.zeros(0), np.zeros(0)
    k1, k2, k3 = np.concatenate(K1), np.concatenate(K2), np.concatenate(K3)
    span = lnl[k3] - lnl[k1]
    return k1, k2, k3, (lnl[k2] - lnl[k1]) / span, span


def _triplet_cells(order_u, order_amp, cat: _Catalogue, nx, v_range=(0.5, 8.0), n_bright=12,
                   density_factor=1.5, eps=0.008, smin=0.08, smax=0.35, hbin=0.02, cbin_px=8.0,
                   min_votes=4, window=1.0):
    """Geometric hashing of line triplets (the affine-invariant ratio of the middle line's position,
    as in PypeIt's and astrometry.net's pattern matching): in every order the ``n_bright`` brightest
    lines form triplets; each is matched to catalogue triplets of the same ratio drawn from the
    catalogue lines of matching local density, giving a vote for the local dispersion ``h`` (ln
    lambda per unit ``u``) and offset ``c`` (ln lambda at the centre column). Votes are counted in
    cells (2 % in h, ``cbin_px`` pixels in c) per order and direction.

    Returns a structured dict of cell arrays: order, sign, hb (log-h bin), count, h, c (mean of the
    votes)."""
    sel_u = []
    for u, a in zip(order_u, order_amp):
        o = np.sort(np.argsort(-np.asarray(a))[:n_bright])
        sel_u.append(np.asarray(u)[o])
    order_u = sel_u
    nper = max(3.0, float(np.median([len(u) for u in order_u])))
    hmin = v_range[0] / C_KMS * nx
    hmax = v_range[1] / C_KMS * nx
    dtrip = [_detected_triplets(u, smin, smax) for u in order_u]
    out = {k: [] for k in ("order", "sign", "hb", "count", "h", "c", "mu")}
    span_l = cat.lnl[-1] - cat.lnl[0]
    hs = hmin
    while hs < hmax * 0.9999:
        h_lo, h_hi = hs, min(2 * hs, hmax)
        keep = cat.subset_for(hs * np.sqrt(2), density_factor * nper / window)
        lnl = cat.lnl[keep]
        k1, _k2, k3, rho, span = _catalogue_triplets(lnl, smin * h_lo, smax * h_hi)
        hs *= 2
        if rho.size == 0:
            continue
        for sign in (1, -1):
            rr = rho if sign > 0 else 1.0 - rho
            o = np.argsort(rr)
            rr_s = rr[o]
            for i, (a, b, c, r, du) in enumerate(dtrip):
                if r.size == 0:
                    continue
                lo = np.searchsorted(rr_s, r - eps)
                hi = np.searchsorted(rr_s, r + eps)
                cnt = hi - lo
                tot = int(cnt.sum())
                if tot == 0:
                    continue
                di = np.repeat(np.arange(r.size), cnt)
                first = np.repeat(lo - np.concatenate([[0], np.cumsum(cnt)[:-1]]), cnt)
                ci = o[np.arange(tot) + first]
                heff = span[ci] / du[di]
                ok = (heff >= h_lo) & (heff < h_hi)
                if not ok.any():
                    continue
                di, ci, heff = di[ok], ci[ok], heff[ok]
                ua = order_u[i][a[di]]
                c0 = lnl[k1[ci]] - heff * ua if sign > 0 else lnl[k3[ci]] + heff * ua
                hb = np.floor(np.log(heff) / hbin).astype(np.int64)
                cw = cbin_px * np.exp((hb + 0.5) * hbin) / nx
                cb = np.floor(c0 / cw).astype(np.int64)
                key = (hb + 10000) * (1 << 40) + (cb + (1 << 39))
                uk, inv, cnt_c = np.unique(key, return_inverse=True, return_counts=True)
                sel = cnt_c >= min_votes
                if not sel.any():
                    continue
                # chance level per cell: the votes of this h bin spread over its c cells
                hb0 = hb.min()
                tot_h = np.bincount(hb - hb0)
                hb_u = uk // (1 << 40) - 10000
                cw_u = cbin_px * np.exp((hb_u + 0.5) * hbin) / nx
                mu = tot_h[hb_u - hb0] / (span_l / cw_u)
                hsum = np.bincount(inv, weights=heff, minlength=uk.size)
                csum = np.bincount(inv, weights=c0, minlength=uk.size)
                n_sel = int(sel.sum())
                out["order"].append(np.full(n_sel, i))
                out["sign"].append(np.full(n_sel, sign))
                out["hb"].append(uk[sel] // (1 << 40) - 10000)
                out["count"].append(cnt_c[sel])
                out["h"].append(sign * hsum[sel] / cnt_c[sel])
                out["c"].append(csum[sel] / cnt_c[sel])
                out["mu"].append(mu[sel])
    if not out["order"]:
        return {k: np.zeros(0) for k in out}
    return {k: np.concatenate(v) for k, v in out.items()}


def _local_fit(u, cat_lnl, h, c, nx, tolerances=(4.0, 2.5, 1.5, 1.0)):
    """Verify a local (order) solution ln(lambda) = c + h u: match lines to the nearest catalogue
    line within shrinking tolerances (pixels), refitting a line (then a parabola). Returns
    (excess, coeffs of ln lambda in u [c, h, q], rms in px, n_matched): ``excess`` is the number
    of lines matched at the last tolerance beyond the chance expectation (catalogue lines per
    pixel in the order's range times the window, times the lines)."""
    coef = np.array([c, h, 0.0])
    n_ok, rms = 0, np.inf
    for tol in tolerances:
        pred = coef[0] + coef[1] * u + coef[2] * u * u
        j = np.clip(np.searchsorted(cat_lnl, pred), 1, cat_lnl.size - 1)
        ref = np.where(np.abs(cat_lnl[j - 1] - pred) < np.abs(cat_lnl[j] - pred), cat_lnl[j - 1], cat_lnl[j])
        d = (pred - ref) / (abs(coef[1]) / nx)
        ok = np.abs(d) < tol
        if ok.sum() >= 2:
            _, first = np.unique(ref[ok], return_index=True)
            idx = np.flatnonzero(ok)[first]
            ok = np.zeros_like(ok)
            ok[idx] = True
        n_ok = int(ok.sum())
        if n_ok < 3:
            return -1.0, coef, np.inf, n_ok
        deg = 2 if n_ok >= 6 else 1
        p = np.polyfit(u[ok], ref[ok], deg)
        coef = np.array([p[-1], p[-2], p[0] if deg == 2 else 0.0])
        res = (np.polyval(p, u[ok]) - ref[ok]) / (abs(coef[1]) / nx)
        rms = float(np.sqrt(np.mean(res ** 2)))
    pred = coef[0] + coef[1] * u + coef[2] * u * u
    lo, hi = np.searchsorted(cat_lnl, [pred.min(), pred.max()])
    span_px = max(1.0, (pred.max() - pred.min()) / (abs(coef[1]) / nx))
    chance = u.size * min(1.0, (hi - lo) / span_px * 2 * tolerances[-1])
    return n_ok - chance - 2.0 * np.sqrt(chance + 1.0), coef, rms, n_ok


def _coarse_candidates(order_u, order_amp, cat: _Catalogue, nx, v_range=(0.5, 8.0),
                       m_range=(10, 250), n_keep=5, window=1.0, cells_per_order=30, **kw):
    """Candidates of the blind search on a block of consecutive orders. (1) Triplet votes per order
    (``_triplet_cells``); (2) the ``cells_per_order`` most significant cells of every order verified
    by matching the order's bright lines to the thinned catalogue with that cell's local solution
    (``_local_fit``); (3) verified cells grouped by a dispersion common to all orders (within 3 %);
    (4) for each group, the order-number offset ``m0`` and direction ``s`` that make the most
    orders agree on ``ln G0 = ln(lambda_c) + ln(m0 + s i)`` (the echelle relation). Returns tuples
    (score, n_orders_agreeing, h, s, m0, lnG0, q), best first (``q``: the mean curvature of ln
    lambda in u of the agreeing orders, in the coordinates given)."""
    span = max(1e-3, max((np.ptp(u) for u in order_u if u.size > 1), default=window))
    window = min(window, span * 1.05) if span < window else window
    cells = _triplet_cells(order_u, order_amp, cat, nx, v_range=v_range, window=window,
                           smax=min(0.35, 0.6 * window), smin=min(0.08, 0.25 * window), **kw)
    if cells["order"].size == 0:
        return []
    N = len(order_u)
    norm = (cells["count"] - cells["mu"]) / np.sqrt(cells["mu"] + 1.0)
    bright_u = []
    for u, a in zip(order_u, order_amp):
        o = np.sort(np.argsort(-np.asarray(a))[:20])
        bright_u.append(np.asarray(u)[o])
    nper = max(3.0, float(np.median([len(u) for u in bright_u])))
    # (2) verification of the best cells of every order
    ver = []          # (order, sign, h, lnlam_c, q, n_ok)
    thin = {}
    for i in range(N):
        sel = np.flatnonzero(cells["order"] == i)
        if sel.size == 0 or bright_u[i].size < 3:
            continue
        # a fast first look at every cell: bright lines within 2.5 px of the cell's linear
        # solution in a catalogue of twice their density; the best cells get the full check
        hb_mid = int(np.median(cells["hb"][sel]))
        if hb_mid not in thin:
            thin[hb_mid] = cat.lnl[cat.subset_for(float(np.exp((hb_mid + 0.5) * 0.02)), 2.0 * nper / window)]
        ref_l = thin[hb_mid]
        quick = np.zeros(sel.size)
        for a in range(0, sel.size, 20000):
            b_ = sel[a:a + 20000]
            pred = cells["c"][b_][:, None] + cells["h"][b_][:, None] * bright_u[i][None, :]
            j = np.clip(np.searchsorted(ref_l, pred), 1, ref_l.size - 1)
            d = np.minimum(np.abs(pred - ref_l[j - 1]), np.abs(ref_l[j] - pred))
            tol = 2.5 * np.abs(cells["h"][b_]) / nx
            hit = np.sum(d < tol[:, None], axis=1)
            # chance: the catalogue lines per unit ln(lambda) over the order's span, times 2 tol
            lo_, hi_ = pred.min(axis=1), pred.max(axis=1)
            n_in = np.searchsorted(ref_l, hi_) - np.searchsorted(ref_l, lo_)
            chance = pred.shape[1] * np.minimum(1.0, n_in / np.maximum(hi_ - lo_, 1e-12) * 2 * tol)
            quick[a:a + 20000] = hit - chance - 2.0 * np.sqrt(chance + 1.0)
        top = sel[np.lexsort((-norm[sel], -quick))[:cells_per_order]]
        for t in top:
            hb = int(cells["hb"][t])
            if hb not in thin:
                thin[hb] = cat.lnl[cat.subset_for(float(np.exp((hb + 0.5) * 0.02)), 2.0 * nper / window)]
            excess, coef, rms, n_ok = _local_fit(bright_u[i], thin[hb], cells["h"][t], cells["c"][t], nx)
            if excess > 1.0 and n_ok >= 4 and rms < 0.6:
                ver.append((i, int(np.sign(coef[1])), float(coef[1]), float(coef[0]), float(coef[2]),
                            excess))
    if not ver:
        return []
    ver = np.array(ver, dtype=float)
    vi, vs, vh, vc, vq, vn = (ver[:, k] for k in range(6))
    vi = vi.astype(int)
    # (3) dispersion groups: seeds in order of support
    groups = []
    order = np.argsort(-vn)
    used = np.zeros(len(ver), bool)
    for j in order:
        if used[j]:
            continue
        member = (vs == vs[j]) & (np.abs(vh / vh[j] - 1) < 0.03)
        # best verified cell per order counts once
        support = 0.0
        for i in np.unique(vi[member]):
            support += vn[member & (vi == i)].max()
        groups.append((support, np.flatnonzero(member)))
        used |= member & (np.abs(vh / vh[j] - 1) < 0.015)
    groups.sort(key=lambda g: -g[0])
    cands = []
    for support, members in groups[:n_keep]:
        gi, gc, gn, gh, gq = vi[members], vc[members], vn[members], vh[members], vq[members]
        h_med = float(np.median(gh))
        tol = 3.0 * abs(h_med) / nx            # 3 px at the centre
        best = None
        for s in (1, -1):
            for m0 in range(int(m_range[0]), int(m_range[1]) + 1):
                m = m0 + s * gi
                if m.min() < 1 or (m0 + s * (N - 1)) < 1:
                    continue
                g = gc + np.log(m)
                agree = np.abs(g[:, None] - g[None, :]) < tol           # (cand g0, cell)
                # per candidate g0: the sum over orders of the best agreeing cell
                score = np.zeros(len(g))
                for i in np.unique(gi):
                    col = gi == i
                    score += np.max(np.where(agree[:, col], gn[col][None, :], 0.0), axis=1)
                k = int(np.argmax(score))
                if best is None or score[k] > best[0]:
                    best = (float(score[k]), s, m0, k, agree[k].copy())
        if best is None:
            continue
        sc, s, m0, k, agree = best
        # one cell per order among the agreeing ones (the best supported)
        keep = []
        for i in np.unique(gi[agree]):
            c_ = np.flatnonzero(agree & (gi == i))
            keep.append(c_[np.argmax(gn[c_])])
        keep = np.array(keep)
        m = m0 + s * gi[keep]
        lnG0 = float(np.average(gc[keep] + np.log(m), weights=gn[keep]))
        h_ag = float(np.average(gh[keep], weights=gn[keep]))
        q_ag = float(np.median(gq[keep])) if keep.size >= 3 else 0.0
        if any(c[3] == s and c[4] == m0 for c in cands):
            continue
        cands.append((sc, int(keep.size), h_ag, s, m0, lnG0, q_ag))
    cands.sort(key=lambda c: -c[0])
    return cands


def _brightest_in(l, nx, umax, n):
    """Boolean mask of the ``n`` brightest lines of a line dict, chosen within ``|u| <= umax`` and
    then also the ``n`` brightest outside it (so that the growing window finds bright lines)."""
    u = (l["x"] - 0.5 * (nx - 1)) / nx
    out = np.zeros(u.size, bool)
    inner = np.flatnonzero(np.abs(u) <= umax)
    outer = np.flatnonzero(np.abs(u) > umax)
    out[inner[np.argsort(-l["amplitude"][inner])[:n]]] = True
    nout = round(n * (0.5 - umax) / max(umax, 1e-3))
    out[outer[np.argsort(-l["amplitude"][outer])[:nout]]] = True
    return out


def _match(lam, disp, cat_wl, order_i, tol_px, use=None):
    """Nearest catalogue line of each predicted wavelength; True where within ``tol_px`` pixels,
    one detected line per catalogue line and order. Returns (ok, ref)."""
    j = np.clip(np.searchsorted(cat_wl, lam), 1, cat_wl.size - 1)
    left, right = cat_wl[j - 1], cat_wl[j]
    ref = np.where(np.abs(lam - left) <= np.abs(right - lam), left, right)
    d = np.abs(lam - ref)
    ok = d < tol_px * disp
    if use is not None:
        ok &= use
    ok &= _unique_matches(ref, order_i, d, ok)
    return ok, ref


def _refine_candidate(lines, order_index, nx, cat: _Catalogue, cand, deg_x=5, deg_m=3,
                      final_tol=0.5, final_nsigma=3.0, n_bright=20, u0=0.15):
    """Refine one coarse candidate on a block of orders. Stage A: the ``n_bright`` brightest lines of
    each order against the catalogue thinned to twice their density, the window of columns growing
    from the centre while the tolerance shrinks (4 to 2 px), low degrees. Stage B: every line
    against the whole catalogue, tolerances 1.5 to ``final_tol`` px, full degrees, sigma clipping.
    The merit (``_merit``) is the number of lines matched within ``final_tol`` minus the number
    matched when the solution is displaced by a few pixels (the chance rate of the line list's
    density). Returns (solution, matched table dict) or None."""
    sig, _score, h, s, m0, lnG0 = cand[:6]
    q = cand[6] if len(cand) > 6 else 0.0
    x_all = np.concatenate([l["x"] for l in lines])
    i_all = np.concatenate([np.full(len(l["x"]), oi) for l, oi in zip(lines, order_index)])
    xerr = np.concatenate([l["x_err"] for l in lines])
    bright = np.concatenate([np.isin(np.arange(len(l["x"])), np.argsort(-l["amplitude"])[:n_bright])
                             for l in lines])
    if x_all.size < 5:
        return None
    m_all = (m0 + s * i_all).astype(float)
    if m_all.min() < 1:
        return None
    u = (x_all - 0.5 * (nx - 1)) / nx
    lam = np.exp(lnG0 + h * u + q * u * u) / m_all
    disp = np.abs(lam * (h + 2 * q * u) / nx)
    nper = max(3.0, bright.sum() / max(len(lines), 1))
    if u0 < 0.5:   # bright lines of the central window are the ones the search used
        bright = np.concatenate([_brightest_in(l, nx, u0, n_bright) for l in lines])
    wl_thin = cat.wl[cat.subset_for(abs(h), 2.0 * nper)]
    m_range = (float(m_all.min()), float(m_all.max()))
    sol = None
    widths = []
    w = max(0.1, min(0.5, u0))
    while w < 0.5:
        widths.append(w)
        w *= 1.4
    widths += [0.5, 0.5]
    stage_a = []
    for k, w in enumerate(widths):
        dx = 2 if w < 0.3 else (3 if w < 0.45 else 4)
        dm = 1 if k < len(widths) - 1 else 2
        stage_a.append((2.5 if w < 0.5 else 2.0, w, dx, dm))
    stage_b = ((1.5, 4, 2), (1.0, deg_x, deg_m), (0.7, deg_x, deg_m), (final_tol, deg_x, deg_m))
    for tol, umax, dx, dm in stage_a:
        ok, ref = _match(lam, disp, wl_thin, i_all, tol, bright & (np.abs(u) <= umax))
        if ok.sum() < max(4, dx + 2):
            continue
        sol, kept = fit_solution(x_all[ok], m_all[ok], ref[ok], nx, dx, dm, m_range=m_range,
                                 m0=m0, s=s, nsigma=4.0)
        lam = sol(x_all, m_all)
        disp = np.abs(sol.dispersion(x_all, m_all))
    if sol is None:
        return None
    kept = None
    for tol, dx, dm in stage_b:
        ok, ref = _match(lam, disp, cat.wl, i_all, tol)
        if ok.sum() < 6:
            return None
        sol, kept = fit_solution(x_all[ok], m_all[ok], ref[ok], nx, dx, dm, m_range=m_range,
                                 m0=m0, s=s, nsigma=final_nsigma if tol == final_tol else 4.0)
        lam = sol(x_all, m_all)
        disp = np.abs(sol.dispersion(x_all, m_all))
    ok, ref = _match(lam, disp, cat.wl, i_all, final_tol)
    if ok.sum() < 6:
        return None
    sol, kept = fit_solution(x_all[ok], m_all[ok], ref[ok], nx, deg_x, deg_m, m_range=m_range,
                             m0=m0, s=s, nsigma=final_nsigma)
    sel = np.flatnonzero(ok)[kept]
    # chance matches: the same tolerance with the solution displaced by 3.3 and 7.7 px
    null = []
    for shift in (3.3, -7.7):
        lam_s = sol(x_all + shift, m_all)
        null.append(int(_match(lam_s, disp, cat.wl, i_all, final_tol)[0].sum()))
    table = {"x": x_all[sel], "x_err": xerr[sel], "order_index": i_all[sel], "m": m_all[sel],
             "wavelength": ref[sel], "fit": sol(x_all[sel], m_all[sel])}
    sol.meta.update({"n_detected": int(x_all.size), "coarse_score": float(sig),
                     "n_chance": float(np.mean(null))})
    return sol, table


def _unique_matches(ref, order_i, dist, ok):
    """Keep, for each (order, catalogue line), only the closest detected line."""
    out = ok.copy()
    idx = np.flatnonzero(ok)
    if idx.size == 0:
        return out
    key = np.round(ref[idx], 4) * 1000 + order_i[idx] * 1e-3
    order = np.lexsort((dist[idx], key))
    k_sorted = key[order]
    first = np.ones(order.size, bool)
    first[1:] = k_sorted[1:] != k_sorted[:-1]
    drop = idx[order[~first]]
    out[drop] = False
    return out


def identify_blind(lines, order_index, nx: int, line_wavelengths, line_amplitudes=None,
                   v_range=(0.5, 8.0), m_range=(10, 250), n_candidates: int = 5,
                   max_block: int = 16, deg_x: int = 5, deg_m: int = 3, hash_lines: int = 20,
                   curvatures=(0.0, 0.15, -0.15, 0.3, -0.3, 0.45, -0.45)):
    """Blind identification of arc lines and the 2D wavelength solution of one fiber (no first
    guess): the coarse echelle-relation scan over dispersion, order-number offset and direction on a
    block of consecutive orders (all of them when few), then refinement of the best candidates on
    every order; the winner has the most lines at sub-pixel residuals.

    ``lines``: list (one per trace of this fiber) of ``find_lines`` dicts; ``order_index``: the
    trace order index of each (consecutive integers, any direction); ``line_wavelengths`` /
    ``line_amplitudes``: the catalogue (vacuum Angstrom). Returns ``(solution, table)``: the
    WavelengthSolution (absolute orders ``m0 + s * index``) and the matched lines (dict of arrays
    ``x, x_err, order_index, m, wavelength, fit``). Raises ValueError when nothing converges.
    """
    order_index = np.asarray(order_index, int)
    srt = np.argsort(order_index)
    lines = [lines[i] for i in srt]
    order_index = order_index[srt]
    if np.any(np.diff(order_index) != 1):
        # gaps are allowed: fill with empty line lists to keep the index consecutive
        full = np.arange(order_index.min(), order_index.max() + 1)
        lk = {int(o): l for o, l in zip(order_index, lines)}
        empty = {"x": np.zeros(0), "x_err": np.zeros(0), "amplitude": np.zeros(0), "sigma": np.zeros(0),
                 "flux": np.zeros(0), "snr": np.zeros(0)}
        lines = [lk.get(int(o), empty) for o in full]
        order_index = full
    cat = _Catalogue(line_wavelengths, line_amplitudes)
    N = len(lines)
    counts = np.array([len(l["x"]) for l in lines])
    # block of consecutive orders for the search: the most lines in at most max_block orders
    nb = min(N, max_block)
    sums = np.convolve(counts, np.ones(nb, int), mode="valid")
    start = int(np.argmax(sums))
    block = slice(start, start + nb)
    # hashing window: the central part of the orders holding ~hash_lines lines each (all when few)
    per_order = max(1.0, float(np.median(counts[block])))
    half = float(np.clip(0.5 * hash_lines / per_order, 0.125, 0.5))
    order_u, order_a = [], []
    for l in lines[block]:
        u = (l["x"] - 0.5 * (nx - 1)) / nx
        inside = np.abs(u) <= half
        order_u.append(u[inside]); order_a.append(l["amplitude"][inside])
    n_block = int(counts[block].sum())
    best, tried = None, 0
    # velocity-per-pixel octaves, the common ones first (1-4 km/s), then the extremes
    octaves = []
    v = float(v_range[0])
    while v < v_range[1] * 0.9999:
        octaves.append((v, min(2 * v, float(v_range[1]))))
        v *= 2
    octaves.sort(key=lambda o: abs(np.log(np.sqrt(o[0] * o[1]) / 2.0)))
    done = False
    for kappa in curvatures:
        # warp u so that ln(lambda) is linear for this relative curvature: w = u + kappa u^2
        warped = [u + kappa * u * u for u in order_u]
        for octave in octaves:
            cands = _coarse_candidates(warped, order_a, cat, nx, v_range=octave, m_range=m_range,
                                       n_keep=n_candidates, window=2 * half)
            for c in cands:
                sig, score, h, s, m0b, lnG0, q = c
                tried += 1
                m0 = m0b - s * start
                cc = (sig, score, h, s, m0, lnG0, q + kappa * h)
                r = _refine_candidate(lines[block], order_index[block] - order_index[0], nx, cat, cc,
                                      deg_x=deg_x, deg_m=deg_m, u0=min(half, 0.15))
                if r is None:
                    continue
                sol, table = r
                good = _merit(sol, table)
                if best is None or good > best[0]:
                    best = (good, sol, table, cc)
            if best is not None and _convincing(best[0], best[1], n_block):
                done = True
                break
        if done:
            break
    if best is None or not _convincing(best[0], best[1], n_block, strict=False):
        raise ValueError("blind wavelength identification failed: no candidate matched the line "
                         f"list beyond chance ({tried} candidates tried)")
    good, sol, table, cc = best
    if nb < N:
        sol, table = _extend(lines, order_index - order_index[0], nx, cat, sol, deg_x, deg_m)
    # express m0 for order index 0 of the caller's numbering
    if order_index[0] != 0:
        sol.m0 = int(sol.m0 - sol.s * order_index[0])
        table["order_index"] = table["order_index"] + order_index[0]
    sol.meta.update({"n_candidates": tried, "merit": float(good)})
    return sol, table


def _convincing(merit, sol, n_detected, strict=True):
    """A solution is taken when its lines beyond chance are many: more than 8 (strict) or 5 times
    the Poisson scatter of the chance matches, and 15 % (strict) or 5 % of the lines detected."""
    chance = sol.meta.get("n_chance", 0.0)
    k, f = (8.0, 0.15) if strict else (5.0, 0.05)
    return merit > max(10.0, k * np.sqrt(chance + 4.0)) and merit > f * n_detected


def _merit(sol, table):
    """Lines matched within the final tolerance minus the chance matches at that tolerance."""
    return float(table["x"].size - sol.meta.get("n_chance", 0.0))


def _extend(lines, order_index, nx, cat, sol, deg_x, deg_m):
    """Grow a block solution to every order: the block widens by half its size on each side per
    step; lines are predicted, matched within 2, 1 and 0.6 px, and the 2D polynomial refitted."""
    x_all = np.concatenate([l["x"] for l in lines])
    i_all = np.concatenate([np.full(len(l["x"]), oi) for l, oi in zip(lines, order_index)])
    xerr = np.concatenate([l["x_err"] for l in lines])
    m_all = (sol.m0 + sol.s * i_all).astype(float)
    ends = np.round((np.array([sol.m_min, sol.m_max]) - sol.m0) * sol.s).astype(int)
    lo, hi = int(ends.min()), int(ends.max())
    imin, imax = int(i_all.min()), int(i_all.max())
    ok = kept = use = None
    while True:
        grow = max(2, (hi - lo + 1) // 2)
        lo, hi = max(imin, lo - grow), min(imax, hi + grow)
        use = (i_all >= lo) & (i_all <= hi)
        xs, ms, iis = x_all[use], m_all[use], i_all[use]
        mr = (float(ms.min()), float(ms.max()))
        lam = sol(xs, ms)
        disp = np.abs(sol.dispersion(xs, ms))
        for tol in (2.0, 1.0, 0.6):
            ok, ref = _match(lam, disp, cat.wl, iis, tol)
            if ok.sum() < 6:
                break
            sol, kept = fit_solution(xs[ok], ms[ok], ref[ok], nx, deg_x, deg_m, m_range=mr,
                                     m0=sol.m0, s=sol.s, nsigma=3.0 if tol == 0.6 else 4.0)
            lam = sol(xs, ms)
            disp = np.abs(sol.dispersion(xs, ms))
        if lo == imin and hi == imax:
            break
    ok, ref = _match(lam, disp, cat.wl, iis, 0.5)
    sol, kept = fit_solution(xs[ok], ms[ok], ref[ok], nx, deg_x, deg_m, m_range=mr,
                             m0=sol.m0, s=sol.s, nsigma=3.0)
    sel = np.flatnonzero(use)[np.flatnonzero(ok)[kept]]
    table = {"x": x_all[sel], "x_err": xerr[sel], "order_index": i_all[sel], "m": m_all[sel],
             "wavelength": ref[np.flatnonzero(ok)[kept]], "fit": sol(x_all[sel], m_all[sel])}
    sol.meta["n_detected"] = int(x_all.size)
    return sol, table


def solve_guided(lines, order_index, nx: int, guess: WavelengthSolution, line_wavelengths,
                 max_shift_px: float = 30.0, deg_x: int = 5, deg_m: int = 3):
    """Wavelength solution of a fiber from a first guess (another fiber's solution, last night's,
    or the TRIPLE's): the shift in ``x`` that matches most of the bright lines within half a pixel
    is found on a 0.1 px grid over +-``max_shift_px``; lines are then matched within shrinking
    tolerances (2 to 0.5 px) and the 2D polynomial refitted. Same return as ``identify_blind``."""
    cat = _Catalogue(line_wavelengths, None)
    order_index = np.asarray(order_index, int)
    x_all = np.concatenate([l["x"] for l in lines])
    i_all = np.concatenate([np.full(len(l["x"]), oi) for l, oi in zip(lines, order_index)])
    xerr = np.concatenate([l["x_err"] for l in lines])
    bright = np.concatenate([np.isin(np.arange(len(l["x"])), np.argsort(-l["amplitude"])[:20])
                             for l in lines])
    if x_all.size < 6:
        raise ValueError("guided wavelength solution: fewer than 6 lines detected")
    m_all = guess.m_of_index(i_all).astype(float)
    disp0 = np.abs(guess.dispersion(x_all, m_all))
    best = (-1, 0.0)
    xb, mb, ib, db = x_all[bright], m_all[bright], i_all[bright], disp0[bright]
    for sh in np.arange(-max_shift_px, max_shift_px + 0.05, 0.1):
        ok, _ = _match(guess(xb - sh, mb), db, cat.wl, ib, 0.5)
        n = int(ok.sum())
        if n > best[0]:
            best = (n, sh)
    sh = best[1]
    lam = guess(x_all - sh, m_all)
    disp = disp0
    m_range = (min(float(m_all.min()), guess.m_min), max(float(m_all.max()), guess.m_max))
    sol, kept, ok = guess, None, None
    for tol in (2.0, 1.0, 0.7, 0.5):
        ok, ref = _match(lam, disp, cat.wl, i_all, tol)
        if ok.sum() < 6:
            raise ValueError("guided wavelength solution: fewer than 6 lines matched")
        sol, kept = fit_solution(x_all[ok], m_all[ok], ref[ok], nx, deg_x, deg_m, m_range=m_range,
                                 m0=guess.m0, s=guess.s, nsigma=3.0 if tol == 0.5 else 4.0)
        lam = sol(x_all, m_all)
        disp = np.abs(sol.dispersion(x_all, m_all))
    sel = np.flatnonzero(ok)[kept]
    table = {"x": x_all[sel], "x_err": xerr[sel], "order_index": i_all[sel], "m": m_all[sel],
             "wavelength": ref[sel], "fit": sol(x_all[sel], m_all[sel])}
    sol.meta.update({"n_detected": int(x_all.size), "guide_shift_px": float(sh)})
    return sol, table


def solve(arc_spectra, order_index, line_wavelengths, line_amplitudes=None, variances=None,
          guess: WavelengthSolution | None = None, snr: float = 5.0, **kw):
    """One fiber's wavelength solution from its extracted arc spectra: ``find_lines`` on every
    trace, then ``identify_blind`` (or ``solve_guided`` from ``guess``), then the quality figures.

    ``arc_spectra``: (n_traces, nx) fluxes of one fiber; ``order_index``: their order indices;
    ``variances``: matching variances (optional). Returns ``(solution, table, quality_dict)`` with
    ``quality_dict`` as ``quality`` returns it (``SIGLAM``, ``RVPRECSN``, ``NLINEDET``, ``NLINES``).
    """
    arc_spectra = np.atleast_2d(np.asarray(arc_spectra, float))
    nx = arc_spectra.shape[1]
    lines = []
    for k in range(len(arc_spectra)):
        var = None if variances is None else np.asarray(variances)[k]
        lines.append(find_lines(arc_spectra[k], var, snr=snr))
    if guess is None:
        sol, table = identify_blind(lines, order_index, nx, line_wavelengths, line_amplitudes, **kw)
    else:
        sol, table = solve_guided(lines, order_index, nx, guess, line_wavelengths, **kw)
    q = quality(table, n_detected=sum(len(l["x"]) for l in lines))
    sol.meta.update(q)
    return sol, table, q


def quality(table, n_detected: int | None = None) -> dict:
    """banzai-nres's wavelength figures from the matched-line table: ``SIGLAM`` robust standard
    deviation of fit minus catalogue wavelengths (Angstrom), ``RVPRECSN`` robust standard deviation
    of (fit - catalogue)/catalogue times c over sqrt(N) (m/s), ``RMS`` plain rms (Angstrom),
    ``RMS_KMS`` rms in velocity, ``NLINEDET`` detected, ``NLINES`` matched."""
    d = np.asarray(table["fit"]) - np.asarray(table["wavelength"])
    n = d.size
    if n == 0:
        return {"SIGLAM": np.nan, "RVPRECSN": np.nan, "RMS": np.nan, "RMS_KMS": np.nan,
                "NLINEDET": int(n_detected or 0), "NLINES": 0}
    rstd = mad_std(d)
    dv = d / np.asarray(table["wavelength"])
    vstd = mad_std(dv)
    return {"SIGLAM": float(rstd), "RVPRECSN": float(vstd / np.sqrt(n) * C_MS),
            "RMS": float(np.sqrt(np.mean(d ** 2))), "RMS_KMS": float(np.sqrt(np.mean(dv ** 2)) * C_KMS),
            "NLINEDET": int(n_detected if n_detected is not None else n), "NLINES": int(n)}


# --------------------------------------------------------------------------- drift

def drift(lines_frame, lines_reference, solution: WavelengthSolution, order_index,
          max_shift_px: float = 3.0, nsigma: float = 4.0):
    """Drift of a fiber between a frame and its reference (the simultaneous ThAr fiber against the
    TRIPLE): lines of the same order are paired within ``max_shift_px`` after removing the median
    shift, each pair's shift converted to a velocity ``c * (lambda(x_frame) - lambda(x_ref)) /
    lambda``, and the velocities combined by an inverse-variance weighted mean with ``nsigma``
    clipping about the median.

    ``lines_frame``, ``lines_reference``: lists of ``find_lines`` dicts per trace of that fiber;
    ``order_index``: their order indices. Returns a dict: ``drift`` (m/s; the apparent velocity of
    the lamp in the frame measured with the reference solution), ``drift_err`` (m/s), ``shift_px``
    (median), ``n_lines``.
    """
    vs, ws, shifts = [], [], []
    for lf, lr, oi in zip(lines_frame, lines_reference, order_index):
        if len(lf["x"]) == 0 or len(lr["x"]) == 0:
            continue
        m = float(solution.m_of_index(oi))
        xr = lr["x"]
        j = np.clip(np.searchsorted(xr, lf["x"]), 1, max(1, len(xr) - 1))
        cand = np.stack([xr[np.clip(j - 1, 0, len(xr) - 1)], xr[np.clip(j, 0, len(xr) - 1)]])
        pick = np.argmin(np.abs(cand - lf["x"][None, :]), axis=0)
        xref = cand[pick, np.arange(lf["x"].size)]
        jj = np.searchsorted(xr, xref)
        jj = np.clip(jj, 0, len(xr) - 1)
        dx = lf["x"] - xref
        ok = np.abs(dx) < max_shift_px
        if not ok.any():
            continue
        lam_f = solution(lf["x"][ok], m)
        lam_r = solution(xref[ok], m)
        v = (lam_f - lam_r) / lam_r * C_MS
        disp = np.abs(solution.dispersion(xref[ok], m))
        err_x = np.hypot(lf["x_err"][ok], lr["x_err"][jj[ok]])
        ev = np.maximum(err_x * disp / lam_r * C_MS, 1e-3)
        vs.append(v); ws.append(1.0 / ev ** 2); shifts.append(dx[ok])
    if not vs:
        return {"drift": np.nan, "drift_err": np.nan, "shift_px": np.nan, "n_lines": 0}
    v = np.concatenate(vs); w = np.concatenate(ws); sh = np.concatenate(shifts)
    keep = np.ones(v.size, bool)
    for _ in range(5):
        med = np.median(v[keep])
        s = mad_std(v[keep])
        new = np.abs(v - med) < nsigma * max(s, 1e-3)
        if np.array_equal(new, keep):
            break
        keep = new
    mean = np.sum(v[keep] * w[keep]) / np.sum(w[keep])
    # error: the larger of the formal error and the scatter over sqrt(N)
    formal = 1.0 / np.sqrt(np.sum(w[keep]))
    scatter = np.std(v[keep]) / np.sqrt(keep.sum()) if keep.sum() > 1 else formal
    return {"drift": float(mean), "drift_err": float(max(formal, scatter)),
            "shift_px": float(np.median(sh[keep])), "n_lines": int(keep.sum())}


def apply_drift(wavelength, drift_ms: float):
    """Wavelengths of a frame corrected for a measured drift (m/s, as ``drift`` returns it):
    ``lambda / (1 + drift / c)``."""
    return np.asarray(wavelength, float) / (1.0 + drift_ms / C_MS)
