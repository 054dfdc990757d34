"""NL02 compliance (vison's flags and the report's compliance tables): each flag with its reason.

The compliance step every Task has (:func:`steps.vison.compliance.flags_step`: MISSDATA, BADDATA,
WRONG_ROE_CONF, HK_OOL, CCDTEMP_OOL, SUBTASKCRASH) with NL02's rules, one row per quadrant and CCD:

* structure: fewer fluence levels (exposure time and source) than the structure's 17: MISSDATA,
  analysed as acquired; fewer than two stability frames (the lamp's drift not corrected): MISSDATA;
* check: a frame that does not read: BADDATA; lost pixels: LOSTPIXELS; pixels at 65535 in a flat
  below half the full well (NL02's brightest flats saturate by design): SATURATION;
* NL: a stability frame more than 10 % from the stability frames' median (vison's NL0X
  ``FLU_lims`` for them): FLUENCE_OOL; a curve that cannot be fitted (too few points, singular):
  BADFIT; no flat at the full well (the curve's maximum is then over the fluences measured, not
  to the full well): NONSATURATION.

Writes ``RUN/<session>/<TEST>/flags/``.
"""

from __future__ import annotations

import numpy as np

from steps.vison import elvis, tasks
from steps.vison.compliance import flags_step, frame_problems, pixel_flags
from steps.vison.flags import FlagBook


def _curves(ctx, item: dict, task: tasks.Task) -> dict[str, dict]:
    step = task.step("nl")
    if not ctx.has_input(step):
        return {}
    return {r["quadrant"]: r for r in ctx.lookup(step, test=item["test"], ccd=item["ccd"]).to_pylist()}


def check_flags(book: FlagBook, ctx, item: dict, task: tasks.Task) -> None:
    step = task.step("check")
    if not ctx.has_input(step):
        return
    ccd, struct, curves = item["ccd"], tasks.structure(item["test"]), _curves(ctx, item, task)
    good = frame_problems(book, ctx.lookup(step, test=item["test"], ccd=ccd).to_pylist(), ccd)
    levels = {(round(r["exptime"], 3), r["source"], r["wave_pos"]) for r in good if r["exptime"]}
    if good and struct.levels and len(levels) < len(struct.levels):
        book.add("MISSDATA", "check", f"{len(levels)} fluence levels (exposure time and source) of {item['test']}, "
                 f"the structure has {len(struct.levels)}", ccd=ccd, value=len(levels), limit=len(struct.levels))
    for q in elvis.QUADRANTS:
        mine = [r for r in good if r["quadrant"] == q]
        top = (curves.get(q) or {}).get("fluence_hi_adu")
        half = top / 2 if top is not None and np.isfinite(top) else max((r["fluence_adu"] for r in mine), default=0) / 2
        pixel_flags(book, mine, ccd, q, ctx.settings.limits, [r for r in mine if r["fluence_adu"] < half],
                    f"flat(s) below half the full well ({half:.0f} ADU)")


def nl_flags(book: FlagBook, ctx, item: dict, task: tasks.Task) -> None:
    ccd = item["ccd"]
    for q, r in _curves(ctx, item, task).items():
        for text in r["drift_problems"] or []:
            book.add("MISSDATA", "nl", text, ccd=ccd, quadrant=q, value=r["n_stability"], limit=2)
        for text in r["stability_deviants"] or []:
            book.add("FLUENCE_OOL", "nl", f"stability frame {text}", ccd=ccd, quadrant=q)
        for text in r["problems"] or []:
            book.add("BADFIT", "nl", f"non-linearity fit: {text}", ccd=ccd, quadrant=q)
        if r["n_frames"] and not r["n_clipped"]:
            book.add("NONSATURATION", "nl", "no flat reaches the full well: the maximum non-linearity is over "
                     "the fluences measured", ccd=ccd, quadrant=q, value=f"brightest {r['fluence_hi_adu']:.0f} ADU")


nl02_flags = flags_step(tasks.NL02, (check_flags, nl_flags), __doc__)
