"""Runbook, pre-science step 7: "The most recent fluxcal fits file is linked in, usually from the
previous night."

One item per night: the calibration library's FLUXCAL look-up (only those made before the
night's first IFU frame; the nearest earlier one, recorded as a fallback when it is older than a
day) gives the most recent ``fluxcal_*.fits`` that no one marked bad, linked into the night
directory under its own name.  Tonight's standards make tonight's fluxcal later; the science
frames take the one nearest in MJD_OBS through the same library.  With none in the library the
row says ``missing``: the night's spectra are flagged uncalibrated until a standard is reduced.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from astroflow.calib import NoCalibration
from astroflow.step import FanOut
from steps.sedm.calibrations import FLUXCAL, look_up, night_of, observed
from steps.sedm.writer import link, night_dir

SCHEMA = pa.schema([
    ("item", pa.string()), ("product", pa.string()), ("status", pa.string()), ("fallback_from", pa.string()),
    ("path", pa.string()), ("message", pa.string()),
])


def night_item(ctx) -> list[dict]:
    return [{"item": f"fluxcal_{ctx.settings.date}"}]


def link_fluxcal(ctx, item: dict) -> dict:
    row = {"item": item["item"], "product": "", "status": "missing", "fallback_from": "", "path": "", "message": ""}
    ifu = [r for r in ctx.rows("night", columns=["camera", "mjd_obs"]) if r["camera"] == "IFU"]
    if not ifu:
        row["message"] = "the night has no IFU frame"
        return row
    try:
        chosen, used = look_up(ctx, FLUXCAL, observed(min(ifu, key=lambda r: r["mjd_obs"])))
    except NoCalibration as exc:
        row["message"] = f"no fluxcal: the spectra are flagged uncalibrated ({exc.reason.splitlines()[0]})"
        return row
    rel = night_dir(ctx.settings) / Path(chosen).name
    link(Path(chosen), ctx.product(rel), ctx.settings.raw_roots())
    return {**row, "product": Path(chosen).name, "status": "linked", "fallback_from": night_of(used["dateobs"]),
            "path": str(rel), "message": used["reason"]}


fluxcal_link = FanOut("fluxcal_link", inputs=("night",), items=night_item, process=link_fluxcal, key=("item",),
                      schema=SCHEMA, shard_size=1, doc=__doc__)
