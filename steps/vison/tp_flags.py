"""TP01 compliance (vison's flags and the report's compliance tables): each flag with its reason.

The Task's ``tp_flags`` step is the compliance step every Task has
(:func:`steps.vison.compliance.flags_step`: inventory, serials, HK and crashes: MISSDATA,
BADDATA, WRONGTEST, WRONG_ROE_CONF, HK_OOL, CCDTEMP_OOL, SUBTASKCRASH) with TP01's rules, one
row per quadrant and CCD:

* check: the prescan and overscan offsets and noise as for BIAS0X
  (:func:`steps.vison.compliance.offsets_flags`: POORQUALDATA, RON_OOL, LOSTPIXELS, SATURATION,
  BADDATA, WRONG_ROE_CONF; the image holds the injection and is not measured there);
* structure: fewer dwells than vison's default (TOI_TP 200, 1000, 2000, 4000, 8000 us), no
  frame without pumping (the injection reference), no pumped frame that injects the quadrant:
  MISSDATA, with what was found; the test is analysed as acquired;
* meta: traps whose tau and Pc could not be fitted (fewer than 3 dwells): BADFIT, with the count.

Writes ``RUN/<session>/<TEST>/flags/``.
"""

from __future__ import annotations

import numpy as np

from steps.vison import tasks
from steps.vison.compliance import flags_step, offsets_flags
from steps.vison.flags import FlagBook


DWELLS_US = (200, 1000, 2000, 4000, 8000)  # vison's TP01 toi_tpv


def structure_flags(book: FlagBook, ctx, item: dict, task: tasks.Task) -> None:
    step = task.step("extract")
    if not ctx.has_input(step):
        return
    ccd = item["ccd"]
    for r in ctx.lookup(step, test=item["test"], ccd=ccd).to_pylist():
        if r["kind"] != "quadrant":
            continue
        q, dwells = r["quadrant"], r["dwells_us"] or []
        if not dwells:
            book.add("MISSDATA", "extract", f"no pumped frame of {item['test']} injects this quadrant "
                     f"({r['n_skipped']} pumped frame(s) without injection)", ccd=ccd, quadrant=q)
        elif len(dwells) < len(DWELLS_US):
            book.add("MISSDATA", "extract", f"{len(dwells)} dwells (TOI_TP {', '.join(f'{t:g}' for t in dwells)} us), "
                     f"the structure has {len(DWELLS_US)}", ccd=ccd, quadrant=q, value=len(dwells),
                     limit=len(DWELLS_US))
        if not r["n_reference"]:
            book.add("MISSDATA", "extract", "no frame without pumping (the injection reference)", ccd=ccd, quadrant=q)


def meta_flags(book: FlagBook, ctx, item: dict, task: tasks.Task) -> None:
    step = task.step("meta")
    if not ctx.has_input(step):
        return
    failed: dict[str, int] = {}
    for r in ctx.lookup(step, test=item["test"], ccd=item["ccd"]).to_pylist():
        if not np.isfinite(r["tau"]):
            failed[r["quadrant"]] = failed.get(r["quadrant"], 0) + 1
    for q, n in sorted(failed.items()):
        book.add("BADFIT", "meta", f"{n} trap(s) without a tau and Pc fit (fewer than 3 dwells)", ccd=item["ccd"],
                 quadrant=q, value=n)


tp_flags = flags_step(tasks.TP01, (offsets_flags, structure_flags, meta_flags), __doc__)
