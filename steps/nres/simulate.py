"""NRES simulator: nights of raw composite frames in the LCO archive's format, with truth.

``simulate_nights(out, sites=("cpt", "lsc"), nights=2, full=False, seed=0, defects=())`` writes

* ``{out}/{site}/nres{NN}/{DAY-OBS}/raw/{site}nrs{NN}-{camera}-{DAY-OBS}-{NNNN}-{b00|d00|w00|a00|e00}.fits.fz``:
  fpacked frames (an empty primary HDU and a RICE_1 tile-compressed ``SCI`` image, uint16 stored
  with BZERO 32768, one tile per row as fpack writes them), the same keywords in both headers as
  the archive puts them, 1024 x 1024 + 32 overscan columns and 12 orders by default, 4096 x 4096
  and 67 orders with ``full=True``;
* ``{out}/targets.csv`` in the original format (degrees, mas/yr, mas, km/s; -99.9 and NULL);
* ``{out}/truth/`` (Parquet): ``frames`` (one row per file written), ``traces`` and
  ``wavelengths`` (per site, night, order and fiber), ``ccds``, ``instruments``, ``stars`` and
  ``defects``, their columns and units in :data:`SCHEMAS`;

and returns the settings that reduce the first site (``data_root, site, instrument, start,
end, targets``; one run reduces one site).

Each night and site: 5 BIAS, 5 DARK (900 s; 10 and 10 at full size, a site's nightly stacking
as the benchmark measures it), 5 LAMPFLAT ``tung&tung&none`` and 5
``none&tung&tung`` (60 s), the DOUBLEs ``thar&thar&none`` and ``none&thar&thar`` (120 s), then the
template star HD38858 (5 exposures at S/N ~200 on the first night, 2 at S/N ~50 on the others)
and five science stars at S/N ~100, each with the simultaneous ThAr in fiber 1 and a drift of
the spectrograph (a slope of a few m/s per hour since the arcs, plus 2 m/s jitter) applied to
both fibers.  Stars are Doppler-shifted by their RV and the true barycentric motion of the site
and mid-exposure (see ``simulate_observatory``); lsc's telescope feeds fiber 2
(``none&thar&NAME``), the others fiber 0.  Optics, light sources and the CCD are in
``simulate_optics``, ``simulate_spectra`` and ``simulate_detector``, each saying what it
simplifies.

Defects (``defects=``, names in :data:`DEFECTS`), each listed in ``truth/defects``:
``truncated`` (a TARGET file cut at 60 % of its bytes), ``no_objects`` (a LAMPFLAT without
OBJECTS), ``wrong_shape`` (a BIAS 24 rows and 48 columns short of what its sections say),
``ignored_frames`` (a ``g00`` guider frame, and an ``x00`` engineering lamp test: OBSTYPE
LAMPFLAT, ``tung&tung&none``, 20 times the flat level and saturated, so that a pipeline selecting
by OBSTYPE over every file would ruin its master flat), ``two_flats`` (the
last night keeps only 2 of its 5 ``none&tung&tung`` flats; frame numbers keep the gap),
``missing_target`` (HD37124 observed every night, absent from targets.csv) and
``malformed_target`` (HD30495's row lacks its Bmag field, so the later fields are shifted).  The defect frames come after a
night's regular frames on the first site's first night, so that every other frame is the same,
byte for byte, with and without defects.

Every frame is drawn from its own seed (seed, site, night, frame number) and every night's
instrument from (seed, site, night): the output does not depend on which other sites or
defects are simulated, nor on the order of rendering.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import get_args

import numpy as np
import pyarrow as pa
from astroflow.atomic import write_table, write_text
from astropy.io import fits
from astropy.io.fits.hdu.compressed._codecs import Rice1

from steps.nres import simulate_detector as det
from steps.nres import simulate_optics as opt
from steps.nres import simulate_spectra as spec
from steps.nres.simulate_observatory import (
    SCIENCE,
    SITES,
    TEMPLATE,
    UNLISTED,
    Exposure,
    Site,
    Star,
    exposure_time,
    plan_night,
    reported_barycentric,
    sexagesimal,
    star_rate,
    true_barycentric,
)
from steps.nres.simulation import Defect

DEFECTS = get_args(Defect)
DAY0 = dt.date(2024, 1, 22)
TEMPLATE_SNR = (200.0, 50.0)  # first night, other nights
TEMPLATE_N = (5, 2)
CALIBRATION_COUNTS = {"small": (5, 5), "full": (10, 10)}  # biases and darks per night, by detector format
SCIENCE_SNR = 100.0
FLAT_PEAK_E = 1.1e5  # electrons per column of the brightest fiber and order in a 60 s flat
THAR_E_PER_AMPLITUDE = 55.0  # electrons per unit of the list's amplitude at peak efficiency, 120 s DOUBLE
SIMULTANEOUS_THAR = 0.3  # the reference fiber's ThAr in a TARGET frame, relative to a DOUBLE's
DRIFT_SLOPE_M_S_H = 6.0  # sigma of the drift slope (m/s per hour since the arcs)
DRIFT_JITTER_M_S = 2.0
TRUNCATE_AT = 0.6
MALFORMED = "HD30495"  # the star whose targets.csv row the malformed_target defect breaks
TARGETS_HEADER = ("Name,RA,Dec,Vmag,Bmag,gmag,rmag,imag,Jmag,Kmag,ProperMotionRA,ProperMotionDE,Parallax,RV,"
                  "Teff,Logg,ZERO")

SCHEMAS = {
    "frames": pa.schema([
        ("filename", pa.string()), ("path", pa.string()), ("site", pa.string()), ("instrument", pa.string()),
        ("camera", pa.string()), ("day_obs", pa.string()), ("framenum", pa.int32()), ("obstype", pa.string()),
        ("objects", pa.string()), ("object", pa.string()), ("science_fiber", pa.int8()), ("dateobs", pa.string()),
        ("exptime", pa.float64()), ("rv_m_s", pa.float64()), ("barycorr_m_s", pa.float64()),
        ("barycorr_true_m_s", pa.float64()), ("bjd_tdb", pa.float64()), ("snr", pa.float64()),
        ("drift_m_s", pa.float64()), ("overscan_adu", pa.float64()), ("n_cosmics", pa.int32()),
        ("defect", pa.string())]),
    "traces": pa.schema([
        ("site", pa.string()), ("instrument", pa.string()), ("day_obs", pa.string()), ("order", pa.int32()),
        ("m", pa.int32()), ("fiber", pa.int8()), ("x_min", pa.int32()), ("x_max", pa.int32()),
        ("coeffs", pa.list_(pa.float64())), ("y", pa.list_(pa.float64())), ("sigma", pa.list_(pa.float64()))]),
    "wavelengths": pa.schema([
        ("site", pa.string()), ("instrument", pa.string()), ("day_obs", pa.string()), ("order", pa.int32()),
        ("m", pa.int32()), ("fiber", pa.int8()), ("x_min", pa.int32()), ("x_max", pa.int32()),
        ("coeffs", pa.list_(pa.float64())), ("max_fit_error_a", pa.float64()),
        ("wavelength", pa.list_(pa.float64())), ("blaze", pa.list_(pa.float64()))]),
    "ccds": pa.schema([
        ("site", pa.string()), ("instrument", pa.string()), ("camera", pa.string()), ("nx", pa.int32()),
        ("ny", pa.int32()), ("n_overscan", pa.int32()), ("gain", pa.float64()), ("read_noise_e", pa.float64()),
        ("overscan_adu", pa.float64()), ("bias_level_adu", pa.float64()), ("bias_structure_rms_adu", pa.float64()),
        ("dark_e_s", pa.float64()), ("n_hot", pa.int32()), ("hot_x", pa.list_(pa.int32())),
        ("hot_y", pa.list_(pa.int32())), ("hot_e_s", pa.list_(pa.float64())), ("temperature_c", pa.float64()),
        ("saturate_adu", pa.float64())]),
    "instruments": pa.schema([
        ("site", pa.string()), ("instrument", pa.string()), ("camera", pa.string()), ("geometry", pa.string()),
        ("first_order", pa.int32()), ("n_orders", pa.int32()), ("groove_a", pa.float64()),
        ("blaze_deg", pa.float64()), ("alpha_deg", pa.float64()), ("beta_c_deg", pa.float64()),
        ("gamma_deg", pa.float64()), ("dgamma_rad", pa.float64()), ("camera_px", pa.float64()),
        ("resolution", pa.float64()), ("sigma_px", pa.float64()), ("fiber_throughput", pa.list_(pa.float64())),
        ("science_fiber", pa.int8()), ("latitude", pa.float64()), ("longitude", pa.float64()),
        ("height", pa.float64()), ("timezone", pa.string())]),
    "stars": pa.schema([
        ("name", pa.string()), ("ra", pa.float64()), ("dec", pa.float64()), ("vmag", pa.float64()),
        ("bmag", pa.float64()), ("pm_ra", pa.float64()), ("pm_dec", pa.float64()), ("parallax", pa.float64()),
        ("rv_m_s", pa.float64()), ("teff", pa.float64()), ("logg", pa.float64()), ("vsini", pa.float64()),
        ("role", pa.string()), ("in_targets_csv", pa.bool_()), ("malformed_row", pa.bool_())]),
    "defects": pa.schema([
        ("defect", pa.string()), ("site", pa.string()), ("instrument", pa.string()), ("day_obs", pa.string()),
        ("filename", pa.string()), ("target", pa.string()), ("expected", pa.string())]),
}
"""The truth tables (``{out}/truth/{name}.parquet``).

