"""Runbook, pre-science step 6: "If there is a failure in the geometry solution, geometry files
from previous runs are linked in."

One item per nightly geometry product (the trace match, the hexagonal grid, the wavelength
solution, the 3D flat).  When
tonight's was made (complete or partial set), nothing is done.  When it failed
(``GeometrySolutionFailed``: too few arc lines or frames, the rms over the limit, too few good
spaxels; or no trace match from too few dome flats), the calibration library's look-up for the
night (the product's type, the frame size; the policy's fallback: the nearest earlier good one)
gives the latest good night's file, which is linked into the night directory under its own name
(``20240610_WaveSolution.fits`` in ``redux/20240611/``) when it is at most ``fallback_nights``
old; the row records where it came from.  While tonight's sets still wait for frames (before the
night's calibration deadline) nothing falls back: the item is skipped with the reason.  The steps that use the product look it up the same
way, so they take the same file.  With no earlier night within reach the item fails with
``GeometrySolutionFailed`` (shown by ``astroflow status``); the step is a leaf, so the night goes
on.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
from astropy.io import fits

from astroflow.calib import NoCalibration
from astroflow.errors import Skip
from astroflow.step import FanOut
from steps.sedm import sets
from steps.sedm import flat as flat_step
from steps.sedm import geometry as geometry_step
from steps.sedm import hexagrid as grid_step
from steps.sedm import wavesolution as wave_step
from steps.sedm.calibrations import (FLAT, HEXAGRID, TRACEMATCH, WAVESOLUTION, frame_attributes, look_up, night_of,
                                     observed)
from steps.sedm.science.wavesolution import GeometrySolutionFailed
from steps.sedm.writer import link, night_dir

SCHEMA = pa.schema([
    ("product", pa.string()), ("type", pa.string()), ("status", pa.string()), ("fallback_from", pa.string()),
    ("wave_rms", pa.float64()), ("path", pa.string()), ("message", pa.string()),
])
# product -> (calibration type, the step that makes it tonight, its product name, suffix)
# product -> the afternoon sets it is made from (it waits while they do)
NEEDS = {"TraceMatch": ("dome",), "HexaGrid": ("dome",), "WaveSolution": sets.LAMP_SETS, "Flat": sets.LAMP_SETS}
PRODUCTS = {
    "TraceMatch": (TRACEMATCH, "geometry", geometry_step.product_name, ".json"),
    "HexaGrid": (HEXAGRID, "hexagrid", grid_step.product_name, ".json"),
    "WaveSolution": (WAVESOLUTION, "wavesolution", wave_step.product_name, ".fits"),
    "Flat": (FLAT, "flat", flat_step.product_name, ".fits"),
}
MADE = ("complete", "partial")


def night_products(ctx) -> list[dict]:
    return [{"product": name} for name in PRODUCTS]


def tonight(ctx, product: str) -> dict:
    """Tonight's row of the step that makes ``product`` (status ``missing`` when it made none)."""
    step = PRODUCTS[product][1]
    rows = ctx.rows(step)
    if not rows:  # geometry skips a night with too few dome flats
        return {"status": "missing", "message": "no dome flats to trace (too few frames)", "path": "",
                "median_rms": float("nan")}
    if step == "geometry":  # one row per trace
        return {**rows[0], "message": f"{len(rows)} traces"}
    return rows[0]


def resolve(ctx, product: str) -> dict:
    """Tonight's ``product``, else the latest good night's within ``fallback_nights``: the
    calibrations-table row (without its night); raises :class:`GeometrySolutionFailed`, or
    ``Skip`` while tonight's sets still wait for frames (no fallback before the deadline)."""
    ctype, _, name, suffix = PRODUCTS[product]
    made = tonight(ctx, product)
    file = f"{name(ctx.settings.date)}{suffix}"
    if made["status"] not in MADE:
        for st in sets.waiting(ctx, NEEDS[product]):
            raise Skip(f"{file}: tonight's {st.message()}")
    if made["status"] in MADE:
        return {"product": file, "type": ctype, "status": made["status"], "fallback_from": "",
                "wave_rms": float(made.get("median_rms", float("nan"))), "path": made["path"],
                "message": made.get("message") or ""}
    why = made.get("message") or "not made tonight"
    ifu = [r for r in ctx.rows("night", columns=["camera", "mjd_obs", "nx", "ny"]) if r["camera"] == "IFU"]
    if not ifu:
        raise GeometrySolutionFailed(f"{file}: {why}; the night has no IFU frame to look an earlier one up for")
    first = min(ifu, key=lambda r: r["mjd_obs"])
    at = observed(first)
    try:
        chosen, used = look_up(ctx, ctype, at, ctx.settings.fallback_nights, **frame_attributes(first))
    except NoCalibration as exc:
        raise GeometrySolutionFailed(f"{file}: {why}; no earlier night's {product}: "
                                     f"{exc.reason.splitlines()[0]}") from None
    rms = float("nan")
    if ctype == WAVESOLUTION:
        rms = float(fits.getval(chosen, "MEDRMS"))
    return {"product": file, "type": ctype, "status": "fallback", "fallback_from": night_of(used["dateobs"]),
            "wave_rms": rms, "path": str(chosen), "message": why}


def link_in(ctx, item: dict) -> dict:
    row = resolve(ctx, item["product"])
    if row["status"] == "fallback":
        target = Path(row["path"])
        rel = night_dir(ctx.settings) / target.name
        link(target, ctx.product(rel), ctx.settings.raw_roots())
        row["path"] = str(rel)
    return row


fallback = FanOut("fallback", inputs=("night", "geometry", "hexagrid", "wavesolution", "flat"), items=night_products,
                  process=link_in,
                  key=("product",), schema=SCHEMA, shard_size=len(PRODUCTS), doc=__doc__)
