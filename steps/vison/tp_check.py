"""TP01 sub-task ``check`` (vison ``check_data``): offsets and noise of every pumped frame, and its commands.

CHINJ01's check (:func:`steps.vison.chinj_check.injection_measure`: offset and std of the
prescan and serial overscan of each frame and quadrant, lost and saturated pixels, the header's
serial, and the injection and pumping commands: IG1, ``ID_DLY``, ``CHINJ_ON``/``CHINJ_OF``,
``V_TPUMP``, ``V_TP_MOD``, ``TOI_TP``, ``V_TP_CNT``) over the TP01 frames, fan-out by test and
CCD.  Writes ``RUN/<session>/<TEST>/offsets/``.
"""

from __future__ import annotations

from astroflow.step import FanOut, Resources
from steps.vison import tasks
from steps.vison.chinj_check import SCHEMA, check_ccd
from steps.vison.subtasks import KEY, task_items


tp_check = FanOut("tp_check", inputs=("inventory",), items=task_items(tasks.TP01), process=check_ccd, key=KEY,
                  schema=SCHEMA, shard_size=1, resources=Resources(cpu="1", memory="2Gi"), doc=__doc__)
