"""A toy pipeline for the container tests (test-only): it reads raw data, fans out, and sums.

Registered with ``ASTROFLOW_PIPELINES=itoy=integration_toy:TOY`` on the host and baked into the
toy step images the same way, so it runs in containers exactly like a real pipeline.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from astroflow.errors import ItemError
from astroflow.pipeline import Pipeline, Settings
from astroflow.step import FanOut, Step

REGISTRATION = "itoy=integration_toy:TOY"


class ToySettings(Settings):
    data_root: Path


def read_numbers(ctx):
    """1 read the raw numbers file (one integer per line)."""
    path = ctx.uses(ctx.settings.data_root / "numbers.txt")
    return [{"i": i, "value": int(v), "path": str(path)} for i, v in enumerate(path.read_text().split())]


def square(ctx, item):
    if item["value"] < 0:
        raise ItemError(f"negative value {item['value']}")
    return {"i": item["i"], "sq": item["value"] ** 2, "sqrt": item["value"] ** 0.5}


def total(ctx):
    t = ctx.table("square")
    return [{"n": t.num_rows, "sum": sum(t.column("sq").to_pylist())}]


TOY = Pipeline(
    "itoy",
    settings=ToySettings,
    doc="Toy pipeline of the container tests.",
    steps=[
        Step("numbers", run=read_numbers, doc="1 read the raw numbers"),
        FanOut("square", inputs=("numbers",), items=lambda ctx: ctx.rows("numbers"), process=square,
               key=("i",), shard_size=3,
               schema=pa.schema([("i", pa.int64()), ("sq", pa.int64()), ("sqrt", pa.float64())]),
               doc="2 square each number"),
        Step("total", inputs=("square",), run=total, doc="3 sum the squares"),
    ],
)
