"""The embedded runner: a pipeline's DAG on one machine, no cluster.

Each selected step is planned once its inputs have finished (:mod:`astroflow.planner`: the
ledger says what is stale and why), and the units handed out run concurrently on a process pool
(``workers``; 1 runs everything in this process).  The same command resumes a killed run and
brings a changed one up to date; ``force`` redoes the selected steps from scratch;
``retry_failed`` also redoes the failed items.  One runner at a time writes a run directory
(:mod:`astroflow.lock`).  A worker killed by the kernel fails only its own unit (recorded with
the signal); the pool starts a new worker and the run goes on.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from astroflow import config as run_config
from astroflow import rundir
from astroflow.errors import ConfigError, WorkerDied
from astroflow.executor import execute
from astroflow.lock import run_lock
from astroflow.pipeline import Pipeline
from astroflow.planner import Work, failure_record, plan_step, state_for
from astroflow.pool import WorkerPool

PR_SET_PDEATHSIG = 1  # prctl(2)

log = logging.getLogger("astroflow")


@dataclass
class StepRun:
    name: str
    state: str = "pending"  # pending, running, done, failed, blocked
    units: int = 0
    remaining: int = 0
    message: str = ""
    work: Work | None = None


@dataclass
class RunResult:
    run_dir: Path
    steps: dict[str, StepRun] = field(default_factory=dict)
    failed_items: int = 0
    changes: list[str] = field(default_factory=list)  # of the configuration, as recorded in _history.jsonl

    @property
    def ok(self) -> bool:
        return all(s.state == "done" for s in self.steps.values()) and not self.failed_items


def code_version() -> str:
    """Library version plus the git commit when run from a checkout."""
    from astroflow import __version__

    if "ASTROFLOW_CODE_VERSION" in os.environ:
        return os.environ["ASTROFLOW_CODE_VERSION"]
    try:
        sha = subprocess.run(
            ["git", "-C", str(Path(__file__).resolve().parent), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
        return f"{__version__}+g{sha}"
    except (OSError, subprocess.SubprocessError):
        return __version__


def failed_fraction(run_dir: Path, step: str) -> tuple[int, int]:
    outcomes = rundir.Ledger(run_dir / step).outcomes()
    return sum(v == "failed" for v in outcomes.values()), len(outcomes)


def _worker(run_dir: str, step: str, unit: str) -> dict:
    m = execute(run_dir, step, unit)
    return {"ok": len(m.get("ok", ())), "failed": len(m.get("failed", ()))}


THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _die_with(parent: int) -> None:
    """Linux: have the kernel kill this worker when the runner dies (kill -9, out of memory), so
    no orphan goes on writing into the run directory beside the next run."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the runner died before the request
        os._exit(1)


def _worker_init(pipeline: str, parent: int) -> None:
    """Runs once per worker process: dies with the runner, logging, and the pipeline's modules
    imported up front."""
    from astroflow.registry import get_pipeline

    _die_with(parent)
    logging.getLogger("astroflow").setLevel(logging.INFO)
    get_pipeline(pipeline)


def refuse_inside_raw(pipeline: Pipeline, cfg: run_config.RunConfig, run_dir: Path) -> None:
    """A run directory may not be, or lie inside, a raw-data folder of the settings."""
    for root in cfg.typed_settings(pipeline).data_roots():
        root = Path(os.path.abspath(root))
        if run_dir == root or root in run_dir.parents:
            raise ConfigError(f"run directory {run_dir} is inside the raw data folder {root}: raw data is "
                              "read-only, choose a run directory (--out) elsewhere")


def prepare(cfg: run_config.RunConfig, run_dir: Path) -> list[str]:
    """Stamp the code version and write ``run.json``; returns the recorded changes to it."""
    os.environ.setdefault("ASTROFLOW_CODE_VERSION", code_version())
    cfg.code_version = os.environ["ASTROFLOW_CODE_VERSION"]
    return run_config.save(cfg, run_dir)


def run(
    pipeline: Pipeline,
    cfg: run_config.RunConfig,
    run_dir: str | Path,
    *,
    force: bool = False,
    retry_failed: bool = False,
    only: str | None = None,
    start: str | None = None,
    until: str | None = None,
    progress: bool = True,
) -> RunResult:
    run_dir = Path(run_dir).absolute()
    refuse_inside_raw(pipeline, cfg, run_dir)
    with run_lock(run_dir):
        changes = prepare(cfg, run_dir)
        result = _run(pipeline, cfg, run_dir, force=force, retry_failed=retry_failed,
                      only=only, start=start, until=until, progress=progress)
        result.changes = changes
        return result


def preview(pipeline: Pipeline, cfg: run_config.RunConfig, run_dir: str | Path, *, retry_failed: bool = False,
            only: str | None = None, start: str | None = None, until: str | None = None) -> list[Work | str]:
    """What the same command would recompute, and why, without running anything (``--dry-run``).

    A step whose upstream will be recomputed counts as stale; its item list is the present one.
    """
    run_dir = Path(run_dir).absolute()
    cfg = cfg.model_copy()
    cfg.code_version = os.environ.get("ASTROFLOW_CODE_VERSION", code_version())
    state = state_for(run_dir, cfg)
    enabled = cfg.enabled_steps(pipeline)
    out: list[Work | str] = []
    for name in [n for n in pipeline.select(only, start, until) if n in enabled]:
        try:
            work = plan_step(run_dir, name, cfg, state, retry_failed=retry_failed, dry_run=True)
        except Exception as exc:
            blocked = any(d in state.changed for d in pipeline.upstream(pipeline.step(name), enabled))
            out.append(f"{name}: {'after its inputs are recomputed' if blocked else type(exc).__name__ + ': ' + str(exc)}")
            state.changed.add(name)
            continue
        if work.units or work.replanned:
            state.changed.add(name)
        out.append(work)
    return out


