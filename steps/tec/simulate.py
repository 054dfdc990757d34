"""TEC simulator: one synthetic TESS sector in the real SPOC file formats, with truth.

`simulate_sector(out, n_tces=200, seed=0, ...)` writes

* per target: light curve `_lc.fits`, DV results `_dvr.xml`, DV time series `_dvt.fits`,
  DV report `_dvr.pdf`, per-TCE summaries `_dvs.pdf`, mini-report `_dvm.pdf`
  (optionally a small target-pixel file `_tp.fits`), named and laid out like SPOC
  2-min exports (family "spoc", MIT layout) or the HLSP/FTL 10-min products
  (family "ftl", NAS layout);
* `toi.csv` (TEV TOI catalogue CSV), `known_planets.csv` (NASA Exoplanet Archive CSV);
* `truth.parquet` (one row per TCE) and `truth_skyline.parquet` (the shared event times).

The population is planned in one pass from the seed (`plan_sector`), then each target is
rendered independently (`render_target`, process pool) from a seed derived from
(seed, target index), so the output does not depend on the number of workers.

Consistency the tests rely on: the injected depth of every TCE is derived from the
target MES and the star's white noise, so DV `maxMultipleEventSigma` equals
box_depth * sqrt(valid in-transit cadences) / sigma_cadence to a few per cent, where the
in-transit cadences exclude earlier TCEs' transits (gapped as SPOC does).
"""

from __future__ import annotations

import csv
import io
import math
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from steps.tec import simulate_physics as ph
from steps.tec.simulate_fits import dv_timeseries_fits, lightcurve_fits, target_pixel_fits, write_bytes
from steps.tec.simulate_xml import dv_results_xml

# Default share of the TCEs per kind; "planet" takes the remainder.
DEFAULT_FRACTIONS = {
    "multi": 0.14,  # TCEs in 2-3 planet systems
    "eb": 0.07,  # eclipsing binaries with a significant secondary eclipse
    "eb_oddeven": 0.05,  # EBs found at half the binary period: odd/even depths differ
    "blend": 0.06,  # background eclipsing binary: centroid offset
    "sinusoid": 0.05,  # P < 5 d sinusoidal variables (spots, pulsation: amplitudes above the noise)
    "modump": 0.04,  # events on momentum dumps
    "halfdouble": 0.04,  # TCE at half/double the period of another TCE on the same TIC
}
PLANET_KINDS = ("planet", "multi")
KNOWN_FLAG_DOC = "1 TOI federated, 3 TOI on same TIC other PN, 2 known planet, 4 known planet on same TIC other PN, 0 none"


@dataclass
class SimulatedSector:
    """Paths of one simulated sector."""

    root: Path
    sector_dir: Path
    sector: int
    family: str
    cadence: str
    toi_csv: Path
    known_planets_csv: Path
    truth: Path
    truth_skyline: Path
    n_tces: int
    n_targets: int
    dirs: dict = field(default_factory=dict)


@dataclass
class Tce:
    pn: int
    kind: str
    period: float
    epoch: float
    duration_h: float
    ingress_h: float
    impact: float
    depth_ppm: float = 0.0  # central depth (odd transits for EBs); sinusoid: semi-amplitude
    depth_even_ppm: float = 0.0
    secondary_depth_ppm: float = 0.0
    centroid_offset_arcsec: float = 0.0
    centroid_pa: float = 0.0
    mes: float = 0.0  # injected MES
    box_depth_ppm: float = 0.0
    n_in_cadences: int = 0
    n_obs: int = 0
    n_exp: int = 0
    related_pn: int = 0
    in_skyline: bool = False
    on_momentum_dump: bool = False
    known_planet_name: str = ""
    toi: float = float("nan")
    toi_disposition: str = ""
    expected_known_flag: int = 0


@dataclass
class Star:
    index: int
    tic: int
    tmag: float
    teff: float
    radius: float
    mass: float
    logg: float
    mh: float
    ra: float
    dec: float
    pmra: float
    pmdec: float
    camera: int
    ccd: int
    row: float
    col: float
    sigma_ppm: float
    trend: tuple  # (amps, periods, phases)
    pdc_noi: float
    tces: list = field(default_factory=list)
    toi_id: int = 0
    red_ratio: float = 0.0  # correlated (red) noise: its variance over white at transit time scales
    red_tau_h: float = 0.0  # its correlation time (hours)

    @property
    def sigma_eff_ppm(self) -> float:
        """Per-cadence white noise that has the variance of white + red noise at transit time scales."""
        return self.sigma_ppm * math.sqrt(1.0 + self.red_ratio)


# -- planning -------------------------------------------------------------------------------


