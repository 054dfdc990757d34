"""Runbook, pre-science step 5 (first part): "Once all the calibration files are acquired a
geometry solution ... is generated": the trace of every spaxel, found blind from the dome flats
(pysedm's ``{date}_TraceMatch``).

One item per night, once the dome set is complete or at least partial (``Calib: dome n of N``;
below the minimum the item is skipped with the reason, ``calibration_sets`` names the error):
the median of the night's ``crr_b_`` dome flats (a median of three or more also rejects the
cosmic rays of these short frames), in which :func:`steps.sedm.science.traces.find_traces` finds
each spaxel's trace with no prior knowledge of the pattern: a centre line (row at the trace's
middle column, tilt), the columns it spans, its cross-dispersion width, and the polygon around
it (2.5 widths on each side).  Written as ``{date}_TraceMatch.json`` in the night directory
(documented below, instead of pysedm's pickle), one row per trace in the step's dataset, and
registered in the calibration library (type TRACEMATCH, by frame size).

``{date}_TraceMatch.json``: ``{"date", "frames": [dome files], "shape": [ny, nx],
"n_traces", "traces": [{"trace", "x_min", "x_max", "x_mid", "y_mid", "tilt", "sigma", "flux",
"rms", "polygon": [[x, y] x 4]}]}``; pixel coordinates are 0-based pixel centres, the line is
``y = y_mid + tilt * (x - x_mid)``.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
from astropy.io import fits

from astroflow.atomic import write_text
from astroflow.errors import ItemError, Skip
from astroflow.step import FanOut, Resources
from steps.sedm import sets
from steps.sedm.calibrations import TRACEMATCH, observed
from steps.sedm.science.traces import Trace, find_traces
from steps.sedm.writer import guard, night_dir

SCHEMA = pa.schema([
    ("product", pa.string()), ("trace", pa.int32()), ("x_min", pa.int32()), ("x_max", pa.int32()),
    ("x_mid", pa.float64()), ("y_mid", pa.float64()), ("tilt", pa.float64()), ("sigma", pa.float64()),
    ("flux", pa.float64()), ("rms", pa.float64()), ("n_frames", pa.int32()), ("status", pa.string()),
    ("path", pa.string()),
])


def product_name(date: str) -> str:
    return f"{date}_TraceMatch"


def read_trace_match(path) -> list[Trace]:
    """The traces of a ``{date}_TraceMatch.json``, in its order."""
    try:
        doc = json.loads(Path(path).read_text())
        return [Trace(**{k: t[k] for k in ("x_min", "x_max", "x_mid", "y_mid", "tilt", "sigma", "flux", "rms")})
                for t in doc["traces"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ItemError(f"not a readable trace match: {exc}", path=path) from None


def night_geometry(ctx) -> list[dict]:
    return [{"product": product_name(ctx.settings.date)}]


def trace_match(ctx, item: dict) -> list[dict]:
    domes = ctx.rows("night", where={"kind": "dome"})
    st = sets.night_state(ctx, "dome", domes)
    if st.status == "waiting":
        raise Skip(st.message())
    if st.status == "too_few":
        raise Skip(f"TooFewFrames: {st.message()}: no trace match tonight")
    cleaned = ctx.rows("debias_crr", where={"filename": [r["filename"] for r in domes]})
    if len(cleaned) < st.minimum:
        raise ItemError(f"only {len(cleaned)} of the {len(domes)} dome flats were debiased; {st.minimum} needed")
    cleaned.sort(key=lambda r: r["mjd_obs"])
    shape_rows = {(r["ny"], r["nx"], r["pscan_x1"], r["oscan_x0"]) for r in domes}
    if len(shape_rows) > 1:
        raise ItemError(f"the dome flats differ in size or overscan: {sorted(shape_rows)}")
    ny, nx, p1, o0 = shape_rows.pop()
    stack = np.median([fits.getdata(ctx.run_dir / r["crr_path"]).astype(np.float32) for r in cleaned], axis=0)
    traces = find_traces(stack, slice(p1, o0))
    if not traces:
        raise ItemError("no trace found in the dome flats")
    rel = night_dir(ctx.settings) / f"{item['product']}.json"
    t_mean = datetime.fromtimestamp(float(np.mean([observed(r).timestamp() for r in cleaned])), tz=timezone.utc)
    path = ctx.register_calibration(TRACEMATCH, rel, t_mean, {"nx": int(nx), "ny": int(ny)},
                                    frames=[r["filename"] for r in cleaned])
    guard(path, ctx.settings.raw_roots())
    entries = [{"trace": i, "x_min": t.x_min, "x_max": t.x_max, "x_mid": t.x_mid, "y_mid": t.y_mid, "tilt": t.tilt,
                "sigma": t.sigma, "flux": t.flux, "rms": t.rms, "polygon": [list(p) for p in t.polygon()]}
               for i, t in enumerate(traces)]
    doc = {"date": ctx.settings.date, "frames": [r["filename"] for r in cleaned], "shape": [int(ny), int(nx)],
           "n_traces": len(entries), "status": st.status, "code_version": ctx.code_version, "traces": entries}
    write_text(path, json.dumps(doc, indent=1) + "\n")
    return [{"product": item["product"], **{k: e[k] for k in ("trace", "x_min", "x_max", "x_mid", "y_mid", "tilt",
                                                               "sigma", "flux", "rms")},
             "n_frames": len(cleaned), "status": st.status, "path": str(rel)} for e in entries]


geometry = FanOut("geometry", inputs=("night", "debias_crr"), items=night_geometry, process=trace_match,
                  key=("product",), schema=SCHEMA, shard_size=1, resources=Resources(cpu="1", memory="3Gi"),
                  doc=__doc__)
