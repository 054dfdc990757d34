"""COSMETICS00 sub-task ``prep`` (vison ``pre_process``: ``sub_offset``, median of the prescan with
trims [25, 5]): the offsets of each bias and flat.

The prep every Task has (:func:`steps.vison.prepared.prep_step`): one trimmed prescan median per
frame and quadrant from the check (or one per row, ``preprocessing.offset_method = "row"``),
applied to the raw counts as the masks sub-task reads them.
"""

from __future__ import annotations

from steps.vison import tasks
from steps.vison.prepared import prep_step

cosmetics_prep = prep_step(tasks.COSMETICS00, __doc__)
