"""Runbook step 5, federate_knownPWtce.py: match TCE ephemerides to known planets.

Reads the NASA Exoplanet Archive CSV named in the settings (``known_planets``) instead of
querying MAST and the archive online (which hung); with ``known_online`` and no file, the table
is fetched once with a timeout and retries and cached in the run directory.  Federation follows
Mullally et al. 2015 (sec. 4.1) within a 180-arcsec cone.  Writes the dataset and
``federate_known_{run}.txt``.
"""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path

from astroflow.atomic import write_bytes
from astroflow.errors import StepFailed
from astroflow.step import Step
from steps.tec.catalogs import read_known_planets
from steps.tec.science.federation import match_known_planets
from steps.tec.tces import data_span, tce_rows
from steps.tec.text import write_rows

ARCHIVE_TAP = (
    "https://exoplanetarchive.ipac.caltech.edu/TAP/sync?format=csv&query="
    "select+pl_name,hostname,tic_id,ra,dec,pl_orbper,pl_tranmid,pl_trandur+from+pscomppars+where+tran_flag=1"
)


def fetch_known(cache: Path, timeout: float = 30.0, retries: int = 3) -> Path:
    """Download the archive table once (timeout, retries with back-off) into ``cache``."""
    if cache.exists() and cache.stat().st_size > 0:
        return cache
    last = None
    for attempt in range(retries):
        try:
            with urllib.request.urlopen(ARCHIVE_TAP, timeout=timeout) as resp:
                return write_bytes(cache, resp.read())
        except OSError as exc:
            last = exc
            time.sleep(2 ** attempt)
    raise StepFailed(f"could not fetch the known-planet table from the archive: {last}")


def known_table(ctx) -> Path | None:
    s = ctx.settings
    if s.known_planets is not None:
        return ctx.uses(s.known_planets)
    if s.known_online:
        return fetch_known(ctx.product("federate_known/_cache/known_planets.csv"))
    return None


def federate(ctx) -> list[dict]:
    path = known_table(ctx)
    tces = tce_rows(ctx)
    known = read_known_planets(path) if path else []
    if not known:
        ctx.log.warning("no known-planet catalogue given: every TCE is unmatched")
        rows = [{"tic": r["tic"], "planet_number": r["planet_number"], "known_name": "", "known_stat": -1.0,
                 "known_class": -1, "known_period_ratio": float("nan"), "known_federated": False,
                 "known_matched": False, "known_other_pn": False, "known_n_compared": 0} for r in tces]
    else:
        t0, t1 = data_span(ctx)
        rows = match_known_planets(tces, known, t0, t1)
    write_rows(ctx.product(f"federate_known_{ctx.settings.name}.txt"), rows)
    return rows


federate_known = Step("federate_known", inputs=("gather", "resample"), run=federate, doc=__doc__)
