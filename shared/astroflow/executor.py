"""Running one unit of a step: the single entry point of all three ways a step runs.

In tests it is called in-process, under the embedded runner in a worker process, and in an Argo
pod through ``astroflow step PIPELINE STEP --run-dir DIR --shard I``.  It is idempotent (a
committed unit is not redone unless forced) and atomic (part file, error table, then manifest).
"""

from __future__ import annotations

import logging
import os
import resource
import socket
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from astroflow import config as run_config
from astroflow import rundir
from astroflow.atomic import write_table
from astroflow.errors import ItemError, Skip, StepFailed
from astroflow.registry import get_pipeline
from astroflow.step import Context, FanOut, StepBase

log = logging.getLogger("astroflow")


@dataclass(frozen=True)
class Unit:
    """One shard of a step, or one chunk of a retry (``items`` are ledger ids)."""

    step: str
    shard: int = 0
    attempt: int = 0
    items: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        if self.attempt:
            return rundir.retry_unit(self.attempt, self.shard)
        return rundir.shard_unit(self.shard)


def context(run_dir: Path, step_name: str, shard: int = 0, n_shards: int = 1) -> tuple[StepBase, Context]:
    cfg = run_config.load(run_dir)
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
    )
    return step, ctx


def check_inputs(run_dir: Path, step_name: str) -> None:
    """Raise StepFailed unless every input step is complete and within the failure fraction."""
    cfg = run_config.load(run_dir)
    pipeline = get_pipeline(cfg.pipeline)
    for dep in pipeline.upstream(pipeline.step(step_name), cfg.enabled_steps(pipeline)):
        dep_dir = Path(run_dir) / dep
        p = rundir.Plan.load(dep_dir)
        committed = rundir.committed_units(dep_dir)
        if p is None or any(rundir.shard_unit(i) not in committed for i in range(p.n_shards)):
            raise StepFailed(f"{step_name}: input step {dep} has not completed")
        outcomes = rundir.item_outcomes(dep_dir)
        failed = sum(v == "failed" for v in outcomes.values())
        if outcomes and failed / len(outcomes) > cfg.run.max_failed_fraction:
            raise StepFailed(f"{step_name}: input step {dep} failed ({failed} of {len(outcomes)} items failed)")


def plan(run_dir: Path, step_name: str, force: bool = False, min_shards: int = 1) -> rundir.Plan:
    """List a fan-out step's items and cut them into shards (kept unless ``force``).

    Refuses (StepFailed) while an input step is incomplete or over its failure fraction, so an
    Argo DAG stops where the embedded runner would.
    """
    check_inputs(run_dir, step_name)
    step, ctx = context(run_dir, step_name)
    step_dir = Path(run_dir) / step_name
    current = rundir.params_hash(ctx.params.model_dump())
    existing = rundir.Plan.load(step_dir)
    if existing is not None and not force and existing.params_hash == current:
        return existing
    if not isinstance(step, FanOut):
        p = rundir.Plan([], [(0, 0)], current)
    else:
        items = step.items(ctx)
        size = ctx.params.shard_size or step.shard_size
        cfg = run_config.load(run_dir)
        p = rundir.Plan.cut(items, size, cfg.run.max_shards, current, min_shards=min_shards)
    p.save(step_dir)
    return p


