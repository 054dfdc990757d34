"""Runbook ``nres_stack_calibrations --calibration-type BIAS|DARK|FLAT|ARC``: stacked masters.

One fan-out per type over the calibration sets of each DAY-OBS (banzai's criteria: site,
instrument, camera, binning and readout mode; DARK adds the CCD temperature, FLAT and DOUBLE
the fiber state).  A set is stacked with a 3-sigma-clipped mean (:func:`sigma_clipped_stack`)
once it holds the configured minimum (BIAS, DARK, FLAT 5; DOUBLE 1); a smaller set fails with
the count, and the frames of that night are reduced with the previous master (the look-up's
recorded fallback).  DARKs are stacked per second of exposure.  Each master is written to the
reduced tree and registered in the calibration library with its frames; the ``--start --end``
18-day loops of the runbook become the run's DAY-OBS range, and ``astroflow nres stack`` the
by-hand call.
"""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pyarrow as pa
from astropy.io import fits

from astroflow.errors import ItemError
from astroflow.step import FanOut, Resources
from steps.nres.calibrations import reduced_path
from steps.nres.reduce_frame import write_image
from steps.nres.science.ccd import read_noise, sigma_clipped_stack

SCHEMA = pa.schema([
    ("type", pa.string()), ("filename", pa.string()), ("day_obs", pa.string()), ("dateobs", pa.string()),
    ("site", pa.string()), ("instrument", pa.string()), ("camera", pa.string()), ("binning", pa.string()),
    ("mode", pa.string()), ("fiber_state", pa.string()),
    ("n_frames", pa.int32()), ("good_after", pa.string()), ("good_until", pa.string()),
    ("read_noise", pa.float64()), ("median", pa.float64()), ("path", pa.string()),
])
SET_KEYS = ("site", "instrument", "camera", "binning", "mode", "day_obs")
EXTRA_KEYS = {"BIAS": (), "DARK": ("temperature",), "FLAT": ("fiber_state",), "DOUBLE": ("fiber_state",)}
MINIMUM = {"BIAS": "min_bias", "DARK": "min_dark", "FLAT": "min_flat", "DOUBLE": "min_double"}


def calibration_sets(ctype: str, source: str):
    keys = SET_KEYS + EXTRA_KEYS[ctype]

    def items(ctx) -> list[dict]:
        sets: dict[tuple, list[str]] = {}
        for r in ctx.table(source, columns=[*keys, "filename"]).to_pylist():
            sets.setdefault(tuple(r[k] for k in keys), []).append(r["filename"])
        return [{"type": ctype, **dict(zip(keys, k)), "frames": sorted(v)} for k, v in sorted(sets.items())]

    items.__name__ = f"{ctype.lower()}_sets"
    return items


def stack_one(ctx, item: dict, source: str) -> dict:
    ctype = item["type"]
    need = getattr(ctx.settings, MINIMUM[ctype])
    if len(item["frames"]) < need:
        raise ItemError(f"{len(item['frames'])} {ctype} frame(s) on {item['day_obs']} ({item.get('fiber_state', '')}), "
                        f"{need} needed: the nearest earlier master stays in use")
    rows = sorted(ctx.rows(source, where={"filename": item["frames"]}), key=lambda r: r["dateobs"])
    images = [fits.getdata(ctx.run_dir / r["path"]).astype(np.float32) for r in rows]
    if ctype == "DARK":
        images = [im / np.float32(r["exptime"]) for im, r in zip(images, rows)]
    master, count = sigma_clipped_stack(images)
    rn = read_noise(images) if ctype == "BIAS" and len(images) >= 2 else float("nan")
    times = [datetime.fromisoformat(r["dateobs"]) for r in rows]
    mean_time = datetime.fromtimestamp(np.mean([t.timestamp() for t in times]), tz=timezone.utc)
    state = f"_{item['fiber_state']}" if "fiber_state" in item else ""
    name = f"{item['site']}{item['instrument']}_{item['camera']}_{ctype.lower()}_{item['day_obs']}{state}.fits"
    attrs = {k: item[k] for k in ("site", "instrument", "camera", "binning", "mode", *EXTRA_KEYS[ctype])}
    path = ctx.register_calibration(ctype, reduced_path(item, ctype, name), mean_time, attrs,
                                    frames=[r["filename"] for r in rows])
    head = fits.Header()
    head["OBSTYPE"], head["NFRAMES"], head["DAY-OBS"] = ctype, len(rows), item["day_obs"]
    head["DATE-OBS"] = mean_time.isoformat()
    head["BUNIT"] = "electron/s" if ctype == "DARK" else "electron"
    if np.isfinite(rn):
        head["RDNOISE"] = (rn, "[e-] from pairs of the stacked frames")
    ctx.stamp_fits(head)
    write_image(path, np.nan_to_num(master), head, [fits.ImageHDU(count, name="NFRAMES")])
    return {"type": ctype, "filename": name, "day_obs": item["day_obs"], "dateobs": mean_time.isoformat(),
            "site": item["site"], "instrument": item["instrument"], "camera": item["camera"],
            "binning": item["binning"], "mode": item["mode"], "fiber_state": item.get("fiber_state", ""), "n_frames": len(rows), "good_after": times[0].isoformat(),
            "good_until": times[-1].isoformat(), "read_noise": rn, "median": float(np.nanmedian(master)),
            "path": str(path.relative_to(ctx.run_dir))}


def stack_step(name: str, ctype: str, source: str) -> FanOut:
    return FanOut(name, inputs=(source,), items=calibration_sets(ctype, source),
                  process=lambda ctx, item: stack_one(ctx, item, source),
                  key=("type", *SET_KEYS, *EXTRA_KEYS[ctype]), schema=SCHEMA, shard_size=1,
                  resources=Resources(cpu="1", memory="4Gi"),
                  doc=f"{__doc__.splitlines()[0]} ({ctype} masters from {source}).")


stack_bias = stack_step("stack_bias", "BIAS", "reduce_bias")
stack_dark = stack_step("stack_dark", "DARK", "reduce_dark")
stack_flat = stack_step("stack_flat", "FLAT", "reduce_flat")
stack_arc = stack_step("stack_arc", "DOUBLE", "reduce_arc")
