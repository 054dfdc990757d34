"""Runbook step 18.3, ``selixer --merge``: the shards' catalogue parts -> ``RUN/elixer_cat.h5``.

Each shard of the classify step committed one Parquet part (the dispatch folder's
``elixer_cat.h5`` of the original); this step streams the parts the ledger holds as committed
(a detectid redone by a retry keeps its latest row; superseded rows are skipped), a few hundred
rows at a time, into one ``elixer_cat.h5`` (Detections, SpectraLines, CalibratedSpectra,
ClassificationExtraFeatures; the imaging tables empty): memory stays flat however many
detections the run has.  It also returns one row per table with its count.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from astroflow import rundir
from astroflow.step import Step
from steps.elixer.catalog import DETECTION_COLUMNS, CatalogWriter, from_columns  # not classify: no scipy here

CATALOG = "elixer_cat.h5"
BATCH_ROWS = 256
_EXTRA = ("spectra_lines", "cal_wavelength", "cal_flux", "cal_flux_err", "num_fibers", "features")


def _batches(part: rundir.Part, columns: list[str]):
    """Record batches of one committed part, without the rows the ledger says are superseded."""
    pf = pq.ParquetFile(part.path, memory_map=True)
    have = set(pf.schema_arrow.names)
    cols = [c for c in columns if c in have]
    start = 0
    for batch in pf.iter_batches(batch_size=BATCH_ROWS, columns=cols):
        n = batch.num_rows
        if part.exclude:
            keep = np.ones(n, bool)
            for lo, hi in part.exclude:
                keep[max(lo - start, 0):max(min(hi - start, n), 0)] = False
            if not keep.all():
                batch = batch.filter(pa.array(keep))
        start += n
        if batch.num_rows:
            yield batch


def _json_rows(values) -> list[dict]:
    return [x for v in values if v for x in json.loads(v)]


def _table_from_dicts(table: str, rows: list[dict]) -> np.ndarray:
    keys = {k for r in rows for k in r}
    return from_columns(table, {k: [r.get(k) for r in rows] for k in keys}, len(rows))


def write_batch(w: CatalogWriter, batch: pa.RecordBatch, counts: dict) -> None:
    """One batch of classify rows -> the catalogue's tables (column-wise, no per-row Python objects)."""
    order = np.argsort(batch.column("detectid").to_numpy(), kind="stable")
    batch = batch.take(pa.array(order))
    n = batch.num_rows
    cols = {name: batch.column(name) for name in batch.schema.names}
    w.append("Detections", from_columns("Detections", cols, n))
    counts["Detections"] += n
    if "spectra_lines" in cols:
        lines = _json_rows(cols["spectra_lines"].to_pylist())
        if lines:
            w.append("SpectraLines", _table_from_dicts("SpectraLines", lines))
            counts["SpectraLines"] += len(lines)
    if "cal_flux" in cols:
        has = ~np.asarray(cols["cal_flux"].is_null().to_numpy(zero_copy_only=False), bool)
        if has.any():
            sub = batch.filter(pa.array(has))
            spec = {"detectid": sub.column("detectid"), "num_fibers": sub.column("num_fibers"),
                    "wavelength": sub.column("cal_wavelength"), "flux": sub.column("cal_flux"),
                    "flux_err": sub.column("cal_flux_err")}
            w.append("CalibratedSpectra", from_columns("CalibratedSpectra", spec, sub.num_rows))
            counts["CalibratedSpectra"] += sub.num_rows
    if "features" in cols:
        feats = [json.loads(v) for v in cols["features"].to_pylist() if v]
        if feats:
            w.append("ClassificationExtraFeatures", _table_from_dicts("ClassificationExtraFeatures", feats))
            counts["ClassificationExtraFeatures"] += len(feats)


def catalog_from_parts(step_dir: Path, out: Path, attrs: dict | None = None) -> dict[str, int]:
    """Stream the committed classify parts of ``step_dir`` into the catalogue ``out`` (with the
    root attributes ``attrs``); row counts."""
    ledger = rundir.Ledger(step_dir)
    counts = {"Detections": 0, "SpectraLines": 0, "CalibratedSpectra": 0, "ClassificationExtraFeatures": 0}
    columns = list(dict.fromkeys([*DETECTION_COLUMNS, *_EXTRA]))
    # the system allocator gives the decoded pages back at once (Arrow's default pool keeps tens of MB)
    previous = pa.default_memory_pool()
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        with CatalogWriter(out, attrs) as w:
            for part in ledger.parts:
                for batch in _batches(part, columns):
                    write_batch(w, batch, counts)
    finally:
        pa.set_memory_pool(previous)
    return counts


def run(ctx):
    ctx.table("classify", columns=["detectid"])  # the ledger's record that the merge read the whole dataset
    out = ctx.product(CATALOG)
    counts = catalog_from_parts(ctx.run_dir / "classify", out, ctx.provenance_attrs())
    return [{"table": k, "rows": v, "file": CATALOG} for k, v in counts.items()]


merge = Step("merge", inputs=("classify",), run=run, doc=__doc__)
