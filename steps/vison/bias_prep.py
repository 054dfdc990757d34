"""BIAS0X sub-task ``prep`` (vison ``prep_data``): the offset each frame's quadrants are corrected by.

BIAS0X subtracts one offset per quadrant, the median of the trimmed prescan (``offsetkwargs``:
``method='median'``, ``scan='pre'``, ``trimscan=[25, 5]``), taken here from the check's
prescan rows; ``preprocessing.offset_method = "row"`` subtracts one median per row instead
(vison's default for other Tasks; on a bias it adds each row median's noise and inflates the read
noise by 5-10 %), read from the frames.  vison stored the offset-subtracted frames as pickles
(1.2 GB for a BIAS01); here the subtraction is kept as the offsets to subtract, and the later
sub-tasks apply them to the raw counts as they read them (:mod:`steps.vison.prepared`, the prep
of every Task), the same numbers without the copy.
"""

from __future__ import annotations

from steps.vison import tasks
from steps.vison.prepared import prep_step

bias_prep = prep_step(tasks.BIAS0X, __doc__)
