"""PTC0X sub-task ``meta`` (vison ``meta_analysis``): the gain and the full well of each quadrant.

Per test and CCD (fan-out), per quadrant: the pairs' tile points (extract) between 1e3 and 4e4
ADU fitted with a robust weighted quadratic, gain = 1 / linear term with its error, BADFIT
above 1e-3 relative error (:func:`steps.vison.science.ptc.fit_ptc`; the constant is the
read-noise variance of the same pairs' prescans unless ``constant = "free"``, vison's); the full
well, the signal of the brightest fluence level past the PTC's turnover
(:func:`steps.vison.science.ptc.full_well`; NaN where the test did not reach it).  The test is
analysed as acquired: fewer fluences or frames than its structure still give a fit (the flags
step says what was missing).  Writes ``RUN/<session>/<TEST>/gain/`` (ccd, quadrant,
gain_e_per_adu, gain_err, fwc_adu, n_pairs).  The same loop serves PTC02WAVE per wavelength
(:func:`meta_item`'s ``group``).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Literal

import numpy as np
import pyarrow as pa
from pydantic import Field

from astroflow.step import FanOut, StepParams
from steps.vison import elvis, tasks
from steps.vison.products import write_part
from steps.vison.ptc_extract import grouped
from steps.vison.subtasks import KEY, task_items
from steps.vison.science.ptc import FIT_LIMITS_ADU, MAX_GAIN_RELATIVE_ERROR, fit_ptc, full_well


class MetaParams(StepParams):
    fit_limits_adu: tuple[float, float] = Field(FIT_LIMITS_ADU, description="signal range of the PTC fit (ADU)")
    max_relative_error: float = Field(MAX_GAIN_RELATIVE_ERROR, gt=0, description="gain relative error above "
                                      "which the fit is BADFIT")
    constant: Literal["prescan", "free"] = Field("prescan", description=(
        "the fit's constant: the pairs' prescan read-noise variance, or free (vison)"))


SCHEMA = pa.schema([
    ("test", pa.string()), ("ccd", pa.int8()), ("quadrant", pa.string()), ("gain_e_per_adu", pa.float64()),
    ("gain_err", pa.float64()), ("fwc_adu", pa.float64()), ("n_pairs", pa.int32()), ("n_levels", pa.int32()),
    ("n_points", pa.int32()), ("n_used", pa.int32()), ("a0", pa.float64()), ("a1", pa.float64()),
    ("a2", pa.float64()), ("ron2_adu2", pa.float64()), ("max_fluence_adu", pa.float64()),
    ("badfit", pa.list_(pa.string())), ("skipped", pa.list_(pa.string())),
])


def levels_of(fluences: list[dict], points: list[dict]) -> list[dict]:
    """One row per exposure time: the mean signal (saturated counted), the pairs' mean variance,
    the saturated fraction."""
    flu: dict[float, list[dict]] = defaultdict(list)
    for r in fluences:
        flu[round(r["exptime"], 3)].append(r)
    var: dict[float, list[float]] = defaultdict(list)
    for p in points:
        var[round(p["exptime"], 3)].append(p["variance_adu2"])
    return [{"exptime": t, "signal_adu": float(np.mean([r["fluence_adu"] for r in rs])),
             "variance_adu2": float(np.mean(var[t])) if var[t] else float("nan"),
             "saturated_fraction": float(np.mean([r["n_saturated"] / max(r["n_pixels"], 1) for r in rs]))}
            for t, rs in sorted(flu.items())]


def quadrant_gain(p, checked: list[dict], extracted: list[dict], q: str) -> dict:
    """One quadrant's PTC fit and full well (``checked``, ``extracted``: one group's rows, e.g. one wavelength)."""
    points = [r for r in extracted if r["quadrant"] == q and r["skipped"] is None]
    skipped = sorted({f"ObsIDs {r['obsid']}, {r['obsid_pair']}: {r['skipped']}" for r in extracted
                      if r["quadrant"] == q and r["skipped"] is not None})
    ron2 = [r["ron2_adu2"] for r in points if r["ron2_adu2"] is not None and np.isfinite(r["ron2_adu2"])]
    constant = float(np.median(ron2)) if ron2 and p.constant == "prescan" else None
    fit = fit_ptc([r["signal_adu"] for r in points], [r["variance_adu2"] for r in points], constant,
                  tuple(p.fit_limits_adu), max_relative_error=p.max_relative_error)
    fluences = [r for r in checked if r["quadrant"] == q]
    levels = levels_of(fluences, points)
    return {"quadrant": q, "gain_e_per_adu": fit.gain, "gain_err": fit.gain_err, "fwc_adu": full_well(levels, fit),
            "n_pairs": len({(r["obsid"], r["obsid_pair"]) for r in points}), "n_levels": len(levels),
            "n_points": fit.n_points, "n_used": fit.n_used, "a0": fit.coeffs[0], "a1": fit.coeffs[1],
            "a2": fit.coeffs[2], "ron2_adu2": float(np.median(ron2)) if ron2 else None,
            "max_fluence_adu": max((r["fluence_adu"] for r in fluences), default=None),
            "badfit": fit.problems, "skipped": skipped}


def meta_item(ctx, item, task: tasks.Task, group: str | None = None, schema: pa.Schema | None = None) -> list[dict]:
    """A PTC Task's meta on one (test, CCD) item: per ``group`` value (PTC0X: one group; PTC02WAVE:
    per ``wave_nm``) and quadrant, :func:`quadrant_gain`; the rows written to the contract's ``gain``
    (``schema``: its columns for the Task)."""
    checked = grouped([r for r in ctx.lookup(task.step("check"), test=item["test"], ccd=item["ccd"]).to_pylist()
                       if r["problem"] is None], group)
    extracted = grouped(ctx.lookup(task.step("extract"), test=item["test"], ccd=item["ccd"]).to_pylist(), group)
    rows = [{"test": item["test"], "ccd": item["ccd"], **({group: value} if group else {}),
             **quadrant_gain(ctx.params, frames, extracted.get(value, []), q)}
            for value, frames in checked.items() for q in elvis.QUADRANTS]
    write_part(ctx, "gain", item["test"], f"ccd{item['ccd']}", rows, schema)
    return rows


def meta_ccd(ctx, item) -> list[dict]:
    return meta_item(ctx, item, tasks.PTC0X)


ptc_meta = FanOut("ptc_meta", inputs=("inventory", "ptc_check", "ptc_extract"), params=MetaParams, items=task_items(tasks.PTC0X),
                  process=meta_ccd, key=KEY, schema=SCHEMA, shard_size=1, doc=__doc__)
