"""The items of the BIAS0X sub-tasks: one per test of the session the Task analyses and CCD."""

from __future__ import annotations

from steps.vison import tasks
from steps.vison.elvis import CCDS

KEY = ("test", "ccd")


def bias_items(ctx) -> list[dict]:
    return [{"test": t, "ccd": c} for t in tasks.tests_of(tasks.BIAS0X, ctx.settings.tests) for c in CCDS]


def good_frames(ctx, item) -> list[dict]:
    """The item's frames the inventory found whole, in ObsID order."""
    rows = ctx.lookup("inventory", test=item["test"], ccd=item["ccd"]).to_pylist()
    return sorted((r for r in rows if r["obsid"] >= 0 and r["problem_kind"] in (None, "unlisted")),
                  key=lambda r: r["obsid"])
