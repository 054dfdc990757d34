"""Runbook, science step 4d: "If the target is a standard star ... a fluxcal fits file is
generated" (pysedm's ``FluxCalibrator``: the inverse sensitivity from a standard's PSF-extracted
spectrum and its CALSPEC reference, with the telluric O2/H2O amplitudes).

One item per extracted standard (``extract`` rows of kind ``standard``) whose quality is
acceptable (0-2; a standard outside the IFU or mostly negative makes no fluxcal: the item is
skipped with its quality as the reason).  The star is the OBJECT without its ``STD-`` prefix (``STD-BD+33d2642`` ->
``BD+33d2642``); its reference spectrum is ``{standards}/{star}.csv`` (wavelength A, F_lambda
erg/s/cm2/A; the ``standards`` setting, else the project's ``steps/sedm/data/``), so a night with
any standard calibrates once its reference is in the folder; a missing reference fails the item
naming the file.  The spectrum (e-/s/A, extinction-corrected by the cube) and the reference go to
:func:`steps.sedm.science.fluxcal.derive`: a Legendre fit of ln(inverse sensitivity) with
pysedm's telluric and stellar-line areas masked, then the standard's telluric bands inside
pysedm's O2 and H2O regions as airmass-1 depths (pysedm's airmass exponents 0.58 and 0.4).

Product, in the night directory: ``fluxcal_{date}_{HH_MM_SS}_{OBJECT}.fits`` (the names
``fluxcal_link`` links, newest first): primary image, the fitted inverse sensitivity
(erg/cm2/electron) on the standard's wavelength grid (``CRVAL1``/``CDELT1``/``CRPIX1``, vacuum
A), header OBJECT, STDSTAR, STDREF (the reference file), AIRMASS, MJD_OBS, EXPTIME, SPECFILE (the
extracted spectrum), CONTDEG and ``FCCOEF{i}`` (Legendre coefficients of ln(inverse sensitivity)
on ``FCDOMLO``-``FCDOMHI`` A), FCNUSED, FCRMS (rms of ln(reference / calibrated) over the bins
fitted), TELLAM (the standard's airmass), TELLRO2/TELLRH2O (the airmass exponents),
TELLO2EW/TELLH2OEW (the bands' equivalent widths at airmass 1, A) and the provenance cards;
extension ``TELLURIC``: table wavelength, tau_o2, tau_h2o (optical depths at airmass 1).
Registered in the calibration library as FLUXCAL at the standard's MJD_OBS; ``calibrate`` takes
the one nearest in time.  Read it with :func:`read_fluxcal`.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pyarrow as pa
from astropy.io import fits
from astropy.table import Table
from pydantic import Field

from astroflow.errors import ItemError, Skip
from astroflow.step import FanOut, StepParams
from steps.sedm.calibrations import FLUXCAL, observed
from steps.sedm.extract import read_spectrum
from steps.sedm.science import fluxcal as science
from steps.sedm.science import telluric
from steps.sedm.writer import guard, night_dir, write_fits

DATA = Path(__file__).resolve().parent / "data"
SCHEMA = pa.schema([
    ("filename", pa.string()), ("object", pa.string()), ("star", pa.string()), ("status", pa.string()),
    ("message", pa.string()), ("reference", pa.string()), ("airmass", pa.float64()), ("mjd_obs", pa.float64()),
    ("degree", pa.int32()), ("n_used", pa.int32()), ("residual_rms", pa.float64()), ("ew_o2", pa.float64()),
    ("ew_h2o", pa.float64()), ("path", pa.string()),
])


class FluxcalParams(StepParams):
    degree: int = Field(science.DEGREE, ge=1, le=30, description="Legendre degree of ln(inverse sensitivity) "
                        "(pysedm fits the ratio itself with 20)")


def star_name(obj: str) -> str:
    """The standard's star from its OBJECT: ``STD-BD+33d2642`` -> ``BD+33d2642``."""
    return re.sub(r"^STD-?", "", obj.strip(), flags=re.IGNORECASE).strip()


def fluxcal_name(filename: str, obj: str) -> str:
    """``fluxcal_{date}_{HH_MM_SS}_{OBJECT}.fits`` of a raw ``ifu{date}_{HH_MM_SS}.fits`` (OBJECT with
    blanks and slashes as ``_``)."""
    stem = Path(filename).name
    m = re.match(r"ifu(\d{8})_(\d{2}_\d{2}_\d{2})", stem)
    if not m:
        raise ItemError(f"{stem} is not named ifuYYYYMMDD_HH_MM_SS.fits", path=stem)
    safe = re.sub(r"[\s/]+", "_", obj.strip())  # as the cube's name spells OBJECT
    return f"fluxcal_{m.group(1)}_{m.group(2)}_{safe}.fits"


def reference_path(settings, star: str) -> Path:
    return Path(settings.standards or DATA) / f"{star}.csv"


