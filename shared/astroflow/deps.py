"""Dependency records: what a unit, its item list or one item depended on, and whether it still holds.

The ledger is the one authority on freshness.  While a step runs, its :class:`~astroflow.step.Context`
records what it touched, and the record is stored with the plan (for ``items()``) and in each
manifest (for the unit, and per item)::

    code        the code version
    params      the hash of the step's parameters (plus an item's redo overrides and generation)
    settings    the value of every settings field the step read (tracked, not declared), or "*"
    datasets    upstream datasets read whole -> the committed state they had
    where       upstream rows read by value (``ctx.table(where=...)``, ``ctx.lookup``) -> the
                commits that supplied them, so new rows for other keys leave the record fresh
    files       raw files read (``ctx.uses``) -> size, mtime and SHA-256 (a touched file whose
                content is unchanged stays fresh)
    listings    folders listed (``ctx.glob``) -> the names found
    calibrations  calibrations chosen (``ctx.calibration``) -> their id, and the library revision
    deadlines   times asked about (``ctx.past``) -> whether they had passed, so a result that
                waited for a deadline is recomputed once it passes

:func:`stale` checks a record against the present and returns the first reason it no longer
holds ("settings.sector changed (33 -> 34)", "input ses_mes changed"), or None.  Rubin's
middleware refuses a run whose configuration differs; here the same command recomputes exactly
what the difference reaches, and ``status`` names the reason.
"""

from __future__ import annotations

import datetime as dt
import glob as globlib
import inspect
import os
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
from pydantic import BaseModel

from astroflow import rundir
from astroflow.errors import AstroflowError


# --- recording ------------------------------------------------------------------------------------
@dataclass
class Recorder:
    """What one scope (a unit, an item, the item list) read while it ran."""

    datasets: dict[str, str] = field(default_factory=dict)
    where: dict[str, dict] = field(default_factory=dict)  # "dataset|col,col" -> {dataset, cols, conditions, units, state}
    files: dict[str, list] = field(default_factory=dict)
    listings: dict[str, str] = field(default_factory=dict)
    trees: dict[str, str] = field(default_factory=dict)
    calibrations: list[dict] = field(default_factory=list)
    deadlines: dict[str, bool] = field(default_factory=dict)  # ISO UTC time -> passed when read

    def read_whole(self, dataset: str, state: str) -> None:
        self.datasets[dataset] = state

    def read_where(self, dataset: str, conditions: list[dict], units: list[tuple[str, str]], state: str) -> None:
        cols = sorted({c for cond in conditions for c in cond})
        key = f"{dataset}|{','.join(cols)}"
        entry = self.where.setdefault(key, {"dataset": dataset, "conditions": [], "units": set(), "state": state})
        entry["conditions"].extend(conditions)
        entry["units"].update(units)
        entry["state"] = state

    def use_file(self, path: str | Path) -> None:
        path = str(Path(path).absolute())
        if path not in self.files:
            self.files[path] = rundir.file_state(path)

    def listing(self, root: str, pattern: str, names: list[str]) -> None:
        self.listings[f"{root}::{pattern}"] = rundir.digest(sorted(names))

    def tree(self, root: str, admitted: set[str] | None) -> None:
        self.trees[root] = tree_digest(root, admitted)

    def deadline(self, when: dt.datetime) -> bool:
        passed = now_utc() >= when
        self.deadlines[when.isoformat()] = passed
        return passed

    def as_dict(self) -> dict:
        out: dict[str, Any] = {}
        if self.datasets:
            out["datasets"] = dict(self.datasets)
        if self.where:
            out["where"] = [{"dataset": e["dataset"], "conditions": _merge(e["conditions"]),
                             "units": rundir.digest(sorted(e["units"])), "state": e["state"]}
                            for e in self.where.values()]
        if self.files:
            out["files"] = dict(self.files)
        if self.listings:
            out["listings"] = dict(self.listings)
        if self.trees:
            out["trees"] = dict(self.trees)
        if self.calibrations:
            out["calibrations"] = list(self.calibrations)
        if self.deadlines:
            out["deadlines"] = dict(self.deadlines)
        return out


CLOCK_ENV = "ASTROFLOW_CLOCK"


