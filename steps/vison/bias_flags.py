"""BIAS0X compliance (vison's flags and the report's compliance tables): each flag with its reason.

Per test and CCD (fan-out), reading what the sub-tasks measured and applying the run's limits
(``settings.limits``, vison's ``perflimits``), one row per quadrant with the bitmask, the names
and the reasons (:mod:`steps.vison.flags`):

* inventory: a test absent from the EXP_LOG, a CCD file missing, frames whose EXP_LOG rows are
  missing, fewer frames than the test's structure: MISSDATA; a file that is not a complete FITS:
  BADDATA; frames with another exposure time than the structure's: WRONGTEST;
* serials: a CCD serial (EXP_LOG or header), ROE or RPSU serial other than the configured one,
  or changing within the test: WRONG_ROE_CONF;
* check: a prescan offset beyond ±tolerance of its nominal (or outside the sanity range where no
  nominal is configured), image or overscan minus prescan beyond ±10 ADU: POORQUALDATA; a
  prescan or overscan std outside the RON limits: RON_OOL; lost pixels: LOSTPIXELS; saturated: SATURATION;
  a frame that does not read: BADDATA (the error names the file);
* basic: the RON outside its limits: RON_OOL; a bias model that does not fit: BADFIT;
* hk: a key out of limits: HK_OOL (CCDTEMP_OOL for a CCD temperature; keys named ``CCDn_...`` go
  to that CCD, the others to every CCD); an HK file missing or unreadable: MISSDATA, BADDATA;
* any sub-task that failed on this CCD: SUBTASKCRASH with its error (the traceback is in the
  step's error table, ``astroflow status``).

Writes ``RUN/<session>/<TEST>/flags/``.
"""

from __future__ import annotations

import re

import pyarrow as pa

from astroflow.step import FanOut
from steps.vison import elvis, tasks
from steps.vison.bias_items import KEY, bias_items
from steps.vison.flags import FlagBook, names
from steps.vison.products import write_part

SCHEMA = pa.schema([
    ("task", pa.string()), ("test", pa.string()), ("ccd", pa.int8()), ("quadrant", pa.string()),
    ("flags", pa.int64()), ("flag_names", pa.list_(pa.string())), ("reasons", pa.list_(pa.string())),
])
SUBTASKS = ("bias_check", "bias_prep", "bias_basic", "bias_meta")
CCD_KEY = re.compile(r"^CCD(\d)_")


def _ranges(values: list[int]) -> str:
    return ", ".join(str(v) for v in sorted(values)[:10]) + (" ..." if len(values) > 10 else "")


def inventory_flags(book: FlagBook, frames: list[dict], test: str, ccd: int, serials: dict) -> None:
    struct = tasks.structure(test)
    kinds: dict[str, list[dict]] = {}
    for f in frames:
        kinds.setdefault(f["problem_kind"] or "ok", []).append(f)
    for f in kinds.get("absent", []):
        book.add("MISSDATA", "inventory", f["problem"], ccd=ccd, value=0, limit=f"{struct.frames} frames")
    for f in kinds.get("missing", []):
        book.add("MISSDATA", "inventory", f"ObsID {f['obsid']}: {f['problem']}", ccd=ccd)
    if kinds.get("unlisted"):
        obs = [f["obsid"] for f in kinds["unlisted"]]
        book.add("MISSDATA", "inventory", f"EXP_LOG rows missing for ObsIDs {_ranges(obs)}", ccd=ccd)
    for f in kinds.get("incomplete", []):
        book.add("BADDATA", "inventory", f["problem"], ccd=ccd)
    found = [f for f in frames if f["obsid"] >= 0]
    if found and len(found) < struct.frames:
        book.add("MISSDATA", "inventory", f"{len(found)} frames of {test} in the EXP_LOG, the structure has "
                 f"{struct.frames}", ccd=ccd, value=len(found), limit=struct.frames)
    bad_exp = [f["obsid"] for f in found if struct.exptime is not None and f["exptime"] is not None
               and f["exptime"] != struct.exptime]
    if bad_exp:
        book.add("WRONGTEST", "inventory", f"exposure time is not {struct.exptime:g} s in ObsIDs {_ranges(bad_exp)}",
                 ccd=ccd)
    listed = [f for f in found if f["problem_kind"] != "unlisted"]
    for key, column in ((f"CCD{ccd}", "serial"), ("ROE", "sn_roe"), ("RPSU", "sn_rpsu")):
        seen = sorted({f[column] for f in listed if f[column] is not None})
        if len(seen) > 1:
            book.add("WRONG_ROE_CONF", "inventory", f"{key} serial changes within the test (EXP_LOG)", ccd=ccd,
                     value=", ".join(seen))
        if key in serials and any(s != serials[key] for s in seen):
            book.add("WRONG_ROE_CONF", "inventory", f"{key} serial in the EXP_LOG is not the configured one",
                     ccd=ccd, value=", ".join(seen), limit=serials[key])


