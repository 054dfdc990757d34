"""Runbook, science steps 5c-g: the spectrum files ("the SNID results are put in the ascii spectrum
header"; "The format of the ascii spectrum that is generated is universal enough to be input to
any classifier") and the night's table of spectra (``RUNDIR/spectra/``).

One item per extracted standard or science frame.  In the night directory, pysedm's names:

``spec_forcepsf_auto_lstep1__crr_b_ifu{date}_{HH_MM_SS}_{OBJECT}.fits``
    primary image: the flux (erg/s/cm2/A when a fluxcal was applied, ``BUNIT`` says; else the
    extracted e-/s/A and ``FLUXCAL = 'none'``) on the cube's linear grid (``CRVAL1``, ``CDELT1``,
    ``CRPIX1``, vacuum A); extension ``VARIANCE``; header OBJECT, EXPTIME, AIRMASS, MJD_OBS,
    QUALITY, FLUXCAL, CLASSIFIER, SNIDTYPE, SNIDSUBT, SNIDZMAT, SNIDRLAP, the extraction's keys
    (POSSRC, XCENTR, YCENTR, PSFFWHM) and the provenance cards;
``spec_forcepsf_auto_lstep1__crr_b_ifu{date}_{HH_MM_SS}_{OBJECT}.txt``
    ``# KEY: value`` lines (OBJECT, EXPTIME, AIRMASS, QUALITY, FLUXCAL, CLASSIFIER,
    SNIDMATCHTYPE, SNIDMATCHSUBTYPE, SNIDMATCHREDSHIFT, SNIDMATCHRLAP, ...), then the columns
    wavelength, flux, variance, one row per wavelength.

A redex adds its tag before the extension (``..._{OBJECT}_redo031415.fits``).  The classifier is
named in both files (``astroflow-xcor (SNID-like, not SNID)`` unless a real SNID ran); spectra
that were not classified (quality > 2, standards) keep the SNID keys empty.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
from astropy.io import fits

from astroflow.atomic import write_text
from astroflow.step import FanOut, Resources
from steps.sedm.extract import read_spectrum
from steps.sedm.writer import guard, night_dir, write_fits

SCHEMA = pa.schema([
    ("filename", pa.string()), ("object", pa.string()), ("kind", pa.string()), ("ut_start", pa.string()),
    ("mjd_obs", pa.float64()), ("exptime", pa.float64()), ("airmass", pa.float64()), ("quality", pa.int32()),
    ("method", pa.string()), ("fluxcal_file", pa.string()), ("classifier", pa.string()), ("type", pa.string()),
    ("subtype", pa.string()), ("z", pa.float64()), ("rlap", pa.float64()), ("centroid_x", pa.float64()),
    ("centroid_y", pa.float64()), ("flexure_x", pa.float64()), ("flexure_lambda", pa.float64()),
    ("redo_tag", pa.string()), ("fits_path", pa.string()), ("txt_path", pa.string()),
])
ASCII_KEYS = (("OBJECT", "object"), ("EXPTIME", "exptime"), ("AIRMASS", "airmass"), ("MJD_OBS", "mjd_obs"),
              ("UTSTART", "ut_start"), ("QUALITY", "quality"), ("FLUXCAL", "fluxcal_file"),
              ("EXTRACT", "method"), ("CLASSIFIER", "classifier"), ("SNIDMATCHTYPE", "type"),
              ("SNIDMATCHSUBTYPE", "subtype"), ("SNIDMATCHREDSHIFT", "z"), ("SNIDMATCHRLAP", "rlap"),
              ("REDOTAG", "redo_tag"))


def extracted(ctx) -> list[dict]:
    return [{"filename": r["filename"]} for r in ctx.rows("extract", columns=["filename"])]


def ut_start(filename: str) -> str:
    """``ifu20180907_03_03_14.fits`` -> ``03:03:14``."""
    return Path(filename).stem[-8:].replace("_", ":")


def _classification(ctx, filename: str) -> dict:
    rows = ctx.rows("classify", where={"filename": filename})
    r = rows[0] if rows else {}
    return {"classifier": r.get("classifier") or "", "type": r.get("type") or "", "subtype": r.get("subtype") or "",
            "z": float(r["z"]) if r.get("z") is not None else float("nan"),
            "rlap": float(r["rlap"]) if r.get("rlap") is not None else float("nan")}


def _ascii(row: dict, lam: np.ndarray, flux: np.ndarray, var: np.ndarray) -> str:
    def text(v):
        if isinstance(v, float):
            return "" if not np.isfinite(v) else f"{v:.6g}"
        return str(v)

    lines = [f"# {key}: {text(row[field])}" for key, field in ASCII_KEYS]
    lines.append("# BUNIT: " + ("erg/s/cm2/A" if row["fluxcal_file"] else "electron/(s Angstrom)"))
    lines.append("# wavelength flux variance")
    lines += [f"{w:.3f} {f:.6e} {v:.6e}" for w, f, v in zip(lam, flux, var)]
    return "\n".join(lines) + "\n"


def write_one(ctx, item: dict) -> dict:
    erow = ctx.row("extract", filename=item["filename"])
    qrow = ctx.row("quality", filename=item["filename"])
    crow = ctx.row("calibrate", filename=item["filename"])
    cube = ctx.row("cube", filename=item["filename"])
    extracted_ = read_spectrum(ctx.run_dir / erow["spectrum_path"])
    if crow["calibrated"]:
        cal = read_spectrum(ctx.run_dir / crow["calibrated_path"])
        lam, flux, var, bunit = cal["wavelength"], cal["flux"], cal["variance"], "erg/(s cm2 Angstrom)"
    else:
        lam, flux, var = extracted_["wavelength"], extracted_["flux"], extracted_["variance"]
        bunit = "electron/(s Angstrom)"
    tag = erow.get("redo_tag") or ""
    row = {"filename": erow["filename"], "object": erow["object"], "kind": erow["kind"],
           "ut_start": ut_start(erow["filename"]), "mjd_obs": erow["mjd_obs"], "exptime": erow["exptime"],
           "airmass": erow["airmass"], "quality": int(qrow["quality"]), "method": erow["method"],
           "fluxcal_file": crow["fluxcal_file"] if crow["calibrated"] else "",
           **_classification(ctx, erow["filename"]), "centroid_x": erow["centroid_x"],
           "centroid_y": erow["centroid_y"], "flexure_x": cube["flexure_x"], "flexure_lambda": cube["flexure_lambda"],
           "redo_tag": tag}
    stem = Path(erow["spectrum_path"]).stem + (f"_{tag}" if tag else "")
    folder = night_dir(ctx.settings)
    h = extracted_["header"].copy()
    for key in ("BUNIT", "CHECKSUM", "DATASUM"):
        h.remove(key, ignore_missing=True)
    h["BUNIT"] = bunit
    h["QUALITY"] = (row["quality"], qrow["reason"][:45])
    h["FLUXCAL"] = row["fluxcal_file"] or "none"
    h["HIERARCH CLASSIFIER"] = row["classifier"] or "none"  # the key: longer than 8 characters
    h["SNIDTYPE"] = (row["type"], "best type")
    h["SNIDSUBT"] = (row["subtype"], "best subtype")
    h["SNIDZMAT"] = (row["z"] if np.isfinite(row["z"]) else "", "redshift of the match")
    h["SNIDRLAP"] = (row["rlap"] if np.isfinite(row["rlap"]) else "", "rlap of the match")
    h["REDOTAG"] = tag
    ctx.stamp_fits(h)
    fits_rel, txt_rel = folder / f"{stem}.fits", folder / f"{stem}.txt"
    roots = ctx.settings.raw_roots()
    write_fits(guard(ctx.product(fits_rel), roots), roots,
               [fits.PrimaryHDU(np.asarray(flux, np.float64), header=h),
                fits.ImageHDU(np.asarray(var, np.float64), name="VARIANCE")])
    write_text(guard(ctx.product(txt_rel), roots), _ascii(row, lam, flux, var))
    return {**row, "fits_path": str(fits_rel), "txt_path": str(txt_rel)}


spectra = FanOut("spectra", inputs=("extract", "quality", "calibrate", "classify", "cube"), items=extracted,
                 process=write_one, key=("filename",), schema=SCHEMA, shard_size=8,
                 resources=Resources(cpu="500m", memory="1Gi"), doc=__doc__)