def now_utc() -> dt.datetime:
    """The clock the deadlines are compared with (UTC): the wall clock, or the time that
    ``ASTROFLOW_CLOCK`` gives (ISO 8601 with its zone), to replay a night as it was at that time."""
    fixed = os.environ.get(CLOCK_ENV)
    if not fixed:
        return dt.datetime.now(dt.timezone.utc)
    try:
        when = dt.datetime.fromisoformat(fixed)
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise AstroflowError(f"{CLOCK_ENV}={fixed!r} is not an ISO 8601 time with its zone (2024-06-12T03:00:00+00:00)")
    return when.astimezone(dt.timezone.utc)


def _merge(conditions: list[dict]) -> list[dict]:
    """Merge single-column conditions on the same column into one (keeps the record small)."""
    single: dict[str, list] = {}
    rest = []
    for cond in conditions:
        if len(cond) == 1:
            (col, values), = cond.items()
            single.setdefault(col, []).extend(_as_list(values))
        else:
            rest.append({c: _as_list(v) for c, v in cond.items()})
    merged = [{c: sorted(set(v), key=str)} for c, v in single.items()]
    unique = []
    for cond in rest:
        if cond not in unique:
            unique.append(cond)
    return merged + unique


def _as_list(values) -> list:
    return list(values) if isinstance(values, (list, tuple, set, frozenset)) else [values]


class TrackedSettings:
    """The step's settings, recording which fields are read.

    Field access is recorded by name; properties and methods defined on the pipeline's settings
    class run against this proxy, so the fields they read are recorded too; anything else
    (``model_dump`` and the like) counts as reading every field.
    """

    __slots__ = ("_model", "_read")

    def __init__(self, model: BaseModel, read: set[str]):
        object.__setattr__(self, "_model", model)
        object.__setattr__(self, "_read", read)

    def __getattr__(self, name: str):
        model = object.__getattribute__(self, "_model")
        read = object.__getattribute__(self, "_read")
        cls = type(model)
        if name in cls.model_fields:
            read.add(name)
            return getattr(model, name)
        for klass in cls.__mro__:
            if klass is BaseModel:
                break
            if name in vars(klass):
                attr = vars(klass)[name]
                if isinstance(attr, property):
                    return attr.fget(self)
                if inspect.isfunction(attr):
                    return types.MethodType(attr, self)
                break
        read.add("*")
        return getattr(model, name)

    def __setattr__(self, name, value):
        raise AttributeError("settings are read-only inside a step")

    def __repr__(self) -> str:
        return f"Tracked({object.__getattribute__(self, '_model')!r})"


def settings_record(read: set[str], settings: dict) -> dict:
    if "*" in read:
        return {"*": rundir.digest(settings)}
    return {name: settings.get(name) for name in sorted(read)}


def record(code: str, params: str, settings: dict | None, rec: Recorder, **extra) -> dict:
    out = {"code": code, "params": params}
    if settings is not None:
        out["settings"] = settings
    out.update(rec.as_dict())
    out.update({k: v for k, v in extra.items() if v is not None})
    return out


def glob(root: str | Path, pattern: str, admitted: set[str] | None) -> list[Path]:
    """Files under ``root`` matching ``pattern`` (``**`` recursive), sorted; only admitted ones in
    a watched run."""
    found = sorted(Path(p) for p in globlib.glob(os.path.join(str(root), pattern), recursive=True))
    found = [p for p in found if p.is_file()]
    if admitted is not None:
        found = [p for p in found if str(p.absolute()) in admitted]
    return found


def tree_digest(root: str | Path, admitted: set[str] | None) -> str:
    """The names and sizes of every file under ``root`` (links followed): what a search of the
    tree by a pipeline's own rules can have found."""
    found = []
    for dirpath, _, filenames in os.walk(root, followlinks=True):
        for fn in filenames:
            path = os.path.join(dirpath, fn)
            if admitted is not None and os.path.abspath(path) not in admitted:
                continue
            try:
                found.append((os.path.relpath(path, root), os.stat(path).st_size))
            except OSError:
                continue
    return rundir.digest(sorted(found))


