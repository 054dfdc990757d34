"""``RUNDIR/errors/``: every failed item of the run in one Parquet table, and the pipeline's
section of the HTML report (the night's calibrations and failures).

The core keeps one error table per step and unit (``RUN/<step>/_errors/``, what ``astroflow
status`` reads); the SEDM output contract names one table, ``RUNDIR/errors/errors.parquet``
(step, item, error_type, message, file), rewritten from the ledger each time the run's report
is written, so it always says what the ledger says.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from astroflow import config as run_config
from astroflow import rundir
from astroflow.atomic import write_table
from astroflow.registry import get_pipeline

SCHEMA = pa.schema([("step", pa.string()), ("item", pa.string()), ("error_type", pa.string()),
                    ("message", pa.string()), ("file", pa.string())])


def collect_errors(run_dir: str | Path) -> list[dict]:
    run_dir = Path(run_dir)
    pipeline = get_pipeline(run_config.load(run_dir).pipeline)
    out = []
    for name in pipeline.order():
        for e in rundir.read_errors(run_dir / name):
            out.append({"step": name, "item": str(e.get("item", "")), "error_type": str(e.get("error_type", "")),
                        "message": str(e.get("message", "")), "file": e.get("file") or ""})
    return out


def write_errors(run_dir: str | Path) -> Path:
    rows = collect_errors(run_dir)
    return write_table(Path(run_dir) / "errors" / "errors.parquet", pa.Table.from_pylist(rows, schema=SCHEMA))


def report(run_dir: str | Path) -> str:
    from astroflow.report import table_html

    run_dir = Path(run_dir)
    write_errors(run_dir)
    parts = ["<h2>SEDM night</h2>"]
    if (run_dir / "calibrations").is_dir() and rundir.Ledger(run_dir / "calibrations").parts:
        rows = rundir.read_dataset(run_dir / "calibrations").to_pylist()
        parts.append(table_html(["night", "product", "status", "fallback from", "frames", "message"],
                                [[r["night"], r["product"], r["status"], r["fallback_from"], r["n_frames"],
                                  r["message"]] for r in rows],
                                ["ok" if r["status"] in ("complete", "partial") else "bad" for r in rows]))
    errors = collect_errors(run_dir)
    if errors:
        parts.append(table_html(["step", "item", "error", "message"],
                                [[e["step"], e["item"], e["error_type"], e["message"]] for e in errors]))
    return "\n".join(parts)
