"""COSMETICS00 sub-task ``masks`` (vison ``do_masks``, ``vis_cosmetics_masker``): the defects in
darkness and in photo-response, merged per CCD into the cosmetics mask.

Per test and CCD (fan-out): the prepared frames, the biases (0 s) and the flats (exposed) apart,
as vison splits them.  Per quadrant's image area (:mod:`steps.vison.science.cosmetics`): the
biases' master minus its background, its hot pixels and columns (the dark mask); each flat over
its smooth model (as FLAT01's individual flats), their master's cold and bright pixels and
columns (the flat mask); the two merged.  A test without biases or without flats gives the mask
it can (the flags step says what was missing).

Writes ``RUN/<session>/<TEST>/products/EUC_MASK_{BLOCK}_CCD{n}_SN_{serial}.fits`` (vison's name;
``block`` the settings', vison's ``BLOCKID``): extension ``MASK`` (uint8 in the frame's layout, 0
outside the image area: bits 1 hot pixel, 2 hot column, 4 response-defect pixel, 8 column;
non-zero is a defect), ``DARK`` (the biases' background-subtracted master, ADU) and ``FLAT``
(the flats' normalised master), registered in the calibration library as ``COSMETICS_MASK``
matched by block, CCD and serial (the file itself: later Tasks look it up, nothing is copied),
stamped with its provenance; the contract dataset ``defects`` (ccd, quadrant, x, y, kind: hot_pixel,
hot_column, cold_pixel, cold_column, bright_pixel, bright_column) and one row per quadrant with
vison's counts (``N_DARK``, ``N_FLAT``, ``N_MERGE``, ``NCOLS_MERGE``, ``PIXLOST`` %).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from astroflow.errors import Skip
from astroflow.step import FanOut, Resources, StepParams
from pydantic import Field

from steps.vison import elvis, tasks
from steps.vison.masters import place, write_master
from steps.vison.prepared import Stack
from steps.vison.products import product_path, write_part
from steps.vison.science import cosmetics
from steps.vison.science.bias import master
from steps.vison.science.flat import BINSIZE, DEFECT_SIGMA, indiv_flat, response_defects
from steps.vison.subtasks import KEY, task_items


class MasksParams(StepParams):
    hot_adu: float = Field(cosmetics.HOT_ADU, gt=0, description=(
        "a pixel of the biases' background-subtracted master above this (ADU) is hot (vison's dark-mask threshold)"))
    defect_sigma: float = Field(DEFECT_SIGMA, gt=0, description=(
        "a pixel this many robust standard deviations off (either mask) is a defect"))
    binsize: int = Field(BINSIZE, ge=2, description="pixels per side of the bins the flats' smooth model goes through")


SCHEMA = pa.schema([
    ("test", pa.string()), ("ccd", pa.int8()), ("quadrant", pa.string()), ("n_dark", pa.int64()),
    ("n_flat", pa.int64()), ("n_merge", pa.int64()), ("ncols_merge", pa.int32()), ("pixlost_pct", pa.float64()),
    ("n_bias_frames", pa.int32()), ("n_flat_frames", pa.int32()), ("block", pa.string()), ("serial", pa.string()),
    ("file", pa.string()),
])


def masks_ccd(ctx, item) -> list[dict]:
    p, test, ccd, block = ctx.params, item["test"], item["ccd"], ctx.settings.block
    stack = Stack(ctx, item, tasks.COSMETICS00)
    if not stack.obsids:
        raise Skip(f"no prepared frame of {test} CCD{ccd} (MISSDATA)")
    serial = str(stack.header.get(f"SN_CCD{ccd}", "unknown"))
    exptimes = np.asarray(stack.exptimes)
    biases, flats = np.flatnonzero(exptimes == 0), np.flatnonzero(exptimes > 0)
    rows_, cols = stack.geometry.region("image")
    merged, darks, responses, rows, defects = {}, {}, {}, [], []
    for q in elvis.QUADRANTS:
        image = stack.quadrants.pop(q)[:, rows_, cols]
        dark_mask = flat_mask = None
        shape = image.shape[1:]
        darks[q], responses[q] = np.full(shape, np.nan, np.float32), np.full(shape, np.nan, np.float32)
        found = []
        if biases.size:
            bias = master(image[biases])
            dark_mask, dark_found = cosmetics.dark_defects(bias, p.hot_adu, p.defect_sigma)
            darks[q] = bias - np.float32(np.nanmedian(bias))
            found += dark_found
        if flats.size:
            normalised = master(np.stack([indiv_flat(image[i], p.binsize)[0] for i in flats]))
            flat_mask, flat_found = response_defects(normalised, p.defect_sigma)
            responses[q] = normalised
            found += flat_found
        merged[q] = cosmetics.merge(dark_mask, flat_mask)
        rows.append({"test": test, "ccd": ccd, "quadrant": q,
                     "n_dark": int(np.count_nonzero(dark_mask)) if dark_mask is not None else 0,
                     "n_flat": int(np.count_nonzero(flat_mask)) if flat_mask is not None else 0,
                     "n_merge": int(np.count_nonzero(merged[q])),
                     "ncols_merge": int(np.count_nonzero(np.all(merged[q] > 0, axis=0))),
                     "pixlost_pct": float(np.count_nonzero(merged[q]) / merged[q].size * 100.0),
                     "n_bias_frames": int(biases.size), "n_flat_frames": int(flats.size), "block": block,
                     "serial": serial})
        defects += [{"ccd": ccd, "quadrant": q, "x": x, "y": y, "kind": k} for x, y, k, _ in found]
    name = f"EUC_MASK_{block}_CCD{ccd}_SN_{serial}.fits"
    obsids, when = stack.obsids, stack.when
    common = {"TEST": test, "CCD": ccd, "SERIAL": serial, "BLOCKID": block, "NBIAS": int(biases.size),
              "NFLAT": int(flats.size), "OBSID0": min(obsids), "OBSID1": max(obsids),
              "DATE-OBS": when.isoformat(timespec="seconds")}
    path = write_master(ctx, "COSMETICS_MASK", product_path(ctx, test, name), when,
                        {"block": block, "ccd": ccd, "serial": serial}, obsids,
                        [(place(merged, stack.geometry, np.uint8, 0),
                          {"EXTNAME": "MASK", "MASKTYPE": "COMBO", "DKPIX": cosmetics.DARK_PIXEL,
                           "DKCOL": cosmetics.DARK_COLUMN, "FLPIX": cosmetics.FLAT_PIXEL,
                           "FLCOL": cosmetics.FLAT_COLUMN, "HOTADU": p.hot_adu, "NSIGMA": p.defect_sigma, **common}),
                         (place(darks, stack.geometry), {"EXTNAME": "DARK", "BUNIT": "ADU", **common}),
                         (place(responses, stack.geometry), {"EXTNAME": "FLAT", "BUNIT": "", **common})])
    for r in rows:
        r["file"] = str(path.relative_to(ctx.run_dir))
    write_part(ctx, "defects", test, f"ccd{ccd}", defects)
    return rows


cosmetics_masks = FanOut("cosmetics_masks", inputs=("inventory", "cosmetics_prep"), params=MasksParams,
                         items=task_items(tasks.COSMETICS00), process=masks_ccd, key=KEY, schema=SCHEMA, shard_size=1,
                         resources=Resources(cpu="1", memory="3Gi"), doc=__doc__)
