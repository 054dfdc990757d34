"""Runbook step 14, grab_flxwcent.py: flux-weighted centroids and PDC goodness per light curve.

Fans out over the TICs of the vetted TCEs; for every sector of the run it reads the TIC's
``*_lc.fits[.gz]`` (``steps.tec.lightcurve.read_flux_weighted_centroids``): MOM_CENTR1/2
medians and times over 31 cadences for 2-min data, 19 for 200-s and 7 for 10-min (derived from
the cadence: the runbook's RESAMP hand edit is gone; ``cadence`` in the settings pins it),
quality OR-ed, and the header's PDC_TOT, PDC_NOI, PDC_COR.  One row per (TIC, sector); the
original wrote the same data once per TCE (``tess_flxwcent_{TIC}_{PN}_{k}.h5d``).  The ranking
reads PDC_NOI from here.  A TIC with no light curve in any sector is an item error.
"""

from __future__ import annotations

import pyarrow as pa

from astroflow.errors import ItemError
from astroflow.step import FanOut, Resources
from steps.tec.lightcurve import read_flux_weighted_centroids
from steps.tec.products import ProductError
from steps.tec.tces import sector_products
from steps.tec.vetted import vetted_tces

CENTROID_BIN = {"2min": 31, "200s": 19, "10min": 7}
SCHEMA = pa.schema([
    ("tic", pa.int64()), ("sector", pa.int32()), ("resamp", pa.int32()), ("path", pa.string()),
    ("pdc_tot", pa.float64()), ("pdc_noi", pa.float64()), ("pdc_cor", pa.float64()),
    ("time", pa.list_(pa.float64())), ("flxw_centr1", pa.list_(pa.float64())),
    ("flxw_centr2", pa.list_(pa.float64())), ("quality", pa.list_(pa.int32())), ("valid", pa.list_(pa.bool_())),
])


def light_curves(ctx) -> list[dict]:
    """One item per TIC of the vetted TCEs, with its light-curve file per sector."""
    s = ctx.settings
    first, last = s.dv_sectors
    by_sector = {}
    for sector in range(first, last + 1):
        try:
            by_sector[sector] = sector_products(ctx, "lc", sector)
        except ProductError:
            by_sector[sector] = {}  # no light curves of that sector: the TICs say so one by one
    tics = sorted({r["tic"] for r in vetted_tces(ctx)})
    return [{"tic": tic, "files": {str(k): str(v[tic]) for k, v in by_sector.items() if tic in v}} for tic in tics]


def one_tic(ctx, item) -> list[dict]:
    tic = item["tic"]
    if not item["files"]:
        raise ItemError(f"no light curve (*_lc.fits) of TIC {tic} for sectors "
                        f"{'-'.join(map(str, sorted(set(ctx.settings.dv_sectors))))} under {ctx.settings.data_root}")
    resamp = CENTROID_BIN.get(ctx.settings.cadence)  # None: from the file's TIMEDEL
    rows = []
    for sector, path in sorted(item["files"].items(), key=lambda kv: int(kv[0])):
        try:
            c = read_flux_weighted_centroids(ctx.uses(path), resamp)
        except ProductError as exc:
            raise ItemError(exc.message, path) from exc
        rows.append({"tic": tic, "sector": int(sector), "resamp": c["resamp"], "path": path,
                     "pdc_tot": c["pdc_tot"], "pdc_noi": c["pdc_noi"], "pdc_cor": c["pdc_cor"],
                     "time": c["time"], "flxw_centr1": c["flxw_centr1"], "flxw_centr2": c["flxw_centr2"],
                     "quality": c["quality"].astype("int32"), "valid": c["valid"]})
    return rows


flux_weighted_centroids = FanOut(
    "flux_weighted_centroids",
    inputs=("gather", "flux_triage"),
    items=light_curves,
    process=one_tic,
    key=("tic",),
    schema=SCHEMA,
    shard_size=100,
    resources=Resources(cpu="1", memory="1Gi"),
    doc=__doc__,
)
