"""Runbook step 6 (rsetupc, twical rstep1-3: vred, getata, getxtr, getwavo, imcmbbs): the twilight
calibration of every amplifier for a month.

Fans out over (month, IFU slot, amplifier).  Traces and profile widths from the combined LDLS
flats (more than 10 bad column blocks flags the amp), wavelength solutions from the Hg+Cd arcs,
and fiber-to-fiber from the twilights: each fiber's rectified twilight over the amp's biweight
twilight, smoothed in wavelength.  The amp's mean twilight (per second) is kept for the
amp-to-amp step and the rectified twilight (TWI_RECT) for runbook 14_b's flats.  Masters go to
``lib_cal/{month}/cal_{ifuslot}_{specid}_{amp}.fits``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pyarrow as pa
from astropy.io import fits
from astropy.stats import biweight_location

from astroflow.errors import ItemError
from astroflow.step import FanOut, Resources
from steps.hetdex import library
from steps.hetdex.background import model_for
from steps.hetdex.common import cal_name, frames, load_pixel_flat, month_selected, processed, write_fits
from steps.hetdex.science import ccd, spectra

SCHEMA = pa.schema([
    ("month", pa.string()), ("ifuslot", pa.string()), ("specid", pa.string()), ("ifuid", pa.string()),
    ("amp", pa.string()), ("n_flat", pa.int32()), ("n_arc", pa.int32()), ("n_twi", pa.int32()),
    ("trace_rms", pa.float64()), ("n_bad_trace_blocks", pa.int32()), ("flagged", pa.bool_()),
    ("wave_rms", pa.float64()), ("n_lines_median", pa.float64()), ("twi_level", pa.list_(pa.float32())),
    ("path", pa.string()),
])


def amps(ctx) -> list[dict]:
    seen = {}
    for r in frames(ctx, kind=["twi", "cmp", "flt"]):
        if month_selected(ctx, r["date"][:6]):
            seen.setdefault((r["date"][:6], r["ifuslot"], r["amp"]), (r["specid"], r["ifuid"]))
    return [{"month": m, "ifuslot": s, "amp": a, "specid": sp, "ifuid": iid}
            for (m, s, a), (sp, iid) in sorted(seen.items())]


def _combined(ctx, rows, pflat, bkg_path=None):
    imgs, vars_ = [], []
    for r in rows:
        img, var = processed(ctx, r, pflat=pflat)
        if bkg_path is not None:
            img = img - model_for(bkg_path, ccd.frame_level(img))
        imgs.append(img / max(r["exptime"], 1e-3))
        vars_.append(var / max(r["exptime"], 1e-3) ** 2)
    n = len(imgs)
    if n == 1:  # the mean of one frame is that frame
        return imgs[0], vars_[0]
    with warnings.catch_warnings():  # masked (trap, bad) pixels are NaN in every frame
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(np.stack(imgs), axis=0), np.nanmean(np.stack(vars_), axis=0) / n


def twilight_cal_one(ctx, item) -> dict:
    def sel(kind):
        return [r for r in frames(ctx, kind=kind, ifuslot=item["ifuslot"], amp=item["amp"]) if r["date"][:6] == item["month"]]

    flats, arcs, twis = sel("flt"), sel("cmp"), sel("twi")
    if not (flats and arcs and twis):
        raise ItemError(f"{item}: need flats, arcs and twilights ({len(flats)}, {len(arcs)}, {len(twis)})")
    pflat = load_pixel_flat(ctx, flats[0])
    try:
        bkg = ctx.calibration("bkg", library.night(twis[0]["date"]), specid=item["specid"], amp=item["amp"])
    except ItemError:
        bkg = None
    flat, flat_var = _combined(ctx, flats, pflat)
    tr = spectra.find_trace(np.nan_to_num(flat))
    trace, sigma = tr["trace"], tr["sigma"]
    profile = spectra.profile_weights(trace, sigma, flat.shape[0])
    arc, arc_var = _combined(ctx, arcs, pflat)
    arc_spec = spectra.extract(arc, arc_var, profile)["spectrum"]
    wsol = spectra.fit_wavelength(spectra.arc_centroids(arc_spec))
    wave = wsol["wavelength"]
    twi, twi_var = _combined(ctx, twis, pflat, bkg)
    ex = spectra.extract(twi, twi_var, profile)
    rect, _ = spectra.rectify(ex["spectrum"], ex["error"], wave)
    f2f = spectra.fiber_to_fiber(rect)
    level = spectra.biweight_sky(rect / f2f)
    head = fits.Header()
    for k in ("month", "ifuslot", "specid", "ifuid", "amp"):
        head[k.upper()] = item[k]
    head["WAVERMS"], head["TRACERMS"] = wsol["rms"], tr["rms"]
    rel = library.rel("lib_cal", item["month"], cal_name(item["ifuslot"], item["specid"], item["amp"]))
    path = ctx.register_calibration("twical", rel, library.month_start(item["month"]),
                                    {k: item[k] for k in ("ifuslot", "specid", "amp")},
                                    frames=[r["member"] for r in flats + arcs + twis])
    write_fits(path, [
        fits.PrimaryHDU(header=head), fits.ImageHDU(trace.astype(np.float32), name="TRACE"),
        fits.ImageHDU(sigma.astype(np.float32), name="SIGMA"), fits.ImageHDU(wave.astype(np.float64), name="WAVELENGTH"),
        fits.ImageHDU(f2f, name="FIBER_TO_FIBER"), fits.ImageHDU(level, name="TWI_LEVEL"),
        fits.ImageHDU(rect.astype(np.float32), name="TWI_RECT"),
    ], ctx=ctx)
    return {**item, "n_flat": len(flats), "n_arc": len(arcs), "n_twi": len(twis), "trace_rms": tr["rms"],
            "n_bad_trace_blocks": tr["n_bad_blocks"], "flagged": tr["n_bad_blocks"] > 10, "wave_rms": wsol["rms"],
            "n_lines_median": float(np.median(wsol["n_lines"])), "twi_level": level.tolist(), "path": str(rel)}


twilight_cal = FanOut(
    "twilight_cal",
    inputs=("inventory", "master_bias", "pixel_flat", "background"),
    items=amps,
    process=twilight_cal_one,
    key=("month", "ifuslot", "amp"),
    schema=SCHEMA,
    shard_size=4,
    resources=Resources(cpu="1", memory="4Gi"),
    doc=__doc__,
)


def amp_to_amp_rows(ctx):
    """Runbook 6 rstep4-6: each amp's twilight level over the field's, per month (a2a factor)."""
    rows = ctx.rows("twilight_cal", columns=["month", "ifuslot", "specid", "amp", "twi_level"])
    out = []
    for month in sorted({r["month"] for r in rows}):
        mr = [r for r in rows if r["month"] == month]
        levels = np.array([r["twi_level"] for r in mr], float)
        field = biweight_location(levels, axis=0, ignore_nan=True)
        for r, lev in zip(mr, levels):
            ratio = lev / field
            good = np.isfinite(ratio)
            out.append({"month": month, "ifuslot": r["ifuslot"], "specid": r["specid"], "amp": r["amp"],
                        "a2a": float(np.median(ratio[good])) if good.any() else 1.0})
    return out
