"""Runbook step 11, flux_triage.py: the triage cut, one reason per TCE (first failure wins).

Rules in order: AltDetFail, SesStatFail, newMesBelowThresh (< 4.5), newMesShrink, ses2MesFail,
ChasesFail (with the strong-signal override), SecondaryOfPN_xx.  A TCE with no ses_mes result
(its item failed) fails with NoSesMes.  Writes ``RUN/flux_triage/`` (tic int64, planet_number
int32, passed bool, reason string) and ``spoc_fluxtriage_{run}.txt``.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from astroflow.step import Step
from steps.tec.science.triage import flux_triage
from steps.tec.tces import tce_rows
from steps.tec.text import write_rows

SCHEMA = pa.schema([("tic", pa.int64()), ("planet_number", pa.int32()), ("passed", pa.bool_()),
                    ("reason", pa.string())])
FROM_SES_MES = ["valid_alt_det", "valid_ses", "new_mes", "new_ntran", "mn_ses2mn_mes", "mn_ses2mn_mes_r",
                "chases_sumry"]


def triage(ctx) -> list[dict]:
    tces = tce_rows(ctx)
    stats = {(r["tic"], r["planet_number"]): r
             for r in ctx.rows("ses_mes", columns=["tic", "planet_number"] + FROM_SES_MES)}
    nan = dict.fromkeys(FROM_SES_MES, np.nan)
    merged = [{**r, **stats.get((r["tic"], r["planet_number"]), nan)} for r in tces]
    col = {k: np.array([m[k] for m in merged], dtype=float) for k in ["period", "mes"] + FROM_SES_MES}
    passed, reason = flux_triage(
        np.array([m["tic"] for m in merged], np.int64), np.array([m["planet_number"] for m in merged]),
        col["period"], col["mes"], col["valid_alt_det"], col["valid_ses"], col["new_mes"], col["new_ntran"],
        col["mn_ses2mn_mes"], col["mn_ses2mn_mes_r"], col["chases_sumry"],
    )
    rows = [{"tic": m["tic"], "planet_number": m["planet_number"], "passed": bool(p), "reason": str(why)}
            for m, p, why in zip(merged, passed, reason)]
    write_rows(ctx.product(f"spoc_fluxtriage_{ctx.settings.name}.txt"), rows)
    return rows


flux_triage_step = Step("flux_triage", inputs=("gather", "ses_mes"), run=triage, schema=SCHEMA, doc=__doc__)
