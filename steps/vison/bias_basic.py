"""BIAS0X sub-task ``basic`` (vison ``basic_analysis``): the bias structure and the read noise.

For each prepared frame (raw counts minus the prep's offsets; fan-out by test and CCD) and each
quadrant's image area: a 2-D polynomial of degree 5 fitted to the medians of 300 x 300-pixel bins
(vison's ``get_region2Dmodel(kind='poly2D', pdegree=5, doBin=True, binsize=300)``), and the read
noise as the std of the image minus that model (lost, saturated and > 4 sigma pixels left out:
:mod:`steps.vison.science.bias`).  Because prep subtracts one global prescan median per
quadrant (not row by row), the row medians' noise does not inflate it.  Per quadrant: the mean
RON over the frames, its error (the frames' scatter over sqrt(n)), the number of frames, the
per-frame values, the fit's degrees.  A fit that fails is counted (BADFIT) and the other frames
go on.  Writes ``RUN/<session>/<TEST>/ron/``.  vison's 1-D profiles are not produced yet.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from pydantic import Field

from astroflow.step import FanOut, Resources, StepParams
from steps.vison import elvis, tasks
from steps.vison.subtasks import KEY, task_items
from steps.vison.prepared import prepared_frames
from steps.vison.products import write_part
from steps.vison.science.bias import read_noise


class BasicParams(StepParams):
    degree: int = Field(5, ge=0, le=9, description="total degree of the 2-D bias model")
    binsize: int = Field(300, ge=2, description="pixels per side of the bins the model is fitted to")


SCHEMA = pa.schema([
    ("test", pa.string()), ("ccd", pa.int8()), ("quadrant", pa.string()), ("ron_adu", pa.float64()),
    ("ron_err_adu", pa.float64()), ("n_frames", pa.int32()), ("ron_frames_adu", pa.list_(pa.float64())),
    ("obsids", pa.list_(pa.int64())), ("degree_x", pa.int32()), ("degree_y", pa.int32()), ("n_badfit", pa.int32()),
    ("badfit", pa.list_(pa.string())),
])


def summarise(values: list[float]) -> tuple[float, float]:
    v = np.asarray([x for x in values if np.isfinite(x)])
    if not v.size:
        return float("nan"), float("nan")
    return float(v.mean()), float(v.std(ddof=1) / np.sqrt(v.size)) if v.size > 1 else float("nan")


def basic_ccd(ctx, item) -> list[dict]:
    p = ctx.params
    per_q = {q: {"ron": [], "obsids": [], "bad": [], "fit": {}} for q in elvis.QUADRANTS}
    for obsid, _frame, quads in prepared_frames(ctx, item, tasks.BIAS0X, "image"):
        for q, image in quads.items():
            try:
                ron, fit = read_noise(image, p.degree, p.binsize)
            except (FloatingPointError, np.linalg.LinAlgError) as exc:
                per_q[q]["bad"].append(f"ObsID {obsid}: {exc}")
                continue
            per_q[q]["ron"].append(ron)
            per_q[q]["obsids"].append(obsid)
            per_q[q]["fit"] = fit
    rows = []
    for q, d in per_q.items():
        mean, err = summarise(d["ron"])
        rows.append({"test": item["test"], "ccd": item["ccd"], "quadrant": q, "ron_adu": mean, "ron_err_adu": err,
                     "n_frames": len(d["ron"]), "ron_frames_adu": d["ron"], "obsids": d["obsids"],
                     "degree_x": d["fit"].get("degree_x"), "degree_y": d["fit"].get("degree_y"),
                     "n_badfit": len(d["bad"]), "badfit": d["bad"]})
    write_part(ctx, "ron", item["test"], f"ccd{item['ccd']}", [r for r in rows if r["n_frames"]])
    return rows


bias_basic = FanOut("bias_basic", inputs=("inventory", "bias_prep"), params=BasicParams, items=task_items(tasks.BIAS0X),
                    process=basic_ccd, key=KEY, schema=SCHEMA, shard_size=1, resources=Resources(cpu="1", memory="2Gi"),
                    doc=__doc__)
