"""Runbook: the science frames' radial velocities (the IDL pipeline's rv stage, banzai-nres RV).

Per extracted science frame: the star's row in targets.csv (a missing or malformed row fails the
item with the reason: no RV, the night goes on), the barycentric correction and BJD_TDB at the
exposure midpoint for the site (astropy, Wright & Eastman 2014), the cross-correlation against
the ZERO the ``classify`` step chose (the star's own, or the best-matching standard's; for one
of the ZERO's own exposures, the coadd of its other exposures):
-2000..2000 km/s at 1 km/s, then +-2 km/s at 1 m/s, order peaks 4-sigma clipped,
RVERR = std/sqrt(N); RV = v + BC + v BC / c.  TEFF and LOGG are classify's, CLASSIFY names the
template.  Writes banzai-nres's ``...-1d.fits`` (RV, RVERR in m/s, BARYCORR in m/s, TCORR
the BJD_TDB, TEFF, LOGG, CLASSIFY, SIGLAM, RVPRECSN; extensions SPECTRUM and CCF) and the row of
``RUNDIR/rv/``.  With ``do_rv`` off (NRES_DO_RV) the file is written without velocities.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pyarrow as pa
from astropy.io import fits
from astropy.table import Table

from astroflow.atomic import atomic_path
from astroflow.step import FanOut, Resources
from steps.nres.science.barycentric import apply_correction
from steps.nres.science.rv import measure_rv
from steps.nres.spectra import barycentre, read_spectrum, target
from steps.nres.template import zero_for

SCHEMA = pa.schema([
    ("filename", pa.string()), ("site", pa.string()), ("instrument", pa.string()), ("object", pa.string()),
    ("dateobs", pa.string()), ("bjd_tdb", pa.float64()), ("rv", pa.float64()), ("rv_err", pa.float64()),
    ("barycorr", pa.float64()), ("n_orders", pa.int32()), ("snr", pa.float64()), ("template", pa.string()),
    ("teff", pa.float64()), ("logg", pa.float64()), ("path", pa.string()),
])


def frames(ctx) -> list[dict]:
    return ctx.table("extract", columns=["filename"]).to_pylist()


def rv_frame(ctx, item) -> dict:
    ext = ctx.row("extract", filename=item["filename"])
    cls = ctx.row("classify", filename=item["filename"])
    frame = ctx.row("index", filename=item["filename"])
    star = target(ctx, ext["object"])
    bc = barycentre(frame, star)
    spec = read_spectrum(ctx.run_dir / ext["path"])
    head = spec["header"]
    rv = rv_err = np.nan
    n_orders, template, ccf = 0, "", None
    if ctx.settings.do_rv:
        zero = zero_for(ctx, ctx.calibration("ZERO", datetime.fromisoformat(ext["dateobs"]), target=cls["template"]),
                        item["filename"])
        m = measure_rv(spec["wavelength"], spec["normflux"], spec["normuncertainty"], zero, mask=spec["mask"],
                       order_labels=spec["order"])
        rv = float(apply_correction(m["rv"], bc["barycorr"]))
        rv_err, n_orders, template = m["rv_err"], m["n_orders"], zero["name"]
        orders = spec["order"][m["coarse_orders"]]
        ccf = Table({"order": orders, "v": np.tile(m["coarse_v"], (len(orders), 1)), "xcor": m["coarse_xcor"]})
    head["RV"] = (rv, "[m/s] barycentric radial velocity")
    head["RVERR"] = (rv_err, "[m/s] std of the order velocities / sqrt(N)")
    head["BARYCORR"] = (bc["barycorr"], "[m/s] barycentric correction")
    head["TCORR"] = (bc["bjd_tdb"], "[d] BJD_TDB of the exposure midpoint")
    head["TEFF"] = (cls["teff"] if cls["teff"] is not None else np.nan, f"[K] {cls['teff_source']}")
    head["LOGG"] = (cls["logg"] if cls["logg"] is not None else np.nan, f"[dex] {cls['teff_source']}")
    head["CLASSIFY"] = (template, "template the velocities are measured against")
    ctx.stamp_fits(head)
    hdus = [fits.PrimaryHDU(header=head), fits.BinTableHDU(spec["table"], name="SPECTRUM")]
    if ccf is not None:
        hdus.append(fits.BinTableHDU(ccf, name="CCF"))
    rel = ext["path"].replace("/spec/", "/rv/").replace("-spec.fits", "-1d.fits")
    with atomic_path(ctx.product(rel)) as tmp:
        fits.HDUList(hdus).writeto(tmp)
    return {"filename": item["filename"], "site": ext["site"], "instrument": ext["instrument"], "object": star.name,
            "dateobs": ext["dateobs"], "bjd_tdb": bc["bjd_tdb"], "rv": rv, "rv_err": rv_err,
            "barycorr": bc["barycorr"], "n_orders": n_orders, "snr": ext["snr"], "template": template,
            "teff": cls["teff"], "logg": cls["logg"], "path": rel}


rv = FanOut("rv", inputs=("extract", "classify", "index"), items=frames, process=rv_frame, key=("filename",),
            schema=SCHEMA, shard_size=2, resources=Resources(cpu="1", memory="2Gi"), doc=__doc__)
