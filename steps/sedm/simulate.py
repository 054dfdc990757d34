"""SEDM simulator: one night of raw IFU and guider frames in the observatory's format, with truth.

``simulate_night(out, *, full=False, seed=0, cases=DEFAULT_CASES, date="20240612")`` writes

* ``{out}/{YYYYMMDD}/ifu{YYYYMMDD}_{HH_MM_SS}.fits``: the IFU frames as the observatory writes
  them (the independent sample night is the reference): one primary HDU, uint16 stored as BITPIX 16
  with BZERO 32768, the last 4 columns an overscan (OSCANX0/OSCANX1), the sample's keywords and
  value formats (OBJECT ``Calib: bias 3 of 10`` at ADCSPEED 2.0 and 0.1, ``Calib: dome|Hg|Cd|Xe i
  of 5``, ``STD-BD+33d2642``, ``ZTF24aa.....``; IMGTYPE bias/dome/lamp/standard/science; GAIN 1.8;
  AIRMASS/ENDAIR to 0.01; RA/DEC (the IFU centre) and OBJRA/OBJDEC sexagesimal; JD, MJD_OBS, DATE-OBS;
  DOMEST; LAMPCUR for lamps).  2048 x 2048 and 1027 spaxels with ``full=True``; by default 768 x
  768 (764 imaging columns + 4 overscan) and 169 spaxels, a night that simulates in seconds.
* ``{out}/{YYYYMMDD}/rc{YYYYMMDD}_{HH_MM_SS}.fits``: guider frames during each science exposure
  (``simulate_guider``), with the astrometric WCS unless the case says the astrometry failed.
* ``{out}/standards/BD+33d2642.csv``: the standard's reference spectrum (the standards folder).
* ``{out}/truth/{YYYYMMDD}/{frames,spaxels,transients,detector,night,cosmics}.parquet``, columns
  in :data:`SCHEMAS`, and ``bias_structure.fits`` (the fixed bias pattern per ADC speed).

and returns the settings a run needs (``data_root``, ``date``, ``standards``, ``truth``).

The night (``simulate_plan``): 10 + 10 biases, 5 dome flats, 5 each of Hg, Cd and Xe, the standard
(twice with ``full``) and the transients: 3 regular ones by default, 11 with ``full``, plus one
per science case (``outside``: quality 3; ``faint``: 4; ``guider_failed``: 5, target brightest;
``neighbour``: 5, a star 1.5 mag brighter in the IFU), 15 transients in all with ``full``.  The
``few_arcs`` case (not in the defaults) keeps only 2 of each 5 arcs, so the night's geometry fails
and needs a fallback.  Each sky frame has its flexure (px along and across dispersion, about
0.8 and 0.5 px rms; the afternoon calibrations define zero), its seeing and cosmic rays; the
atmosphere (extinction and telluric bands) is applied to the sources at the header's AIRMASS;
the sky continuum passes the telluric bands but not the extinction (it glows within the
atmosphere) and the sky lines neither.  Optics, light and CCD are in ``simulate_optics``,
``simulate_spectra`` and ``simulate_detector``, each saying what it simplifies.

Several nights can share one ``out`` (a good night, then a ``few_arcs`` night that falls back to
it): the instrument is drawn from (seed, 1), the same every night, and each night moves the whole
trace pattern by a rigid shift of ~0.3 px (seeded by the date), as the real IFU drifts between
nights.  Every frame is drawn from its own seed (seed, frame sequence number): the same seed and
date give the same bytes.
"""

from __future__ import annotations

import datetime as dt
import io
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
from astroflow.atomic import write_bytes, write_table
from astropy.io import fits

from steps.sedm import simulate_detector as det
from steps.sedm import simulate_guider as gdr
from steps.sedm import simulate_optics as opt
from steps.sedm import simulate_spectra as spec
from steps.sedm.simulate_plan import (
    CASES,
    SCIENCE_CASES,
    Exposure,
    airmass,
    mjd,
    parse_sexagesimal,
    plan_night,
    sexagesimal,
)

