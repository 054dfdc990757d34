"""The step contract: a small declaration above one plain function.

Two shapes cover every runbook step:

* :class:`Step` runs once per run: ``run(ctx)`` returns rows (a list of dicts or a pyarrow Table).
* :class:`FanOut` runs once per item: ``items(ctx)`` lists the items (TCEs, TICs, files,
  amplifiers...), the library cuts them into shards, and ``process(ctx, item)`` returns the item's
  row(s).  One bad item is recorded in the error table and the others go on.

Both write one Parquet dataset named after the step (``RUN/<step>/part-*.parquet``).  The
declaration (inputs, parameters, item key, schema, resources) is all the runner, the Argo
compiler and the status view need.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field


class StepParams(BaseModel):
    """Typed parameters of a step, set in the run configuration under ``[steps.<name>]``.

    Subclass it per step; ``enabled`` lets optional steps default to off; ``shard_size``
    overrides a fan-out step's declared items per shard.
    """

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    shard_size: int | None = Field(default=None, ge=1)


@dataclass(frozen=True)
class Resources:
    """What one shard asks of a Kubernetes node (requests; limits are left to the site)."""

    cpu: str = "1"
    memory: str = "2Gi"


@dataclass
class Context:
    """What a step function sees: settings, parameters, its shard, and the run directory.

    ``state`` holds whatever the step's ``setup`` hook loaded once for the shard (for example
    the upstream rows of the shard's items).
    """

    pipeline: str
    step: str
    run_dir: Path
    settings: Any
    params: StepParams
    shard: int = 0
    n_shards: int = 1
    state: Any = None
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("astroflow"))
    files: list[str] = field(default_factory=list)
    raw_inputs: list[str] = field(default_factory=list)

    def table(self, dataset: str, columns: list[str] | None = None, filter=None) -> pa.Table:
        """Read an upstream step's Parquet dataset (all committed parts)."""
        from astroflow.rundir import read_dataset

        return read_dataset(self.run_dir / dataset, columns=columns, filter=filter)

    def rows(self, dataset: str, columns: list[str] | None = None, filter=None) -> list[dict]:
        return self.table(dataset, columns=columns, filter=filter).to_pylist()

    def product(self, relpath: str | Path) -> Path:
        """Path of a product file in the run directory, recorded for the status view.

        The caller writes it atomically (``astroflow.atomic``); the parent folder is created.
        """
        path = self.run_dir / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        self.files.append(str(Path(relpath)))
        return path

    def uses(self, path: str | Path) -> Path:
        """Record a raw input file (for the shard's input fingerprint) and return it."""
        self.raw_inputs.append(str(path))
        return Path(path)


@dataclass(frozen=True)
class StepBase:
    name: str
    inputs: tuple[str, ...] = ()
    params: type[StepParams] = StepParams
    schema: pa.Schema | None = None
    resources: Resources = Resources()
    optional_inputs: tuple[str, ...] = ()
    doc: str = ""

    @property
    def fan_out(self) -> bool:
        return isinstance(self, FanOut)

    def describe(self) -> str:
        """First line of the step's documentation (the runbook step it replaces)."""
        return (self.doc or "").strip().splitlines()[0] if self.doc else ""


@dataclass(frozen=True)
class Step(StepBase):
    """A step run once per run: ``run(ctx) -> rows``."""

    run: Callable[[Context], Iterable[dict] | pa.Table | None] | None = None


@dataclass(frozen=True)
class FanOut(StepBase):
    """A step run per item: ``items(ctx) -> list[dict]``, ``process(ctx, item) -> row(s)``.

    ``key`` names the item fields that identify an item in the ledger (e.g. ``("tic",
    "planet_number")``); ``setup(ctx, items)`` optionally loads shared inputs once per shard into
    ``ctx.state``; ``shard_size`` is the default number of items per shard.
    """

    items: Callable[[Context], list[dict]] | None = None
    process: Callable[[Context, dict], dict | list[dict] | None] | None = None
    key: tuple[str, ...] = ()
    setup: Callable[[Context, list[dict]], Any] | None = None
    shard_size: int = 50

    def item_id(self, item: dict) -> str:
        return ":".join(str(item[k]) for k in self.key) if self.key else str(item["id"])
