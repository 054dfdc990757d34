"""A tiny pipeline used to test the core: a whole step, a fan-out step reading it, and a summary."""

from __future__ import annotations

import os
import time

import pyarrow as pa

from astroflow.errors import ItemError, Skip
from astroflow.pipeline import Pipeline, Settings
from astroflow.step import FanOut, Step, StepParams


class ToySettings(Settings):
    n: int = 20
    bad: list[int] = []
    sleep: float = 0.0


def make_numbers(ctx):
    return [{"i": i} for i in range(ctx.settings.n)]


def square_items(ctx):
    return [{"i": r["i"]} for r in ctx.rows("numbers")]


def square(ctx, item):
    i = item["i"]
    if ctx.settings.sleep:
        time.sleep(ctx.settings.sleep)
    flag = ctx.run_dir / f"fix-{i}"
    if i in ctx.settings.bad and not flag.exists():
        raise ItemError(f"item {i} is bad", path=f"/data/item-{i}.fits")
    if i == 3:
        raise Skip("three is skipped")
    return {"i": i, "sq": i * i, "pid": os.getpid()}


class SquareParams(StepParams):
    offset: int = 0


def total(ctx):
    t = ctx.table("square")
    return [{"n": t.num_rows, "sum": sum(t.column("sq").to_pylist()) + ctx.params.enabled * 0}]


SQUARE_SCHEMA = pa.schema([("i", pa.int64()), ("sq", pa.int64()), ("pid", pa.int64())])

TOY = Pipeline(
    "toy",
    settings=ToySettings,
    steps=[
        Step("numbers", run=make_numbers, doc="make numbers"),
        FanOut("square", inputs=("numbers",), items=square_items, process=square, key=("i",),
               params=SquareParams, schema=SQUARE_SCHEMA, shard_size=4, doc="square each"),
        Step("total", inputs=("square",), run=total, doc="sum"),
    ],
)
