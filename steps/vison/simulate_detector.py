"""The CCD273 for the vison simulator: per-quadrant truth and the rendering of one quadrant.

Pure functions over NumPy arrays (no file I/O).  Cook-book part: the detector effects the
first-wave Tasks measure (BIAS, DARK, PTC, NL, FLAT, CHINJ, TP, COSMETICS).

What is simulated, per quadrant (canonical orientation; ``x`` the image column, ``y`` the image
row from the readout node)
    An offset (1000-1700 ADU) drifting linearly over the day (|drift| < 1 ADU/h), the same in
    prescan, image and overscans; Gaussian read noise over every pixel (1.0-1.4 ADU as the counts show it,
    the rounding's 1/12 ADU^2 included); a gain
    (3.0-3.6 e-/ADU); a full well (190-230 ke-, charge clipped there, the ADC at 65535 so the
    brightest flats of the low-gain quadrants saturate); a non-linearity ``S_meas = f(S)``, a
    cubic with ``f(0) = 0, f'(0) = 1`` (coefficients lowest first in ADU, up to ~1.5 % at full
    well); a pixel response non-uniformity (Gaussian, 0.6-1.4 % rms, the truth is the rms of the
    map drawn); dark current (1e-3-3e-3 e-/s) with hot pixels (0.5-5 e-/s) and one hot column
    (+0.3 e-/s), cold pixels (response 0.1-0.6) and one cold column (0.7); charge injection
    rising linearly from a threshold in IG1 (4.0-5.0 V, 1.2-2.4e4 e-/V) to a plateau, the notch
    (1.0-1.6e4 e-); traps (x, y, tau 300-5000 us, capture probability 0.3-1) that turn a pumped
    injection into a dipole of ``cycles * pc * (exp(-t/tau) - exp(-2 t/tau))`` electrons (t the
    TOI_TP dwell), towards the next row for the modes 123 and 234, the previous for 341 and 412.

What is simplified, and why
    Shot noise is one Gaussian of variance ``electrons`` (exact in mean and variance, far cheaper
    than Poisson draws; a pixel may hold a fraction of an electron below zero, which keeps the
    mean of a bias's or dark's ~1 e- exact: clipped at 0 it was 0.02-0.04 ADU high); no charge transfer inefficiency, cross-talk, blooming, cosmic rays,
    brighter-fatter or dark-current dependence on temperature; the injection does not depend on
    the drain delay; every trap is pumped by every mode.  None of these is measured by the first
    wave of Tasks as the issue states them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from steps.vison.elvis import SATURATED, Geometry

FORWARD_MODES = (123, 234)  # dipole towards y + 1; the others towards y - 1
DEFECT_DENSITY = 1e-3  # hot and cold pixels each, per image pixel (at least 4 per quadrant)
TRAP_DENSITY = 2e-3
NL_SCALE_ADU = 4e4
QUANTISATION_VAR = 1.0 / 12.0  # ADU^2 the rounding to counts adds


@dataclass(frozen=True)
class QuadrantTruth:
    ccd: int
    quadrant: str
    offset_adu: float
    drift_adu_per_h: float
    ron_adu: float
    gain: float  # e- per ADU
    fwc_e: float
    nl_coeffs: tuple[float, ...]  # f(S) = sum c_k S^k, S in ADU
    prnu_pct: float
    dark_e_s: float
    chinj_threshold_v: float
    chinj_slope_e_v: float
    chinj_notch_e: float
    response: np.ndarray  # (image_rows, image_cols): PRNU times cold pixels and column
    dark: np.ndarray  # (image_rows, image_cols) e- per second, hot pixels and column included
    defects: list[tuple[int, int, str, float]]  # x, y (-1 for a column), kind, value
    traps: np.ndarray  # (n, 4): x, y, tau_us, pc

    def nonlinear(self, adu: np.ndarray) -> np.ndarray:
        c = self.nl_coeffs
        return adu * (c[1] + adu * (c[2] + adu * c[3]))

    @property
    def fwc_adu(self) -> float:
        """Full well in ADU as the frames show it: the charge limit, or the ADC's where that comes first."""
        return float(min(self.nonlinear(np.float64(self.fwc_e / self.gain)), SATURATED - self.offset_adu))

    def max_nl_pct(self) -> float:
        """Largest |f(S)/S - 1| in % over 1 %..100 % of the full well."""
        s = np.linspace(0.01, 1.0, 500) * self.fwc_e / self.gain
        return float(np.max(np.abs(self.nonlinear(s) / s - 1.0)) * 100.0)

    def injection_e(self, ig1_v: float) -> float:
        return float(np.clip(self.chinj_slope_e_v * (ig1_v - self.chinj_threshold_v), 0.0, self.chinj_notch_e))


