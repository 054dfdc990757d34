"""DARK01 compliance (vison's flags and the report's compliance tables): each flag with its reason.

The Task's ``dark_flags`` step is the compliance step every Task has
(:func:`steps.vison.compliance.flags_step`: inventory, serials, HK and crashes: MISSDATA,
BADDATA, WRONGTEST for another exposure time than 565 s, WRONG_ROE_CONF, HK_OOL, CCDTEMP_OOL,
SUBTASKCRASH, e.g. no master bias in the calibration library) with DARK01's rules, one row per
quadrant and CCD:

* check: the offsets and regions' noise as for BIAS0X (:func:`steps.vison.compliance.offsets_flags`:
  POORQUALDATA, RON_OOL, LOSTPIXELS, SATURATION, BADDATA, WRONG_ROE_CONF); the image minus
  prescan offset of a dark outside vison's DARK01 ``Flu_lims`` (``limits.dark_fluence_adu``,
  -2..5 ADU): FLUENCE_OOL.

Writes ``RUN/<session>/<TEST>/flags/``.
"""

from __future__ import annotations

from steps.vison import elvis, tasks
from steps.vison.compliance import flags_step, offsets_flags, worst
from steps.vison.flags import FlagBook


def fluence_flags(book: FlagBook, ctx, item: dict, task: tasks.Task) -> None:
    step = task.step("check")
    if not ctx.has_input(step):
        return
    ccd, (lo, hi) = item["ccd"], ctx.settings.limits.dark_fluence_adu
    good = [r for r in ctx.lookup(step, test=item["test"], ccd=ccd).to_pylist() if r["problem"] is None]
    for q in elvis.QUADRANTS:
        pre = {r["obsid"]: r["offset_adu"] for r in good if r["quadrant"] == q and r["region"] == "prescan"}
        fluence = [(r["obsid"], r["offset_adu"] - pre[r["obsid"]]) for r in good
                   if r["quadrant"] == q and r["region"] == "image" and r["obsid"] in pre]
        worst(book, "FLUENCE_OOL", ccd, q, "dark fluence (image minus prescan offset)", fluence, lo, hi, "ADU")


dark_flags = flags_step(tasks.DARK01, (offsets_flags, fluence_flags), __doc__)
