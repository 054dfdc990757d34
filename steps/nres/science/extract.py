"""Spectral extraction for NRES: the cross-dispersion profile and the blaze from a lamp flat, optimal
extraction (Horne 1986, PASP 98, 609) with variance, cosmic-ray rejection and a mask, and box
extraction as a fallback.

Every trace is cut into a *stamp*: for each column ``x``, the ``2k+1`` pixels ``round(y(x)) - k ..
round(y(x)) + k`` around its centre (banzai-nres's trace regions, ``TRACE_HALF_HEIGHT``); a profile
and a frame are sampled on the same pixels, so extraction is vectorised over columns and traces.
Arrays: ``rows`` (n_traces, 2k+1, nx) int row indices (-1 where off the detector), ``profile``
(n_traces, 2k+1, nx) float, normalised to unit sum in every column.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from astroflow.filters import running_median

from .trace import TraceSet

__all__ = [
    "Profile",
    "blaze_from_flat",
    "box_extract",
    "cut",
    "half_height",
    "lit_in",
    "optimal_extract",
    "profile_from_flat",
    "stamp_rows",
    "variance_image",
]

MASK_BAD = 1          # bad or masked pixel in the window / masked spectrum point
MASK_COSMIC = 2       # pixel rejected as a cosmic ray
MASK_OFFCHIP = 4      # window partly off the detector
MASK_NOPROFILE = 8    # no profile (flat empty there)


@dataclass
class Profile:
    """Cross-dispersion profile of every trace, sampled on its stamp pixels.

    ``rows`` (n, 2k+1, nx) int32 (-1 off the detector); ``profile`` (n, 2k+1, nx) float32, unit sum
    per column (zero where the flat had no signal); ``order``, ``fiber`` (n,) labels copied from the
    traces; ``k`` the half height in pixels."""

    rows: np.ndarray
    profile: np.ndarray
    order: np.ndarray
    fiber: np.ndarray
    k: int

    @property
    def nx(self) -> int:
        return self.rows.shape[2]


def half_height(traces: TraceSet, fraction: float = 0.45, max_k: int = 10, fibers=None) -> int:
    """Stamp half height: ``fraction`` of the smallest separation between neighbouring traces (of
    the fibers lit together, ``fibers``; all by default) at the centre column, so that stamps of
    lit fibers do not overlap; at most ``max_k`` pixels."""
    sel = np.ones(len(traces), bool) if fibers is None else np.isin(traces.fiber, list(fibers))
    yc = np.sort(traces.y([traces.nx // 2])[sel, 0])
    sep = np.diff(yc).min() if yc.size > 1 else 2 * max_k
    return int(max(1, min(max_k, np.floor(fraction * sep))))


def stamp_rows(traces: TraceSet, k: int) -> np.ndarray:
    """Row indices of every trace's stamp: (n_traces, 2k+1, nx), -1 where off the detector or
    outside the trace's measured column range."""
    y = traces.y()                                         # (n, nx)
    base = np.round(y).astype(np.int64)
    rows = base[:, None, :] + np.arange(-k, k + 1)[None, :, None]
    off = (rows < 0) | (rows >= traces.ny)
    xs = np.arange(traces.nx)[None, None, :]
    outside = (xs < traces.x_min[:, None, None]) | (xs > traces.x_max[:, None, None])
    rows = np.where(off | outside, -1, rows)
    return rows.astype(np.int32)


def cut(image, rows) -> np.ndarray:
    """Sample ``image`` on stamp rows: (n, 2k+1, nx) float32, NaN where ``rows`` is -1."""
    image = np.asarray(image)
    _n, _h, nx = rows.shape
    cols = np.broadcast_to(np.arange(nx), rows.shape)
    vals = image[np.clip(rows, 0, image.shape[0] - 1), cols].astype(np.float32)
    vals[rows < 0] = np.nan
    return vals