def _kind_counts(n_tces: int, fractions: dict) -> dict:
    """Number of TCEs per kind (skyline fixed-ish), every kind present when n_tces >= 20."""
    # A skyline is an excess of simultaneous events over the TCEs that are in transit by chance
    # (a few per cent of them at any time, scattering like sqrt(n)): 1.6 sqrt(n) TCEs stand out.
    n_sky = max(8, int(np.ceil(1.6 * np.sqrt(n_tces)))) if n_tces >= 60 else max(2, n_tces // 10)
    counts = {"skyline": min(n_sky, n_tces)}
    for kind, frac in fractions.items():
        c = int(round(frac * n_tces))
        if n_tces >= 20 and frac > 0:
            c = max(c, 2 if kind in ("multi", "halfdouble") else 1)
        if kind in ("multi", "halfdouble"):
            c -= c % 2
        counts[kind] = c
    while sum(counts.values()) > n_tces:  # tiny runs: trim the largest groups
        k = max(counts, key=counts.get)
        counts[k] -= 2 if k in ("multi", "halfdouble") and counts[k] >= 2 else 1
    counts["planet"] = n_tces - sum(counts.values())
    return counts


def _draw_star(rng: np.random.Generator, index: int, tic: int, cadence_min: float) -> Star:
    tmag = float(rng.uniform(7.0, 12.8))
    teff = float(rng.uniform(3400, 6700))
    radius = float(np.clip(0.00028 * teff - 0.80 + rng.normal(0, 0.12), 0.25, 2.4))
    mass = float(np.clip(radius ** 0.8, 0.2, 1.8))
    logg = float(4.438 + np.log10(mass) - 2 * np.log10(radius))
    n_trend = rng.integers(0, 4)
    trend = (10 ** rng.uniform(-4, -2.5, n_trend), rng.uniform(4, 30, n_trend), rng.uniform(0, 2 * np.pi, n_trend))
    sigma = float(ph.cadence_noise_ppm(tmag, cadence_min) * rng.uniform(0.95, 1.15))
    return Star(index=index, tic=tic, tmag=tmag, teff=teff, radius=radius, mass=mass, logg=logg,
                mh=float(rng.normal(0, 0.2)), ra=float(rng.uniform(0, 360)),
                dec=float(np.degrees(np.arcsin(rng.uniform(-1, 1)))), pmra=float(rng.normal(0, 0.02)),
                pmdec=float(rng.normal(0, 0.02)), camera=int(rng.integers(1, 5)), ccd=int(rng.integers(1, 5)),
                row=float(rng.uniform(60, 2000)), col=float(rng.uniform(60, 2080)), sigma_ppm=sigma, trend=trend,
                pdc_noi=float(rng.uniform(0.55, 0.79) if rng.random() < 0.05 else rng.uniform(0.82, 0.99)))


def _unit_shape(kind: str, time: np.ndarray, t: Tce) -> np.ndarray:
    """Deficit model of TCE t for a unit depth parameter (ratio fixed for odd/even, secondary)."""
    if kind == "sinusoid":
        return ph.sinusoid_deficit(time, t.period, t.epoch, 1.0)
    if kind in ("eb", "eb_oddeven"):
        ratio_even = t.depth_even_ppm / t.depth_ppm if t.depth_ppm else 1.0
        ratio_sec = t.secondary_depth_ppm / t.depth_ppm if t.depth_ppm else 0.0
        return ph.eclipse_train(time, t.period, t.epoch, 1.0, ratio_even, t.duration_h, t.ingress_h, ratio_sec)
    return ph.transit_train(time, t.period, t.epoch, 1.0, t.duration_h, t.ingress_h)


def signal_deficit(time: np.ndarray, t: Tce) -> np.ndarray:
    """Relative flux deficit of an injected TCE signal (pure function of the TCE)."""
    if t.kind == "sinusoid":
        return ph.sinusoid_deficit(time, t.period, t.epoch, t.depth_ppm * 1e-6)
    if t.kind in ("eb", "eb_oddeven"):
        return ph.eclipse_train(time, t.period, t.epoch, t.depth_ppm * 1e-6, t.depth_even_ppm * 1e-6,
                                t.duration_h, t.ingress_h, t.secondary_depth_ppm * 1e-6)
    return ph.transit_train(time, t.period, t.epoch, t.depth_ppm * 1e-6, t.duration_h, t.ingress_h)


def _geometry(rng, star: Star, period: float, k: float, b: float) -> tuple[float, float, float]:
    a_rs = ph.a_over_rstar(period, star.mass, star.radius)
    dur = float(np.clip(ph.transit_duration_h(period, a_rs, k, b), 0.7, 14.0))
    return dur, ph.ingress_h(dur, k, b), a_rs


def _base_tce(rng, star: Star, kind: str, period: float, epoch: float, grid: ph.SectorGrid,
              eb_secondary: tuple[float, float] = (0.15, 0.6)) -> Tce:
    """Shape parameters of a TCE (depth is set later from its MES)."""
    if kind == "sinusoid":
        dur = float(np.clip(0.2 * period * 24, 1.0, 15.0))
        return Tce(0, kind, period, epoch, dur, dur / 2, 0.0)
    if kind in ("eb", "eb_oddeven"):
        k, b = rng.uniform(0.3, 0.7), rng.uniform(0.0, 0.8)
        dur, _, _ = _geometry(rng, star, period * (2 if kind == "eb_oddeven" else 1), k, b)
        dur = float(min(dur, 0.15 * period * 24))
        t = Tce(0, kind, period, epoch, dur, dur / 2, float(b))
        t.depth_ppm = 1.0
        if kind == "eb":
            t.depth_even_ppm = 1.0
            t.secondary_depth_ppm = float(rng.uniform(*eb_secondary))
        else:
            t.depth_even_ppm = float(rng.uniform(0.35, 0.75))
        return t
    if kind in ("skyline", "modump"):
        dur = float(rng.uniform(1.5, 3.0))
        return Tce(0, kind, period, epoch, dur, dur * 0.25, 0.5)
    k, b = rng.uniform(0.02, 0.1), rng.uniform(0.0, 0.85)
    dur, ing, _ = _geometry(rng, star, period, k, b)
    dur = float(min(dur, 0.12 * period * 24))
    if kind == "blend":
        ing = dur * 0.35
    return Tce(0, kind, period, epoch, dur, min(ing, dur / 2), float(b))


def _finalize_depths(star: Star, grid: ph.SectorGrid, rng) -> None:
    """Order TCEs by MES, gap earlier TCEs' transits, set depths from the target MES."""
    star.tces.sort(key=lambda t: -t.mes)
    # a related (half/double period) TCE must come after its parent
    parents = [t for t in star.tces if t.related_pn == 0]
    children = [t for t in star.tces if t.related_pn != 0]
    star.tces = parents + children
    for i, t in enumerate(star.tces, start=1):
        t.pn = i
    for t in children:
        t.related_pn = next(p.pn for p in parents if p.related_pn == 0 and p.kind in PLANET_KINDS
                            and getattr(p, "_parent_of", None) is t)
    allowed = grid.pdc_valid.copy()
    for t in star.tces:
        window = ph.in_transit_mask(grid.time, t.period, t.epoch, t.duration_h)
        shape = _unit_shape(t.kind, grid.time, t)
        sel = window & allowed
        n_in = int(sel.sum())
        mean_shape = float(shape[sel].mean()) if n_in else 1.0
        # depth so that box_depth * sqrt(n_in) / sigma == target MES
        box = t.mes * star.sigma_eff_ppm / np.sqrt(max(n_in, 1))
        cap = {"eb": 4.0e5, "eb_oddeven": 4.0e5, "sinusoid": 5.0e4}.get(t.kind, 3.0e4)
        if box / mean_shape > cap:
            box = cap * mean_shape
            t.mes = float(box * np.sqrt(n_in) / star.sigma_eff_ppm)
        scale = box / mean_shape
        t.depth_even_ppm = t.depth_even_ppm * scale
        t.secondary_depth_ppm = t.secondary_depth_ppm * scale
        t.depth_ppm = scale if t.kind not in ("eb", "eb_oddeven") else t.depth_ppm * scale
        t.box_depth_ppm = float(box)
        t.n_in_cadences = n_in
        t.n_obs, t.n_exp = ph.count_observed_transits(grid.time, allowed, t.period, t.epoch, t.duration_h)
        # SPOC removes this TCE's transits (with a margin) before searching for the next one
        allowed &= ~ph.in_transit_mask(grid.time, t.period, t.epoch, t.duration_h, widen=1.5)
        centers = ph.observed_transit_centers(grid.time, grid.pdc_valid, t.period, t.epoch, t.duration_h)
        near = [np.min(np.abs(grid.dump_times - tc)) * 24 < t.duration_h for tc in centers
                if grid.dump_times.size]
        t.on_momentum_dump = bool(near) and float(np.mean(near)) > 0.9


def _periods_ok(periods: list[float]) -> bool:
    for i in range(len(periods)):
        for j in range(i + 1, len(periods)):
            if ph.period_significance(periods[i], periods[j]) > 2.0 or max(periods[i], periods[j]) / min(
                    periods[i], periods[j]) < 1.2:
                return False
    return True


def _epoch_ok(grid: ph.SectorGrid, period: float, epoch: float, dur: float, allowed=None) -> bool:
    valid = grid.pdc_valid if allowed is None else allowed
    obs, _ = ph.count_observed_transits(grid.time, valid, period, epoch, dur)
    return obs >= 2


def _draw_epoch(rng, grid, period, dur) -> float:
    for _ in range(50):
        e = grid.tstart + rng.uniform(0.05, min(period, 20.0))
        if _epoch_ok(grid, period, e, dur):
            return float(e)
    return float(grid.tstart + 0.3)


def _mes(rng, lo=7.5, hi=50.0, skew=1.6) -> float:
    return float(lo * (hi / lo) ** (rng.random() ** skew))


def plan_sector(n_tces: int, seed: int, sector: int, cadence_min: float, fractions: dict | None = None,
                red_noise: tuple[float, float] | None = None, red_tau_h: tuple[float, float] = (0.5, 6.0),
                eb_secondary: tuple[float, float] = (0.15, 0.6), planet_periods: tuple[float, float] = (0.6, 13.0),
                host_radius: tuple[float, float] | None = None):
    """All physical choices: grid, stars, TCEs, skyline, catalogue membership. Deterministic.

    ``red_noise``: range of the red-to-white variance ratio at transit time scales (log-uniform
    per star; None: white noise only, the default sector), ``red_tau_h`` the range of its
    correlation time; ``eb_secondary``: range of the EB secondary depth over the primary depth;
    ``planet_periods``: period range (log-uniform) of the single planets; ``host_radius``: radius
    range (R_sun, uniform) of their host stars (None: the main-sequence relation of the default
    sector; larger hosts, F stars and subgiants, give longer transits and higher duty cycles).
    The red noise and the host radii draw from streams of their own.
    """
    rng = np.random.default_rng([seed, 11])
    grid = ph.make_sector_grid(sector, cadence_min, np.random.default_rng([seed, 1]))
    fr = dict(DEFAULT_FRACTIONS)
    fr.update(fractions or {})
    counts = _kind_counts(n_tces, fr)
    tics = set()

    def new_tic() -> int:
        while True:
            t = int(rng.integers(1_000_000, 480_000_000))
            if t not in tics:
                tics.add(t)
                return t

    stars: list[Star] = []

    rng_red = np.random.default_rng([seed, 13])

    def new_star() -> Star:
        s = _draw_star(rng, len(stars), new_tic(), cadence_min)
        if red_noise is not None:
            lo, hi = red_noise
            s.red_ratio = float(np.exp(rng_red.uniform(np.log(lo), np.log(hi)))) if lo > 0 else float(
                rng_red.uniform(lo, hi))
            s.red_tau_h = float(np.exp(rng_red.uniform(*np.log(red_tau_h))))
        stars.append(s)
        return s

    # skyline: one set of events shared by several targets
    sky_p = float(rng.uniform(5.0, 8.0))
    sky_dur = float(rng.uniform(1.5, 3.0))
    sky_e = _draw_epoch(rng, grid, sky_p, sky_dur)
    for _ in range(counts["skyline"]):
        s = new_star()
        t = _base_tce(rng, s, "skyline", sky_p, sky_e + rng.normal(0, 3.0 / 1440), grid)
        t.duration_h, t.ingress_h, t.in_skyline, t.mes = sky_dur, sky_dur * 0.2, True, float(rng.uniform(8, 14))
        s.tces.append(t)
    # momentum-dump events: period = dump interval, epoch on a dump
    dump_p = float(np.median(np.diff(grid.dump_times))) if grid.dump_times.size > 1 else 3.5
    for _ in range(counts["modump"]):
        s = new_star()
        t = _base_tce(rng, s, "modump", dump_p, float(grid.dump_times[0] + rng.normal(0, 0.05 / 24)), grid)
        t.mes = float(rng.uniform(8, 20))
        s.tces.append(t)
    for kind, p_lo, p_hi, mes_lo, mes_hi in (("eb", 0.5, 10, 30, 400), ("eb_oddeven", 0.4, 4, 30, 300),
                                             ("blend", 0.6, 10, 10, 60), ("sinusoid", 0.3, 5, 40, 400)):
        for _ in range(counts[kind]):
            s = new_star()
            p = float(np.exp(rng.uniform(np.log(p_lo), np.log(p_hi))))
            t = _base_tce(rng, s, kind, p, grid.tstart, grid, eb_secondary)
            t.epoch = _draw_epoch(rng, grid, p, t.duration_h)
            t.mes = _mes(rng, mes_lo, mes_hi, 1.0)
            if kind == "blend":
                t.centroid_offset_arcsec = float(rng.uniform(8, 40))
                t.centroid_pa = float(rng.uniform(0, 2 * np.pi))
            s.tces.append(t)
    # multi-planet systems of 2-3 planets
    n_multi = counts["multi"]
    while n_multi >= 2:
        m = 3 if n_multi >= 5 and rng.random() < 0.4 else 2
        s = new_star()
        while True:
            periods = sorted(float(np.exp(rng.uniform(np.log(0.8), np.log(12)))) for _ in range(m))
            if _periods_ok(periods):
                break
        for p in periods:
            t = _base_tce(rng, s, "multi", p, grid.tstart, grid)
            t.epoch = _draw_epoch(rng, grid, p, t.duration_h)
            t.mes = _mes(rng)
            s.tces.append(t)
        n_multi -= m
    counts["planet"] += n_multi
    # half / double period pairs
    for i in range(counts["halfdouble"] // 2):
        s = new_star()
        double = i % 2 == 1
        p1 = float(np.exp(rng.uniform(np.log(1.0), np.log(6.0 if double else 10.0))))
        parent = _base_tce(rng, s, "planet", p1, grid.tstart, grid)
        parent.duration_h = min(parent.duration_h, p1 * 24 / 6)
        parent.epoch = _draw_epoch(rng, grid, p1, parent.duration_h)
        parent.mes = float(rng.uniform(15, 40))
        p2, e2 = (2 * p1, parent.epoch + p1 / 2) if double else (p1 / 2, parent.epoch + p1 / 4)
        child = _base_tce(rng, s, "double_period_of" if double else "half_period_of", p2, e2, grid)
        child.duration_h = min(parent.duration_h, p2 * 24 / 6)
        child.ingress_h = min(child.ingress_h, child.duration_h / 2)
        child.mes = float(rng.uniform(7.5, 0.7 * parent.mes))
        child.related_pn = -1
        parent._parent_of = child
        s.tces += [parent, child]
    rng_host = np.random.default_rng([seed, 17])
    for _ in range(counts["planet"]):
        s = new_star()
        if host_radius is not None:
            s.radius = float(rng_host.uniform(*host_radius))
            s.mass = float(np.clip(s.radius ** 0.8, 0.2, 1.8))
            s.logg = float(4.438 + np.log10(s.mass) - 2 * np.log10(s.radius))
        p = float(np.exp(rng.uniform(np.log(planet_periods[0]), np.log(planet_periods[1]))))
        t = _base_tce(rng, s, "planet", p, grid.tstart, grid)
        t.epoch = _draw_epoch(rng, grid, p, t.duration_h)
        t.mes = _mes(rng)
        s.tces.append(t)

    for s in stars:
        _finalize_depths(s, grid, rng)
    # stars in TIC order, as a pipeline export would list them
    stars.sort(key=lambda s: s.tic)
    for i, s in enumerate(stars):
        s.index = i
    skyline = [float(sky_e + k * sky_p) for k in range(int((grid.tstop - sky_e) / sky_p) + 1)]
    catalogue = _assign_catalogues(np.random.default_rng([seed, 5]), stars, grid, tics)
    return grid, stars, {"times": skyline, "duration_h": sky_dur, "period": sky_p}, catalogue


# -- catalogues: known planets and TOIs ------------------------------------------------------


def _assign_catalogues(rng, stars: list[Star], grid: ph.SectorGrid, used_tics: set) -> dict:
    """Choose which TCEs are known planets / TOIs; add unrelated entries; set KNOWN flags."""
    known, tois = [], []
    toi_base = int(rng.integers(1500, 2500))
    next_toi = [toi_base]
    planet_stars = [s for s in stars if any(t.kind in PLANET_KINDS for t in s.tces)]
    rng.shuffle(planet_stars)
    # the first known system is a multi with only its first planet catalogued (KNOWN flag 4 case)
    multi_idx = [i for i, s in enumerate(planet_stars) if sum(t.kind in PLANET_KINDS for t in s.tces) > 1]
    if multi_idx:
        i = multi_idx[0]
        planet_stars[0], planet_stars[i] = planet_stars[i], planet_stars[0]
    syn = [100]

    def add_known(s: Star, t: Tce | None, letter: str, period=None, epoch=None, dur=None) -> str:
        name = f"SYN-{syn[0]} {letter}"
        p = period if t is None else t.period * (1 + rng.normal(0, 2e-6))
        e = epoch if t is None else t.epoch + rng.normal(0, 0.002)
        d = dur if t is None else t.duration_h * rng.uniform(0.95, 1.05)
        n_back = int(rng.integers(50, 400) * 1.0 / max(p, 0.5))  # epoch one to a few years earlier
        known.append({"pl_name": name, "hostname": f"SYN-{syn[0]}", "tic_id": f"TIC {s.tic}", "ra": s.ra,
                      "dec": s.dec, "pl_orbper": p, "pl_tranmid": e - n_back * p + 2457000.0, "pl_trandur": d})
        return name

    def add_toi(s: Star, t: Tce | None, disp: str, number: float, period=None, epoch=None, dur=None, depth=None):
        p = period if t is None else t.period * (1 + rng.normal(0, 5e-6))
        e = epoch if t is None else t.epoch + rng.normal(0, 0.001)
        n_back = int(rng.integers(0, 30))
        tois.append({"tic": s.tic, "toi": number, "disp": disp, "star": s, "period": p, "epoch": e - n_back * p,
                     "duration": dur if t is None else t.duration_h, "depth": depth if t is None else t.depth_ppm,
                     "pn": 1 if t is None else t.pn})
        if t is not None:
            t.toi, t.toi_disposition = number, disp
        if not s.toi_id:
            s.toi_id = int(number)

    n_known = max(1, int(round(0.25 * len(planet_stars))))
    n_toi = max(1, int(round(0.35 * len(planet_stars))))
    for i, s in enumerate(planet_stars):
        planets = [t for t in s.tces if t.kind in PLANET_KINDS]
        is_known = i < n_known
        is_toi = n_known // 2 <= i < n_known // 2 + n_toi
        letters = iter("bcdefg")
        only_first = len(planets) > 1 and (i == 0 or rng.random() < 0.5)
        for j, t in enumerate(planets):
            if is_known and (j == 0 or not only_first):
                t.known_planet_name = add_known(s, t, next(letters))
        if is_known:
            syn[0] += 1
        if is_toi:
            number = next_toi[0]
            next_toi[0] += 1
            for j, t in enumerate(planets):
                if j == 0 or not only_first:
                    add_toi(s, t, ("KP" if t.known_planet_name else rng.choice(["PC", "PC", "CP"])),
                            number + (j + 1) / 100)
    # false-positive TOIs on some EBs and blends
    for s in stars:
        for t in s.tces:
            if t.kind in ("eb", "blend", "eb_oddeven") and rng.random() < 0.4:
                add_toi(s, t, str(rng.choice(["FP", "PC"])), next_toi[0] + 0.01)
                next_toi[0] += 1
    # one TOI on a TCE's TIC that is a different (undetected) planet
    lonely = [s for s in stars if len(s.tces) == 1 and s.tces[0].kind == "planet" and not s.toi_id
              and not s.tces[0].known_planet_name]
    for s in lonely[:max(1, len(stars) // 60)]:
        t = s.tces[0]
        p = t.period * rng.uniform(1.37, 1.63)
        add_toi(s, None, "PC", next_toi[0] + 0.02, period=p, epoch=t.epoch + 0.37 * p, dur=t.duration_h,
                depth=t.depth_ppm * 0.5)
        next_toi[0] += 1
    # unrelated catalogue entries on TICs without a TCE
    rng_star = np.random.default_rng(rng.integers(1 << 32))
    for k in range(max(3, len(stars) // 25)):
        tic = int(rng.integers(1_000_000, 480_000_000))
        while tic in used_tics:
            tic = int(rng.integers(1_000_000, 480_000_000))
        used_tics.add(tic)
        ghost = _draw_star(rng_star, -1, tic, grid.cadence_min)
        p = float(np.exp(rng.uniform(np.log(1.0), np.log(30.0))))
        e = grid.tstart + rng.uniform(0, p)
        if k % 2 == 0:
            add_known(ghost, None, "b", period=p, epoch=e, dur=float(rng.uniform(1.5, 5.0)))
            syn[0] += 1
        else:
            add_toi(ghost, None, str(rng.choice(["PC", "CP", "KP", "FP"])), next_toi[0] + 0.01, period=p, epoch=e,
                    dur=float(rng.uniform(1.5, 5.0)), depth=float(rng.uniform(300, 5000)))
            next_toi[0] += 1
    # KNOWN flags (TEC rank_tces convention)
    for s in stars:
        toi_tic = any(r["tic"] == s.tic for r in tois)
        known_tic = any(t.known_planet_name for t in s.tces)
        for t in s.tces:
            flag = 1 if np.isfinite(t.toi) else (3 if toi_tic else 0)
            if t.known_planet_name:
                flag = 2
            elif known_tic:
                flag = 4
            t.expected_known_flag = flag
    return {"known": known, "tois": tois}


def _toi_csv(tois: list[dict], out: Path, when: datetime) -> None:
    header = ("Source Pipeline,Detection Pipeline(s),TIC,Full TOI ID,TOI Disposition,TIC Right Ascension,"
              "TIC Declination,TMag Value,TMag Uncertainty,PM RA Value,PM Dec Value,Orbital Epoch Value,"
              "Orbital Epoch Error,Orbital Period Value,Orbital Period Error,Transit Duration Value,"
              "Transit Duration Error,Transit Depth Value,Transit Depth Error,Sectors,Public Comment,"
              "Surface Gravity Value,Surface Gravity Uncertainty,Planet Number,Star Radius Value,Star Radius Error,"
              "Planet Radius Value,Planet Radius Error,Planet Equilibrium Temperature (K) Value,"
              "Effective Temperature Value,Effective Temperature Uncertainty,Effective Stellar Flux Value,"
              "Signal-to-noise,Centroid Offset,TFOP Master,TFOP SG1a,TFOP SG1b,TFOP SG2,TFOP SG3,TFOP SG4,"
              "TFOP SG5,Alerted,Updated").split(",")
    comments = ['period ambiguous, 2x or 1x; "single-sector" detection, see notes',
                "QLP + SPOC, depth consistent across sectors, stellar density ok",
                'possible small planet, shallow; TFOP "SG1" requested, check odd/even',
                'momentum dump nearby, transit shape, "check" background',
                "V-shaped, secondary at phase 0.5, likely EB", ""]
    buf = io.StringIO()
    buf.write("TESS Project Candidate Catalog (TEV TOI list)\n")
    buf.write("Collection 193 csv 6 - export\n")
    buf.write("Epochs in BTJD (BJD - 2457000) and periods in days and durations in hours and depths in ppm\n")
    buf.write(f"Generated {when:%Y-%m-%d} 00:00:00 UTC\n")
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    alerted = (when - timedelta(days=13)).strftime("%Y-%m-%d")
    for i, r in enumerate(sorted(tois, key=lambda r: r["toi"])):
        s = r["star"]
        rp = np.sqrt(max(r["depth"], 1.0) * 1e-6) * s.radius * 109.1
        w.writerow(["spoc", "spoc" if i % 3 else "qlp spoc", s.tic, f"{r['toi']:.2f}", r["disp"], f"{s.ra:.6f}",
                    f"{s.dec:.6f}", f"{s.tmag:.3f}", "0.006", f"{s.pmra * 1000:.3f}", f"{s.pmdec * 1000:.3f}",
                    f"{r['epoch']:.6f}", "0.0015", f"{r['period']:.7f}", "0.0000900", f"{r['duration']:.4f}",
                    "0.2000", f"{r['depth']:.1f}", f"{0.08 * r['depth']:.1f}", "33", comments[i % len(comments)],
                    f"{s.logg:.3f}", "0.08", int(round(r["toi"] * 100)) % 100, f"{s.radius:.3f}", "0.05",
                    f"{rp:.3f}", f"{0.1 * rp:.3f}", "1200.0", f"{s.teff:.0f}", "120", "1.5", "12.00",
                    "", i % 4, 0, 0, 0, 0, 0, 0, alerted, f"{when:%Y-%m-%d}"])
    write_bytes(out, buf.getvalue().encode(), gzipped=False)


def _known_csv(known: list[dict], out: Path, when: datetime) -> None:
    lines = ["# This file was produced by the NASA Exoplanet Archive  http://exoplanetarchive.ipac.caltech.edu",
             f"# {when:%a %b %d %H:%M:%S %Y}", "#", "# User preference: *", "#",
             "# COLUMN pl_name:        Planet Name", "# COLUMN hostname:       Host Name",
             "# COLUMN tic_id:         TIC ID", "# COLUMN ra:             RA [deg]",
             "# COLUMN dec:            Dec [deg]", "# COLUMN pl_orbper:      Orbital Period [days]",
             "# COLUMN pl_tranmid:     Transit Midpoint [days]", "# COLUMN pl_trandur:     Transit Duration [hours]",
             "#", "pl_name,hostname,tic_id,ra,dec,pl_orbper,pl_tranmid,pl_trandur"]
    for k in known:
        lines.append(f"{k['pl_name']},{k['hostname']},{k['tic_id']},{k['ra']:.7f},{k['dec']:.7f},"
                     f"{k['pl_orbper']:.8f},{k['pl_tranmid']:.6f},{k['pl_trandur']:.4f}")
    write_bytes(out, ("\n".join(lines) + "\n").encode(), gzipped=False)


# -- names and layout ----------------------------------------------------------------------


def _btjd_to_datetime(btjd: float) -> datetime:
    return datetime(2014, 12, 8, 12, 0, 0) + timedelta(days=float(btjd))


@dataclass(frozen=True)
class Naming:
    family: str
    sector: int
    lc_stamp: str
    dv_stamp: str
    scid: int = 203
    pin: int = 421
    gz: bool = True

    def _z(self) -> str:
        return ".gz" if self.gz else ""

    def lc(self, tic: int) -> str:
        if self.family == "ftl":
            return f"hlsp_tess-spoc_tess_phot_{tic:016d}-s{self.sector:04d}_tess_v1_lc.fits{self._z()}"
        return f"tess{self.lc_stamp}-s{self.sector:04d}-{tic:016d}-{self.scid:04d}-s_lc.fits{self._z()}"

    def tp(self, tic: int) -> str:
        return self.lc(tic).replace("_lc.fits", "_tp.fits")

    def dv(self, tic: int, suffix: str) -> str:
        s = self.sector
        if self.family == "ftl":
            return f"hlsp_tess-spoc_tess_phot_{tic:016d}-s{s:04d}-s{s:04d}_tess_v1_{suffix}"
        return f"tess{self.dv_stamp}-s{s:04d}-s{s:04d}-{tic:016d}-{self.pin:05d}_{suffix}"

    def dvs(self, tic: int, pn: int) -> str:
        s = self.sector
        if self.family == "ftl":
            return f"hlsp_tess-spoc_tess_phot_{tic:016d}-s{s:04d}-s{s:04d}_tess_v1_dvs-{pn:02d}.pdf"
        return f"tess{self.dv_stamp}-s{s:04d}-s{s:04d}-{tic:016d}-{pn:02d}-{self.pin:05d}_dvs.pdf"


def _layout(out: Path, family: str, sector: int, with_tpf: bool) -> tuple[Path, dict]:
    if family == "ftl":
        root = out / f"sector-{sector}"
        names = {"lc": "ftl-light-curve", "dvr": "ftl-dv-results", "rep": "ftl-dv-reports",
                 "dvt": "ftl-dv-time-series", "tp": "ftl-target-pixel"}
    else:
        root = out / f"sector-{sector:03d}"
        names = {"lc": "light-curve", "dvr": "dv-results", "rep": "dv-reports", "dvt": "dv-time-series",
                 "tp": "target-pixel"}
    if not with_tpf:
        names.pop("tp")
    dirs = {k: root / v for k, v in names.items()}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    return root, dirs


# -- rendering one target ------------------------------------------------------------------


def _star_header_dict(s: Star, grid: ph.SectorGrid, naming: Naming) -> dict:
    end = _btjd_to_datetime(grid.tstop)
    cad = grid.cad_per_hr
    return {"tic": s.tic, "sector": grid.sector, "camera": s.camera, "ccd": s.ccd, "pxtable": 129,
            "ra": s.ra, "dec": s.dec, "pmra": s.pmra, "pmdec": s.pmdec, "tmag": s.tmag, "teff": s.teff,
            "logg": s.logg, "mh": s.mh, "radius": s.radius, "file_date": f"{end + timedelta(days=4):%Y-%m-%d}",
            "procver": "spoc-5.0.20-20210115", "data_rel": 47,
            "date_obs": f"{_btjd_to_datetime(grid.tstart):%Y-%m-%dT%H:%M:%S.000}",
            "date_end": f"{end:%Y-%m-%dT%H:%M:%S.000}",
            "cdpp": {k: ph.cdpp_ppm(s.sigma_ppm, h, cad) for k, h in (("CDPP0_5", 0.5), ("CDPP1_0", 1.0),
                                                                      ("CDPP2_0", 2.0))}}


def _dv_fits_values(rng, s: Star, t: Tce, grid: ph.SectorGrid) -> dict:
    """DV results for one TCE: fitted values near the injected ones with realistic errors."""
    mes_dv = float(t.mes * (1 + rng.normal(0, 0.025)))
    snr = max(mes_dv, 1.0)
    T = t.duration_h
    sig_t0 = 0.5 * T / 24 / snr * np.sqrt(max(t.ingress_h, 0.05) / T) + 2e-4
    sig_p = sig_t0 * np.sqrt(2) / max(t.n_obs - 1, 1)
    sig_dur = T * 0.6 / snr
    depth_true = t.depth_ppm if t.kind != "sinusoid" else 2 * t.depth_ppm * 0.8
    sig_depth = t.box_depth_ppm / snr * 1.1
    epoch = t.epoch + rng.normal(0, sig_t0)
    period = t.period + rng.normal(0, sig_p)
    dur = max(T + rng.normal(0, sig_dur), 0.3)
    depth = max(depth_true + rng.normal(0, sig_depth), 1.0)
    k = float(np.sqrt(depth * 1e-6) * (1.08 if t.impact > 0.5 else 1.03))
    a_rs = ph.a_over_rstar(period, s.mass, s.radius)
    b = float(np.clip(t.impact + rng.normal(0, 0.1), 0, 1.0 + k))
    a_au = a_rs * s.radius * ph.RSUN_CM / ph.AU_CM
    rp = k * s.radius * ph.REARTH_PER_RSUN
    teq = ph.equilibrium_temp(s.teff, a_rs)
    insol = ph.insolation_earth(s.teff, s.radius, a_au)
    incl = float(np.degrees(np.arccos(min(b / a_rs, 1.0))))
    density = s.mass / s.radius ** 3
    converged = not ((t.kind == "sinusoid" and rng.random() < 0.5) or rng.random() < 0.04)
    ing = min(t.ingress_h * rng.uniform(0.8, 1.2), dur / 2)

    def params(ep, dep, du) -> dict:
        return {"transitEpochBtjd": (ep, sig_t0), "eccentricity": (0, 0), "longitudeOfPeriDegrees": (0, 0),
                "planetRadiusEarthRadii": (rp * np.sqrt(dep / depth), rp * 0.1), "semiMajorAxisAu": (a_au, a_au * 0.05),
                "minImpactParameter": (b, 0.15), "starRadiusSolarRadii": (s.radius, s.radius * 0.05),
                "transitDurationHours": (du, sig_dur), "transitIngressTimeHours": (ing, 0.1),
                "transitDepthPpm": (dep, sig_depth), "orbitalPeriodDays": (period, sig_p),
                "ratioPlanetRadiusToStarRadius": (k * np.sqrt(dep / depth), k * 0.05),
                "ratioSemiMajorAxisToStarRadius": (a_rs, a_rs * 0.1), "inclinationDegrees": (incl, 0.5),
                "equilibriumTempKelvin": (teq, teq * 0.05), "effectiveStellarFlux": (insol, insol * 0.1),
                "starDensitySolarDensity": (density, density * 0.2)}

    dof = int(max(t.n_in_cadences * 3, 100))
    fit = {"converged": converged, "snr": snr * rng.uniform(0.95, 1.08), "chi2": dof * rng.uniform(0.95, 1.2),
           "dof": dof, "params": params(epoch, depth, dur)}
    odd_d = t.depth_ppm if t.kind in ("eb", "eb_oddeven") else depth_true
    even_d = t.depth_even_ppm if t.kind in ("eb", "eb_oddeven") else depth_true
    sig_half = sig_depth * np.sqrt(2)
    d_odd = max(odd_d + rng.normal(0, sig_half), 1.0)
    d_even = max(even_d + rng.normal(0, sig_half), 1.0)
    odd = dict(fit, snr=fit["snr"] / np.sqrt(2), params=params(epoch + rng.normal(0, sig_t0), d_odd, dur))
    even = dict(fit, snr=fit["snr"] / np.sqrt(2), params=params(epoch + rng.normal(0, sig_t0), d_even, dur))
    chi2_oe = float(((d_odd - d_even) / (sig_half * np.sqrt(2))) ** 2)
    oe = (chi2_oe, float(math.erfc(math.sqrt(chi2_oe / 2))))  # chi-square (1 dof) survival function

    trp_conv = rng.random() > 0.02
    trp = {"converged": trp_conv, "snr": snr * rng.uniform(0.97, 1.07), "chi2": dof, "dof": dof,
           "params": {"transitEpochBtjd": (t.epoch + rng.normal(0, sig_t0), sig_t0),
                      "transitDepthPpm": (max(depth_true + rng.normal(0, sig_depth), 1.0), sig_depth),
                      "transitDurationHours": (max(T + rng.normal(0, sig_dur), 0.3), sig_dur),
                      "transitIngressTimeHours": (ing, 0.13), "orbitalPeriodDays": (period, sig_p),
                      "ratioSemiMajorAxisToStarRadius": (a_rs, a_rs * 0.1),
                      "ratioPlanetRadiusToStarRadius": (k, k * 0.05)}}
    # centroid offsets (arcsec): large and significant only for blends
    if t.centroid_offset_arcsec > 0:
        err = max(0.4, t.centroid_offset_arcsec / rng.uniform(5, 15))
        sky = abs(t.centroid_offset_arcsec + rng.normal(0, err))
        pa = t.centroid_pa
    else:
        err = float(rng.uniform(0.5, 3.0))
        sky = float(err * min(abs(rng.normal(0, 0.8)), 2.5))
        pa = float(rng.uniform(0, 2 * np.pi))
    cent_tic = {"sky": sky, "ra": sky * np.sin(pa), "dec": sky * np.cos(pa), "err": err}
    oot_sky = sky * rng.uniform(0.85, 1.05) if t.centroid_offset_arcsec > 0 else err * min(abs(rng.normal(0, 0.8)), 2.5)
    cent_oot = {"sky": oot_sky, "ra": oot_sky * np.sin(pa), "dec": oot_sky * np.cos(pa), "err": err * 1.3}

    ses = float(mes_dv / np.sqrt(max(t.n_obs, 1)) * rng.uniform(1.05, 1.4))
    if t.n_obs <= 1:
        ses = mes_dv
    sec_depth = t.secondary_depth_ppm
    sec_err = sig_depth
    sec_mes = sec_depth / sec_err * snr / max(snr, 1) if sec_depth else abs(rng.normal(0, 1))
    chi_red = {"sinusoid": 3.0, "modump": 2.5, "skyline": 2.0}.get(t.kind, 1.0)
    dof2 = max(t.n_obs - 1, 1)
    candidate = {"epoch": t.epoch + rng.normal(0, T / 24 / 8), "period": t.period * (1 + rng.normal(0, 2e-5)),
                 "pulse": ph.nearest_pulse(T), "mes": mes_dv, "ses": ses, "nobs": t.n_obs, "nexp": t.n_exp,
                 "robust": mes_dv * rng.uniform(0.85, 1.0), "chi2_1": t.n_obs * chi_red * rng.uniform(0.7, 1.3),
                 "dof1": t.n_obs, "chi2_2": dof2 * chi_red * rng.uniform(0.7, 1.3), "dof2": dof2,
                 "chi2_gof": 240 * chi_red * rng.uniform(0.9, 1.3), "dof_gof": 240,
                 "model_chi2_2": dof2 * chi_red * rng.uniform(0.7, 1.3),
                 "model_chi2_gof": 240 * chi_red * rng.uniform(0.9, 1.2),
                 "suspected_eb": t.kind in ("eb", "eb_oddeven") and depth > 50000,
                 "significance": float(np.exp(-0.5 * mes_dv ** 2) if mes_dv < 38 else 1e-300)}
    weak = {"phase": t.period / 2 if sec_depth else float(rng.uniform(0.2, 0.8) * t.period),
            "mes": sec_mes if sec_depth else abs(rng.normal(0, 1)), "min_phase": float(rng.uniform(0, t.period)),
            "min_mes": -abs(rng.normal(1.5, 0.5)), "mad": rng.uniform(0.9, 1.1), "robust": rng.uniform(0, 1),
            "median": rng.normal(0, 0.05), "depth": sec_depth + rng.normal(0, sec_err), "depth_err": sec_err}
    return {"all": fit, "odd": odd, "even": even, "trapezoid": trp, "oddeven": oe, "candidate": candidate,
            "weak_secondary": weak, "cent_tic": cent_tic, "cent_oot": cent_oot,
            "motion_stat": (float(rng.chisquare(2)), float(rng.uniform(0, 1))),
            "longer": (float(rng.chisquare(1)), float(rng.uniform(0.2, 1)), 0),
            "shorter": (float(rng.chisquare(1)), float(rng.uniform(0.2, 1)), 0),
            "oe_epoch": (float(rng.chisquare(1)), float(rng.uniform(0.2, 1))),
            "ghost": (float(rng.uniform(10, 40)), float(rng.uniform(0, 0.1)), float(rng.uniform(1, 10)),
                      float(rng.uniform(0.2, 0.9))),
            "albedo": (float(rng.uniform(0.05, 0.3)), 0.1)}


def _difference_image(rng, s: Star, t: Tce, fit: dict, grid: ph.SectorGrid, size: int = 9) -> dict:
    """In/out-of-transit and difference images: a Gaussian PSF at the source position."""
    r0, c0 = int(s.row) - size // 2, int(s.col) - size // 2
    rr, cc = np.mgrid[0:size, 0:size]
    flux = ph.tess_flux_eps(s.tmag)
    dy, dx = (s.row - r0 - 0.5), (s.col - c0 - 0.5)
    psf = np.exp(-0.5 * ((rr - dy) ** 2 + (cc - dx) ** 2) / 0.9 ** 2)
    psf /= psf.sum()
    oot = 35.0 + flux * psf
    if t.centroid_offset_arcsec > 0:
        off = t.centroid_offset_arcsec / 21.0
        sy, sx = dy + off * np.cos(t.centroid_pa), dx + off * np.sin(t.centroid_pa)
        spsf = np.exp(-0.5 * ((rr - sy) ** 2 + (cc - sx) ** 2) / 0.9 ** 2)
        spsf /= spsf.sum()
        diff = flux * t.box_depth_ppm * 1e-6 * spsf * 1.0
    else:
        diff = flux * t.box_depth_ppm * 1e-6 * psf
    n_in = max(t.n_in_cadences, 1)
    err = np.sqrt(oot * grid.dt * 86400 * 0.8) / (grid.dt * 86400 * 0.8) / np.sqrt(n_in)
    intr = oot - diff + rng.normal(0, err)
    return {"sector": grid.sector, "start": int(grid.cadenceno[0]), "end": int(grid.cadenceno[-1]),
            "ntransits": t.n_obs, "n_in": n_in, "n_out": 2 * n_in, "camera": s.camera, "ccd": s.ccd,
            "row": s.row, "col": s.col, "quality": float(rng.uniform(0.75, 0.98)), "pix_row0": r0 + 1,
            "pix_col0": c0 + 1, "oot": oot, "intr": intr, "err": err * np.ones_like(oot),
            "diff": oot - intr, "snr": (oot - intr) / err}


def _fold_for_plot(time, flux, period, epoch, dur_h, model, nbin=120):
    """Binned phase-folded flux (ppm) within +-2.5 durations of transit, for the report plots."""
    ph_h = ph.phase_days(time, period, epoch) * 24
    half = min(2.5 * dur_h, period * 12)
    sel = np.isfinite(flux) & (np.abs(ph_h) < half)
    edges = np.linspace(-half, half, nbin + 1)
    idx = np.clip(np.digitize(ph_h[sel], edges) - 1, 0, nbin - 1)
    cnt = np.bincount(idx, minlength=nbin)
    with np.errstate(invalid="ignore", divide="ignore"):
        y = np.bincount(idx, weights=flux[sel], minlength=nbin) / cnt * 1e6
        m = np.bincount(idx, weights=model[sel], minlength=nbin) / cnt * 1e6
    x = 0.5 * (edges[1:] + edges[:-1])
    ok = cnt > 0
    return x[ok], y[ok], m[ok]


def render_target(job: tuple) -> dict:
    """Write every file of one target. Returns per-TCE values measured/written (for truth)."""
    from steps.tec import simulate_pdf as pdfw

    s, grid, naming, dirs, seed, with_tpf = job[:6]
    dv_detrend = job[6] if len(job) > 6 else "exact"
    rng = np.random.default_rng([seed, 1000 + s.index])
    t = grid.time
    n = t.size
    head = _star_header_dict(s, grid, naming)
    sigma = s.sigma_ppm * 1e-6
    flux0 = float(ph.tess_flux_eps(s.tmag))
    trend = ph.stellar_trend(t, *s.trend)
    deficits = [signal_deficit(t, x) for x in s.tces]
    rel = 1.0 + trend - (np.sum(deficits, axis=0) if deficits else 0.0)
    white = rng.normal(0.0, sigma, n)
    if s.red_ratio > 0:
        white = white + correlated_noise(np.random.default_rng([seed, 3000 + s.index]), n, grid.dt, sigma,
                                  s.red_ratio, s.red_tau_h)
    # small flux glitch after each momentum dump (decays in ~20 min)
    glitch = np.zeros(n)
    for td in grid.dump_times:
        after = (t > td) & (t < td + 0.1)
        glitch[after] += 0.6 * sigma * np.exp(-(t[after] - td) / 0.014) * rng.choice([-1, 1])
    pdc_rel = rel + white + glitch
    outliers = (grid.quality & ph.Q_IMPULSIVE_OUTLIER) > 0
    pdc_rel[outliers] += 6 * sigma
    pdc = flux0 * pdc_rel
    pdc[~grid.pdc_valid] = np.nan
    pdc_err = np.full(n, flux0 * sigma * 1.0)
    pdc_err[~grid.pdc_valid] = np.nan
    # SAP: PDC before systematics correction (scattered-light ramps, drift, dump steps)
    flfrc, crowd = float(rng.uniform(0.8, 0.95)), float(rng.uniform(0.85, 0.99))
    orbit_starts = (grid.tstart, grid.gap_end)
    ramp = sum(0.004 * np.exp(-np.clip(t - a, 0, None) / 0.4) * (t >= a) for a in orbit_starts)
    drift = 0.002 * (t - t.mean()) / (grid.tstop - grid.tstart)
    steps = 0.0005 * np.cumsum(np.isin(np.arange(n), np.searchsorted(t, grid.dump_times)) * rng.normal(0, 1, n))
    sap = flux0 * flfrc / crowd * (rel + white + ramp + drift + steps)
    sap[grid.in_gap] = np.nan
    bkg = 15.0 * 10 * (1 + 20 * ramp) + rng.normal(0, 2, n)
    # pointing and centroids (CCD pixels); blends move the centroid in transit
    jitter = 0.002 * np.sin(2 * np.pi * t / 1.3) + 0.004 * (t - t.mean()) / 27
    pos1 = jitter + rng.normal(0, 0.0008, n)
    pos2 = -0.7 * jitter + rng.normal(0, 0.0008, n)
    mom1 = s.col + pos1 + rng.normal(0, 0.003, n)
    mom2 = s.row + pos2 + rng.normal(0, 0.003, n)
    for x, d in zip(s.tces, deficits):
        if x.centroid_offset_arcsec > 0:
            off_px = x.centroid_offset_arcsec / 21.0
            mom1 -= off_px * np.sin(x.centroid_pa) * d
            mom2 -= off_px * np.cos(x.centroid_pa) * d
    timecorr = 0.0045 * np.cos(np.radians(s.dec)) * np.cos(2 * np.pi * (t - 2200.0) / 365.25 + np.radians(s.ra))
    lc_time = np.where(grid.in_gap, np.nan, t)
    nanv = np.full(n, np.nan)
    for arr in (mom1, mom2, pos1, pos2, bkg):
        arr[grid.in_gap] = np.nan
    lc_cols = {"TIME": lc_time, "TIMECORR": timecorr, "CADENCENO": grid.cadenceno.astype(np.int32),
               "SAP_FLUX": sap, "SAP_FLUX_ERR": pdc_err * flfrc, "SAP_BKG": bkg, "SAP_BKG_ERR": np.full(n, 3.0),
               "PDCSAP_FLUX": pdc, "PDCSAP_FLUX_ERR": pdc_err, "QUALITY": grid.quality, "PSF_CENTR1": nanv,
               "PSF_CENTR1_ERR": nanv, "PSF_CENTR2": nanv, "PSF_CENTR2_ERR": nanv, "MOM_CENTR1": mom1,
               "MOM_CENTR1_ERR": np.full(n, 0.003), "MOM_CENTR2": mom2, "MOM_CENTR2_ERR": np.full(n, 0.003),
               "POS_CORR1": pos1, "POS_CORR2": pos2}
    aperture, ap_origin = _aperture(s)
    pdc_m = {"TOT": (s.pdc_noi * 0.95, 60.0), "COR": (rng.uniform(0.8, 0.99), 65.0),
             "VAR": (rng.uniform(0.85, 1.0), 50.0), "NOI": (s.pdc_noi, 100 * s.pdc_noi - 10),
             "EPT": (rng.uniform(0.9, 1.0), 50.0)}
    head.update(crowdsap=crowd, flfrcsap=flfrc, pdcvar=float(rng.uniform(0.5, 3)), pdc_metrics=pdc_m)
    gz = naming.gz
    write_bytes(dirs["lc"] / naming.lc(s.tic), lightcurve_fits(head, grid, lc_cols, aperture, ap_origin), gz)

    # DV time series: LC_INIT of TCE j has the transits of TCEs 1..j-1 gapped
    med = float(np.nanmedian(pdc))
    lc_init_all = pdc / med - 1.0
    trend_rel = trend - np.nanmedian(trend[grid.pdc_valid])
    base = {"TIME": np.where(grid.in_gap, 0.0, t), "TIMECORR": timecorr,
            "CADENCENO": grid.cadenceno.astype(np.int32)}
    gapped = np.zeros(n, dtype=bool)
    tce_tables, planets_pdf, xml_planets, rows = [], [], [], []
    for x, d in zip(s.tces, deficits):
        fitv = _dv_fits_values(rng, s, x, grid)
        dimg = _difference_image(rng, s, x, fitv, grid)
        fitv["diffimg"] = dimg
        fitv["toi"], fitv["toi_corr"] = x.toi, float(rng.uniform(0.85, 0.99))
        xml_planets.append(fitv)
        lc_init = np.where(gapped, np.nan, lc_init_all)
        if dv_detrend == "median":
            med_window_h = 3.0 * x.duration_h
            detr = lc_init - running_median(lc_init, ~ph.in_transit_mask(t, x.period, x.epoch, x.duration_h),
                                            int(round(med_window_h * grid.cad_per_hr)))
        else:
            med_window_h = max(3 * x.duration_h, 8.0)
            detr = lc_init - trend_rel
        detr -= np.nanmedian(detr)
        model = -signal_deficit(t, x)
        model = model - np.median(model) if x.kind == "sinusoid" else model
        model = np.where(np.isfinite(lc_init), model, np.nan)
        p_all = fitv["all"]["params"]
        cols = {"PHASE": ph.dv_phase(base["TIME"], p_all["orbitalPeriodDays"][0], p_all["transitEpochBtjd"][0]),
                "LC_INIT": lc_init, "LC_INIT_ERR": np.where(np.isfinite(lc_init), pdc_err / med, np.nan),
                "LC_WHITE": detr / sigma, "LC_DETREND": detr, "MODEL_INIT": model, "MODEL_WHITE": model / sigma}
        pc = fitv["candidate"]
        hdr = [("TPERIOD", round(pc["period"], 7), "[d] period"),
               ("TEPOCH", round(pc["epoch"], 6), "[BTJD] epoch of first transit"),
               ("TDEPTH", round(p_all["transitDepthPpm"][0], 2), "[ppm] transit depth"),
               ("TSNR", round(fitv["all"]["snr"], 3), "transit signal-to-noise ratio"),
               ("TDUR", round(p_all["transitDurationHours"][0], 4), "[hr] transit duration"),
               ("INDUR", round(p_all["transitIngressTimeHours"][0], 4), "[hr] ingress duration"),
               ("IMPACT", round(p_all["minImpactParameter"][0], 4), "impact parameter"),
               ("INCLIN", round(p_all["inclinationDegrees"][0], 2), "[deg] inclination"),
               ("DRRATIO", round(p_all["ratioSemiMajorAxisToStarRadius"][0], 4), "planet-star distance/star radius"),
               ("RADRATIO", round(p_all["ratioPlanetRadiusToStarRadius"][0], 5), "planet radius/star radius"),
               ("PRADIUS", round(p_all["planetRadiusEarthRadii"][0], 3), "[Earth radii] planet radius"),
               ("MAXMES", round(pc["mes"], 3), "maximum multi-event statistic"),
               ("MAXSES", round(pc["ses"], 3), "maximum single-event statistic"),
               ("NTRANS", int(x.n_obs), "number of transits"),
               ("MEDDETR", round(med_window_h, 2), "[hr] median detrender window"),
               ("CONVERGE", bool(fitv["all"]["converged"]), "fit converged")]
        tce_tables.append({"columns": cols, "header": hdr})
        fx, fy, fm = _fold_for_plot(t, detr, x.period, x.epoch, x.duration_h, np.nan_to_num(model))
        planets_pdf.append({"pn": x.pn, "period": pc["period"], "epoch": pc["epoch"],
                            "depth": p_all["transitDepthPpm"][0], "duration": p_all["transitDurationHours"][0],
                            "mes": pc["mes"], "ntran": x.n_obs, "fold_x": fx, "fold_y": fy, "fold_model": fm,
                            "diffimg": dimg})
        rows.append({"tic": s.tic, "planet_number": x.pn, "mes_dv": pc["mes"], "dv_depth_ppm": p_all["transitDepthPpm"][0],
                     "dv_period": p_all["orbitalPeriodDays"][0], "dv_epoch_btjd": p_all["transitEpochBtjd"][0],
                     "dv_duration_h": p_all["transitDurationHours"][0]})
        gapped |= ph.in_transit_mask(t, x.period, x.epoch, x.duration_h, widen=1.5)
    dew = np.where(grid.pdc_valid, 1.0, 0.0)
    for td in grid.dump_times:
        dew[(t > td) & (t < td + 1 / 24) & grid.pdc_valid] = 0.3
    cdpp_mod = 1 + 0.05 * np.sin(2 * np.pi * t / 6.0)
    stats = {"PDCSAP_FLUX": pdc, "PDCSAP_FLUX_ERR": pdc_err, "DEWEIGHTS": dew, "QUALITY": grid.quality}
    for key, hours in (("CDPP_1_0", 1.0), ("CDPP_2_0", 2.0), ("CDPP_4_5", 4.5)):
        stats[key] = np.where(grid.pdc_valid, ph.cdpp_ppm(s.sigma_ppm, hours, grid.cad_per_hr) * cdpp_mod, np.nan)
    write_bytes(dirs["dvt"] / naming.dv(s.tic, "dvt.fits" + (".gz" if gz else "")),
                dv_timeseries_fits(head, base, tce_tables, stats), gz)

    sectors_observed = "".join("1" if i == grid.sector else "0" for i in range(max(69, grid.sector + 1)))
    target = dict(head, start_cadence=int(grid.cadenceno[0]), end_cadence=int(grid.cadenceno[-1]),
                  sectors_observed=sectors_observed, task_id=404200 + s.index % 17, toi_id=s.toi_id,
                  teff_e=120.0, density=s.mass / s.radius ** 3, ld=_limb_darkening(s.teff))
    write_bytes(dirs["dvr"] / naming.dv(s.tic, "dvr.xml" + (".gz" if gz else "")),
                dv_results_xml(target, xml_planets), gz)

    creator = "TESS SPOC DV (astroflow TEC simulator)"
    pdf_head = dict(head, pin=f"{naming.pin:05d}", dv_stamp=naming.dv_stamp)
    write_bytes(dirs["rep"] / naming.dv(s.tic, "dvr.pdf"), pdfw.dv_report_pdf(pdf_head, planets_pdf, creator), False)
    write_bytes(dirs["rep"] / naming.dv(s.tic, "dvm.pdf"), pdfw.dv_minireport_pdf(pdf_head, planets_pdf, creator),
                False)
    for p in planets_pdf:
        write_bytes(dirs["rep"] / naming.dvs(s.tic, p["pn"]), pdfw.dv_summary_pdf(pdf_head, p, creator), False)
    if with_tpf:
        write_bytes(dirs["tp"] / naming.tp(s.tic), _tpf_bytes(rng, s, grid, head, rel + white, pos1, pos2,
                                                             timecorr, deficits), gz)
    return {"rows": rows, "sigma_ppm": s.sigma_ppm}


def running_median(flux: np.ndarray, use: np.ndarray, window: int, step: int = 5) -> np.ndarray:
    """Centred running median of ``flux`` over ``window`` cadences, from the finite ``use`` points only
    (the window is cut short at the ends and at gaps), as DV's median detrender; evaluated every
    ``step`` cadences and interpolated between."""
    from numpy.lib.stride_tricks import sliding_window_view

    x = np.where(use & np.isfinite(flux), flux, np.nan)
    half = max(window // 2, 1)
    centres = np.arange(0, x.size, step)
    padded = np.concatenate([np.full(half, np.nan), x, np.full(half, np.nan)])
    view = sliding_window_view(padded, 2 * half + 1)[centres]
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            med = np.nanmedian(view, axis=1)
    ok = np.isfinite(med)
    if not ok.any():
        return np.zeros_like(flux)
    return np.interp(np.arange(x.size), centres[ok], med[ok])


def correlated_noise(rng, n: int, dt_d: float, sigma: float, ratio: float, tau_h: float) -> np.ndarray:
    """Correlated noise (an Ornstein-Uhlenbeck process, as granulation and residual systematics).

    Its variance in a box of duration T >> tau is ``ratio`` times that of white noise of
    per-cadence ``sigma`` in the same box: variance sigma_r^2 with sigma_r^2 2 tau = ratio
    sigma^2 dt.
    """
    from scipy.signal import lfilter

    tau = tau_h / 24.0
    a = math.exp(-dt_d / tau)
    sigma_r = sigma * math.sqrt(ratio * dt_d / (2.0 * tau))
    e = rng.normal(0.0, sigma_r * math.sqrt(1.0 - a * a), n)
    e[0] = rng.normal(0.0, sigma_r)
    return lfilter([1.0], [1.0, -a], e)


def _limb_darkening(teff: float) -> tuple:
    u1 = float(np.clip(0.62 - 0.00006 * (teff - 3500), 0.25, 0.65))
    return (u1, 0.52, -0.15, 0.05)


def _aperture(s: Star, size: int = 11) -> tuple[np.ndarray, tuple[int, int]]:
    """SPOC aperture bitmask: 1 collected, 2 optimal aperture, 8 flux-weighted centroid."""
    rr, cc = np.mgrid[0:size, 0:size] - size // 2
    rad = np.hypot(rr, cc)
    ap = np.where(rad <= 3.6, 1, 0) | np.where(rad <= 4.6, 4, 0) | 1
    ap |= np.where(rad <= 1.6, 2 | 8, 0)
    return ap.astype(np.int32), (int(s.row) - size // 2, int(s.col) - size // 2)


def _tpf_bytes(rng, s: Star, grid, head, rel_flux, pos1, pos2, timecorr, deficits, size: int = 5) -> bytes:
    """Small target-pixel file: Gaussian PSF at the target (and the blend source, if any)."""
    n = grid.time.size
    r0, c0 = int(s.row) - size // 2, int(s.col) - size // 2
    rr, cc = np.mgrid[0:size, 0:size]
    dy, dx = s.row - r0 - 0.5, s.col - c0 - 0.5
    psf = np.exp(-0.5 * ((rr - dy) ** 2 + (cc - dx) ** 2) / 0.9 ** 2)
    psf = (psf / psf.sum()).astype(np.float32)
    flux0 = float(ph.tess_flux_eps(s.tmag))
    blend = [(x, d) for x, d in zip(s.tces, deficits) if x.centroid_offset_arcsec > 0]
    target_rel = rel_flux + (sum(d for _, d in blend) if blend else 0.0)
    img = flux0 * target_rel[:, None, None].astype(np.float32) * psf[None]
    for x, d in blend:
        off = x.centroid_offset_arcsec / 21.0
        sy, sx = dy + off * np.cos(x.centroid_pa), dx + off * np.sin(x.centroid_pa)
        spsf = np.exp(-0.5 * ((rr - sy) ** 2 + (cc - sx) ** 2) / 0.9 ** 2)
        spsf = (spsf / max(spsf.sum(), 1e-9)).astype(np.float32)
        img -= (flux0 * d)[:, None, None].astype(np.float32) * spsf[None]
    bkg = np.float32(15.0) + rng.normal(0, 0.5, (n, 1, 1)).astype(np.float32)
    t_exp = grid.dt * 86400 * 0.8
    err = np.sqrt(np.abs(img) * t_exp + 100.0).astype(np.float32) / np.float32(t_exp)
    img = img + rng.normal(0, 1, img.shape).astype(np.float32) * err
    img[grid.in_gap] = np.nan
    aperture = np.where(psf > 0.02, 3, 1).astype(np.int32)
    cols = {"TIME": np.where(grid.in_gap, np.nan, grid.time), "TIMECORR": timecorr,
            "CADENCENO": grid.cadenceno.astype(np.int32),
            "RAW_CNTS": np.nan_to_num((img + bkg) * t_exp).astype(np.int32), "FLUX": img,
            "FLUX_ERR": err, "FLUX_BKG": np.broadcast_to(bkg, img.shape).astype(np.float32),
            "FLUX_BKG_ERR": np.full(img.shape, 0.5, np.float32), "QUALITY": grid.quality, "POS_CORR1": pos1,
            "POS_CORR2": pos2}
    return target_pixel_fits(head, grid, cols, (r0, c0), aperture)


# -- public API ------------------------------------------------------------------------------


def simulate_sector(out: Path, *, n_tces: int = 200, seed: int = 0, sector: int = 33, family: str = "spoc",
                    cadence: str | None = None, with_tpf: bool = False, gzip_files: bool | None = None,
                    fractions: dict | None = None, workers: int | None = None,
                    red_noise: tuple[float, float] | None = None, red_tau_h: tuple[float, float] = (0.5, 6.0),
                    eb_secondary: tuple[float, float] = (0.15, 0.6),
                    planet_periods: tuple[float, float] = (0.6, 13.0), host_radius: tuple[float, float] | None = None,
                    dv_detrend: str = "exact") -> SimulatedSector:
    """Write a simulated sector under `out` and return its paths.

    family: "spoc" (2-min SPOC names, MIT layout, gzipped FITS/XML) or "ftl" (HLSP names,
    NAS layout, plain files). cadence: "2min", "200s" or "10min" (default 2min for spoc,
    10min for ftl). fractions: share of TCEs per kind (see DEFAULT_FRACTIONS).
    workers: processes (default: the CPU count); the output does not depend on it.
    red_noise, red_tau_h, eb_secondary, planet_periods, host_radius: see ``plan_sector`` (the defaults give the white-noise
    sector the truth tests were written on).  dv_detrend: how DV's ``LC_DETREND`` is made: "exact"
    (the stellar trend removed exactly, the default) or "median" (a running median over 3 transit
    durations with the transits left out, cut short at gaps and ends, as SPOC DV's median
    detrender: it leaves the noise, and any variability faster than the window, in).
    """
    if family not in ("spoc", "ftl"):
        raise ValueError(f"family must be 'spoc' or 'ftl', not {family!r}")
    if dv_detrend not in ("exact", "median"):
        raise ValueError(f"dv_detrend must be 'exact' or 'median', not {dv_detrend!r}")
    if n_tces < 1:
        raise ValueError("n_tces must be >= 1")
    cadence = cadence or ("2min" if family == "spoc" else "10min")
    cadence_min = {"2min": 2.0, "200s": 200 / 60, "10min": 10.0}[cadence]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    grid, stars, skyline, catalogue = plan_sector(n_tces, seed, sector, cadence_min, fractions,
                                                  red_noise=red_noise, red_tau_h=red_tau_h,
                                                  eb_secondary=eb_secondary, planet_periods=planet_periods,
                                                  host_radius=host_radius)
    end = _btjd_to_datetime(grid.tstop)
    lc_stamp = (end + timedelta(hours=5, minutes=25, seconds=10)).strftime("%Y%j%H%M%S")
    dv_stamp = (end + timedelta(days=1, hours=0, minutes=15, seconds=41)).strftime("%Y%j%H%M%S")
    gz = (family == "spoc") if gzip_files is None else gzip_files
    naming = Naming(family, sector, lc_stamp, dv_stamp, gz=gz)
    root, dirs = _layout(out, family, sector, with_tpf)

    jobs = [(s, grid, naming, dirs, seed, with_tpf, dv_detrend) for s in stars]
    n_workers = workers or os.cpu_count() or 1
    if n_workers > 1 and len(jobs) > 4:
        with ProcessPoolExecutor(max_workers=min(n_workers, len(jobs))) as pool:
            results = list(pool.map(render_target, jobs, chunksize=max(1, len(jobs) // (8 * n_workers))))
    else:
        results = [render_target(j) for j in jobs]
    dv_rows = {(r["tic"], r["planet_number"]): r for res in results for r in res["rows"]}

    when = end + timedelta(days=8)
    _toi_csv(catalogue["tois"], out / "toi.csv", when)
    _known_csv(catalogue["known"], out / "known_planets.csv", when)
    truth_path, sky_path = out / "truth.parquet", out / "truth_skyline.parquet"
    pq.write_table(truth_table(stars, grid, dv_rows), truth_path)
    sky_tics = sorted(s.tic for s in stars for x in s.tces if x.in_skyline)
    pq.write_table(pa.table({"event_time_btjd": pa.array(skyline["times"], pa.float64()),
                             "duration_h": pa.array([skyline["duration_h"]] * len(skyline["times"]), pa.float64()),
                             "period": pa.array([skyline["period"]] * len(skyline["times"]), pa.float64()),
                             "tics": pa.array([sky_tics] * len(skyline["times"]), pa.list_(pa.int64()))}), sky_path)
    return SimulatedSector(root=out, sector_dir=root, sector=sector, family=family, cadence=cadence,
                           toi_csv=out / "toi.csv", known_planets_csv=out / "known_planets.csv", truth=truth_path,
                           truth_skyline=sky_path, n_tces=sum(len(s.tces) for s in stars), n_targets=len(stars),
                           dirs=dirs)


def truth_table(stars: list[Star], grid: ph.SectorGrid, dv_rows: dict) -> pa.Table:
    """One row per TCE with the injected truth, the TIC's properties and the DV values written."""
    recs = []
    for s in stars:
        for x in s.tces:
            dv = dv_rows.get((s.tic, x.pn), {})
            recs.append({
                "tic": s.tic, "planet_number": x.pn, "kind": x.kind, "period": x.period, "epoch_btjd": x.epoch,
                "duration_h": x.duration_h, "ingress_h": x.ingress_h, "impact": x.impact,
                "depth_ppm": x.depth_ppm, "box_depth_ppm": x.box_depth_ppm, "snr_expected": x.mes,
                "secondary_depth_ppm": x.secondary_depth_ppm,
                "oddeven_ratio": (x.depth_even_ppm / x.depth_ppm) if x.kind in ("eb", "eb_oddeven") else 1.0,
                "centroid_offset_arcsec": x.centroid_offset_arcsec, "on_momentum_dump": x.on_momentum_dump,
                "in_skyline": x.in_skyline, "known_planet_name": x.known_planet_name, "toi": x.toi,
                "toi_disposition": x.toi_disposition, "expected_known_flag": x.expected_known_flag,
                "related_pn": x.related_pn, "n_transits": x.n_obs, "n_transits_expected": x.n_exp,
                "n_in_transit_cadences": x.n_in_cadences, "n_tces_on_tic": len(s.tces),
                "tmag": s.tmag, "teff": s.teff, "radius_rsun": s.radius, "ra": s.ra, "dec": s.dec,
                "noise_ppm_per_cadence": s.sigma_ppm, "red_ratio": s.red_ratio, "red_tau_h": s.red_tau_h,
                "cdpp1h_ppm": ph.cdpp_ppm(s.sigma_ppm, 1.0, grid.cad_per_hr),
                "pdc_noi": s.pdc_noi, "mes_dv": dv.get("mes_dv", np.nan), "dv_depth_ppm": dv.get("dv_depth_ppm", np.nan),
                "dv_period": dv.get("dv_period", np.nan), "dv_epoch_btjd": dv.get("dv_epoch_btjd", np.nan),
                "dv_duration_h": dv.get("dv_duration_h", np.nan)})
    types = {"tic": pa.int64(), "planet_number": pa.int32(), "related_pn": pa.int32(), "n_transits": pa.int32(),
             "n_transits_expected": pa.int32(), "n_in_transit_cadences": pa.int32(), "n_tces_on_tic": pa.int32(),
             "expected_known_flag": pa.int32(), "kind": pa.string(), "known_planet_name": pa.string(),
             "toi_disposition": pa.string(), "on_momentum_dump": pa.bool_(), "in_skyline": pa.bool_()}
    cols = {}
    for key in recs[0]:
        cols[key] = pa.array([r[key] for r in recs], types.get(key, pa.float64()))
    meta = {"known_flag": KNOWN_FLAG_DOC, "sector": str(grid.sector), "cadence_min": str(grid.cadence_min)}
    return pa.table(cols).replace_schema_metadata(meta)
