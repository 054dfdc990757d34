"""What the sub-tasks of every vison Task share: their items, the frames they read, the check loop.

A Task's sub-tasks (:mod:`steps.vison.tasks`) are steps fanned out over one item per test of the
session the Task analyses and CCD (:func:`task_items`); each reads the frames the inventory found
whole (:func:`good_frames`).  Every Task's ``check`` is the same loop (vison's ``check_data``):
each frame read, measured by the Task's own pure function, a frame that does not read recorded
with the error naming the file (the flags step raises BADDATA) while the others go on, the rows
written to the Task's contract dataset (:func:`check_frames`).  A new Task declares its
measurement, not a third copy of the loop.
"""

from __future__ import annotations

from collections.abc import Callable

from steps.vison import elvis, tasks
from steps.vison.products import write_part

KEY = ("test", "ccd")


def task_items(task: tasks.Task) -> Callable[[object], list[dict]]:
    """The items function of a Task's sub-tasks: one per test of the session it analyses and CCD.

    In wait mode a test has items once the inventory finds it complete (its sequence acquired),
    so that a Task starts when its data are all there and never on part of them; with
    ``check_only`` (vison_run -k) only the check and the flags have items."""

    def items(ctx) -> list[dict]:
        s = ctx.settings
        if s.check_only and ctx.step not in (task.step("check"), task.step("flags")):
            return []
        return [{"test": t, "ccd": c} for t in ready(ctx, tasks.tests_of(task, s.tests)) for c in elvis.CCDS]

    items.__name__ = f"{task.prefix}_items"
    items.__doc__ = f"One item per {task.handle} test of the session and CCD."
    return items


def ready(ctx, tests: list[str]) -> list[str]:
    """The ``tests`` to analyse now: all of them, or in wait mode those the inventory finds complete."""
    if not ctx.settings.wait or not tests:
        return tests
    done = {r["test"] for r in ctx.rows("inventory", columns=["test", "state"], where={"test": tests})
            if r["state"] == "complete"}
    return [t for t in tests if t in done]


def good_frames(ctx, item) -> list[dict]:
    """The item's frames the inventory found whole, in ObsID order."""
    rows = ctx.lookup("inventory", test=item["test"], ccd=item["ccd"]).to_pylist()
    return sorted((r for r in rows if r["obsid"] >= 0 and r["problem_kind"] in (None, "unlisted")),
                  key=lambda r: r["obsid"])


def check_frames(ctx, item, measure: Callable[[elvis.Frame], list[dict]], dataset: str) -> list[dict]:
    """A Task's ``check`` on one (test, CCD) item: the rows ``measure(frame)`` gives for each good
    frame (one per quadrant, or per quadrant and region), under the frame's test, ObsID, CCD,
    exposure time (the EXP_LOG's, else the header's) and file; a frame that does not read is one
    row with ``problem``.  The measured rows are written to the contract ``dataset``."""
    rows = []
    for f in good_frames(ctx, item):
        base = {"test": item["test"], "obsid": f["obsid"], "ccd": item["ccd"], "exptime": f["exptime"],
                "file": f["file"]}
        try:
            frame = elvis.read_frame(ctx.uses(f["file"]))
        except elvis.ElvisFormatError as exc:
            ctx.log.warning("vison %s: %s", ctx.step, exc)
            rows.append({**base, "problem": str(exc)})
            continue
        if base["exptime"] is None:  # a frame without its EXP_LOG row: the header says
            base["exptime"] = float(frame.header.get("EXPTIME", "nan"))
        rows += [{**base, **r, "problem": None} for r in measure(frame)]
    write_part(ctx, dataset, item["test"], f"ccd{item['ccd']}", [r for r in rows if r.get("quadrant")])
    return rows
