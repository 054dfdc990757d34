"""The TP01 science: trap-pumping dipoles, the trap catalogue, each trap's tau and capture
probability.  Pure functions over NumPy arrays (quadrants in canonical orientation, ``y`` the
image row from the readout node, offset subtracted).

* :func:`residual_map`: vison's dipole map (``gen_raw_dpmap_vtpump`` with ``Navgrows=-1``, then
  ``find_dipoles_vtpump``): the pumped image over its injection profile (each column's mean over
  the rows), minus that ratio's 21 x 21 running mean (``uniform_filter``, ``size=21``,
  ``reflect``); here times the profile again, so that the residual is in ADU.
* :class:`DipoleStack`: the dipoles of the frames pumped with one dwell (TOI_TP), added up.  A
  trap at (x, y) takes charge from its pixel and gives it to the pixel above or below
  (``cycles * pc * (exp(-t/tau) - exp(-2 t/tau))`` electrons, t the dwell: vison's
  ``f_A_vtp``).  Per pixel ``C = r(y - 1) + r(y + 1) - 2 r(y)`` (r the residual) is ``3 A`` at a
  trap whichever side the charge went to, negative on both its neighbours, and its sum over
  ``n`` frames is ``3 n A`` over a noise ``sqrt(6 n)`` pixels' (the frames are independent).
* :func:`find_traps`: a pixel is a trap where, at some dwell, the stacked ``C`` is above
  ``threshold`` (5) times its robust std over the quadrant (vison's ``contrast_thresholdfactor``,
  5 x the injection noise), the charge of the three pixels is conserved (the stacked
  ``r(y - 1) + r(y) + r(y + 1)`` within ``CONSERVED_SIGMA`` of its robust std: vison's first
  dipole finder asked the two pixels' deviations to be symmetric, ``asymmetry`` 0.2), and ``C``
  is the largest within ``GHOST_ROWS`` rows of its column.  A trap moves charge and keeps it: the
  neighbour of a hot pixel (bright on one side only) or a pixel short of charge has a large ``C``
  but not a conserved sum, and the sum is uncorrelated with ``C`` (their pixels' weights, 1, 1, 1
  and 1, -2, 1, are orthogonal), so that the condition costs the traps nothing but its own
  0.3 %.  Two rows from a trap, the pixel next to its bright partner has ``C = A`` per frame
  (vison's pattern asks the pixels beyond the dipole to be within the threshold).  Measured on
  the simulated TP01 (192 traps): with ``C`` alone 22 ghosts of strong traps and 5 neighbours of
  hot pixels were taken for traps; with both conditions 2 (a noise peak at 5.1 sigma, the
  neighbour of a hot pixel), and 1 trap of 192 is lost (a hot pixel next to it).
* :func:`fit_tau_pc`: vison's ``fit_PcTau_vtp``: ``A(t) = N Pc (exp(-t/tau) - exp(-2 t/tau))``
  over the dwells, tau within [TOI_min / 10, TOI_max x 10]; here by a grid in log tau with the
  amplitude linear at each node (weighted by the amplitudes' errors), not ``curve_fit`` from one
  start, so that no trap is lost to a fit that does not converge.

Deviations from vison, with the reason: vison finds dipoles in each frame (one mode, one dwell)
at 5 x the single frame's noise and merges the catalogues across dwells per mode; a trap of
pc 0.3 moves at most ``5000 x 0.3 / 4`` = 375 e- per pixel, below 5 x the ~115 e- shot noise
of a 1.3e4 e- injection, so that per frame about a third of the simulated traps (pc 0.3-1) would
never be seen (an estimate from those numbers, not measured here).  Here the frames of one
dwell are added before the threshold is applied (all modes and both drain delays: 8 frames,
sqrt(8) in signal to noise), which assumes that each trap is
pumped by every mode, as the simulator has it; a real trap under one phase answers to some
modes only and is diluted, not lost.  ``C`` does not say which side the charge went to (vison's
N/S orientation), so that the modes' orientations need not be known.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import maximum_filter, uniform_filter

from steps.vison.science.bias import robust_sigma


FILTER_SIZE = 21  # vison's find_dipoles_vtpump running mean
THRESHOLD = 5.0  # vison's contrast_thresholdfactor
CONSERVED_SIGMA = 3.0
GHOST_ROWS = 2  # a trap's contrast is the largest within this many rows of its column
TAU_RANGE = (0.1, 10.0)  # vison's fit_PcTau_vtp bounds: TOI_min / 10 .. TOI_max x 10
TAU_GRID = 400


def injection_profile(image: np.ndarray) -> np.ndarray:
    """(1, columns): each column's mean over the rows (NaN pixels left out)."""
    with np.errstate(all="ignore"):
        return np.nanmean(image, axis=0, keepdims=True)


