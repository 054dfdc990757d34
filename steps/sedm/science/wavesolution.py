"""Per-spaxel wavelength solutions from the Hg, Cd and Xe arcs (pysedm's WaveSolution, found blind).

The steps, each a pure function over arrays:

1. :func:`find_peaks`: the arc lines of one lamp spectrum (local maxima far above the noise,
   their flux-weighted centroids).
2. :func:`identify`: which peak is which line, with no prior on the dispersion: every triplet
   of bright peaks, each paired with a catalogue line of its lamp, defines a smooth
   ``log lambda(x)`` (quadratic); the hypothesis under which the most peaks of all three lamps
   land on catalogue lines wins (ties: the smallest residual), then it is refined on all its
   matches.  The direction of dispersion is not assumed (SEDM's red end is at low x; the
   simulator's at high x).  Done on a few reference spaxels; the best is kept.
3. :func:`spaxel_shift`: each spaxel's offset along dispersion from the reference, by cross
   correlation of the three lamp spectra (the traces found on the dome flat may miss their
   faint ends by a few pixels, so the trace's own columns are not trusted to align spectra).
4. :func:`fit_lamp`: the runbook's "Gaussian arc-line fits on a cubic continuum": one lamp
   spectrum of one spaxel as a cubic continuum plus one Gaussian per catalogue line, the lines
   of a blend (closer than the line width) at separations fixed by the current solution with
   free amplitudes, the width linear in x and shared by the lamp's lines.
5. :func:`fit_solution`: the degree-5 pixel-to-wavelength polynomial of one spaxel through its
   lines, weighted by each line's position error times the local dispersion (4-sigma clipping
   of the residuals in pixels), and its rms in A.

:func:`solve` chains them over every spaxel and raises :class:`GeometrySolutionFailed` when
too few lines are identified, when the median rms passes the limit or when too few spaxels
have a good solution (at least ``min_lines`` lines and an rms under the limit).

Polynomials are numpy.polynomial coefficients (increasing powers) of
``t = (x - x_ref) / x_scale``, x the 0-based detector column; wavelengths are vacuum A.
"""

from __future__ import annotations

import csv
import itertools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.polynomial import polynomial as P
from astropy.stats import mad_std
from scipy.optimize import least_squares

from astroflow.errors import ItemError

LAMPS = ("Hg", "Cd", "Xe")


class GeometrySolutionFailed(ItemError):
    """The night's geometry (wavelength) solution cannot be trusted: too few arc lines, an rms
    over the limit, or too few spaxels with a good solution."""


@dataclass(frozen=True)
class Group:
    """Catalogue lines of one lamp that the spectrograph sees as one feature."""

    lamp: str
    wavelengths: tuple[float, ...]  # vacuum A, the first is the one the solution is fitted to

    @property
    def mean(self) -> float:
        return float(np.mean(self.wavelengths))


def read_line_list(path: str | Path) -> list[Group]:
    """The arc line list: CSV ``lamp,wavelength_vacuum,group,...``; lines sharing a ``group``
    label within a lamp are one blend."""
    rows = list(csv.DictReader(Path(path).open()))
    groups: dict[tuple[str, str], list[float]] = {}
    for r in rows:
        key = (r["lamp"], r.get("group") or r["wavelength_vacuum"])
        groups.setdefault(key, []).append(float(r["wavelength_vacuum"]))
    return [Group(lamp, tuple(sorted(w))) for (lamp, _), w in groups.items()]


def noise(spectrum: np.ndarray) -> float:
    d = np.diff(spectrum[np.isfinite(spectrum)])
    return float(mad_std(d) / np.sqrt(2.0)) if d.size else 0.0


