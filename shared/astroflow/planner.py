"""Planning a step: which units to run, and why.  The ledger decides; nothing else does.

For one step, :func:`plan_step`

1. refuses while an input step is incomplete or over its failure fraction (``StepFailed``), so an
   Argo DAG stops where the embedded runner would;
2. lists the items again when the item list's dependency record no longer holds (new files in
   the data root, an upstream step recomputed, a setting it reads changed) and reconciles the
   plan: unchanged shards are kept, new items become new shards, shards with removed or changed
   items are retired (their rows and products go);
3. hands out a unit for every shard that never committed or whose unit-level record no longer
   holds (code, parameters, settings, whole upstream datasets), and patch units for the items
   whose own record no longer holds (their upstream rows, raw files, calibrations, a redo
   request) and, with ``retry_failed``, for the failed items.

The units handed out are written to ``RUN/<step>/_pending/`` with their reason, so a pod of an
Argo workflow runs exactly what the plan task printed.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from pathlib import Path

from astroflow import config as run_config
from astroflow import deps, rundir
from astroflow.errors import StepFailed
from astroflow.executor import code_version, context
from astroflow.registry import get_pipeline
from astroflow.step import FanOut


@dataclass
class Work:
    """What planning one step handed out."""

    step: str
    units: list[dict] = field(default_factory=list)  # {"unit", "kind", "items", "reason"}
    replanned: str | None = None  # why the item list was listed again
    retired: int = 0
    n_items: int = 0

    @property
    def names(self) -> list[str]:
        return [u["unit"] for u in self.units]

    def ids(self) -> list[int | str]:
        """What an Argo plan task prints for ``withParam``: shard numbers, and patch unit names
        (a few KB for 1,000 shards; ``astroflow step --shard`` takes either)."""
        return [int(u[6:]) if rundir.is_shard_unit(u) else u for u in self.names]

    def summary(self) -> str:
        if not self.units:
            return f"{self.step}: up to date ({self.n_items} items)"
        kinds: dict[str, int] = {}
        for u in self.units:
            kinds[u["kind"]] = kinds.get(u["kind"], 0) + len(u["items"])
        what = ", ".join(f"{n} {k}" for k, n in kinds.items())
        return f"{self.step}: {len(self.units)} unit(s), {what} item(s): {self.units[0]['reason']}"


def state_for(run_dir: Path, cfg: run_config.RunConfig) -> deps.State:
    from astroflow.executor import admitted_files

    pipeline = get_pipeline(cfg.pipeline)
    checker = (calibration_checker(run_dir, cfg.run.db_url, pipeline.calibrations, pipeline.db_migrations)
               if pipeline.calibrations else None)
    return deps.State(run_dir, cfg.settings, code_version(cfg), admitted_files(run_dir), checker)


def calibration_checker(run_dir: Path, db_url: str | None, types: dict, migrations: tuple[str, ...] = ()):
    """``(record) -> reason | None``: whether the calibrations a record used would still be chosen.

    Cheap while nothing of a type changed in the library (its revision); otherwise the look-up is
    redone (cached per observation) and compared by id and by content (a master recomputed in
    place has a new checksum).
    """
    import json
    from datetime import datetime

    from astroflow.calib import CalibrationNotFound, Library, NoCalibration

    lib = Library.for_run(run_dir, db_url, migrations=migrations)
    revisions: dict[str, int] = {}
    chosen: dict[tuple, object] = {}

    def check(rec: dict) -> str | None:
        for e in rec["calibrations"]:
            t = e["type"]
            if t not in types:
                return f"calibration type {t} is no longer declared"
            if t not in revisions:
                revisions[t] = lib.revision(types[t].name)
            if revisions[t] == e["revision"]:
                continue
            if "listing" in e:
                ids = [c.id for c in lib.list(types[t].name, bad=False, **e["listing"])]
                if ids != e["ids"]:
                    return f"calibrations {t}: {len(ids)} candidates now, {len(e['ids'])} when chosen"
                continue
            key = (t, e["at"], json.dumps(e["attributes"], sort_keys=True))
            if key not in chosen:
                try:
                    chosen[key] = lib.select(types[t], datetime.fromisoformat(e["at"]), e["attributes"]).record
                except NoCalibration as exc:
                    chosen[key] = exc
            now = chosen[key]
            if e.get("missing"):
                if not isinstance(now, Exception):
                    return f"calibration {t}: {Path(now.path).name} qualifies now"
                continue
            if isinstance(now, Exception):
                return f"calibration {t}: none qualifies any more ({str(now).splitlines()[0]})"
            if now.id != e["id"]:
                try:
                    old = lib.get(e["id"])
                except CalibrationNotFound:
                    return f"calibration {Path(e['path']).name} is gone from the library"
                if old.is_bad:
                    return f"calibration {Path(old.path).name} marked bad: {old.bad_reason}"
                return f"calibration {t}: {Path(now.path).name} is now chosen instead of {Path(e['path']).name}"
            if now.checksum != e.get("checksum"):
                return f"calibration {Path(now.path).name} was recomputed"
        return None

    return check


def check_inputs(run_dir: Path, cfg: run_config.RunConfig, step_name: str, state: deps.State) -> None:
    """Raise StepFailed unless every input step is complete and within the failure fraction."""
    pipeline = get_pipeline(cfg.pipeline)
    for dep in pipeline.upstream(pipeline.step(step_name), cfg.enabled_steps(pipeline)):
        ledger = state.ledger(dep)
        if not ledger.complete():
            raise StepFailed(f"{step_name}: input step {dep} has not completed")
        outcomes = ledger.outcomes()
        failed = sum(v == "failed" for v in outcomes.values())
        if outcomes and failed / len(outcomes) > cfg.run.max_failed_fraction:
            raise StepFailed(f"{step_name}: input step {dep} failed ({failed} of {len(outcomes)} items failed)")


def clear_step(run_dir: Path, step: str) -> list[str]:
    """Remove a step's products (those its units registered), dataset and ledger; returns the
    products removed.  Only paths inside the run directory are touched."""
    import shutil

    step_dir = Path(run_dir) / step
    removed = []
    for m in rundir._load_manifests(step_dir).values():
        for f in m.get("files", ()):
            path = Path(run_dir) / f
            if path.is_file():
                path.unlink()
                removed.append(f)
    if step_dir.is_dir():
        shutil.rmtree(step_dir)
    return removed


def plan_step(run_dir: str | Path, step_name: str, cfg: run_config.RunConfig | None = None,
              state: deps.State | None = None, *, force: bool = False, retry_failed: bool = False,
              min_shards: int = 1, chunks: int = 1, dry_run: bool = False) -> Work:
    """Plan ``step_name`` and hand out its units (see the module docstring)."""
    run_dir = Path(run_dir)
    cfg = cfg or run_config.load(run_dir)
    state = state or state_for(run_dir, cfg)
    pipeline = get_pipeline(cfg.pipeline)
    step = pipeline.step(step_name)
    step_dir = run_dir / step_name
    check_inputs(run_dir, cfg, step_name, state)
    if force and not dry_run:
        clear_step(run_dir, step_name)
        state.forget(step_name)
    params = cfg.step_params(pipeline, step_name)
    phash = rundir.params_hash(params.model_dump())
    ledger = state.ledger(step_name)
    plan = ledger.plan
    work = Work(step_name)
    work.replanned = "never planned" if plan is None else deps.stale(plan.deps, state, params=phash)
    if work.replanned:
        if isinstance(step, FanOut):
            _, ctx = context(run_dir, step_name, cfg)
            items = step.items(ctx)
            ids = [step.item_id(it) for it in items]
            if len(set(ids)) != len(ids):
                dupes = sorted({i for i in ids if ids.count(i) > 1})[:5]
                raise StepFailed(f"{step_name}: items() listed the same item twice: {dupes} (key {step.key})")
            rec = deps.record(state.code, phash, deps.settings_record(ctx.settings_read, cfg.settings), ctx.unit_deps)
            size = params.shard_size or step.shard_size
            if plan is None:
                plan = rundir.Plan.cut(items, size, cfg.run.max_shards, ids=ids, min_shards=min_shards, deps=rec)
            else:
                plan, retired = plan.reconcile(items, ids, size, cfg.run.max_shards, min_shards, deps=rec)
                work.retired = len(retired)
        else:
            plan = rundir.Plan.whole(step_name, {"whole": True})
        if not dry_run:
            plan.save(step_dir)
    if not dry_run:
        rundir.clear_pending(step_dir)
        rundir.collect_garbage(run_dir, step_name)
        rundir.clear_failure(step_dir)
        state.forget(step_name)
    ledger = rundir.Ledger(step_dir)
    ledger.plan = plan
    work.n_items = sum(len(s.ids) for s in plan.shards)
    work.units = _units(ledger, step, state, phash, retry_failed, chunks, rundir.crashes(step_dir),
                        rundir.read_overrides(step_dir), rundir.next_patch(step_dir))
    if not dry_run:
        for u in work.units:
            rundir.write_pending(step_dir, u["unit"], u)
    return work


def _units(ledger: rundir.Ledger, step, state: deps.State, phash: str, retry_failed: bool, chunks: int,
           crashes: dict, overrides: dict, patch: int) -> list[dict]:
    units: list[dict] = []
    scheduled: set[str] = set()
    cache: dict[str, str | None] = {}

    def unit_stale(m: dict) -> str | None:
        if m["unit"] not in cache:
            cache[m["unit"]] = deps.stale(m.get("deps") or {}, state, params=phash)
        return cache[m["unit"]]

    items: dict[str, dict[str, str]] = {"redo": {}, "refresh": {}, "retry": {}}
    for shard in ledger.plan.shards:
        m = ledger.units.get(shard.unit)
        reason = None
        if m is None:
            crash = crashes.get(shard.unit)
            reason = f"its worker died ({crash['message']})" if crash else "not computed yet"
        else:
            reason = unit_stale(m)
            if reason is None:
                found = {}
                for i in shard.ids:
                    latest = ledger.latest.get(i, m)
                    r = (unit_stale(latest) if latest is not m else None) or _item_stale(latest, i, state, overrides)
                    if r:
                        found[i] = r
                if found and not isinstance(step, FanOut):
                    reason = next(iter(found.values()))
                else:
                    for i, r in found.items():
                        items["redo" if r.startswith("redo") else "refresh"][i] = r
        if reason:
            units.append({"unit": shard.unit, "kind": "shard", "items": list(shard.ids), "reason": reason})
            scheduled.update(shard.ids)
    if retry_failed:
        for i, o in ledger.outcomes().items():
            if o == "failed":
                items["retry"][i] = "retry of a failed item"
    taken = set(scheduled)
    for kind, group in items.items():
        ids = [i for i in group if i not in taken]
        taken.update(ids)
        if not ids:
            continue
        n = max(1, min(len(ids), max(chunks, -(-len(ids) // max(1, getattr(step, "shard_size", 50))))))
        for c in range(n):
            chunk = ids[c::n]
            reason = group[chunk[0]] + (f" (and {len(chunk) - 1} more item(s))" if len(chunk) > 1 else "")
            units.append({"unit": rundir.patch_unit(patch, c), "kind": kind, "items": chunk, "reason": reason})
        patch += 1
    return units


def _item_stale(m: dict, item: str, state: deps.State, overrides: dict) -> str | None:
    rec = dict((m.get("item_deps") or {}).get(item) or {})
    had, want = rec.pop("redo", None), overrides.get(item)
    if want and (had is None or had.get("generation") != want.get("generation")
                 or had.get("params") != want.get("params", {})):
        return "redo requested" + (f" with {want['params']}" if want.get("params") else "")
    if had and not want:
        return "redo overrides removed"
    return deps.stale(rec, state) if rec else None


def failure_record(exc: BaseException) -> dict:
    """What ``RUN/<step>/_failure.json`` holds for a step that failed as a whole."""
    import time

    return {  # an exception from a pool worker carries its type name, message and traceback
        "error_type": getattr(exc, "type_name", None) or type(exc).__name__,
        "message": getattr(exc, "reason", None) or getattr(exc, "message", None) or str(exc),
        "file": getattr(exc, "path", None) or getattr(exc, "filename", None),
        "traceback": getattr(exc, "remote_traceback", None) or "".join(traceback.format_exception(exc)[-3:])[-2000:],
        "time": time.time(),
    }
