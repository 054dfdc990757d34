"""Sites, stars, nights and the barycentric motion for the NRES simulator.

What is simulated
    The four NRES units at their LCO sites (real geodetic positions and time zones; unit and
    camera names as in the archive), each night's plan (an afternoon calibration block, then the
    template star and the science stars near their transits, with exposure times from their V
    magnitudes, overheads and the DAY-OBS of the local night), the stars (bright RV stars near the
    celestial equator, visible from every site in January; catalogue values close to SIMBAD's,
    but the simulation's truth is what ``targets.csv`` and ``truth/stars.parquet`` say), the
    telescope's pointing (the catalogue position moved by proper motion to the date), and two
    barycentric corrections per frame, both from astropy (Wright & Eastman 2014 convention, the
    exposure mid-point, the site's location):

    * ``true_barycentric``: the star's space motion applied (pm, parallax as distance), the
      correction the simulated Doppler shift uses;
    * ``reported_barycentric``: what NRES (banzai-nres) reports from the frame's header: the
      header RA/DEC, no proper motion, ``DATE-OBS + EXPTIME / 2``; also its BJD_TDB.

    They differ by less than 0.1 m/s because the header's RA/DEC is the position of date; the J2000
    catalogue position without proper motion (CAT-RA/CAT-DEC) would be off by 0.5-2 m/s for these
    stars in January.

What is simplified, and why
    No weather, no pointing errors beyond the header's rounding, no airmass limits: the plan puts
    each star at its transit when it falls in the night (else at the night's edge), which keeps
    every star well up in January at every site.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np


@dataclass(frozen=True)
class Site:
    code: str
    ident: int  # a fixed number for seeding (independent of which sites a run simulates)
    name: str
    instrument: str  # NRES unit, the archive's TELESCOP
    camera: str  # the archive's INSTRUME
    enclosure: str
    latitude: float  # deg
    longitude: float  # deg east
    height: float  # m
    timezone: str
    science_fiber: int  # fiber the telescope feeds (0 or 2); fiber 1 carries the ThAr


SITES = {s.code: s for s in (
    Site("lsc", 1, "LCOGT node at Cerro Tololo Inter-American Observatory", "nres01", "fl09", "domb",
         -30.1673833, -70.8047889, 2198.0, "America/Santiago", 2),
    Site("elp", 2, "LCOGT node at McDonald Observatory", "nres02", "fl17", "domb",
         30.6801, -104.015173, 2027.0, "America/Chicago", 0),
    Site("cpt", 3, "LCOGT node at SAAO", "nres03", "fl13", "domc",
         -32.3805542, 20.8101815, 1804.0, "Africa/Johannesburg", 0),
    Site("tlv", 4, "LCOGT node at Wise Observatory", "nres04", "fl18", "doma",
         30.5958, 34.7633, 875.0, "Asia/Jerusalem", 0),
)}


@dataclass(frozen=True)
class Star:
    name: str
    ra: float  # deg, ICRS, epoch J2000
    dec: float  # deg
    vmag: float
    bmag: float
    pm_ra: float  # mas/yr, mu_alpha * cos(dec)
    pm_dec: float  # mas/yr
    parallax: float  # mas
    rv: float  # km/s (c z, barycentric)
    teff: float
    logg: float
    vsini: float  # km/s


TEMPLATE = Star("HD38858", 87.14540, -4.09464, 5.97, 6.61, 57.6, -53.8, 65.72, 31.5025, 5733, 4.48, 1.8)
SCIENCE = (
    Star("HD20630", 49.84040, 3.37020, 4.84, 5.52, 269.3, 93.8, 109.40, 18.9231, 5700, 4.50, 4.5),
    Star("HD26965", 63.81800, -7.65290, 4.43, 5.25, -2240.1, -3420.3, 199.61, -42.3317, 5100, 4.55, 1.5),
    Star("HD30495", 71.90120, -16.93450, 5.49, 6.12, 131.4, -162.7, 75.35, 21.6402, 5820, 4.49, 3.2),
    Star("HD69830", 124.59960, -12.63220, 5.95, 6.74, 279.3, -986.8, 79.97, 30.2263, 5385, 4.49, 1.6),
    Star("HD76151", 133.57470, -5.43440, 6.01, 6.68, -466.1, 212.3, 58.51, 32.0512, 5790, 4.55, 2.4),
)
UNLISTED = Star("HD37124", 84.26040, 20.73080, 7.68, 8.35, -80.4, -420.1, 31.56, -23.0745, 5610, 4.60, 1.2)

CAL_START_LOCAL = dt.time(15, 0)
SCIENCE_START_LOCAL = dt.time(21, 45)
SCIENCE_END_LOCAL = dt.time(4, 30)
BIAS_STEP_S, READ_S, SLEW_S = 40.0, 40.0, 180.0
MIN_EXPTIME, MAX_EXPTIME = 30.0, 3600.0
RATE_V0 = 17600.0  # e- per second per column at the blaze peak of the middle order for V = 0


@dataclass(frozen=True)
class Exposure:
    """One planned frame of a night."""

    obstype: str  # BIAS DARK LAMPFLAT DOUBLE TARGET, or GUIDE (a g00 frame)
    suffix: str  # b00 d00 w00 a00 e00 g00 x00
    fibers: tuple[str, str, str]  # what each fiber saw ("none", "tung", "thar", a star's name)
    start: dt.datetime  # UTC
    exptime: float
    block: int  # the request (REQNUM) it belongs to
    star: Star | None = None
    defect: str = ""


def star_rate(star: Star) -> float:
    """Electrons per second per column at the blaze peak of the middle order's centre."""
    return RATE_V0 * 10.0 ** (-0.4 * star.vmag)