DEFAULT_CASES = SCIENCE_CASES
DATE = "20240612"
ORIGIN = "astroflow SEDM simulator"
DOME_PEAK_E = 4.0e4  # electrons per column at the brightest point of a 30 s dome flat
ARC_E = 1.5e5  # electrons per line of relative intensity 1
LAMPCUR = {"dome": 2.0, "Hg": 1.0, "Cd": 1.5, "Xe": 3.0}
MOFFAT_BETA = 3.0
TRUTH_GRID = np.arange(3600.0, 9601.0, 5.0)  # A, the transients' true spectra
NIGHTLY_SHIFT_PX = 0.3  # rms of the night-to-night rigid shift of the trace pattern

SCHEMAS = {
    "frames": pa.schema([
        ("filename", pa.string()), ("camera", pa.string()), ("seq", pa.int32()), ("imgtype", pa.string()),
        ("object", pa.string()), ("lamp", pa.string()), ("adcspeed", pa.float64()), ("exptime", pa.float64()),
        ("mjd_obs", pa.float64()), ("airmass", pa.float64()), ("ifu_file", pa.string()),
        ("flexure_along_px", pa.float64()), ("flexure_across_px", pa.float64()), ("flexure_lambda_a", pa.float64()),
        ("seeing_arcsec", pa.float64()), ("target_x_arcsec", pa.float64()), ("target_y_arcsec", pa.float64()),
        ("case", pa.string()), ("quality", pa.int32()), ("guider_wcs", pa.bool_()), ("overscan_adu", pa.float64()),
        ("n_cosmics", pa.int32())]),
    "spaxels": pa.schema([
        ("spaxel", pa.int32()), ("q", pa.int32()), ("r", pa.int32()), ("sky_x_arcsec", pa.float64()),
        ("sky_y_arcsec", pa.float64()), ("x0", pa.float64()), ("y0", pa.float64()), ("tilt", pa.float64()),
        ("sigma_y_px", pa.float64()), ("sigma_line_px", pa.float64()), ("throughput", pa.float64()),
        ("trace_len", pa.int32()), ("wave_coeffs", pa.list_(pa.float64())), ("lambda_min", pa.float64()),
        ("lambda_max", pa.float64())]),
    "transients": pa.schema([
        ("object", pa.string()), ("filename", pa.string()), ("type", pa.string()), ("z", pa.float64()),
        ("mag", pa.float64()), ("ra", pa.float64()), ("dec", pa.float64()), ("target_x_arcsec", pa.float64()),
        ("target_y_arcsec", pa.float64()), ("exptime", pa.float64()), ("airmass", pa.float64()), ("case", pa.string()),
        ("quality", pa.int32()), ("neighbour_mag", pa.float64()), ("neighbour_x_arcsec", pa.float64()),
        ("neighbour_y_arcsec", pa.float64()), ("wavelength", pa.list_(pa.float64())),
        ("flux", pa.list_(pa.float64()))]),
    "detector": pa.schema([
        ("adcspeed", pa.float64()), ("gain", pa.float64()), ("read_noise_e", pa.float64()),
        ("overscan_adu", pa.float64()), ("bias_level_adu", pa.float64())]),
    "cosmics": pa.schema([("filename", pa.string()), ("row", pa.int32()), ("column", pa.int32())]),
    "night": pa.schema([
        ("date", pa.string()), ("full", pa.bool_()), ("seed", pa.int64()), ("cases", pa.list_(pa.string())),
        ("ny", pa.int32()), ("nx", pa.int32()), ("n_overscan", pa.int32()), ("ring", pa.int32()),
        ("n_spaxels", pa.int32()), ("trace_len", pa.int32()), ("spaxel_arcsec", pa.float64())]),
}
"""The truth tables (``{out}/truth/{YYYYMMDD}/{name}.parquet``).

Wavelengths are vacuum A.  ``wave_coeffs`` are numpy.polynomial coefficients (increasing powers)
of ``lambda(p)``, p the trace pixel: the column is ``x0 + p`` and the row of the trace centre
``y0 + tilt * p`` (0-based pixel centres, no flexure).  A frame's flexure moves every trace by
``flexure_along_px`` columns and ``flexure_across_px`` rows; ``flexure_lambda_a`` is the
wavelength error that makes at the Na D sky line (median over spaxels) if ignored.  Target
offsets are arcsec east and north of the IFU centre (the header's RA/DEC), spaxel positions the
same.  ``quality`` is what the runbook's scheme should grade the spectrum (-1: not a spectrum).
Guider rows (``camera`` RC) name the IFU exposure they guided in ``ifu_file``; their
``adcspeed`` and flexure are NaN, their ``guider_wcs`` says whether they carry the WCS.
A transient's ``flux`` is its F_lambda above the atmosphere (erg/s/cm2/A) on ``wavelength``.
``cosmics`` lists every pixel of an IFU frame hit by a cosmic ray (0-based row and column of the
frame).  ``bias_structure.fits`` holds, per ADC speed (extension ``ADC2.0``, ``ADC0.1``), the
fixed bias pattern of the imaging columns in ADU above the overscan level (what a master bias
recovers, times the gain)."""


