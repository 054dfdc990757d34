"""Runbook step 17, machine-learning inputs (get_spec2D.py --dets det_SHOTID.tab -dx 100 -dy 9
--h5file, then --merge): 2D spectrum cut-outs per detection.

``ml_inputs`` fans out over shots: for each detection, the calibrated spectra of its ``dy`` = 9
highest-weight fibers (rows, by weight) within +-``dx`` = 100 bins of the line, written to
``ml/im2D_{shotid}.h5`` (datasets detectid, im2D (n, 9, 201), error2D, wave2D).  ``ml_merge``
concatenates them into ``release/merged_im2D.h5``.
"""

from __future__ import annotations

import h5py
import numpy as np
import pyarrow as pa

from astroflow.atomic import atomic_path
from astroflow.step import FanOut, Resources, Step
from steps.hetdex.calfib import load
from steps.hetdex.science.instrument import RECT_WAVE

DX, DY = 100, 9


def shots(ctx) -> list[dict]:
    return [{"datevobs": d} for d in sorted({r["datevobs"] for r in ctx.rows("detections", columns=["datevobs"])})]


def cutouts_one(ctx, item) -> dict:
    dv = item["datevobs"]
    dets = sorted(ctx.lookup("detections", datevobs=dv).to_pylist(), key=lambda d: d["detectid"])
    cal = {r["ifuslot"]: load(ctx.run_dir, r["path"]) for r in ctx.lookup("calfib", datevobs=dv).to_pylist()}
    n = len(dets)
    im = np.zeros((n, DY, 2 * DX + 1), np.float32)
    er = np.zeros_like(im)
    wv = np.zeros((n, 2 * DX + 1), np.float32)
    for k, d in enumerate(dets):
        c = cal[d["ifuslot"]]
        key = {(m, f, e): i for i, (m, f, e) in enumerate(zip(c["multiframe"], c["fibnum"], c["expnum"]))}
        fibs = sorted(d["fibers"], key=lambda f: -f["weight"])[:DY]
        j = int(np.argmin(np.abs(RECT_WAVE - d["wave"])))
        lo = j - DX
        cols = np.clip(np.arange(lo, lo + 2 * DX + 1), 0, RECT_WAVE.size - 1)
        wv[k] = RECT_WAVE[cols]
        for r, f in enumerate(fibs):
            i = key[(f["multiframe"], f["fibnum"], f["expnum"])]
            im[k, r] = c["calfib"][i, cols]
            er[k, r] = c["calfibe"][i, cols]
    rel = f"ml/im2D_{dv.replace('v', '')}.h5"
    with atomic_path(ctx.product(rel)) as tmp, h5py.File(tmp, "w") as h:
        ctx.stamp_h5(h)
        h["detectid"] = np.array([d["detectid"] for d in dets], np.int64)
        h["im2D"], h["error2D"], h["wave2D"] = im, er, wv
    return {"datevobs": dv, "n": n, "path": rel}


ml_inputs = FanOut(
    "ml_inputs",
    inputs=("detections", "calfib"),
    items=shots,
    process=cutouts_one,
    key=("datevobs",),
    schema=pa.schema([("datevobs", pa.string()), ("n", pa.int64()), ("path", pa.string())]),
    shard_size=4,
    resources=Resources(cpu="1", memory="4Gi"),
    doc=__doc__,
)


def merge(ctx) -> list[dict]:
    parts = sorted(ctx.rows("ml_inputs"), key=lambda r: r["datevobs"])
    arrays = {k: [] for k in ("detectid", "im2D", "error2D", "wave2D")}
    for p in parts:
        with h5py.File(ctx.run_dir / p["path"], "r") as h:
            for k in arrays:
                arrays[k].append(h[k][:])
    with atomic_path(ctx.product("release/merged_im2D.h5")) as tmp, h5py.File(tmp, "w") as h:
        ctx.stamp_h5(h)
        for k, v in arrays.items():
            h.create_dataset(k, data=np.concatenate(v) if v else np.zeros((0,)), compression="gzip")
    return [{"n": int(sum(p["n"] for p in parts)), "path": "release/merged_im2D.h5"}]


ml_merge = Step(
    "ml_merge",
    inputs=("ml_inputs",),
    run=merge,
    schema=pa.schema([("n", pa.int64()), ("path", pa.string())]),
    doc="Runbook step 17, get_spec2D.py --merge: merged_im2D.h5.",
)