def find_peaks(x: np.ndarray, spectrum: np.ndarray, nsigma: float = 20.0, max_peaks: int = 14):
    """(positions, heights) of the lines of one spectrum, brightest first."""
    s = np.where(np.isfinite(spectrum), spectrum, 0.0)
    base = np.median(s)
    level = base + nsigma * max(noise(s), 1e-9)
    i = np.nonzero((s[1:-1] > s[:-2]) & (s[1:-1] >= s[2:]) & (s[1:-1] > level))[0] + 1
    pos = []
    for k in i:
        w = np.clip(s[k - 1:k + 2] - base, 0, None)
        pos.append(float(np.sum(w * x[k - 1:k + 2]) / max(w.sum(), 1e-12)))
    h = s[i] - base
    order = np.argsort(-h)[:max_peaks]
    return np.array(pos)[order], h[order]


@dataclass
class Identification:
    coeffs: np.ndarray  # log(lambda) polynomial of t
    x_ref: float
    x_scale: float
    n_matched: int
    residual_px: float
    matches: list = field(default_factory=list)  # (lamp, peak x, group)

    def wavelength(self, x) -> np.ndarray:
        return np.exp(P.polyval((np.asarray(x, float) - self.x_ref) / self.x_scale, self.coeffs))


def _match(peaks, groups, coeffs, x_ref, x_scale, tol_px):
    """Peaks within ``tol_px`` of a catalogue line of their lamp under ``coeffs``."""
    out = []
    for lamp, (xs, _) in peaks.items():
        cat = np.array([g.mean for g in groups if g.lamp == lamp])
        gl = [g for g in groups if g.lamp == lamp]
        if not xs.size or not cat.size:
            continue
        t = (xs - x_ref) / x_scale
        lam = np.exp(P.polyval(t, coeffs))
        disp = np.abs(lam * P.polyval(t, P.polyder(coeffs)) / x_scale)
        d = np.abs(lam[:, None] - cat[None, :]) / np.maximum(disp[:, None], 1e-9)
        used = set()
        for i in np.argsort(d.min(axis=1)):
            j = int(np.argmin(d[i]))
            if d[i, j] < tol_px and j not in used:
                used.add(j)
                out.append((lamp, float(xs[i]), gl[j], float(d[i, j])))
    return out


