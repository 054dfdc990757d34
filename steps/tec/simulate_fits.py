"""Write SPOC light-curve, DV time-series and target-pixel FITS files.

HDUs, column names/formats/units and header keys follow real SPOC exports
(reference/spoc-formats.md sections 2-4). The arrays come from the simulator.
"""

from __future__ import annotations

import gzip
import io
import os
from pathlib import Path

import numpy as np
from astropy.io import fits

BTJD_UNIT = "BJD - 2457000, days"


def write_bytes(path: Path, data: bytes, gzipped: bool) -> None:
    """Atomic write; gzip with a fixed mtime so the bytes are reproducible."""
    if gzipped:
        data = gzip.compress(data, compresslevel=2, mtime=0)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _hdul_bytes(hdul: fits.HDUList) -> bytes:
    buf = io.BytesIO()
    hdul.writeto(buf, output_verify="silentfix")
    return buf.getvalue()


def _star_cards(s: dict, with_location: bool) -> list:
    cards = [
        ("OBJECT", f"TIC {s['tic']}", "string version of target id"),
        ("TICID", s["tic"], "unique tess target identifier"),
        ("SECTOR", s["sector"], "Observing sector"),
    ]
    if with_location:
        cards += [("CAMERA", s["camera"], "Camera number"), ("CCD", s["ccd"], "CCD chip number")]
    cards += [
        ("PXTABLE", s["pxtable"], "pixel table id"),
        ("RADESYS", "ICRS", "reference frame of celestial coordinates"),
        ("RA_OBJ", s["ra"], "[deg] right ascension"),
        ("DEC_OBJ", s["dec"], "[deg] declination"),
        ("EQUINOX", 2000.0, "equinox of celestial coordinate system"),
        ("PMRA", s["pmra"], "[arcsec/yr] RA proper motion"),
        ("PMDEC", s["pmdec"], "[arcsec/yr] Dec proper motion"),
        ("PMTOTAL", float(np.hypot(s["pmra"], s["pmdec"])), "[arcsec/yr] total proper motion"),
        ("TESSMAG", round(s["tmag"], 3), "[mag] TESS magnitude"),
        ("TEFF", round(s["teff"], 1), "[K] Effective temperature"),
        ("LOGG", round(s["logg"], 3), "[cm/s2] log10 surface gravity"),
        ("MH", round(s["mh"], 3), "[log10([M/H])] metallicity"),
        ("RADIUS", round(s["radius"], 3), "[solar radii] stellar radius"),
        ("TICVER", 8, "TICVER"),
    ]
    return cards


def _primary(s: dict, creator: str, extra: list, with_location: bool = True) -> fits.PrimaryHDU:
    h = fits.Header()
    h["ORIGIN"] = ("NASA/Ames", "institution responsible for creating this file")
    h["DATE"] = (s["file_date"], "file creation date.")
    for key in ("DATE-OBS", "DATE-END"):
        h[key] = s["date_obs" if key == "DATE-OBS" else "date_end"]
    h["CREATOR"] = creator
    h["PROCVER"] = s["procver"]
    h["TELESCOP"] = "TESS"
    h["INSTRUME"] = "TESS Photometer"
    for k, v, c in _star_cards(s, with_location):
        h[k] = (v, c)
    for k, v, c in extra:
        h[k] = (v, c)
    return fits.PrimaryHDU(header=h)


def _time_header(h: fits.Header, s: dict, grid) -> None:
    h["TIMEREF"] = ("SOLARSYSTEM", "barycentric correction applied to times")
    h["TASSIGN"] = "SPACECRAFT"
    h["TIMESYS"] = "TDB"
    h["BJDREFI"] = (2457000, "integer part of BTJD reference date")
    h["BJDREFF"] = (0.0, "fraction of the day in BTJD reference date")
    h["TIMEUNIT"] = "d"
    h["TELAPSE"] = (grid.tstop - grid.tstart, "[d] TSTOP - TSTART")
    h["TSTART"] = (grid.tstart, "observation start time in BTJD")
    h["TSTOP"] = (grid.tstop, "observation stop time in BTJD")
    h["TIMEPIXR"] = 0.5
    h["TIERRELA"] = (1.16e-05, "[d] relative time error")
    h["TIMEDEL"] = (grid.dt, "[d] time resolution of data")