def residual_map(image: np.ndarray) -> np.ndarray:
    """The dipole map of a pumped image area (ADU): the ratio to the injection profile minus
    its running mean, times the profile; NaN pixels count as the profile (ratio 1)."""
    profile = injection_profile(image)
    with np.errstate(all="ignore"):
        ratio = np.where(np.isfinite(image), image / profile, 1.0).astype(np.float32)
    ratio[~np.isfinite(ratio)] = 1.0
    return ((ratio - uniform_filter(ratio, size=FILTER_SIZE, mode="reflect")) * profile).astype(np.float32)


def contrast(residual: np.ndarray) -> np.ndarray:
    """``r(y - 1) + r(y + 1) - 2 r(y)``; NaN on the first and last rows."""
    out = np.full(residual.shape, np.nan, dtype=np.float32)
    out[1:-1] = residual[:-2] + residual[2:] - 2.0 * residual[1:-1]
    return out


@dataclass
class DipoleStack:
    """The summed contrast and residual of the frames pumped with one dwell."""

    contrast: np.ndarray
    residual: np.ndarray
    n_frames: int = 0

    @classmethod
    def empty(cls, shape: tuple[int, int]) -> DipoleStack:
        return cls(np.zeros(shape, dtype=np.float32), np.zeros(shape, dtype=np.float32))

    def add(self, image: np.ndarray) -> None:
        r = residual_map(image)
        self.contrast += contrast(r)
        self.residual += r
        self.n_frames += 1


@dataclass(frozen=True)
class Detection:
    x: int
    y: int
    amplitudes_adu: list[float]  # per dwell: the charge moved per frame, C / (3 n)
    errors_adu: list[float]
    snr: float  # the largest C over its noise


def find_traps(stacks: dict[float, DipoleStack], threshold: float = THRESHOLD,
               conserved_sigma: float = CONSERVED_SIGMA) -> tuple[list[Detection], dict[float, float]]:
    """The traps of one quadrant from its stacks (dwell -> stack) and each stack's noise of C."""
    dwells = sorted(t for t, s in stacks.items() if s.n_frames)
    noise: dict[float, float] = {}
    hits, snr = None, None
    for t in dwells:
        s = stacks[t]
        total = np.full(s.residual.shape, np.nan, dtype=np.float32)
        total[1:-1] = s.residual[:-2] + s.residual[1:-1] + s.residual[2:]
        sigma_c, sigma_t = robust_sigma(s.contrast), robust_sigma(total)
        noise[t] = sigma_c
        with np.errstate(invalid="ignore"):
            z = s.contrast / sigma_c
        z = np.where(np.isfinite(z), z, -np.inf)
        peak = z >= maximum_filter(z, size=(2 * GHOST_ROWS + 1, 1), mode="nearest")
        with np.errstate(invalid="ignore"):
            hit = (z > threshold) & (np.abs(total) < conserved_sigma * sigma_t) & peak
        hits = hit if hits is None else hits | hit
        snr = z if snr is None else np.maximum(snr, z)
    if hits is None:
        return [], noise
    out = []
    for y, x in zip(*np.nonzero(hits)):
        amps = [float(stacks[t].contrast[y, x] / (3 * stacks[t].n_frames)) for t in dwells]
        errs = [float(noise[t] / (3 * stacks[t].n_frames)) for t in dwells]
        out.append(Detection(int(x), int(y), amps, errs, float(snr[y, x])))
    return out, noise


def fit_tau_pc(dwells_us, amplitudes, errors, cycles: int) -> tuple[float, float, float]:
    """(tau in the dwells' unit, Pc: the charge captured per pump in the amplitudes' unit, the
    fit's chi2 per degree of freedom) of one trap's amplitudes over ``cycles`` pumps; NaN with
    fewer than 3 amplitudes (vison's rule)."""
    t, a, e = (np.asarray(v, dtype=np.float64) for v in (dwells_us, amplitudes, errors))
    good = np.isfinite(t) & np.isfinite(a) & np.isfinite(e) & (e > 0)
    t, a, e = t[good], a[good], e[good]
    if t.size < 3 or cycles <= 0:  # vison: fewer than 3 amplitudes, no fit
        return float("nan"), float("nan"), float("nan")
    w = 1.0 / e**2

    def scan(taus: np.ndarray) -> tuple[float, float, float]:
        x = t[None, :] / taus[:, None]
        f = np.exp(-x) - np.exp(-2.0 * x)  # (taus, dwells)
        scale = np.maximum((f * a * w).sum(axis=1) / (f * f * w).sum(axis=1), 0.0)
        chi2 = ((a[None, :] - scale[:, None] * f) ** 2 * w).sum(axis=1)
        best = int(np.argmin(chi2))
        return float(taus[best]), float(scale[best]), float(chi2[best])

    coarse = np.geomspace(t.min() * TAU_RANGE[0], t.max() * TAU_RANGE[1], TAU_GRID)
    tau, _, _ = scan(coarse)
    step = coarse[1] / coarse[0]
    tau, scale, chi2 = scan(np.geomspace(max(tau / step, coarse[0]), min(tau * step, coarse[-1]), TAU_GRID))
    return tau, scale / cycles, chi2 / max(t.size - 2, 1)
