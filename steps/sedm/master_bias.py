"""Runbook, pre-science step 3: "Once all the bias files are acquired the master biases are
generated" (sedmpy's ``bias0.1.fits`` and ``bias2.0.fits``).

One item per ADC speed.  The set waits for its announced size (``Calib: bias n of 10``) or the
configured ideal count; a set with fewer frames is used down to the configured minimum, and
below it no master is made tonight (the item is skipped with the reason; ``calibration_sets``
reports it as a named error, and the frames at that speed take an earlier night's master as a
recorded fallback, else the overscan alone).  Each frame: the per-row overscan median (columns
from ``OSCANX0``/``OSCANX1``, else 2045-2048), median-smoothed over 50 rows, subtracted, times
GAIN: electrons above the overscan.  The master is their mean with each pixel's lowest and
highest value rejected when there are more than 7 frames, else their median.  The read noise
is measured from pairs of raw frames.  The master goes to the night directory and into the
calibration library (type BIAS, by ADC speed and frame size).
"""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pyarrow as pa
from astropy.io import fits

from astroflow.errors import ItemError, Skip
from astroflow.step import FanOut, Resources
from steps.sedm import sets
from steps.sedm.calibrations import BIAS, bias_attributes, bias_name, observed
from steps.sedm.science import ccd
from steps.sedm.writer import image_hdu, night_dir, write_fits

SCHEMA = pa.schema([
    ("set", pa.string()), ("adcspeed", pa.float64()), ("status", pa.string()), ("n_frames", pa.int32()),
    ("announced", pa.int32()), ("combine", pa.string()), ("read_noise_e", pa.float64()),
    ("level_adu", pa.float64()), ("mean_e", pa.float64()), ("dateobs", pa.string()), ("nx", pa.int32()),
    ("ny", pa.int32()), ("path", pa.string()),
])


def bias_sets(ctx) -> list[dict]:
    rows = ctx.table("night", columns=["filename", "camera", "kind", "set", "adcspeed", "set_size"]).to_pylist()
    out = []
    for name, frames in sets.night_sets(rows).items():
        if name.startswith("bias_"):
            out.append({"set": name, "adcspeed": float(name.split("_", 1)[1]),
                        "frames": sorted(r["filename"] for r in frames)})
    return out


def make_master(ctx, item: dict) -> dict:
    rows = sorted(ctx.rows("night", where={"filename": item["frames"]}), key=lambda r: r["mjd_obs"]) \
        if item["frames"] else []
    st = sets.night_state(ctx, item["set"], rows)
    if st.status == "waiting":
        raise Skip(st.message())
    if st.status == "too_few":
        raise Skip(f"TooFewFrames: {st.message()}: no master bias tonight")
    shapes = {(r["ny"], r["nx"], r["oscan_x0"], r["oscan_x1"], r["pscan_x1"]) for r in rows}
    if len(shapes) > 1:
        raise ItemError(f"{item['set']}: the bias frames differ in size or overscan columns: {sorted(shapes)}")
    ny, nx, o0, o1, p1 = shapes.pop()
    gains = {float(r["gain"]) for r in rows}
    if len(gains) > 1:
        raise ItemError(f"{item['set']}: the bias frames differ in GAIN: {sorted(gains)}")
    gain = gains.pop()
    raws = [fits.getdata(ctx.uses(r["path"])) for r in rows]
    debiased = [ccd.debias(raw, o0, o1, gain) for raw in raws]
    master, how = ccd.stack_bias(debiased, ctx.settings.minmax_above)
    imaging = slice(p1, o0)
    rn = ccd.read_noise(raws, imaging, gain)
    overscan = float(np.mean([np.median(raw[:, o0:o1]) for raw in raws]))
    mean_e = float(np.mean(master[:, imaging]))
    level = overscan + mean_e / gain
    times = [observed(r) for r in rows]
    mean_time = datetime.fromtimestamp(float(np.mean([t.timestamp() for t in times])), tz=timezone.utc)
    name = bias_name(item["adcspeed"])
    rel = night_dir(ctx.settings) / name
    path = ctx.register_calibration(BIAS, rel, mean_time, bias_attributes(rows[0]),
                                    frames=[r["path"] for r in rows])
    head = fits.Header()
    head["OBJECT"] = (f"master bias {item['adcspeed']:.1f} MHz", "")
    head["IMGTYPE"] = "bias"
    head["ADCSPEED"] = (item["adcspeed"], "ADC speed (MHz)")
    head["BUNIT"] = ("electron", "above the overscan")
    head["GAIN"] = (1.0, f"GAIN adjusted (was {gain})")
    head["NCOMBINE"] = (len(rows), "number of images combined")
    head["COMBTYPE"] = (how, "min/max rejection above 7 frames")
    head["RDNOISE"] = (rn, "[e-] from pairs of raw frames")
    head["BIASLEV"] = (level, "[ADU] overscan + master mean/gain")
    head["OSCANX0"], head["OSCANX1"] = o0, o1
    head["DATE-OBS"] = mean_time.strftime("%Y-%m-%dT%H:%M:%S")
    head["SETSTAT"] = (st.status, f"{st.present} of {st.target}")
    for i, r in enumerate(rows, 1):
        head[f"IMCMB{i:03d}"] = r["filename"]
    ctx.stamp_fits(head)
    write_fits(path, ctx.settings.raw_roots(), [image_hdu(master, head)])
    return {"set": item["set"], "adcspeed": item["adcspeed"], "status": st.status, "n_frames": len(rows),
            "announced": st.announced, "combine": how, "read_noise_e": rn, "level_adu": level, "mean_e": mean_e,
            "dateobs": mean_time.isoformat(), "nx": nx, "ny": ny, "path": str(rel)}


master_bias = FanOut("master_bias", inputs=("night",), items=bias_sets, process=make_master, key=("set",),
                     schema=SCHEMA, shard_size=1, resources=Resources(cpu="1", memory="3Gi"), doc=__doc__)
