"""The run directory and its ledger: what was planned, what was committed, and what is read.

Layout of ``RUN/<step>/``::

    _plan.json                          the items cut into shards, and what the item list depended on
    _pending/<unit>.json                work the planner handed out that has not committed yet
    _manifests/<unit>.json              written last: a unit is committed once its manifest exists
    part-<unit>-<commit>.parquet        the rows of one commit of a unit
    _errors/<unit>-<commit>.parquet     one row per failed item: id, error type, message, file
    _logs/<unit>-<commit>.jsonl
    _failure.json                       a failure of the step as a whole (planning), with its file
    _crashes/<unit>.json                a unit whose worker died (the signal), until it commits
    _overrides.json                     item redo requests: a generation and parameter overrides per item

A *unit* is a shard of the plan (``shard-00003``) or a patch of some of its items
(``p0002-00000``: patch 2, chunk 0), written by ``--retry-failed``, by ``redo`` or when only some
items of a shard went stale.  Every commit of a unit has a fresh commit id, so a recomputed unit
writes new files beside the old ones and its manifest switches to them in one rename.  The
latest outcome of an item is the one of the last commit that processed it: a patch supersedes the
rows of those items in the shard's part (the manifest records each item's row range), in every
read, without rewriting anything.  A part file without a committed manifest is never read.
Folders and files starting with ``_`` or ``.`` are ignored by pyarrow's dataset discovery; read
datasets with :func:`read_dataset` (or ``astroflow.read``), which applies the ledger.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from astroflow.atomic import write_json, write_table, write_text

PLAN = "_plan.json"
PENDING = "_pending"
MANIFESTS = "_manifests"
ERRORS = "_errors"
LOGS = "_logs"
FAILURE = "_failure.json"
CRASHES = "_crashes"
OVERRIDES = "_overrides.json"
PART_COLUMN = "_part"  # virtual column of read_dataset(with_part=True): index into Ledger.parts

ERROR_SCHEMA = pa.schema(
    [
        ("item", pa.string()),
        ("unit", pa.string()),
        ("error_type", pa.string()),
        ("message", pa.string()),
        ("file", pa.string()),
        ("traceback", pa.string()),
    ]
)


def shard_unit(shard: int) -> str:
    return f"shard-{shard:05d}"


def patch_unit(patch: int, chunk: int) -> str:
    return f"p{patch:04d}-{chunk:05d}"


def is_shard_unit(unit: str) -> bool:
    return unit.startswith("shard-")


def part_name(unit: str, commit: str) -> str:
    return f"part-{unit}-{commit[:12]}.parquet"


def digest(obj) -> str:
    """A short stable hash of a JSON-able object."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def params_hash(params: dict) -> str:
    """Hash of the parameters that change results (``shard_size`` and ``enabled`` do not)."""
    return digest({k: v for k, v in params.items() if k not in ("shard_size", "enabled")})


# --- the plan -------------------------------------------------------------------------------------
@dataclass
class Shard:
    id: int
    ids: list[str]
    items: list[dict]

    @property
    def unit(self) -> str:
        return shard_unit(self.id)


