"""PTC02WAVE sub-task ``meta`` (vison ``meta_analysis``): the gain and full well per wavelength and quadrant.

PTC0X's meta (:func:`steps.vison.ptc_meta.meta_item`, the same loop) at each wavelength apart: per (test, CCD) item,
wavelength and quadrant, the pairs' tile points between 1e3 and 4e4 ADU fitted with the robust
weighted quadratic, gain = 1 / linear term with its error, BADFIT above 1e-3 relative error
(:func:`steps.vison.science.ptc.fit_ptc`, the constant the pairs' prescan read-noise variance
unless ``constant = "free"``), the full well where the PTC turns over (NaN: not reached; PTC02's
fluences stop at 90 % of the nominal full well).  Writes ``RUN/<session>/<TEST>/gain/`` with the
contract's columns after ``wave_nm`` (one row per wavelength, CCD and quadrant).
"""

from __future__ import annotations

import pyarrow as pa

from astroflow.step import FanOut
from steps.vison import tasks
from steps.vison.products import GAIN_WAVE
from steps.vison.ptc_meta import SCHEMA as PTC_SCHEMA, MetaParams, meta_item
from steps.vison.subtasks import KEY, task_items

SCHEMA = pa.schema([*PTC_SCHEMA, ("wave_nm", pa.int32())])


def meta_ccd(ctx, item) -> list[dict]:
    return meta_item(ctx, item, tasks.PTC02WAVE, "wave_nm", GAIN_WAVE)


ptc02_meta = FanOut("ptc02_meta", inputs=("inventory", "ptc02_check", "ptc02_extract"), params=MetaParams,
                    items=task_items(tasks.PTC02WAVE), process=meta_ccd, key=KEY, schema=SCHEMA, shard_size=1,
                    doc=__doc__)
