"""The CHINJ01 science: the charge injected against IG1, its threshold, slope and notch.  Pure
functions over NumPy arrays (quadrants in canonical orientation, offset subtracted).

* :func:`injected_rows`: which image rows a frame injects, from the pattern ELVIS commands
  (``CHINJ_ON`` rows on, ``CHINJ_OF`` rows off, repeated from the CCD's first line; vison's
  ``extract_injection_lines`` with its ``lineoffset`` 0: the line of image row ``i`` is
  ``VSTART + i``).
* :func:`injection_level`: vison's injection statistics of one quadrant: the injected rows'
  level minus the non-injected rows' (vison's ``suboffmean``), here as 4-sigma-clipped means
  (:func:`steps.vison.science.bias.clipped_stats`) rather than medians: counts are integers and
  the median of a level within a few ADU of the background (IG1 just past the threshold) is
  quantised to 0.5 ADU; with its standard error and the injection noise (the injected pixels'
  std, vison's ``chinjnoise``).
* :func:`fit_injection`: the injection against IG1, the model ``b + N clip((V - t) / w, 0, 1)``:
  nothing below the threshold ``t``, a linear rise of slope ``N / w`` to the notch ``N`` (the
  level the injection keeps at higher IG1, vison's ``N``).  vison's ``fit_Inj_vs_IG1`` (submodel
  ``ReLU``) fits the same three quantities with a sigmoid step at the threshold (``K`` = 15 per
  V, ``BGD`` fixed) by ``curve_fit`` from one start; a sigmoid cannot follow a rise sampled by
  one to four 0.25 V steps, and the injection is measured to ~0.5 ADU in a rise of 4e3 ADU/V, so
  here the hinge is fitted exactly.  Every split of the IG1 values into none, rise (two values
  or more, each ``SIGNIFICANT`` errors from the background and from the notch) and notch is a
  linear least-squares problem in (b, s, -s t, N), weighted by the points' errors; the split
  with the least chi-square whose threshold and top fall where it says is the fit, the
  threshold's error from its covariance (scaled by sqrt(chi2 / dof) where the model is short of
  the data).  Where the rise holds one IG1 value or none the data allow any threshold between
  the last value without injection and the first of the rise (with one point, as far down as
  the next value's notch allows): the centre of that interval is given, its half-width as the
  error, and without a point on the rise no slope.  Measured on the simulated CHINJ01 (12
  quadrants x 2 drain delays): 22 of 24 fits with two or more points on the rise give the
  threshold to 2e-4 V; the 2 with one point to 0.105 V (error given 0.115 V).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from steps.vison.science.bias import clipped_stats


REACH_V = 0.5  # V, how far beyond the IG1 range the threshold and the top may lie
MIN_POINTS = 4  # vison's fit_Inj_vs_IG1 needs 4 points
SIGNIFICANT = 5.0  # an injection (notch) below this many standard errors is "no injection"


def injected_rows(n_rows: int, on: int, off: int, vstart: int = 0) -> np.ndarray:
    """Boolean (n_rows,): the image rows holding injected charge."""
    if on <= 0:
        return np.zeros(n_rows, dtype=bool)
    period = on + max(off, 0)
    return ((np.arange(n_rows) + vstart) % period) < on


def injection_level(image: np.ndarray, rows: np.ndarray) -> dict:
    """The injection of one quadrant's prepared image area (ADU, NaN where lost or saturated)
    injected on ``rows``: ``injection_adu`` (injected minus non-injected level; the injected
    level alone where every row is injected), its error, ``noise_adu``, both levels and the
    pixel counts."""
    on, off = image[rows], image[~rows]
    level, noise = clipped_stats(on)
    n_on = int(np.count_nonzero(np.isfinite(on)))
    if off.size:
        bgd, bgd_std = clipped_stats(off)
        n_off = int(np.count_nonzero(np.isfinite(off)))
    else:
        bgd, bgd_std, n_off = 0.0, 0.0, 0
    err2 = (noise**2 / max(n_on, 1)) + (bgd_std**2 / n_off if n_off else 0.0)
    return {"injection_adu": level - bgd, "injection_err_adu": float(np.sqrt(err2)),
            "noise_adu": noise, "level_on_adu": level, "level_off_adu": bgd if n_off else float("nan"),
            "n_on": n_on, "n_off": n_off}


@dataclass
class InjectionFit:
    threshold_v: float = float("nan")
    threshold_err_v: float = float("nan")
    slope_adu_per_v: float = float("nan")
    notch_adu: float = float("nan")
    background_adu: float = float("nan")
    top_v: float = float("nan")  # where the rise reaches the notch
    n_points: int = 0
    n_rise: int = 0  # points strictly between the threshold and the top
    chi2_dof: float = float("nan")
    problems: list[str] = field(default_factory=list)


def _exact(v: np.ndarray, y: np.ndarray, w: np.ndarray, lo: float) -> list[dict]:
    """The hinge fitted exactly for every split of the IG1 values into none, rise (two values or
    more) and notch: ``y = b`` below, ``b + s (V - t)`` on the rise, ``b + N`` above, linear in
    (b, s, -s t, N); the splits whose threshold and top fall where the split says."""
    u = np.unique(v)
    k = np.searchsorted(u, v)
    m, out = u.size, []
    for i0 in range(-1, m - 2):
        for i1 in range(i0 + 3, m + 1):
            zero, plat = k <= i0, k >= i1
            rise = ~zero & ~plat
            cols = [np.ones_like(v)] if zero.any() else []  # no IG1 without injection: b = 0
            cols += [np.where(rise, v, 0.0), rise.astype(float)] + ([plat.astype(float)] if plat.any() else [])
            a = np.column_stack(cols)
            aw = a * np.sqrt(w)[:, None]
            try:
                cov = np.linalg.inv(aw.T @ aw)
            except np.linalg.LinAlgError:
                continue
            p = cov @ (aw.T @ (y * np.sqrt(w)))
            j = 1 if zero.any() else 0
            b, slope, c = (p[0] if j else 0.0), p[j], p[j + 1]
            notch = p[j + 2] if plat.any() else float("nan")
            if not slope > 0:
                continue
            t = -c / slope
            top = t + notch / slope if plat.any() else float("nan")
            if (i0 >= 0 and not u[i0] <= t <= u[i0 + 1]) or (i0 < 0 and not lo - REACH_V <= t <= u[0]):
                continue
            if plat.any() and not u[i1 - 1] <= top <= u[i1]:
                continue
            # var(t) of t = -c / s
            ci, si = j + 1, j
            var_t = (cov[ci, ci] + t * t * cov[si, si] + 2 * t * cov[ci, si]) / slope**2
            out.append({"chi2": float(((y - a @ p) ** 2 * w).sum()), "t": float(t), "top": float(top), "b": float(b),
                        "notch": float(notch), "slope": float(slope), "var_t": float(var_t)})
    return out


def _significant(fit: dict, v: np.ndarray, y: np.ndarray, e: np.ndarray) -> bool:
    """Whether every point on the fit's rise stands apart from the background and from the
    notch: otherwise the rise holds fewer points than it seems and the split is degenerate."""
    rise = (v > fit["t"]) & (~np.isfinite(fit["top"]) | (v < fit["top"]))
    above = y[rise] - fit["b"] > SIGNIFICANT * e[rise]
    below = ~np.isfinite(fit["notch"]) | (fit["b"] + fit["notch"] - y[rise] > SIGNIFICANT * e[rise])
    return bool(np.unique(v[rise]).size >= 2 and np.all(above & below))


def _bracket(v: np.ndarray, y: np.ndarray, e: np.ndarray) -> dict | None:
    """The threshold where the rise holds one IG1 value or none: the levels without injection
    and at the notch from the points within ``SIGNIFICANT`` errors of the lowest and highest
    level, and the thresholds the data allow (module docstring)."""
    w = 1.0 / e**2
    zero = y <= y.min() + SIGNIFICANT * e
    plat = y >= y.max() - SIGNIFICANT * e
    rise = ~zero & ~plat
    if not zero.any() or not plat.any() or np.unique(v[rise]).size > 1:
        return None
    b = float(np.sum(w[zero] * y[zero]) / w[zero].sum())
    notch = float(np.sum(w[plat] * y[plat]) / w[plat].sum()) - b
    v_zero, v_plat = float(v[zero].max()), float(v[plat].min())
    if not v_zero < v_plat:
        return None
    if rise.any():
        v_r = float(v[rise][0])
        f = float(np.sum(w[rise] * y[rise]) / w[rise].sum() - b) / notch
        t_lo, t_hi = max(v_zero, (v_r - f * v_plat) / (1 - f)), v_r
        t = (t_lo + t_hi) / 2
        slope, top = f * notch / (v_r - t), t + (v_r - t) / f
    else:  # a jump: any rise between the two IG1 values
        t_lo, t_hi = v_zero, v_plat
        t, slope, top = (t_lo + t_hi) / 2, float("nan"), float("nan")
    model = np.where(zero, b, np.where(plat, b + notch, y))
    return {"chi2": float(((y - model) ** 2 * w).sum()), "t": t, "t_err": (t_hi - t_lo) / 2, "top": top, "b": b,
            "notch": notch, "slope": slope}


def fit_injection(ig1_v, injection_adu, err_adu) -> InjectionFit:
    """Threshold, slope and notch of the injection against IG1 (module docstring)."""
    v, y, e = (np.asarray(a, dtype=np.float64) for a in (ig1_v, injection_adu, err_adu))
    good = np.isfinite(v) & np.isfinite(y) & np.isfinite(e) & (e > 0)
    order = np.argsort(v[good], kind="stable")
    v, y, e = v[good][order], y[good][order], e[good][order]
    fit = InjectionFit(n_points=int(v.size))
    if np.unique(v).size < MIN_POINTS:
        fit.problems.append(f"{np.unique(v).size} IG1 values with a measured injection, fewer than {MIN_POINTS}")
        return fit
    w = 1.0 / e**2
    lo, hi = float(v.min()), float(v.max())
    if not float(y.max() - y.min()) > SIGNIFICANT * float(np.median(e)):
        fit.problems.append(f"no injection above the background (levels {y.min():.3g} to {y.max():.3g} ADU)")
        return fit
    dof = max(v.size - 4, 1)
    exact = min((x for x in _exact(v, y, w, lo) if _significant(x, v, y, e)), key=lambda x: x["chi2"], default=None)
    if exact is not None:  # the rise holds two IG1 values or more
        scale = max(exact["chi2"] / dof, 1.0)
        fit.threshold_v, fit.threshold_err_v = exact["t"], float(np.sqrt(max(exact["var_t"], 0.0) * scale))
        best, t_lo = exact, exact["t"]
    else:  # one IG1 value on the rise or none: the threshold is where the data allow it
        best = _bracket(v, y, e)
        if best is None:
            fit.problems.append("no hinge (none, a rise, the notch) fits the injection against IG1")
            return fit
        fit.threshold_v, fit.threshold_err_v = best["t"], best["t_err"]
        t_lo = best["t"] - best["t_err"]
        fit.problems += [] if np.isfinite(best["slope"]) else ["the rise is not sampled: no slope"]
    fit.chi2_dof = best["chi2"] / dof
    fit.background_adu, fit.notch_adu, fit.top_v = best["b"], best["notch"], best["top"]
    fit.slope_adu_per_v = best["slope"]
    fit.n_rise = int(np.count_nonzero((v > fit.threshold_v) & (~np.isfinite(fit.top_v) | (v < fit.top_v))))
    if t_lo <= lo:
        fit.problems.append(f"the threshold is not bracketed: injection already at the lowest IG1 ({lo:g} V)")
    if not fit.top_v <= hi:
        fit.problems.append(f"the notch is not reached by the highest IG1 ({hi:g} V)")
    return fit
