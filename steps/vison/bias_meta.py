"""BIAS0X sub-task ``meta`` (vison ``meta_analysis``): the master bias of each CCD.

The per-pixel median of the test's prepared frames (fan-out by test and CCD), each quadrant
whole (prescan, image, overscans) minus its offset, written back in the frame's own layout as
``RUN/<session>/<TEST>/products/EUC_MB_{TEST}_CCD{n}_SN_{serial}.fits`` (float32 ADU, with the
ObsIDs it stacks, the serial and the readout mode in its header, stamped with its provenance) and
registered in the calibration library as ``MASTER_BIAS`` (matched by CCD, serial and readout
mode), so that later Tasks find it there (DARK01 subtracts it: :mod:`steps.vison.dark_meta`).
Per quadrant: the master's median and std over the image area.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from astroflow.errors import Skip
from astroflow.step import FanOut, Resources
from steps.vison import tasks
from steps.vison.masters import place, write_master
from steps.vison.prepared import Stack
from steps.vison.products import product_path
from steps.vison.science.bias import master
from steps.vison.subtasks import KEY, task_items

SCHEMA = pa.schema([
    ("test", pa.string()), ("ccd", pa.int8()), ("quadrant", pa.string()), ("n_frames", pa.int32()),
    ("median_adu", pa.float64()), ("std_adu", pa.float64()), ("serial", pa.string()), ("rdmode", pa.string()),
    ("file", pa.string()),
])


def meta_ccd(ctx, item) -> list[dict]:
    stack = Stack(ctx, item, tasks.BIAS0X)
    if not stack.obsids:
        raise Skip(f"no prepared frame of {item['test']} CCD{item['ccd']} to stack (MISSDATA)")
    masters = {q: master(v) for q, v in stack.quadrants.items()}
    del stack.quadrants
    serial = str(stack.header.get(f"SN_CCD{item['ccd']}", "unknown"))
    rdmode = str(stack.header.get("RDMODE", "unknown"))
    name = f"EUC_MB_{item['test']}_CCD{item['ccd']}_SN_{serial}.fits"
    when, obsids = stack.when, stack.obsids
    cards = {"EXTNAME": f"MASTER_BIAS_CCD{item['ccd']}", "BUNIT": "ADU", "TEST": item["test"], "CCD": item["ccd"],
             "SERIAL": serial, "RDMODE": rdmode, "NCOMBINE": len(obsids), "OBSID0": min(obsids),
             "OBSID1": max(obsids), "DATE-OBS": when.isoformat(timespec="seconds"), "COMBINE": "median",
             "OFFSETS": ctx.settings.preprocessing.offset_method}
    path = write_master(ctx, "MASTER_BIAS", product_path(ctx, item["test"], name), when,
                        {"ccd": item["ccd"], "serial": serial, "rdmode": rdmode}, obsids,
                        [(place(masters, stack.geometry), cards)])
    rows = []
    rr, cc = stack.geometry.region("image")
    for q, m in masters.items():
        img = m[rr, cc]
        rows.append({"test": item["test"], "ccd": item["ccd"], "quadrant": q, "n_frames": len(obsids),
                     "median_adu": float(np.nanmedian(img)), "std_adu": float(np.nanstd(img)), "serial": serial,
                     "rdmode": rdmode, "file": str(path.relative_to(ctx.run_dir))})
    return rows


bias_meta = FanOut("bias_meta", inputs=("inventory", "bias_prep"), items=task_items(tasks.BIAS0X), process=meta_ccd, key=KEY,
                   schema=SCHEMA, shard_size=1, resources=Resources(cpu="1", memory="3Gi"), doc=__doc__)