def lightcurve_fits(s: dict, grid, cols: dict, aperture: np.ndarray, ap_origin: tuple[int, int]) -> bytes:
    """`*_lc.fits`: PRIMARY, LIGHTCURVE (20 columns) and APERTURE."""
    prim = _primary(s, "LightCurveExporterPipelineModule", [
        ("TSTART", grid.tstart, "observation start time in BTJD"),
        ("TSTOP", grid.tstop, "end time in BTJD"),
        ("TIMVERSN", "OGIP/93-003", "OGIP memo number for file format"),
        ("FILEVER", "1.0", "file format version"), ("DATA_REL", s["data_rel"], "data release version number"),
        ("CRMITEN", True, "spacecraft cosmic ray mitigation enabled"),
        ("CRBLKSZ", 10, "[exposures] s/c cosmic ray mitigation block siz"),
        ("CRSPOC", False, "SPOC cosmic ray cleaning enabled")])
    px = "pixel"
    spec = [
        ("TIME", "D", BTJD_UNIT), ("TIMECORR", "E", "d"), ("CADENCENO", "J", None),
        ("SAP_FLUX", "E", "e-/s"), ("SAP_FLUX_ERR", "E", "e-/s"), ("SAP_BKG", "E", "e-/s"),
        ("SAP_BKG_ERR", "E", "e-/s"), ("PDCSAP_FLUX", "E", "e-/s"), ("PDCSAP_FLUX_ERR", "E", "e-/s"),
        ("QUALITY", "J", None), ("PSF_CENTR1", "D", px), ("PSF_CENTR1_ERR", "E", px),
        ("PSF_CENTR2", "D", px), ("PSF_CENTR2_ERR", "E", px), ("MOM_CENTR1", "D", px),
        ("MOM_CENTR1_ERR", "E", px), ("MOM_CENTR2", "D", px), ("MOM_CENTR2_ERR", "E", px),
        ("POS_CORR1", "E", "pixels"), ("POS_CORR2", "E", "pixels"),
    ]
    table = fits.BinTableHDU.from_columns(
        [fits.Column(name=n, format=f, unit=u, array=cols[n]) for n, f, u in spec], name="LIGHTCURVE")
    h = table.header
    h["EXTNAME"] = ("LIGHTCURVE", "extension name")
    _time_header(h, s, grid)
    h["DATE-OBS"] = s["date_obs"]
    h["DATE-END"] = s["date_end"]
    h["LIVETIME"] = ((grid.tstop - grid.tstart) * 0.8, "[d] TELAPSE multiplied by DEADC")
    h["DEADC"] = 0.8
    h["INT_TIME"] = (1.98, "[s] photon accumulation time per frame")
    h["NUM_FRM"] = (int(round(grid.cadence_min * 30)), "number of frames per time stamp")
    h["BACKAPP"] = True
    h["DEADAPP"] = True
    h["VIGNAPP"] = True
    h["GAINA"] = 5.2
    h["READNOIA"] = 9.9
    h["NREADOUT"] = 48
    h["FXDOFF"] = 209715200
    for k in ("CDPP0_5", "CDPP1_0", "CDPP2_0"):
        h[k] = (round(s["cdpp"][k], 3), f"[ppm] RMS CDPP on {k[4]}.{k[6]}-hr time scales")
    h["CROWDSAP"] = (round(s["crowdsap"], 4), "Ratio of target flux to total flux in op. ap.")
    h["FLFRCSAP"] = (round(s["flfrcsap"], 4), "Frac. of target flux w/in the op. aperture")
    h["NUMBAND"] = (1, "Number of scale bands")
    h["FITTYPE1"] = ("robust", "Fit type used for band 1")
    h["PR_GOOD1"] = (0.0, "Prior goodness for band 1")
    h["PR_WGHT1"] = (0.0, "Prior weight for band 1")
    h["PDCVAR"] = (round(s["pdcvar"], 4), "Target variability")
    h["PDCMETHD"] = ("msMap", "PDC algorithm used for target")
    pdc = s["pdc_metrics"]
    for key, comment in (("TOT", "PDC total goodness metric for target"), ("COR", "PDC correlation goodness metric"),
                         ("VAR", "PDC variability goodness metric"), ("NOI", "PDC noise goodness metric for target"),
                         ("EPT", "PDC earth point goodness metric for target")):
        h[f"PDC_{key}"] = (round(pdc[key][0], 4), comment)
        h[f"PDC_{key}P"] = (round(pdc[key][1], 3), f"PDC_{key} percentile")
    ap = fits.ImageHDU(aperture.astype(np.int32), name="APERTURE")
    ap.header["EXTNAME"] = ("APERTURE", "extension name")
    ap.header["CRVAL1P"] = (ap_origin[1], "value at reference CCD column")
    ap.header["CRVAL2P"] = (ap_origin[0], "value at reference CCD row")
    ap.header["NPIXSAP"] = (int(((aperture & 2) > 0).sum()), "Number of pixels in optimal aperture")
    ap.header["NPIXMISS"] = 0
    return _hdul_bytes(fits.HDUList([prim, table, ap]))


