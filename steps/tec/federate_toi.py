"""Runbook step 10, federate_toiWtce.py: match TCE ephemerides to the TOI catalogue.

Reads the TEV TOI CSV exactly as downloaded (preamble lines, quoted comments with commas and
doubled quotes) with a real CSV reader: no ``sedcsvfix``, no source edit of ``qlpfile``.
Writes the dataset and ``federate_toiWtce_{run}.txt``.
"""

from __future__ import annotations

from astroflow.step import Step
from steps.tec.catalogs import read_toi_csv
from steps.tec.science.federation import match_tois
from steps.tec.tces import data_span, tce_rows
from steps.tec.text import write_rows


def federate(ctx) -> list[dict]:
    tces = tce_rows(ctx)
    if ctx.settings.toi_csv is None:
        ctx.log.warning("no TOI catalogue given: every TCE is unmatched")
        tois = []
    else:
        tois = read_toi_csv(ctx.uses(ctx.settings.toi_csv))
    if tois:
        t0, t1 = data_span(ctx)
        rows = match_tois(tces, tois, t0, t1)
    else:
        rows = [{"tic": r["tic"], "planet_number": r["planet_number"], "toi": float("nan"), "toi_disposition": "",
                 "toi_stat": -1.0, "toi_class": -1, "toi_period_ratio": float("nan"), "toi_federated": False,
                 "toi_matched": False, "toi_other_pn": False, "toi_n_compared": 0} for r in tces]
    write_rows(ctx.product(f"federate_toiWtce_{ctx.settings.name}.txt"), rows)
    return rows


federate_toi = Step("federate_toi", inputs=("gather", "resample"), run=federate, doc=__doc__)
