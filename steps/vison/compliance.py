"""The compliance step of every vison Task (vison's flags and the report's compliance tables).

One mechanism for all Tasks: :func:`flags_step` builds a Task's ``{prefix}_flags`` step, fanned
out per test and CCD, one row per quadrant with the bitmask, the names and the reasons
(:mod:`steps.vison.flags`).  Every Task gets the flags below; a Task adds its own rules (a
function ``rule(book, ctx, item, task)`` reading what its sub-tasks measured):

* inventory: a test absent from the EXP_LOG, a CCD file missing, frames whose EXP_LOG rows are
  missing, fewer frames than the test's structure: MISSDATA; a file that is not a complete FITS:
  BADDATA; frames with another exposure time than the structure's: WRONGTEST;
* serials: a CCD serial (EXP_LOG), ROE or RPSU serial other than the configured one, or
  changing within the test: WRONG_ROE_CONF;
* hk: a key out of limits: HK_OOL (CCDTEMP_OOL for a CCD temperature; keys named ``CCDn_...`` go
  to that CCD, the others to every CCD); an HK file missing or unreadable: MISSDATA, BADDATA;
* any sub-task that failed on this CCD: SUBTASKCRASH with its error (the traceback is in the
  step's error table, ``astroflow status``).

Shared rules for the Tasks' checks: :func:`frame_problems` (a frame that does not read: BADDATA,
the error names the file), :func:`offsets_flags` (the check's region offsets and noise against
the performance limits, for the Tasks whose check measures them), :func:`pixel_flags` (lost and
saturated pixels), :func:`exposed_offsets_flags` (the same for exposed frames).  Writes ``RUN/<session>/<TEST>/flags/``.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pyarrow as pa

from astroflow.step import FanOut
from steps.vison import elvis, tasks
from steps.vison.flags import FlagBook, names
from steps.vison.products import write_part
from steps.vison.subtasks import KEY, task_items

SCHEMA = pa.schema([
    ("task", pa.string()), ("test", pa.string()), ("ccd", pa.int8()), ("quadrant", pa.string()),
    ("flags", pa.int64()), ("flag_names", pa.list_(pa.string())), ("reasons", pa.list_(pa.string())),
])
CCD_KEY = re.compile(r"^CCD(\d)_")
Rule = Callable[[FlagBook, object, dict, tasks.Task], None]


def ranges(values: list[int]) -> str:
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
        book.add("MISSDATA", "inventory", f"EXP_LOG rows missing for ObsIDs {ranges(obs)}", ccd=ccd)
    for f in kinds.get("incomplete", []):
        book.add("BADDATA", "inventory", f["problem"], ccd=ccd)
    found = [f for f in frames if f["obsid"] >= 0]
    if found and len(found) < struct.frames:
        book.add("MISSDATA", "inventory", f"{len(found)} frames of {test} in the EXP_LOG, the structure has "
                 f"{struct.frames}", ccd=ccd, value=len(found), limit=struct.frames)
    bad_exp = [f["obsid"] for f in found if struct.exptime is not None and f["exptime"] is not None
               and f["exptime"] != struct.exptime]
    if bad_exp:
        book.add("WRONGTEST", "inventory", f"exposure time is not {struct.exptime:g} s in ObsIDs {ranges(bad_exp)}",
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


def crash_flags(book: FlagBook, ctx, test: str, ccd: int, subtasks: tuple[str, ...]) -> None:
    for step in (*subtasks, "hk"):
        item = test if step == "hk" else f"{test}:{ccd}"
        for e in ctx.errors(step):
            if e["item"] == item:
                book.add("SUBTASKCRASH", step, f"{e['error_type']}: {e['message']}", ccd=ccd)


def frame_problems(book: FlagBook, rows: list[dict], ccd: int) -> list[dict]:
    """BADDATA for each frame the check could not read; returns the rows of the frames it read."""
    for r in rows:
        if r["problem"] is not None:
            book.add("BADDATA", "check", r["problem"], ccd=ccd)
    return [r for r in rows if r["problem"] is None]


def worst(book: FlagBook, flag: str, ccd: int, q: str, what: str, values: list[tuple[int, float]], lo: float,
          hi: float, unit: str, subtask: str = "check") -> None:
    """``flag`` once for the values (ObsID, value) outside [lo, hi], naming the worst."""
    out = [(o, v) for o, v in values if v is not None and not lo <= v <= hi]
    if out:
        o, v = max(out, key=lambda x: max(lo - x[1], x[1] - hi))
        book.add(flag, subtask, f"{what} outside the limits in {len(out)} of {len(values)} frames, worst ObsID {o}",
                 ccd=ccd, quadrant=q, value=f"{v:.4g} {unit}", limit=f"[{lo:.4g}, {hi:.4g}] {unit}")


def pixel_flags(book: FlagBook, rows: list[dict], ccd: int, q: str, limits, saturated: list[dict] | None = None,
                where: str = "frame(s)") -> None:
    """LOSTPIXELS for pixels at 0 in ``rows`` (one quadrant's), SATURATION for pixels at 65535 in
    ``saturated`` (default: the same rows), each beyond the limits' allowance."""
    lost = [(r["obsid"], r["n_lost"]) for r in rows if r["n_lost"] > limits.max_lost_pixels]
    if lost:
        o, n = max(lost, key=lambda x: x[1])
        book.add("LOSTPIXELS", "check", f"pixels at 0 in {len(lost)} frame(s), most in ObsID {o}", ccd=ccd,
                 quadrant=q, value=n, limit=limits.max_lost_pixels)
    sat = [(r["obsid"], r["n_saturated"]) for r in (rows if saturated is None else saturated)
           if r["n_saturated"] > limits.max_saturated_pixels]
    if sat:
        o, n = max(sat, key=lambda x: x[1])
        book.add("SATURATION", "check", f"pixels at 65535 in {len(sat)} {where}, most in ObsID {o}", ccd=ccd,
                 quadrant=q, value=n, limit=limits.max_saturated_pixels)


def offsets_flags(book: FlagBook, ctx, item: dict, task: tasks.Task, exposed: bool = False) -> None:
    """The check's offsets (prescan, image, overscan per frame and quadrant) against the limits: a
    prescan offset beyond ±tolerance of its nominal (or outside the sanity range where no nominal
    is configured), image or overscan minus prescan beyond ±10 ADU: POORQUALDATA; a prescan or
    overscan std outside the RON limits: RON_OOL; a CCD serial in the headers other than the
    configured one: WRONG_ROE_CONF; lost and saturated pixels: LOSTPIXELS, SATURATION.  ``exposed``
    (flats: :func:`exposed_offsets_flags`): the image is the exposure, not an offset; its minus
    prescan is not checked and the pixels are counted in the image region only."""
    step = task.step("check")
    if not ctx.has_input(step):
        return
    ccd, limits, serials = item["ccd"], ctx.settings.limits, ctx.settings.serials
    good = frame_problems(book, ctx.lookup(step, test=item["test"], ccd=ccd).to_pylist(), ccd)
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
        worst(book, "POORQUALDATA", ccd, q, "prescan offset", [(o, r["offset_adu"]) for o, r in pre.items()], lo, hi,
              "ADU")
        for region in (("overscan",) if exposed else ("image", "overscan")):
            diffs = [(r["obsid"], r["offset_adu"] - pre[r["obsid"]]["offset_adu"]) for r in mine
                     if r["region"] == region and r["obsid"] in pre]
            tol = limits.region_minus_prescan_adu
            worst(book, "POORQUALDATA", ccd, q, f"{region} minus prescan offset", diffs, -tol, tol, "ADU")
        for region in ("prescan", "overscan"):  # the image's std holds the bias structure and defects
            stds = [(r["obsid"], r["std_adu"]) for r in mine if r["region"] == region]
            worst(book, "RON_OOL", ccd, q, f"{region} std", stds, lo_ron, hi_ron, "ADU")
        pixel_flags(book, [r for r in mine if r["region"] == "image"] if exposed else mine, ccd, q, limits)


def exposed_offsets_flags(book: FlagBook, ctx, item: dict, task: tasks.Task) -> None:
    """:func:`offsets_flags` for a Task of exposed frames (flats)."""
    offsets_flags(book, ctx, item, task, exposed=True)


def flags_step(task: tasks.Task, rules: tuple[Rule, ...], doc: str) -> FanOut:
    """The Task's compliance step ``{prefix}_flags``: the flags every Task gets (module docstring),
    then ``rules``, which read the Task's sub-tasks (its optional inputs)."""
    subtasks = tuple(task.step(s) for s in task.subtasks)

    def flags_ccd(ctx, item) -> list[dict]:
        test, ccd = item["test"], item["ccd"]
        book = FlagBook()
        inventory_flags(book, ctx.lookup("inventory", test=test, ccd=ccd).to_pylist(), test, ccd,
                        ctx.settings.serials)
        for rule in rules:
            rule(book, ctx, item, task)
        if ctx.has_input("hk"):
            hk_flags(book, ctx.lookup("hk", test=test).to_pylist(), ccd)
        crash_flags(book, ctx, test, ccd, subtasks)
        rows = []
        for q in elvis.QUADRANTS:
            mask = book.mask(ccd, q)
            rows.append({"task": test, "test": test, "ccd": ccd, "quadrant": q, "flags": mask,
                         "flag_names": names(mask), "reasons": [str(r) for r in book.of(ccd, q)]})
        write_part(ctx, "flags", test, f"ccd{ccd}", rows)
        return rows

    return FanOut(task.step("flags"), inputs=("inventory",), optional_inputs=("hk", *subtasks),
                  items=task_items(task), process=flags_ccd, key=KEY, schema=SCHEMA, shard_size=1, doc=doc)