TCE_COLUMNS = (("TIME", "D", BTJD_UNIT), ("TIMECORR", "E", "d"), ("CADENCENO", "J", None),
               ("PHASE", "E", "days"), ("LC_INIT", "E", "dimensionless"), ("LC_INIT_ERR", "E", "dimensionless"),
               ("LC_WHITE", "E", "dimensionless"), ("LC_DETREND", "E", "dimensionless"),
               ("MODEL_INIT", "E", "dimensionless"), ("MODEL_WHITE", "E", "dimensionless"))


def dv_timeseries_fits(s: dict, base: dict, tces: list[dict], stats: dict) -> bytes:
    """`*_dvt.fits`: PRIMARY (NUMTCES), TCE_1..TCE_n and STATISTICS on one cadence grid."""
    prim = _primary(s, "DvTimeSeriesExporter", [("NUMTCES", len(tces), "number of TCEs")],
                    with_location=False)
    hdus = [prim]
    for i, t in enumerate(tces, start=1):
        cols = {**base, **t["columns"]}
        hdu = fits.BinTableHDU.from_columns(
            [fits.Column(name=n, format=f, unit=u, array=cols[n]) for n, f, u in TCE_COLUMNS], name=f"TCE_{i}")
        h = hdu.header
        h["EXTNAME"] = (f"TCE_{i}", "extension name")
        for key, value, comment in t["header"]:
            h[key] = (value, comment)
        hdus.append(hdu)
    spec = [("TIME", "D", BTJD_UNIT), ("TIMECORR", "E", "d"), ("CADENCENO", "J", None),
            ("PDCSAP_FLUX", "E", "e-/s"), ("PDCSAP_FLUX_ERR", "E", "e-/s"), ("DEWEIGHTS", "E", None),
            ("QUALITY", "J", None), ("CDPP_1_0", "E", "ppm"), ("CDPP_2_0", "E", "ppm"), ("CDPP_4_5", "E", "ppm")]
    cols = {**base, **stats}
    hdu = fits.BinTableHDU.from_columns(
        [fits.Column(name=n, format=f, unit=u, array=cols[n]) for n, f, u in spec], name="STATISTICS")
    hdu.header["EXTNAME"] = ("STATISTICS", "extension name")
    hdus.append(hdu)
    return _hdul_bytes(fits.HDUList(hdus))


def target_pixel_fits(s: dict, grid, cols: dict, corner: tuple[int, int], aperture: np.ndarray) -> bytes:
    """`*_tp.fits`: PRIMARY, PIXELS (image columns, TDIM (cols,rows)) and APERTURE."""
    prim = _primary(s, "TargetPixelExporterPipelineModule", [])
    nrow, ncol = aperture.shape
    dim = f"({ncol},{nrow})"
    npx = nrow * ncol
    spec = [("TIME", "D", BTJD_UNIT, None), ("TIMECORR", "E", "d", None), ("CADENCENO", "J", None, None),
            ("RAW_CNTS", f"{npx}J", "count", dim), ("FLUX", f"{npx}E", "e-/s", dim),
            ("FLUX_ERR", f"{npx}E", "e-/s", dim), ("FLUX_BKG", f"{npx}E", "e-/s", dim),
            ("FLUX_BKG_ERR", f"{npx}E", "e-/s", dim), ("QUALITY", "J", None, None),
            ("POS_CORR1", "E", "pixels", None), ("POS_CORR2", "E", "pixels", None)]
    table = fits.BinTableHDU.from_columns(
        [fits.Column(name=n, format=f, unit=u, dim=d, array=cols[n]) for n, f, u, d in spec], name="PIXELS")
    h = table.header
    h["EXTNAME"] = ("PIXELS", "name of extension")
    h["1CTYP4"] = ("RA---TAN", "right ascension coordinate type")
    h["2CTYP4"] = ("DEC--TAN", "declination coordinate type")
    h["1CRPX4"] = ((ncol + 1) / 2, "[pixel] reference pixel along image axis 1")
    h["2CRPX4"] = ((nrow + 1) / 2, "[pixel] reference pixel along image axis 2")
    h["1CRVL4"] = (s["ra"], "[deg] right ascension at reference pixel")
    h["2CRVL4"] = (s["dec"], "[deg] declination at reference pixel")
    h["1CDLT4"] = (-0.00583333, "[deg] pixel scale in RA dimension")
    h["2CDLT4"] = (0.00583333, "[deg] pixel scale in DEC dimension")
    h["1CRV4P"] = (corner[1], "[pixel] detector coordinate at reference pixel")
    h["2CRV4P"] = (corner[0], "[pixel] detector coordinate at reference pixel")
    h["1CRPX4P"] = 1
    h["2CRPX4P"] = 1
    _time_header(h, s, grid)
    ap = fits.ImageHDU(aperture.astype(np.int32), name="APERTURE")
    ap.header["CRVAL1P"] = (corner[1], "value at reference CCD column")
    ap.header["CRVAL2P"] = (corner[0], "value at reference CCD row")
    return _hdul_bytes(fits.HDUList([prim, table, ap]))