def exposure_time(star: Star, snr: float, electrons_at_snr: Callable[[float], float]) -> float:
    """Seconds (a multiple of 10, 30-3600) to reach ``snr`` per column at the blaze peak."""
    t = electrons_at_snr(snr) / star_rate(star)
    return float(np.clip(np.ceil(t / 10.0) * 10.0, MIN_EXPTIME, MAX_EXPTIME))


def local_start(site: Site, day: dt.date, at: dt.time) -> dt.datetime:
    """UTC time of local clock time ``at`` on the local date ``day`` (the DAY-OBS)."""
    local = dt.datetime.combine(day, at, tzinfo=ZoneInfo(site.timezone))
    return local.astimezone(dt.UTC).replace(tzinfo=None)


def transit(site: Site, ra_deg: float, after: dt.datetime) -> dt.datetime:
    """The first upper culmination (UTC) of right ascension ``ra_deg`` at ``site`` after ``after``
    (mean sidereal time, IAU 1982 linear term: a few seconds are plenty for a schedule)."""
    days = (after - dt.datetime(2000, 1, 1, 12)).total_seconds() / 86400.0
    lst = (18.697374558 + 24.06570982441908 * days + site.longitude / 15.0) % 24.0
    wait_h = ((ra_deg / 15.0 - lst) % 24.0) / 1.00273790935
    return after + dt.timedelta(hours=wait_h)


def plan_night(site: Site, day: dt.date, stars: list[tuple[Star, int, float]],
               electrons_at_snr: Callable[[float], float], n_bias: int = 5, n_dark: int = 5) -> list[Exposure]:
    """The regular frames of one night (DAY-OBS ``day``): the calibration block (``n_bias``
    biases, ``n_dark`` darks, 5 flats per fiber state, two DOUBLEs), then each of
    ``stars`` = [(star, exposures, S/N)] as close to its transit as the night and the stars
    before it allow (in order of the wanted start)."""
    out: list[Exposure] = []
    t = local_start(site, day, CAL_START_LOCAL)
    block = 0

    def add(obstype, suffix, fibers, exptime, step, **kw):
        nonlocal t
        out.append(Exposure(obstype, suffix, fibers, t, exptime, block, **kw))
        t = t + dt.timedelta(seconds=exptime + step)

    none = ("none", "none", "none")
    for _ in range(n_bias):
        add("BIAS", "b00", none, 0.0, BIAS_STEP_S)
    block += 1
    for _ in range(n_dark):
        add("DARK", "d00", none, 900.0, READ_S)
    for state in (("tung", "tung", "none"), ("none", "tung", "tung")):
        block += 1
        for _ in range(5):
            add("LAMPFLAT", "w00", state, 60.0, READ_S)
    for state in (("thar", "thar", "none"), ("none", "thar", "thar")):
        block += 1
        add("DOUBLE", "a00", state, 120.0, READ_S)
    dusk = local_start(site, day, SCIENCE_START_LOCAL)
    dawn = local_start(site, day + dt.timedelta(days=1), SCIENCE_END_LOCAL)
    wanted = []
    for star, n, snr in stars:
        exptime = exposure_time(star, snr, electrons_at_snr)
        length = dt.timedelta(seconds=n * (exptime + READ_S))
        centre = transit(site, star.ra, dusk - dt.timedelta(hours=12))
        wanted.append((min(max(centre - length / 2, dusk), dawn - length), star, n, exptime))
    t = dusk
    for start, star, n, exptime in sorted(wanted, key=lambda w: w[0]):
        block += 1
        t = max(t, start.replace(microsecond=0) + dt.timedelta(seconds=1 if start.microsecond else 0))
        fibers = ["none", "thar", "none"]
        fibers[site.science_fiber] = star.name
        for k in range(n):
            add("TARGET", "e00", tuple(fibers), exptime, READ_S if k < n - 1 else SLEW_S, star=star)
    return out


