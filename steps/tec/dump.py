"""Runbook step 2, dump_tce_info.py: the TCE table as human-readable ``|``-separated text.

Writes ``RUN/{run}_tce.txt`` (one line per TCE, a header line first).
"""

from __future__ import annotations

from astroflow.step import Step
from steps.tec.text import write_rows

COLUMNS = ["tic", "planet_number", "mes", "eph_period", "eph_epoch", "eph_duration_h", "eph_depth_ppm",
           "at_rp", "at_snr", "tmag", "teff", "rstar", "logg", "ntran", "eph_source"]


def dump_table(ctx) -> dict:
    rows = sorted(ctx.rows("gather", columns=COLUMNS), key=lambda r: (r["tic"], r["planet_number"]))
    path = write_rows(ctx.product(f"{ctx.settings.name}_tce.txt"), rows, COLUMNS, sep="|")
    return {"path": path.name, "n_tces": len(rows)}


dump = Step("dump", inputs=("gather",), run=dump_table, doc=__doc__)
