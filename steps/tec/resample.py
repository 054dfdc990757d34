"""Runbook step 3, dvts_bulk_resamp.py: DV time series binned to the 10-minute grid.

Fans out over the ``*_dvt.fits[.gz]`` files (one per TIC); each TCE_n extension becomes one row
holding its binned arrays (bin factor 5 for 2-min data, 3 for 200-s, 1 for 10-min; PDC flux
summed, the rest averaged, quality OR-ed).  Replaces the per-TCE ``tess_dvts_*.h5d`` files.
"""

from __future__ import annotations

import pyarrow as pa

from astroflow.step import FanOut, Resources
from astroflow.units import with_units
from steps.tec.dvts import bin_dvt, read_dvt
from steps.tec.tces import product_items
from steps.tec.settings import CADENCE_MINUTES

F32 = pa.list_(pa.float32())
SCHEMA = with_units(pa.schema([
    ("tic", pa.int64()), ("planet_number", pa.int32()), ("sector", pa.int32()), ("factor", pa.int32()),
    ("cadence_no", pa.list_(pa.int64())), ("cadence_beg", pa.list_(pa.int64())),
    ("cadence_end", pa.list_(pa.int64())), ("time", pa.list_(pa.float64())),
    ("lc_init", F32), ("lc_init_err", F32), ("lc_white", F32), ("lc_detrend", F32),
    ("model_init", F32), ("model_white", F32), ("phase", F32),
    ("pdc_flux", pa.list_(pa.float64())), ("pdc_flux_err", F32), ("deweights", F32),
    ("quality", pa.list_(pa.int32())), ("momentum_dump", pa.list_(pa.bool_())), ("valid", pa.list_(pa.bool_())),
]), {
    "tic": (None, "TESS Input Catalog id"), "planet_number": (None, "DV planet (TCE) number"),
    "factor": (None, "cadences per 10-minute bin"),
    "time": ("d", "BTJD (BJD - 2457000) of each bin"),
    "lc_init": ("", "DV initial flux, relative (about 0)"), "lc_init_err": ("", "uncertainty of lc_init"),
    "lc_white": ("", "DV whitened flux"), "lc_detrend": ("", "DV median-detrended flux + 1"),
    "model_init": ("", "DV transit model"), "model_white": ("", "DV whitened transit model"),
    "phase": ("d", "time from the nearest transit, in [-0.25 P, 0.75 P]"),
    "pdc_flux": ("electron / s", "PDCSAP flux, summed over the bin's cadences"), "pdc_flux_err": ("electron / s", "uncertainty of pdc_flux"),
    "quality": (None, "SPOC QUALITY bits, OR of the bin"), "valid": (None, "bin usable"),
})

BIN_FACTOR = {"2min": 5, "200s": 3, "10min": 1}


def one_file(ctx, item) -> list[dict]:
    dvt = read_dvt(ctx.uses(item["path"]))
    cadence = ctx.settings.cadence
    factor = BIN_FACTOR[cadence] if cadence in CADENCE_MINUTES else None
    return [{k: r[k] for k in SCHEMA.names} for r in bin_dvt(dvt, factor)]


resample = FanOut(
    "resample",
    items=lambda ctx: product_items(ctx, "dvt"),
    process=one_file,
    key=("tic",),
    schema=SCHEMA,
    shard_size=40,
    resources=Resources(cpu="1", memory="2Gi"),
    doc=__doc__,
)
