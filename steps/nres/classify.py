"""Runbook: the choice of a star's ZERO in zeros.csv and its TEFF/LOGG (banzai-nres ``classify``).

Per extracted science frame: the template its velocities are measured against, and the star's
TEFF and LOGG.  A star with a ZERO of its own uses the nearest in time (one of the ZERO's own
exposures is measured against the coadd of the others: choice "own, without this frame").  Otherwise every good ZERO
in the calibration library is a candidate (for each standard, the one the ZERO policy picks) and the one that
matches the spectrum best is chosen: the largest matched-filter CCF peak summed over orders
(:func:`steps.nres.science.rv.template_match`), banzai-nres's criterion for its model grid.
TEFF and LOGG come from targets.csv, or, where the star's row has none, from the chosen
standard's.  A star without a targets.csv row, or no ZERO at all, fails the item with the reason
(the night goes on).  The choice is recorded as the frame's ZERO calibration, and the candidates
it was chosen from: a ZERO added or marked bad later makes the frame stale.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pyarrow as pa

from astroflow.calib import NoCalibration
from astroflow.errors import ItemError
from astroflow.step import FanOut, Resources
from steps.nres.science.rv import template_match
from steps.nres.spectra import read_spectrum, target
from steps.nres.template import measured_without, read_zero

SCHEMA = pa.schema([
    ("filename", pa.string()), ("object", pa.string()), ("template", pa.string()), ("template_path", pa.string()),
    ("choice", pa.string()), ("match", pa.float64()), ("n_candidates", pa.int32()), ("teff", pa.float64()),
    ("logg", pa.float64()), ("teff_source", pa.string()),
])


def frames(ctx) -> list[dict]:
    return ctx.table("extract", columns=["filename"]).to_pylist()


def classify_frame(ctx, item) -> dict:
    ext = ctx.row("extract", filename=item["filename"])
    star = target(ctx, ext["object"])
    at = datetime.fromisoformat(ext["dateobs"])
    try:
        path, chosen, match, n = ctx.calibration("ZERO", at, target=star.name), star.name, np.nan, 1
        choice = "own" if measured_without(ctx, path, item["filename"]) is None else "own, without this frame"
    except NoCalibration:
        by_target = ctx.calibration_candidates("ZERO", at, by="target")
        if not by_target:
            raise ItemError(f"target {star.name}: no ZERO template in the calibration library (make one with "
                            "`astroflow nres make-zero`, or name RV standards in settings.templates)") from None
        spec = read_spectrum(ctx.run_dir / ext["path"])
        scores = {t: template_match(spec["wavelength"], spec["normflux"], spec["normuncertainty"],
                                    read_zero(c.path), mask=spec["mask"], order_labels=spec["order"])["peak"]
                  for t, c in sorted(by_target.items())}
        chosen = max(scores, key=scores.get)
        path = ctx.calibration("ZERO", at, target=chosen)
        choice, match, n = "best match", scores[chosen], len(scores)
    teff, logg, source = star.teff, star.logg, "targets.csv"
    if teff is None or logg is None:
        attrs = ctx.library().get(path).attributes
        teff, logg, source = attrs.get("teff"), attrs.get("logg"), f"template {chosen}"
    return {"filename": item["filename"], "object": star.name, "template": chosen,
            "template_path": str(path), "choice": choice, "match": match, "n_candidates": n,
            "teff": teff, "logg": logg, "teff_source": source}


classify = FanOut("classify", inputs=("extract", "template"), items=frames, process=classify_frame,
                  key=("filename",), schema=SCHEMA, shard_size=4, resources=Resources(cpu="1", memory="2Gi"),
                  doc=__doc__)