def identify(x: np.ndarray, spectra: dict[str, np.ndarray], groups: list[Group], *, anchors_per_lamp: int = 4,
             tol_px: float = 1.5) -> Identification:
    """Which peak of each lamp is which catalogue line, blind (see the module docstring)."""
    peaks = {lamp: find_peaks(x, spectra[lamp]) for lamp in spectra}
    x_ref, x_scale = float(np.mean(x)), float(np.ptp(x) / 2.0) or 1.0
    cand = []  # (lamp, x, [catalogue log-lambdas])
    for lamp, (xs, _) in peaks.items():
        cat = np.log([g.mean for g in groups if g.lamp == lamp])
        for xp in xs[:anchors_per_lamp]:
            cand.append((lamp, xp, cat))
    hyps = []
    grid = (np.linspace(x.min(), x.max(), 9) - x_ref) / x_scale
    for a, b, c in itertools.combinations(range(len(cand)), 3):
        xs = np.array([cand[a][1], cand[b][1], cand[c][1]])
        if np.min(np.abs(np.diff(np.sort(xs)))) < 3.0:
            continue
        combos = np.array(list(itertools.product(cand[a][2], cand[b][2], cand[c][2])))
        if not combos.size:
            continue
        order = np.argsort(xs)
        diffs = np.diff(combos[:, order], axis=1)
        combos = combos[np.all(diffs > 0, axis=1) | np.all(diffs < 0, axis=1)]
        if combos.size:
            vander = np.vander((xs - x_ref) / x_scale, 3, increasing=True)
            hyps.append(np.linalg.solve(vander, combos.T).T)
    if not hyps:
        return Identification(np.zeros(3), x_ref, x_scale, 0, np.inf)
    coeffs = np.concatenate(hyps)
    slope = coeffs[:, 1, None] + 2 * coeffs[:, 2, None] * grid[None, :]
    loglam = coeffs[:, 0, None] + coeffs[:, 1, None] * grid + coeffs[:, 2, None] * grid ** 2
    ok = (np.all(slope > 0, axis=1) | np.all(slope < 0, axis=1)) & (loglam.min(axis=1) > np.log(2500.0)) \
        & (loglam.max(axis=1) < np.log(12000.0))
    coeffs = coeffs[ok]
    count = np.zeros(len(coeffs))
    spread = np.zeros(len(coeffs))
    for lamp, (xs, _) in peaks.items():
        cat = np.array([g.mean for g in groups if g.lamp == lamp])
        if not xs.size or not cat.size:
            continue
        t = (xs - x_ref) / x_scale
        lam = np.exp(coeffs[:, 0, None] + coeffs[:, 1, None] * t + coeffs[:, 2, None] * t ** 2)
        disp = np.abs(lam * (coeffs[:, 1, None] + 2 * coeffs[:, 2, None] * t) / x_scale)
        d = (np.abs(lam[:, :, None] - cat[None, None, :]) / np.maximum(disp[:, :, None], 1e-9)).min(axis=2)
        hit = d < tol_px
        count += hit.sum(axis=1)
        spread += np.where(hit, d, 0.0).sum(axis=1)
    if not len(coeffs):
        return Identification(np.zeros(3), x_ref, x_scale, 0, np.inf)
    top = np.lexsort((spread, -count))[:20]
    best = None
    for co in coeffs[top]:
        m = _match(peaks, groups, co, x_ref, x_scale, tol_px)
        score = (len(m), -sum(r[3] for r in m))
        if best is None or score > best[0]:
            best = (score, co, m)
    co, m = best[1], best[2]
    for tol in (tol_px, 1.0, 1.0):
        if len(m) < 4:
            break
        deg = min(3, len(m) - 2)
        xs = np.array([r[1] for r in m])
        ll = np.log([r[2].mean for r in m])
        co = P.polyfit((xs - x_ref) / x_scale, ll, deg)
        m = _match(peaks, groups, co, x_ref, x_scale, tol)
    res = float(np.median([r[3] for r in m])) if m else np.inf
    return Identification(co, x_ref, x_scale, len(m), res, [(r[0], r[1], r[2]) for r in m])


def spaxel_shift(ref: dict[str, np.ndarray], spec: dict[str, np.ndarray], max_lag: int = 15) -> float:
    """Columns by which ``spec`` is shifted from ``ref`` (both on their own first column = 0):
    the peak of the summed cross-correlations of the lamps' normalised spectra, refined by a
    parabola."""
    lags = np.arange(-max_lag, max_lag + 1)
    total = np.zeros(lags.size)
    for lamp in ref:
        a, b = (np.nan_to_num(v, nan=0.0) for v in (ref[lamp], spec[lamp]))
        a = np.clip(a - np.median(a), 0, None)
        b = np.clip(b - np.median(b), 0, None)
        if a.max() <= 0 or b.max() <= 0:
            continue
        a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
        n = max(a.size, b.size) + max_lag
        fa, fb = np.zeros(n + max_lag), np.zeros(n + max_lag)
        fa[max_lag:max_lag + a.size] = a
        fb[max_lag:max_lag + b.size] = b
        total += np.array([np.dot(fa, np.roll(fb, -k)) for k in lags])
    k = int(np.argmax(total))
    if 0 < k < lags.size - 1:
        y0, y1, y2 = total[k - 1:k + 2]
        den = y0 - 2 * y1 + y2
        return float(lags[k] + (0.5 * (y0 - y2) / den if den != 0 else 0.0))
    return float(lags[k])


@dataclass(frozen=True)
class LineFit:
    group: Group
    x: float  # column of the group's first line
    x_err: float
    amplitude: float  # peak of the strongest component (e-)
    sigma: float  # px
    snr: float


def _gauss(x, mu, s):
    return np.exp(-0.5 * ((x - mu) / s) ** 2)


