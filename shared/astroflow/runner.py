"""The embedded runner: a pipeline's DAG on one machine, no cluster.

Independent steps and the shards of fan-out steps run concurrently on a process pool
(``workers``; 1 runs everything in this process).  Committed units are skipped, so the same
command resumes a killed run; ``force`` redoes the selected steps; ``retry_failed`` re-runs only
the items whose latest outcome is *failed*, wherever they were, and steps that read them are
brought up to date.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from astroflow import config as run_config
from astroflow import rundir
from astroflow.errors import StepFailed
from astroflow.executor import Unit, execute, plan
from astroflow.pipeline import Pipeline
from astroflow.step import FanOut

PR_SET_PDEATHSIG = 1  # prctl(2)

log = logging.getLogger("astroflow")


@dataclass
class StepRun:
    name: str
    state: str = "pending"  # pending, running, done, failed, blocked
    units: int = 0
    remaining: int = 0
    message: str = ""
    retried: bool = False


@dataclass
class RunResult:
    run_dir: Path
    steps: dict[str, StepRun] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(s.state == "done" for s in self.steps.values())


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


def clear_step(run_dir: Path, step: str) -> None:
    """Remove a step's dataset and ledger (only inside the run directory)."""
    step_dir = run_dir / step
    if step_dir.is_dir():
        shutil.rmtree(step_dir)


def step_complete(run_dir: Path, step: str) -> bool:
    p = rundir.Plan.load(run_dir / step)
    if p is None:
        return False
    committed = rundir.committed_units(run_dir / step)
    return all(rundir.shard_unit(i) in committed for i in range(p.n_shards))


def failed_fraction(run_dir: Path, step: str) -> tuple[int, int]:
    outcomes = rundir.item_outcomes(run_dir / step)
    return sum(v == "failed" for v in outcomes.values()), len(outcomes)


def _worker(run_dir: str, unit: Unit, force: bool) -> dict:
    return execute(run_dir, unit, force=force)


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
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("ASTROFLOW_CODE_VERSION", code_version())
    cfg.code_version = os.environ["ASTROFLOW_CODE_VERSION"]
    run_config.save(cfg, run_dir)
    enabled = cfg.enabled_steps(pipeline)
    selected = [n for n in pipeline.select(only, start, until) if n in enabled]
    result = RunResult(run_dir, {n: StepRun(n) for n in selected})
    workers = cfg.run.workers

    pool = None
    if workers > 1:
        # one process per core: numerical libraries in the workers must not start threads of
        # their own (inherited by the spawned workers; a user's explicit setting is kept)
        for var in THREAD_VARIABLES:
            os.environ.setdefault(var, "1")
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_worker_init, initargs=(pipeline.name, os.getpid()))
        for _ in range(workers):  # start the workers while this process plans the first steps
            pool.submit(int)
    futures: dict[Future, tuple[str, Unit]] = {}
    # progress bar on a terminal only (None: tqdm decides), never when progress is off
    bar = tqdm(total=0, unit="unit", desc=pipeline.name, disable=None if progress else True, file=sys.stderr,
               dynamic_ncols=True)

    def upstream_ready(name: str) -> bool | None:
        """True when every input is available, False if not yet, None if it never will be."""
        for dep in pipeline.upstream(pipeline.step(name), enabled):
            if dep in result.steps:
                state = result.steps[dep].state
                if state in ("failed", "blocked"):
                    return None
                if state != "done":
                    return False
            elif not step_complete(run_dir, dep):
                result.steps[name].message = f"input step {dep} has not completed; run it first"
                return None
        return True

    def finish(name: str) -> None:
        sr = result.steps[name]
        nfail, total = failed_fraction(run_dir, name)
        if total and nfail / total > cfg.run.max_failed_fraction:
            sr.state = "failed"
            sr.message = f"{nfail} of {total} items failed (allowed fraction {cfg.run.max_failed_fraction})"
        else:
            sr.state = "done"
            sr.message = f"{nfail} of {total} items failed" if nfail else ""
        log.info("step %s %s %s", name, sr.state, sr.message)

    def submit(name: str, unit: Unit, force_unit: bool) -> None:
        if pool is None:
            try:
                execute(run_dir, unit, force=force_unit)
            except Exception as exc:
                fail(name, exc)
            else:
                unit_done(name)
        else:
            futures[pool.submit(_worker, str(run_dir), unit, force_unit)] = (name, unit)

    def fail(name: str, exc: BaseException) -> None:
        sr = result.steps[name]
        sr.state = "failed"
        sr.message = f"{type(exc).__name__}: {exc}"
        log.error("step %s failed: %s", name, sr.message)

    def unit_done(name: str) -> None:
        bar.update(1)
        sr = result.steps[name]
        sr.remaining -= 1
        if sr.remaining == 0 and sr.state == "running":
            finish(name)

    def start_step(name: str) -> None:
        sr = result.steps[name]
        sr.state = "running"
        step_dir = run_dir / name
        try:
            if retry_failed:
                units, force_units = _retry_units(pipeline, name, run_dir, workers, result)
            else:
                current = rundir.params_hash(cfg.step_params(pipeline, name).model_dump())
                old = rundir.Plan.load(step_dir)
                if force or (old is not None and old.params_hash != current):
                    clear_step(run_dir, name)
                p = plan(run_dir, name, min_shards=4 * workers if workers > 1 else 1)
                committed = rundir.committed_units(step_dir)
                units = [Unit(name, i) for i in range(p.n_shards) if rundir.shard_unit(i) not in committed]
                force_units = False
        except Exception as exc:
            fail(name, exc)
            return
        sr.units = sr.remaining = len(units)
        bar.total += len(units)
        bar.refresh()
        if not units:
            finish(name)
            return
        sr.retried = retry_failed
        for unit in units:
            submit(name, unit, force_units)

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
            if not futures:
                if all(s.state != "pending" for s in result.steps.values()):
                    break
                if not any(s.state == "running" for s in result.steps.values()):
                    continue
            done, _ = wait(list(futures), return_when=FIRST_COMPLETED)
            for fut in done:
                name, unit = futures.pop(fut)
                exc = fut.exception()
                if exc is not None:
                    fail(name, exc)
                    bar.update(1)
                    result.steps[name].remaining -= 1
                elif result.steps[name].state == "running":
                    unit_done(name)
    finally:
        bar.close()
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    return result


def _retry_units(pipeline: Pipeline, name: str, run_dir: Path, workers: int, result: RunResult):
    """Units that redo the failed items of ``name`` (or all of a whole step whose inputs changed)."""
    step = pipeline.step(name)
    step_dir = run_dir / name
    if rundir.Plan.load(step_dir) is None:
        raise StepFailed(f"{name}: nothing to retry, the step has never run")
    upstream_changed = any(
        result.steps.get(dep) is not None and result.steps[dep].retried
        for dep in pipeline.upstream(step)
    )
    if not isinstance(step, FanOut):
        failed = [i for i, o in rundir.item_outcomes(step_dir).items() if o == "failed"]
        if failed or upstream_changed:
            return [Unit(name, 0)], True
        return [], False
    failed = [i for i, o in rundir.item_outcomes(step_dir).items() if o == "failed"]
    if not failed:
        return [], False
    attempt = rundir.next_retry_attempt(step_dir)
    n_chunks = max(1, min(workers, len(failed)))
    chunks = [tuple(failed[i::n_chunks]) for i in range(n_chunks)]
    return [Unit(name, c, attempt, chunk) for c, chunk in enumerate(chunks)], True
