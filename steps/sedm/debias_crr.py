"""Runbook, pre-science step 4 and science step 1: "All subsequent calibration files are linked
into the directory and then bias-subtracted and cosmic ray cleaned" / "All new IFU images are
linked in and bias-subtracted and cosmic ray cleaned" (sedmpy's ``Debias.py`` then
``CosmicX.py``: ``b_`` then ``crr_b_``).

One item per IFU frame of the night other than the biases (dome, arcs, standards, science).
``b_{frame}``: the per-row overscan median smoothed over 50 rows subtracted, times GAIN, minus
the master bias of the frame's ADC speed from the calibration library (tonight's, else an
earlier night's as a recorded fallback; with none at all the overscan alone, said in the header
``BIASSUB2`` and the row), in electrons.  ``crr_b_{frame}``: LA-Cosmic through astroscrappy with
the runbook's parameters (4 iterations, sigclip 5, objlim 4.8, PSF FWHM 2;
:mod:`steps.sedm.science.cosmics`) over the imaging columns, the cleaned image first and the
cosmic-ray mask as the ``MASK`` extension (1: cosmic ray); as CosmicX does, frames shorter than
60 s (the dome flats) are not searched (``min_exptime_s``).  Read noise: the runbook's 5 e- is
SEDM's slow (0.1 MHz) science readout; frames read at another speed take the read noise the
master bias measured at that speed (``readnoise_e`` sets one value for all), because LA-Cosmic
thresholds on the noise and a fast-readout frame with twice the noise would otherwise have
percents of its pixels flagged.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from astropy.io import fits
from pydantic import Field

from astroflow.calib import NoCalibration
from astroflow.errors import ItemError
from astroflow.step import FanOut, Resources, StepParams
from steps.sedm.calibrations import BIAS, bias_attributes, observed
from steps.sedm.science import ccd, cosmics
from steps.sedm.writer import image_hdu, night_dir, write_fits

SCHEMA = pa.schema([
    ("filename", pa.string()), ("kind", pa.string()), ("object", pa.string()), ("adcspeed", pa.float64()),
    ("exptime", pa.float64()), ("mjd_obs", pa.float64()), ("bias", pa.string()), ("bias_fallback", pa.bool_()),
    ("readnoise_e", pa.float64()), ("n_cosmic_pixels", pa.int64()), ("b_path", pa.string()),
    ("crr_path", pa.string()),
])
SLOW_READOUT_MHZ = 0.1


class DebiasCrrParams(StepParams):
    readnoise_e: float | None = Field(None, gt=0, description="LA-Cosmic read noise (e-); default: 5 at the "
                                      "0.1 MHz readout, the master bias's measured value at other speeds")
    sigclip: float = Field(5.0, gt=0)
    objlim: float = Field(4.8, gt=0)
    niter: int = Field(4, ge=1)
    psffwhm: float = Field(2.0, gt=0, description="px")
    min_exptime_s: float = Field(60.0, ge=0, description="shorter frames are not searched for cosmic rays "
                                 "(CosmicX's --minexptime: the crr_b_ frame is the b_ frame, its mask empty)")


def frames(ctx) -> list[dict]:
    rows = ctx.table("night", columns=["filename", "camera", "kind"]).to_pylist()
    return [{"filename": r["filename"]} for r in rows if r["camera"] == "IFU" and r["kind"] != "bias"]


def _master(ctx, row: dict):
    """(master bias e-, its file name, whether it is a fallback, its RDNOISE) or Nones."""
    try:
        path = ctx.calibration(BIAS, observed(row), **bias_attributes(row))
    except NoCalibration:
        return None, "", False, None
    used = ctx.calibrations_used.get(ctx.item_id or ctx.step, [])
    fallback = any(u.get("fallback") for u in used if u["path"] == str(path))
    with fits.open(path) as h:
        data = h[0].data.astype(np.float32)
        rn = h[0].header.get("RDNOISE")
    if data.shape != (row["ny"], row["nx"]):
        raise ItemError(f"master bias {path.name} is {data.shape[1]} x {data.shape[0]}, the frame "
                        f"{row['nx']} x {row['ny']}", path=path)
    return data, path.name, fallback, rn


def debias_crr_one(ctx, item: dict) -> dict:
    row = ctx.row("night", filename=item["filename"])
    p: DebiasCrrParams = ctx.params
    raw_path = ctx.uses(row["path"])
    with fits.open(raw_path) as h:
        raw = h[0].data
        header = h[0].header.copy()
    if raw is None or raw.shape != (row["ny"], row["nx"]):
        raise ItemError(f"data are not {row['nx']} x {row['ny']} as the header says", path=raw_path)
    master, bias_file, fallback, measured_rn = _master(ctx, row)
    image = ccd.debias(raw, row["oscan_x0"], row["oscan_x1"], row["gain"], master)
    for key in ("BZERO", "BSCALE"):
        header.remove(key, ignore_missing=True)
    header["BIASSUB"] = ("Subtracted", "overscan per row (50-row median) + master bias")
    header["BIASSUB2"] = (bias_file or "none: overscan only", "master bias used")
    header["BIASFALL"] = (fallback, "the master bias is an earlier night's")
    header["GAIN"] = (1.0, f"GAIN adjusted (was {row['gain']})")
    header["BUNIT"] = "electron"
    ctx.stamp_fits(header)
    roots = ctx.settings.raw_roots()
    folder = night_dir(ctx.settings)
    b_rel = folder / f"b_{row['filename']}"
    write_fits(ctx.product(b_rel), roots, [image_hdu(image.astype(np.float32), header)])

    if p.readnoise_e is not None:
        rn = p.readnoise_e
    elif abs(row["adcspeed"] - SLOW_READOUT_MHZ) < 1e-6 or measured_rn is None:
        rn = cosmics.LaCosmic.readnoise
    else:
        rn = float(measured_rn)
    imaging = np.zeros(image.shape, dtype=bool)
    imaging[:, row["pscan_x1"]:row["oscan_x0"]] = True
    params = cosmics.LaCosmic(niter=p.niter, sigclip=p.sigclip, objlim=p.objlim, readnoise=rn, psffwhm=p.psffwhm)
    if row["exptime"] >= p.min_exptime_s:
        mask, cleaned = cosmics.clean(image, imaging, params)
        header["CRRSUB"] = ("LA-Cosmic", "astroscrappy")
    else:
        mask, cleaned = np.zeros(image.shape, dtype=bool), image
        header["CRRSUB"] = ("skipped", f"EXPTIME < {p.min_exptime_s:g} s")
    header["CRRPARS"] = f"niter={p.niter} sigclip={p.sigclip} objlim={p.objlim} rn={rn:.2f} fwhm={p.psffwhm}"
    header["NCRPIX"] = (int(mask.sum()), "pixels flagged as cosmic rays")
    crr_rel = folder / f"crr_b_{row['filename']}"
    write_fits(ctx.product(crr_rel), roots,
               [image_hdu(cleaned, header), image_hdu(mask.astype(np.uint8), primary=False, name="MASK")])
    return {"filename": row["filename"], "kind": row["kind"], "object": row["object"], "adcspeed": row["adcspeed"],
            "exptime": row["exptime"], "mjd_obs": row["mjd_obs"], "bias": bias_file, "bias_fallback": fallback,
            "readnoise_e": rn, "n_cosmic_pixels": int(mask.sum()), "b_path": str(b_rel), "crr_path": str(crr_rel)}


debias_crr = FanOut("debias_crr", inputs=("night", "master_bias"), items=frames, process=debias_crr_one,
                    key=("filename",), params=DebiasCrrParams, schema=SCHEMA, shard_size=4,
                    resources=Resources(cpu="1", memory="2Gi"), doc=__doc__)
