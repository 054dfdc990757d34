"""Chenxu's flats (rsetflat, rt3, Pixel_flat_masks.ipynb): pixel flats per camera and amp, and the
bad-pixel table.

Fans out over (spectrograph, amplifier): the month's LDLS flats are bias subtracted, combined
and divided by their smooth along-dispersion model; values < 0.666 are set to 0.  The zeroed
pixels are grouped into boxes, the rows ``amp x1 x2 y1 y2`` (e.g. ``311RU 538 556 737 755``)
of ``lib_calib/lib_pflat/pix_mask.tab`` (written by ``bad_pixels``).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from astropy.io import fits

from astroflow.atomic import write_text
from astroflow.errors import ItemError
from astroflow.step import FanOut, Resources, Step
from steps.hetdex import library
from steps.hetdex.common import frames, month_selected, pflat_name, processed, write_fits
from steps.hetdex.science import ccd

SCHEMA = pa.schema([
    ("specid", pa.string()), ("ifuslot", pa.string()), ("amp", pa.string()), ("n_frames", pa.int32()),
    ("n_bad_pixels", pa.int64()), ("boxes", pa.list_(pa.list_(pa.int32()))), ("path", pa.string()),
])


def cameras(ctx) -> list[dict]:
    seen = {}
    for r in frames(ctx, kind="flt"):
        if month_selected(ctx, r["date"][:6]):
            seen.setdefault((r["specid"], r["amp"]), r["ifuslot"])
    return [{"specid": s, "amp": a, "ifuslot": slot} for (s, a), slot in sorted(seen.items())]


def pixel_flat_one(ctx, item) -> dict:
    rows = [r for r in frames(ctx, kind="flt", specid=item["specid"], amp=item["amp"]) if month_selected(ctx, r["date"][:6])]
    if not rows:
        raise ItemError(f"no flats for cam{item['specid']} {item['amp']}")
    imgs = [processed(ctx, r)[0] for r in rows]
    flat = ccd.combine(np.stack(imgs))
    pf = ccd.pixel_flat(flat)  # NaN (trap-masked) pixels are left at 1: the trap mask covers them
    boxes = ccd.bad_pixel_boxes(pf)
    rel = library.rel("lib_pflat", None, pflat_name(item["specid"], item["amp"]))
    head = fits.Header()
    head["SPECID"], head["AMP"], head["NFRAMES"] = item["specid"], item["amp"], len(rows)
    path = ctx.register_calibration("pixflat", rel, library.night(rows[0]["date"]),
                                    {"specid": item["specid"], "amp": item["amp"]}, frames=[r["member"] for r in rows])
    write_fits(path, [fits.PrimaryHDU(pf, head)], ctx=ctx)
    return {**item, "n_frames": len(rows), "n_bad_pixels": int((pf == 0).sum()), "boxes": [list(b) for b in boxes],
            "path": str(rel)}


pixel_flat = FanOut(
    "pixel_flat",
    inputs=("inventory", "master_bias"),
    items=cameras,
    process=pixel_flat_one,
    key=("specid", "amp"),
    schema=SCHEMA,
    shard_size=4,
    resources=Resources(cpu="1", memory="4Gi"),
    doc=__doc__,
)


def write_mask_table(ctx):
    """Pixel_flat_masks.ipynb: ``lib_pflat/pix_mask.tab`` with one box per row."""
    rows = sorted(ctx.rows("pixel_flat"), key=lambda r: (r["specid"], r["amp"]))
    out = []
    for r in rows:
        for x1, x2, y1, y2 in r["boxes"]:
            out.append({"amp": f"{r['specid']}{r['amp']}", "x1": x1, "x2": x2, "y1": y1, "y2": y2})
    text = "amp x1 x2 y1 y2\n" + "".join(f"{b['amp']} {b['x1']} {b['x2']} {b['y1']} {b['y2']}\n" for b in out)
    write_text(ctx.product(library.rel("lib_pflat", None, "pix_mask.tab")), text)
    return out


bad_pixels = Step(
    "bad_pixels",
    inputs=("pixel_flat",),
    run=write_mask_table,
    schema=pa.schema([("amp", pa.string()), ("x1", pa.int32()), ("x2", pa.int32()), ("y1", pa.int32()), ("y2", pa.int32())]),
    doc="Chenxu 1.4 (Pixel_flat_masks.ipynb): the bad-pixel table amp x1 x2 y1 y2.",
)
