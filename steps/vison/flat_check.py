"""FLAT01 sub-task ``check`` (vison ``check_data`` of FLAT0X): offsets, noise and fluence of every flat.

The same measurement as BIAS0X's check (:func:`steps.vison.bias_check.check_ccd`: the offset and
std of the prescan, image and serial overscan of each frame and quadrant, vison's trims, lost and
saturated pixels counted, the header's serial), run over the FLAT01 frames (fan-out by test and
CCD); the image minus prescan offset is the flat's fluence, which the flags step holds against
vison's FLAT0X limits (``FLU_lims``: 25, 50, 75 % of 2^16 ADU, ±10 %).  Writes
``RUN/<session>/<TEST>/offsets/``.
"""

from __future__ import annotations

from astroflow.step import FanOut, Resources

from steps.vison import tasks
from steps.vison.bias_check import SCHEMA, check_ccd
from steps.vison.subtasks import KEY, task_items

flat_check = FanOut("flat_check", inputs=("inventory",), items=task_items(tasks.FLAT01), process=check_ccd, key=KEY,
                    schema=SCHEMA, shard_size=1, resources=Resources(cpu="1", memory="2Gi"), doc=__doc__)