def read_reference(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(wavelength A, F_lambda) of a standards-folder CSV (a header line, then wavelength,flux)."""
    try:
        table = np.loadtxt(path, delimiter=",", skiprows=1, usecols=(0, 1), ndmin=2)
    except (OSError, ValueError) as exc:
        raise ItemError(f"cannot read the standard's reference spectrum: {exc}", path=path) from None
    if table.shape[0] < 10:
        raise ItemError(f"the reference spectrum has {table.shape[0]} rows", path=path)
    return table[:, 0], table[:, 1]


def standards(ctx) -> list[dict]:
    return [{"filename": r["filename"]} for r in ctx.rows("extract", columns=["filename", "kind"])
            if r["kind"] == "standard"]


def make_fluxcal(ctx, item: dict) -> dict:
    s, p = ctx.settings, ctx.params
    r = ctx.row("extract", filename=item["filename"])
    q = ctx.row("quality", filename=item["filename"])
    row = {"filename": r["filename"], "object": r["object"], "star": star_name(r["object"]), "status": "made",
           "message": "", "reference": "", "airmass": float(r["airmass"]), "mjd_obs": float(r["mjd_obs"]),
           "degree": int(p.degree), "n_used": 0, "residual_rms": float("nan"), "ew_o2": float("nan"),
           "ew_h2o": float("nan"), "path": ""}
    if not q["acceptable"]:
        raise Skip(f"quality {q['quality']} ({q['reason']}): no fluxcal from this standard")
    ref_path = reference_path(s, row["star"])
    if not ref_path.is_file():
        raise ItemError(f"no reference spectrum for the standard {row['star']} in the standards folder "
                        f"({ref_path.parent})", path=ref_path)
    ref_wave, ref_flux = read_reference(ctx.uses(ref_path))
    spec_path = ctx.run_dir / r["spectrum_path"]
    sp = read_spectrum(spec_path)
    try:
        cal = science.derive(sp["wavelength"], sp["flux"], sp["variance"], ref_wave, ref_flux, r["airmass"],
                             degree=p.degree)
    except ValueError as exc:
        raise ItemError(f"no flux calibration from {spec_path.name}: {exc}", path=spec_path) from None
    name = fluxcal_name(r["filename"], r["object"])
    rel = night_dir(s) / name
    path = ctx.register_calibration(FLUXCAL, rel, observed(r), {}, frames=[r["filename"]])
    _write(ctx, path, cal, sp, r, ref_path)
    return {**row, "reference": str(ref_path), "n_used": cal.n_used,
            "residual_rms": cal.residual_rms, "ew_o2": cal.equivalent_width["O2"],
            "ew_h2o": cal.equivalent_width["H2O"], "path": str(rel)}


def _write(ctx, path: Path, cal: science.FluxCal, sp: dict, r: dict, ref_path: Path) -> None:
    lam = cal.wavelength
    h = fits.Header()
    h["CTYPE1"], h["CUNIT1"] = "WAVE", "Angstrom"
    h["CRVAL1"], h["CRPIX1"] = float(lam[0]), 1.0
    h["CDELT1"] = (float(lam[1] - lam[0]), "vacuum A")
    h["BUNIT"] = ("erg/(cm2 electron)", "inverse sensitivity: F_lambda per e-/s/A")
    h["OBJECT"] = r["object"]
    h["STDSTAR"] = (star_name(r["object"]), "the standard's star")
    h["STDREF"] = (ref_path.name, "reference spectrum (standards folder)")
    h["AIRMASS"] = float(r["airmass"])
    h["MJD_OBS"] = float(r["mjd_obs"])
    h["EXPTIME"] = float(r["exptime"])
    h["SPECFILE"] = Path(r["spectrum_path"]).name  # the standard's extracted spectrum
    h["CONTDEG"] = (cal.degree, "Legendre degree of ln(inverse sensitivity)")
    h["FCDOMLO"], h["FCDOMHI"] = (cal.domain[0], "[A] Legendre domain"), (cal.domain[1], "[A] Legendre domain")
    for i, c in enumerate(cal.coefficients):
        h[f"FCCOEF{i}"] = float(c)
    h["FCNUSED"] = (cal.n_used, "bins fitted")
    h["FCRMS"] = (cal.residual_rms, "rms of ln(reference / calibrated) over them")
    h["TELLAM"] = (cal.airmass, "airmass of the telluric bands measured")
    h["TELLRO2"] = (telluric.RHO["O2"], "O2 depth grows as airmass ** this")
    h["TELLRH2O"] = (telluric.RHO["H2O"], "H2O depth grows as airmass ** this")
    h["TELLO2EW"] = (cal.equivalent_width["O2"], "[A] O2 bands' equivalent width at airmass 1")
    h["TELLH2OE"] = (cal.equivalent_width["H2O"], "[A] H2O bands' equivalent width at airmass 1")
    ctx.stamp_fits(h)
    table = fits.table_to_hdu(Table({"wavelength": lam, "tau_o2": cal.tau1["O2"], "tau_h2o": cal.tau1["H2O"]}))
    table.name = "TELLURIC"
    raw = ctx.settings.raw_roots()
    write_fits(guard(path, raw), raw, [fits.PrimaryHDU(cal.inverse_sensitivity, header=h), table])


def read_fluxcal(path) -> science.FluxCal:
    """A ``fluxcal_*.fits`` as a :class:`steps.sedm.science.fluxcal.FluxCal`."""
    with fits.open(path) as h:
        head = h[0].header
        inv = np.array(h[0].data, dtype=float)
        degree = int(head["CONTDEG"])
        coef = np.array([head[f"FCCOEF{i}"] for i in range(degree + 1)], dtype=float)
        t = h["TELLURIC"].data
        tau1 = {"O2": np.array(t["tau_o2"], float), "H2O": np.array(t["tau_h2o"], float)}
        return science.FluxCal(coefficients=coef, domain=(float(head["FCDOMLO"]), float(head["FCDOMHI"])),
                               wavelength=np.array(t["wavelength"], float), inverse_sensitivity=inv, tau1=tau1,
                               airmass=float(head["TELLAM"]), degree=degree, n_used=int(head["FCNUSED"]),
                               residual_rms=float(head["FCRMS"]),
                               equivalent_width={"O2": float(head["TELLO2EW"]), "H2O": float(head["TELLH2OE"])})


fluxcal = FanOut("fluxcal", inputs=("extract", "quality"), items=standards, process=make_fluxcal,
                 key=("filename",), params=FluxcalParams, schema=SCHEMA, shard_size=1, doc=__doc__)
