"""The project's SNID-like classifier: ``astroflow-xcor (SNID-like, not SNID)``, as pure functions.

SNID (Blondin & Tonry 2007, ApJ 666, 1024) is a Fortran program no registry here carries; this is
its method, written from the papers, not its code:

* both spectra are binned on one logarithmic wavelength axis (SNID's 1024 bins over 2500-10000 A,
  ``NW``, ``W0``, ``W1``), so a redshift is a shift: ``ln(1 + z) = shift * dlog``;
* the continuum is removed: a cubic spline through ``KNOTS`` (SNID: 13) evenly spaced knots in
  ln(lambda) over the spectrum's extent divides it, and 1 is subtracted (a "flattened" spectrum
  of mean zero).  Deviation from SNID, and why: the spline is refitted ``CONT_ITER`` (3) times
  leaving out the bins more than ``CONT_CLIP`` (2.5) robust sigmas off it (the troughs and
  peaks), because on SEDM's ~25 A bins a deep feature at an end of the range (Ca II H&K near
  4000 A at z ~ 0.09) pulls an unclipped spline and costs the right template its rlap (measured:
  rlap 4.6 instead of 9-11 on the simulator's SN Ia at z = 0.09; with the clipping 1 miss in 80
  simulated SNe Ia and II at S/N 20, z 0.005-0.195);
* each end of the flattened spectrum is apodised with a cosine bell over ``APODIZE`` (5 %) of its
  extent;
* in Fourier space the spectra are bandpass-filtered as SNID does: a ramp that rises from wave
  number ``K1`` to ``K2`` (removing what the spline left of the continuum) and falls from ``K3`` to
  ``K4`` (removing bin-to-bin noise); SNID's defaults for 1024 bins are 1, 4, 102, 205;
* Tonry & Davis (1979, AJ 84, 1511): the normalised cross-correlation ``c`` of the spectrum and a
  template, its highest peak in the allowed redshift range (height ``h``), the rms ``sigma_a`` of
  its antisymmetric part about the peak, ``r = h / (sqrt(2) sigma_a)``; the redshift's error from
  the peak's full width ``w``: ``3 w / (8 (1 + r))`` (their error estimate, in ln(1 + z), times 1 + z);
* ``lap``: the overlap in ln(lambda) of the spectrum and the template shifted to that redshift;
  SNID then trims both to the overlap, apodises again and correlates once more, and so does
  this, for each of the ``NPEAKS`` highest first-pass peaks (the one with the best rlap is the
  match: a noise peak that happens to be highest in the first pass does not hide the true one);
  ``rlap = r * lap``;
* good matches: ``rlap >= RLAP_MIN`` (4, the runbook's) and ``lap >= LAP_MIN`` (SNID's 0.4);
  the type fractions are the shares of each type among the good matches; the type (then the
  subtype within it) is the one with the largest share, ties to the best rlap; its redshift and
  age are the medians over its good matches within ``ZFILTER`` of its best match's redshift
  (SNID's ``zmed`` and ``agem``; a template matched at another peak is left out), the redshift
  error their spread, at least the smallest Tonry-Davis error among them.

The spectrum is used over ``WMIN``-``WMAX`` (4000-9500 A, observed) only, and redshifts are
searched over ``ZMIN``-``ZMAX`` (-0.01 to 0.2: SEDM observes transients brighter than ~19 mag,
nearly all at z < 0.15; SNID's default of 1.2 lets a one-line template such as an early SN II's
H alpha lock onto any bump at high z).

Known limits, measured on the simulator's spectra: r does not depend on the spectrum's scale, so a
featureless spectrum (a star) correlates its noise with a template at rlap 4-6 and may be typed:
the rlap and the type fractions are for a person to judge, as SNID's are; redshifts of the
simulator's SNe Ia come out 0.002-0.005 low (the bank's Si II and Ca II velocities are not the
simulator's).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.interpolate import LSQUnivariateSpline

CLASSIFIER = "astroflow-xcor (SNID-like, not SNID)"
NW, W0, W1 = 1024, 2500.0, 10000.0
DWLOG = np.log(W1 / W0) / NW
KNOTS = 13
CONT_CLIP = 2.5  # robust sigmas: absorption troughs and emission peaks left out of the continuum spline
CONT_ITER = 3
APODIZE = 0.05
K1, K2, K3, K4 = 1, 4, 102, 205
RLAP_MIN = 4.0
LAP_MIN = 0.4
WMIN, WMAX = 4000.0, 9500.0
ZMIN, ZMAX = -0.01, 0.2  # SEDM's transients (m < ~19) lie at z < ~0.15; SNID's own default reaches 1.2
NPEAKS = 5  # first-pass correlation peaks each given a second pass (the best rlap is kept)
PEAK_WINDOW = 8  # lags (~0.011 in ln(1 + z)) around a first-pass peak searched in the second pass
ZFILTER = 0.02  # SNID's zfilter: the matches whose redshift differs more from the best's are left out of zmed


@dataclass(frozen=True)
class Template:
    """A rest-frame template: name, type (Ia, Ib, Ic, II), subtype (Ia-norm ...), age (days from
    maximum light), wavelength (A) and flux (any units)."""

    name: str
    type: str
    subtype: str
    age: float
    wavelength: np.ndarray
    flux: np.ndarray


@dataclass(frozen=True)
class Match:
    template: str
    type: str
    subtype: str
    age: float
    z: float
    zerr: float
    r: float
    lap: float
    rlap: float


@dataclass(frozen=True)
class Result:
    """What the classifier concluded: the best type and subtype (empty when no match is good),
    redshift with error, age, the best match, the type fractions, every match ordered by rlap."""

    type: str
    subtype: str
    z: float
    zerr: float
    age: float
    rlap: float
    best: Match | None
    fractions: dict[str, float]
    matches: list[Match] = field(default_factory=list)
    classifier: str = CLASSIFIER

    @property
    def good(self) -> list[Match]:
        return [m for m in self.matches if m.rlap >= RLAP_MIN and m.lap >= LAP_MIN]


def log_axis() -> np.ndarray:
    """Centres (A) of the logarithmic bins."""
    return W0 * np.exp((np.arange(NW) + 0.5) * DWLOG)


def rebin(lam, flux, lo: float = 0.0, hi: float = np.inf) -> tuple[np.ndarray, int, int]:
    """``flux`` on the log axis (0 outside the spectrum and outside ``lo``-``hi`` A) and the first
    and last bins it covers."""
    lam, flux = np.asarray(lam, float), np.asarray(flux, float)
    ok = np.isfinite(lam) & np.isfinite(flux) & (lam >= lo) & (lam <= hi)
    lam, flux = lam[ok], flux[ok]
    order = np.argsort(lam)
    lam, flux = lam[order], flux[order]
    axis = log_axis()
    out = np.zeros(NW)
    if lam.size < 10:
        return out, 0, -1
    inside = np.flatnonzero((axis >= lam[0]) & (axis <= lam[-1]))
    out[inside] = np.interp(axis[inside], lam, flux)
    return out, int(inside[0]), int(inside[-1])


def flatten(binned: np.ndarray, first: int, last: int, clip: float = CONT_CLIP) -> np.ndarray:
    """Divide by a cubic spline of ``KNOTS`` knots over bins first..last and subtract 1 (0 outside);
    with ``clip``, bins more than ``clip`` robust sigmas off the spline are left out of it and the
    spline refitted (``CONT_ITER`` times)."""
    out = np.zeros(NW)
    n = last - first + 1
    if n < 4 * KNOTS:
        return out
    x = np.arange(first, last + 1, dtype=float)
    y = binned[first:last + 1]
    knots = np.linspace(x[0], x[-1], KNOTS)[1:-1]
    use = np.ones(n, bool)
    cont = LSQUnivariateSpline(x, y, knots, k=3)(x)
    for _ in range(CONT_ITER if clip else 0):
        resid = y / np.where(cont != 0, cont, np.nan) - 1.0
        scale = 1.4826 * np.nanmedian(np.abs(resid[use]))
        keep = np.abs(resid) <= clip * scale
        keep[:2] = keep[-2:] = True  # the spline needs its ends
        try:
            if scale <= 0 or keep.sum() < n // 2 or not _knots_ok(x[keep], knots):
                break
            cont = LSQUnivariateSpline(x[keep], y[keep], knots, k=3)(x)
        except ValueError:
            break
        use = keep
    good = cont > 0.05 * np.nanmax(np.abs(cont))
    out[first:last + 1] = np.where(good, y / np.where(good, cont, 1.0) - 1.0, 0.0)
    return out


def _knots_ok(x: np.ndarray, knots: np.ndarray) -> bool:
    """Schoenberg-Whitney: every knot interval keeps data (else the spline is not defined)."""
    edges = np.concatenate([[x[0]], knots, [x[-1]]])
    counts = np.histogram(x, bins=edges)[0]
    return bool(np.all(counts >= 2))


def apodize(flat: np.ndarray, first: int, last: int, fraction: float = APODIZE) -> np.ndarray:
    """A cosine bell over ``fraction`` of the extent at each end."""
    out = flat.copy()
    n = last - first + 1
    m = max(1, int(round(fraction * n)))
    ramp = 0.5 * (1.0 - np.cos(np.pi * (np.arange(m) + 0.5) / m))
    out[first:first + m] *= ramp
    out[last - m + 1:last + 1] *= ramp[::-1]
    out[:first] = 0.0
    out[last + 1:] = 0.0
    return out


def bandpass(n: int = NW) -> np.ndarray:
    """SNID's Fourier filter over rfft wave numbers 0..n/2."""
    k = np.arange(n // 2 + 1, dtype=float)
    f = np.ones_like(k)
    f[k < K1] = 0.0
    rise = (k >= K1) & (k < K2)
    f[rise] = 0.5 * (1 - np.cos(np.pi * (k[rise] - K1) / (K2 - K1)))
    fall = (k > K3) & (k <= K4)
    f[fall] = 0.5 * (1 + np.cos(np.pi * (k[fall] - K3) / (K4 - K3)))
    f[k > K4] = 0.0
    return f


def prepared(binned: np.ndarray, first: int, last: int) -> np.ndarray:
    """Flattened, apodised and bandpass-filtered (in Fourier space: the rfft)."""
    return np.fft.rfft(apodize(flatten(binned, first, last), first, last)) * bandpass()


def _correlate(fs: np.ndarray, ft: np.ndarray) -> np.ndarray:
    """Normalised cross-correlation, lag ``n`` at index ``n % NW`` (spectrum = template shifted by n)."""
    ss = np.sqrt(np.sum(np.abs(fs) ** 2) * 2 / NW ** 2)
    st = np.sqrt(np.sum(np.abs(ft) ** 2) * 2 / NW ** 2)
    if ss == 0 or st == 0:
        return np.zeros(NW)
    return np.fft.irfft(fs * np.conj(ft), NW) / (NW * ss * st)


def _peak(c: np.ndarray, lo_lag: int, hi_lag: int) -> tuple[float, float, float]:
    """(lag, height, full width in lags) of the highest peak with lag in lo_lag..hi_lag."""
    lags = np.arange(lo_lag, hi_lag + 1)
    vals = c[lags % NW]
    i = int(np.argmax(vals))
    lag = int(lags[i])
    y0, y1, y2 = c[(lag - 1) % NW], c[lag % NW], c[(lag + 1) % NW]
    den = y0 - 2 * y1 + y2
    dx = 0.5 * (y0 - y2) / den if den < 0 else 0.0
    dx = float(np.clip(dx, -0.5, 0.5))
    height = y1 - 0.25 * (y0 - y2) * dx
    half = 0.5 * height
    left = right = 0
    while left < NW // 4 and c[(lag - left - 1) % NW] > half:
        left += 1
    while right < NW // 4 and c[(lag + right + 1) % NW] > half:
        right += 1

    def cross(k0, k1):  # fractional lag between k0 (above half) and k1 (below)
        a, b = c[k0 % NW], c[k1 % NW]
        return (a - half) / (a - b) if a != b else 0.5

    width = left + cross(lag - left, lag - left - 1) + right + cross(lag + right, lag + right + 1)
    return lag + dx, float(height), float(width)


def _r(c: np.ndarray, lag: float, height: float) -> float:
    n = np.arange(1, NW // 2)
    li = int(round(lag))
    a = 0.5 * (c[(li + n) % NW] - c[(li - n) % NW])
    sigma_a = np.sqrt(np.mean(a ** 2)) if a.size else 0.0
    return float(height / (np.sqrt(2.0) * sigma_a)) if sigma_a > 0 else 0.0


def match(lam, flux, template: Template, zmin: float = ZMIN, zmax: float = ZMAX,
          wmin: float = WMIN, wmax: float = WMAX) -> Match:
    """Tonry-Davis correlation of a spectrum (observed ``lam`` A) with one rest-frame template."""
    sb, s0, s1 = rebin(lam, flux, wmin, wmax)
    tb, t0, t1 = rebin(template.wavelength, template.flux)
    none = Match(template.name, template.type, template.subtype, template.age, float("nan"), float("nan"),
                 0.0, 0.0, 0.0)
    if s1 - s0 < 4 * KNOTS or t1 - t0 < 4 * KNOTS:
        return none
    lo_lag = int(np.floor(np.log1p(zmin) / DWLOG))
    hi_lag = int(np.ceil(np.log1p(zmax) / DWLOG))
    c = _correlate(prepared(sb, s0, s1), prepared(tb, t0, t1))
    best = none
    for lag in _peaks(c, lo_lag, hi_lag, NPEAKS):
        m = _second_pass(sb, s0, s1, tb, t0, t1, lag, template)
        if m is not None and m.rlap > best.rlap and lo_lag <= np.log1p(m.z) / DWLOG <= hi_lag:
            best = m
    return best


def _peaks(c: np.ndarray, lo_lag: int, hi_lag: int, n: int) -> list[int]:
    """The lags of the ``n`` highest local maxima of ``c`` within lo_lag..hi_lag."""
    lags = np.arange(lo_lag, hi_lag + 1)
    vals = c[lags % NW]
    left, right = c[(lags - 1) % NW], c[(lags + 1) % NW]
    local = np.flatnonzero((vals >= left) & (vals >= right) & (vals > 0))
    return [int(lags[i]) for i in local[np.argsort(-vals[local])][:n]]


def _second_pass(sb, s0, s1, tb, t0, t1, lag: int, template: Template) -> Match | None:
    """Trim both to the overlap at ``lag``, apodise again, correlate again (SNID's second pass)."""
    o0, o1 = max(s0, t0 + lag), min(s1, t1 + lag)
    if o1 - o0 < 4 * KNOTS:
        return None
    ts = np.roll(tb, lag)  # the template in the observed frame at the first-pass redshift
    c = _correlate(prepared(sb, o0, o1), prepared(ts, o0, o1))
    lag2, height, width = _peak(c, -PEAK_WINDOW, PEAK_WINDOW)
    lag_total = lag + lag2
    r = _r(c, lag2, height)
    lap = (o1 - o0 + 1) * DWLOG
    z = float(np.expm1(lag_total * DWLOG))
    zerr = float((1 + z) * 3.0 * width * DWLOG / (8.0 * (1.0 + r)))
    return Match(template.name, template.type, template.subtype, template.age, z, zerr, r, float(lap), float(r * lap))


def classify(lam, flux, templates: list[Template], rlap_min: float = RLAP_MIN, lap_min: float = LAP_MIN,
             zmin: float = ZMIN, zmax: float = ZMAX, wmin: float = WMIN, wmax: float = WMAX) -> Result:
    """Correlate with every template; the type, subtype, redshift and age from the good matches."""
    matches = [match(lam, flux, t, zmin, zmax, wmin, wmax) for t in templates]
    return aggregate(matches, rlap_min, lap_min)


def aggregate(matches: list[Match], rlap_min: float = RLAP_MIN, lap_min: float = LAP_MIN,
              classifier: str = CLASSIFIER) -> Result:
    """The type, subtype, redshift and age from the good matches (see the module docstring); also
    used on a real SNID's template listing."""
    matches = sorted(matches, key=lambda m: -m.rlap)
    good = [m for m in matches if m.rlap >= rlap_min and m.lap >= lap_min]
    if not good:
        best = matches[0] if matches else None
        return Result("", "", float("nan"), float("nan"), float("nan"), best.rlap if best else 0.0, None, {},
                      matches, classifier)
    fractions = _fractions([m.type for m in good])
    kind = _winner(fractions, good, "type")
    mine = [m for m in good if m.type == kind]
    sub = _winner(_fractions([m.subtype for m in mine]), mine, "subtype")
    top = next(m for m in mine if m.subtype == sub)  # its best match (matches are ordered by rlap)
    chosen = [m for m in mine if m.subtype == sub and abs(m.z - top.z) <= ZFILTER]
    zs = np.array([m.z for m in chosen])
    z = float(np.median(zs))
    zerr = float(np.std(zs)) if len(zs) > 1 else top.zerr
    zerr = max(zerr, min(m.zerr for m in chosen))
    return Result(kind, sub, z, zerr, float(np.median([m.age for m in chosen])), top.rlap, top, fractions,
                  matches, classifier)


def _fractions(labels: list[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for label in labels:
        out[label] = out.get(label, 0.0) + 1.0 / len(labels)
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def _winner(fractions: dict[str, float], good: list[Match], attr: str) -> str:
    best_rlap = {}
    for m in good:
        best_rlap[getattr(m, attr)] = max(best_rlap.get(getattr(m, attr), 0.0), m.rlap)
    return max(fractions, key=lambda k: (round(fractions[k], 9), best_rlap[k]))


def signal_to_noise(lam, flux, variance, lo: float = 4500.0, hi: float = 8500.0) -> float:
    """Median S/N per bin over ``lo``-``hi`` A."""
    lam, flux, variance = (np.asarray(a, float) for a in (lam, flux, variance))
    band = (lam >= lo) & (lam <= hi) & np.isfinite(flux) & (variance > 0)
    return float(np.median(flux[band] / np.sqrt(variance[band]))) if band.any() else float("nan")
