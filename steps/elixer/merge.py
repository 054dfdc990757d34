"""Runbook step 18.3, ``selixer --merge``: the shards' catalogue parts -> ``RUN/elixer_cat.h5``.

Each shard of the classify step committed one Parquet part (the dispatch folder's
``elixer_cat.h5`` of the original); this step reads them part by part and appends to one
``elixer_cat.h5`` (Detections, SpectraLines, CalibratedSpectra; the imaging tables empty).  A
detectid redone by a retry keeps its latest row.  It also returns one row per table with its count.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from astroflow.step import Step
from steps.elixer.catalog import CatalogWriter, to_records
from steps.elixer.classify import DETECTION_COLUMNS

CATALOG = "elixer_cat.h5"


def catalog_from_parts(step_dir: Path, out: Path) -> dict[str, int]:
    parts = sorted(Path(step_dir).glob("part-*.parquet"))  # shards, then retries (latest last)
    latest: dict[int, tuple[int, int]] = {}
    for i, part in enumerate(parts):
        for j, d in enumerate(pq.read_table(part, columns=["detectid"]).column("detectid").to_pylist()):
            latest[d] = (i, j)
    counts = {"Detections": 0, "SpectraLines": 0, "CalibratedSpectra": 0}
    with CatalogWriter(out) as w:
        for i, part in enumerate(parts):
            rows = [r for j, r in enumerate(pq.read_table(part).to_pylist()) if latest.get(r["detectid"]) == (i, j)]
            if not rows:
                continue
            rows.sort(key=lambda r: r["detectid"])
            w.append("Detections", to_records("Detections", [{k: r[k] for k in DETECTION_COLUMNS} for r in rows]))
            lines = [ln for r in rows for ln in json.loads(r["spectra_lines"] or "[]")]
            w.append("SpectraLines", to_records("SpectraLines", lines))
            spectra = to_records("CalibratedSpectra", [
                {"detectid": r["detectid"], "num_fibers": r["num_fibers"],
                 "wavelength": np.asarray(r["cal_wavelength"], "f4"), "flux": np.asarray(r["cal_flux"], "f4"),
                 "flux_err": np.asarray(r["cal_flux_err"], "f4")} for r in rows if r["cal_flux"] is not None])
            w.append("CalibratedSpectra", spectra)
            counts["Detections"] += len(rows)
            counts["SpectraLines"] += len(lines)
            counts["CalibratedSpectra"] += len(spectra)
    return counts


def run(ctx):
    out = ctx.product(CATALOG)
    counts = catalog_from_parts(ctx.run_dir / "classify", out)
    return [{"table": k, "rows": v, "file": CATALOG} for k, v in counts.items()]


merge = Step("merge", inputs=("classify",), run=run, doc=__doc__)