def _rng(*keys: int) -> np.random.Generator:
    return np.random.default_rng([int(k) for k in keys])


def ifu_name(t: dt.datetime, camera: str = "ifu") -> str:
    return f"{camera}{t:%Y%m%d_%H_%M_%S}.fits"


def _psf_fraction(sp: opt.Spaxels, lam: np.ndarray, x: float, y: float, seeing: float) -> np.ndarray:
    """Fraction (n, L) of a point source's light at (x, y) arcsec falling in each spaxel, a Moffat
    PSF of FWHM ``seeing * (lam / 6000) ** -0.2`` averaged over a 5 x 5 grid on the lenslet's area."""
    side = np.sqrt(np.sqrt(3.0) / 2.0) * opt.SPAXEL_ARCSEC
    sub = (np.arange(5) - 2) * side / 5.0
    fwhm = seeing * (lam / 6000.0) ** -0.2
    alpha2 = (fwhm / (2.0 * np.sqrt(2.0 ** (1.0 / MOFFAT_BETA) - 1.0))) ** 2
    dx = (sp.sky_x - x)[:, None, None] + sub[None, :, None]
    dy = (sp.sky_y - y)[:, None, None] + sub[None, None, :]
    r2 = (dx ** 2 + dy ** 2).reshape(sp.n, 1, 25)
    density = (MOFFAT_BETA - 1.0) / (np.pi * alpha2[:, :, None]) * (1.0 + r2 / alpha2[:, :, None]) ** -MOFFAT_BETA
    return density.mean(axis=2) * side ** 2


def _source_flux(kind: str, mag: float, z: float, temperature: float, lam: np.ndarray) -> np.ndarray:
    if kind == "standard":
        return spec.standard_flux(lam)
    if kind == "star":
        return spec.star_flux(mag, temperature, lam)
    return spec.transient_flux(kind, z, mag, lam)


def sky_light(sp: opt.Spaxels, exp: Exposure, offset: tuple[float, float], am: float) -> tuple[np.ndarray, opt.Columns]:
    """Electrons per trace column (n, L) of a sky exposure: sky continuum and lines, its sources."""
    cols = opt.columns(sp, exp.flexure[0])
    lam, dlam = cols.lam, cols.dlam
    spaxel_area = np.sqrt(3.0) / 2.0 * opt.SPAXEL_ARCSEC ** 2
    collect = spec.AREA_CM2 * exp.exptime * spec.efficiency(lam) * dlam
    per_col = spec.sky_continuum(lam) * spec.telluric(lam, am) * spaxel_area * collect
    lines = np.array([w for w, _ in spec.SKY_LINES])
    line_e = np.array([a for _, a in spec.SKY_LINES]) * spec.SKY_NA * spaxel_area * spec.AREA_CM2 \
        * exp.exptime * spec.efficiency(lines)
    per_col = per_col + opt.line_electrons(sp, cols, lines, np.broadcast_to(line_e, (sp.n, lines.size)))
    shift = (offset[0] - exp.offset[0], offset[1] - exp.offset[1])
    for s in exp.sources:
        f = _source_flux(s.kind, s.mag, s.z, s.temperature, lam)
        frac = _psf_fraction(sp, lam, s.x + shift[0], s.y + shift[1], exp.seeing)
        per_col = per_col + spec.photons(f, lam) * spec.atmosphere(lam, am) * frac * collect
    return per_col * sp.throughput[:, None], cols


