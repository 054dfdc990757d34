"""PTC02WAVE sub-task ``extract_PTC`` (vison ``extract_PTC``): pair variances against signal, per wavelength.

PTC0X's extraction (:func:`steps.vison.ptc_extract.extract_item`, the same loop) at each wavelength of the test apart (the
check's ``wave_nm``; a test may hold several): the frames at one wavelength grouped by exposure
time and paired in ObsID order (:func:`steps.vison.ptc_extract.pairs`), a pair whose fluences
differ by more than 10 % skipped and recorded, per pair, quadrant and 300 x 300-pixel tile the
first frame's median and ``std(difference)^2 / 2``, and the pair's prescan read-noise variance
(:func:`steps.vison.science.ptc.pair_points`, :func:`~steps.vison.science.ptc.prescan_variance`).
"""

from __future__ import annotations

import pyarrow as pa

from astroflow.step import FanOut, Resources
from steps.vison import tasks
from steps.vison.ptc_extract import SCHEMA as PTC_SCHEMA, ExtractParams, extract_item
from steps.vison.subtasks import KEY, task_items

SCHEMA = pa.schema([*PTC_SCHEMA, ("wave_nm", pa.int32())])


def extract_ccd(ctx, item) -> list[dict]:
    return extract_item(ctx, item, tasks.PTC02WAVE, "wave_nm")


ptc02_extract = FanOut("ptc02_extract", inputs=("inventory", "ptc02_check"), params=ExtractParams,
                       items=task_items(tasks.PTC02WAVE), process=extract_ccd, key=KEY, schema=SCHEMA, shard_size=1,
                       resources=Resources(cpu="1", memory="1Gi"), doc=__doc__)
