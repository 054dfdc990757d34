"""Pure physics for the TEC simulator: the sector's time grid and quality flags,
TESS noise, transit / eclipse / sinusoid models, and the detection statistic.

Everything here is a function of numpy arrays and numbers; nothing reads or
writes files. Times are BTJD (BJD - 2457000) days, durations hours, depths ppm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# -- sector calendar ---------------------------------------------------------------

BTJD_SECTOR33_START = 2201.72955  # first 2-min cadence of sector 33 (real value)
SECTOR_LENGTH_D = 27.3895  # mean sector spacing, sectors 1..33
CADENCENO_S33_2MIN = 703641  # first 2-min cadence number of sector 33
CADENCENO_S1_10MIN = 4697  # first FFI cadence number of sector 1 (approximate)

# QUALITY bits (lightkurve TessQualityFlags / SDPDD)
Q_ATTITUDE_TWEAK = 1
Q_COARSE_POINT = 4
Q_EARTH_POINT = 8
Q_DESAT = 32  # reaction-wheel desaturation = momentum dump
Q_IMPULSIVE_OUTLIER = 512
Q_COLLATERAL_COSMIC = 1024
Q_SCATTERED_LIGHT = 4096

# TPS trial pulse durations (hours)
TPS_PULSES_H = np.array([1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.5, 5.0, 6.0, 7.5, 9.0, 10.5, 12.0, 12.5, 15.0])


def sector_start_btjd(sector: int) -> float:
    """Approximate BTJD of a sector's first cadence (exact for sector 33)."""
    return BTJD_SECTOR33_START + (sector - 33) * SECTOR_LENGTH_D


@dataclass(frozen=True)
class SectorGrid:
    """The cadence grid of one sector and its spacecraft-wide quality flags."""

    sector: int
    cadence_min: float
    time: np.ndarray  # BTJD mid-cadence, defined everywhere (the gap too)
    cadenceno: np.ndarray  # int64
    in_gap: np.ndarray  # bool, downlink gap: TIME is NaN in the LC file
    quality: np.ndarray  # int32 spacecraft quality bits
    pdc_valid: np.ndarray  # bool, cadences where PDC flux is finite
    dump_times: np.ndarray  # BTJD of the momentum dumps
    gap_start: float
    gap_end: float

    @property
    def dt(self) -> float:
        return self.cadence_min / 1440.0

    @property
    def cad_per_hr(self) -> float:
        return 60.0 / self.cadence_min

    @property
    def tstart(self) -> float:
        return float(self.time[0])

    @property
    def tstop(self) -> float:
        return float(self.time[-1])


def make_sector_grid(sector: int, cadence_min: float, rng: np.random.Generator,
                     span_d: float = 27.4) -> SectorGrid:
    """Cadences, the mid-sector downlink gap, momentum dumps and other quality flags."""
    dt = cadence_min / 1440.0
    t0 = sector_start_btjd(sector)
    n = int(round(span_d / dt))
    time = t0 + dt * np.arange(n)
    if cadence_min < 5:
        c0 = CADENCENO_S33_2MIN + int(round((t0 - BTJD_SECTOR33_START) / dt))
    else:
        c0 = CADENCENO_S1_10MIN + int(round((t0 - sector_start_btjd(1)) / dt))
    cadenceno = c0 + np.arange(n, dtype=np.int64)

    gap_len = rng.uniform(0.85, 1.15)
    gap_start = t0 + span_d / 2 - gap_len / 2 + rng.uniform(-0.3, 0.3)
    gap_end = gap_start + gap_len
    in_gap = (time >= gap_start) & (time < gap_end)

    quality = np.zeros(n, dtype=np.int32)
    # scattered light at the start of each orbit and at the very end
    for a, b in ((t0, t0 + 0.55), (gap_end, gap_end + 0.55), (time[-1] - 0.25, time[-1] + 1)):
        quality[(time >= a) & (time < b)] |= Q_SCATTERED_LIGHT

    # momentum dumps every 3-4 days (2 cadences at 2-min, 1 at 10-min)
    interval = rng.uniform(3.0, 4.0)
    dumps = np.arange(t0 + rng.uniform(1.0, 2.0), time[-1], interval)
    dumps = dumps[(dumps < gap_start - 0.05) | (dumps > gap_end + 0.05)]
    ncad_dump = 2 if cadence_min < 5 else 1
    for td in dumps:
        i = int(np.searchsorted(time, td))
        quality[i:i + ncad_dump] |= Q_DESAT
    # coarse pointing episodes
    for _ in range(rng.integers(1, 3)):
        tc = rng.uniform(t0 + 1, time[-1] - 1)
        quality[(time >= tc) & (time < tc + rng.uniform(0.02, 0.06))] |= Q_COARSE_POINT
    # one attitude tweak, a few collateral cosmic rays, impulsive outliers
    quality[rng.integers(0, n)] |= Q_ATTITUDE_TWEAK
    quality[rng.integers(0, n, size=6)] |= Q_COLLATERAL_COSMIC
    quality[rng.integers(0, n, size=2)] |= Q_IMPULSIVE_OUTLIER
    quality[in_gap] = 0

    bad = Q_ATTITUDE_TWEAK | Q_COARSE_POINT | Q_EARTH_POINT | Q_DESAT | Q_SCATTERED_LIGHT
    pdc_valid = ~in_gap & ((quality & bad) == 0)
    return SectorGrid(sector, cadence_min, time, cadenceno, in_gap, quality, pdc_valid,
                      dumps, float(gap_start), float(gap_end))


