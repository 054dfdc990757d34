"""PTC0X compliance (vison's flags and the report's compliance tables): each flag with its reason.

Per test and CCD (fan-out), one row per quadrant with the bitmask, the names and the reasons
(:mod:`steps.vison.flags`), from what the sub-tasks measured and the run's limits:

* inventory, serials, HK, crashes: as for BIAS0X (:mod:`steps.vison.bias_flags`): MISSDATA,
  BADDATA, WRONG_ROE_CONF, HK_OOL, CCDTEMP_OOL, SUBTASKCRASH;
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
import pyarrow as pa

from astroflow.step import FanOut
from steps.vison import elvis, tasks
from steps.vison.bias_flags import SCHEMA, crash_flags, hk_flags, inventory_flags
from steps.vison.flags import FlagBook, names
from steps.vison.products import write_part
from steps.vison.ptc_items import KEY, ptc_items

SUBTASKS = ("ptc_check", "ptc_extract", "ptc_meta")
HALF_RANGE_ADU = 3.0e4  # where no full well was measured: "below half of it" means below this


def structure_flags(book: FlagBook, frames: list[dict], test: str, ccd: int) -> None:
    struct = tasks.structure(test)
    found = sorted({round(f["exptime"], 3) for f in frames if f["obsid"] >= 0 and f["exptime"] is not None})
    if struct.levels and found and len(found) < len(struct.levels):
        book.add("MISSDATA", "inventory", f"{len(found)} fluence levels of {test} in the EXP_LOG (exposure times "
                 f"{', '.join(f'{t:g}' for t in found)} s), the structure has {len(struct.levels)}", ccd=ccd,
                 value=len(found), limit=len(struct.levels))


def check_flags(book: FlagBook, rows: list[dict], gains: dict[str, dict], ccd: int, limits) -> None:
    for r in rows:
        if r["problem"] is not None:
            book.add("BADDATA", "check", r["problem"], ccd=ccd)
    for q in elvis.QUADRANTS:
        mine = [r for r in rows if r["problem"] is None and r["quadrant"] == q]
        lost = [(r["obsid"], r["n_lost"]) for r in mine if r["n_lost"] > limits.max_lost_pixels]
        if lost:
            o, n = max(lost, key=lambda x: x[1])
            book.add("LOSTPIXELS", "check", f"pixels at 0 in {len(lost)} frame(s), most in ObsID {o}", ccd=ccd,
                     quadrant=q, value=n, limit=limits.max_lost_pixels)
        fwc = (gains.get(q) or {}).get("fwc_adu")
        half = fwc / 2 if fwc is not None and np.isfinite(fwc) else HALF_RANGE_ADU
        sat = [(r["obsid"], r["n_saturated"]) for r in mine
               if r["fluence_adu"] < half and r["n_saturated"] > limits.max_saturated_pixels]
        if sat:
            o, n = max(sat, key=lambda x: x[1])
            book.add("SATURATION", "check", f"pixels at 65535 in {len(sat)} flat(s) below half the full well "
                     f"({half:.0f} ADU), most in ObsID {o}", ccd=ccd, quadrant=q, value=n,
                     limit=limits.max_saturated_pixels)


def meta_flags(book: FlagBook, rows: list[dict], test: str, ccd: int, limits) -> None:
    struct = tasks.structure(test)
    lo, hi = limits.ron_adu
    for r in rows:
        q = r["quadrant"]
        for text in r["badfit"] or []:
            book.add("BADFIT", "meta", f"PTC fit: {text}", ccd=ccd, quadrant=q,
                     value=f"gain {r['gain_e_per_adu']:.4g} ± {r['gain_err']:.2g} e-/ADU")
        for text in r["skipped"] or []:
            book.add("FLUENCE_OOL", "extract", f"pair skipped, {text}", ccd=ccd, quadrant=q)
        if not np.isfinite(r["fwc_adu"]) and any(f >= 100 for f, _ in struct.levels):
            book.add("NONSATURATION", "meta", "the PTC does not turn over: the full well was not reached", ccd=ccd,
                     quadrant=q, value=f"brightest level {r['max_fluence_adu']:.0f} ADU" if r["max_fluence_adu"]
                     is not None else "")
        if r["ron2_adu2"] is not None and np.isfinite(r["ron2_adu2"]):
            ron = float(np.sqrt(r["ron2_adu2"]))
            if not lo <= ron <= hi:
                book.add("RON_OOL", "extract", "read noise of the pairs' prescans", ccd=ccd, quadrant=q,
                         value=f"{ron:.4g} ADU", limit=f"[{lo:.4g}, {hi:.4g}] ADU")


def flags_ccd(ctx, item) -> list[dict]:
    test, ccd, s = item["test"], item["ccd"], ctx.settings
    book = FlagBook()
    frames = ctx.lookup("inventory", test=test, ccd=ccd).to_pylist()
    inventory_flags(book, frames, test, ccd, s.serials)
    structure_flags(book, frames, test, ccd)
    gains = {r["quadrant"]: r for r in ctx.lookup("ptc_meta", test=test, ccd=ccd).to_pylist()} \
        if ctx.has_input("ptc_meta") else {}
    if ctx.has_input("ptc_check"):
        check_flags(book, ctx.lookup("ptc_check", test=test, ccd=ccd).to_pylist(), gains, ccd, s.limits)
    meta_flags(book, list(gains.values()), test, ccd, s.limits)
    if ctx.has_input("hk"):
        hk_flags(book, ctx.lookup("hk", test=test).to_pylist(), ccd)
    crash_flags(book, ctx, test, ccd, SUBTASKS)
    rows = []
    for q in elvis.QUADRANTS:
        mask = book.mask(ccd, q)
        rows.append({"task": test, "test": test, "ccd": ccd, "quadrant": q, "flags": mask, "flag_names": names(mask),
                     "reasons": [str(r) for r in book.of(ccd, q)]})
    write_part(ctx, "flags", test, f"ccd{ccd}", rows)
    return rows


ptc_flags = FanOut("ptc_flags", inputs=("inventory",), optional_inputs=("hk", *SUBTASKS), items=ptc_items,
                   process=flags_ccd, key=KEY, schema=SCHEMA, shard_size=1, doc=__doc__)