def make_quadrant(ccd: int, quadrant: str, geometry: Geometry, rng: np.random.Generator) -> QuadrantTruth:
    """Draw one quadrant's detector; ``geometry`` gives the image area the maps cover."""
    ny, nx = geometry.image_rows, geometry.image_cols
    n_defects = max(4, round(DEFECT_DENSITY * nx * ny))
    prnu_rms = rng.uniform(0.006, 0.014)
    prnu = 1.0 + prnu_rms * rng.standard_normal((ny, nx), dtype=np.float32)
    response = prnu.astype(np.float32)
    dark_e_s = rng.uniform(1e-3, 3e-3)
    dark = np.full((ny, nx), dark_e_s, dtype=np.float32)
    # distinct pixels for hot, cold and traps, away from the first and last rows (trap dipoles)
    picks = rng.choice((ny - 2) * nx, size=2 * n_defects + max(4, round(TRAP_DENSITY * nx * ny)), replace=False)
    ys, xs = picks // nx + 1, picks % nx
    columns = rng.choice(nx, size=2, replace=False)
    defects = []
    for y, x in zip(ys[:n_defects], xs[:n_defects]):
        value = rng.uniform(0.5, 5.0)
        dark[y, x] = value
        defects.append((int(x), int(y), "hot_pixel", float(value)))
    for y, x in zip(ys[n_defects:2 * n_defects], xs[n_defects:2 * n_defects]):
        value = rng.uniform(0.1, 0.6)
        response[y, x] = value
        defects.append((int(x), int(y), "cold_pixel", float(value)))
    dark[:, columns[0]] += 0.3
    defects.append((int(columns[0]), -1, "hot_column", 0.3))
    response[:, columns[1]] *= 0.7
    defects.append((int(columns[1]), -1, "cold_column", 0.7))
    trap_y, trap_x = ys[2 * n_defects:], xs[2 * n_defects:]
    traps = np.column_stack([trap_x, trap_y, np.exp(rng.uniform(np.log(300.0), np.log(5000.0), trap_x.size)),
                             rng.uniform(0.3, 1.0, trap_x.size)])
    p1, p2 = rng.uniform(-0.004, 0.004), rng.uniform(-0.006, -0.001)
    return QuadrantTruth(
        ccd=ccd, quadrant=quadrant, offset_adu=rng.uniform(1000.0, 1700.0), drift_adu_per_h=rng.uniform(-1.0, 1.0),
        ron_adu=rng.uniform(1.0, 1.4), gain=rng.uniform(3.0, 3.6), fwc_e=rng.uniform(1.9e5, 2.3e5),
        nl_coeffs=(0.0, 1.0, p1 / NL_SCALE_ADU, p2 / NL_SCALE_ADU**2), prnu_pct=float(np.std(prnu) * 100.0),
        dark_e_s=dark_e_s, chinj_threshold_v=rng.uniform(4.0, 5.0), chinj_slope_e_v=rng.uniform(1.2e4, 2.4e4),
        chinj_notch_e=rng.uniform(1.0e4, 1.6e4), response=response, dark=dark, defects=defects, traps=traps)


@dataclass(frozen=True)
class Illumination:
    """What reaches a quadrant's image area during one frame."""

    dark_s: float = 0.0  # exposure plus readout
    fluence_e: float = 0.0  # mean photo-electrons per pixel before the response map
    ig1_v: float | None = None  # charge injection at this IG1, or none
    chinj_on: int = 0  # rows injected, then chinj_off rows not, repeated
    chinj_off: int = 0
    tp_mode: int | None = None  # vertical trap-pumping mode (123, 234, 341, 412)
    toi_tp_us: float = 0.0
    tp_cycles: int = 0
    hours: float = 0.0  # since the start of the day (offset drift)


def dipole_e(traps: np.ndarray, toi_us: float, cycles: int) -> np.ndarray:
    """Electrons each trap (rows x, y, tau_us, pc) moves to its neighbour over ``cycles`` pumps."""
    tau, pc = traps[:, 2], traps[:, 3]
    return cycles * pc * (np.exp(-toi_us / tau) - np.exp(-2.0 * toi_us / tau))


def render_quadrant(truth: QuadrantTruth, geometry: Geometry, light: Illumination,
                    rng: np.random.Generator) -> np.ndarray:
    """One quadrant in canonical orientation, float ADU before rounding and clipping."""
    ny, nx = geometry.image_rows, geometry.image_cols
    e = truth.dark * np.float32(light.dark_s)
    if light.fluence_e:
        e += truth.response * np.float32(light.fluence_e)
    if light.ig1_v is not None:
        period = light.chinj_on + light.chinj_off
        rows = (np.arange(ny) % period) < light.chinj_on if period else np.ones(ny, bool)
        level = truth.injection_e(light.ig1_v)
        e[rows] += np.float32(level)
        if light.tp_mode is not None:
            x, y = truth.traps[:, 0].astype(int), truth.traps[:, 1].astype(int)
            amp = np.minimum(dipole_e(truth.traps, light.toi_tp_us, light.tp_cycles), 0.5 * level).astype(np.float32)
            step = 1 if light.tp_mode in FORWARD_MODES else -1
            e[y, x] -= amp
            e[y + step, x] += amp
    e += np.sqrt(np.maximum(e, 0.0)) * rng.standard_normal((ny, nx), dtype=np.float32)
    np.minimum(e, truth.fwc_e, out=e)  # not clipped at 0: that would bias a dark's mean of ~1 e- upwards
    q = np.zeros((geometry.height, geometry.width), dtype=np.float32)
    rows, cols = geometry.region("image")
    q[rows, cols] = truth.nonlinear(e / np.float32(truth.gain))
    q += np.float32(truth.offset_adu + truth.drift_adu_per_h * light.hours)
    q += np.float32(np.sqrt(truth.ron_adu**2 - QUANTISATION_VAR)) * rng.standard_normal(q.shape, dtype=np.float32)
    return q


def assemble(quadrants: dict[str, np.ndarray], geometry: Geometry) -> np.ndarray:
    """The frame (NAXIS2, NAXIS1) uint16 from canonical quadrants: rounded, clipped to 0..65535."""
    h, w = geometry.height, geometry.width
    frame = np.empty(geometry.shape, dtype=np.float32)
    frame[:h, :w] = quadrants["H"]
    frame[h:, :w] = quadrants["E"][::-1, :]
    frame[h:, w:] = quadrants["F"][::-1, ::-1]
    frame[:h, w:] = quadrants["G"][:, ::-1]
    return np.clip(np.rint(frame), 0, SATURATED).astype(np.uint16)
