"""The night's calibration products in one table (``RUNDIR/calibrations/``): what a look at the
night directory and the check plots told before.

One row per product of the night (so far the master bias of each ADC speed and the trace
match): the night, the product's file name, its status (``complete``/``partial``: made tonight from a complete or
partial set; ``fallback``: tonight's set was too small and an earlier night's master is used;
``missing``: neither), ``fallback_from`` (the night of the master used instead), ``wave_rms``
(the wavelength solution's rms, for the products that have one), the frames it was made from
and the file.
"""

from __future__ import annotations

import pyarrow as pa

from astroflow.calib import NoCalibration
from astroflow.step import Step
from steps.sedm import sets
from steps.sedm.calibrations import BIAS, TRACEMATCH, bias_attributes, bias_name, observed
from steps.sedm.geometry import product_name

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
        st = sets.state(name, frames, ctx.settings)
        ifu = [r for r in rows if r["camera"] == "IFU" and abs(r["adcspeed"] - speed) < 1e-6]
        status, origin, path = "missing", "", ""
        if ifu:
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
    out.append(_trace_match(ctx, rows))
    return out


def _trace_match(ctx, rows: list[dict]) -> dict:
    name = product_name(ctx.settings.date)
    traces = ctx.table("geometry").to_pylist()
    if traces:
        t = traces[0]
        return {"night": ctx.settings.date, "product": f"{name}.json", "status": t["status"], "fallback_from": "",
                "wave_rms": float("nan"), "n_frames": t["n_frames"], "path": t["path"],
                "message": f"{len(traces)} traces"}
    domes = [r for r in rows if r["kind"] == "dome"]
    st = sets.state("dome", domes, ctx.settings)
    status, origin, path = "missing", "", ""
    ifu = [r for r in rows if r["camera"] == "IFU"]
    if ifu:
        first = min(ifu, key=lambda r: r["mjd_obs"])
        try:
            chosen = ctx.calibration(TRACEMATCH, observed(first), nx=int(first["nx"]), ny=int(first["ny"]))
            used = [u for u in ctx.calibrations_used.get(ctx.step, []) if u["path"] == str(chosen)]
            status, path = "fallback", str(chosen)
            origin = used[0]["dateobs"][:10].replace("-", "") if used else ""
        except NoCalibration:
            pass
    return {"night": ctx.settings.date, "product": f"{name}.json", "status": status, "fallback_from": origin,
            "wave_rms": float("nan"), "n_frames": st.present, "path": path, "message": st.message()}


calibrations = Step("calibrations", inputs=("night", "master_bias", "geometry"), run=products, schema=SCHEMA,
                    doc=__doc__)
