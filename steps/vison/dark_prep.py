"""DARK01 sub-task ``prep`` (vison ``prep_data``: offset subtraction): the offsets of each dark.

The prep every Task has (:func:`steps.vison.prepared.prep_step`): one trimmed prescan median per
frame and quadrant from the check (or one per row, ``preprocessing.offset_method = "row"``),
applied to the raw counts as meta reads them.  vison's DARK01 prep also subtracts the master
bias and masks the cosmetics; here meta subtracts the master bias it finds in the calibration
library (:mod:`steps.vison.dark_meta`), and no cosmetics mask exists before COSMETICS00.
"""

from __future__ import annotations

from steps.vison import tasks
from steps.vison.prepared import prep_step

dark_prep = prep_step(tasks.DARK01, __doc__)
