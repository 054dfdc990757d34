"""Running one unit of a step: the single entry point of all three ways a step runs.

In tests it is called in-process, under the embedded runner in a worker process, and in an Argo
pod through ``astroflow step PIPELINE STEP --run-dir DIR --unit NAME``.  The planner
(:mod:`astroflow.planner`) hands out units; a unit it did not hand out runs only if it is a shard
that never committed, so a rerun of a finished run does nothing.  A commit is atomic: the part
file, the error table and the log get names of their own (the commit id), then the manifest is
renamed into place, then the previous commit's files go.
"""

from __future__ import annotations

import logging
import os
import resource
import signal
import socket
import time
import traceback
import uuid
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa

from astroflow import config as run_config
from astroflow import deps, rundir, units
from astroflow.atomic import write_table
from astroflow.errors import ItemError, ItemTimeout, Skip, StepFailed
from astroflow.registry import get_pipeline
from astroflow.step import Context, FanOut, StepBase

log = logging.getLogger("astroflow")


def code_version(cfg: run_config.RunConfig) -> str:
    """The code version units are recorded with: the image's (``ASTROFLOW_CODE_VERSION``) or the run's."""
    return os.environ.get("ASTROFLOW_CODE_VERSION", cfg.code_version)


def admitted_files(run_dir: Path) -> set[str] | None:
    """A watched run's complete files (``astroflow.arrivals``); None when the run is not watched."""
    try:
        from astroflow.arrivals import admitted
    except ImportError:
        return None
    return admitted(run_dir)


def context(run_dir: Path, step_name: str, cfg: run_config.RunConfig | None = None,
            shard: int = 0, n_shards: int = 1) -> tuple[StepBase, Context]:
    cfg = cfg or run_config.load(run_dir)
    pipeline = get_pipeline(cfg.pipeline)
    step = pipeline.step(step_name)
    ctx = Context(
        pipeline=pipeline.name,
        step=step_name,
        run_dir=Path(run_dir),
        settings=cfg.typed_settings(pipeline),
        params=cfg.step_params(pipeline, step_name),
        shard=shard,
        n_shards=n_shards,
        inputs=tuple(pipeline.upstream(step, cfg.enabled_steps(pipeline))),
        admitted=admitted_files(run_dir),
        calib_types=pipeline.calibrations,
        db_url=cfg.run.db_url,
        db_migrations=pipeline.db_migrations,
        code_version=code_version(cfg),
        config_hash=cfg.config_hash(),
    )
    return step, ctx


def item_params(ctx: Context, overrides: dict) -> tuple:
    """(params, dependency extra) for one item, with its redo overrides applied."""
    if not overrides:
        return ctx.params, {}
    params = type(ctx.params).model_validate({**ctx.params.model_dump(), **overrides.get("params", {})})
    return params, {"redo": {"generation": overrides.get("generation", 0), "params": overrides.get("params", {})}}


