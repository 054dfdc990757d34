"""A tiny pipeline used to test the core.

    numbers  (whole)    range(n), or the numbers of a raw file (settings.source)
    square   (fan-out)  one item per number (or per NNN.num file in settings.data_root): i -> i*i;
                        writes a product file per item when settings.products
    cube     (fan-out)  one item per square row, reading its row by ctx.row (a per-item dependency)
    total    (whole)    reads square whole, and settings.scale
    letters  (whole)    independent of the others (it finishes while another branch fails)
"""

from __future__ import annotations

import os
import signal
import time

import pyarrow as pa

from astroflow.atomic import write_text
from astroflow.errors import ItemError, Skip
from astroflow.pipeline import DataRoot, Pipeline, Settings
from astroflow.step import FanOut, Step, StepParams
from astroflow.units import column, schema


class ToySettings(Settings):
    n: int = 20
    bad: list[int] = []
    sleep: float = 0.0
    scale: int = 1
    source: str | None = None  # a raw file of numbers, one per line
    data_root: DataRoot | None = None
    products: bool = False
    kill_at: int = -1  # square kills its own worker at this item while RUN/kill exists
    slow_at: int = -1  # square sleeps 5 s at this item (a step timeout cuts it short)


def make_numbers(ctx):
    if ctx.settings.source:
        text = ctx.uses(ctx.settings.source).read_text()
        return [{"i": int(x)} for x in text.split()]
    return [{"i": i} for i in range(ctx.settings.n)]


def square_items(ctx):
    if ctx.settings.data_root is not None:  # items from files NNN.num in the data root (they may arrive later)
        names = ctx.glob(ctx.settings.data_root, "*.num")
        if not names:
            raise ItemError("no *.num files in the data root", path=ctx.settings.data_root)
        return [{"i": int(p.stem), "path": str(p)} for p in names]
    return [{"i": r["i"]} for r in ctx.rows("numbers")]


def square(ctx, item):
    i = item["i"]
    if "path" in item:
        ctx.uses(item["path"])
    if ctx.settings.sleep:
        time.sleep(ctx.settings.sleep)
    if i == ctx.settings.kill_at and (ctx.run_dir / "kill").exists():
        os.kill(os.getpid(), signal.SIGKILL)
    if i == ctx.settings.slow_at:
        time.sleep(5)
    flag = ctx.run_dir / f"fix-{i}"
    if i in ctx.settings.bad and not flag.exists():
        raise ItemError(f"item {i} is bad", path=f"/data/item-{i}.fits")
    if i == 3:
        raise Skip("three is skipped")
    if ctx.settings.products:
        write_text(ctx.product(f"products/sq-{i}.txt"), f"{i * i}\n")
    return {"i": i, "sq": i * i + ctx.params.offset, "pid": os.getpid()}


class SquareParams(StepParams):
    offset: int = 0


def cube_items(ctx):
    return [{"i": i} for i in ctx.table("square", columns=["i"]).column("i").to_pylist()]


def cube(ctx, item):
    r = ctx.row("square", i=item["i"])
    return {"i": item["i"], "cube": r["sq"] * item["i"]}


def total(ctx):
    t = ctx.table("square")
    return [{"n": t.num_rows, "sum": ctx.settings.scale * sum(t.column("sq").to_pylist())}]


SQUARE_SCHEMA = schema(column("i", pa.int64(), description="the number"),
                       column("sq", pa.int64(), "m2", "its square, as if the number were metres"), ("pid", pa.int64()))

TOY = Pipeline(
    "toy",
    settings=ToySettings,
    steps=[
        Step("numbers", run=make_numbers, doc="make numbers"),
        FanOut("square", inputs=("numbers",), items=square_items, process=square, key=("i",),
               params=SquareParams, schema=SQUARE_SCHEMA, shard_size=4, timeout_s=2.0, doc="square each"),
        FanOut("cube", inputs=("square",), items=cube_items, process=cube, key=("i",), shard_size=4,
               doc="cube each square"),
        Step("total", inputs=("square",), run=total, doc="sum"),
        Step("letters", run=lambda ctx: [{"letter": c} for c in "abc"], doc="independent"),
    ],
)
