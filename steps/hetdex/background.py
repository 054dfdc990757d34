"""Runbook step 5 (rall${mth}: rpsci0kg, rptwi0kg, improcn, imcmb, imgetgap): background models.

Fans out over (month, spectrograph, amplifier).  Science and twilight frames are bias subtracted,
normalised by their level (central biweight / 25) and sorted: twi (level > 100), bri (3-100),
sci (0.2 < level < 3); each set is biweight-combined and the light in the inter-fiber gaps is
fitted by a smooth surface, stored per unit level in ``lib_bkg/{month}/bkg_{specid}_{amp}.fits``
(extensions SCI, BRI, TWI; a missing set copies its neighbour).  At reduction the model is
interpolated in level (1, 5, 25) and scaled by the frame's level.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from astropy.io import fits

from astroflow.errors import ItemError
from astroflow.step import FanOut, Resources
from steps.hetdex import library
from steps.hetdex.common import bkg_name, frames, month_selected, processed, write_fits
from steps.hetdex.science import ccd

KINDS = {"sci": 1.0, "bri": 5.0, "twi": 25.0}
SCHEMA = pa.schema([("month", pa.string()), ("specid", pa.string()), ("ifuslot", pa.string()), ("amp", pa.string()),
                    ("n_sci", pa.int32()), ("n_bri", pa.int32()), ("n_twi", pa.int32()), ("gap_fraction", pa.float64()),
                    ("path", pa.string())])


def groups(ctx) -> list[dict]:
    seen = {}
    for r in frames(ctx, kind=["sci", "twi"]):
        if month_selected(ctx, r["date"][:6]):
            seen.setdefault((r["date"][:6], r["specid"], r["amp"]), r["ifuslot"])
    return [{"month": m, "specid": s, "amp": a, "ifuslot": slot} for (m, s, a), slot in sorted(seen.items())]


def classify(level: float) -> str | None:
    if level > 100:
        return "twi"
    if level >= 3:
        return "bri"
    if level > 0.2:
        return "sci"
    return None


def background_one(ctx, item) -> dict:
    rows = [r for r in frames(ctx, kind=["sci", "twi"], specid=item["specid"], amp=item["amp"]) if r["date"][:6] == item["month"]]
    sets: dict[str, list] = {k: [] for k in KINDS}
    for r in rows:
        img, _ = processed(ctx, r)
        lev = ccd.frame_level(img)
        kind = classify(lev)
        if kind:
            sets[kind].append(img / lev)
    models, fracs = {}, []
    for kind, imgs in sets.items():
        if imgs:
            comb = ccd.combine(np.stack(imgs))
            models[kind] = ccd.gap_background(comb)
            fracs.append(float(np.nanmedian(models[kind]) / max(np.nanmedian(comb), 1e-6)))
    if not models:
        raise ItemError(f"no science or twilight frames for background {item}")
    order = list(KINDS)
    hdus = [fits.PrimaryHDU()]
    for kind in order:
        near = min(models, key=lambda k: abs(order.index(k) - order.index(kind)))
        hdus.append(fits.ImageHDU(models[near], name=kind.upper()))
    rel = library.rel("lib_bkg", item["month"], bkg_name(item["specid"], item["amp"]))
    write_fits(ctx.register_calibration("bkg", rel, library.month_start(item["month"]),
                                        {"specid": item["specid"], "amp": item["amp"]}), hdus, ctx=ctx)
    return {**item, "n_sci": len(sets["sci"]), "n_bri": len(sets["bri"]), "n_twi": len(sets["twi"]),
            "gap_fraction": float(np.mean(fracs)), "path": str(rel)}


def model_for(path, level: float) -> np.ndarray:
    """The background of a frame of ``level``: models interpolated in log level, times level."""
    with fits.open(path) as h:
        ms = {k: h[k.upper()].data.astype(np.float32) for k in KINDS}
    lv = np.log(np.clip(level, 1.0, 25.0))
    pts = [(np.log(v), k) for k, v in KINDS.items()]
    for (l0, k0), (l1, k1) in zip(pts[:-1], pts[1:]):
        if lv <= l1:
            w = (lv - l0) / (l1 - l0)
            return level * ((1 - w) * ms[k0] + w * ms[k1])
    return level * ms["twi"]


background = FanOut(
    "background",
    inputs=("inventory", "master_bias", "pixel_flat"),
    items=groups,
    process=background_one,
    key=("month", "specid", "amp"),
    schema=SCHEMA,
    shard_size=4,
    resources=Resources(cpu="1", memory="4Gi"),
    doc=__doc__,
)