def execute(run_dir: str | Path, step_name: str, unit: str, *, force: bool = False,
            cfg: run_config.RunConfig | None = None) -> dict:
    """Run one unit and commit it; returns its manifest (``skipped_unit`` when nothing to do)."""
    run_dir = Path(run_dir)
    step_dir = run_dir / step_name
    spec = rundir.read_pending(step_dir, unit)
    manifest_file = step_dir / rundir.MANIFESTS / f"{unit}.json"
    if spec is None and manifest_file.exists() and not force:
        return {"unit": unit, "skipped_unit": True}
    plan = rundir.Plan.load(step_dir)
    if plan is None:
        raise StepFailed(f"{step_name}: no plan in {step_dir}; run `astroflow plan` first")
    cfg = cfg or run_config.load(run_dir)
    if unit in plan.by_unit:
        shard = plan.by_unit[unit]
        items, kind = list(shard.items), (spec or {}).get("kind", "shard")
    elif spec is not None:
        items, kind = [plan.item(i) for i in spec["items"] if i in plan.item_shard], spec["kind"]
    else:
        raise StepFailed(f"{step_name}: unit {unit} is neither a shard of the plan nor handed out")
    step, ctx = context(run_dir, step_name, cfg, plan.shards.index(plan.by_unit[unit]) if unit in plan.by_unit else 0,
                        plan.n_shards)
    previous = _read_json(manifest_file)
    overrides = rundir.read_overrides(step_dir)
    commit = uuid.uuid4().hex
    name = f"{unit}-{commit[:12]}"
    handler = _log_to(step_dir / rundir.LOGS / f"{name}.jsonl", step_name, unit)
    _reset_peak_rss()
    started, cpu0 = time.time(), _cpu()
    code, phash = code_version(cfg), rundir.params_hash(ctx.params.model_dump())
    pieces: list = []  # tables, and lists of dict rows, in item order
    count = 0
    ranges: dict[str, list[int]] = {}
    ok, failed, skipped, errors = [], [], {}, []
    item_deps: dict[str, dict] = {}
    try:
        log.info("%s %s (%s): %d item(s)", step_name, unit, kind, len(items))
        setup_error = None
        if isinstance(step, FanOut) and step.setup is not None:
            try:
                ctx.state = step.setup(ctx, items)
            except Exception as exc:  # the shard's shared inputs are unusable: every item fails with it
                setup_error = exc
        base_params = ctx.params
        for item in items:
            item_id = step.item_id(item)
            ctx.item_id = item_id
            ctx.item_deps = deps.Recorder() if isinstance(step, FanOut) else None
            ctx.params, extra = item_params(ctx, overrides.get(item_id, {}))
            n = 0
            try:
                if setup_error is not None:
                    raise setup_error
                with _timeout(step.timeout_s):
                    out = step.process(ctx, item) if isinstance(step, FanOut) else step.run(ctx)
            except Skip as exc:
                skipped[item_id] = exc.reason
            except Exception as exc:  # one bad item never stops the others
                failed.append(item_id)
                errors.append(_error_row(item_id, unit, item, exc))
                log.warning("%s %s: item %s failed: %s", step_name, unit, item_id, exc)
            else:
                ok.append(item_id)
                n = _add(pieces, out)
            if n:
                ranges[item_id] = [count, count + n]
                count += n
            rec = {**(ctx.item_deps.as_dict() if ctx.item_deps else {}), **extra}
            if rec:
                item_deps[item_id] = rec
            ctx.params = base_params
        ctx.params, ctx.item_deps, ctx.item_id = base_params, None, None
        table = units.annotate(_build(pieces, step.schema), step.schema)
        part = None
        if table is not None:
            part = rundir.part_name(unit, commit)
            write_table(step_dir / part, table, row_group_size=256)
        errors_file = rundir.write_errors(step_dir, name, errors)
        good = set(ok)
        _register(ctx, [r for r in ctx.registrations if r["item"] in good], unit, code)
        processed = [step.item_id(it) for it in items]
        manifest = {
            "pipeline": ctx.pipeline,
            "step": step_name,
            "unit": unit,
            "kind": kind,
            "reason": (spec or {}).get("reason", ""),
            "commit": commit,
            "committed_ns": time.time_ns(),
            "items": processed,
            "ok": ok,
            "failed": failed,
            "skipped": sorted(skipped),
            "skip_reasons": skipped,
            "rows": 0 if table is None else table.num_rows,
            "part": part,
            "row_ranges": ranges if isinstance(step, FanOut) else {},
            "errors": errors_file,
            "log": f"{name}.jsonl",
            "files": ctx.files,
            "calibrations": ctx.calibrations_used,
            "code_version": code,
            "params": ctx.params.model_dump(mode="json"),
            "deps": deps.record(code, phash, deps.settings_record(ctx.settings_read, cfg.settings), ctx.unit_deps),
            "item_deps": item_deps,
            "started": started,
            "wall_s": round(time.time() - started, 3),
            "cpu_s": round(_cpu() - cpu0, 3),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "host": socket.gethostname(),
            "pid": os.getpid(),
        }
        rundir.write_manifest(step_dir, manifest)
        _record_uses(ctx, unit)
        _drop_previous(run_dir, step_dir, previous, manifest)
        rundir.clear_pending(step_dir, unit)
        rundir.clear_crash(step_dir, unit)
        return manifest
    finally:
        logging.getLogger("astroflow").removeHandler(handler)
        handler.close()


def _register(ctx: Context, registrations: list[dict], unit: str, code: str) -> None:
    """Enter the unit's calibration products into the library (before the commit: a crash in
    between leaves a registered file whose unit recomputes and registers it again)."""
    if not registrations:
        return
    from astroflow.calib import Provenance

    lib = ctx.library()
    for r in registrations:
        lib.register(r["type"], r["path"], r["dateobs"], r["attributes"], is_master=r["is_master"],
                     good_after=r["good_after"], good_until=r["good_until"], frames=r["frames"],
                     provenance=Provenance(run=str(ctx.run_dir.resolve()), step=ctx.step, item=r["item"], unit=unit,
                                           code_version=code))