def lamp_light(sp: opt.Spaxels, lamp: str, dome_scale: float, exptime: float) -> tuple[np.ndarray, opt.Columns]:
    cols = opt.columns(sp, 0.0)
    if lamp == "dome":
        per_col = dome_scale * spec.halogen(cols.lam) * spec.efficiency(cols.lam) * cols.dlam * exptime / 30.0
    else:
        lam, rel = spec.arc_lines()[lamp]
        per_col = opt.line_electrons(sp, cols, lam, np.broadcast_to(rel * ARC_E, (sp.n, lam.size)))
    return per_col * sp.throughput[:, None], cols


def _dome_scale(sp: opt.Spaxels) -> float:
    cols = opt.columns(sp, 0.0)
    peak = (spec.halogen(cols.lam) * spec.efficiency(cols.lam) * cols.dlam * sp.throughput[:, None]).max()
    return DOME_PEAK_E / float(peak)


def _base_header(exp: Exposure, camera: str) -> fits.Header:
    h = fits.Header()
    h["ORIGIN"] = (ORIGIN, "synthetic data")
    h["TELESCOP"] = ("P60", "Palomar 60-inch")
    h["INSTRUME"] = "SEDM-P60"
    h["CAM_NAME"] = camera
    h["OBJECT"] = (exp.object, "Object name")
    h["NAME"] = exp.object
    return h


def _time_keys(h: fits.Header, t: dt.datetime) -> None:
    day = mjd(t)
    h["JD"] = (day + 2400000.5, "Julian date at start")
    h["MJD_OBS"] = (day, "MJD at start")
    iso = t.strftime("%Y-%m-%dT%H:%M:%S")
    h["DATE"] = (iso, "UT start")
    h["DATE-OBS"] = (iso, "UT start")
    h["UTC"] = iso
    h["OBSDATE"] = t.strftime("%Y-%m-%d")
    h["OBSTIME"] = t.strftime("%H:%M:%S")


def ifu_header(exp: Exposure, nx: int, am: tuple[float, float], coords: dict) -> fits.Header:
    h = _base_header(exp, "IFU")
    h["IMGTYPE"] = (exp.imgtype, "Image type")
    h["EXPTIME"] = (exp.exptime, "Exposure time (s)")
    h["ADCSPEED"] = (exp.adcspeed, "ADC speed (MHz)")
    h["GAIN"] = (det.GAIN, "e-/ADU")
    h["AIRMASS"] = am[0]
    h["ENDAIR"] = am[1]
    h["DOMEST"] = ("OPEN" if exp.sky else "CLOSED", "Dome status")
    _time_keys(h, exp.start)
    if exp.sky:
        h["RA"] = (coords["RA"], "telescope RA (IFU centre)")
        h["DEC"] = (coords["DEC"], "telescope Dec (IFU centre)")
    h["EQUINOX"] = 2000.0
    h["TEL_PA"] = 0.0
    h["FILTER"] = ""
    h["ELAPTIME"] = exp.exptime + 10.0
    h["OSCANX0"] = (nx - det.N_OVERSCAN, "first overscan column (0-based)")
    h["OSCANX1"] = nx
    if exp.lamp:
        h["LAMPCUR"] = (LAMPCUR[exp.lamp], "lamp current")
    if exp.sky:
        h["OBJRA"] = (coords["OBJRA"], "target RA")
        h["OBJDEC"] = (coords["OBJDEC"], "target Dec")
        h["REQ_ID"] = exp.req_id
        h["OBJ_ID"] = exp.obj_id
    return h