def execute(run_dir: str | Path, unit: Unit, force: bool = False) -> dict:
    """Run one unit and commit it; returns its manifest (or the existing one when committed)."""
    run_dir = Path(run_dir)
    step_dir = run_dir / unit.step
    manifest_file = step_dir / rundir.MANIFESTS / f"{unit.name}.json"
    if manifest_file.exists() and not force:
        return {"unit": unit.name, "skipped_unit": True}
    p = rundir.Plan.load(step_dir)
    if p is None:
        raise StepFailed(f"{unit.step}: no plan in {step_dir}; run `astroflow plan` first")
    step, ctx = context(run_dir, unit.step, unit.shard, p.n_shards)
    if isinstance(step, FanOut):
        if unit.attempt:
            wanted = set(unit.items)
            items = [it for it in p.items if step.item_id(it) in wanted]
        else:
            items = p.shard_items(unit.shard)
    else:
        items = [{"id": unit.step}]

    handler = _log_to(step_dir / rundir.LOGS / f"{unit.name}.log")
    started = time.time()
    rows: list[dict] = []
    ok: list[str] = []
    failed: list[str] = []
    skipped: dict[str, str] = {}
    errors: list[dict] = []
    try:
        log.info("%s %s: %d item(s)", unit.step, unit.name, len(items))
        if isinstance(step, FanOut) and step.setup is not None:
            ctx.state = step.setup(ctx, items)
        for item in items:
            item_id = step.item_id(item) if isinstance(step, FanOut) else unit.step
            try:
                out = step.process(ctx, item) if isinstance(step, FanOut) else step.run(ctx)
            except Skip as exc:
                skipped[item_id] = exc.reason
                continue
            except Exception as exc:  # one bad item never stops the others
                failed.append(item_id)
                errors.append(_error_row(item_id, unit.name, item, exc))
                log.warning("%s %s: item %s failed: %s", unit.step, unit.name, item_id, exc)
                continue
            ok.append(item_id)
            rows.extend(_as_rows(out))
        table = _to_table(rows, step.schema)
        part = None
        if table is not None:
            part = rundir.part_name(unit.name)
            write_table(step_dir / part, table, row_group_size=256)
        rundir.write_errors(step_dir, unit.name, errors)
        manifest = {
            "pipeline": ctx.pipeline,
            "step": unit.step,
            "unit": unit.name,
            "shard": unit.shard,
            "n_shards": p.n_shards,
            "attempt": unit.attempt,
            "code_version": os.environ.get("ASTROFLOW_CODE_VERSION", run_config.load(run_dir).code_version),
            "params": ctx.params.model_dump(mode="json"),
            "params_hash": p.params_hash,
            "inputs": {
                name: rundir.fingerprint_dataset(run_dir / name)
                for name in (*step.inputs, *step.optional_inputs)
            },
            "raw_inputs": rundir.fingerprint_files(ctx.raw_inputs + [i["path"] for i in items if "path" in i]),
            "ok": ok,
            "failed": failed,
            "skipped": sorted(skipped),
            "skip_reasons": skipped,
            "rows": 0 if table is None else table.num_rows,
            "part": part,
            "files": ctx.files,
            "started": started,
            "wall_s": round(time.time() - started, 3),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "host": socket.gethostname(),
        }
        rundir.write_manifest(step_dir, unit.name, manifest)
        return manifest
    finally:
        logging.getLogger("astroflow").removeHandler(handler)
        handler.close()


def _as_rows(out) -> list[dict]:
    if out is None:
        return []
    if isinstance(out, pa.Table):
        return out.to_pylist()
    if isinstance(out, dict):
        return [out]
    return list(out)


def _to_table(rows: list[dict], schema: pa.Schema | None) -> pa.Table | None:
    if schema is not None:
        return pa.Table.from_pylist(rows, schema=schema)
    return pa.Table.from_pylist(rows) if rows else None


def _error_row(item_id: str, unit: str, item: dict, exc: Exception) -> dict:
    path = getattr(exc, "path", None) or item.get("path")
    tb = traceback.format_exception(exc)
    return {
        "item": item_id,
        "unit": unit,
        "error_type": type(exc).__name__,
        "message": exc.reason if isinstance(exc, ItemError) else str(exc),
        "file": str(path) if path else None,
        "traceback": "".join(tb[-3:])[-2000:],
    }


def _log_to(path: Path) -> logging.Handler:
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger = logging.getLogger("astroflow")
    logger.addHandler(handler)
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)
    return handler