def fit_lamp(x: np.ndarray, spectrum: np.ndarray, groups: list[Group], wavelength_of, *, sigma0: float = 1.2,
             window: float = 4.0, min_snr: float = 10.0) -> list[LineFit]:
    """Fit one lamp spectrum of one spaxel (see the module docstring).  ``wavelength_of(x)`` is
    the current solution; lines outside the spectrum are left out.  Returns the fitted groups
    whose strongest component is at least ``min_snr`` times the noise."""
    ok = np.isfinite(spectrum)
    x, s = x[ok], spectrum[ok]
    if x.size < 10:
        return []
    fine = np.linspace(x.min() - 20, x.max() + 20, 4 * (x.size + 40))
    lam = wavelength_of(fine)
    order = np.argsort(lam)

    def pixel(w):
        return float(np.interp(w, lam[order], fine[order]))

    placed = []
    for g in groups:
        xs = np.array([pixel(w) for w in g.wavelengths])
        lo, hi = (lam.min(), lam.max())
        if not all(lo < w < hi for w in g.wavelengths) or xs.min() < x.min() + 1 or xs.max() > x.max() - 1:
            continue
        placed.append((g, xs))
    if not placed:
        return []
    mask = np.zeros(x.size, bool)
    for _, xs in placed:
        mask |= (x > xs.min() - window * sigma0 - 1) & (x < xs.max() + window * sigma0 + 1)
    xm, sm = x[mask], s[mask]
    xc, xh = float(np.mean(x)), float(np.ptp(x) / 2.0) or 1.0
    nz = max(noise(s), 1e-6)
    base = float(np.median(s))
    # parameters: 4 continuum, 2 width, then per group: shift, one amplitude per component
    p0 = [base, 0.0, 0.0, 0.0, sigma0, 0.0]
    lo = [-np.inf] * 4 + [0.4, -1.0]
    hi = [np.inf] * 4 + [4.0, 1.0]
    for g, xs in placed:
        peak = float(np.interp(xs[0], x, s)) - base
        p0 += [0.0] + [max(peak, nz)] * len(xs)
        lo += [-3.0] + [0.0] * len(xs)
        hi += [3.0] + [np.inf] * len(xs)

    comp_x = np.concatenate([xs for _, xs in placed])
    comp_g = np.concatenate([[gi] * len(xs) for gi, (_, xs) in enumerate(placed)])
    shift_i = np.cumsum([0] + [1 + len(xs) for _, xs in placed[:-1]]) + 6
    amp_i = np.concatenate([si + 1 + np.arange(len(xs)) for si, (_, xs) in zip(shift_i, placed)])
    tt = (xm - xc) / xh
    vander = np.vander(tt, 4, increasing=True)

    def parts(p):
        sig = p[4] * (1.0 + p[5] * tt)
        u = (xm[:, None] - comp_x[None, :] - p[shift_i][comp_g][None, :]) / sig[:, None]
        gauss = np.exp(-0.5 * u * u)
        return sig, u, gauss

    def resid(p):
        sig, u, gauss = parts(p)
        return (vander @ p[:4] + gauss @ p[amp_i] - sm) / nz

    def jac(p):
        sig, u, gauss = parts(p)
        a = p[amp_i][None, :] * gauss
        j = np.zeros((xm.size, p.size))
        j[:, :4] = vander
        dsig = (a * u * u).sum(axis=1) / sig
        j[:, 4] = dsig * (1.0 + p[5] * tt)
        j[:, 5] = dsig * p[4] * tt
        j[:, amp_i] = gauss
        dd = a * u / sig[:, None]
        for gi, si in enumerate(shift_i):
            j[:, si] = dd[:, comp_g == gi].sum(axis=1)
        return j / nz

    try:
        res = least_squares(resid, np.array(p0), jac=jac, bounds=(lo, hi), x_scale="jac", max_nfev=200)
    except ValueError:
        return []
    p = res.x
    try:
        jtj = res.jac.T @ res.jac
        dof = max(1, xm.size - p.size)
        cov = np.linalg.pinv(jtj) * (2 * res.cost / dof)
        err = np.sqrt(np.clip(np.diag(cov), 0, None))
    except np.linalg.LinAlgError:
        err = np.full(p.size, np.nan)
    out = []
    k = 6
    for g, xs in placed:
        amps = p[k + 1:k + 1 + len(xs)]
        sig = p[4] * (1.0 + p[5] * (xs[0] - xc) / xh)
        snr = float(amps.max() / nz)
        if snr >= min_snr:
            out.append(LineFit(g, float(xs[0] + p[k]), float(err[k]), float(amps.max()), float(sig), snr))
        k += 1 + len(xs)
    return out