# -- noise -----------------------------------------------------------------------------


def tess_flux_eps(tmag: np.ndarray | float) -> np.ndarray | float:
    """Flux in e-/s collected from a star of T magnitude tmag (15,000 e-/s at T = 10)."""
    return 15000.0 * 10.0 ** (-0.4 * (np.asarray(tmag) - 10.0))


def cadence_noise_ppm(tmag: np.ndarray | float, cadence_min: float, npix: int = 10,
                      bkg_eps_per_pix: float = 40.0, read_noise: float = 10.0,
                      floor_ppm_hr: float = 60.0) -> np.ndarray | float:
    """White noise per cadence (ppm): shot, background and read noise plus a 60 ppm/h floor."""
    t_exp = cadence_min * 60.0 * 0.8
    flux = tess_flux_eps(tmag)
    n_reads = t_exp / 2.0
    var = flux * t_exp + npix * (bkg_eps_per_pix * t_exp + read_noise ** 2 * n_reads)
    shot = 1e6 * np.sqrt(var) / (flux * t_exp)
    floor = floor_ppm_hr * np.sqrt(60.0 / cadence_min)
    return np.sqrt(shot ** 2 + floor ** 2)


def cdpp_ppm(sigma_cad_ppm: float, hours: float, cad_per_hr: float) -> float:
    """CDPP for white noise on a time scale of `hours`."""
    return sigma_cad_ppm / np.sqrt(hours * cad_per_hr)


def stellar_trend(time: np.ndarray, amps: np.ndarray, periods: np.ndarray,
                  phases: np.ndarray) -> np.ndarray:
    """Slow stellar/systematic variation (relative flux): a sum of long-period sinusoids."""
    out = np.zeros_like(time)
    for a, p, ph in zip(amps, periods, phases):
        out += a * np.sin(2 * np.pi * time / p + ph)
    return out


# -- signal models (all return a relative flux deficit >= 0 where signal is present) ---


def phase_days(time: np.ndarray, period: float, epoch: float) -> np.ndarray:
    """Time from the nearest transit, in days, in [-P/2, P/2)."""
    return (time - epoch + 0.5 * period) % period - 0.5 * period


def dv_phase(time: np.ndarray, period: float, epoch: float) -> np.ndarray:
    """DV time-series PHASE: time since transit in [-0.25 P, 0.75 P) days."""
    return (time - epoch + 0.25 * period) % period - 0.25 * period


def trapezoid(dt_days: np.ndarray, depth: float, duration_h: float, ingress_h: float) -> np.ndarray:
    """Trapezoid deficit (relative flux) at time offsets dt_days from mid-transit."""
    x = np.abs(dt_days) * 24.0
    half = duration_h / 2.0
    ing = max(min(ingress_h, half), 1e-3)
    out = np.clip((half - x) / ing, 0.0, 1.0)
    return depth * out


def transit_train(time: np.ndarray, period: float, epoch: float, depth: float,
                  duration_h: float, ingress_h: float) -> np.ndarray:
    """Periodic trapezoid transits (relative deficit)."""
    return trapezoid(phase_days(time, period, epoch), depth, duration_h, ingress_h)


def transit_number(time: np.ndarray, period: float, epoch: float) -> np.ndarray:
    """Index of the nearest transit (0 = the epoch)."""
    return np.floor((time - epoch) / period + 0.5).astype(np.int64)


