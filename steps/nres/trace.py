"""Runbook ``run_nres_trace0`` + ``run_nres_trace_refine``: the traces of every order and fiber.

The runbook called automatic tracing "not yet robust" and had a person hand-trace a file before
refining it on two flats (fibers 0,1 and 1,2 lit).  Here the traces are found blind, per DAY-OBS
and camera, from the night's two master flats (the nearest good ones in the library, so a night
without flats is traced from the last ones, recorded as a fallback): peaks along the centre
column, followed column by column with flux-weighted centroids, degree-5 polynomials, fibers
labelled by the flat shared between the two fiber states (:func:`trace_two_flats`).  The trace
is registered as a TRACE calibration; if tracing fails the item fails with the reason and the
frames use the previous trace.  The hand path stays as ``astroflow nres trace0`` (the original
``ref_trace.txt`` format) and ``astroflow nres trace-refine``.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pyarrow as pa
from astropy.io import fits

from astroflow.errors import ItemError
from astroflow.step import FanOut, Resources
from steps.nres.calibrations import reduced_path
from steps.nres.products import write_traces
from steps.nres.science.trace import trace_two_flats

SCHEMA = pa.schema([
    ("site", pa.string()), ("instrument", pa.string()), ("camera", pa.string()), ("day_obs", pa.string()),
    ("n_traces", pa.int32()), ("n_orders", pa.int32()), ("median_rms_px", pa.float64()),
    ("flat_a", pa.string()), ("flat_b", pa.string()), ("path", pa.string()),
])
CAMERA_KEYS = ("site", "instrument", "camera", "binning", "mode")
STATES = ("110", "011")  # fibers 0,1 and 1,2 lit


def nights(ctx) -> list[dict]:
    rows = ctx.table("index", columns=[*CAMERA_KEYS, "day_obs"]).to_pylist()
    return [dict(zip((*CAMERA_KEYS, "day_obs"), k)) for k in sorted({tuple(r.values()) for r in rows})]


def night_time(day_obs: str) -> datetime:
    """The end of a DAY-OBS: masters of that night (or earlier) qualify."""
    return datetime.strptime(day_obs, "%Y%m%d").replace(tzinfo=timezone.utc) + timedelta(days=1)


def trace_night(ctx, item) -> dict:
    attrs = {k: item[k] for k in CAMERA_KEYS}
    at = night_time(item["day_obs"])
    flats = [ctx.calibration("FLAT", at, **attrs, fiber_state=s) for s in STATES]
    images = [fits.getdata(p).astype(np.float32) for p in flats]
    lit = [[i for i, c in enumerate(s) if c == "1"] for s in STATES]
    try:
        traces = trace_two_flats(images[0], lit[0], images[1], lit[1])
    except (ValueError, RuntimeError) as exc:
        raise ItemError(f"tracing failed on {flats[0].name} and {flats[1].name}: {exc}; the previous trace stays in use",
                        path=flats[0]) from None
    name = f"{item['site']}{item['instrument']}_{item['camera']}_trace_{item['day_obs']}.fits"
    path = ctx.register_calibration("TRACE", reduced_path(item, "TRACE", name), at - timedelta(hours=12), attrs,
                                    frames=[p.name for p in flats])
    head = fits.Header()
    head["OBSTYPE"], head["DAY-OBS"] = "TRACE", item["day_obs"]
    ctx.stamp_fits(head)
    write_traces(path, traces, head)
    return {**{k: item[k] for k in ("site", "instrument", "camera", "day_obs")}, "n_traces": len(traces),
            "n_orders": traces.n_orders, "median_rms_px": float(np.nanmedian(traces.rms)),
            "flat_a": flats[0].name, "flat_b": flats[1].name, "path": str(path.relative_to(ctx.run_dir))}


trace = FanOut("trace", inputs=("index", "stack_flat"), items=nights, process=trace_night,
               key=(*CAMERA_KEYS, "day_obs"), schema=SCHEMA, shard_size=1, resources=Resources(cpu="1", memory="4Gi"),
               doc=__doc__)