# --- checking ----------------------------------------------------------------------------------------
class State:
    """The present, as a record is checked against it (caches last one planning or status pass).

    ``current_digest(step)`` may be overridden by the caller, e.g. so that a step about to be
    recomputed counts as changed before it has run.
    """

    def __init__(self, run_dir: Path, settings: dict, code: str, admitted: set[str] | None = None,
                 calibrations=None):
        self.run_dir = Path(run_dir)
        self.settings = settings
        self.code = code
        self.admitted = admitted
        self.calibrations = calibrations  # callable (record) -> reason | None, or None
        self._ledgers: dict[str, rundir.Ledger] = {}
        self._keys: dict[tuple[str, tuple[str, ...]], pa.Table] = {}
        self._trees: dict[str, str] = {}
        self.changed: set[str] = set()  # steps known to be recomputed in this pass

    def tree(self, root: str) -> str:
        if root not in self._trees:
            self._trees[root] = tree_digest(root, self.admitted)
        return self._trees[root]

    def ledger(self, step: str) -> rundir.Ledger:
        if step not in self._ledgers:
            self._ledgers[step] = rundir.Ledger(self.run_dir / step)
        return self._ledgers[step]

    def forget(self, step: str) -> None:
        self._ledgers.pop(step, None)
        for k in [k for k in self._keys if k[0] == step]:
            del self._keys[k]

    def where_units(self, dataset: str, conditions: list[dict]) -> str:
        cols = tuple(sorted({c for cond in conditions for c in cond}))
        if (dataset, cols) not in self._keys:
            self._keys[(dataset, cols)] = self.ledger(dataset).read(columns=list(cols), with_part=True)
        table = self._keys[(dataset, cols)]
        if table.num_rows == 0:
            return rundir.digest([])
        expr = None
        for cond in conditions:
            term = rundir.where_expression(cond)
            expr = term if expr is None else expr | term
        matched = table.filter(expr)
        return rundir.digest(self.ledger(dataset).units_of(matched))


def stale(rec: dict, state: State, *, params: str | None = None) -> str | None:
    """The first reason ``rec`` no longer holds against ``state``, or None when it is fresh."""
    if not rec:
        return "no dependency record"
    if "code" in rec and rec["code"] != state.code:
        return f"code version changed ({rec['code']} -> {state.code})"
    if params is not None and "params" in rec and rec["params"] != params:
        return "parameters changed"
    for name, value in (rec.get("settings") or {}).items():
        if name == "*":
            if value != rundir.digest(state.settings):
                return "settings changed"
        elif state.settings.get(name) != value:
            return f"settings.{name} changed ({_short(value)} -> {_short(state.settings.get(name))})"
    for path, old in (rec.get("files") or {}).items():
        now = _quick_state(path, old)
        if now is None:
            if old is not None:
                return f"file {path} is gone"
            continue
        if old is None or now[0] != old[0] or now[2] != old[2]:
            return f"file {path} changed"
    for root, old in (rec.get("trees") or {}).items():
        if state.tree(root) != old:
            return f"files under {root} changed"
    for key, old in (rec.get("listings") or {}).items():
        root, pattern = key.split("::", 1)
        names = [str(p) for p in glob(root, pattern, state.admitted)]
        if rundir.digest(sorted(names)) != old:
            return f"files matching {os.path.join(root, pattern)} changed"
    for name, old in (rec.get("datasets") or {}).items():
        if name in state.changed or state.ledger(name).digest() != old:
            return f"input {name} changed"
    for entry in rec.get("where") or ():
        name = entry["dataset"]
        if name not in state.changed and state.ledger(name).digest() == entry["state"]:
            continue
        if state.where_units(name, entry["conditions"]) != entry["units"]:
            return f"input {name} changed ({_describe(entry['conditions'])})"
    for when, passed in (rec.get("deadlines") or {}).items():
        if not passed and now_utc() >= dt.datetime.fromisoformat(when):
            return f"deadline {when} passed"
    if rec.get("calibrations") and state.calibrations is not None:
        reason = state.calibrations(rec)
        if reason:
            return reason
    return None


def _quick_state(path: str, old: list | None) -> list | None:
    """The file's state, hashing only when size or mtime moved."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if old is not None and st.st_size == old[0] and st.st_mtime_ns == old[1]:
        return old
    return rundir.file_state(path)


def _short(value, n: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= n else text[: n - 3] + "..."


def _describe(conditions: list[dict]) -> str:
    parts = []
    for cond in conditions[:2]:
        parts.append(", ".join(f"{c}={_short(v if len(v) > 1 else v[0], 24)}" for c, v in cond.items()))
    more = f" and {len(conditions) - 2} more" if len(conditions) > 2 else ""
    return "; ".join(parts) + more


def drop_part(table: pa.Table) -> pa.Table:
    """A ``with_part`` read without its attribution column."""
    return table.drop_columns([rundir.PART_COLUMN]) if rundir.PART_COLUMN in table.column_names else table
