"""COSMETICS00 sub-task ``check`` (vison ``check_data``): offsets, noise and fluence of every frame.

The same measurement as BIAS0X's check (:func:`steps.vison.bias_check.check_ccd`: the offset and
std of the prescan, image and serial overscan of each frame and quadrant, vison's trims, lost and
saturated pixels counted, the header's serial), run over the COSMETICS00 biases and flats
(fan-out by test and CCD).  vison's COSMETICS00 check holds them against no limit of its own;
the flags step applies the offsets and noise limits every Task has.  Writes
``RUN/<session>/<TEST>/offsets/``.
"""

from __future__ import annotations

from astroflow.step import FanOut, Resources

from steps.vison import tasks
from steps.vison.bias_check import SCHEMA, check_ccd
from steps.vison.subtasks import KEY, task_items

cosmetics_check = FanOut("cosmetics_check", inputs=("inventory",), items=task_items(tasks.COSMETICS00),
                         process=check_ccd, key=KEY, schema=SCHEMA, shard_size=1,
                         resources=Resources(cpu="1", memory="2Gi"), doc=__doc__)