def _fits_bytes(data: np.ndarray, header: fits.Header, name: str) -> bytes:
    hdu = fits.PrimaryHDU(data=data, header=header)
    hdu.header["FILENAME"] = name
    buf = io.BytesIO()
    hdu.writeto(buf)
    return buf.getvalue()


def pointing(exp: Exposure) -> tuple[dict, tuple[float, float], float, float]:
    """Header coordinate strings, the target's true offset on the IFU (arcsec east, north) from
    those rounded strings, and the telescope's RA, Dec (deg) they say."""
    ra_t, dec_t = exp.target_ra, exp.target_dec
    ra_p = ra_t - exp.offset[0] / 3600.0 / np.cos(np.radians(dec_t))
    dec_p = dec_t - exp.offset[1] / 3600.0
    coords = {"RA": sexagesimal(ra_p, True), "DEC": sexagesimal(dec_p, False),
              "OBJRA": sexagesimal(ra_t, True), "OBJDEC": sexagesimal(dec_t, False)}
    ra_p, dec_p = parse_sexagesimal(coords["RA"], True), parse_sexagesimal(coords["DEC"], False)
    ra_t, dec_t = parse_sexagesimal(coords["OBJRA"], True), parse_sexagesimal(coords["OBJDEC"], False)
    w = gdr.guider_wcs(ra_p, dec_p, 1)
    px, py = w.all_world2pix([[ra_t, dec_t]], 0)[0]
    scale = gdr.PIXEL_ARCSEC
    return coords, (float(-px * scale), float(py * scale)), ra_p, dec_p


def _guider_frames(exp: Exposure, ifu_file: str, day_dir: Path, n: int, ra_p: float, dec_p: float,
                   offset: tuple[float, float], am: float, coords: dict, seed: int, ifu_radius: float) -> list[dict]:
    rng = _rng(seed, 4, exp.seq)
    stars = gdr.field_stars(n, rng)
    stars = stars[np.hypot(stars[:, 0], stars[:, 1]) > 2.0 * ifu_radius]
    if not exp.guider_ok:
        stars = stars[:gdr.SPARSE_FIELD]
    shift = (offset[0] - exp.offset[0], offset[1] - exp.offset[1])
    ifu_sources = [(s.x + shift[0], s.y + shift[1], s.mag) for s in exp.sources]
    sources = np.vstack([stars, np.array(ifu_sources)])
    rows = []
    for k in range(gdr.GUIDER_PER_EXPOSURE):
        t = exp.start + dt.timedelta(seconds=round((k + 0.5) * exp.exptime / gdr.GUIDER_PER_EXPOSURE))
        name = ifu_name(t, "rc")
        data = gdr.render(n, sources, exp.seeing, rng)
        h = _base_header(exp, "RC")
        h["IMGTYPE"] = ("guider", "Image type")
        h["EXPTIME"] = (gdr.GUIDER_EXPTIME, "Exposure time (s)")
        h["GAIN"] = (gdr.GAIN, "e-/ADU")
        h["AIRMASS"] = am
        _time_keys(h, t)
        h["RA"] = (coords["RA"], "telescope RA (IFU centre)")
        h["DEC"] = (coords["DEC"], "telescope Dec (IFU centre)")
        h["OBJRA"] = (coords["OBJRA"], "target RA")
        h["OBJDEC"] = (coords["OBJDEC"], "target Dec")
        h["EQUINOX"] = 2000.0
        h["TEL_PA"] = 0.0
        h["FILTER"] = "r"
        if exp.guider_ok:
            h.extend(gdr.guider_wcs(ra_p, dec_p, n, h["MJD_OBS"]).to_header(), update=True)
        write_bytes(day_dir / name, _fits_bytes(data, h, name))
        rows.append(_frame_row(name, "RC", exp, am, ifu_file=ifu_file, offset=offset, lam_a=np.nan,
                               info={"overscan_adu": gdr.OFFSET_ADU, "n_cosmics": 0}, quality=-1, imgtype="guider",
                               exptime=gdr.GUIDER_EXPTIME, mjd_obs=mjd(t)))
    return rows


