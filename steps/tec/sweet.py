"""Runbook step 13, sweet_test.py: the SWEET test (sinusoidal variability) per short-period TCE.

Fans out over the vetted TCEs with P < 5 d.  The PDC flux on the 10-minute grid (skyline
cadences invalid, as ses_mes) is divided by a 4th-order polynomial and fitted with a sinusoid at
P, P/2 and 2P (``steps.tec.science.sweet``).  One row per TCE: the three fits, the scatter before
and after each, and ``sweet_ratio`` = min(after / before), which the ranking flags below 0.8.
Replaces ``spoc_sweet_{run}.txt``.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from astroflow.errors import ItemError
from astroflow.step import FanOut, Resources
from steps.tec.science.sweet import MAX_PERIOD_D, sweet_test
from steps.tec.vetted import pdc_light_curve, skyline_times, tic_where, vetted_tces

FIT_FIELDS = [f"{tag}_{k}" for tag in ("per", "half", "double")
              for k in ("period", "t0", "amp", "offset", "mad", "ratio")]
SCHEMA = pa.schema([("tic", pa.int64()), ("planet_number", pa.int32()), ("n_points", pa.int32()),
                    ("mad_before", pa.float64()), ("sweet_ratio", pa.float64())]
                   + [(k, pa.float64()) for k in FIT_FIELDS])


def short_period_tces(ctx) -> list[dict]:
    return [{k: r[k] for k in ("tic", "planet_number", "at_period")}
            for r in vetted_tces(ctx) if r["at_period"] < MAX_PERIOD_D]


def load_shard(ctx, items) -> dict:
    t = ctx.table("resample", columns=["tic", "planet_number", "time", "pdc_flux", "valid"], where=tic_where(items))
    return {"lc": {(r["tic"], r["planet_number"]): r for r in t.to_pylist()}, "skyline": skyline_times(ctx)}


def one_tce(ctx, item) -> dict:
    tic, pn = item["tic"], item["planet_number"]
    row = ctx.state["lc"].get((tic, pn))
    if row is None:
        raise ItemError(f"no resampled light curve for TIC {tic} planet {pn} (see the resample step's errors)")
    time, flux, valid = pdc_light_curve(row, ctx.state["skyline"])
    try:
        res = sweet_test(time[valid], flux[valid], item["at_period"])
    except ValueError as exc:
        raise ItemError(f"TIC {tic} planet {pn}: {exc}") from exc
    return {"tic": tic, "planet_number": pn, "n_points": int(np.sum(valid)), **res.as_dict()}


sweet = FanOut(
    "sweet",
    inputs=("gather", "flux_triage", "resample", "skyline"),
    items=short_period_tces,
    setup=load_shard,
    process=one_tce,
    key=("tic", "planet_number"),
    schema=SCHEMA,
    shard_size=100,
    resources=Resources(cpu="1", memory="1Gi"),
    doc=__doc__,
)
