"""The PTC0X science: pair variances, the photon transfer curve's fit, the gain, the full well.
Pure functions over NumPy arrays (prepared quadrants: ADU above the offset, NaN where lost or
saturated).

* :func:`tiles`: vison's 300 x 300-pixel windows over a quadrant's image area (``get_tile_coos``);
  an axis shorter than a tile is one tile.
* :func:`pair_points`: for one pair of flats at the same fluence, per tile, the signal (the first
  frame's median, vison's ``get_tiles_stats(..., 'median')``) and the variance ``std(diff)^2 / 2``
  (the offsets cancel in the difference, and so does the pixel response non-uniformity); pixels
  beyond 5 sigma of the difference (cosmics, hot pixels) are left out, the std corrected for that
  truncation.
* :func:`prescan_variance`: the read-noise variance of a pair, the same estimator on the prescans.
* :func:`fit_ptc`: the variance against the signal between 1e3 and 4e4 ADU (vison's ``fitPTC``
  ``flulims``), a quadratic ``var = a0 + a1 S + a2 S^2`` fitted by weighted least squares (each
  point's error is proportional to its variance: weights ``1/var^2``) with points beyond 5 robust
  sigma of the fit rejected and the fit repeated (vison: RANSAC, then a 5-sigma cut and
  ``np.polyfit``).  The gain is ``1/a1`` e-/ADU, its error ``sigma(a1) / a1^2``; the fit is
  BADFIT when the gain's relative error exceeds 1e-3 (vison's POORFIT), when fewer points than
  four remain or when ``a1 <= 0``.  By default the constant is not free but the read-noise variance
  the same pairs show in their serial prescan (``ron2``): with a free constant, the linear
  term trades with it and with the curvature, and a cubic non-linearity (the CCD273's, the
  simulator's: up to -0.6 % at 4e4 ADU) biases the gain by up to -0.9 % (-0.4 % with the
  constant fixed) and doubles its scatter; ``constant="free"`` is vison's.
* :func:`full_well`: the signal where the PTC turns over: the median (saturated pixels counted)
  of the brightest fluence whose pair variance has collapsed below half the fit's prediction, or
  none (the full well not reached: NONSATURATION).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from astropy.stats import mad_std

from steps.vison.science.bias import LOST, SATURATED, histogram_stats, clipped_stats

TILE = 300
FIT_LIMITS_ADU = (1.0e3, 4.0e4)
CLIP_SIGMA = 5.0
MAX_GAIN_RELATIVE_ERROR = 1.0e-3
COLLAPSE = 0.5  # a variance below this fraction of the fit's prediction: past the full well


def tiles(shape: tuple[int, int], size: int = TILE) -> list[tuple[slice, slice]]:
    """(rows, columns) of the tiles over an image area of ``shape``; edge remnants join the last tile."""
    def edges(n: int) -> list[int]:
        k = max(1, n // size)
        return [i * size for i in range(k)] + [n]
    ey, ex = edges(shape[0]), edges(shape[1])
    return [(slice(y0, y1), slice(x0, x1)) for y0, y1 in zip(ey[:-1], ey[1:]) for x0, x1 in zip(ex[:-1], ex[1:])]


def pair_points(first: np.ndarray, second: np.ndarray, size: int = TILE) -> list[dict]:
    """Signal and variance per tile of a pair of prepared images (see the module docstring)."""
    if first.shape != second.shape:
        raise ValueError(f"the pair's images differ in shape: {first.shape} and {second.shape}")
    out = []
    diff = first - second
    for i, (rows, cols) in enumerate(tiles(first.shape, size)):
        a, d = first[rows, cols], diff[rows, cols]
        good = np.isfinite(d)
        n = int(good.sum())
        if n < 16:
            continue
        _, std = clipped_stats(d[good], sigma=CLIP_SIGMA)
        out.append({"tile": i, "signal_adu": float(np.nanmedian(a)), "variance_adu2": std**2 / 2.0, "n_pixels": n})
    return out


def prescan_variance(first: np.ndarray, second: np.ndarray) -> float:
    """The read-noise variance a pair shows in its prepared (trimmed) serial prescans:
    ``std(difference)^2 / 2``, 5-sigma clipped as the image's tiles are."""
    d = (first - second).ravel()
    d = d[np.isfinite(d)]
    return clipped_stats(d, sigma=CLIP_SIGMA)[1] ** 2 / 2.0 if d.size >= 16 else float("nan")


@dataclass
class PTCFit:
    coeffs: tuple[float, float, float]  # a0, a1, a2 (var = a0 + a1 S + a2 S^2)
    errors: tuple[float, float, float]
    gain: float  # e- per ADU
    gain_err: float
    n_points: int  # in the fit range
    n_used: int  # after the robust rejection
    problems: list[str] = field(default_factory=list)  # why the fit is BADFIT (none: good)

    @property
    def relative_error(self) -> float:
        return self.gain_err / self.gain if np.isfinite(self.gain) and self.gain > 0 else float("inf")

    def variance(self, signal) -> np.ndarray:
        a0, a1, a2 = self.coeffs
        s = np.asarray(signal, dtype=np.float64)
        return a0 + a1 * s + a2 * s * s


