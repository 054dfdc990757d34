"""CHINJ01 sub-task ``meta`` (vison ``meta_analysis``, ``fit_Inj_vs_IG1``): the injection threshold, slope and notch.

Per test and CCD (fan-out), per quadrant and drain delay: the frames' injections (extract)
against their IG1, fitted with the hinge model of :func:`steps.vison.science.chinj.fit_injection`
(nothing below the threshold, a linear rise, the notch above): the threshold (V) with its error,
the slope (ADU/V) and the notch (ADU).  vison injects one half of the CCD per drain delay
(``id_dly / toi_ch`` 1.5: the top, 2.5: the bottom); here each delay is fitted on its own, and a
delay that injects nothing in a quadrant is a row with the problem said (flags raise BADFIT).
Slope and notch are in ADU: in electrons they need the PTC's gain, which CHINJ01 does not
measure.  The test is analysed as acquired (fewer IG1 values still give a fit where 4 are
left).  Writes ``RUN/<session>/<TEST>/chinj/``.
"""

from __future__ import annotations

from collections import defaultdict

import pyarrow as pa

from astroflow.step import FanOut
from steps.vison import elvis, tasks
from steps.vison.products import write_part
from steps.vison.science.chinj import fit_injection
from steps.vison.subtasks import KEY, task_items


SCHEMA = pa.schema([
    ("test", pa.string()), ("ccd", pa.int8()), ("quadrant", pa.string()), ("id_dly", pa.float64()),
    ("threshold_v", pa.float64()), ("threshold_err_v", pa.float64()), ("slope_adu_per_v", pa.float64()),
    ("notch_adu", pa.float64()), ("background_adu", pa.float64()), ("top_v", pa.float64()),
    ("n_points", pa.int32()), ("n_rise", pa.int32()), ("ig1_min_v", pa.float64()), ("ig1_max_v", pa.float64()),
    ("chi2_dof", pa.float64()), ("problems", pa.list_(pa.string())),
])


def meta_ccd(ctx, item) -> list[dict]:
    points: dict[tuple[str, float], list[dict]] = defaultdict(list)
    for r in ctx.lookup("chinj_extract", test=item["test"], ccd=item["ccd"]).to_pylist():
        points[r["quadrant"], r["id_dly"]].append(r)
    rows = []
    for (q, delay), pts in sorted(points.items(), key=lambda kv: (elvis.QUADRANTS.index(kv[0][0]), kv[0][1] or 0)):
        fit = fit_injection([p["ig1_v"] for p in pts], [p["injection_adu"] for p in pts],
                            [p["injection_err_adu"] for p in pts])
        rows.append({"test": item["test"], "ccd": item["ccd"], "quadrant": q, "id_dly": delay,
                     "threshold_v": fit.threshold_v, "threshold_err_v": fit.threshold_err_v,
                     "slope_adu_per_v": fit.slope_adu_per_v, "notch_adu": fit.notch_adu,
                     "background_adu": fit.background_adu, "top_v": fit.top_v, "n_points": fit.n_points,
                     "n_rise": fit.n_rise, "ig1_min_v": min(p["ig1_v"] for p in pts),
                     "ig1_max_v": max(p["ig1_v"] for p in pts), "chi2_dof": fit.chi2_dof, "problems": fit.problems})
    write_part(ctx, "chinj", item["test"], f"ccd{item['ccd']}", rows)
    return rows


chinj_meta = FanOut("chinj_meta", inputs=("inventory", "chinj_extract"), items=task_items(tasks.CHINJ01), process=meta_ccd,
                    key=KEY, schema=SCHEMA, shard_size=1, doc=__doc__)
