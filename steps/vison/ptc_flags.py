"""PTC0X compliance (vison's flags and the report's compliance tables): each flag with its reason.

The Task's ``ptc_flags`` step is the compliance step every Task has
(:func:`steps.vison.compliance.flags_step`: inventory, serials, HK and crashes: MISSDATA,
BADDATA, WRONG_ROE_CONF, HK_OOL, CCDTEMP_OOL, SUBTASKCRASH) with PTC0X's rules, one row per
quadrant and CCD:

* structure: fewer fluence levels than the test's structure (11 for PTC01): MISSDATA, with the
  levels found; the test is analysed as acquired, not refused;
* check: a frame that does not read: BADDATA; lost pixels: LOSTPIXELS; pixels at 65535 in a flat
  below half the full well: SATURATION;
* extract: a pair whose fluences differ by more than 10 % (skipped): FLUENCE_OOL;
* meta: a fit too uncertain (gain relative error above 1e-3), with too few points or a
  non-positive slope: BADFIT; the full well not reached by the brightest level although the
  structure goes past it: NONSATURATION; the pairs' prescan read noise outside the RON limits:
  RON_OOL.

Writes ``RUN/<session>/<TEST>/flags/``.
"""

from __future__ import annotations

import numpy as np

from steps.vison import elvis, tasks
from steps.vison.compliance import flags_step, frame_problems, pixel_flags
from steps.vison.flags import FlagBook

HALF_RANGE_ADU = 3.0e4  # where no full well was measured: "below half of it" means below this


def _gains(ctx, item: dict, task: tasks.Task) -> dict[str, dict]:
    step = task.step("meta")
    if not ctx.has_input(step):
        return {}
    return {r["quadrant"]: r for r in ctx.lookup(step, test=item["test"], ccd=item["ccd"]).to_pylist()}


def label(wave) -> str:
    return "unknown wavelength" if wave is None else f"{wave} nm"


def missing_levels(book: FlagBook, stage: str, test: str, ccd: int, found: set[float], where: str) -> None:
    """MISSDATA where fewer fluence levels (exposure times ``found``) than the structure's were taken."""
    struct = tasks.structure(test)
    if struct.levels and found and len(found) < len(struct.levels):
        book.add("MISSDATA", stage, f"{len(found)} fluence levels of {test} {where} (exposure times "
                 f"{', '.join(f'{t:g}' for t in sorted(found))} s), the structure has {len(struct.levels)}", ccd=ccd,
                 value=len(found), limit=len(struct.levels))


def structure_flags(book: FlagBook, ctx, item: dict, task: tasks.Task) -> None:
    test, ccd = item["test"], item["ccd"]
    frames = ctx.lookup("inventory", test=test, ccd=ccd).to_pylist()
    found = {round(f["exptime"], 3) for f in frames if f["obsid"] >= 0 and f["exptime"] is not None}
    missing_levels(book, "inventory", test, ccd, found, "in the EXP_LOG")


def check_flags(book: FlagBook, ctx, item: dict, task: tasks.Task) -> None:
    step = task.step("check")
    if not ctx.has_input(step):
        return
    ccd, limits, gains = item["ccd"], ctx.settings.limits, _gains(ctx, item, task)
    good = frame_problems(book, ctx.lookup(step, test=item["test"], ccd=ccd).to_pylist(), ccd)
    for q in elvis.QUADRANTS:
        mine = [r for r in good if r["quadrant"] == q]
        fwc = (gains.get(q) or {}).get("fwc_adu")
        half = fwc / 2 if fwc is not None and np.isfinite(fwc) else HALF_RANGE_ADU
        pixel_flags(book, mine, ccd, q, limits, [r for r in mine if r["fluence_adu"] < half],
                    f"flat(s) below half the full well ({half:.0f} ADU)")


def meta_flags(book: FlagBook, ctx, item: dict, task: tasks.Task) -> None:
    """The meta's rules, for each row (a PTC02WAVE row's reasons name its wavelength)."""
    step = task.step("meta")
    if not ctx.has_input(step):
        return
    ccd, struct = item["ccd"], tasks.structure(item["test"])
    lo, hi = ctx.settings.limits.ron_adu
    for r in ctx.lookup(step, test=item["test"], ccd=ccd).to_pylist():
        q, at = r["quadrant"], f" at {label(r['wave_nm'])}" if "wave_nm" in r else ""
        for text in r["badfit"] or []:
            book.add("BADFIT", "meta", f"PTC fit{at}: {text}", ccd=ccd, quadrant=q,
                     value=f"gain {r['gain_e_per_adu']:.4g} ± {r['gain_err']:.2g} e-/ADU")
        for text in r["skipped"] or []:
            book.add("FLUENCE_OOL", "extract", f"pair{at} skipped, {text}", ccd=ccd, quadrant=q)
        if not np.isfinite(r["fwc_adu"]) and any(f >= 100 for f, _ in struct.levels):
            book.add("NONSATURATION", "meta", f"the PTC does not turn over{at}: the full well was not reached",
                     ccd=ccd, quadrant=q, value=f"brightest level {r['max_fluence_adu']:.0f} ADU"
                     if r["max_fluence_adu"] is not None else "")
        if r["ron2_adu2"] is not None and np.isfinite(r["ron2_adu2"]):
            ron = float(np.sqrt(r["ron2_adu2"]))
            if not lo <= ron <= hi:
                book.add("RON_OOL", "extract", f"read noise of the pairs' prescans{at}", ccd=ccd, quadrant=q,
                         value=f"{ron:.4g} ADU", limit=f"[{lo:.4g}, {hi:.4g}] ADU")


ptc_flags = flags_step(tasks.PTC0X, (structure_flags, check_flags, meta_flags), __doc__)
