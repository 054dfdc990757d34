"""The night's calibration products in one table (``RUNDIR/calibrations/``): what a look at the
night directory and the check plots told before.

One row per product of the night (the master bias of each ADC speed, the trace match, the
hexagonal grid, the wavelength solution, the 3D flat, the fluxcal linked in): the night, the
product's file name, its status (``complete``/``partial``: made tonight from a complete or
partial set; ``fallback``: tonight's set was too small or its solution failed, and an earlier
night's product is used, looked up as :mod:`steps.sedm.fallback` does; ``waiting``: tonight's set
still waits for frames before the night's deadline; ``missing``: none of these;
the fluxcal: ``linked`` or ``missing``), ``fallback_from`` (the night of the product used
instead), ``wave_rms`` (the median per-spaxel rms of the wavelength solution used, A), the
number of frames of a master bias, the file and why it is not tonight's.
"""

from __future__ import annotations

import pyarrow as pa

from astroflow.calib import NoCalibration
from astroflow.errors import Skip
from astroflow.step import Step
from steps.sedm import sets
from steps.sedm.calibrations import BIAS, bias_attributes, bias_name, observed
from steps.sedm.fallback import PRODUCTS, resolve
from steps.sedm.science.wavesolution import GeometrySolutionFailed

SCHEMA = pa.schema([
    ("night", pa.string()), ("product", pa.string()), ("status", pa.string()), ("fallback_from", pa.string()),
    ("wave_rms", pa.float64()), ("n_frames", pa.int32()), ("path", pa.string()), ("message", pa.string()),
])


def products(ctx) -> list[dict]:
    date = ctx.settings.date
    rows = ctx.table("night").to_pylist()
    made = {r["set"]: r for r in ctx.table("master_bias").to_pylist()}
    out = []
    for name, frames in sets.night_sets(rows).items():
        if not name.startswith("bias_"):
            continue
        speed = float(name.split("_", 1)[1])
        product = bias_name(speed)
        if name in made:
            m = made[name]
            out.append({"night": date, "product": product, "status": m["status"], "fallback_from": "",
                        "wave_rms": float("nan"), "n_frames": m["n_frames"], "path": m["path"], "message": ""})
            continue
        st = sets.night_state(ctx, name, frames)
        ifu = [r for r in rows if r["camera"] == "IFU" and abs(r["adcspeed"] - speed) < 1e-6]
        status, origin, path = "waiting" if st.status == "waiting" else "missing", "", ""
        if ifu and st.status != "waiting":
            first = min(ifu, key=lambda r: r["mjd_obs"])
            try:
                chosen = ctx.calibration(BIAS, observed(first), **bias_attributes(first))
                status, path = "fallback", str(chosen)
                used = [u for u in ctx.calibrations_used.get(ctx.step, []) if u["path"] == str(chosen)]
                origin = used[0]["dateobs"][:10].replace("-", "") if used else ""
            except NoCalibration:
                pass
        out.append({"night": date, "product": product, "status": status, "fallback_from": origin,
                    "wave_rms": float("nan"), "n_frames": st.present, "path": path, "message": st.message()})
    for product in PRODUCTS:
        try:
            r = resolve(ctx, product)
        except (GeometrySolutionFailed, Skip) as exc:
            _, step, name, suffix = PRODUCTS[product]
            r = {"product": f"{name(date)}{suffix}", "status": "waiting" if isinstance(exc, Skip) else "missing",
                 "fallback_from": "", "wave_rms": float("nan"), "path": "", "message": str(exc)}
        out.append({"night": date, "product": r["product"], "status": r["status"], "fallback_from": r["fallback_from"],
                    "wave_rms": r["wave_rms"], "n_frames": 0, "path": r["path"], "message": r["message"]})
    for r in ctx.rows("fluxcal_link"):
        out.append({"night": date, "product": r["product"] or "fluxcal", "status": r["status"],
                    "fallback_from": r["fallback_from"], "wave_rms": float("nan"), "n_frames": 0, "path": r["path"],
                    "message": r["message"]})
    return out


calibrations = Step("calibrations", inputs=("night", "master_bias", "geometry", "hexagrid", "wavesolution", "flat",
                                                    "fluxcal_link"), run=products, schema=SCHEMA,
                    doc=__doc__)