def check_flags(book: FlagBook, rows: list[dict], ccd: int, limits, serials: dict) -> None:
    for r in rows:
        if r["problem"] is not None:
            book.add("BADDATA", "check", r["problem"], ccd=ccd)
    good = [r for r in rows if r["problem"] is None]
    header_serials = sorted({r["serial"] for r in good if r["serial"] is not None})
    key = f"CCD{ccd}"
    if key in serials and any(s != serials[key] for s in header_serials):
        book.add("WRONG_ROE_CONF", "check", f"{key} serial in the frame headers is not the configured one", ccd=ccd,
                 value=", ".join(header_serials), limit=serials[key])
    lo_ron, hi_ron = limits.ron_adu
    for q in elvis.QUADRANTS:
        mine = [r for r in good if r["quadrant"] == q]
        pre = {r["obsid"]: r for r in mine if r["region"] == "prescan"}
        nominal = limits.nominal(ccd, q)
        lo, hi = ((nominal - limits.offset_tolerance_adu, nominal + limits.offset_tolerance_adu) if nominal is not None
                  else tuple(limits.offset_range_adu))
        _worst(book, "POORQUALDATA", ccd, q, "prescan offset", [(o, r["offset_adu"]) for o, r in pre.items()], lo, hi,
               "ADU")
        for region in ("image", "overscan"):
            diffs = [(r["obsid"], r["offset_adu"] - pre[r["obsid"]]["offset_adu"]) for r in mine
                     if r["region"] == region and r["obsid"] in pre]
            tol = limits.region_minus_prescan_adu
            _worst(book, "POORQUALDATA", ccd, q, f"{region} minus prescan offset", diffs, -tol, tol, "ADU")
        for region in ("prescan", "overscan"):  # the image's std holds the bias structure and defects
            stds = [(r["obsid"], r["std_adu"]) for r in mine if r["region"] == region]
            _worst(book, "RON_OOL", ccd, q, f"{region} std", stds, lo_ron, hi_ron, "ADU")
        lost = [(r["obsid"], r["n_lost"]) for r in mine if r["n_lost"] > limits.max_lost_pixels]
        if lost:
            o, n = max(lost, key=lambda x: x[1])
            book.add("LOSTPIXELS", "check", f"pixels at 0 in {len(lost)} frame(s), most in ObsID {o}", ccd=ccd,
                     quadrant=q, value=n, limit=limits.max_lost_pixels)
        sat = [(r["obsid"], r["n_saturated"]) for r in mine if r["n_saturated"] > limits.max_saturated_pixels]
        if sat:
            o, n = max(sat, key=lambda x: x[1])
            book.add("SATURATION", "check", f"pixels at 65535 in {len(sat)} frame(s), most in ObsID {o}", ccd=ccd,
                     quadrant=q, value=n, limit=limits.max_saturated_pixels)


