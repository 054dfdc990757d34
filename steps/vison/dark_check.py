"""DARK01 sub-task ``check`` (vison ``check_data``): offsets and noise of every dark's regions.

The same measurement as BIAS0X's check (:func:`steps.vison.bias_check.check_ccd`: the offset and
std of the prescan, image and serial overscan of each frame and quadrant, vison's trims, lost and
saturated pixels counted, the header's serial), run over the DARK01 frames (fan-out by test and
CCD); the image minus prescan offset is the dark's fluence, which the flags step holds against
vison's DARK01 limits (``Flu_lims``, -2..5 ADU).  Writes ``RUN/<session>/<TEST>/offsets/``.
"""

from __future__ import annotations

from astroflow.step import FanOut, Resources
from steps.vison import tasks
from steps.vison.bias_check import SCHEMA, check_ccd
from steps.vison.subtasks import KEY, task_items

dark_check = FanOut("dark_check", inputs=("inventory",), items=task_items(tasks.DARK01), process=check_ccd, key=KEY,
                    schema=SCHEMA, shard_size=1, resources=Resources(cpu="1", memory="2Gi"), doc=__doc__)
