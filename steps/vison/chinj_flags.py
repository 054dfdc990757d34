"""CHINJ01 compliance (vison's flags and the report's compliance tables): each flag with its reason.

The Task's ``chinj_flags`` step is the compliance step every Task has
(:func:`steps.vison.compliance.flags_step`: inventory, serials, HK and crashes: MISSDATA,
BADDATA, WRONGTEST, WRONG_ROE_CONF, HK_OOL, CCDTEMP_OOL, SUBTASKCRASH) with CHINJ01's rules,
one row per quadrant and CCD:

* check: the prescan and overscan offsets and noise as for BIAS0X
  (:func:`steps.vison.compliance.offsets_flags`: POORQUALDATA, RON_OOL, LOSTPIXELS, SATURATION,
  BADDATA, WRONG_ROE_CONF; the check does not measure the image, which holds the injection);
* structure: fewer IG1 values per drain delay or fewer delays than vison's default (2-7 V in
  0.25 V steps: 21; two delays): MISSDATA, with what was found; the test is analysed as acquired;
* meta: a fit with a problem (fewer than 4 IG1 values, the threshold or the notch outside the
  IG1 range, the rise not sampled, no hinge that fits; no injection at any drain delay: a delay
  that injects the other half of the CCD is not one): BADFIT, with the problem.

Writes ``RUN/<session>/<TEST>/flags/``.
"""

from __future__ import annotations

from collections import defaultdict

from steps.vison import tasks
from steps.vison.compliance import flags_step, offsets_flags
from steps.vison.flags import FlagBook


IG1_VALUES = 21  # vison's CHINJ01: IG1s [2, 7] V in dIG1 = 0.25 V
DRAIN_DELAYS = 2


def structure_flags(book: FlagBook, ctx, item: dict, task: tasks.Task) -> None:
    step = task.step("extract")
    if not ctx.has_input(step):
        return
    ig1: dict[float, set[float]] = defaultdict(set)
    for r in ctx.lookup(step, test=item["test"], ccd=item["ccd"]).to_pylist():
        ig1[r["id_dly"]].add(round(r["ig1_v"], 3))
    if ig1 and len(ig1) < DRAIN_DELAYS:
        book.add("MISSDATA", "extract", f"{len(ig1)} drain delay(s) in {item['test']} "
                 f"({', '.join(f'{d:g}' for d in sorted(ig1))}), the structure has {DRAIN_DELAYS}", ccd=item["ccd"],
                 value=len(ig1), limit=DRAIN_DELAYS)
    for delay, values in sorted(ig1.items()):
        if len(values) < IG1_VALUES:
            book.add("MISSDATA", "extract", f"{len(values)} IG1 values at drain delay {delay:g} "
                     f"({min(values):g}-{max(values):g} V), the structure has {IG1_VALUES}", ccd=item["ccd"],
                     value=len(values), limit=IG1_VALUES)


def meta_flags(book: FlagBook, ctx, item: dict, task: tasks.Task) -> None:
    step = task.step("meta")
    if not ctx.has_input(step):
        return
    rows = ctx.lookup(step, test=item["test"], ccd=item["ccd"]).to_pylist()
    for r in rows:
        mine = [x for x in rows if x["quadrant"] == r["quadrant"]]
        for text in r["problems"] or []:
            if text.startswith("no injection") and not all(
                    any(t.startswith("no injection") for t in x["problems"] or []) for x in mine):
                continue  # vison injects one half of the CCD per drain delay: the other delay injects here
            book.add("BADFIT", "meta", f"injection against IG1 at drain delay {r['id_dly']:g}: {text}",
                     ccd=item["ccd"], quadrant=r["quadrant"], value=f"threshold {r['threshold_v']:.3g} V")


chinj_flags = flags_step(tasks.CHINJ01, (offsets_flags, structure_flags, meta_flags), __doc__)