@dataclass
class Plan:
    """The items of a step cut into shards, and the dependency record of the item list.

    A whole step (``Step``) has one shard holding one pseudo-item named after the step.  A plan
    grows: :meth:`reconcile` keeps every shard whose items are unchanged and appends new shards for
    new items, so data that arrives later never recomputes committed work.
    """

    shards: list[Shard]
    deps: dict = field(default_factory=dict)

    @property
    def n_shards(self) -> int:
        return len(self.shards)

    @cached_property
    def by_unit(self) -> dict[str, Shard]:
        return {s.unit: s for s in self.shards}

    @cached_property
    def item_shard(self) -> dict[str, Shard]:
        return {i: s for s in self.shards for i in s.ids}

    def item(self, item_id: str) -> dict:
        shard = self.item_shard[item_id]
        return shard.items[shard.ids.index(item_id)]

    def shard_items(self, shard: int) -> list[dict]:
        return self.shards[shard].items

    @classmethod
    def cut(cls, items: list[dict], shard_size: int, max_shards: int, *, ids: list[str] | None = None,
            min_shards: int = 1, first_id: int = 0, deps: dict | None = None) -> "Plan":
        """Contiguous shards of about ``shard_size`` items, at least ``min_shards`` (so that every
        worker gets work) and at most ``max_shards`` (Argo's pod budget)."""
        ids = [str(i) for i in range(len(items))] if ids is None else ids
        n = len(items)
        if n == 0:
            return cls([], deps or {})
        n_shards = max(-(-n // max(1, shard_size)), min(min_shards, n))
        n_shards = max(1, min(max_shards, n_shards))
        edges = [round(i * n / n_shards) for i in range(n_shards + 1)]
        shards = [Shard(first_id + k, ids[edges[k]:edges[k + 1]], items[edges[k]:edges[k + 1]])
                  for k in range(n_shards)]
        return cls(shards, deps or {})

    @classmethod
    def whole(cls, step: str, deps: dict | None = None) -> "Plan":
        return cls([Shard(0, [step], [{"id": step}])], deps or {})

    def reconcile(self, items: list[dict], ids: list[str], shard_size: int, max_shards: int,
                  min_shards: int = 1, deps: dict | None = None) -> tuple["Plan", list[Shard]]:
        """The plan for a new item list: unchanged shards kept, the rest cut into new shards.

        A shard is kept when every one of its items is still listed, unchanged; the items of the
        other shards (changed, or beside a removed item) and the new items are cut into shards
        numbered after the last one.  Returns the new plan and the retired shards.
        """
        new = dict(zip(ids, items))
        kept, retired = [], []
        for s in self.shards:
            if all(i in new and new[i] == it for i, it in zip(s.ids, s.items)):
                kept.append(s)
            else:
                retired.append(s)
        placed = {i for s in kept for i in s.ids}
        pool = [(i, it) for i, it in zip(ids, items) if i not in placed]
        first = max((s.id for s in self.shards), default=-1) + 1
        extra = Plan.cut([it for _, it in pool], shard_size, max_shards, ids=[i for i, _ in pool],
                         min_shards=min_shards, first_id=first)
        return Plan(kept + extra.shards, deps or {}), retired

    def save(self, step_dir: Path) -> None:
        write_text(step_dir / PLAN, compact_json({
            "version": 2,
            "deps": self.deps,
            "shards": [{"id": s.id, "ids": s.ids, "items": s.items} for s in self.shards],
        }))

    @classmethod
    def load(cls, step_dir: Path) -> "Plan | None":
        """The step's plan (parsed once per process while the file is unchanged: a warm worker
        runs many units of one plan)."""
        path = Path(step_dir) / PLAN
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        key = (str(path.absolute()), st.st_mtime_ns, st.st_size)
        if key not in _PLANS:
            data = json.loads(path.read_text())
            if data.get("version") != 2:
                return None  # a plan of the first ledger format: planned again
            if len(_PLANS) >= 8:
                _PLANS.pop(next(iter(_PLANS)))
            _PLANS[key] = (data.get("deps", {}), [Shard(s["id"], s["ids"], s["items"]) for s in data["shards"]])
        deps, shards = _PLANS[key]
        return cls(list(shards), deps)


_PLANS: dict[tuple, tuple] = {}


# --- the committed state ---------------------------------------------------------------------------
def write_manifest(step_dir: Path, manifest: dict) -> None:
    write_text(step_dir / MANIFESTS / f"{manifest['unit']}.json", compact_json(manifest))


def compact_json(obj) -> str:
    return json.dumps(obj, separators=(",", ":"), default=str)


_MANIFESTS: dict[str, tuple[int, int, dict]] = {}  # path -> (mtime_ns, size, manifest): parsed once per process


def _load_manifests(step_dir: Path) -> dict[str, dict]:
    folder = Path(step_dir) / MANIFESTS
    out = {}
    if not folder.is_dir():
        return out
    with os.scandir(folder) as entries:
        for e in entries:
            if not e.name.endswith(".json"):
                continue
            try:
                st = e.stat()
                cached = _MANIFESTS.get(e.path)
                if cached is None or cached[:2] != (st.st_mtime_ns, st.st_size):
                    with open(e.path) as fh:
                        cached = (st.st_mtime_ns, st.st_size, json.load(fh))
                    _MANIFESTS[e.path] = cached
            except (OSError, json.JSONDecodeError):
                continue  # a manifest is written atomically; an unreadable one is not committed
            out[e.name[:-5]] = cached[2]
    return out


@dataclass(frozen=True)
class Part:
    path: Path
    unit: str
    commit: str
    exclude: tuple[tuple[int, int], ...] = ()  # row ranges of items superseded by a later commit


class Ledger:
    """A read-only view of one step's ledger: plan, committed units, latest outcome per item."""

    def __init__(self, step_dir: str | Path):
        self.step_dir = Path(step_dir)
        self.plan = Plan.load(self.step_dir)
        self.units = _load_manifests(self.step_dir)

    @cached_property
    def ordered(self) -> list[dict]:
        """Committed manifests of the plan's items, oldest commit first."""
        ids = self.plan.item_shard if self.plan else {}
        out = []
        for m in self.units.values():
            if is_shard_unit(m["unit"]):
                if self.plan is None or m["unit"] not in self.plan.by_unit:
                    continue  # a retired shard
            elif not any(i in ids for i in m["items"]):
                continue
            out.append(m)
        return sorted(out, key=lambda m: (m["committed_ns"], m["unit"]))

    @cached_property
    def latest(self) -> dict[str, dict]:
        """Item id -> the manifest of its latest commit."""
        ids = self.plan.item_shard if self.plan else {}
        out: dict[str, dict] = {}
        for m in self.ordered:
            for i in m["items"]:
                if i in ids:
                    out[i] = m
        return out

    @cached_property
    def active(self) -> list[dict]:
        """Committed manifests that hold the latest outcome of at least one item."""
        live = {id(m) for m in self.latest.values()}
        return [m for m in self.ordered if id(m) in live]

    def outcomes(self) -> dict[str, str]:
        """Latest outcome per item id: ``ok``, ``failed`` or ``skipped``."""
        return dict(self._outcomes)

    @cached_property
    def _outcomes(self) -> dict[str, str]:
        out = {i: "ok" for i in self.latest}
        for m in self.active:
            for kind in ("failed", "skipped"):
                for i in m.get(kind, ()):
                    if self.latest.get(i) is m:
                        out[i] = kind
        return out

    def committed(self, unit: str) -> bool:
        return unit in self.units

    def complete(self) -> bool:
        """Planned and every shard committed."""
        return self.plan is not None and all(s.unit in self.units for s in self.plan.shards)

    def digest(self) -> str:
        """Fingerprint of the committed state (the active commits): what a reader depends on."""
        return digest(sorted((m["unit"], m["commit"]) for m in self.active))

    @cached_property
    def parts(self) -> list[Part]:
        out = []
        for m in self.active:
            if not m.get("part"):
                continue
            ranges = m.get("row_ranges") or {}
            exclude = tuple(sorted(tuple(r) for i, r in ranges.items() if self.latest.get(i) is not m))
            out.append(Part(self.step_dir / m["part"], m["unit"], m["commit"], exclude))
        return out

    def errors(self) -> list[dict]:
        """Error rows of the items whose latest outcome is a failure."""
        failed = {i for i, o in self.outcomes().items() if o == "failed"}
        rows: list[dict] = []
        for m in self.active:
            if m.get("errors") and failed & _set(m, "failed"):
                path = self.step_dir / ERRORS / m["errors"]
                if path.exists():
                    rows += [r for r in pq.read_table(path).to_pylist() if r["item"] in failed and self.latest[r["item"]] is m]
        return rows

    def read(self, columns: list[str] | None = None, where: dict | None = None, with_part: bool = False) -> pa.Table:
        """The committed rows (superseded rows left out), optionally filtered by ``where``
        (column -> value or list of values, all conditions together)."""
        parts = self.parts
        if not parts:
            return pa.table({})
        expr = where_expression(where)
        schema = pq.read_schema(parts[0].path).append(pa.field(PART_COLUMN, pa.int32()))
        cols = None if columns is None else list(columns) + ([PART_COLUMN] if with_part else [])
        plain = [k for k, p in enumerate(parts) if not p.exclude]
        tables = []
        if plain:
            dataset = ds.FileSystemDataset.from_paths(
                [str(parts[k].path) for k in plain], schema=schema, format=ds.ParquetFileFormat(),
                filesystem=pafs.LocalFileSystem(), partitions=[ds.field(PART_COLUMN) == k for k in plain])
            tables.append(dataset.to_table(columns=cols, filter=expr))
        for k, p in enumerate(parts):
            if not p.exclude:
                continue
            t = pq.read_table(p.path)
            keep, start = [], 0
            for lo, hi in p.exclude:
                keep.append(t.slice(start, lo - start))
                start = hi
            keep.append(t.slice(start))
            t = pa.concat_tables(keep).append_column(PART_COLUMN, pa.array([k] * sum(x.num_rows for x in keep), pa.int32()))
            if expr is not None:
                t = t.filter(expr)
            t = t.select(cols) if cols is not None else t
            tables.append(t.cast(tables[0].schema) if tables else t)
        table = pa.concat_tables(tables, promote_options="default") if len(tables) > 1 else tables[0]
        if not with_part and PART_COLUMN in table.column_names:
            table = table.drop_columns([PART_COLUMN])
        return table

    def units_of(self, table: pa.Table) -> list[tuple[str, str]]:
        """The (unit, commit) pairs that supplied the rows of a ``with_part=True`` read."""
        if table.num_rows == 0:
            return []
        idx = pc.unique(table.column(PART_COLUMN)).to_pylist()
        return sorted((self.parts[k].unit, self.parts[k].commit) for k in idx)


def _set(m: dict, key: str) -> set:
    cache = m.setdefault("_sets", {})
    if key not in cache:
        cache[key] = set(m.get(key, ()))
    return cache[key]


def where_expression(where: dict | None):
    """``{"tic": [1, 2], "sector": 33}`` -> ``isin(tic, [1, 2]) & (sector == 33)``."""
    if not where:
        return None
    expr = None
    for col, values in where.items():
        values = list(values) if isinstance(values, (list, tuple, set, frozenset)) else [values]
        term = pc.field(col).isin(values)
        expr = term if expr is None else expr & term
    return expr


def read_dataset(path: str | Path, columns: list[str] | None = None, where: dict | None = None) -> pa.Table:
    """A step's committed rows as one table (empty table if none); see :class:`Ledger`."""
    return Ledger(path).read(columns=columns, where=where)


def manifests(step_dir: Path) -> list[dict]:
    """Committed manifests of the step's current plan, oldest commit first."""
    return Ledger(step_dir).ordered


def item_outcomes(step_dir: Path) -> dict[str, str]:
    return Ledger(step_dir).outcomes()


# --- work handed out ----------------------------------------------------------------------------------
def write_pending(step_dir: Path, unit: str, spec: dict) -> None:
    write_json(step_dir / PENDING / f"{unit}.json", spec)


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None  # written atomically: an unreadable file is not there yet


def _read_folder(folder: Path) -> dict[str, dict]:
    """``{stem: content}`` of the JSON files of a ledger folder."""
    found = {p.stem: _read_json(p) for p in sorted(folder.glob("*.json"))} if folder.is_dir() else {}
    return {k: v for k, v in found.items() if v is not None}


def read_pending(step_dir: Path, unit: str) -> dict | None:
    return _read_json(Path(step_dir) / PENDING / f"{unit}.json")


def pending(step_dir: Path) -> dict[str, dict]:
    return _read_folder(Path(step_dir) / PENDING)


def clear_pending(step_dir: Path, unit: str | None = None) -> None:
    folder = Path(step_dir) / PENDING
    for p in ([folder / f"{unit}.json"] if unit else folder.glob("*.json")) if folder.is_dir() else []:
        p.unlink(missing_ok=True)


def next_patch(step_dir: Path) -> int:
    names = set(_load_manifests(step_dir)) | set(pending(step_dir))
    return max((int(u[1:5]) for u in names if u.startswith("p")), default=0) + 1


# --- errors, failures, crashes, overrides -----------------------------------------------------------
def write_errors(step_dir: Path, name: str, rows: list[dict]) -> str | None:
    if not rows:
        return None
    write_table(step_dir / ERRORS / f"{name}.parquet", pa.Table.from_pylist(rows, schema=ERROR_SCHEMA))
    return f"{name}.parquet"


def read_errors(step_dir: Path) -> list[dict]:
    return Ledger(step_dir).errors()


def write_failure(step_dir: Path, record: dict) -> None:
    write_json(Path(step_dir) / FAILURE, record)


def read_failure(step_dir: Path) -> dict | None:
    return _read_json(Path(step_dir) / FAILURE)


def clear_failure(step_dir: Path) -> None:
    (Path(step_dir) / FAILURE).unlink(missing_ok=True)


def write_crash(step_dir: Path, unit: str, record: dict) -> None:
    write_json(Path(step_dir) / CRASHES / f"{unit}.json", record)


def crashes(step_dir: Path) -> dict[str, dict]:
    return _read_folder(Path(step_dir) / CRASHES)


def clear_crash(step_dir: Path, unit: str) -> None:
    (Path(step_dir) / CRASHES / f"{unit}.json").unlink(missing_ok=True)


def read_overrides(step_dir: Path) -> dict[str, dict]:
    """Item id -> ``{"generation": N, "params": {...}}``: the redo requests of a step."""
    return _read_json(Path(step_dir) / OVERRIDES) or {}


def write_overrides(step_dir: Path, overrides: dict[str, dict]) -> None:
    write_json(Path(step_dir) / OVERRIDES, overrides)


# --- clean-up (only inside the run directory, by the one writer) --------------------------------------
def unit_files(step_dir: Path, m: dict) -> list[Path]:
    """The ledger files of one commit (part, errors, log); not its products."""
    out = [Path(step_dir) / m["part"]] if m.get("part") else []
    if m.get("errors"):
        out.append(Path(step_dir) / ERRORS / m["errors"])
    if m.get("log"):
        out.append(Path(step_dir) / LOGS / m["log"])
    return out


def collect_garbage(run_dir: Path, step: str) -> list[Path]:
    """Remove what no reader can reach: manifests of retired shards and of fully superseded
    patches (with their products unless an active unit claims them), and part files whose commit
    never completed.  Called by the planner, while no unit of the step runs; returns what went."""
    step_dir = Path(run_dir) / step
    ledger = Ledger(step_dir)
    live = {m["unit"] for m in ledger.active}
    claimed = {f for m in ledger.active for f in m.get("files", ())}
    gone: list[Path] = []
    for unit, m in ledger.units.items():
        if unit in live or (ledger.plan is not None and unit in ledger.plan.by_unit):
            continue  # a shard of the plan stays committed even when patches supersede all its items
        for f in m.get("files", ()):
            if f not in claimed:
                gone += _remove(Path(run_dir) / f)
        for f in unit_files(step_dir, m) + [step_dir / MANIFESTS / f"{unit}.json"]:
            gone += _remove(f)
    kept = [m for u, m in ledger.units.items() if (step_dir / MANIFESTS / f"{u}.json").exists()]
    parts = {m["part"] for m in kept if m.get("part")}
    errors = {m["errors"] for m in kept if m.get("errors")}
    for p in step_dir.glob("part-*.parquet"):
        if p.name not in parts:
            gone += _remove(p)
    for p in (step_dir / ERRORS).glob("*.parquet") if (step_dir / ERRORS).is_dir() else []:
        if p.name not in errors:
            gone += _remove(p)
    return gone


def _remove(path: Path) -> list[Path]:
    try:
        path.unlink()
    except FileNotFoundError:
        return []
    return [path]


# --- fingerprints of raw files -------------------------------------------------------------------------
_HASHES: dict[tuple[str, int, int], str] = {}


def file_state(path: str | Path) -> list | None:
    """``[size, mtime_ns, sha256]`` of a file (hashes cached per process), None if missing."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        h = hashlib.sha256()
        if os.path.isdir(path):
            h.update(b"directory")
        else:
            with open(path, "rb") as fh:
                h = hashlib.file_digest(fh, "sha256")
        _HASHES[key] = h.hexdigest()
    return [st.st_size, st.st_mtime_ns, _HASHES[key]]