@dataclass(frozen=True)
class SpaxelSolution:
    coeffs: np.ndarray  # wavelength polynomial of t = (x - x_ref) / x_scale
    x_ref: float
    x_scale: float
    rms: float  # A
    n_lines: int
    n_rejected: int
    lines: tuple  # (lamp, catalogue A, fitted column, residual A, kept)

    def wavelength(self, x) -> np.ndarray:
        return P.polyval((np.asarray(x, float) - self.x_ref) / self.x_scale, self.coeffs)


def fit_solution(fits_: list[LineFit], x_ref: float, x_scale: float, degree: int = 5, clip: float = 4.0,
                 max_reject: int = 3, floor_px: float = 0.05, min_scale_px: float = 0.1) -> SpaxelSolution | None:
    """Degree-``degree`` polynomial through the lines, weighted by each line's position error in
    A (its fitted column error, at least ``floor_px``, times the local dispersion: a prism packs
    the red lines into few pixels, so an A of residual there is a small fraction of a pixel); the
    worst line beyond ``clip`` robust sigma (at least ``min_scale_px``) of the residuals in pixels
    is dropped at a time, at most ``max_reject`` (a line fitted on the wrong feature is off by
    pixels wherever it is; its column error, from a poor fit, would hide it in the weighted
    residuals).  The rms is the plain rms in A of the lines kept."""
    if len(fits_) < degree + 2:
        return None
    xs = np.array([f.x for f in fits_])
    lam = np.array([f.group.wavelengths[0] for f in fits_])
    x_err = np.hypot(np.nan_to_num(np.array([f.x_err for f in fits_]), nan=1.0), floor_px)
    t = (xs - x_ref) / x_scale
    keep = np.ones(xs.size, bool)
    slope = P.polyder(P.polyfit(t, lam, min(3, xs.size - 1))) / x_scale
    for _ in range(max_reject + 1):
        dispersion = np.abs(P.polyval(t, slope))
        sigma = dispersion * x_err
        co = P.polyfit(t[keep], lam[keep], degree, w=1.0 / sigma[keep])
        slope = P.polyder(co) / x_scale
        z = (lam - P.polyval(t, co)) / dispersion  # px
        scale = max(float(mad_std(z[keep])), min_scale_px)
        worst = int(np.argmax(np.where(keep, np.abs(z), -1)))
        if abs(z[worst]) <= clip * scale or keep.sum() - 1 < degree + 2 or (~keep).sum() >= max_reject:
            break
        keep[worst] = False
    co = P.polyfit(t[keep], lam[keep], degree, w=1.0 / sigma[keep])
    r = lam - P.polyval(t, co)
    dof = max(1, keep.sum() - degree - 1)
    rms = float(np.sqrt(np.sum(r[keep] ** 2) / dof))
    lines = tuple((f.group.lamp, float(f.group.wavelengths[0]), f.x, float(ri), bool(k))
                  for f, ri, k in zip(fits_, r, keep))
    return SpaxelSolution(co, x_ref, x_scale, rms, int(keep.sum()), int((~keep).sum()), lines)


