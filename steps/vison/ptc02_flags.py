"""PTC02WAVE compliance (vison's flags and the report's compliance tables): each flag with its reason.

The compliance step every Task has (:func:`steps.vison.compliance.flags_step`: MISSDATA, BADDATA,
WRONG_ROE_CONF, HK_OOL, CCDTEMP_OOL, SUBTASKCRASH) with PTC0X's rules (:mod:`steps.vison.ptc_flags`, the same functions)
at each wavelength, one row per quadrant and CCD:

* structure: at a wavelength, fewer fluence levels than the structure's 6: MISSDATA, naming the
  wavelength and the levels found; analysed as acquired;
* check: a frame that does not read: BADDATA; lost pixels: LOSTPIXELS; pixels at 65535 in a flat
  below half the full well: SATURATION (:func:`steps.vison.ptc_flags.check_flags`);
* extract: a pair whose fluences differ by more than 10 % (skipped): FLUENCE_OOL;
* meta: a fit too uncertain (gain relative error above 1e-3), with too few points or a
  non-positive slope: BADFIT; the pairs' prescan read noise outside the RON limits: RON_OOL; each
  reason names the wavelength.

Writes ``RUN/<session>/<TEST>/flags/``.
"""

from __future__ import annotations

from collections import defaultdict

from steps.vison import tasks
from steps.vison.compliance import flags_step
from steps.vison.flags import FlagBook
from steps.vison.ptc_flags import check_flags, label, meta_flags, missing_levels


def structure_flags(book: FlagBook, ctx, item: dict, task: tasks.Task) -> None:
    step = task.step("check")
    if not ctx.has_input(step):
        return
    levels: dict = defaultdict(set)
    for r in ctx.lookup(step, test=item["test"], ccd=item["ccd"]).to_pylist():
        if r["problem"] is None:
            levels[r["wave_nm"]].add(round(r["exptime"], 3))
    for wave, found in levels.items():
        missing_levels(book, "check", item["test"], item["ccd"], found, f"at {label(wave)}")


ptc02_flags = flags_step(tasks.PTC02WAVE, (structure_flags, check_flags, meta_flags), __doc__)
