"""FLAT01 compliance (vison's flags and the report's compliance tables): each flag with its reason.

The Task's ``flat_flags`` step is the compliance step every Task has
(:func:`steps.vison.compliance.flags_step`: inventory, serials, HK and crashes: MISSDATA,
BADDATA, WRONG_ROE_CONF, HK_OOL, CCDTEMP_OOL, SUBTASKCRASH) with FLAT01's rules, one row per
quadrant and CCD:

* structure: fewer fluence levels than the test's structure (3): MISSDATA, with the levels found
  (:func:`steps.vison.ptc_flags.structure_flags`); the test is analysed as acquired;
* check (:func:`steps.vison.compliance.exposed_offsets_flags`, the offsets rules that hold for an
  exposed frame): a prescan offset off its nominal, the overscan minus prescan
  beyond ±10 ADU: POORQUALDATA; a prescan or overscan std outside the RON limits: RON_OOL; a
  header serial other than the configured one: WRONG_ROE_CONF; lost and saturated pixels:
  LOSTPIXELS, SATURATION; a frame that does not read: BADDATA;
* fluence: a flat's image minus prescan offset outside vison's FLAT0X ``FLU_lims`` (its level's
  nominal fraction of 2^16 ADU, ±10 %; the levels in exposure-time order): FLUENCE_OOL;
* meta: a quadrant whose PRNU could not be measured: BADFIT.

Writes ``RUN/<session>/<TEST>/flags/``.
"""

from __future__ import annotations

import numpy as np

from steps.vison import elvis, tasks
from steps.vison.compliance import exposed_offsets_flags, flags_step, worst
from steps.vison.flags import FlagBook
from steps.vison.ptc_flags import structure_flags

ADC_RANGE_ADU = 2.0**16
FLUENCE_TOLERANCE = 0.10  # vison's FLU_lims: the nominal fluence +-10 %


def fluence_flags(book: FlagBook, ctx, item: dict, task: tasks.Task) -> None:
    step = task.step("check")
    if not ctx.has_input(step):
        return
    test, ccd = item["test"], item["ccd"]
    nominal = [f for f, _ in tasks.structure(test).levels]
    exptimes = {f["obsid"]: round(f["exptime"], 3) for f in ctx.lookup("inventory", test=test, ccd=ccd).to_pylist()
                if f["obsid"] >= 0 and f["exptime"] is not None}
    order = {t: i for i, t in enumerate(sorted(set(exptimes.values())))}
    good = [r for r in ctx.lookup(step, test=test, ccd=ccd).to_pylist() if r["problem"] is None]
    for q in elvis.QUADRANTS:
        pre = {r["obsid"]: r["offset_adu"] for r in good if r["quadrant"] == q and r["region"] == "prescan"}
        by_level: dict[int, list[tuple[int, float]]] = {}
        for r in good:
            if r["quadrant"] == q and r["region"] == "image" and r["obsid"] in pre and r["obsid"] in exptimes:
                level = by_level.setdefault(order[exptimes[r["obsid"]]], [])
                level.append((r["obsid"], r["offset_adu"] - pre[r["obsid"]]))
        for i, values in sorted(by_level.items()):
            if i >= len(nominal):
                continue
            centre = nominal[i] / 100.0 * ADC_RANGE_ADU
            worst(book, "FLUENCE_OOL", ccd, q, f"fluence of the {nominal[i]:g} % level (image minus prescan offset)",
                  values, centre * (1 - FLUENCE_TOLERANCE), centre * (1 + FLUENCE_TOLERANCE), "ADU")


def meta_flags(book: FlagBook, ctx, item: dict, task: tasks.Task) -> None:
    step = task.step("meta")
    if not ctx.has_input(step):
        return
    for r in ctx.lookup(step, test=item["test"], ccd=item["ccd"]).to_pylist():
        if r["prnu_pct"] is None or not np.isfinite(r["prnu_pct"]):
            book.add("BADFIT", "meta", f"PRNU of level {r['level']} not measured (too few good pixels)",
                     ccd=item["ccd"], quadrant=r["quadrant"])


flat_flags = flags_step(tasks.FLAT01, (structure_flags, exposed_offsets_flags, fluence_flags, meta_flags), __doc__)
