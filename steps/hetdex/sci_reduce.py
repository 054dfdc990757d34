"""Runbook step 7 (rsetups, sci rstep1-2: vred, vrecon): science reduction of every amplifier.

Fans out over (shot, exposure, IFU slot, amplifier), the base calls of runs${mth}.  Each frame:
overscan, master bias, pixel flat (bad pixels and charge traps masked), background model;
optimal extraction along the month's traces, with cosmic rays (pixels the fiber-profile model
cannot explain by ``cosmic_nsigma``) masked and the fibers re-extracted without them
(CLEAN_IMAGE has them replaced by the model, COSMICS is the mask); wavelength and
fiber-to-fiber x amp-to-amp from the twilight calibration; rectification onto the 1036-bin 2 A
grid from 3470 A; local sky (the biweight of the amp's fibers) subtracted.  Writes
``reduction/{DATEvOBS}/exp{NN}/multi_{specid}_{ifuslot}_{ifuid}_{amp}.fits`` (counts in electrons).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from astropy.io import fits
from astropy.time import Time
from scipy import ndimage

from astroflow.errors import ItemError
from astroflow.step import FanOut, Resources
from steps.hetdex import library
from steps.hetdex.background import model_for
from steps.hetdex.common import frames, load_pixel_flat, multiframe, processed, write_fits
from steps.hetdex.science import ccd, spectra
from steps.hetdex.science.instrument import RECT_WAVE

SCHEMA = pa.schema([
    ("datevobs", pa.string()), ("shotid", pa.int64()), ("expnum", pa.int32()), ("ifuslot", pa.string()),
    ("specid", pa.string()), ("ifuid", pa.string()), ("contid", pa.string()), ("amp", pa.string()),
    ("multiframe", pa.string()), ("exptime", pa.float64()), ("mjd", pa.float64()), ("level", pa.float64()),
    ("sky_median", pa.float64()), ("n_masked", pa.int64()), ("n_cosmics", pa.int32()), ("path", pa.string()),
])


def selected_shots(ctx) -> list[str]:
    rows = ctx.rows("inventory", columns=["date", "obs", "kind"])
    found = sorted({f"{r['date']}v{r['obs']:03d}" for r in rows if r["kind"] == "sci"})
    return [s for s in found if not ctx.settings.shots or s in ctx.settings.shots]


def amp_exposures(ctx) -> list[dict]:
    shots = set(selected_shots(ctx))
    out = []
    for r in frames(ctx, kind="sci"):
        dv = f"{r['date']}v{r['obs']:03d}"
        if dv in shots:
            out.append({"datevobs": dv, "expnum": r["exp"], "ifuslot": r["ifuslot"], "amp": r["amp"]})
    return out


def load_cal(ctx, row: dict) -> dict:
    path = ctx.calibration("twical", library.night(row["date"]), ifuslot=row["ifuslot"], specid=row["specid"], amp=row["amp"])
    with fits.open(path) as h:
        cal = {k.lower(): h[k].data for k in ("TRACE", "SIGMA", "WAVELENGTH", "FIBER_TO_FIBER")}
        month = h[0].header["MONTH"]
    a2a = ctx.lookup("amp_to_amp", month=month, ifuslot=row["ifuslot"], amp=row["amp"]).column("a2a").to_pylist()
    cal["a2a"] = a2a[0] if a2a else 1.0
    return cal


def reduce_amp(ctx, item) -> dict:
    date, obs = item["datevobs"].split("v")
    rows = frames(ctx, kind="sci", date=date, obs=int(obs), exp=item["expnum"], ifuslot=item["ifuslot"], amp=item["amp"])
    if not rows:
        raise ItemError(f"no frame for {item}")
    row = rows[0]
    cal = load_cal(ctx, row)
    img, var = processed(ctx, row, pflat=load_pixel_flat(ctx, row))
    level = ccd.frame_level(img)
    try:
        bkg = ctx.calibration("bkg", library.night(date), specid=row["specid"], amp=row["amp"])
        img = img - model_for(bkg, level)
    except ItemError:
        ctx.log.warning("no background model for %s", item)
    trace, sigma, wave = cal["trace"], cal["sigma"], cal["wavelength"]
    ex = spectra.extract_clean(img, var, trace, sigma, nsig=ctx.settings.cosmic_nsigma)
    rect, rect_err = spectra.rectify(ex["spectrum"], ex["error"], wave)
    f2f = cal["fiber_to_fiber"] * cal["a2a"]
    flat_rect = rect / f2f
    f2f_native = np.array([np.interp(wave[f], RECT_WAVE, f2f[f]) for f in range(len(f2f))])
    sky_native = spectra.native_sky(ex["spectrum"], wave, f2f_native)
    sub_rect, _ = spectra.rectify(ex["spectrum"] - sky_native, ex["error"], wave)
    sub = sub_rect / f2f
    sky = spectra.biweight_sky(flat_rect)
    err = rect_err / f2f
    clean = np.where(np.isfinite(img) & ~ex["cosmics"], img, ex["model"])
    mf = multiframe(row["specid"], row["ifuslot"], row["ifuid"], row["amp"])
    head = fits.Header()
    # DATE is the file's creation time (the FITS standard; written with the provenance cards), so
    # the night goes in DAY-OBS and the frame's time (its MJD) in DATE-OBS
    head["DAY-OBS"] = (str(row["date"]), "observing night YYYYMMDD")
    if row["mjd"] is not None and np.isfinite(row["mjd"]):
        head["DATE-OBS"] = (Time(row["mjd"], format="mjd", scale="utc").isot[:19], "the frame's MJD, UTC")
    for k in ("obs", "exp", "ifuslot", "specid", "ifuid", "contid", "amp", "exptime", "mjd", "gain"):
        head[k.upper()[:8]] = row[k]
    head["LEVEL"], head["A2A"] = level, cal["a2a"]
    n_cosmics = int(ndimage.label(ex["cosmics"], structure=np.ones((3, 3)))[1])
    head["NCOSMIC"] = (n_cosmics, "cosmic-ray hits masked in the extraction")
    rel = f"reduction/{item['datevobs']}/exp{item['expnum']:02d}/{mf}.fits"
    f32 = np.float32
    write_fits(ctx.product(rel), [
        fits.PrimaryHDU(header=head),
        fits.ImageHDU(img.astype(f32), name="IMAGE"), fits.ImageHDU(np.sqrt(var).astype(f32), name="ERROR"),
        fits.ImageHDU(clean.astype(f32), name="CLEAN_IMAGE"), fits.ImageHDU(ex["cosmics"].astype(np.uint8), name="COSMICS"),
        fits.ImageHDU(ex["spectrum"], name="SPECTRUM"), fits.ImageHDU(ex["error"], name="ERROR1DFIB"),
        fits.ImageHDU(ex["chi2"], name="CHI2"), fits.ImageHDU(wave.astype(f32), name="WAVELENGTH"),
        fits.ImageHDU(trace.astype(f32), name="TRACE"), fits.ImageHDU(f2f_native.astype(f32), name="FIBER_TO_FIBER"),
        fits.ImageHDU(sky_native.astype(f32), name="SKY_SPECTRUM"),
        fits.ImageHDU((ex["spectrum"] - sky_native).astype(f32), name="SKY_SUBTRACTED"),
        fits.ImageHDU(flat_rect.astype(f32), name="RECT_FLAT"), fits.ImageHDU(sub.astype(f32), name="RECT_SUB"),
        fits.ImageHDU(err.astype(f32), name="RECT_ERR"), fits.ImageHDU(sky, name="RECT_SKY"),
        fits.ImageHDU(f2f.astype(f32), name="RECT_F2F"),
    ], ctx=ctx)
    return {"datevobs": item["datevobs"], "shotid": int(date) * 1000 + int(obs), "expnum": item["expnum"],
            "ifuslot": row["ifuslot"], "specid": row["specid"], "ifuid": row["ifuid"], "contid": row["contid"],
            "amp": row["amp"], "multiframe": mf, "exptime": row["exptime"], "mjd": row["mjd"], "level": level,
            "sky_median": float(np.nanmedian(sky)), "n_masked": int(np.isnan(img).sum()), "n_cosmics": n_cosmics,
            "path": rel}


sci_reduce = FanOut(
    "sci_reduce",
    inputs=("inventory", "master_bias", "pixel_flat", "background", "twilight_cal", "amp_to_amp"),
    items=amp_exposures,
    process=reduce_amp,
    key=("datevobs", "expnum", "ifuslot", "amp"),
    schema=SCHEMA,
    shard_size=6,
    resources=Resources(cpu="1", memory="3Gi"),
    doc=__doc__,
)


def read_multi(run_dir, rel: str, names=("RECT_SUB", "RECT_ERR")) -> dict:
    with fits.open(run_dir / rel) as h:
        out = {n.lower(): h[n].data for n in names}
        out["header"] = h[0].header
    return out