def eclipse_train(time: np.ndarray, period: float, epoch: float, depth_odd: float,
                  depth_even: float, duration_h: float, ingress_h: float,
                  secondary_depth: float = 0.0, secondary_phase: float = 0.5) -> np.ndarray:
    """Eclipsing binary: alternating primary depths (odd/even) and a secondary eclipse."""
    ph = phase_days(time, period, epoch)
    n = transit_number(time, period, epoch)
    depth = np.where(n % 2 == 0, depth_odd, depth_even)
    prim = trapezoid(ph, 1.0, duration_h, ingress_h) * depth
    if secondary_depth > 0:
        sec = trapezoid(phase_days(time, period, epoch + secondary_phase * period),
                        secondary_depth, duration_h, ingress_h)
        prim = prim + sec
    return prim


def sinusoid_deficit(time: np.ndarray, period: float, epoch: float, amplitude: float) -> np.ndarray:
    """Sinusoidal variable with its minimum at `epoch`, as a deficit (mean zero)."""
    return amplitude * np.cos(2 * np.pi * (time - epoch) / period)


def in_transit_mask(time: np.ndarray, period: float, epoch: float, duration_h: float,
                    widen: float = 1.0) -> np.ndarray:
    return np.abs(phase_days(time, period, epoch)) < widen * duration_h / 48.0


def count_observed_transits(time: np.ndarray, valid: np.ndarray, period: float, epoch: float,
                            duration_h: float, min_fraction: float = 0.5) -> tuple[int, int]:
    """(observed, expected) transit counts: observed needs min_fraction of its cadences valid."""
    inwin = in_transit_mask(time, period, epoch, duration_h)
    ids, inv = np.unique(transit_number(time[inwin], period, epoch), return_inverse=True)
    total = np.bincount(inv, minlength=ids.size)
    good = np.bincount(inv, weights=valid[inwin].astype(float), minlength=ids.size)
    observed = int((good >= min_fraction * total).sum())
    return observed, len(ids)


def observed_transit_centers(time: np.ndarray, valid: np.ndarray, period: float, epoch: float,
                             duration_h: float) -> np.ndarray:
    """Mid-times of the transits that have at least one valid in-transit cadence."""
    inwin = in_transit_mask(time, period, epoch, duration_h) & valid
    ids = np.unique(transit_number(time[inwin], period, epoch))
    return epoch + period * ids


def box_snr(deficit: np.ndarray, window: np.ndarray, valid: np.ndarray, sigma: float) -> float:
    """Matched box statistic: mean deficit in the window * sqrt(N valid cadences) / sigma."""
    sel = window & valid
    n = int(sel.sum())
    if n == 0:
        return 0.0
    return float(deficit[sel].mean() * np.sqrt(n) / sigma)


# -- orbital geometry -------------------------------------------------------------------

G_CGS = 6.674e-8
RSUN_CM = 6.957e10
MSUN_G = 1.989e33
AU_CM = 1.496e13
REARTH_PER_RSUN = 109.1


def a_over_rstar(period_d: float, mass_msun: float, radius_rsun: float) -> float:
    p = period_d * 86400.0
    a = (G_CGS * mass_msun * MSUN_G * p ** 2 / (4 * np.pi ** 2)) ** (1.0 / 3.0)
    return a / (radius_rsun * RSUN_CM)


def transit_duration_h(period_d: float, a_rs: float, k: float, b: float) -> float:
    """Total (first to fourth contact) duration of a circular orbit."""
    arg = np.sqrt(max((1 + k) ** 2 - b ** 2, 1e-6)) / (a_rs * np.sqrt(max(1 - (b / a_rs) ** 2, 1e-9)))
    return 24.0 * period_d / np.pi * np.arcsin(min(arg, 1.0))


def ingress_h(duration_h: float, k: float, b: float) -> float:
    """Approximate ingress time (first to second contact)."""
    return float(min(duration_h * k / max(1 - b ** 2, 0.05), duration_h / 2))


def equilibrium_temp(teff: float, a_rs: float, albedo: float = 0.3) -> float:
    return float(teff * np.sqrt(1.0 / (2.0 * a_rs)) * (1 - albedo) ** 0.25)


def insolation_earth(teff: float, radius_rsun: float, a_au: float) -> float:
    return float((teff / 5772.0) ** 4 * radius_rsun ** 2 / a_au ** 2)


def nearest_pulse(duration_h: float) -> float:
    return float(TPS_PULSES_H[np.argmin(np.abs(TPS_PULSES_H - duration_h))])


def period_significance(p1: float, p2: float) -> float:
    """Coughlin et al. period-ratio significance (P1 the smaller period)."""
    from scipy.special import erfcinv

    a, b = sorted((p1, p2))
    d = (a - b) / a
    frac = abs(d - np.round(d))
    return float(np.sqrt(2) * erfcinv(max(frac, 1e-300)))
