"""FLAT01 sub-task ``prep`` (vison ``prepare_images``: offset subtraction): the offsets of each flat.

The prep every Task has (:func:`steps.vison.prepared.prep_step`): one trimmed prescan median per
frame and quadrant from the check (or one per row, ``preprocessing.offset_method = "row"``),
applied to the raw counts as meta reads them.  vison's FLAT0X prep also subtracts the bias
structure where one is available and masks the cosmetics; here neither: the bias structure (a
few ADU at most) is < 0.03 % of a 25 % flat and cancels in the flat over its smooth model, and
the response defects are what FLAT01 measures.
"""

from __future__ import annotations

from steps.vison import tasks
from steps.vison.prepared import prep_step

flat_prep = prep_step(tasks.FLAT01, __doc__)
