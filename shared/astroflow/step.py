"""The step contract: a small declaration above one plain function.

Two shapes cover every runbook step:

* :class:`Step` runs once per run: ``run(ctx)`` returns rows (a list of dicts or a pyarrow Table).
* :class:`FanOut` runs once per item: ``items(ctx)`` lists the items (TCEs, TICs, files,
  amplifiers...), the library cuts them into shards, and ``process(ctx, item)`` returns the item's
  row(s).  One bad item is recorded in the error table and the others go on.

Both write one Parquet dataset named after the step (``RUN/<step>/part-*.parquet``).  The
declaration (inputs, parameters, item key, schema, resources) is all the runner, the Argo
compiler and the status view need.  Everything a step touches goes through its
:class:`Context`, which records it for the ledger (:mod:`astroflow.deps`): the settings fields
it reads, the upstream rows, the raw files, the folders it lists, the calibrations it uses.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from astroflow import deps, rundir
from astroflow.errors import AstroflowError, ItemError


class StepParams(BaseModel):
    """Typed parameters of a step, set in the run configuration under ``[steps.<name>]``.

    Subclass it per step; ``enabled`` lets optional steps default to off; ``shard_size``
    overrides a fan-out step's declared items per shard (it applies when a plan is cut).
    """

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    shard_size: int | None = Field(default=None, ge=1)


@dataclass(frozen=True)
class Resources:
    """What one pod of the step asks of a Kubernetes node, and how an OOM-killed pod is retried.

    ``cpu`` and ``memory`` are the requests (Kubernetes quantities), ``cpu_limit`` and
    ``memory_limit`` the limits (default: the requests, so a namespace whose quota requires
    limits admits the pod and memory is never overcommitted).  A pod killed for memory is retried
    with its memory request and limit multiplied by ``oom_factor`` per attempt, up to
    ``memory_cap`` (default: twice the limit).  ``deadline_s`` is the pod's
    ``activeDeadlineSeconds``; ``heavy`` steps share the site's semaphore of heavy pods (the
    chart's ``semaphores.heavy``).  A site overrides the requests, limits, OOM retries and
    deadline per step in its values file (``steps.<pipeline>.<step>``).
    """

    cpu: str = "1"
    memory: str = "2Gi"
    cpu_limit: str | None = None
    memory_limit: str | None = None
    oom_factor: float = 1.5
    memory_cap: str | None = None
    deadline_s: int = 6 * 3600
    heavy: bool = False

    def __post_init__(self):
        if self.oom_factor < 1:
            raise AstroflowError(f"Resources.oom_factor {self.oom_factor} is below 1: a retry would get less memory")
        if self.deadline_s <= 0:
            raise AstroflowError(f"Resources.deadline_s {self.deadline_s} is not a positive number of seconds")


class _Index:
    """Rows of one upstream dataset sorted by a key, read once per shard (NumPy, not dicts)."""

    def __init__(self, table: pa.Table, cols: tuple[str, ...]):
        self.table = table
        self.cols = cols
        first = table.column(cols[0]).to_numpy(zero_copy_only=False) if table.num_rows else np.array([])
        self.order = np.argsort(first, kind="stable")
        self.first = first[self.order]
        self.others = [table.column(c).to_numpy(zero_copy_only=False) for c in cols[1:]] if table.num_rows else []

    def find(self, values: tuple) -> np.ndarray:
        if not len(self.first):
            return np.array([], dtype=np.int64)
        lo = np.searchsorted(self.first, values[0], "left")
        hi = np.searchsorted(self.first, values[0], "right")
        rows = self.order[lo:hi]
        for arr, v in zip(self.others, values[1:]):
            rows = rows[arr[rows] == v]
        return np.sort(rows)


@dataclass
class Context:
    """What a step function sees: settings, parameters, its shard, and the run directory.

    ``state`` holds whatever the step's ``setup`` hook loaded once for the shard.  Read upstream
    datasets with :meth:`table` (``where=`` for the rows of some keys), :meth:`lookup` or
    :meth:`row` (one item's rows, from an index built once per shard); raw files through
    :meth:`uses` and :meth:`glob`; write products at :meth:`product`.
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
    inputs: tuple[str, ...] | None = None  # declared (and enabled) input datasets; None: any
    admitted: set[str] | None = None  # a watched run's complete files (None: every file counts)
    calib_types: Mapping[str, Any] = field(default_factory=dict)  # the pipeline's CalibType per type
    db_url: str | None = None
    db_migrations: tuple[str, ...] = ()
    code_version: str = ""
    config_hash: str = ""  # RunConfig.config_hash(): the configuration products are stamped with
    settings_read: set[str] = field(default_factory=set)
    unit_deps: deps.Recorder = field(default_factory=deps.Recorder)
    item_deps: deps.Recorder | None = None
    item_id: str | None = None
    calibrations_used: dict[str, list[dict]] = field(default_factory=dict)
    registrations: list[dict] = field(default_factory=list)
    _ledgers: dict = field(default_factory=dict, repr=False)
    _indexes: dict = field(default_factory=dict, repr=False)
    _library: Any = field(default=None, repr=False)

    def __post_init__(self):
        if isinstance(self.settings, BaseModel):
            self.settings = deps.TrackedSettings(self.settings, self.settings_read)

    @property
    def _deps(self) -> deps.Recorder:
        return self.item_deps if self.item_deps is not None else self.unit_deps

    def _ledger(self, dataset: str) -> rundir.Ledger:
        if self.inputs is not None and dataset not in self.inputs:
            raise AstroflowError(
                f"step {self.step} reads dataset {dataset!r} but does not declare it; "
                f"its inputs are: {', '.join(self.inputs) or 'none'}")
        if dataset not in self._ledgers:
            self._ledgers[dataset] = rundir.Ledger(self.run_dir / dataset)
        return self._ledgers[dataset]

    def has_input(self, dataset: str) -> bool:
        """True when ``dataset`` is an enabled input of this step and has committed rows."""
        return (self.inputs is None or dataset in self.inputs) and bool(self._ledger(dataset).parts)

    def table(self, dataset: str, columns: list[str] | None = None, where: dict | None = None) -> pa.Table:
        """An upstream step's committed rows; ``where`` (column -> value or values) selects some
        keys, and then only the rows of those keys count as read."""
        ledger = self._ledger(dataset)
        if where is None:
            self.unit_deps.read_whole(dataset, ledger.digest())
            return ledger.read(columns=columns)
        cond = {c: deps._as_list(v) for c, v in where.items()}
        t = ledger.read(columns=columns, where=cond, with_part=True)
        self._deps.read_where(dataset, [cond], ledger.units_of(t), ledger.digest())
        return deps.drop_part(t)

    def errors(self, dataset: str) -> list[dict]:
        """The error rows (item, error_type, message, file, ...) of an upstream step's failed
        items, for a step that reports them (a night page, a flag per failed sub-task); the step
        reruns when that step's results change."""
        ledger = self._ledger(dataset)
        self.unit_deps.read_whole(dataset, ledger.digest())
        return ledger.errors()

    def rows(self, dataset: str, columns: list[str] | None = None, where: dict | None = None) -> list[dict]:
        return self.table(dataset, columns=columns, where=where).to_pylist()

    def lookup(self, dataset: str, **key) -> pa.Table:
        """The rows of ``dataset`` whose columns equal ``key`` (``ctx.lookup("calfib",
        datevobs=dv, ifuslot=slot)``), from an index built on first use in this shard."""
        cols = tuple(sorted(key))
        ledger = self._ledger(dataset)
        if (dataset, cols) not in self._indexes:
            self._indexes[(dataset, cols)] = _Index(ledger.read(with_part=True), cols)
        index = self._indexes[(dataset, cols)]
        t = index.table.take(index.find(tuple(key[c] for c in cols))) if index.table.num_rows else index.table
        self._deps.read_where(dataset, [{c: [key[c]] for c in cols}], ledger.units_of(t), ledger.digest())
        return deps.drop_part(t)

    def row(self, dataset: str, **key) -> dict:
        """The one row of ``dataset`` matching ``key``; a missing or repeated row fails the item."""
        t = self.lookup(dataset, **key)
        if t.num_rows != 1:
            what = ", ".join(f"{k}={v}" for k, v in key.items())
            raise ItemError(f"upstream step {dataset} has {t.num_rows or 'no'} rows for {what} (expected one)")
        return t.to_pylist()[0]

    def product(self, relpath: str | Path) -> Path:
        """Path of a product file in the run directory, recorded for the status view and the ledger.

        The caller writes it atomically (``astroflow.atomic``); the parent folder is created.
        """
        path = self.run_dir / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        self.files.append(str(Path(relpath)))
        return path

    def uses(self, path: str | Path) -> Path:
        """Record a raw input file (size, mtime, checksum) for the ledger and return it."""
        self._deps.use_file(path)
        return Path(path)

    def library(self):
        """The run's calibration library (:class:`astroflow.calib.Library`), opened on first use."""
        if self._library is None:
            from astroflow.calib import Library

            self._library = Library.for_run(self.run_dir, self.db_url, migrations=self.db_migrations)
        return self._library

    def calibration(self, ctype: str, at: datetime, **attributes) -> Path:
        """The calibration of type ``ctype`` the pipeline's policy picks for an observation at
        ``at`` with ``attributes``.  The choice and its reason are recorded for the item (in the
        manifest, the library's uses and the ledger: a bad or a better calibration later makes the
        item stale); no qualifying one fails the item with every candidate and why it was rejected
        (and a calibration that qualifies later makes the failed item stale)."""
        if ctype not in self.calib_types:
            raise AstroflowError(f"pipeline {self.pipeline} declares no calibration type {ctype!r} "
                                 f"(declared: {', '.join(self.calib_types) or 'none'})")
        from astroflow.calib import NoCalibration
        from astroflow.calib.records import utc

        lib = self.library()
        try:
            choice = lib.select(self.calib_types[ctype], at, attributes)
        except NoCalibration:
            # a look-up that found nothing is a dependency too: once one qualifies, the item is stale
            missing = {"type": ctype, "at": utc(at).isoformat(), "attributes": dict(attributes), "missing": True,
                       "revision": lib.revision(self.calib_types[ctype].name)}
            if missing not in self._deps.calibrations:
                self._deps.calibrations.append(missing)
            raise
        record = choice.as_record()
        dep = {"type": ctype, "at": record["at"], "attributes": record["attributes"], "id": record["id"],
               "path": record["path"], "checksum": choice.record.checksum,
               "revision": lib.revision(self.calib_types[ctype].name)}
        if dep not in self._deps.calibrations:
            self._deps.calibrations.append(dep)
        used = self.calibrations_used.setdefault(self.item_id or self.step, [])
        if all(u["id"] != record["id"] for u in used):
            used.append(record)
        return Path(record["path"])

    def calibration_candidates(self, ctype: str, at: datetime, by: str, **attributes) -> dict:
        """For a step that chooses among calibrations by the data (NRES's classify picks the
        template that matches a spectrum best): for each value of the attribute ``by`` among the
        good calibrations of the declared type ``ctype`` with ``attributes``, the one the type's
        policy chooses for an observation at ``at`` (:class:`astroflow.calib.Calibration`).  The
        candidates are recorded for the item: one added or marked bad later makes it stale.
        Record the one chosen with :meth:`calibration`."""
        from astroflow.calib import NoCalibration

        if ctype not in self.calib_types:
            raise AstroflowError(f"pipeline {self.pipeline} declares no calibration type {ctype!r}")
        lib, policy = self.library(), self.calib_types[ctype]
        found = lib.list(policy.name, bad=False, **attributes)
        dep = {"type": ctype, "listing": dict(attributes), "ids": [c.id for c in found],
               "revision": lib.revision(policy.name)}
        if dep not in self._deps.calibrations:
            self._deps.calibrations.append(dep)
        out = {}
        for value in sorted({c.attributes[by] for c in found if c.attributes.get(by) is not None}, key=str):
            try:
                out[value] = lib.select(policy, at, {**attributes, by: value}).record
            except NoCalibration:
                continue
        return out

    def register_calibration(self, ctype: str, relpath: str | Path, dateobs: datetime, attributes: dict, *,
                             frames=(), is_master: bool = True, good_after: datetime | None = None,
                             good_until: datetime | None = None) -> Path:
        """Register a product of this item (a path in the run directory, written by the step) as a
        calibration; it enters the library when the unit commits, with its provenance."""
        path = self.product(relpath)
        self.registrations.append({"type": ctype, "path": str(path.resolve()), "dateobs": dateobs,
                                   "attributes": dict(attributes), "frames": [str(f) for f in frames],
                                   "is_master": is_master, "good_after": good_after, "good_until": good_until,
                                   "item": self.item_id or self.step})
        return path

    def provenance(self) -> dict:
        """What made the current item's products (:mod:`astroflow.provenance`): creation time,
        code version, pipeline, step, run, configuration hash, calibrations used."""
        from astroflow import provenance

        return provenance.record(self)

    def provenance_cards(self) -> list[tuple[str, str, str]]:
        """FITS header cards ``(keyword, value, comment)`` of :meth:`provenance`: ``DATE`` (the
        file's creation time, UTC), ``PIPEVER``, ``PIPELINE``, ``PIPESTEP``, ``RUNNAME``,
        ``CONFHASH`` and one ``CAL<TYPE>`` per calibration the item used."""
        from astroflow import provenance

        return provenance.fits_cards(self)

    def stamp_fits(self, header):
        """Set :meth:`provenance_cards` on an ``astropy.io.fits.Header``; returns it."""
        from astroflow import provenance

        return provenance.stamp_fits(header, self)

    def provenance_attrs(self) -> dict[str, str]:
        """:meth:`provenance` as string attributes for the root of an HDF5 product."""
        from astroflow import provenance

        return provenance.h5_attrs(self)

    def stamp_h5(self, obj) -> None:
        """Write :meth:`provenance_attrs` on an h5py File or Group."""
        from astroflow import provenance

        provenance.stamp_h5(obj, self)

    def lists(self, root: str | Path) -> Path:
        """Record that what this step finds depends on the files under ``root`` (names and sizes),
        for searches by a pipeline's own rules (a new product there makes the item list stale)."""
        root = Path(root).absolute()
        self._deps.tree(str(root), self.admitted)
        return root

    def past(self, when: datetime) -> bool:
        """Whether the time ``when`` (timezone-aware) has passed; recorded, so a result made
        before it (a calibration set still waiting for frames) is recomputed once it passes."""
        if when.tzinfo is None:
            raise AstroflowError(f"step {self.step}: a deadline needs a time zone: {when.isoformat()}")
        return self._deps.deadline(when)

    def glob(self, root: str | Path, pattern: str) -> list[Path]:
        """Files under ``root`` matching ``pattern`` (``**`` recursive), sorted; the listing is
        recorded, so a file that arrives later makes the item list stale.  In a watched run only
        the files admitted as complete are seen."""
        found = deps.glob(root, pattern, self.admitted)
        self._deps.listing(str(Path(root).absolute()), pattern, [str(p) for p in found])
        return found


@dataclass(frozen=True)
class StepBase:
    name: str
    inputs: tuple[str, ...] = ()
    params: type[StepParams] = StepParams
    schema: pa.Schema | None = None
    resources: Resources = Resources()
    optional_inputs: tuple[str, ...] = ()
    timeout_s: float | None = None  # per item; a timed-out item fails with ItemTimeout
    doc: str = ""

    @property
    def fan_out(self) -> bool:
        return isinstance(self, FanOut)

    def describe(self) -> str:
        """First sentence of the step's documentation (the runbook step it replaces), whole even
        where the docstring wraps it over several lines."""
        paragraph = " ".join((self.doc or "").strip().split("\n\n")[0].split())
        end = re.search(r"[.!?](\s|$)", paragraph)
        return paragraph[:end.start() + 1] if end else paragraph


@dataclass(frozen=True)
class Step(StepBase):
    """A step run once per run: ``run(ctx) -> rows``."""

    run: Callable[[Context], Iterable[dict] | pa.Table | None] | None = None

    def item_id(self, item: dict) -> str:
        return self.name


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
