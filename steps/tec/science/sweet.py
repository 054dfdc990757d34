"""SWEET test (Kepler Robovetter's sine-wave event evaluation), TEC runbook step 13.

Original: ``sweet_test.py``.  For a TCE with P < 5 d, the PDC flux (valid cadences) is divided
by a 4th-order polynomial in time (transits not masked) and centred on zero; a sinusoid
``A sin(2 pi (t - t0) / P') + c`` is fitted at P' = P, P/2 and 2P, and the robust scatter
(MAD) of the residuals is compared with the scatter before the fit.  A ratio well below 1 means
a sinusoid explains the light curve: the "transit" is stellar variability.  The ranking flags
``min(after / before) < 0.8``.

Differences from the original, on purpose:

* At a fixed period the sinusoid is linear in (A cos, A sin, c), so the least-squares fit is
  solved exactly instead of by Nelder-Mead from 6 starts; the original's bounds are kept
  (0 <= A <= 20 MAD, |c| <= 2 MAD): when the unbounded amplitude or offset falls outside, it is
  clipped and the other parameters refitted.  The original let P' float by +-0.1 d in its
  bounds but held it fixed in the fit; it is fixed here too.
* The scatter is the Gaussian-normalised MAD (statsmodels ``robust.mad``), as in the original.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from astroflow.filters import mad_std as robust_std

MAX_PERIOD_D = 5.0          # only TCEs with P < 5 d are tested
POLY_ORDER = 4
SWEET_FLAG_RATIO = 0.8      # ranking: flagged when min(after / before) < 0.8
PERIOD_FACTORS = (1.0, 0.5, 2.0)


@dataclass(frozen=True)
class SineFit:
    period: float
    t0: float          # days from the median time (the original's time zero point)
    amplitude: float   # relative flux
    offset: float      # relative flux
    mad_after: float


@dataclass(frozen=True)
class SweetResult:
    mad_before: float
    fits: tuple[SineFit, ...]   # at P, P/2, 2P

    @property
    def ratios(self) -> tuple[float, ...]:
        return tuple(f.mad_after / self.mad_before if self.mad_before > 0 else float("nan") for f in self.fits)

    @property
    def ratio(self) -> float:
        """min(after / before) over the three periods: the quantity the ranking thresholds."""
        r = np.asarray(self.ratios, dtype=float)
        return float(np.nanmin(r)) if np.isfinite(r).any() else float("nan")

    def as_dict(self) -> dict:
        out = {"mad_before": self.mad_before, "sweet_ratio": self.ratio}
        for tag, f, r in zip(("per", "half", "double"), self.fits, self.ratios):
            out.update({f"{tag}_period": f.period, f"{tag}_t0": f.t0, f"{tag}_amp": f.amplitude,
                        f"{tag}_offset": f.offset, f"{tag}_mad": f.mad_after, f"{tag}_ratio": r})
        return out


def normalise(time, flux, order: int = POLY_ORDER) -> np.ndarray:
    """Flux divided by its best polynomial in time, minus one (transits not masked)."""
    t = np.asarray(time, dtype=float)
    y = np.asarray(flux, dtype=float)
    x = t - np.median(t)  # centred for a well-conditioned fit; the polynomial is the same
    trend = np.polyval(np.polyfit(x, y, order), x)
    return y / trend - 1.0


def fit_sine(t, y, period: float, amp_max: float, offset_max: float) -> tuple[float, float, float, np.ndarray]:
    """Least-squares ``A sin(2 pi (t - t0)/P) + c`` within the bounds; returns (A, t0, c, model)."""
    w = 2.0 * np.pi / period
    s, c = np.sin(w * t), np.cos(w * t)
    design = np.column_stack([s, c, np.ones_like(t)])
    (a, b, off), *_ = np.linalg.lstsq(design, y, rcond=None)
    amp, phase = float(np.hypot(a, b)), float(np.arctan2(b, a))  # a s + b c = A sin(wt + phase)
    if amp > amp_max or abs(off) > offset_max:
        amp = min(amp, amp_max)
        shape = np.sin(w * t + phase)
        off = float(np.clip(np.mean(y - amp * shape), -offset_max, offset_max))
    else:
        off = float(off)
    model = amp * np.sin(w * t + phase) + off
    t0 = float(np.mod(-phase / w, period))
    return amp, t0, off, model


def sweet_test(time, flux, period: float) -> SweetResult:
    """Run the SWEET fits on the valid (finite) points of ``flux`` (PDC flux, any scale).

    Raises ValueError when fewer than 20 finite points remain or the period is not positive.
    """
    time = np.asarray(time, dtype=float)
    flux = np.asarray(flux, dtype=float)
    good = np.isfinite(time) & np.isfinite(flux)
    if good.sum() < 20:
        raise ValueError(f"SWEET needs at least 20 valid points, got {int(good.sum())}")
    if not (period > 0):
        raise ValueError(f"SWEET needs a positive period, got {period}")
    t = time[good]
    y = normalise(t, flux[good])
    before = robust_std(y)
    t = t - np.median(t)
    fits = []
    for factor in PERIOD_FACTORS:
        p = period * factor
        amp, t0, off, model = fit_sine(t, y, p, 20.0 * before, 2.0 * before)
        fits.append(SineFit(p, t0, amp, off, robust_std(y - model)))
    return SweetResult(before, tuple(fits))


def sweet_flag(ratio, threshold: float = SWEET_FLAG_RATIO):
    """Ranking rule (step 19): the SWEET fail, ``ratio < 0.8`` (NaN, i.e. not tested, is no fail)."""
    return np.asarray(ratio, dtype=float) < threshold