def _frame_row(name: str, camera: str, exp: Exposure, am: float, *, ifu_file: str, offset, lam_a: float, info: dict,
               quality: int, imgtype: str, exptime: float, mjd_obs: float) -> dict:
    ifu = camera == "IFU"
    return {
        "filename": name, "camera": camera, "seq": exp.seq, "imgtype": imgtype, "object": exp.object,
        "lamp": exp.lamp, "adcspeed": exp.adcspeed if ifu else np.nan, "exptime": exptime, "mjd_obs": mjd_obs,
        "airmass": am, "ifu_file": ifu_file, "flexure_along_px": exp.flexure[0] if ifu else np.nan,
        "flexure_across_px": exp.flexure[1] if ifu else np.nan, "flexure_lambda_a": lam_a,
        "seeing_arcsec": exp.seeing, "target_x_arcsec": offset[0], "target_y_arcsec": offset[1], "case": exp.case,
        "quality": quality, "guider_wcs": exp.guider_ok and exp.imgtype == "science",
        "overscan_adu": info["overscan_adu"], "n_cosmics": info["n_cosmics"],
    }


def _spaxel_rows(sp: opt.Spaxels) -> list[dict]:
    p = np.array([0.0, sp.trace_len - 1.0])
    lam = opt.wavelength(sp.wave_coeffs, np.broadcast_to(p, (sp.n, 2)))
    return [{
        "spaxel": i, "q": int(sp.q[i]), "r": int(sp.r[i]), "sky_x_arcsec": float(sp.sky_x[i]),
        "sky_y_arcsec": float(sp.sky_y[i]), "x0": float(sp.x0[i]), "y0": float(sp.y0[i]), "tilt": float(sp.tilt[i]),
        "sigma_y_px": float(sp.sigma_y[i]), "sigma_line_px": float(sp.sigma_line[i]),
        "throughput": float(sp.throughput[i]), "trace_len": sp.trace_len, "wave_coeffs": sp.wave_coeffs[i].tolist(),
        "lambda_min": float(lam[i, 0]), "lambda_max": float(lam[i, 1]),
    } for i in range(sp.n)]


def _transient_row(exp: Exposure, name: str, am: float, offset) -> dict:
    s = exp.sources[0]
    nb = exp.sources[1] if len(exp.sources) > 1 else None
    shift = (offset[0] - exp.offset[0], offset[1] - exp.offset[1])
    return {
        "object": exp.object, "filename": name, "type": s.kind, "z": s.z, "mag": s.mag, "ra": exp.target_ra,
        "dec": exp.target_dec, "target_x_arcsec": offset[0], "target_y_arcsec": offset[1], "exptime": exp.exptime,
        "airmass": am, "case": exp.case, "quality": exp.quality, "neighbour_mag": nb.mag if nb else np.nan,
        "neighbour_x_arcsec": nb.x + shift[0] if nb else np.nan,
        "neighbour_y_arcsec": nb.y + shift[1] if nb else np.nan,
        "wavelength": TRUTH_GRID.tolist(), "flux": spec.transient_flux(s.kind, s.z, s.mag, TRUTH_GRID).tolist(),
    }


def _table(name: str, rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=SCHEMAS[name])