def _wls(x: np.ndarray, y: np.ndarray, w: np.ndarray, ron2: float | None):
    """Weighted least squares of y = a0 + a1 x + a2 x^2 (a0 = ron2 when given): coefficients,
    their covariance (scaled by the reduced chi^2), the normalised residuals."""
    if ron2 is None:
        design = np.column_stack([np.ones_like(x), x, x * x])
        target = y
    else:
        design = np.column_stack([x, x * x])
        target = y - ron2
    sw = np.sqrt(w)
    a, _, rank, _ = np.linalg.lstsq(design * sw[:, None], target * sw, rcond=None)
    if rank < design.shape[1]:
        raise np.linalg.LinAlgError(f"the PTC fit is singular (rank {rank} of {design.shape[1]})")
    resid = (target - design @ a) * sw
    dof = max(len(x) - design.shape[1], 1)
    cov = np.linalg.inv((design * w[:, None]).T @ design) * float(resid @ resid / dof)
    if ron2 is not None:
        a = np.concatenate([[ron2], a])
        full = np.zeros((3, 3))
        full[1:, 1:] = cov
        cov = full
    return a, cov, resid


def fit_ptc(signal, variance, ron2: float | None = None, limits: tuple[float, float] = FIT_LIMITS_ADU,
            sigma: float = CLIP_SIGMA, max_relative_error: float = MAX_GAIN_RELATIVE_ERROR,
            iterations: int = 10) -> PTCFit:
    """The PTC's quadratic fit and the gain (see the module docstring); never raises on bad data:
    a fit that cannot be made is returned with NaNs and its problems."""
    s = np.asarray(signal, dtype=np.float64)
    v = np.asarray(variance, dtype=np.float64)
    sel = np.isfinite(s) & np.isfinite(v) & (s >= limits[0]) & (s <= limits[1]) & (v > 0)
    x, y = s[sel], v[sel]
    nan3 = (float("nan"),) * 3
    n_params = 3 if ron2 is None else 2
    if x.size < n_params + 2:
        return PTCFit(nan3, nan3, float("nan"), float("nan"), int(x.size), int(x.size),
                      [f"{x.size} PTC points within {limits[0]:.0f}-{limits[1]:.0f} ADU, fewer than {n_params + 2}"])
    keep = np.ones(x.size, bool)
    try:
        a, cov, _ = _wls(x, y, np.ones(x.size), ron2)  # the start: unweighted
        for _ in range(iterations):
            pred = a[0] + a[1] * x + a[2] * x * x
            a, cov, _ = _wls(x[keep], y[keep], 1.0 / np.maximum(pred[keep], 1e-9) ** 2, ron2)
            pred = a[0] + a[1] * x + a[2] * x * x
            r = (y - pred) / pred
            scale = mad_std(r[keep])
            new = np.abs(r) <= sigma * max(scale, 1e-12)
            if new.sum() < n_params + 2 or np.array_equal(new, keep):
                break
            keep = new
    except np.linalg.LinAlgError as exc:
        return PTCFit(nan3, nan3, float("nan"), float("nan"), int(x.size), int(keep.sum()), [str(exc)])
    errors = tuple(float(e) for e in np.sqrt(np.clip(np.diag(cov), 0, None)))
    a1 = float(a[1])
    problems = []
    if not a1 > errors[1]:  # zero within its error: no gain to speak of, however large 1/a1
        gain, gain_err = float("nan"), float("nan")
        problems.append(f"the PTC's linear term is {a1:.3g} ± {errors[1]:.2g} (not positive)")
    else:
        gain, gain_err = 1.0 / a1, errors[1] / a1**2
        if not gain_err / gain <= max_relative_error:
            problems.append(f"gain relative error {gain_err / gain:.2e} above {max_relative_error:.0e}")
    return PTCFit((float(a[0]), a1, float(a[2])), errors, gain, gain_err, int(x.size), int(keep.sum()), problems)


def image_level(raw: np.ndarray) -> dict:
    """The level of a quadrant's raw image area: the grouped median of its counts with saturated
    pixels counted (at 65535), lost ones (0) not; the numbers of saturated and lost pixels."""
    counts = np.bincount(np.ascontiguousarray(raw).ravel(), minlength=SATURATED + 1)
    median, _ = histogram_stats(counts[LOST + 1:], LOST + 1)
    return {"median_adu": median, "n_saturated": int(counts[SATURATED]), "n_lost": int(counts[LOST]),
            "n_pixels": int(raw.size)}


def full_well(levels: list[dict], fit: PTCFit) -> float:
    """The full well in ADU from the fluence levels (``signal_adu``: the median above the offset,
    saturated pixels counted; ``variance_adu2``: their pairs' mean; ``saturated_fraction``): the
    signal of the brightest level past the turnover, where the pair variance has collapsed below
    half the fit's prediction (the charge clipped) or most pixels sit at the ADC's 65535; NaN
    where no level is past it (the full well not reached)."""
    def past(lv: dict) -> bool:
        if lv.get("saturated_fraction", 0.0) > 0.5:
            return True
        return (np.isfinite(lv["variance_adu2"]) and bool(np.all(np.isfinite(fit.coeffs)))
                and lv["variance_adu2"] < COLLAPSE * float(fit.variance(lv["signal_adu"])))
    return max((float(lv["signal_adu"]) for lv in levels if np.isfinite(lv["signal_adu"]) and past(lv)),
               default=float("nan"))
