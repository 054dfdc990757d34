"""Runbook steps 1-2 (rstep1, rgetrep, run1/rgetsci1): the list of FITS files in every tar.

Fans out over the tar files under the data root (one per exposure); each amplifier FITS becomes a
row with its header values (IFU, spectrograph, controller, amp, kind, exposure time, pointing).
A corrupt tar is recorded with its name and the others go on; repeat files (the same member in
two tars) are dropped by later steps, which key frames by (date, obs, exp, ifuslot, amp).
"""

from __future__ import annotations

import pyarrow as pa

from astroflow.step import FanOut, Resources
from steps.hetdex.rawdata import find_tars, tar_members

SCHEMA = pa.schema([
    ("tar", pa.string()), ("member", pa.string()), ("date", pa.string()), ("obs", pa.int32()), ("exp", pa.int32()),
    ("stamp", pa.string()), ("ifuslot", pa.string()), ("amp", pa.string()), ("kind", pa.string()),
    ("specid", pa.string()), ("ifuid", pa.string()), ("contid", pa.string()), ("gain", pa.float64()),
    ("exptime", pa.float64()), ("darktime", pa.float64()), ("mjd", pa.float64()), ("object", pa.string()),
    ("ra", pa.float64()), ("dec", pa.float64()), ("pa", pa.float64()), ("ut", pa.string()),
    ("structaz", pa.float64()), ("ambtemp", pa.float64()), ("humidity", pa.float64()),
    ("dewpoint", pa.float64()), ("pressure", pa.float64()),
])


def tars(ctx) -> list[dict]:
    months = set(ctx.settings.months)
    shots = {s[:8] for s in ctx.settings.shots}
    out = []
    for p in find_tars(ctx.settings.data_root):
        date = p.parent.parent.name
        if months and date[:6] not in months and date not in shots:
            continue
        out.append({"path": str(p), "name": f"{date}/{p.name}"})
    return out


inventory = FanOut(
    "inventory",
    items=tars,
    process=lambda ctx, item: tar_members(ctx.uses(item["path"])),
    key=("name",),
    schema=SCHEMA,
    shard_size=20,
    resources=Resources(cpu="1", memory="1Gi"),
    doc=__doc__,
)