def lit_in(flat, traces: TraceSet, threshold: float = 0.1) -> list[int]:
    """The fibers a flat lights: those whose median flux along their traces (central half of the
    detector) exceeds ``threshold`` times that of the brightest fiber."""
    flat = np.asarray(flat, dtype=np.float32)
    nx = traces.nx
    x = np.arange(nx // 4, 3 * nx // 4, max(1, nx // 256))
    y = np.round(traces.y(x)).astype(int)
    ok = (y >= 0) & (y < flat.shape[0])
    vals = np.where(ok, flat[np.clip(y, 0, flat.shape[0] - 1), x[None, :]], np.nan)
    med = {}
    for f in np.unique(traces.fiber):
        v = vals[traces.fiber == f]
        med[int(f)] = float(np.nanmedian(v)) if np.isfinite(v).any() else 0.0
    top = max(med.values()) if med else 0.0
    return sorted(f for f, v in med.items() if top > 0 and v > threshold * top)


def profile_from_flat(flat, traces: TraceSet, k: int | None = None, fibers=None) -> Profile:
    """Spatial profile from a lamp flat (banzai-nres ``ProfileFitter``): the flat's pixels in every
    stamp, negative values set to zero, normalised to unit sum in each column. With the pixel
    response in the profile, the extraction divides it out (Horne's flat-relative profile).

    Only the traces of the fibers the flat lights are kept (``fibers``; by default found with
    ``lit_in``), and the stamp half height ``k`` (default ``half_height`` of those fibers) keeps
    their stamps apart: where orders crowd (the red end of NRES), an unlit fiber of the next order
    may lie inside a stamp, which is harmless as long as it is unlit in the frames extracted with
    this profile (the runbook's fiber states). Returns a Profile."""
    flat = np.asarray(flat, dtype=np.float32)
    if flat.shape != (traces.ny, traces.nx):
        raise ValueError(f"flat {flat.shape} does not match the traces {(traces.ny, traces.nx)}")
    fibers = lit_in(flat, traces) if fibers is None else sorted(int(f) for f in fibers)
    traces = traces.select(np.isin(traces.fiber, fibers))
    if len(traces) == 0:
        raise ValueError("the flat lights none of the traced fibers")
    k = half_height(traces) if k is None else int(k)
    rows = stamp_rows(traces, k)
    vals = cut(flat, rows)
    vals = np.where(np.isfinite(vals), np.clip(vals, 0, None), 0.0)
    norm = vals.sum(axis=1, keepdims=True)
    prof = np.where(norm > 0, vals / np.where(norm > 0, norm, 1), 0.0).astype(np.float32)
    return Profile(rows, prof, traces.order.copy(), traces.fiber.copy(), k)


def blaze_from_flat(flat, profile: Profile, variance=None, normalise: str = "p95", window: int = 101):
    """Blaze function of every trace: the flat's flux summed over each stamp column (a box extraction
    of the flat), smoothed by a running median of ``window`` columns (banzai-nres ``BlazeMaker``),
    divided by its 95th percentile so that the peak of each order is ~1 (``normalise`` "p95";
    "none" keeps the flat's counts). ``variance``: the flat's variance image (default: its counts,
    Poisson in electrons).  Returns ``(blaze, blaze_error)``, arrays (n_traces, nx); zero where the
    stamp is off the detector.

    The blaze is smooth; the flat's column sums are not: their shot noise (0.15 % per column in
    the red of the simulated NRES flats, 1-3 % in the blue, where the tungsten lamp is faint)
    divided into every spectrum of the night would be a pattern fixed to the pixels, the same in
    each exposure and in a ZERO coadded from them, and the CCF of an exposure against that ZERO
    locks onto it: it pulled the template star's exposures toward the velocity of the ZERO's own
    (a trend of 10 m/s over five exposures 20 m/s of barycentric motion apart, in the full-size
    night of benchmarks/bench_nres.py; tests/nres/test_science_extract.py).  The pixel response within a column stays in the profile (Horne's
    flat-relative profile); the error of the smoothed blaze is the median's, sqrt(pi/2) times the
    column error over sqrt(window)."""
    flat = np.asarray(flat, dtype=np.float32)
    vals = cut(flat, profile.rows)
    var = cut(np.abs(flat) if variance is None else variance, profile.rows)
    good = np.isfinite(vals)
    flux = np.where(good, vals, 0).sum(axis=1).astype(np.float64)
    err = np.sqrt(np.where(good, var, 0).sum(axis=1)).astype(np.float64)
    full = good.all(axis=1)
    for i in range(len(flux)):
        cols = np.flatnonzero(full[i])
        if cols.size:
            inside = slice(cols[0], cols[-1] + 1)
            w = min(window, cols[-1] - cols[0] + 1)
            flux[i, inside] = running_median(np.interp(np.arange(cols[0], cols[-1] + 1), cols, flux[i, cols]), w)
            err[i, inside] = running_median(np.interp(np.arange(cols[0], cols[-1] + 1), cols, err[i, cols]), w) \
                * np.sqrt(np.pi / 2 / w)
    flux = np.where(full, flux, 0.0)
    err = np.where(full, err, 0.0)
    if normalise == "p95":
        for i in range(len(flux)):
            pos = flux[i][flux[i] > 0]
            s = np.percentile(pos, 95) if pos.size else 1.0
            flux[i] /= s
            err[i] /= s
    return flux, err


def variance_image(image, read_noise: float, gain: float = 1.0):
    """Per-pixel variance of a bias-subtracted frame in electrons: read noise squared plus the
    Poisson variance of the positive counts (``image`` in e-; ``gain`` only converts a frame in ADU:
    var_ADU = RN_e^2/g^2 + max(D,0)/g)."""
    image = np.asarray(image, dtype=np.float32)
    if gain == 1.0:
        return (read_noise ** 2 + np.clip(image, 0, None)).astype(np.float32)
    return (read_noise ** 2 / gain ** 2 + np.clip(image, 0, None) / gain).astype(np.float32)


def optimal_extract(image, variance, profile: Profile, mask=None, read_noise: float | None = None,
                    gain: float = 1.0, cosmic_sigma: float = 5.0, max_iter: int = 10,
                    traces=None):
    """Optimal extraction (Horne 1986): per column, ``f = sum(M P D / V) / sum(M P^2 / V)`` with
    variance ``sum(M P) / sum(M P^2 / V)``; iterated with the model variance
    ``V = RN^2 + max(f P, 0) / gain`` (when ``read_noise`` is given) and rejection of the single worst
    pixel per column while ``(D - f P)^2 > cosmic_sigma^2 V`` (Horne's cosmic-ray step).

    ``image``: bias/dark-subtracted frame; ``variance``: its variance image (``variance_image``);
    ``mask``: nonzero = bad pixel (excluded); ``traces``: optional subset (indices) of the profile's
    traces. Returns a dict of arrays (n_traces, nx): ``flux``, ``variance``, ``mask`` (bit flags:
    1 bad, 2 cosmic ray rejected, 4 off chip, 8 no profile), ``n_rejected`` (pixels rejected as
    cosmic rays per trace), plus ``order`` and ``fiber``.
    """
    sel = np.arange(len(profile.rows)) if traces is None else np.asarray(traces)
    rows = profile.rows[sel]
    P = profile.profile[sel].astype(np.float64)
    D = cut(image, rows).astype(np.float64)
    V = cut(variance, rows).astype(np.float64)
    good = np.isfinite(D) & np.isfinite(V) & (V > 0) & (rows >= 0)
    if mask is not None:
        good &= cut(mask, rows) == 0
    offchip = (rows < 0).any(axis=1)
    D = np.where(good, D, 0.0)
    V = np.where(good, V, 1.0)
    M = good.copy()
    cosmic = np.zeros_like(M)
    for it in range(max_iter):
        w = np.where(M, P / V, 0.0)
        den = (w * P).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            f = np.where(den > 0, (w * D).sum(axis=1) / np.where(den > 0, den, 1), 0.0)
        if read_noise is not None:
            model = f[:, None, :] * P
            V = np.where(good, read_noise ** 2 / gain ** 2 + np.clip(model, 0, None) / gain, 1.0)
        if cosmic_sigma is None or cosmic_sigma <= 0:
            if read_noise is None or it >= 2:
                break
            continue
        resid2 = np.where(M, (D - f[:, None, :] * P) ** 2 / V, 0.0)
        worst = resid2.argmax(axis=1)
        wv = np.take_along_axis(resid2, worst[:, None, :], axis=1)[:, 0, :]
        hit = wv > cosmic_sigma ** 2
        # keep at least 3 pixels in a column
        hit &= M.sum(axis=1) > 3
        if not hit.any():
            if read_noise is None or it >= 2:
                break
            continue
        ti, xi = np.nonzero(hit)
        M[ti, worst[ti, xi], xi] = False
        cosmic[ti, worst[ti, xi], xi] = True
    w = np.where(M, P / V, 0.0)
    den = (w * P).sum(axis=1)
    num_p = np.where(M, P, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        flux = np.where(den > 0, (w * D).sum(axis=1) / np.where(den > 0, den, 1), 0.0)
        var = np.where(den > 0, num_p / np.where(den > 0, den, 1), 0.0)
    m = np.zeros(flux.shape, np.uint8)
    m[offchip] |= MASK_OFFCHIP
    noprof = P.sum(axis=1) <= 0
    m[noprof] |= MASK_NOPROFILE
    # a column whose usable profile fraction is small is unreliable
    m[(num_p < 0.5) & ~noprof] |= MASK_BAD
    m[cosmic.any(axis=1)] |= MASK_COSMIC
    flux = np.where(m & (MASK_OFFCHIP | MASK_NOPROFILE), 0.0, flux)
    var = np.where(m & (MASK_OFFCHIP | MASK_NOPROFILE), 0.0, var)
    return {"flux": flux, "variance": var, "mask": m, "n_rejected": cosmic.sum(axis=(1, 2)),
            "order": profile.order[sel].copy(), "fiber": profile.fiber[sel].copy()}


def box_extract(image, variance, profile: Profile, mask=None, traces=None):
    """Box extraction (the fallback): the sum of the stamp pixels per column; masked pixels are
    replaced by the profile-scaled estimate of the others (so a bad pixel does not bias the sum).
    Returns the same dict as ``optimal_extract`` (no cosmic-ray rejection)."""
    sel = np.arange(len(profile.rows)) if traces is None else np.asarray(traces)
    rows = profile.rows[sel]
    P = profile.profile[sel].astype(np.float64)
    D = cut(image, rows).astype(np.float64)
    V = cut(variance, rows).astype(np.float64)
    good = np.isfinite(D) & np.isfinite(V) & (rows >= 0)
    if mask is not None:
        good &= cut(mask, rows) == 0
    pgood = np.where(good, P, 0.0).sum(axis=1)
    s = np.where(good, D, 0.0).sum(axis=1)
    v = np.where(good, V, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = np.where(pgood > 0, 1.0 / pgood, 0.0)
    full = pgood > 0.999
    flux = np.where(full, s, s * scale)
    var = np.where(full, v, v * scale ** 2)
    m = np.zeros(flux.shape, np.uint8)
    m[(rows < 0).any(axis=1)] |= MASK_OFFCHIP
    m[(~good).any(axis=1) & (rows >= 0).all(axis=1)] |= MASK_BAD
    m[P.sum(axis=1) <= 0] |= MASK_NOPROFILE
    flux = np.where(m & (MASK_OFFCHIP | MASK_NOPROFILE), 0.0, flux)
    var = np.where(m & (MASK_OFFCHIP | MASK_NOPROFILE), 0.0, var)
    return {"flux": flux, "variance": var, "mask": m, "n_rejected": np.zeros(len(sel), int),
            "order": profile.order[sel].copy(), "fiber": profile.fiber[sel].copy()}
