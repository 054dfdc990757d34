"""Runbook "blaz" and banzai-nres's profile stage: the cross-dispersion profile and the blaze.

For every master FLAT of the run (one per night and fiber state), along the night's traces
(the nearest TRACE in the library): the flat's pixels in each trace's stamp, normalised per
column (the profile optimal extraction weights with), and the flat's flux summed per column and
smoothed by a 101-column running median (the blaze, normalised to its 95th percentile; banzai-nres
``BlazeMaker``).  Registered as a PROFILE calibration matching
the flat's fiber state; written to the reduced tree's ``blaz`` folder.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pyarrow as pa
from astropy.io import fits

from astroflow.step import FanOut, Resources
from steps.nres.calibrations import reduced_path
from steps.nres.products import read_traces, write_profile
from steps.nres.science.extract import blaze_from_flat, profile_from_flat

SCHEMA = pa.schema([
    ("site", pa.string()), ("instrument", pa.string()), ("camera", pa.string()), ("day_obs", pa.string()),
    ("fiber_state", pa.string()), ("n_traces", pa.int32()), ("half_height", pa.int32()),
    ("trace", pa.string()), ("flat", pa.string()), ("path", pa.string()),
])
ATTRS = ("site", "instrument", "camera", "binning", "mode")


def flats(ctx) -> list[dict]:
    rows = ctx.table("stack_flat").to_pylist()
    return [{k: r[k] for k in (*ATTRS, "day_obs", "fiber_state", "dateobs", "path")}
            for r in sorted(rows, key=lambda r: (r["day_obs"], r["fiber_state"]))]


def profile_one(ctx, item) -> dict:
    image = fits.getdata(ctx.run_dir / item["path"]).astype(np.float32)
    at = datetime.fromisoformat(item["dateobs"])
    attrs = {k: item[k] for k in ATTRS}
    traces_path = ctx.calibration("TRACE", at, **attrs)
    traces = read_traces(traces_path)
    prof = profile_from_flat(image, traces)
    blaze, blaze_err = blaze_from_flat(image, prof)
    name = f"{item['site']}{item['instrument']}_{item['camera']}_profile_{item['day_obs']}_{item['fiber_state']}.fits"
    path = ctx.register_calibration("PROFILE", reduced_path(item, "PROFILE", name), at,
                                    {**attrs, "fiber_state": item["fiber_state"]}, frames=[item["path"]])
    head = fits.Header()
    head["OBSTYPE"], head["DAY-OBS"] = "PROFILE", item["day_obs"]
    ctx.stamp_fits(head)
    write_profile(path, prof, blaze, blaze_err, head)
    return {**{k: item[k] for k in ("site", "instrument", "camera", "day_obs", "fiber_state")},
            "n_traces": len(traces), "half_height": prof.k, "trace": traces_path.name, "flat": item["path"],
            "path": str(path.relative_to(ctx.run_dir))}


profile = FanOut("profile", inputs=("stack_flat", "trace"), items=flats, process=profile_one,
                 key=("site", "instrument", "camera", "day_obs", "fiber_state"), schema=SCHEMA, shard_size=1,
                 resources=Resources(cpu="1", memory="4Gi"), doc=__doc__)
