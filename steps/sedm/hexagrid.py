"""Runbook, pre-science step 5 (geometry): the hexagonal spaxel grid (pysedm's
``{date}_HexaGrid``): where each spaxel sits in the IFU, from where its trace sits on the CCD.

One item per night: tonight's trace match (``geometry``), each trace's middle as one point, and
:func:`steps.sedm.science.hexagrid.fit_grid` finds the lattice blind (pitch, angle, each
spaxel's axial indices q, r).  Traces that do not fit a hexagonal lattice fail the night's grid,
and so does a night with no trace match of its own (the row says ``failed``; ``fallback`` takes
an earlier night's grid).

``{date}_HexaGrid.json`` (instead of pysedm's pickle): ``{"date", "trace_match", "pitch_px",
"angle_deg", "origin": [x, y], "a": [x, y], "b": [x, y], "spaxels": [{"trace", "q", "r", "x",
"y", "residual_px"}]}``: a trace's centre on the CCD is ``origin + q a + r b`` (0-based px);
``x, y`` its place on the grid in spaxel units (``q + r / 2``, ``r sqrt(3) / 2``).  Registered
in the calibration library as HEXAGRID by frame size.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa

from astroflow.atomic import write_text
from astroflow.errors import Skip
from astroflow.step import FanOut
from steps.sedm import sets
from steps.sedm.calibrations import HEXAGRID, frame_attributes, observed
from steps.sedm.science.hexagrid import NoHexagonalGrid, fit_grid
from steps.sedm.writer import guard, night_dir

SCHEMA = pa.schema([
    ("product", pa.string()), ("status", pa.string()), ("message", pa.string()), ("n_spaxels", pa.int32()),
    ("pitch_px", pa.float64()), ("angle_deg", pa.float64()), ("max_residual_px", pa.float64()),
    ("trace_match", pa.string()), ("path", pa.string()),
])


def product_name(date: str) -> str:
    return f"{date}_HexaGrid"


def night_grid(ctx) -> list[dict]:
    return [{"product": product_name(ctx.settings.date)}]


def make_grid(ctx, item: dict) -> dict:
    s = ctx.settings
    row = {"product": item["product"], "status": "failed", "message": "", "n_spaxels": 0,
           "pitch_px": float("nan"), "angle_deg": float("nan"), "max_residual_px": float("nan"), "trace_match": "",
           "path": ""}
    for st in sets.waiting(ctx, ("dome",)):
        raise Skip(st.message())
    traces = ctx.rows("geometry")
    if not traces:
        row["message"] = "no trace match tonight (too few dome flats)"
        return row
    tm_name = Path(traces[0]["path"]).name
    try:
        grid = fit_grid(np.array([[t["x_mid"], t["y_mid"]] for t in sorted(traces, key=lambda t: t["trace"])]))
    except NoHexagonalGrid as exc:
        row.update(message=f"GeometrySolutionFailed: {exc}", trace_match=tm_name)
        return row
    first = min((r for r in ctx.rows("night", columns=["camera", "mjd_obs", "nx", "ny"]) if r["camera"] == "IFU"),
                key=lambda r: r["mjd_obs"])
    x, y = grid.positions()
    rel = night_dir(s) / f"{item['product']}.json"
    path = ctx.register_calibration(HEXAGRID, rel, observed(first), frame_attributes(first), frames=[tm_name])
    guard(path, s.raw_roots())
    doc = {"date": s.date, "trace_match": tm_name, "pitch_px": grid.pitch, "angle_deg": grid.angle_deg,
           "origin": grid.origin.tolist(), "a": grid.a.tolist(), "b": grid.b.tolist(), "code_version": ctx.code_version,
           "spaxels": [{"trace": i, "q": int(grid.q[i]), "r": int(grid.r[i]), "x": float(x[i]), "y": float(y[i]),
                        "residual_px": float(grid.residual[i])} for i in range(len(traces))]}
    write_text(path, json.dumps(doc, indent=1) + "\n")
    return {**row, "status": "complete", "n_spaxels": len(traces), "pitch_px": grid.pitch,
            "angle_deg": grid.angle_deg, "max_residual_px": float(grid.residual.max()), "trace_match": tm_name,
            "path": str(rel)}


hexagrid = FanOut("hexagrid", inputs=("night", "geometry"), items=night_grid, process=make_grid, key=("product",),
                  schema=SCHEMA, shard_size=1, doc=__doc__)
