"""The items of the PTC0X sub-tasks: one per test of the session the Task analyses and CCD."""

from __future__ import annotations

from steps.vison import tasks
from steps.vison.elvis import CCDS

KEY = ("test", "ccd")


def ptc_items(ctx) -> list[dict]:
    return [{"test": t, "ccd": c} for t in tasks.tests_of(tasks.PTC0X, ctx.settings.tests) for c in CCDS]