def _run(pipeline: Pipeline, cfg: run_config.RunConfig, run_dir: Path, *, force: bool, retry_failed: bool,
         only: str | None, start: str | None, until: str | None, progress: bool) -> RunResult:
    enabled = cfg.enabled_steps(pipeline)
    selected = [n for n in pipeline.select(only, start, until) if n in enabled]
    result = RunResult(run_dir, {n: StepRun(n) for n in selected})
    workers = cfg.run.workers
    state = state_for(run_dir, cfg)
    pool = None
    if workers > 1:
        # one process per core: numerical libraries in the workers must not start threads of
        # their own (inherited by the spawned workers; a user's explicit setting is kept)
        for var in THREAD_VARIABLES:
            os.environ.setdefault(var, "1")
        pool = WorkerPool(workers, _worker_init, (pipeline.name, os.getpid()))
    tickets: dict[int, tuple[str, str]] = {}
    # progress bar on a terminal only (None: tqdm decides), never when progress is off
    bar = tqdm(total=0, unit="unit", desc=pipeline.name, disable=None if progress else True, file=sys.stderr,
               dynamic_ncols=True)

    def upstream_ready(name: str) -> bool | None:
        """True when every input is available, False if not yet, None if it never will be."""
        for dep in pipeline.upstream(pipeline.step(name), enabled):
            if dep in result.steps:
                st = result.steps[dep].state
                if st in ("failed", "blocked"):
                    return None
                if st != "done":
                    return False
            elif not state.ledger(dep).complete():
                result.steps[name].message = f"input step {dep} has not completed; run it first"
                return None
        return True

    def finish(name: str) -> None:
        sr = result.steps[name]
        state.forget(name)
        if sr.state == "failed":
            return
        nfail, total = failed_fraction(run_dir, name)
        if total and nfail / total > cfg.run.max_failed_fraction:
            sr.state = "failed"
            sr.message = f"{nfail} of {total} items failed (allowed fraction {cfg.run.max_failed_fraction})"
        else:
            sr.state = "done"
            sr.message = f"{nfail} of {total} items failed" if nfail else ""
        log.info("step %s %s %s", name, sr.state, sr.message)

    def fail(name: str, exc: BaseException, unit: str | None = None) -> None:
        sr = result.steps[name]
        sr.state = "failed"
        where = f" (unit {unit})" if unit else ""
        sr.message = f"{getattr(exc, 'type_name', type(exc).__name__)}{where}: {getattr(exc, 'message', exc)}"
        log.error("step %s failed: %s", name, sr.message)

    def unit_ended(name: str, unit: str, exc: BaseException | None) -> None:
        bar.update(1)
        sr = result.steps[name]
        sr.remaining -= 1
        if isinstance(exc, WorkerDied):
            rundir.write_crash(run_dir / name, unit, {"unit": unit, "message": str(exc), "time": time.time()})
            fail(name, exc, unit)
        elif exc is not None:  # outside the per-item isolation (a full disk, a broken ledger file)
            rundir.write_failure(run_dir / name, {**failure_record(exc), "unit": unit})
            fail(name, exc, unit)
        if sr.remaining == 0:
            finish(name)

    def start_step(name: str) -> None:
        sr = result.steps[name]
        sr.state = "running"
        try:
            work = plan_step(run_dir, name, cfg, state, force=force, retry_failed=retry_failed,
                             min_shards=4 * workers if workers > 1 else 1, chunks=workers)
        except Exception as exc:
            rundir.write_failure(run_dir / name, failure_record(exc))
            fail(name, exc)
            return
        sr.work = work
        sr.units = sr.remaining = len(work.units)
        if work.units:
            log.info("%s", work.summary())
        bar.total += len(work.units)
        bar.refresh()
        if not work.units:
            finish(name)
            return
        for u in work.units:
            if pool is None:
                try:
                    execute(run_dir, name, u["unit"], cfg=cfg)
                except Exception as exc:
                    unit_ended(name, u["unit"], exc)
                else:
                    unit_ended(name, u["unit"], None)
            else:
                tickets[pool.submit(_worker, str(run_dir), name, u["unit"])] = (name, u["unit"])

    try:
        while True:
            for name in selected:
                sr = result.steps[name]
                if sr.state != "pending":
                    continue
                ready = upstream_ready(name)
                if ready is None:
                    sr.state = "blocked"
                    sr.message = sr.message or "an input step failed"
                elif ready:
                    bar.set_description(f"{pipeline.name}: {name}")
                    start_step(name)
            if not tickets:
                if all(s.state != "pending" for s in result.steps.values()):
                    break
                if not any(s.state == "running" for s in result.steps.values()):
                    continue
            for ticket, _, exc in pool.wait() if pool is not None else []:
                name, unit = tickets.pop(ticket)
                unit_ended(name, unit, exc)
    finally:
        bar.close()
        if pool is not None:
            pool.close()
    result.failed_items = sum(failed_fraction(run_dir, n)[0] for n in selected)
    return result