def sexagesimal(ra_deg: float, dec_deg: float) -> tuple[str, str]:
    """('HH:MM:SS.sss', 'sDD:MM:SS.ss') as LCO headers write RA and DEC."""
    ms = round(float(ra_deg) / 15.0 * 3600.0 * 1000.0) % (24 * 3600 * 1000)
    h, rest = divmod(ms, 3600 * 1000)
    m, rest = divmod(rest, 60 * 1000)
    ra = f"{h:02d}:{m:02d}:{rest / 1000.0:06.3f}"
    cs = round(abs(float(dec_deg)) * 3600.0 * 100.0)
    d, rest = divmod(cs, 3600 * 100)
    m, rest = divmod(rest, 60 * 100)
    dec = f"{'-' if dec_deg < 0 else '+'}{d:02d}:{m:02d}:{rest / 100.0:05.2f}"
    return ra, dec


def _location(site: Site):
    import astropy.units as u
    from astropy.coordinates import EarthLocation

    return EarthLocation.from_geodetic(site.longitude * u.deg, site.latitude * u.deg, site.height * u.m)


def true_barycentric(site: Site, stars: list[Star], mid_utc: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(barycentric correction m/s, RA deg, Dec deg of date) of each star at its mid-exposure
    time: the catalogue position, proper motion and parallax propagated to the date."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord
    from astropy.time import Time

    loc = _location(site)
    times = Time(mid_utc, scale="utc", location=loc)
    coords = SkyCoord(ra=[s.ra for s in stars] * u.deg, dec=[s.dec for s in stars] * u.deg,
                      pm_ra_cosdec=[s.pm_ra for s in stars] * u.mas / u.yr,
                      pm_dec=[s.pm_dec for s in stars] * u.mas / u.yr,
                      distance=([s.parallax for s in stars] * u.mas).to(u.pc, u.parallax()),
                      obstime=Time("J2000.0", scale="tt"))
    moved = coords.apply_space_motion(new_obstime=times)
    corr = moved.radial_velocity_correction(kind="barycentric", location=loc)
    icrs = moved.icrs
    return corr.to_value(u.m / u.s), icrs.ra.deg, icrs.dec.deg


def reported_barycentric(site: Site, ra: list[str], dec: list[str], dateobs: list[str],
                         exptime: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """(BARYCORR m/s, BJD_TDB) as NRES computes them from the header: RA/DEC (sexagesimal),
    the site's location, DATE-OBS + EXPTIME / 2."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord
    from astropy.time import Time

    loc = _location(site)
    coords = SkyCoord(ra=ra, dec=dec, unit=(u.hourangle, u.deg))
    mid = Time(dateobs, scale="utc", location=loc) + np.asarray(exptime) / 2.0 * u.s
    corr = coords.radial_velocity_correction(kind="barycentric", obstime=mid)
    bjd = mid.tdb + mid.light_travel_time(coords)
    return corr.to_value(u.m / u.s), bjd.jd1 + bjd.jd2
