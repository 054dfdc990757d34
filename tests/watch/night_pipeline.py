"""A pipeline fed by frames that arrive during the night: the watcher's and the chart's toy.

``measure`` fans out over the night's FITS frames (one shard per frame, so units count frames),
``summary`` reads every measurement and says whether the ``deadline`` setting (ISO time, when
set) had passed, which the watcher then runs the pipeline for although nothing arrived.  ``calls_log`` names a file to which ``measure`` appends one
line per frame it processes: the tests count those lines to prove that no frame is processed
twice, whatever the ledger says.  ``PLAIN`` is a pipeline that declares no arrivals.
"""

from __future__ import annotations

import datetime as dt
import os

from astropy.io import fits

from astroflow.arrivals import Arrivals
from astroflow.pipeline import DataRoot, Pipeline, Settings
from astroflow.step import FanOut, Step

PATTERN = "{night}/raw/*.fits"


class NightSettings(Settings):
    raw_root: DataRoot
    night: str = ""
    calls_log: str = ""
    deadline: str = ""


def deadlines(settings):
    return [dt.datetime.fromisoformat(settings.deadline)] if settings.deadline else []


def frames(ctx):
    s = ctx.settings
    return [{"frame": p.name, "path": str(p)} for p in ctx.glob(s.raw_root, PATTERN.format(night=s.night))]


def measure(ctx, item):
    if ctx.settings.calls_log:
        with open(ctx.settings.calls_log, "a") as fh:
            fh.write(f"{item['frame']} {os.getpid()}\n")
    data = fits.getdata(ctx.uses(item["path"]))
    return {"frame": item["frame"], "night": ctx.settings.night, "mean": float(data.mean())}


def summary(ctx):
    t = ctx.table("measure")
    row = {"night": ctx.settings.night, "frames": t.num_rows}
    if ctx.settings.deadline:
        row["closed"] = ctx.past(dt.datetime.fromisoformat(ctx.settings.deadline))
    return [row]


NIGHTLY = Pipeline(
    "nightly",
    settings=NightSettings,
    arrivals=Arrivals("raw_root", (PATTERN,), deadlines=deadlines),
    partition="night",
    steps=[
        FanOut("measure", items=frames, process=measure, key=("frame",), shard_size=1, doc="measure each frame"),
        Step("summary", inputs=("measure",), run=summary, doc="count the night's frames"),
    ],
    doc="A night of frames, measured as they arrive.",
)

PLAIN = Pipeline("plain", steps=[Step("one", run=lambda ctx: [])], doc="A pipeline that is not watched.")
