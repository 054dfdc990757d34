"""The plan of one simulated SEDM night: what is exposed, when, where the telescope points.

Pure functions (no file I/O, no rendering).

What is simulated
    The afternoon calibrations as the observatory's scripts take them, from 00:05 UT: 10 biases at
    ADC 2.0 MHz, 10 at 0.1 MHz, 5 dome flats (30 s), 5 Hg (60 s), 5 Cd (120 s) and 5 Xe (120 s),
    each announced in OBJECT as ``Calib: {kind} {i} of {N}``; then from 04:00 UT the standard
    ``STD-BD+33d2642`` (120 s, at its real J2000 position) and the transients (ZTF names, 300-2400 s)
    one after another with 3 minutes of slewing between, all read at 0.1 MHz.  Each sky exposure
    has its seeing, its flexure and the target's position on the IFU (a pointing error of < 2
    arcsec, or the injected case's).  Airmass is computed for Palomar from the local sidereal time.

What is simplified, and why
    Transients are placed at an hour angle of -3 to +3 h at their exposure (a real queue
    schedules them near transit too); the sidereal time uses the IAU 1982 GMST series without
    nutation (0.1 s errors, far below what airmass needs); airmass is sec z (Hardie's correction is
    < 0.5 % at the airmasses here).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

LATITUDE = 33.3563  # Palomar, deg
LONGITUDE = -116.8650  # deg east
STANDARD_RA, STANDARD_DEC = 237.99942, 32.94842  # BD+33d2642, J2000 deg
BIAS_N, LAMP_N = 10, 5
FEW_ARCS_N = 2  # arcs kept per lamp in the few_arcs case
CAL_START = dt.time(0, 5, 0)
SKY_START = dt.time(4, 0, 0)
SLEW_S = 180.0
OVERHEAD_S = 15.0

# case -> (expected quality, what the case is)
CASES = {
    "outside": (3, "the telescope offset put the target outside the IFU"),
    "faint": (4, "too faint: more than 20 % of the extracted flux negative"),
    "guider_failed": (5, "guider astrometry failed; the target is the brightest source in the IFU (recoverable)"),
    "neighbour": (5, "guider astrometry failed and a brighter star is in the IFU (needs a centroid)"),
    "few_arcs": (None, "only 2 of each 5 arcs were taken: the geometry fails and a fallback is needed"),
}
SCIENCE_CASES = ("outside", "faint", "guider_failed", "neighbour")
SN_KINDS = ("Ia", "II")


@dataclass(frozen=True)
class Source:
    """A point source in the IFU field: offsets from the IFU centre (arcsec east, north)."""

    kind: str  # "Ia", "II", "standard" or "star"
    mag: float  # AB at 6200 A (the standard's flux comes from its reference file)
    x: float
    y: float
    z: float = 0.0
    temperature: float = 5800.0


@dataclass(frozen=True)
class Exposure:
    seq: int
    start: dt.datetime
    imgtype: str  # bias, dome, lamp, standard, science
    object: str
    exptime: float
    adcspeed: float
    lamp: str = ""  # Hg, Cd, Xe, dome
    target_ra: float = np.nan  # deg
    target_dec: float = np.nan
    offset: tuple[float, float] = (0.0, 0.0)  # target position on the IFU, arcsec east, north
    sources: tuple[Source, ...] = ()
    seeing: float = np.nan  # FWHM arcsec at 6000 A
    flexure: tuple[float, float] = (0.0, 0.0)  # px along (x), across (y) dispersion
    case: str = ""
    quality: int = -1  # expected quality (-1: not a spectrum)
    req_id: int = 0
    obj_id: int = 0
    guider_ok: bool = True

    @property
    def mjd(self) -> float:
        return mjd(self.start)

    @property
    def sky(self) -> bool:
        return self.imgtype in ("standard", "science")


def mjd(t: dt.datetime) -> float:
    return (t - dt.datetime(1858, 11, 17)).total_seconds() / 86400.0


def lst_deg(mjd_utc: float) -> float:
    d = mjd_utc - 51544.5
    gmst_h = 18.697374558 + 24.06570982441908 * d
    return (gmst_h * 15.0 + LONGITUDE) % 360.0


def airmass(ra: float, dec: float, mjd_utc: float) -> float:
    ha = np.radians(lst_deg(mjd_utc) - ra)
    lat, d = np.radians(LATITUDE), np.radians(dec)
    sin_alt = np.sin(lat) * np.sin(d) + np.cos(lat) * np.cos(d) * np.cos(ha)
    return float(1.0 / sin_alt)


def sexagesimal(deg: float, hours: bool) -> str:
    """'HH:MM:SS.ss' (RA) or '+DD:MM:SS.s' (Dec), as the SEDM headers write them."""
    if hours:
        cs = round(deg / 15.0 * 360000.0) % (24 * 360000)
        h, rest = divmod(cs, 360000)
        m, rest = divmod(rest, 6000)
        return f"{h:02d}:{m:02d}:{rest / 100:05.2f}"
    ds = round(abs(deg) * 36000.0)
    d, rest = divmod(ds, 36000)
    m, rest = divmod(rest, 600)
    return f"{'-' if deg < 0 else '+'}{d:02d}:{m:02d}:{rest / 10:04.1f}"


def parse_sexagesimal(text: str, hours: bool) -> float:
    sign = -1.0 if text.strip().startswith("-") else 1.0
    a, b, c = (abs(float(v)) for v in text.split(":"))
    return sign * (a + b / 60.0 + c / 3600.0) * (15.0 if hours else 1.0)


def ztf_name(year: int, rng: np.random.Generator) -> str:
    letters = "".join(chr(ord("a") + int(i)) for i in rng.integers(0, 26, 5))
    return f"ZTF{year % 100:02d}aa{letters}"


def _calibrations(day: dt.date, few_arcs: bool) -> list[Exposure]:
    t = dt.datetime.combine(day, CAL_START)
    out = []
    sets = [("bias", "bias", "", 0.0, 2.0, BIAS_N, BIAS_N), ("bias", "bias", "", 0.0, 0.1, BIAS_N, BIAS_N),
            ("dome", "dome", "dome", 30.0, 2.0, LAMP_N, LAMP_N)]
    for lamp, exptime in (("Hg", 60.0), ("Cd", 120.0), ("Xe", 120.0)):
        sets.append(("lamp", lamp, lamp, exptime, 2.0, LAMP_N, FEW_ARCS_N if few_arcs else LAMP_N))
    for imgtype, word, lamp, exptime, speed, announced, taken in sets:
        for i in range(taken):
            out.append(Exposure(seq=len(out), start=t, imgtype=imgtype, object=f"Calib: {word} {i + 1} of {announced}",
                                exptime=exptime, adcspeed=speed, lamp=lamp))
            t += dt.timedelta(seconds=exptime + 10.0 + OVERHEAD_S)
        t += dt.timedelta(seconds=60.0)
    return out


def _transient_specs(full: bool, cases: tuple[str, ...], rng: np.random.Generator) -> list[dict]:
    """The night's transients: (type, z, mag, exptime, case)."""
    n_regular = 11 if full else 3
    specs = []
    for i in range(n_regular):
        specs.append({"kind": SN_KINDS[i % 2], "z": round(float(rng.uniform(0.015, 0.08)), 4),
                      "mag": round(float(rng.uniform(16.8, 18.3)), 2),
                      "exptime": float(rng.choice([900.0, 1200.0, 1800.0])), "case": ""})
    settings = {"outside": (18.0, 900.0), "faint": (22.8, 300.0), "guider_failed": (17.8, 1200.0),
                "neighbour": (18.3, 1200.0)}
    for j, case in enumerate(c for c in SCIENCE_CASES if c in cases):
        mag, exptime = settings[case]
        specs.append({"kind": SN_KINDS[j % 2], "z": round(float(rng.uniform(0.02, 0.06)), 4), "mag": mag,
                      "exptime": exptime, "case": case})
    return specs


