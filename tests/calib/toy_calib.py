"""A toy pipeline with calibrations: masters made per night and camera, frames reduced with them.

    masters  (fan-out per night x camera)  writes masters/bias-NIGHT-CAM.txt and registers it
    reduce   (fan-out per frame x camera)  the bias the policy picks: only before, 10 d, fallback
    summary  (whole)                       reads reduce
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from astroflow.atomic import write_text
from astroflow.calib import CalibType
from astroflow.pipeline import Pipeline, Settings
from astroflow.step import FanOut, Step

CAMERAS = ("a", "b")


class CalToySettings(Settings):
    masters: list[str] = ["20240101", "20240105"]
    frames: list[str] = ["20240102", "20240106", "20240107"]


def night(text: str) -> datetime:
    return datetime.strptime(text, "%Y%m%d").replace(tzinfo=timezone.utc)


def master_items(ctx):
    return [{"night": n, "camera": c} for n in ctx.settings.masters for c in CAMERAS]


def make_master(ctx, item):
    rel = f"masters/bias-{item['night']}-{item['camera']}.txt"
    path = ctx.register_calibration("bias", rel, night(item["night"]), {"camera": item["camera"]})
    write_text(path, f"{item['night']} {item['camera']}\n")
    return {**item, "path": rel}


def frame_items(ctx):
    return [{"frame": n, "camera": c} for n in ctx.settings.frames for c in CAMERAS]


def reduce(ctx, item):
    bias = ctx.calibration("bias", night(item["frame"]) + timedelta(hours=12), camera=item["camera"])
    return {**item, "bias": bias.name, "cards": ",".join(k for k, _, _ in ctx.provenance_cards() if k.startswith(("PIPEVER", "CAL")))}


def summary(ctx):
    return [{"n": ctx.table("reduce").num_rows}]


CALTOY = Pipeline(
    "caltoy",
    settings=CalToySettings,
    calibrations={"bias": CalibType("bias", match=("camera",), select="before", lookback_days=10, fallback=True)},
    steps=[
        FanOut("masters", items=master_items, process=make_master, key=("night", "camera"), shard_size=2,
               doc="master biases"),
        FanOut("reduce", inputs=("masters",), items=frame_items, process=reduce, key=("frame", "camera"),
               shard_size=2, doc="reduce frames"),
        Step("summary", inputs=("reduce",), run=summary, doc="count"),
    ],
)
