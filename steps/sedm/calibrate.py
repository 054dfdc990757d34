"""Runbook, science steps 5d-e: "the most recent fluxcal file is used to calibrate the science
target" and "the telluric absorption is corrected based on header AIRMASS".

One item per extracted standard or science frame (``extract`` rows; a standard calibrated by the
nearest fluxcal, its own, is the check of the calibration against its reference).  The fluxcal is the
calibration library's choice (``FLUXCAL_NEAREST``: the ``fluxcal_*.fits`` nearest in time to the
frame's MJD_OBS within a day, before or after, so a standard taken later tonight calibrates the
frames before it; else the latest earlier good one, recorded as a fallback, up to
``fallback_nights`` back).  The row records which fluxcal, from which night, and whether it is an
earlier night's.  With none the spectrum is flagged uncalibrated (``status`` ``uncalibrated``,
``FLUXCAL = 'none'``): its flux stays in e-/s/A and nothing is corrected for telluric absorption.
The spectrum (e-/s/A, extinction-corrected by the cube) times the fluxcal's inverse sensitivity,
divided by the telluric transmission scaled from the standard's airmass to the frame's AIRMASS
(:func:`steps.sedm.science.fluxcal.calibrate`), is F_lambda in erg/s/cm2/A.

Product (an intermediate: the ``spectrum`` step writes the night directory's final spectrum of
the same name): ``RUN/calibrated/spec_forcepsf_auto_lstep1__crr_b_ifu{date}_{HH_MM_SS}_{OBJECT}.fits``
-- primary image (n_lambda,) float64 the flux (erg/s/cm2/A, or e-/s/A when uncalibrated), the
extracted spectrum's header plus BUNIT, FLUXCAL (the fluxcal's file name or ``none``),
FLUXCALN (its night), FCEARLY (an earlier night's), FCREASON (the library's reason), TELLAM (the
airmass corrected to) and the provenance cards; extensions ``VARIANCE`` and ``TELLURIC`` (the
transmission divided out), ``PSF`` (the extraction's, copied: ``extract.read_spectrum`` reads the
file too).  Read it with :func:`steps.sedm.extract.read_spectrum`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
from astropy.io import fits

from astroflow.calib import NoCalibration
from astroflow.step import FanOut
from steps.sedm.calibrations import FLUXCAL_NEAREST, look_up, night_of, observed
from steps.sedm.extract import read_spectrum
from steps.sedm.fluxcal import read_fluxcal
from steps.sedm.science import classify as xcor
from steps.sedm.science import fluxcal as science
from steps.sedm.writer import guard, write_fits

PRODUCT_DIR = Path("calibrated")
SCHEMA = pa.schema([
    ("filename", pa.string()), ("object", pa.string()), ("kind", pa.string()), ("status", pa.string()),
    ("calibrated", pa.bool_()), ("fluxcal_file", pa.string()),
    ("fluxcal_night", pa.string()), ("earlier_night", pa.bool_()), ("fallback", pa.bool_()),
    ("reason", pa.string()), ("airmass", pa.float64()), ("mjd_obs", pa.float64()), ("exptime", pa.float64()),
    ("snr", pa.float64()), ("bunit", pa.string()), ("spectrum_path", pa.string()), ("calibrated_path", pa.string()),
])
FLUX_UNIT = "erg/(s cm2 Angstrom)"
COUNT_UNIT = "electron/(s Angstrom)"


def extracted(ctx) -> list[dict]:
    return [{"filename": r["filename"]} for r in ctx.rows("extract", columns=["filename", "kind"])
            if r["kind"] in ("standard", "science")]


def calibrate_one(ctx, item: dict) -> dict:
    s = ctx.settings
    r = ctx.row("extract", filename=item["filename"])
    sp = read_spectrum(ctx.run_dir / r["spectrum_path"])
    airmass = float(r["airmass"])
    row = {"filename": r["filename"], "object": r["object"], "kind": r["kind"], "status": "uncalibrated",
           "calibrated": False, "fluxcal_file": "none",
           "fluxcal_night": "", "earlier_night": False, "fallback": False, "reason": "", "airmass": airmass,
           "mjd_obs": float(r["mjd_obs"]), "exptime": float(r["exptime"]), "snr": float("nan"), "bunit": COUNT_UNIT,
           "spectrum_path": r["spectrum_path"], "calibrated_path": ""}
    flux, var, trans = sp["flux"], sp["variance"], np.ones_like(sp["flux"])
    try:
        path, used = look_up(ctx, FLUXCAL_NEAREST, observed(r), s.fallback_nights)
    except NoCalibration as exc:
        row["reason"] = f"no fluxcal: flagged uncalibrated ({exc.reason.splitlines()[0]})"
    else:
        cal = read_fluxcal(path)
        flux, var, trans = science.calibrate(sp["wavelength"], sp["flux"], sp["variance"], cal, airmass)
        night = night_of(used["dateobs"])
        row.update(status="calibrated", calibrated=True, fluxcal_file=path.name, fluxcal_night=night, earlier_night=night < s.date,
                   fallback=bool(used["fallback"]), reason=used["reason"], bunit=FLUX_UNIT)
    row["snr"] = xcor.signal_to_noise(sp["wavelength"], flux, var)
    rel = PRODUCT_DIR / Path(r["spectrum_path"]).name
    _write(ctx, rel, sp, flux, var, trans, row)
    return {**row, "calibrated_path": str(rel)}


def _write(ctx, rel: Path, sp: dict, flux, var, trans, row: dict) -> None:
    h = sp["header"].copy()
    h["BUNIT"] = (row["bunit"], "flux-calibrated" if row["status"] == "calibrated" else "NOT flux-calibrated")
    h["FLUXCAL"] = row["fluxcal_file"]  # the fluxcal used; none: uncalibrated
    h["FLUXCALN"] = (row["fluxcal_night"], "night of the fluxcal")
    h["FCEARLY"] = (row["earlier_night"], "the fluxcal is an earlier night's")
    h["FCREASON"] = row["reason"][:68]
    h["TELLAM"] = (row["airmass"], "airmass the telluric correction is scaled to")
    h["SPECFILE"] = Path(row["spectrum_path"]).name  # the extracted spectrum (e-/s/A)
    ctx.stamp_fits(h)
    raw = ctx.settings.raw_roots()
    psf = fits.table_to_hdu(sp["psf"])
    psf.name = "PSF"  # the extraction's PSF, so that extract.read_spectrum reads this file too
    write_fits(guard(ctx.product(rel), raw), raw,
               [fits.PrimaryHDU(np.asarray(flux, np.float64), header=h),
                fits.ImageHDU(np.asarray(var, np.float64), name="VARIANCE"),
                fits.ImageHDU(np.asarray(trans, np.float64), name="TELLURIC"), psf])


calibrate = FanOut("calibrate", inputs=("extract", "fluxcal"), items=extracted, process=calibrate_one,
                   key=("filename",), schema=SCHEMA, shard_size=10, doc=__doc__)
