"""The run directory and its ledger.

Layout of ``RUN/<step>/``::

    part-00003.parquet         rows of shard 3 (the dataset; readable as one pyarrow dataset)
    part-r001-00000.parquet    rows of items re-run by ``--retry-failed`` (attempt 1, chunk 0)
    _plan.json                 the items and how they are cut into shards (fan-out steps)
    _manifests/<unit>.json     written last: the unit is committed once its manifest exists
    _errors/<unit>.parquet     one row per failed item: id, error type, message, file
    _logs/<unit>.log

A *unit* is one shard (``shard-00003``) or one chunk of a retry (``r001-00000``).  The latest
outcome of an item is the one in the last unit that processed it, so a retry supersedes the
failure without rewriting anything.  Folders and files starting with ``_`` or ``.`` are ignored
by pyarrow's dataset discovery.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from astroflow.atomic import write_json, write_table

PLAN = "_plan.json"
MANIFESTS = "_manifests"
ERRORS = "_errors"
LOGS = "_logs"

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


def retry_unit(attempt: int, chunk: int) -> str:
    return f"r{attempt:03d}-{chunk:05d}"


def part_name(unit: str) -> str:
    return "part-" + unit.removeprefix("shard-") + ".parquet"


def read_dataset(path: str | Path, columns: list[str] | None = None, filter=None) -> pa.Table:
    """All committed part files of a step's dataset as one table (empty table if none)."""
    path = Path(path)
    parts = sorted(path.glob("part-*.parquet")) if path.is_dir() else []
    if not parts:
        return pa.table({})
    dataset = ds.dataset([str(p) for p in parts], format="parquet")
    return dataset.to_table(columns=columns, filter=filter)


def params_hash(params: dict) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class Plan:
    """The items of a fan-out step and their cut into contiguous shards."""

    items: list[dict]
    bounds: list[tuple[int, int]]
    params_hash: str = ""

    @property
    def n_shards(self) -> int:
        return len(self.bounds)

    def shard_items(self, shard: int) -> list[dict]:
        lo, hi = self.bounds[shard]
        return self.items[lo:hi]

    @classmethod
    def cut(cls, items: list[dict], shard_size: int, max_shards: int, params_hash: str = "",
            min_shards: int = 1) -> "Plan":
        """Contiguous shards of about ``shard_size`` items, at least ``min_shards`` (so that every
        worker gets work) and at most ``max_shards`` (Argo's pod budget)."""
        n = len(items)
        n_shards = max(-(-n // max(1, shard_size)), min(min_shards, n))
        n_shards = max(1, min(max_shards, n_shards))
        edges = [round(i * n / n_shards) for i in range(n_shards + 1)]
        return cls(items, [(edges[i], edges[i + 1]) for i in range(n_shards)], params_hash)

    def save(self, step_dir: Path) -> None:
        write_json(step_dir / PLAN, {"items": self.items, "bounds": self.bounds, "params_hash": self.params_hash})

    @classmethod
    def load(cls, step_dir: Path) -> "Plan | None":
        try:
            data = json.loads((step_dir / PLAN).read_text())
        except FileNotFoundError:
            return None
        return cls(data["items"], [tuple(b) for b in data["bounds"]], data.get("params_hash", ""))


def write_manifest(step_dir: Path, unit: str, manifest: dict) -> None:
    write_json(step_dir / MANIFESTS / f"{unit}.json", manifest)


def manifests(step_dir: Path) -> list[dict]:
    """Committed manifests in ledger order: shards first, then retries in attempt order."""
    folder = step_dir / MANIFESTS
    if not folder.is_dir():
        return []
    paths = sorted(folder.glob("*.json"), key=lambda p: (not p.name.startswith("shard-"), p.name))
    out = []
    for p in paths:
        try:
            out.append(json.loads(p.read_text()))
        except (OSError, json.JSONDecodeError):
            continue  # a manifest is written atomically; an unreadable one is not committed
    return out


def committed_units(step_dir: Path) -> set[str]:
    folder = step_dir / MANIFESTS
    return {p.stem for p in folder.glob("*.json")} if folder.is_dir() else set()


def item_outcomes(step_dir: Path) -> dict[str, str]:
    """Latest outcome per item id: ``ok``, ``failed`` or ``skipped``."""
    latest: dict[str, str] = {}
    for m in manifests(step_dir):
        for outcome in ("ok", "failed", "skipped"):
            for item in m.get(outcome, []):
                latest[item] = outcome
    return latest


def write_errors(step_dir: Path, unit: str, rows: list[dict]) -> None:
    if rows:
        write_table(step_dir / ERRORS / f"{unit}.parquet", pa.Table.from_pylist(rows, schema=ERROR_SCHEMA))


def read_errors(step_dir: Path) -> list[dict]:
    folder = step_dir / ERRORS
    if not folder.is_dir():
        return []
    rows: list[dict] = []
    for p in sorted(folder.glob("*.parquet")):
        rows.extend(pq.read_table(p).to_pylist())
    return rows


def next_retry_attempt(step_dir: Path) -> int:
    attempts = [int(u[1:4]) for u in committed_units(step_dir) if u.startswith("r")]
    return max(attempts, default=0) + 1


def fingerprint_dataset(step_dir: Path) -> str:
    """Cheap fingerprint of a step's committed state (names and sizes of its manifests)."""
    folder = step_dir / MANIFESTS
    h = hashlib.sha256()
    if folder.is_dir():
        for p in sorted(folder.glob("*.json")):
            h.update(f"{p.name}:{p.stat().st_size};".encode())
    return h.hexdigest()[:16]


def fingerprint_files(paths: list[str]) -> str:
    h = hashlib.sha256()
    for p in sorted(set(paths)):
        try:
            st = Path(p).stat()
            h.update(f"{p}:{st.st_size}:{st.st_mtime_ns};".encode())
        except OSError:
            h.update(f"{p}:missing;".encode())
    return h.hexdigest()[:16]