def _worst(book: FlagBook, flag: str, ccd: int, q: str, what: str, values: list[tuple[int, float]], lo: float,
           hi: float, unit: str) -> None:
    out = [(o, v) for o, v in values if v is not None and not lo <= v <= hi]
    if out:
        o, v = max(out, key=lambda x: max(lo - x[1], x[1] - hi))
        book.add(flag, "check", f"{what} outside the limits in {len(out)} of {len(values)} frames, worst ObsID {o}",
                 ccd=ccd, quadrant=q, value=f"{v:.4g} {unit}", limit=f"[{lo:.4g}, {hi:.4g}] {unit}")


def basic_flags(book: FlagBook, rows: list[dict], ccd: int, limits) -> None:
    lo, hi = limits.ron_adu
    for r in rows:
        if r["n_frames"] and not lo <= r["ron_adu"] <= hi:
            book.add("RON_OOL", "basic", f"RON over {r['n_frames']} frames", ccd=ccd, quadrant=r["quadrant"],
                     value=f"{r['ron_adu']:.4g} ADU", limit=f"[{lo:.4g}, {hi:.4g}] ADU")
        for text in r["badfit"] or []:
            book.add("BADFIT", "basic", f"bias model: {text}", ccd=ccd, quadrant=r["quadrant"])


def hk_flags(book: FlagBook, rows: list[dict], ccd: int) -> None:
    for r in rows:
        if r["problem_kind"] is not None:
            book.add("MISSDATA" if r["problem_kind"] == "missing" else "BADDATA", "hk", r["problem"], ccd=ccd)
            continue
        if not r["ool"]:
            continue
        m = CCD_KEY.match(r["key"])
        if m and int(m[1]) != ccd:
            continue
        temp = re.fullmatch(r"CCD\d_TEMP_[TB]", r["key"]) is not None
        book.add("CCDTEMP_OOL" if temp else "HK_OOL", "hk", f"ObsID {r['obsid']}: {r['limit']}", ccd=ccd,
                 value=f"{r['min']:.4g}..{r['max']:.4g}")


def crash_flags(book: FlagBook, ctx, test: str, ccd: int, subtasks: tuple[str, ...] = SUBTASKS) -> None:
    for step in (*subtasks, "hk"):
        item = test if step == "hk" else f"{test}:{ccd}"
        for e in ctx.errors(step):
            if e["item"] == item:
                book.add("SUBTASKCRASH", step, f"{e['error_type']}: {e['message']}", ccd=ccd)


def flags_ccd(ctx, item) -> list[dict]:
    test, ccd, s = item["test"], item["ccd"], ctx.settings
    book = FlagBook()
    inventory_flags(book, ctx.lookup("inventory", test=test, ccd=ccd).to_pylist(), test, ccd, s.serials)
    if ctx.has_input("bias_check"):
        check_flags(book, ctx.lookup("bias_check", test=test, ccd=ccd).to_pylist(), ccd, s.limits, s.serials)
    if ctx.has_input("bias_basic"):
        basic_flags(book, ctx.lookup("bias_basic", test=test, ccd=ccd).to_pylist(), ccd, s.limits)
    if ctx.has_input("hk"):
        hk_flags(book, ctx.lookup("hk", test=test).to_pylist(), ccd)
    crash_flags(book, ctx, test, ccd)
    rows = []
    for q in elvis.QUADRANTS:
        mask = book.mask(ccd, q)
        rows.append({"task": test, "test": test, "ccd": ccd, "quadrant": q, "flags": mask, "flag_names": names(mask),
                     "reasons": [str(r) for r in book.of(ccd, q)]})
    write_part(ctx, "flags", test, f"ccd{ccd}", rows)
    return rows


bias_flags = FanOut("bias_flags", inputs=("inventory",), optional_inputs=("hk", *SUBTASKS), items=bias_items,
                    process=flags_ccd, key=KEY, schema=SCHEMA, shard_size=1, doc=__doc__)