def _record_uses(ctx: Context, unit: str) -> None:
    """After the commit: which items used which calibrations, in the library (``calib show``)."""
    uses = [{"calibration_id": rec["id"], "run": str(ctx.run_dir.resolve()), "step": ctx.step, "item": item,
             "unit": unit, "policy": rec["policy"], "reason": rec["reason"], "fallback": rec["fallback"]}
            for item, recs in ctx.calibrations_used.items() for rec in recs]
    if uses:
        ctx.library().record_uses(uses)


def _drop_previous(run_dir: Path, step_dir: Path, previous: dict | None, new: dict) -> None:
    """After a unit's new commit: remove the old commit's ledger files, and the products it
    registered that the new commit did not (unless another unit of the step claims them)."""
    if not previous or previous.get("commit") == new["commit"]:
        return
    for f in rundir.unit_files(step_dir, previous):
        f.unlink(missing_ok=True)
    orphans = set(previous.get("files", ())) - set(new["files"])
    if orphans:
        claimed = {f for m in rundir.Ledger(step_dir).active for f in m.get("files", ())}
        for f in orphans - claimed:
            (run_dir / f).unlink(missing_ok=True)


def _read_json(path: Path) -> dict | None:
    import json

    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None


def _cpu() -> float:
    """CPU seconds (user + system) of this process, all its threads, and its children that ended.

    A unit runs alone in its process (a pool worker, a pod, or the runner itself with one worker),
    so the difference around a unit is the unit's CPU time: the manifest's ``cpu_s``, beside
    ``wall_s``, its time on the clock."""
    return sum(r.ru_utime + r.ru_stime for r in map(resource.getrusage, (resource.RUSAGE_SELF,
                                                                           resource.RUSAGE_CHILDREN)))


def _reset_peak_rss() -> None:
    """Linux: restart this process's peak resident size, so that a warm worker's ``peak_rss_mb``
    is its present unit's, not the largest of every unit it ran (``clear_refs`` value 5, Linux 4.0+;
    elsewhere the peak stays the process's)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


@contextmanager
def _timeout(seconds: float | None):
    """Raise ItemTimeout in this (main) thread after ``seconds`` of wall time."""
    if not seconds:
        yield
        return

    def expired(signum, frame):
        raise ItemTimeout(f"the item took longer than {seconds:g} s (the step's timeout_s)")

    old = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _add(pieces: list, out) -> int:
    """Append one item's output (None, a dict, dicts or a Table) to ``pieces``; returns its rows."""
    if out is None:
        return 0
    if isinstance(out, pa.Table):
        pieces.append(out)
        return out.num_rows
    rows = [out] if isinstance(out, dict) else list(out)
    if pieces and isinstance(pieces[-1], list):
        pieces[-1].extend(rows)
    elif rows:
        pieces.append(rows)
    return len(rows)


def _build(pieces: list, schema: pa.Schema | None) -> pa.Table | None:
    tables = [p if isinstance(p, pa.Table) else pa.Table.from_pylist(p, schema=schema) for p in pieces]
    if not tables:
        return pa.Table.from_pylist([], schema=schema) if schema is not None else None
    return tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="default")


def _error_row(item_id: str, unit: str, item: dict, exc: Exception) -> dict:
    path = getattr(exc, "path", None) or getattr(exc, "filename", None) or item.get("path")
    tb = traceback.format_exception(exc)
    return {
        "item": item_id,
        "unit": unit,
        "error_type": type(exc).__name__,
        "message": exc.reason if isinstance(exc, ItemError) else str(exc),
        "file": str(path) if path else None,
        "traceback": "".join(tb[-3:])[-2000:],
    }


class JsonLines(logging.Formatter):
    """One JSON object per log record (time in UTC, level, logger, step, unit, message, and the
    exception if any): what a site's log collector (Loki, Elasticsearch) indexes without parsing."""

    def __init__(self, step: str, unit: str):
        super().__init__()
        self.step, self.unit = step, unit

    def format(self, record: logging.LogRecord) -> str:
        import json
        from datetime import datetime, timezone

        entry = {"time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
                 "level": record.levelname, "logger": record.name, "step": self.step, "unit": self.unit,
                 "message": record.getMessage()}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def _log_to(path: Path, step: str, unit: str) -> logging.Handler:
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setFormatter(JsonLines(step, unit))
    logger = logging.getLogger("astroflow")
    logger.addHandler(handler)
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)
    return handler
