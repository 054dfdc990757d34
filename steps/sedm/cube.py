"""Runbook, science step 3: "The geometry solution is used to generate a flexure-corrected cube for
the observation" (pysedm's ``build_sedmcube``: ``e3d_crr_b_ifu{date}_{HH_MM_SS}_{OBJECT}.fits``).

One item per frame the ``flexure`` step measured.  The geometry is the night's 3D flat from the
calibration library (tonight's, else the recorded fallback within ``fallback_nights``), the
wavelength solution and trace match it was made on (the flexure row must name the same
solution), and the hexagonal grid.  Each trace is extracted from the ``crr_b_`` frame as the
flat was (a +-3-row box about its centre line), moved ``trace_shift_px`` rows; its variance is
the positive electrons plus the read noise squared per pixel.  Its wavelengths are its solution
at the column less the along-dispersion flexure (``flexure_along_px``), and it is put on the
settings' grid (``grid_min``-``grid_max``, ``grid_bins``;
:func:`steps.sedm.science.cube.to_grid`) in electrons per A, divided by EXPTIME and by the 3D
flat, and multiplied by ``10 ** (0.4 k(lambda) AIRMASS)`` with the Palomar extinction ``k`` of
Hayes & Latham 1975 (:mod:`steps.sedm.science.extinction`).  Spaxels with a bad wavelength
solution or no flat are left out.  There is no sky subtraction (the extraction fits the sky).

The cube (the next steps read exactly this):

* primary HDU: float32 (n_lambda, n_spaxel) (FITS NAXIS1 = n_spaxel, NAXIS2 = n_lambda),
  ``BUNIT = 'electron/(s Angstrom)'`` per spaxel; the wavelength of array row k (0-based) is
  ``CRVAL1 + CDELT1 * (k + 1 - CRPIX1)`` (vacuum A, linear, ``CUNIT1``; no CTYPE: the keys name
  the wavelength grid as pysedm's spectra do, not a FITS WCS of this array's axis 1),
  ``NLAMBDA``, ``NSPAXEL``; ``AIRMASS``, ``EXPTIME``, ``MJD_OBS``, ``OBJECT``, ``RA``, ``DEC`` (the raw
  header's, the IFU centre), ``FLEXX`` (px, across), ``FLEXLAM`` (A, along), ``FLEXPIX`` (px,
  along), ``FLEXSTAT``, ``EXTCORR`` (True), ``EXTSRC``, ``FLATCORR``, ``FLATFILE``, ``WAVESOL``,
  ``TRACEMAT``, ``HEXAGRID``, ``SPAXSCAL`` (arcsec per spaxel unit), ``IFUROT``, ``SOURCE``
  (the crr_b_ frame);
* ``VARIANCE``: the same shape, (electron/(s Angstrom))^2;
* ``SPAXELS``: one row per cube column: ``spaxel`` (int32, the column), ``trace`` (int32, the
  trace match's index), ``x_arcsec``, ``y_arcsec`` (float64: east and north of the IFU centre,
  the hexagonal grid's origin, scaled by ``spaxel_arcsec`` and turned by ``rotation_deg``),
  ``i``, ``j`` (int32: the grid's axial indices q, r).

Row: ``filename``, ``object``, ``cube_path`` (relative to the run or absolute, as the night
directory), ``n_spaxels``, ``flexure_x``, ``flexure_lambda``, ``airmass``, and ``kind``,
``exptime``, ``mjd_obs``.

Deviation from pysedm: pysedm builds the cube twice (a first to measure the flexure, a second
moved by it); the ``flexure`` step measures on the CCD, so the cube is built once.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pyarrow as pa
from astropy.io import fits
from astropy.table import Table
from pydantic import Field

from astroflow.calib import NoCalibration
from astroflow.errors import ItemError
from astroflow.step import FanOut, Resources, StepParams
from steps.sedm.calibrations import FLAT, HEXAGRID, frame_attributes, look_up, observed
from steps.sedm.flat import read_flat
from steps.sedm.flexure import frame_spectra, night_geometry, variance_image
from steps.sedm.science import cube as kernels
from steps.sedm.science import extinction
from steps.sedm.wavesolution import wavelengths
from steps.sedm.writer import guard, header_wavelengths, image_hdu, night_dir, write_fits

SCHEMA = pa.schema([
    ("filename", pa.string()), ("object", pa.string()), ("cube_path", pa.string()), ("n_spaxels", pa.int32()),
    ("flexure_x", pa.float64()), ("flexure_lambda", pa.float64()), ("airmass", pa.float64()),
    ("kind", pa.string()), ("exptime", pa.float64()), ("mjd_obs", pa.float64()),
])


class CubeParams(StepParams):
    spaxel_arcsec: float = Field(0.75, gt=0, description="arcsec on the sky per spaxel unit of the hexagonal grid "
                                 "(the lenslet pitch)")
    rotation_deg: float = Field(0.0, description="deg, counter-clockwise from the grid's +x axis to east")
    east_flip: bool = Field(False, description="the optics mirror the field: the grid's +x is west before rotation")
    extinction_curve: str | None = Field(None, description="CSV wavelength,mag per airmass (default: Hayes & "
                                         "Latham 1975, steps/sedm/data/palomar_extinction.csv)")


def cube_name(filename: str, obj: str) -> str:
    """``e3d_crr_b_ifu{date}_{HH_MM_SS}_{OBJECT}.fits`` (OBJECT with blanks and slashes as ``_``)."""
    stem = filename[:-5] if filename.endswith(".fits") else filename.split(".fits")[0]
    safe = re.sub(r"[\s/]+", "_", obj.strip())
    return f"e3d_crr_b_{stem}_{safe}.fits"


def measured_frames(ctx) -> list[dict]:
    return [{"filename": r["filename"]} for r in ctx.table("flexure", columns=["filename"]).to_pylist()]


def read_grid(path) -> dict[int, dict]:
    try:
        doc = json.loads(open(path).read())
        return {int(s["trace"]): s for s in doc["spaxels"]}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ItemError(f"not a readable hexagonal grid: {exc}", path=path) from None


def _calibration(ctx, ctype: str, row: dict):
    try:
        return look_up(ctx, ctype, observed(row), ctx.settings.fallback_nights, **frame_attributes(row))[0]
    except NoCalibration as exc:
        raise ItemError(f"no {ctype} for the frame: {exc.reason.splitlines()[0]}") from None


def build(ctx, item: dict) -> dict:
    s, p = ctx.settings, ctx.params
    flex = ctx.row("flexure", filename=item["filename"])
    red = ctx.row("debias_crr", filename=item["filename"])
    row = ctx.row("night", filename=item["filename"])
    wave_path, sol, tm_path, traces = night_geometry(ctx, row)
    if wave_path.name != flex["wavesolution"]:
        raise ItemError(f"the flexure was measured on {flex['wavesolution']}, the library now gives "
                        f"{wave_path.name}: rerun flexure")
    flat_path = _calibration(ctx, FLAT, row)
    flat = read_flat(flat_path)
    if flat["header"].get("WAVESOL") != wave_path.name:
        raise ItemError(f"the 3D flat {flat_path.name} is on {flat['header'].get('WAVESOL')}, the frame's "
                        f"wavelength solution is {wave_path.name}", path=flat_path)
    grid_path = _calibration(ctx, HEXAGRID, row)
    cells = read_grid(grid_path)
    grid = s.grid()
    if flat["flat"].shape != (len(traces), grid.size) or not np.allclose(flat["wavelength"], grid):
        raise ItemError(f"the 3D flat {flat_path.name} is not on the cube's grid of the {len(traces)} traces "
                        f"({grid_min_max(grid)})", path=flat_path)

    crr = ctx.run_dir / red["crr_path"]
    with fits.open(crr) as h:
        image = h[0].data.astype(np.float64)
        raw_head = h[0].header
    exptime = float(raw_head.get("EXPTIME", row["exptime"]))
    airmass = float(raw_head.get("AIRMASS", row["airmass"]))
    if not exptime > 0:
        raise ItemError(f"EXPTIME {exptime} is not positive", path=crr)
    columns = slice(row["pscan_x1"], row["oscan_x0"])
    starts, flux, var = frame_spectra(image, variance_image(image, red["readnoise_e"]), traces,
                                      flex["trace_shift_px"], columns)
    dx = float(flex["flexure_along_px"])
    width = flux.shape[1]
    use = [i for i in range(len(traces))
           if sol["good"][i] and flat["good"][i] and i in cells and np.isfinite(flat["flat"][i]).any()]
    if not use:
        raise ItemError("no spaxel has both a good wavelength solution and a 3D flat", path=flat_path)
    curve = p.extinction_curve or extinction.CURVE
    atm = extinction.correction(grid, airmass, ctx.uses(curve))
    data = np.full((grid.size, len(use)), np.nan)
    variance = np.full((grid.size, len(use)), np.nan)
    for k, i in enumerate(use):
        cols = starts[i] + np.arange(width)
        f, v = kernels.to_grid(cols, flux[i], var[i], lambda x, _i=i: wavelengths(sol, _i, x - dx), grid)
        ff = flat["flat"][i]
        with np.errstate(invalid="ignore", divide="ignore"):
            scale = np.where(ff > 0, atm / (exptime * ff), np.nan)
        data[:, k] = f * scale
        variance[:, k] = v * scale ** 2
    q = np.array([cells[i]["q"] for i in use], np.int32)
    r = np.array([cells[i]["r"] for i in use], np.int32)
    east, north = kernels.sky_positions(np.array([cells[i]["x"] for i in use]), np.array([cells[i]["y"] for i in use]),
                                        p.spaxel_arcsec, p.rotation_deg, p.east_flip)

    head = fits.Header()
    for key in ("OBJECT", "RA", "DEC", "MJD_OBS", "DATE-OBS", "IMGTYPE", "TEL_PA", "EQUINOX"):
        if key in raw_head:
            head[key] = (raw_head[key], raw_head.comments[key])
    head["OBJECT"] = row["object"]
    head["EXPTIME"] = (exptime, "s")
    head["AIRMASS"] = (airmass, "airmass the extinction was corrected at")
    head["MJD_OBS"] = (float(raw_head.get("MJD_OBS", row["mjd_obs"])), "frame start")
    head["BUNIT"] = ("electron/(s Angstrom)", "per spaxel")
    head["CRVAL1"] = (float(grid[0]), "[A] first wavelength (vacuum), array rows")
    head["CDELT1"] = (float(grid[1] - grid[0]), "[A] wavelength step, linear")
    head["CRPIX1"] = (1.0, "row of CRVAL1 (1-based)")
    head["CUNIT1"] = "Angstrom"
    head["NLAMBDA"] = (grid.size, "wavelengths (array rows)")
    head["NSPAXEL"] = (len(use), "spaxels (array columns, rows of SPAXELS)")
    head["FLEXX"] = (float(flex["flexure_x"]), "[px] across-dispersion flexure")
    head["FLEXLAM"] = (float(flex["flexure_lambda"]), "[A] along-dispersion flexure at Na D")
    head["FLEXPIX"] = (dx, "[px] along-dispersion flexure corrected")
    head["FLEXSTAT"] = (flex["status"], flex["features"] or "no sky feature")
    head["EXTCORR"] = (True, "corrected for atmospheric extinction at AIRMASS")
    head["EXTSRC"] = (extinction.SOURCE if p.extinction_curve is None else str(curve)[-60:], "extinction curve")
    head["FLATCORR"] = (True, "divided by the 3D flat")
    head["FLATFILE"] = flat_path.name
    head["WAVESOL"] = wave_path.name
    head["TRACEMAT"] = tm_path.name
    head["HEXAGRID"] = grid_path.name
    head["SPAXSCAL"] = (p.spaxel_arcsec, "[arcsec] per spaxel unit")
    head["IFUROT"] = (p.rotation_deg, "[deg] grid +x to east")
    head["SOURCE"] = (red["crr_path"].split("/")[-1], "frame the cube is built from")
    ctx.stamp_fits(head)
    table = fits.table_to_hdu(Table({"spaxel": np.arange(len(use), dtype=np.int32),
                                     "trace": np.array(use, np.int32), "x_arcsec": east, "y_arcsec": north,
                                     "i": q, "j": r}))
    table.name = "SPAXELS"
    name = cube_name(row["filename"], row["object"])
    rel = night_dir(s) / name
    path = guard(ctx.product(rel), s.raw_roots())
    write_fits(path, s.raw_roots(), [image_hdu(data.astype(np.float32), head),
                                     image_hdu(variance.astype(np.float32), primary=False, name="VARIANCE"), table])
    return {"filename": row["filename"], "object": row["object"], "cube_path": str(rel), "n_spaxels": len(use),
            "flexure_x": float(flex["flexure_x"]), "flexure_lambda": float(flex["flexure_lambda"]),
            "airmass": airmass, "kind": row["kind"], "exptime": exptime, "mjd_obs": float(row["mjd_obs"])}


def grid_min_max(grid) -> str:
    return f"{grid.size} bins {grid[0]:g}-{grid[-1]:g} A"


def read_cube(path) -> dict:
    """An ``e3d_*.fits``: ``flux`` and ``variance`` (n_lambda, n_spaxel), ``wavelength`` (n_lambda),
    ``spaxels`` (the SPAXELS table as a dict of arrays), its ``x`` and ``y`` (arcsec) and the
    header; a file that is not such a cube is an ``ItemError`` naming it."""
    try:
        with fits.open(path) as h:
            head = h[0].header.copy()
            flux = np.array(h[0].data, dtype=float)
            var = np.array(h["VARIANCE"].data, dtype=float)
            t = h["SPAXELS"].data
            spaxels = {c: np.array(t[c]) for c in t.columns.names}
            x, y = np.array(spaxels["x_arcsec"], float), np.array(spaxels["y_arcsec"], float)
    except (OSError, KeyError, TypeError, ValueError) as exc:
        raise ItemError(f"not a readable SEDM cube: {exc}", path=path) from None
    if flux.ndim != 2 or var.shape != flux.shape or flux.shape[1] != x.size:
        raise ItemError(f"cube is {flux.shape}, variance {var.shape}, {x.size} spaxels", path=path)
    return {"flux": flux, "variance": var, "wavelength": header_wavelengths(head, flux.shape[0]),
            "spaxels": spaxels, "x": x, "y": y, "header": head}


cube = FanOut("cube", inputs=("night", "debias_crr", "flexure", "flat", "hexagrid", "fallback"),
              items=measured_frames, process=build, key=("filename",), params=CubeParams, schema=SCHEMA,
              shard_size=4, resources=Resources(cpu="1", memory="2Gi"), doc=__doc__)