def plan_night(day: dt.date, *, full: bool, cases: tuple[str, ...], ifu_radius_arcsec: float,
               rng: np.random.Generator) -> list[Exposure]:
    """Every exposure of the night, in time order."""
    plan = _calibrations(day, "few_arcs" in cases)
    t = dt.datetime.combine(day, SKY_START)
    blocks: list[dict] = [{"kind": "standard"}] + _transient_specs(full, cases, rng)
    if full:  # a second standard in the middle of the night
        blocks.insert(len(blocks) // 2 + 1, {"kind": "standard"})
    for block in blocks:
        flexure = (float(rng.normal(0.0, 0.8)), float(rng.normal(0.0, 0.5)))
        seeing = float(rng.uniform(1.3, 2.0))
        req_id, obj_id = int(rng.integers(10000, 99999)), int(rng.integers(10000, 99999))
        pointing = (float(rng.uniform(-1.5, 1.5)), float(rng.uniform(-1.5, 1.5)))
        if block["kind"] == "standard":
            exptime = 120.0
            plan.append(Exposure(seq=len(plan), start=t, imgtype="standard", object="STD-BD+33d2642", exptime=exptime,
                                 adcspeed=0.1, target_ra=STANDARD_RA, target_dec=STANDARD_DEC, offset=pointing,
                                 sources=(Source("standard", 0.0, *pointing),), seeing=seeing, flexure=flexure,
                                 quality=0, req_id=req_id, obj_id=obj_id))
        else:
            exptime, case = block["exptime"], block["case"]
            mid = mjd(t) + exptime / 2 / 86400.0
            ra = (lst_deg(mid) + float(rng.uniform(-45.0, 45.0))) % 360.0
            dec = float(rng.uniform(5.0, 60.0))
            offset = pointing
            if case == "outside":
                angle = float(rng.uniform(0, 2 * np.pi))
                offset = (1.6 * ifu_radius_arcsec * np.cos(angle), 1.6 * ifu_radius_arcsec * np.sin(angle))
            sources = [Source(block["kind"], block["mag"], *offset, z=block["z"])]
            if case == "neighbour":
                sources.append(Source("star", block["mag"] - 1.5, offset[0] + 2.6, offset[1] - 1.5, temperature=5200.0))
            plan.append(Exposure(seq=len(plan), start=t, imgtype="science", object=ztf_name(day.year, rng),
                                 exptime=exptime, adcspeed=0.1, target_ra=ra, target_dec=dec, offset=offset,
                                 sources=tuple(sources), seeing=seeing, flexure=flexure, case=case,
                                 quality=CASES[case][0] if case else 0, req_id=req_id, obj_id=obj_id,
                                 guider_ok=case not in ("guider_failed", "neighbour")))
        t += dt.timedelta(seconds=exptime + 10.0 + SLEW_S)
    return plan
