"""Runbook: a worker taking one frame from the queue (``post_to_fits_exchange`` per raw file).

One fan-out per observation level, because each level needs the masters the one before stacks:
``reduce_bias`` (BIAS frames), ``reduce_dark``, ``reduce_flat`` (LAMPFLAT), ``reduce_arc``
(DOUBLE) and ``reduce_target`` (TARGET).  Each runs the stages the settings table
(:data:`steps.nres.stages.STAGES`) lists for the frame's OBSTYPE: overscan and trim from the
header's sections, gain to electrons, the nearest good master BIAS and DARK from the
calibration library (chosen and recorded per frame, named in the product's header).  Frames are
selected by OBSTYPE from the index, never by their file-name suffix.  The reduced frame (in
electrons) goes to ``reduced/{site}/{instrument}/frames/{day-obs}/{name}.fits``.  A frame that
fails five times with an unchanged checksum is not tried again until the file changes
(:mod:`steps.nres.db`).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from astropy.io import fits

from astroflow.atomic import atomic_path
from astroflow.errors import ItemError, Skip
from astroflow.step import FanOut, Resources
from steps.nres import db
from steps.nres.calibrations import camera_attributes, observed, temperature
from steps.nres.frames import pixels
from steps.nres.science.ccd import overscan_correct
from steps.nres.stages import STAGES

SCHEMA = pa.schema([
    ("filename", pa.string()), ("obstype", pa.string()), ("day_obs", pa.string()), ("dateobs", pa.string()),
    ("site", pa.string()), ("instrument", pa.string()), ("camera", pa.string()), ("binning", pa.string()),
    ("mode", pa.string()), ("temperature", pa.string()), ("fiber_state", pa.string()), ("object", pa.string()),
    ("science_fiber", pa.int8()), ("exptime", pa.float64()), ("read_noise", pa.float64()),
    ("median_e", pa.float64()), ("bias", pa.string()), ("dark", pa.string()), ("path", pa.string()),
])


def write_image(path, data: np.ndarray, header: fits.Header, extra: list[fits.ImageHDU] = ()) -> None:
    with atomic_path(path) as tmp:
        fits.HDUList([fits.PrimaryHDU(data.astype(np.float32), header), *extra]).writeto(tmp)


def reduce_one(ctx, row: dict) -> dict:
    lib = ctx.library()
    if db.tries_left(lib, row["filename"], row["md5"]) <= 0:
        raise Skip(f"{row['filename']} failed {db.MAX_TRIES} times with this checksum; change the file to try again")
    try:
        out = _reduce(ctx, row)
    except Exception as exc:
        db.record_try(lib, row["filename"], row["md5"], f"{type(exc).__name__}: {exc}")
        raise
    db.record_try(lib, row["filename"], row["md5"], None)
    return out


def _reduce(ctx, row: dict) -> dict:
    raw = pixels(ctx.uses(row["path"]))
    stages = STAGES[row["obstype"]]
    attrs = camera_attributes(row)
    at = observed(row)
    image, _ = overscan_correct(raw, row["biassec"], row["trimsec"], gain=row["gain"] if "gain" in stages else 1.0)
    used = {"bias": "", "dark": ""}
    if "bias" in stages:
        path = ctx.calibration("BIAS", at, **attrs)
        image = image - _master(path, image.shape)
        used["bias"] = path.name
    if "dark" in stages:
        path = ctx.calibration("DARK", at, **attrs, temperature=temperature(row))
        image = image - _master(path, image.shape) * np.float32(row["exptime"])
        used["dark"] = path.name
    head = fits.Header()
    for key in ("obstype", "objects", "object", "day_obs", "dateobs", "exptime", "site", "instrument", "camera"):
        head[key.upper().replace("_", "-")[:8]] = row[key]
    head["BUNIT"] = "electron"
    ctx.stamp_fits(head)
    rel = (f"reduced/{row['site']}/{row['instrument']}/frames/{row['day_obs']}/"
           f"{row['filename'].removesuffix('.fz').removesuffix('.fits')}.fits")
    write_image(ctx.product(rel), image, head)
    return {**{k: row[k] for k in ("filename", "obstype", "day_obs", "dateobs", "site", "instrument", "camera",
                                   "binning", "mode", "fiber_state", "object", "science_fiber", "exptime",
                                   "read_noise")},
            "temperature": temperature(row), "median_e": float(np.nanmedian(image)), **used, "path": rel}


def _master(path, shape) -> np.ndarray:
    data = fits.getdata(path).astype(np.float32)
    if data.shape != shape:
        raise ItemError(f"master {path.name} is {data.shape[1]} x {data.shape[0]}, the frame {shape[1]} x {shape[0]}",
                        path=path)
    return data


def frames_of(obstype: str):
    def items(ctx) -> list[dict]:
        return ctx.table("index", where={"obstype": obstype}).to_pylist()
    items.__name__ = f"{obstype.lower()}_frames"
    return items


def reduce_step(name: str, obstype: str, inputs: tuple[str, ...] = ()) -> FanOut:
    """The per-frame reduction of one observation type (its stages from the settings table)."""
    return FanOut(name, inputs=("index", *inputs), items=frames_of(obstype), process=reduce_one, key=("filename",),
                  schema=SCHEMA, shard_size=4, resources=Resources(cpu="1", memory="3Gi"),
                  doc=f"{__doc__.splitlines()[0]} ({obstype} frames: {', '.join(STAGES[obstype])}).")


reduce_bias = reduce_step("reduce_bias", "BIAS")
reduce_dark = reduce_step("reduce_dark", "DARK", ("stack_bias",))
reduce_flat = reduce_step("reduce_flat", "LAMPFLAT", ("stack_bias", "stack_dark"))
reduce_arc = reduce_step("reduce_arc", "DOUBLE", ("stack_bias", "stack_dark"))
reduce_target = reduce_step("reduce_target", "TARGET", ("stack_bias", "stack_dark"))
