"""Runbook step 15, modump_check.py: do the TCE's events line up with momentum dumps?

For each vetted TCE, the fraction of its per-transit SES-peak times (ses_mes
``transit_peak_times``) that lie within one transit duration of a momentum dump (QUALITY bit 32
of the TIC's own DV time series, carried by the resample step).  The ranking flags a fraction
above 0.9.  Writes the dataset and ``spoc_modump_{run}.txt``.  The original took the dump times
from one target's cadence map; the dumps are spacecraft events, the same in every light curve of
a sector, and the TIC's own series also covers multi-sector runs.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from astroflow.step import Step
from steps.tec.text import write_rows
from steps.tec.vetted import tic_where, vetted_tces

SCHEMA = pa.schema([("tic", pa.int64()), ("planet_number", pa.int32()), ("n_events", pa.int32()),
                    ("n_near_dump", pa.int32()), ("modump_fraction", pa.float64())])


def dump_fraction(event_times, dump_times, duration_days: float) -> tuple[int, float]:
    """(events within ``duration_days`` of a dump, their fraction); no events gives (0, 0.0)."""
    events = np.asarray(event_times, float)
    events = events[np.isfinite(events)]
    dumps = np.sort(np.asarray(dump_times, float))
    if events.size == 0 or dumps.size == 0:
        return 0, 0.0
    i = np.clip(np.searchsorted(dumps, events), 1, dumps.size) - 1
    j = np.clip(i + 1, 0, dumps.size - 1)
    nearest = np.minimum(np.abs(events - dumps[i]), np.abs(events - dumps[j]))
    n = int(np.sum(nearest < duration_days))
    return n, n / events.size


def check(ctx) -> list[dict]:
    tces = vetted_tces(ctx)
    events = {(r["tic"], r["planet_number"]): r["transit_peak_times"] or []
              for r in ctx.rows("ses_mes", columns=["tic", "planet_number", "transit_peak_times"])}
    lcs = ctx.table("resample", columns=["tic", "time", "momentum_dump"],
                    where={**tic_where(tces), "planet_number": 1})
    dumps = {}
    for r in lcs.to_pylist():
        t = np.asarray(r["time"], float)
        dumps[r["tic"]] = t[np.asarray(r["momentum_dump"], bool) & np.isfinite(t)]
    rows = []
    for r in tces:
        ev = events.get((r["tic"], r["planet_number"]), [])
        n, frac = dump_fraction(ev, dumps.get(r["tic"], []), r["at_dur"] / 24.0)
        rows.append({"tic": r["tic"], "planet_number": r["planet_number"], "n_events": len(ev),
                     "n_near_dump": n, "modump_fraction": frac})
    write_rows(ctx.product(f"spoc_modump_{ctx.settings.name}.txt"), rows)
    return rows


modump_check = Step("modump_check", inputs=("gather", "flux_triage", "ses_mes", "resample"), run=check,
                    schema=SCHEMA, doc=__doc__)
