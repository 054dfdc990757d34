"""Runbook step 4 (r1, rpbias, imcmb, imbox2, rtrap): monthly master bias and charge traps.

Fans out over (month, spectrograph, controller, amplifier), the job list r1.${mth} ran.  All zero
frames of the month: overscan subtracted and trimmed; frames whose biweight scale in
[300:700, 300:700] is outside 2-10 ADU are rejected; per-pixel biweight combine; 1 x 7 biweight
box.  The extreme charge traps are found in the smoothed master bias (rtrap0).  The master bias
(with its trap mask and read noise) goes to ``lib_calib/lib_mbias/{month}/`` and the traps also
to ``traps.tab`` beside it.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from astropy.io import fits
from astropy.stats import biweight_location

from astroflow.atomic import write_text
from astroflow.errors import ItemError
from astroflow.step import FanOut, Resources, StepParams
from steps.hetdex import library
from steps.hetdex.common import frames, mbias_name, month_selected, write_fits
from steps.hetdex.rawdata import read_frame
from steps.hetdex.science import ccd


class BiasParams(StepParams):
    min_scale: float = 2.0
    max_scale: float = 10.0
    trap_sigma: float = 10.0
    trap_min_hits: int = 50


SCHEMA = pa.schema([
    ("month", pa.string()), ("specid", pa.string()), ("contid", pa.string()), ("ifuslot", pa.string()),
    ("amp", pa.string()), ("n_frames", pa.int32()), ("n_rejected", pa.int32()), ("level", pa.float64()),
    ("read_noise", pa.float64()), ("n_traps", pa.int32()),
    ("traps", pa.list_(pa.struct([("column", pa.int32()), ("first_row", pa.int32()), ("mask_from", pa.int32()),
                                  ("n_hits", pa.int32())]))),
    ("path", pa.string()),
])


def groups(ctx) -> list[dict]:
    seen = {}
    for r in frames(ctx, kind="zro"):
        month = r["date"][:6]
        if month_selected(ctx, month):
            seen.setdefault((month, r["specid"], r["contid"], r["amp"]), r["ifuslot"])
    return [{"month": m, "specid": s, "contid": c, "amp": a, "ifuslot": slot} for (m, s, c, a), slot in sorted(seen.items())]


def master_bias_one(ctx, item) -> dict:
    rows = [r for r in frames(ctx, kind="zro", amp=item["amp"], contid=item["contid"], specid=item["specid"])
            if r["date"][:6] == item["month"]]
    p = ctx.params
    kept, rejected, members = [], 0, []
    for r in rows:
        f = ccd.trim(read_frame(ctx.uses(r["tar"]), r["member"]))
        s = ccd.frame_scale(f)
        if p.min_scale <= s <= p.max_scale:
            kept.append(f)
            members.append(r["member"])
        else:
            rejected += 1
            ctx.log.info("zero %s rejected: scale %.2f", r["member"], s)
    if not kept:
        raise ItemError(f"no good zero frames for {item} ({rejected} rejected)")
    stack = np.stack(kept)
    rn = ccd.read_noise(kept)
    mb = ccd.box_1x7(ccd.combine(stack))
    traps = ccd.find_traps(mb, nsigma=p.trap_sigma, min_hits=p.trap_min_hits)
    mask = np.zeros(mb.shape, np.uint8)
    for t in traps:
        mask[t["mask_from"]:, t["column"]] = 1
    level = float(biweight_location(mb[ccd.CENTRAL]))
    head = fits.Header()
    head["MONTH"], head["SPECID"], head["CONTID"], head["AMP"] = item["month"], item["specid"], item["contid"], item["amp"]
    head["NFRAMES"], head["RDNOISE"], head["BIASLEV"] = len(kept), rn, level
    name = mbias_name(item["specid"], item["contid"], item["amp"])
    rel = library.rel("lib_mbias", item["month"], name)
    path = ctx.register_calibration("bias", rel, library.month_start(item["month"]),
                                    {k: item[k] for k in ("specid", "contid", "amp")}, frames=members)
    write_fits(path, [fits.PrimaryHDU(mb, head), fits.ImageHDU(mask, name="TRAPMASK")], ctx=ctx)
    if traps:
        text = "".join(f"{item['specid']} {item['contid']} {item['amp']} {t['column'] + 1} {t['mask_from'] + 1} {t['n_hits']}\n"
                       for t in traps)
        write_text(ctx.product(library.rel("lib_mbias", item["month"], name.replace(".fits", ".traps"))), text)
    return {**{k: item[k] for k in ("month", "specid", "contid", "ifuslot", "amp")}, "n_frames": len(kept),
            "n_rejected": rejected, "level": level, "read_noise": rn, "n_traps": len(traps), "traps": traps,
            "path": str(rel)}


master_bias = FanOut(
    "master_bias",
    inputs=("inventory",),
    params=BiasParams,
    items=groups,
    process=master_bias_one,
    key=("month", "specid", "contid", "amp"),
    schema=SCHEMA,
    shard_size=4,
    resources=Resources(cpu="1", memory="4Gi"),
    doc=__doc__,
)
