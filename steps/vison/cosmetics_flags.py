"""COSMETICS00 compliance (vison's flags and the report's compliance tables): each flag with its reason.

The Task's ``cosmetics_flags`` step is the compliance step every Task has
(:func:`steps.vison.compliance.flags_step`: inventory, serials, HK and crashes: MISSDATA,
BADDATA, WRONG_ROE_CONF, HK_OOL, CCDTEMP_OOL, SUBTASKCRASH) with COSMETICS00's rules, one row per
quadrant and CCD:

* structure: the biases or the flats missing (two exposure times in the structure): MISSDATA
  (:func:`steps.vison.ptc_flags.structure_flags`); the masks are made from what was acquired;
* check: the offsets rules of an exposed frame (:func:`steps.vison.compliance.exposed_offsets_flags`:
  POORQUALDATA, RON_OOL, WRONG_ROE_CONF, LOSTPIXELS, SATURATION, BADDATA).  vison's COSMETICS00
  check has no limits of its own (its ``check_metrics_ST`` is empty).

Writes ``RUN/<session>/<TEST>/flags/``.
"""

from __future__ import annotations

from steps.vison import tasks
from steps.vison.compliance import exposed_offsets_flags, flags_step
from steps.vison.ptc_flags import structure_flags

cosmetics_flags = flags_step(tasks.COSMETICS00, (structure_flags, exposed_offsets_flags), __doc__)