def simulate_night(out, *, full: bool = False, seed: int = 0, cases=DEFAULT_CASES, date: str = DATE) -> dict:
    """Write one simulated SEDM night under ``out`` (see the module docstring); return its settings."""
    unknown = set(cases) - set(CASES)
    if unknown:
        raise ValueError(f"unknown SEDM simulation cases {sorted(unknown)}; known: {sorted(CASES)}")
    out = Path(out)
    day = dt.datetime.strptime(date, "%Y%m%d").date()
    layout = opt.FULL if full else opt.SMALL
    inst = _rng(seed, 1)
    ccd = det.make_ccd(layout.ny, layout.nx, inst)
    nightly = _rng(seed, 5, int(date)).normal(0.0, NIGHTLY_SHIFT_PX, 2)
    sp = opt.shifted(opt.make_spaxels(layout, inst), *nightly)
    dome_scale = _dome_scale(sp)
    ifu_radius = layout.ring * opt.SPAXEL_ARCSEC
    plan = plan_night(day, full=full, cases=tuple(cases), ifu_radius_arcsec=ifu_radius, rng=_rng(seed, 2))
    day_dir = out / date
    day_dir.mkdir(parents=True, exist_ok=True)
    guider_n = layout.nx if full else 256
    na_p = opt.pixel_of(sp.wave_coeffs, np.array([spec.NA_D_VAC]))
    na_dispersion = float(np.median(opt.dispersion(sp.wave_coeffs, na_p)))
    frames, transients, cosmics = [], [], []
    for exp in plan:
        rng = _rng(seed, 3, exp.seq)
        name = ifu_name(exp.start)
        coords, offset, ra_p, dec_p = {}, (np.nan, np.nan), np.nan, np.nan
        am = (1.0, 1.0 if exp.imgtype == "bias" else 1.01)
        light = None
        if exp.sky:
            coords, offset, ra_p, dec_p = pointing(exp)
            am = (round(airmass(ra_p, dec_p, exp.mjd), 2),
                  round(airmass(ra_p, dec_p, exp.mjd + (exp.exptime + 10.0) / 86400.0), 2))
            per_col, cols = sky_light(sp, exp, offset, am[0])
            light = opt.render(sp, cols, per_col, exp.flexure[1], ccd.ny, ccd.nx_image)
        elif exp.lamp:
            per_col, cols = lamp_light(sp, exp.lamp, dome_scale, exp.exptime)
            light = opt.render(sp, cols, per_col, 0.0, ccd.ny, ccd.nx_image)
        counts, info = det.read_out(ccd, exp.adcspeed, light, exp.exptime, rng)
        rows, columns = np.divmod(info["cosmic_pixels"], ccd.nx_image)
        cosmics += [{"filename": name, "row": int(r), "column": int(c)} for r, c in zip(rows, columns)]
        write_bytes(day_dir / name, _fits_bytes(counts, ifu_header(exp, ccd.nx, am, coords), name))
        frames.append(_frame_row(name, "IFU", exp, am[0], ifu_file=name, offset=offset,
                                 lam_a=exp.flexure[0] * na_dispersion if exp.sky else np.nan, info=info,
                                 quality=exp.quality, imgtype=exp.imgtype, exptime=exp.exptime, mjd_obs=exp.mjd))
        if exp.imgtype == "science":
            transients.append(_transient_row(exp, name, am[0], offset))
            frames += _guider_frames(exp, name, day_dir, guider_n, ra_p, dec_p, offset, am[0], coords, seed, ifu_radius)
    standards = out / "standards"
    standards.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(spec.DATA / f"{spec.STANDARD}.csv", standards / f"{spec.STANDARD}.csv")
    truth = out / "truth" / date
    detector = [{"adcspeed": s, "gain": det.GAIN, "read_noise_e": ro.read_noise_e, "overscan_adu": ro.level_adu,
                 "bias_level_adu": ro.level_adu + float(ro.structure.mean())} for s, ro in ccd.readouts.items()]
    night = [{"date": date, "full": full, "seed": seed, "cases": list(cases), "ny": layout.ny, "nx": layout.nx,
              "n_overscan": det.N_OVERSCAN, "ring": layout.ring, "n_spaxels": sp.n, "trace_len": sp.trace_len,
              "spaxel_arcsec": opt.SPAXEL_ARCSEC}]
    for table, rows in (("frames", frames), ("spaxels", _spaxel_rows(sp)), ("transients", transients),
                        ("detector", detector), ("night", night), ("cosmics", cosmics)):
        write_table(truth / f"{table}.parquet", _table(table, rows))
    structure = [fits.PrimaryHDU()] + [fits.ImageHDU(ro.structure, name=f"ADC{s:.1f}") for s, ro in ccd.readouts.items()]
    buf = io.BytesIO()
    fits.HDUList(structure).writeto(buf)
    write_bytes(truth / "bias_structure.fits", buf.getvalue())
    return {"data_root": str(out), "date": date, "standards": str(standards), "truth": str(truth)}
