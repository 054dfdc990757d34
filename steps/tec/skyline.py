"""Runbook step 4, skyline_spoc.py: cadences where many TCE transits pile up.

Counts, on a 10-minute grid over the data span, the TCEs in transit (duration capped at 5 h)
and flags cells more than 2.75 normalised MADs above the median (3.5 for multi-sector runs).
ses_mes later invalidates cadences within 5 minutes of a flagged time.  Writes the flagged
times as the dataset and as ``skyline_data_{run}.txt``; no figure window to close.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from astroflow.atomic import write_text
from astroflow.step import Step, StepParams
from steps.tec.science.skyline import skyline_flags
from steps.tec.tces import data_span, tce_rows

SCHEMA = pa.schema([("time", pa.float64()), ("count", pa.int32())])


class SkylineParams(StepParams):
    threshold: float | None = None  # sigma level; default 2.75 single-sector, 3.5 multi-sector


def flag_cells(ctx) -> list[dict]:
    tces = tce_rows(ctx)
    t0, t1 = data_span(ctx)
    grid, counts, flagged = skyline_flags(
        np.array([r["epoch"] for r in tces]), np.array([r["period"] for r in tces]),
        np.array([r["duration"] for r in tces]), t0, t1,
        multi_sector=ctx.settings.multi_sector, threshold=ctx.params.threshold,
    )
    rows = [{"time": float(t), "count": int(c)} for t, c in zip(grid[flagged], counts[flagged])]
    text = "".join(f"{r['time']:.6f} {r['count']}\n" for r in rows)
    write_text(ctx.product(f"skyline_data_{ctx.settings.name}.txt"), text)
    return rows


skyline = Step("skyline", inputs=("gather", "resample"), run=flag_cells, params=SkylineParams,
               schema=SCHEMA, doc=__doc__)
