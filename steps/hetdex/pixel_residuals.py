"""Runbook steps 14_b-d (rmkflat/imar_flt, rt.use/imcmbext, rt+mkchi0/imcmbchi): the twilight
flat and the per-pixel residual and chi^2 maps of every amplifier over the month.

Fans out over (month, IFU slot, amplifier), as rmkflat runs per IFU and month.  Per amp:

* ``FLAT`` (14_b): the month's rectified twilight spectra over their smooth model (field level x
  fiber-to-fiber), per fiber and 2 A bin: the small-scale response the smooth fiber-to-fiber
  leaves (1 where the model is complete).
* ``RESIDUAL`` (14_c): the biweight, over the month's science exposures, of the sky-subtracted
  rectified fiber spectra in units of their errors.  Sources move between shots and dithers;
  a pattern the sky subtraction leaves in the same pixel every time stays.
* ``CHI2`` (14_d): the median over those exposures of the extraction chi^2 per fiber and native
  column (profile misfit: hot or trapped columns, trace errors).

Written to ``lib_calib/lib_res/{month}/res_{ifuslot}_{specid}_{amp}.fits``, with one row of
summaries per amp (robust location and scale of the residual map, median chi^2, and the number
of fiber-columns whose median chi^2 exceeds ``residual_chi2_max``).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from astropy.io import fits
from astropy.stats import biweight_location, biweight_scale

from astroflow.step import FanOut, Resources
from steps.hetdex import library
from steps.hetdex.common import write_fits
from steps.hetdex.sci_reduce import read_multi
from steps.hetdex.science import ccd
from steps.hetdex.science.instrument import NX_ACTIVE

SCHEMA = pa.schema([
    ("month", pa.string()), ("ifuslot", pa.string()), ("specid", pa.string()), ("amp", pa.string()),
    ("n_exposures", pa.int32()), ("flat_scale", pa.float64()), ("residual_loc", pa.float64()),
    ("residual_scale", pa.float64()), ("chi2_median", pa.float64()), ("n_chi2_high", pa.int64()), ("path", pa.string()),
])


def month_amps(ctx) -> list[dict]:
    cols = ["month", "ifuslot", "specid", "amp", "path"]
    return sorted(ctx.rows("twilight_cal", columns=cols), key=lambda r: (r["month"], r["ifuslot"], r["amp"]))


def twilight_flat(twi_rect: np.ndarray, f2f: np.ndarray, level: np.ndarray) -> np.ndarray:
    """Rectified twilight over its smooth model (field level x fiber-to-fiber), NaN where undefined."""
    model = f2f * level[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(model > 0, twi_rect / model, np.nan).astype(np.float32)


def combine_residuals(subs: list[np.ndarray], errs: list[np.ndarray]) -> np.ndarray:
    """Per-pixel biweight over exposures of sky-subtracted spectra in units of their errors."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return ccd.combine(np.stack([np.where((e > 0) & np.isfinite(e), s / e, np.nan) for s, e in zip(subs, errs)]))


def residuals_one(ctx, item) -> dict:
    with fits.open(ctx.run_dir / item["path"]) as h:
        flat = twilight_flat(h["TWI_RECT"].data, h["FIBER_TO_FIBER"].data, h["TWI_LEVEL"].data)
    exposures = [r for r in ctx.rows("sci_reduce", columns=["datevobs", "ifuslot", "amp", "path"],
                                     where={"ifuslot": item["ifuslot"], "amp": item["amp"]})
                 if r["datevobs"][:6] == item["month"]]
    multis = [read_multi(ctx.run_dir, r["path"], ("RECT_SUB", "RECT_ERR", "CHI2")) for r in exposures]
    shape_rect, shape_native = flat.shape, (flat.shape[0], NX_ACTIVE)
    if multis:
        resid = combine_residuals([m["rect_sub"] for m in multis], [m["rect_err"] for m in multis])
        chi2 = np.nanmedian(np.stack([m["chi2"] for m in multis]), axis=0).astype(np.float32)
    else:
        resid, chi2 = np.full(shape_rect, np.nan, np.float32), np.full(shape_native, np.nan, np.float32)
    head = fits.Header()
    for k in ("month", "ifuslot", "specid", "amp"):
        head[k.upper()] = item[k]
    head["NEXP"] = (len(multis), "science exposures combined")
    rel = library.rel("lib_res", item["month"], f"res_{item['ifuslot']}_{item['specid']}_{item['amp']}.fits")
    write_fits(ctx.product(rel), [fits.PrimaryHDU(header=head), fits.ImageHDU(flat, name="FLAT"),
                                  fits.ImageHDU(resid, name="RESIDUAL"), fits.ImageHDU(chi2, name="CHI2")], ctx=ctx)
    finite = resid[np.isfinite(resid)]
    return {"month": item["month"], "ifuslot": item["ifuslot"], "specid": item["specid"], "amp": item["amp"],
            "n_exposures": len(multis), "flat_scale": float(biweight_scale(flat[np.isfinite(flat)])),
            "residual_loc": float(biweight_location(finite)) if finite.size else np.nan,
            "residual_scale": float(biweight_scale(finite)) if finite.size else np.nan,
            "chi2_median": float(np.nanmedian(chi2)) if multis else np.nan,
            "n_chi2_high": int(np.sum(chi2 > ctx.settings.residual_chi2_max)), "path": str(rel)}


pixel_residuals = FanOut(
    "pixel_residuals",
    inputs=("twilight_cal", "sci_reduce"),
    items=month_amps,
    process=residuals_one,
    key=("month", "ifuslot", "amp"),
    schema=SCHEMA,
    shard_size=4,
    resources=Resources(cpu="1", memory="2Gi"),
    doc=__doc__,
)