@dataclass
class NightSolution:
    solutions: list  # SpaxelSolution or None per trace
    good: np.ndarray  # bool per trace
    reference: int  # trace the lines were identified on
    identification: Identification
    shifts: np.ndarray  # columns, per trace, from the reference

    @property
    def rms(self) -> np.ndarray:
        return np.array([s.rms if s is not None else np.nan for s in self.solutions])


def solve(starts: np.ndarray, spectra: dict[str, np.ndarray], groups: list[Group], *, degree: int = 5,
          min_lines: int = 8, rms_limit: float = 5.0, min_good: int = 100, n_reference: int = 5,
          max_lag: int = 15) -> NightSolution:
    """Every spaxel's solution from its arc spectra (``spectra[lamp]``: (n_traces, n) arrays,
    column ``starts[i] + j``); raises :class:`GeometrySolutionFailed` (see the module docstring)."""
    lamps = [lamp for lamp in LAMPS if lamp in spectra]
    n = len(starts)
    width = spectra[lamps[0]].shape[1]
    brightness = np.array([sum(np.nanmax(spectra[lamp][i]) for lamp in lamps) for i in range(n)])
    valid = np.nonzero(np.isfinite(brightness) & (brightness > 0))[0]
    if not valid.size:
        raise GeometrySolutionFailed("no spaxel has an arc spectrum")
    by_light = valid[np.argsort(brightness[valid])]
    middle = by_light[len(by_light) // 2 - n_reference // 2: len(by_light) // 2 - n_reference // 2 + n_reference]
    best = None
    for i in middle:
        x = starts[i] + np.arange(width, dtype=float)
        ident = identify(x, {lamp: spectra[lamp][i] for lamp in lamps}, groups)
        if best is None or (ident.n_matched, -ident.residual_px) > (best[1].n_matched, -best[1].residual_px):
            best = (int(i), ident)
    ref, ident = best
    if ident.n_matched < min_lines:
        raise GeometrySolutionFailed(f"too few arc lines identified: {ident.n_matched} of {len(groups)} catalogue "
                                     f"features matched on the reference spaxel (trace {ref}), {min_lines} needed")
    ref_spec = {lamp: spectra[lamp][ref] for lamp in lamps}
    shifts = np.zeros(n)
    solutions: list = [None] * n
    for i in range(n):
        if not np.isfinite(brightness[i]) or brightness[i] <= 0:
            continue
        spec = {lamp: spectra[lamp][i] for lamp in lamps}
        shift = spaxel_shift(ref_spec, spec, max_lag) + (starts[i] - starts[ref]) if i != ref else 0.0
        shifts[i] = shift
        x = starts[i] + np.arange(width, dtype=float)

        def guess(xx, _s=shift):
            return ident.wavelength(np.asarray(xx) - _s)

        found = []
        for lamp in lamps:
            found += fit_lamp(x, spec[lamp], [g for g in groups if g.lamp == lamp], guess)
        xr = float(np.nanmean(x[np.isfinite(spec[lamps[0]])]))
        sol = fit_solution(found, xr, float(width / 2.0), degree)
        solutions[i] = sol
    rms = np.array([s.rms if s is not None else np.nan for s in solutions])
    nl = np.array([s.n_lines if s is not None else 0 for s in solutions])
    good = (nl >= min_lines) & (rms <= rms_limit)
    night = NightSolution(solutions, good, ref, ident, shifts)
    finite = rms[np.isfinite(rms)]
    if not finite.size:
        raise GeometrySolutionFailed(f"too few arc lines: no spaxel has the {degree + 2} lines a degree-{degree} "
                                     "solution needs")
    med = float(np.median(finite))
    if med > rms_limit:
        raise GeometrySolutionFailed(f"median wavelength rms {med:.2f} A is over the limit of {rms_limit:g} A")
    if good.sum() < min_good:
        raise GeometrySolutionFailed(f"only {int(good.sum())} of {n} spaxels have a good solution (at least "
                                     f"{min_lines} lines, rms <= {rms_limit:g} A); {min_good} needed")
    return night
