"""Runbook step 6, selfMatch_spoc.py: TCEs matching TCEs of other stars (systematics).

Pairs of TCEs on different TICs whose periods agree (Coughlin period significance > 3) are
federated; the count of federated matches and their log10 separation feed the ranking flag.
Writes the dataset and ``selfMatch_{run}.txt``.
"""

from __future__ import annotations


from astroflow.step import Step
from steps.tec.science.selfmatch import self_match
from steps.tec.tces import data_span, tce_rows
from steps.tec.text import write_rows

TEXT_COLUMNS = ["tic", "planet_number", "n_compared", "n_fed", "min_log_sep", "best_tic", "best_planet_number",
                "best_stat", "best_class", "flagged"]


def match(ctx) -> list[dict]:
    t0, t1 = data_span(ctx)
    rows = self_match(tce_rows(ctx), t0, t1)
    write_rows(ctx.product(f"selfMatch_{ctx.settings.name}.txt"), rows, TEXT_COLUMNS)
    return rows


self_match_step = Step("self_match", inputs=("gather", "resample"), run=match, doc=__doc__)