Units: velocities in m/s (``rv_m_s`` the star's true barycentric RV as c z; ``barycorr_m_s``
what NRES reports from the header, ``barycorr_true_m_s`` the correction the Doppler shift used;
``drift_m_s`` the velocity at which the frame's lines appear against the night's wavelength
solution, both fibers), ``bjd_tdb`` in days at mid-exposure, ``snr`` per extracted column at the
blaze peak of the middle order's centre (NaN where a value does not apply).  ``coeffs`` are
Legendre coefficients over ``t = 2 x / (nx - 1) - 1`` (``x_min = 0``, ``x_max = nx - 1``);
``y``, ``sigma`` (the profile's core width, px), ``wavelength`` (vacuum A, the night's DOUBLE
frames; a TARGET frame's is ``wavelength / (1 + drift / c)``) and ``blaze`` (peak 1) hold one
value per column.  ``order`` counts traces from the bottom of the detector, ``m`` is the echelle
order.  ``pm_ra`` is mu_alpha cos(dec) in mas/yr, ``parallax`` mas, ``ra``/``dec`` J2000 degrees.
``bias_level_adu`` is the mean of the imaging area of a bias (``overscan_adu`` plus the mean
structure); ``dark_e_s`` the mean dark current without the hot pixels.  A defect's ``filename``
lists its files separated by spaces (``targets.csv`` for the malformed row)."""

EXPECTED = {
    "truncated": "named error: incomplete or unreadable FITS file; the night completes",
    "no_objects": "named error: no OBJECTS keyword (fiber states unknown); the night completes",
    "wrong_shape": "named error: wrong dimensions (data smaller than BIASSEC/TRIMSEC say); the night completes",
    "ignored_frames": "ignored: not an NRES product (g00/x00); never indexed, never stacked",
    "two_flats": "too few flats (2 of 5) for none&tung&tung: the previous night's master FLAT is used, and recorded",
    "missing_target": "no RV, reason recorded: the target has no targets.csv row",
    "malformed_target": "no RV, reason recorded: the target's targets.csv row is malformed (16 fields of 17)",
}


@dataclass(frozen=True)
class Frame:
    """One frame of a night with its number; ``write`` False: planned, then lost (two_flats)."""

    exposure: Exposure
    framenum: int
    write: bool = True


@dataclass(frozen=True)
class SiteContext:
    """What every night of one site shares."""

    site: Site
    ccd: det.Ccd
    unit: opt.Spectrograph  # as built; each night moves it a little
    flat_scale: float
    lines: np.ndarray  # the simulation's stellar line list
    seed: int

    def electrons_at_snr(self, snr: float) -> float:
        """Electrons per column giving ``snr`` with the read noise of an optimal extraction."""
        background = 2.0 * np.sqrt(np.pi) * self.unit.sigma_px * self.ccd.read_noise_e ** 2
        return 0.5 * (snr ** 2 + np.sqrt(snr ** 4 + 4.0 * snr ** 2 * background))


def _rng(*keys: int) -> np.random.Generator:
    return np.random.default_rng([int(k) for k in keys])


# ----------------------------------------------------------------------------- the light of a night
@dataclass
class NightModel:
    """The instrument of one site and night, with what the night's frames reuse."""

    unit: opt.Spectrograph
    bands: dict  # (order, fiber) -> opt.Band
    edges: dict  # (order, fiber) -> pixel-edge wavelengths
    blaze: dict  # (order, fiber) -> blaze per column
    flat: dict  # (order, fiber) -> tungsten electrons per column (the unit's lamp)
    thar: dict  # (order, fiber) -> ThAr electrons per column of a DOUBLE
    images: dict  # fiber state -> rendered flat (electrons)


def _keys(unit: opt.Spectrograph) -> list[tuple[int, int]]:
    return [(i, f) for i in range(unit.geometry.n_orders) for f in opt.FIBERS]


def _edges_and_blaze(unit: opt.Spectrograph) -> tuple[dict, dict]:
    x = np.arange(unit.geometry.nx)
    keys = _keys(unit)
    return ({k: opt.pixel_edges(unit, *k) for k in keys}, {k: opt.blaze(unit, *k, x) for k in keys})


def _tungsten(unit: opt.Spectrograph, edges: dict, blaze: dict, scale: float) -> dict:
    return {(i, f): spec.continuum_counts(e, _tungsten_sed) * scale * unit.fiber_throughput[f] * blaze[i, f]
            for (i, f), e in edges.items()}


def _tungsten_sed(lam):
    return spec.planck_photons(lam, spec.TUNGSTEN_K) * spec.efficiency(lam)


def _thar(unit: opt.Spectrograph, edges: dict, blaze: dict, level: float) -> dict:
    return {(i, f): spec.thar_counts(e, unit.lsf_sigma_kms, spec.efficiency) * level * THAR_E_PER_AMPLITUDE
            * unit.fiber_throughput[f] * blaze[i, f] for (i, f), e in edges.items()}


def lamp_scale(unit: opt.Spectrograph) -> float:
    """The unit's tungsten brightness: FLAT_PEAK_E electrons per column in its brightest trace."""
    edges, blaze = _edges_and_blaze(unit)
    return FLAT_PEAK_E / max(float(s.max()) for s in _tungsten(unit, edges, blaze, 1.0).values())


def night_model(unit: opt.Spectrograph, scale: float) -> NightModel:
    edges, blaze = _edges_and_blaze(unit)
    return NightModel(unit=unit, bands={k: opt.band(unit, *k) for k in _keys(unit)}, edges=edges, blaze=blaze,
                      flat=_tungsten(unit, edges, blaze, scale), thar=_thar(unit, edges, blaze, 1.0), images={})


def _fibers_with(fibers, what: str) -> list[int]:
    return [f for f, v in enumerate(fibers) if v == what]


def science_fiber(fibers) -> int:
    return next((f for f, v in enumerate(fibers) if v not in ("none", "thar", "tung")), -1)


def _shape(model: NightModel) -> tuple[int, int]:
    return model.unit.geometry.ny, model.unit.geometry.nx


def flat_light(model: NightModel, fibers) -> np.ndarray:
    """Electrons of a flat with the tungsten lamp in the fibers ``fibers`` names (rendered once a night)."""
    state = "&".join(fibers)
    if state not in model.images:
        lit = _fibers_with(fibers, "tung")
        model.images[state] = opt.render(_shape(model), model.bands, {k: v for k, v in model.flat.items() if k[1] in lit})
    return model.images[state]


def arc_light(model: NightModel, fibers) -> np.ndarray:
    lit = _fibers_with(fibers, "thar")
    return opt.render(_shape(model), model.bands, {k: v for k, v in model.thar.items() if k[1] in lit})


def target_light(model: NightModel, fibers, star: Star, z: float, drift_m_s: float, electrons: float,
                 lines: np.ndarray) -> np.ndarray:
    """Electrons of a TARGET frame: ``star`` (``electrons`` per column at the blaze peak of the
    middle order's centre) reaching the detector redshifted by ``1 + z``, the simultaneous ThAr in
    fiber 1, both through a spectrograph drifted by ``drift_m_s``."""
    unit, g = model.unit, model.unit.geometry
    fiber = science_fiber(fibers)
    stretch = 1.0 + drift_m_s / (opt.C_KM_S * 1e3)
    edges = {(i, f): model.edges[i, f] / stretch for i in range(g.n_orders) for f in (fiber, 1)}
    thr = unit.fiber_throughput[fiber]
    mid, xc = g.n_orders // 2, g.nx // 2
    e = edges[mid, fiber]
    lam_c = 0.5 * (e[xc] + e[xc + 1])
    scale = electrons / (thr * spec.planck_photons(lam_c, star.teff) * spec.efficiency(lam_c) * (e[xc + 1] - e[xc])
                         * model.blaze[mid, fiber][xc])

    def continuum(lam):
        return scale * thr * spec.planck_photons(lam, star.teff) * spec.efficiency(lam)

    spectra = {(i, fiber): spec.star_counts(edges[i, fiber], z, star.teff, star.vsini, lines, unit.lsf_sigma_kms,
                                            continuum) * model.blaze[i, fiber] for i in range(g.n_orders)}
    spectra.update(_thar(unit, {k: v for k, v in edges.items() if k[1] == 1}, model.blaze, SIMULTANEOUS_THAR))
    return opt.render(_shape(model), model.bands, spectra)


# ----------------------------------------------------------------------------- headers and files
OBJECT_NAMES = {"BIAS": "Bias", "DARK": "Dark", "LAMPFLAT": "Lamp flat", "DOUBLE": "ThAr", "GUIDE": "Guider"}


def frame_header(site: Site, ccd: det.Ccd, frame: Frame, day_obs: str, reqnum: int, ccd_temp: float,
                 pointing: tuple[str, str] | None) -> fits.Header:
    """The archive's keywords for one frame (written to both the primary and the SCI header)."""
    e = frame.exposure
    h = fits.Header()
    h["ORIGIN"] = ("LCOGT", "Organization responsible for the data")
    h["SITEID"] = (site.code, "ID code of the Observatory site")
    h["SITE"] = (site.name, "Site")
    h["TELESCOP"] = (site.instrument, "NRES unit (composite data product)")
    h["INSTRUME"] = (ccd.camera, "Instrument (camera) used")
    h["ENCID"] = (site.enclosure, "ID code of the Enclosure")
    h["LATITUDE"] = (site.latitude, "[deg North] Telescope Latitude")
    h["LONGITUD"] = (site.longitude, "[deg East] Telescope Longitude")
    h["HEIGHT"] = (site.height, "[m] Altitude of Telescope above sea level")
    h["OBSTYPE"] = (e.obstype, "Observation type")
    if e.defect != "no_objects":
        h["OBJECTS"] = ("&".join(e.fibers), "Objects in fibers 0&1&2")
    h["OBJECT"] = (e.star.name if e.star else OBJECT_NAMES[e.obstype], "Object name")
    h["DAY-OBS"] = (day_obs, "[UTC] Date at start of local observing night")
    h["DATE-OBS"] = (e.start.isoformat(timespec="milliseconds"), "[UTC] Start date and time")
    h["UTSTART"] = (e.start.strftime("%H:%M:%S.%f")[:12], "[UTC] The start time of the observation")
    mjd = (e.start - dt.datetime(1858, 11, 17)).total_seconds() / 86400.0
    h["MJD-OBS"] = (round(mjd, 8), "[UTC days] Start date/time (MJD)")
    h["EXPTIME"] = (e.exptime, "[s] Exposure length")
    h["FRAMENUM"] = (frame.framenum, "Running frame number of the night")
    if e.star is None:
        h["RA"] = ("N/A", "[HH:MM:SS.sss] Right ascension")
        h["DEC"] = ("N/A", "[sDD:MM:SS.ss] Declination")
    else:
        cat_ra, cat_dec = sexagesimal(e.star.ra, e.star.dec)
        h["RA"] = (pointing[0], "[HH:MM:SS.sss] Right ascension (of date)")
        h["DEC"] = (pointing[1], "[sDD:MM:SS.ss] Declination (of date)")
        h["CAT-RA"] = (cat_ra, "[HH:MM:SS.sss] Catalog RA (J2000)")
        h["CAT-DEC"] = (cat_dec, "[sDD:MM:SS.ss] Catalog Dec (J2000)")
        h["PM-RA"] = (e.star.pm_ra / 1000.0, "[arcsec/year] Proper motion in RA * cos(Dec)")
        h["PM-DEC"] = (e.star.pm_dec / 1000.0, "[arcsec/year] Proper motion in Dec")
        h["PARALLAX"] = (e.star.parallax / 1000.0, "[arcsec] Parallax")
        h["RADESYS"] = ("ICRS", "Equatorial coordinate system")
        h["EQUINOX"] = (2000.0, "[yr] Equatorial coordinates definition")
    nx, ny = ccd.nx, ccd.ny
    h["GAIN"] = (ccd.gain, "[electrons/count] Pixel gain")
    h["RDNOISE"] = (round(ccd.read_noise_e, 1), "[electrons/pixel] Read noise")
    h["SATURATE"] = (float(det.ADC_MAX), "[ADU] Saturation level")
    h["CCDSUM"] = ("1 1", "CCD on-chip summing/binning")
    h["CONFMODE"] = ("default", "Camera mode configuration")
    h["BIASSEC"] = (f"[{nx + 1}:{nx + ccd.n_overscan},1:{ny}]", "[binned pixel] Section of overscan data")
    h["TRIMSEC"] = (f"[1:{nx},1:{ny}]", "[binned pixel] Section of useful data")
    h["DATASEC"] = (f"[1:{nx},1:{ny}]", "[binned pixel] Data section")
    h["DETSEC"] = (f"[1:{nx},1:{ny}]", "[unbinned pixel] Detector section")
    h["CCDSTEMP"] = (ccd.temperature_c, "[deg C] CCD required temperature")
    h["CCDATEMP"] = (ccd_temp, "[deg C] CCD actual temperature")
    h["PROPID"] = ("calibrate" if e.star is None else "NRES-RV-2024A", "Proposal ID")
    h["REQNUM"] = (reqnum, "Request number")
    h["SIMULATE"] = (True, "Simulated by astroflow (steps.nres.simulate)")
    return h


def fits_bytes(header: fits.Header, data: np.ndarray) -> bytes:
    """An fpacked frame as the archive writes it: an empty primary HDU with ``header``, then the
    uint16 ``data`` as a RICE_1 tile-compressed ``SCI`` image (BZERO 32768, one tile per row) with
    the same keywords.

    The bytes are those of astropy's ``CompImageHDU`` (a test checks it), made with astropy's own
    RICE_1 codec: ``CompImageHDU`` compresses row tiles through a Python loop and a
    variable-length-array conversion, two-thirds of the simulator's time."""
    ny, nx = data.shape
    codec = Rice1(blocksize=32, bytepix=2, tilesize=nx)
    stored = np.ascontiguousarray(data, dtype=np.uint16).view(np.int16) ^ np.int16(-32768)  # minus BZERO
    tiles = [codec.encode(row) for row in stored]
    sizes = np.fromiter(map(len, tiles), dtype=np.int64, count=ny)
    descriptors = np.column_stack([sizes, np.concatenate([[0], np.cumsum(sizes[:-1])])]).astype(">i4")
    heap = b"".join(tiles)
    sci = fits.Header()
    for key, value, comment in (
            ("XTENSION", "BINTABLE", "binary table extension"), ("BITPIX", 8, "array data type"),
            ("NAXIS", 2, "number of array dimensions"), ("NAXIS1", 8, "width of table in bytes"),
            ("NAXIS2", ny, "number of rows in table"), ("PCOUNT", len(heap), "number of group parameters"),
            ("GCOUNT", 1, "number of groups"), ("TFIELDS", 1, "number of fields in each row"),
            ("TTYPE1", "COMPRESSED_DATA", None), ("TFORM1", f"1PB({sizes.max()})", None),
            ("ZIMAGE", True, "extension contains compressed image"), ("ZTENSION", "IMAGE", "Image extension"),
            ("ZBITPIX", 16, "array data type"), ("ZNAXIS", 2, "number of array dimensions"),
            ("ZNAXIS1", nx, None), ("ZNAXIS2", ny, None), ("ZPCOUNT", 0, "number of parameters"),
            ("ZGCOUNT", 1, "number of groups"), ("ZTILE1", nx, "size of tiles to be compressed"),
            ("ZTILE2", 1, "size of tiles to be compressed"), ("ZCMPTYPE", "RICE_1", "compression algorithm"),
            ("ZNAME1", "BLOCKSIZE", "compression block size"), ("ZVAL1", 32, "pixels per block"),
            ("ZNAME2", "BYTEPIX", "bytes per pixel (1, 2, 4, or 8)"), ("ZVAL2", 2, "bytes per pixel (1, 2, 4, or 8)"),
            ("EXTNAME", "SCI", "name of this binary table extension"), ("BZERO", 32768, None), ("BSCALE", 1, None)):
        sci[key] = (value, comment) if comment else value
    sci.extend(header)
    primary = fits.PrimaryHDU(header=header.copy()).header
    primary.set("EXTEND", True, after="NAXIS")
    body = descriptors.tobytes() + heap
    return primary.tostring().encode() + sci.tostring().encode() + body + b"\0" * (-len(body) % 2880)


def _write(path: Path, data: bytes) -> None:
    """Temporary name, then rename: a folder watched while simulating never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def frame_name(site: Site, camera: str, day_obs: str, framenum: int, suffix: str) -> str:
    return f"{site.code}nrs{site.instrument[-2:]}-{camera}-{day_obs}-{framenum:04d}-{suffix}.fits.fz"


def guider_image(rng: np.random.Generator) -> np.ndarray:
    """What a g00 frame holds: a small acquisition image of a star on the sky."""
    y, x = np.mgrid[:256, :256]
    star = 4e4 * np.exp(-0.5 * ((x - 128.3) ** 2 + (y - 127.6) ** 2) / 2.5 ** 2)
    return np.clip(np.rint(1020.0 + star + rng.normal(0.0, 8.0, star.shape)), 0, det.ADC_MAX).astype(np.uint16)


# ----------------------------------------------------------------------------- one night of one site
def night_frames(ctx: SiteContext, night: int, first_site: bool, last_night: bool, defects: set[str]) -> list[Frame]:
    """The night's frames in order: the regular plan, then the defect frames."""
    site = ctx.site
    day = DAY0 + dt.timedelta(days=night)
    k = min(night, 1)
    stars = [(TEMPLATE, TEMPLATE_N[k], TEMPLATE_SNR[k])] + [(s, 1, SCIENCE_SNR) for s in sorted(SCIENCE, key=lambda s: s.ra)]
    n_bias, n_dark = CALIBRATION_COUNTS[ctx.unit.geometry.name]
    regular = plan_night(site, day, stars, ctx.electrons_at_snr, n_bias=n_bias, n_dark=n_dark)
    frames = [Frame(e, n + 1) for n, e in enumerate(regular)]
    if first_site and last_night and "two_flats" in defects:
        lost = [n for n, f in enumerate(frames) if f.exposure.fibers == ("none", "tung", "tung")][2:]
        for n in lost:
            frames[n] = replace(frames[n], write=False)
    extra: list[Exposure] = []
    t = regular[-1].start + dt.timedelta(seconds=regular[-1].exptime + 180.0)
    block = regular[-1].block

    def add(obstype, suffix, fibers, exptime, star=None, defect=""):
        nonlocal t, block
        block += 1
        extra.append(Exposure(obstype, suffix, fibers, t, exptime, block, star=star, defect=defect))
        t = t + dt.timedelta(seconds=exptime + 60.0)

    def on_fiber(star):
        fibers = ["none", "thar", "none"]
        fibers[site.science_fiber] = star.name
        return tuple(fibers)

    none = ("none", "none", "none")
    if "missing_target" in defects:
        add("TARGET", "e00", on_fiber(UNLISTED), exposure_time(UNLISTED, SCIENCE_SNR, ctx.electrons_at_snr),
            UNLISTED, "missing_target")
    if first_site and night == 0:
        if "wrong_shape" in defects:
            add("BIAS", "b00", none, 0.0, defect="wrong_shape")
        if "no_objects" in defects:
            add("LAMPFLAT", "w00", ("tung", "tung", "none"), 60.0, defect="no_objects")
        if "ignored_frames" in defects:
            add("LAMPFLAT", "x00", ("tung", "tung", "none"), 60.0, defect="ignored_frames")
            add("GUIDE", "g00", none, 10.0, defect="ignored_frames")
        if "truncated" in defects:
            star = max(SCIENCE, key=lambda s: s.ra)
            add("TARGET", "e00", on_fiber(star), exposure_time(star, SCIENCE_SNR, ctx.electrons_at_snr), star,
                "truncated")
    return frames + [Frame(e, len(frames) + n + 1) for n, e in enumerate(extra)]


def _mid(e: Exposure) -> dt.datetime:
    return e.start + dt.timedelta(seconds=e.exptime / 2.0)


def drifts(ctx: SiteContext, night: int, frames: list[Frame]) -> dict[int, float]:
    """Drift (m/s) of each TARGET frame: a slope since the night's arcs, plus jitter."""
    arcs = [f.exposure for f in frames if f.exposure.obstype == "DOUBLE"]
    slope = _rng(ctx.seed, ctx.site.ident, night, 2).normal(0.0, DRIFT_SLOPE_M_S_H)
    return {f.framenum: slope * (_mid(f.exposure) - arcs[-1].start).total_seconds() / 3600.0
            + _rng(ctx.seed, ctx.site.ident, night, f.framenum, 4).normal(0.0, DRIFT_JITTER_M_S)
            for f in frames if f.exposure.obstype == "TARGET"}


def barycentric(ctx: SiteContext, frames: list[Frame]) -> dict[int, dict]:
    """Per TARGET frame: the true and the reported correction, BJD_TDB, the header's pointing."""
    targets = [f for f in frames if f.exposure.obstype == "TARGET"]
    if not targets:
        return {}
    true_bc, ra, dec = true_barycentric(ctx.site, [f.exposure.star for f in targets],
                                        [_mid(f.exposure).isoformat() for f in targets])
    pointing = [sexagesimal(a, d) for a, d in zip(ra, dec)]
    reported, bjd = reported_barycentric(ctx.site, [p[0] for p in pointing], [p[1] for p in pointing],
                                         [f.exposure.start.isoformat(timespec="milliseconds") for f in targets],
                                         [f.exposure.exptime for f in targets])
    return {f.framenum: {"true": float(true_bc[n]), "reported": float(reported[n]), "bjd": float(bjd[n]),
                         "pointing": pointing[n]} for n, f in enumerate(targets)}


def simulate_night(root: Path, ctx: SiteContext, night: int, frames: list[Frame]) -> tuple[list, list, list, list]:
    """Render and write one night of one site: (frame rows, defect rows, trace rows, wavelength rows)."""
    site, ccd = ctx.site, ctx.ccd
    day_obs = (DAY0 + dt.timedelta(days=night)).strftime("%Y%m%d")
    model = night_model(opt.on_night(ctx.unit, _rng(ctx.seed, site.ident, night, 1)), ctx.flat_scale)
    drift = drifts(ctx, night, frames)
    bary = barycentric(ctx, frames)
    raw_dir = root / site.code / site.instrument / day_obs / "raw"
    n_eff = 2.0 * np.sqrt(np.pi) * model.unit.sigma_px
    nan = float("nan")
    rows, defect_rows = [], []
    for frame in frames:
        if not frame.write:
            continue
        e = frame.exposure
        rng = _rng(ctx.seed, site.ident, night, frame.framenum, 3)
        b = bary.get(frame.framenum)
        header = frame_header(site, ccd, frame, day_obs, site.ident * 1_000_000 + night * 1000 + e.block,
                              round(ccd.temperature_c + rng.normal(0.0, 0.05), 1), b["pointing"] if b else None)
        truth = {"rv_m_s": nan, "barycorr_m_s": nan, "barycorr_true_m_s": nan, "bjd_tdb": nan, "snr": nan,
                 "drift_m_s": nan, "overscan_adu": nan, "n_cosmics": 0}
        if e.obstype == "GUIDE":
            data = guider_image(rng)
        else:
            light = None
            if e.obstype == "LAMPFLAT":
                lamp = 20.0 if e.defect == "ignored_frames" else 1.0
                light = flat_light(model, e.fibers) * np.float32(lamp * (1.0 + rng.normal(0.0, 0.003)))
            elif e.obstype == "DOUBLE":
                light = arc_light(model, e.fibers)
                truth["drift_m_s"] = 0.0
            elif e.obstype == "TARGET":
                z = (1.0 + e.star.rv / opt.C_KM_S) / (1.0 + b["true"] / (opt.C_KM_S * 1e3)) - 1.0
                electrons = star_rate(e.star) * e.exptime
                light = target_light(model, e.fibers, e.star, z, drift[frame.framenum], electrons, ctx.lines)
                variance = electrons + n_eff * (ccd.read_noise_e ** 2 + float(ccd.dark_e_s.mean()) * e.exptime)
                truth.update(rv_m_s=e.star.rv * 1e3, barycorr_m_s=b["reported"], barycorr_true_m_s=b["true"],
                             bjd_tdb=b["bjd"], snr=float(electrons / np.sqrt(variance)), drift_m_s=drift[frame.framenum])
            data, info = det.read_out(ccd, light, e.exptime, rng)
            truth.update(info)
            if e.defect == "wrong_shape":
                data = np.ascontiguousarray(data[:-24, :-48])
        blob = fits_bytes(header, data)
        if e.defect == "truncated":
            blob = blob[: int(len(blob) * TRUNCATE_AT)]
        name = frame_name(site, ccd.camera, day_obs, frame.framenum, e.suffix)
        _write(raw_dir / name, blob)
        rows.append({"filename": name, "path": (raw_dir / name).relative_to(root).as_posix(), "site": site.code,
                     "instrument": site.instrument, "camera": ccd.camera, "day_obs": day_obs,
                     "framenum": frame.framenum, "obstype": e.obstype, "objects": header.get("OBJECTS", ""),
                     "object": header["OBJECT"], "science_fiber": science_fiber(e.fibers),
                     "dateobs": header["DATE-OBS"], "exptime": e.exptime, **truth, "defect": e.defect})
        if e.defect and e.defect != "missing_target":
            defect_rows.append(_defect_row(e.defect, site, day_obs, name, e.star.name if e.star else ""))
    if any(not f.write for f in frames):
        kept = [frame_name(site, ccd.camera, day_obs, f.framenum, "w00") for f in frames
                if f.write and f.exposure.fibers == ("none", "tung", "tung")]
        defect_rows.append(_defect_row("two_flats", site, day_obs, " ".join(kept), ""))
    traces, waves = night_truth(model, site, day_obs)
    return rows, defect_rows, traces, waves


def _defect_row(defect: str, site: Site | None, day_obs: str, name: str, target: str) -> dict:
    return {"defect": defect, "site": site.code if site else "", "instrument": site.instrument if site else "",
            "day_obs": day_obs, "filename": name, "target": target, "expected": EXPECTED[defect]}


def night_truth(model: NightModel, site: Site, day_obs: str) -> tuple[list, list]:
    """The true traces and wavelength solution of one night."""
    unit = model.unit
    x = np.arange(unit.geometry.nx)
    traces, waves = [], []
    for i, f in _keys(unit):
        base = {"site": site.code, "instrument": site.instrument, "day_obs": day_obs, "order": i,
                "m": int(unit.orders[i]), "fiber": f, "x_min": 0, "x_max": unit.geometry.nx - 1}
        traces.append({**base, "coeffs": unit.trace_coeffs[i, f].tolist(), "y": opt.trace_y(unit, i, f, x).tolist(),
                       "sigma": opt.profile_sigma(unit, i, f, x).tolist()})
        coeffs, err = opt.wave_coefficients(unit, i, f)
        waves.append({**base, "coeffs": coeffs.tolist(), "max_fit_error_a": err,
                      "wavelength": opt.wavelength(unit, i, f, x).tolist(), "blaze": model.blaze[i, f].tolist()})
    return traces, waves


# ----------------------------------------------------------------------------- sites, catalogue, truth
def site_context(site: Site, geometry: opt.Geometry, seed: int, lines: np.ndarray) -> SiteContext:
    unit = opt.design(geometry, _rng(seed, site.ident, 0, 5))
    ccd = det.make_ccd(site.camera, geometry, _rng(seed, site.ident, 0, 6))
    return SiteContext(site=site, ccd=ccd, unit=unit, flat_scale=lamp_scale(unit), lines=lines, seed=seed)


def ccd_truth(site: Site, ccd: det.Ccd) -> dict:
    hot = np.zeros(ccd.dark_e_s.shape, dtype=bool)
    hot[ccd.hot[:, 0].astype(int), ccd.hot[:, 1].astype(int)] = True
    return {"site": site.code, "instrument": site.instrument, "camera": ccd.camera, "nx": ccd.nx, "ny": ccd.ny,
            "n_overscan": ccd.n_overscan, "gain": ccd.gain, "read_noise_e": ccd.read_noise_e,
            "overscan_adu": ccd.overscan_adu, "bias_level_adu": ccd.overscan_adu + float(ccd.bias_structure.mean()),
            "bias_structure_rms_adu": float(ccd.bias_structure.std()), "dark_e_s": float(ccd.dark_e_s[~hot].mean()),
            "n_hot": len(ccd.hot), "hot_x": ccd.hot[:, 1].astype(int).tolist(), "hot_y": ccd.hot[:, 0].astype(int).tolist(),
            "hot_e_s": ccd.hot[:, 2].tolist(), "temperature_c": ccd.temperature_c, "saturate_adu": float(det.ADC_MAX)}


def instrument_truth(site: Site, ctx: SiteContext) -> dict:
    u = ctx.unit
    return {"site": site.code, "instrument": site.instrument, "camera": site.camera, "geometry": u.geometry.name,
            "first_order": u.geometry.first_order, "n_orders": u.geometry.n_orders, "groove_a": u.groove_a,
            "blaze_deg": float(np.degrees(u.blaze_rad)), "alpha_deg": float(np.degrees(u.alpha_rad)),
            "beta_c_deg": float(np.degrees(u.beta_c_rad)), "gamma_deg": float(np.degrees(u.gamma_rad)),
            "dgamma_rad": u.dgamma_rad, "camera_px": u.camera_px, "resolution": u.resolution, "sigma_px": u.sigma_px,
            "fiber_throughput": list(u.fiber_throughput), "science_fiber": site.science_fiber,
            "latitude": site.latitude, "longitude": site.longitude, "height": site.height, "timezone": site.timezone}


def targets_csv(stars: list[Star], malformed: str | None) -> str:
    """targets.csv in the original format; the ``malformed`` star's row lacks its Bmag (16 fields,
    the later ones shifted left: a reader that does not count fields takes Teff for the RV)."""
    lines = [TARGETS_HEADER]
    for s in stars:
        fields = [s.name, f"{s.ra:.5f}", f"{s.dec:.5f}", f"{s.vmag:.2f}", f"{s.bmag:.2f}", "-99.9", "-99.9", "-99.9",
                  "-99.9", "-99.9", f"{s.pm_ra:.1f}", f"{s.pm_dec:.1f}", f"{s.parallax:.2f}", f"{s.rv:.4f}",
                  f"{s.teff:.0f}", f"{s.logg:.2f}", "NULL"]
        lines.append(",".join(fields[:4] + fields[5:] if s.name == malformed else fields))
    return "\n".join(lines) + "\n"


def simulate_nights(out: Path, *, sites: Iterable[str] = ("cpt", "lsc"), nights: int = 2, full: bool = False,
                    seed: int = 0, defects: Iterable[str] = ()) -> dict:
    """Simulate ``nights`` nights at each of ``sites`` into ``out``; return the settings that reduce
    the first site (see the module docstring for what is written)."""
    out = Path(out)
    chosen = list(dict.fromkeys(sites))
    unknown = [s for s in chosen if s not in SITES]
    if unknown or not chosen:
        raise ValueError(f"unknown NRES site(s) {unknown or 'none given'}: known {sorted(SITES)}")
    defects = set(defects)
    if defects - set(DEFECTS):
        raise ValueError(f"unknown defect(s) {sorted(defects - set(DEFECTS))}: known {list(DEFECTS)}")
    if nights < 1 or ("two_flats" in defects and nights < 2):
        raise ValueError("nights must be >= 1 (>= 2 with the two_flats defect: the previous master is needed)")
    geometry = opt.FULL if full else opt.SMALL
    lines = spec.stellar_lines(_rng(seed, 0, 0, 7))
    tables = {name: [] for name in SCHEMAS}
    for k, code in enumerate(chosen):
        site = SITES[code]
        ctx = site_context(site, geometry, seed, lines)
        for night in range(nights):
            frames = night_frames(ctx, night, k == 0, night == nights - 1, defects)
            rows, defect_rows, traces, waves = simulate_night(out, ctx, night, frames)
            tables["frames"] += rows
            tables["defects"] += defect_rows
            tables["traces"] += traces
            tables["wavelengths"] += waves
        tables["ccds"].append(ccd_truth(site, ctx.ccd))
        tables["instruments"].append(instrument_truth(site, ctx))
    listed = [TEMPLATE, *SCIENCE]
    malformed = MALFORMED if "malformed_target" in defects else None
    write_text(out / "targets.csv", targets_csv(listed, malformed))
    observed = listed + ([UNLISTED] if "missing_target" in defects else [])
    for s in observed:
        role = "template" if s is TEMPLATE else "science"
        tables["stars"].append({"name": s.name, "ra": s.ra, "dec": s.dec, "vmag": s.vmag, "bmag": s.bmag,
                                "pm_ra": s.pm_ra, "pm_dec": s.pm_dec, "parallax": s.parallax, "rv_m_s": s.rv * 1e3,
                                "teff": s.teff, "logg": s.logg, "vsini": s.vsini, "role": role,
                                "in_targets_csv": s in listed, "malformed_row": s.name == malformed})
    if "missing_target" in defects:
        seen = " ".join(r["filename"] for r in tables["frames"] if r["defect"] == "missing_target")
        tables["defects"].append(_defect_row("missing_target", None, "", seen, UNLISTED.name))
    if malformed:
        tables["defects"].append(_defect_row("malformed_target", None, "", "targets.csv", malformed))
    for name, rows in tables.items():
        write_table(out / "truth" / f"{name}.parquet", pa.Table.from_pylist(rows, schema=SCHEMAS[name]))
    first = SITES[chosen[0]]
    return {"data_root": str(out), "site": first.code, "instrument": first.instrument, "start": DAY0.isoformat(),
            "end": (DAY0 + dt.timedelta(days=nights)).isoformat(), "targets": str(out / "targets.csv")}
