"""DARK01 sub-task ``meta`` (vison ``stack_analysis``): master dark, dark current, hot pixels and columns.

Per test and CCD (fan-out): the master bias of the CCD (its serial and readout mode) from the
calibration library (``MASTER_BIAS``, registered by BIAS01's meta; none there fails the item,
which reruns once one is registered), subtracted from each prepared dark over its exposure time,
the per-pixel median of those rates (:mod:`steps.vison.science.dark`); per quadrant, the dark
current (ADU/s, with its error from the frames' scatter), the hot columns and pixels (the
background-subtracted master above vison's 50 ADU in 565 s, and significant).  Writes the master
dark ``RUN/<session>/<TEST>/products/EUC_MD_{TEST}_CCD{n}_SN_{serial}.fits`` (extension
``MASTER_DARK``, float32 ADU/s in the frame's layout; extension ``DARK_DEFECTS``, uint8, 1 a hot
pixel and 2 a hot column), registered as ``MASTER_DARK`` (matched by CCD, serial and readout
mode) and stamped with its provenance (naming the master bias it used), and the contract
datasets ``dark`` and ``defects``.  The dark current is in ADU/s: in electrons it needs the
PTC's gain, which DARK01 does not measure (vison reports it in ADU too).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from pydantic import Field

from astroflow.errors import Skip
from astroflow.step import FanOut, Resources, StepParams
from steps.vison import elvis, tasks
from steps.vison.masters import place, read_quadrants, write_master
from steps.vison.prepared import Stack
from steps.vison.products import product_path, write_part
from steps.vison.science.dark import HOT_ADU, dark_level, dark_rates, find_defects, master_dark
from steps.vison.subtasks import KEY, task_items


class MetaParams(StepParams):
    hot_adu: float = Field(HOT_ADU, gt=0, description=(
        "hot pixel threshold (ADU): the background-subtracted master dark times the exposure time "
        "(vison's DKMSKthresholds: 50 ADU in its 565 s master)"))
    degree: int = Field(5, ge=0, le=9, description="total degree of the master dark's background model")
    binsize: int = Field(300, ge=2, description="pixels per side of the bins the background is fitted to")


SCHEMA = pa.schema([
    ("test", pa.string()), ("ccd", pa.int8()), ("quadrant", pa.string()), ("dark_adu_per_s", pa.float64()),
    ("dark_err_adu_per_s", pa.float64()), ("dark_frames_adu_per_s", pa.list_(pa.float64())),
    ("n_frames", pa.int32()), ("exptime", pa.float64()), ("n_hot_pixels", pa.int32()), ("n_hot_columns", pa.int32()),
    ("serial", pa.string()), ("rdmode", pa.string()), ("master_bias", pa.string()), ("file", pa.string()),
])


def meta_ccd(ctx, item) -> list[dict]:
    p, test, ccd = ctx.params, item["test"], item["ccd"]
    stack = Stack(ctx, item, tasks.DARK01)
    if not stack.obsids:
        raise Skip(f"no prepared frame of {test} CCD{ccd} to stack (MISSDATA)")
    serial = str(stack.header.get(f"SN_CCD{ccd}", "unknown"))
    rdmode = str(stack.header.get("RDMODE", "unknown"))
    bias_path = ctx.calibration("MASTER_BIAS", stack.when, ccd=ccd, serial=serial, rdmode=rdmode)
    bias = read_quadrants(bias_path, stack.geometry)
    exptime = float(np.median(stack.exptimes))
    rows_, cols = stack.geometry.region("image")
    masters, masks, rows, defects = {}, {}, [], []
    for q in elvis.QUADRANTS:
        rates = dark_rates(stack.quadrants.pop(q), bias[q], stack.exptimes)
        masters[q] = master_dark(rates)
        masks[q], found = find_defects(masters[q][rows_, cols], exptime, p.hot_adu, p.degree, p.binsize)
        level, err, per_frame = dark_level(rates[:, rows_, cols], masks[q])
        kinds = [k for _, _, k, _ in found]
        rows.append({"test": test, "ccd": ccd, "quadrant": q, "dark_adu_per_s": level, "dark_err_adu_per_s": err,
                     "dark_frames_adu_per_s": per_frame, "n_frames": len(stack.obsids), "exptime": exptime,
                     "n_hot_pixels": kinds.count("hot_pixel"), "n_hot_columns": kinds.count("hot_column"),
                     "serial": serial, "rdmode": rdmode, "master_bias": bias_path.name})
        defects += [{"ccd": ccd, "quadrant": q, "x": x, "y": y, "kind": k} for x, y, k, _ in found]
    name = f"EUC_MD_{test}_CCD{ccd}_SN_{serial}.fits"
    obsids, when = stack.obsids, stack.when
    common = {"TEST": test, "CCD": ccd, "SERIAL": serial, "RDMODE": rdmode, "NCOMBINE": len(obsids),
              "OBSID0": min(obsids), "OBSID1": max(obsids), "DATE-OBS": when.isoformat(timespec="seconds"),
              "EXPTIME": exptime, "COMBINE": "median", "MBIAS": bias_path.name}
    path = write_master(ctx, "MASTER_DARK", product_path(ctx, test, name), when,
                        {"ccd": ccd, "serial": serial, "rdmode": rdmode}, obsids,
                        [(place(masters, stack.geometry), {"EXTNAME": "MASTER_DARK", "BUNIT": "ADU/s", **common}),
                         (place(masks, stack.geometry, np.uint8, 0),
                          {"EXTNAME": "DARK_DEFECTS", "HOTPIX": 1, "HOTCOL": 2, "HOTADU": p.hot_adu, **common})])
    for r in rows:
        r["file"] = str(path.relative_to(ctx.run_dir))
    write_part(ctx, "dark", test, f"ccd{ccd}", rows)
    write_part(ctx, "defects", test, f"ccd{ccd}", defects)
    return rows


dark_meta = FanOut("dark_meta", inputs=("inventory", "dark_prep"), optional_inputs=("bias_meta",), params=MetaParams,
                   items=task_items(tasks.DARK01), process=meta_ccd, key=KEY, schema=SCHEMA, shard_size=1,
                   resources=Resources(cpu="1", memory="3Gi"), doc=__doc__)
