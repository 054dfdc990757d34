"""``astroflow watch``: process frames as they arrive, on one machine.

The local counterpart of Argo Events at a site (the vison wait mode, the NRES queue, the SEDM
night).  For a pipeline that declares :class:`~astroflow.arrivals.Arrivals`, it polls the watched
folder, waits until each new file is complete (size and mtime unchanged for ``settle_s`` and the
pipeline's check passing), admits it into the run (:func:`astroflow.arrivals.admit`, written
atomically before anything runs), then runs the whole pipeline with the embedded runner: the
plans of fan-out steps grow by the new files and the ledger skips every committed unit, so each
frame is processed once and the summaries that read them are brought up to date.

It polls rather than using inotify: raw data arrive on network filesystems (NFS, Lustre, CephFS)
where another host's writes raise no local inotify event.  It holds the run directory's lock for
as long as it runs (a second watcher or runner is refused, naming this one), prints one status
line per cycle to stderr, never prompts, and stops once nothing has changed for ``idle_stop_s``
(never while a file is still waiting or one of the pipeline's deadlines is ahead), with a final
line and the exit code: 0 when no item failed, 1 otherwise.  When one of the deadlines the
pipeline declares (``Arrivals.deadlines``: the SEDM calibrations' twilight) passes, the pipeline
runs again although nothing arrived, so the steps that waited for it go on with what they have.  Killed (``kill -9`` included) and restarted with the same command, it
processes nothing twice: admitted files are on disk, committed units are in the ledger.

    python -m astroflow.watch PIPELINE --config FILE --out RUN [--poll 2 --settle 5 --idle-stop 600]
"""

from __future__ import annotations

import argparse
import datetime as dt
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from astroflow import arrivals, deps
from astroflow.errors import AstroflowError, ConfigError, RunLocked
from astroflow.lock import run_lock


class WatchOptions(BaseModel):
    """How the watcher polls and when it gives up waiting (each one a flag of ``astroflow watch``)."""

    model_config = ConfigDict(extra="forbid")

    poll_s: float = Field(2.0, gt=0, description="seconds between two looks at the watched folder")
    settle_s: float = Field(5.0, ge=0, description="seconds a file's size and mtime must stay unchanged")
    max_wait_s: float = Field(900.0, ge=0, description=(
        "seconds after which a file that stays incomplete is admitted anyway, so its error is recorded"))
    idle_stop_s: float | None = Field(600.0, gt=0, description=(
        "stop after this many seconds without any change; None: watch until stopped"))


@dataclass
class Totals:
    """What the watcher has done since it started (the status lines)."""

    cycles: int = 0
    admitted: int = 0  # by this watcher
    units: int = 0
    failed_items: int = 0
    bad_steps: str = ""  # steps of the last run that did not finish, with their state


def watch(
    pipeline,
    cfg,
    run_dir: str | Path,
    opts: WatchOptions,
    *,
    out: TextIO | None = None,
) -> int:
    """Watch ``pipeline``'s arrivals for the run ``run_dir`` until idle; returns the exit code.
    Status lines go to ``out`` (default: ``sys.stderr`` as it is when the watcher starts)."""
    from astroflow import runner

    out = out or sys.stderr

    decl = pipeline.arrivals
    if decl is None:
        raise ConfigError(f"pipeline {pipeline.name} declares no arrivals: run it with `astroflow run {pipeline.name}`")
    run_dir = Path(run_dir).absolute()
    settings = cfg.typed_settings(pipeline)
    root = decl.root(settings)
    settling = arrivals.Settling(decl.check, opts.settle_s, opts.max_wait_s)
    regrown = arrivals.Settling(lambda path: None, opts.settle_s, opts.max_wait_s)  # admitted files appended to
    read_as: dict[str, tuple[int, int]] = {}  # a growing file -> its signature when the pipeline last ran after it
    deadlines = sorted(decl.deadlines(settings)) if decl.deadlines else []
    totals = Totals()

    def status(seen: int, known: int, new: int, obs: arrivals.Observation, ran: int) -> str:
        line = (f"watch {pipeline.name} {_utc()}: {seen} seen, {known} admitted (+{new}), "
                f"{len(obs.waiting)} waiting, {ran} unit(s) run, {totals.failed_items} failed item(s)")
        if totals.bad_steps:
            line += f", steps {totals.bad_steps}"
        if not root.is_dir():
            line += f"; {root} does not exist yet"
        elif obs.waiting:
            path, why = next(iter(obs.waiting.items()))
            line += f"; waiting for {_rel(path, root)}: {why}"
        ahead = [d for d in deadlines if d > deps.now_utc()]
        if ahead:
            line += f"; next deadline {ahead[0].astimezone(dt.UTC):%Y-%m-%dT%H:%M:%SZ}"
        return line

    def run_pipeline() -> int:
        result = runner.run(pipeline, cfg, run_dir, progress=False)
        totals.failed_items = result.failed_items  # latest outcomes over the whole run
        totals.bad_steps = ", ".join(f"{s.name} {s.state}" for s in result.steps.values() if s.state != "done")
        ran = sum(s.units for s in result.steps.values())
        totals.units += ran
        return ran

    runner.refuse_inside_raw(pipeline, cfg, run_dir)
    with run_lock(run_dir):
        runner.prepare(cfg, run_dir)  # run.json before the first frame: status and a restart read it
        arrivals.mark_watched(run_dir)
        pending_run = bool(arrivals.admitted(run_dir))  # a restart: bring earlier admissions up to date
        last_change = time.monotonic()
        last_run_at = deps.now_utc()
        try:
            while True:
                totals.cycles += 1
                now = time.monotonic()
                listing = decl.scan(settings)
                known = arrivals.admitted(run_dir) or set()
                obs = settling.observe({p: s for p, s in listing.items() if p not in known}, now)
                new = arrivals.admit(run_dir, obs.ready, obs.incomplete)
                totals.admitted += len(new)
                growing = {p: listing[p] for p in known | set(new) if p in listing and decl.grows(p, settings)}
                read_as.update({p: growing[p] for p in new if p in growing})
                grown = regrown.observe({p: sig for p, sig in growing.items() if read_as.get(p) != sig}, now)
                read_as.update({p: growing[p] for p in grown.ready})
                wall = deps.now_utc()
                due = any(last_run_at < d <= wall for d in deadlines)
                ran = 0
                if new or grown.ready or pending_run or due:
                    ran = run_pipeline()
                    last_run_at = wall
                pending_run = False
                if obs.changed or grown.changed or new or due:
                    last_change = time.monotonic()
                print(status(len(listing), len(known) + len(new), len(new), obs, ran), file=out, flush=True)
                idle = time.monotonic() - last_change
                ahead = any(d > deps.now_utc() for d in deadlines)
                if (opts.idle_stop_s is not None and not obs.waiting and not grown.waiting and not ahead
                        and idle >= opts.idle_stop_s):
                    print(_final(pipeline.name, f"nothing changed for {idle:.1f} s", totals), file=out, flush=True)
                    return 1 if totals.failed_items or totals.bad_steps else 0
                time.sleep(opts.poll_s)
        except KeyboardInterrupt:
            print(_final(pipeline.name, "interrupted", totals), file=out, flush=True)
            return 130


def _final(name: str, why: str, totals: Totals) -> str:
    return (f"watch {name} {_utc()}: stopped ({why}) after {totals.cycles} cycle(s): "
            f"{totals.admitted} file(s) admitted, {totals.units} unit(s) run, {totals.failed_items} failed item(s)"
            + (f", steps {totals.bad_steps}" if totals.bad_steps else ""))


def _utc() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _rel(path: str, root: Path) -> str:
    p = Path(path)
    return str(p.relative_to(root)) if p.is_relative_to(root) else path


# --- the command ------------------------------------------------------------------------------------
EXIT_CODES = """exit codes:
  0  stopped when idle, no item failed
  1  stopped when idle, some items (or steps) failed: astroflow status RUN says which
  2  usage or configuration error
  4  another process is writing the run directory (it is named)
  130 interrupted (SIGINT or SIGTERM)"""


def _parser(pipeline=None) -> tuple[argparse.ArgumentParser, list[str]]:
    """The command's parser; with ``pipeline``, also one flag per settings field (as ``astroflow
    run`` has), whose names are returned."""
    ap = argparse.ArgumentParser(
        prog="astroflow watch", description=__doc__.split("\n\n")[0], epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("pipeline")
    ap.add_argument("--config", type=Path, help="run configuration file (TOML or YAML); default: the run's run.json")
    ap.add_argument("--out", "--run-dir", dest="out", type=Path,
                    help="run directory (default: [run] out of the configuration)")
    ap.add_argument("--workers", type=int, help="parallel processes (default: the core count)")
    ap.add_argument("--partition", help="the run's partition value (a night...), last-night or tonight "
                    "(default: the pipeline's, such as tonight for SEDM)")
    ap.add_argument("--timezone", default="UTC", help="the site's time zone, for --partition last-night and tonight")
    ap.add_argument("--restart-hour", type=int, default=12, help="the site's local restart hour, for last-night")
    fields = WatchOptions.model_fields
    ap.add_argument("--poll", type=float, help=f"{fields['poll_s'].description} "
                    f"(default: the pipeline's, else {fields['poll_s'].default})")
    ap.add_argument("--settle", type=float, default=fields["settle_s"].default, help=fields["settle_s"].description)
    ap.add_argument("--max-wait", type=float, default=fields["max_wait_s"].default,
                    help=fields["max_wait_s"].description)
    stop = ap.add_mutually_exclusive_group()
    stop.add_argument("--idle-stop", type=float, help="stop after this many seconds without any change "
                      f"(default: the pipeline's, else {fields['idle_stop_s'].default})")
    stop.add_argument("--forever", action="store_true", help="never stop when idle (a service)")
    if pipeline is None:
        return ap, []
    from astroflow.cli import _model_flags

    taken = {n for n in pipeline.settings.model_fields if f"--{n.replace('_', '-')}" in ap._option_string_actions}
    return ap, _model_flags(ap, pipeline.settings, f"{pipeline.name} settings", skip=taken)


def main(argv: list[str] | None = None) -> int:
    """``python -m astroflow.watch PIPELINE ...`` (and ``astroflow watch``); returns the exit code."""
    from astroflow import config as run_config
    from astroflow.cli import _collect
    from astroflow.registry import get_pipeline

    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("pipeline", nargs="?")
    first, _ = pre.parse_known_args(argv)
    if first.pipeline is None or first.pipeline.startswith("-"):
        _parser()[0].parse_args(argv)  # the usage, or the help without a pipeline's settings
    try:
        pipeline = get_pipeline(first.pipeline)
        parser, settings_fields = _parser(pipeline)
        args = parser.parse_args(argv)
        decl = pipeline.arrivals
        fields = WatchOptions.model_fields
        idle = args.idle_stop if args.idle_stop is not None else (
            decl.idle_stop_s if decl and decl.idle_stop_s else fields["idle_stop_s"].default)
        poll = args.poll if args.poll is not None else (decl.poll_s if decl and decl.poll_s else fields["poll_s"].default)
        opts = WatchOptions(poll_s=poll, settle_s=args.settle, max_wait_s=args.max_wait,
                            idle_stop_s=None if args.forever else idle)
        file_data = run_config.read_config_file(args.config) if args.config else {}
        out = args.out or (Path(file_data["run"]["out"]) if "out" in file_data.get("run", {}) else None)
        file_data.get("run", {}).pop("out", None)
        if out is None:
            raise ConfigError("--out RUNDIR is required (or [run] out = ... in the configuration)")
        settings = _collect(args, settings_fields, pipeline.settings)
        if not args.config:
            if (out / run_config.RUN_FILE).exists():  # resume with the run's configuration; flags override it
                file_data = run_config.load(out).model_dump(exclude={"code_version"})
            elif not settings:
                raise ConfigError(f"{out} is not a run yet: give its configuration with --config FILE "
                                  "(or its settings as flags)")
        partition = args.partition
        named = {**(file_data.get("settings") or {}), **settings}
        if not partition and decl and decl.partition and pipeline.partition not in named:
            partition = decl.partition  # the pipeline's default, unless the configuration names the partition
        if partition:
            if pipeline.partition is None:
                raise ConfigError(f"pipeline {pipeline.name} is not partitioned (it declares no partition setting)")
            settings[pipeline.partition] = arrivals.resolve_partition(partition, args.timezone, args.restart_hour)
        runner_opts = {"workers": args.workers} if args.workers else {}
        cfg = run_config.resolve(pipeline, file_data, settings=settings, runner=runner_opts)
        signal.signal(signal.SIGTERM, _interrupt)
        return watch(pipeline, cfg, out, opts)
    except ValidationError as exc:
        print(f"astroflow watch: {exc}", file=sys.stderr)
        return 2
    except (RunLocked, AstroflowError, ValueError) as exc:
        print(f"astroflow watch: {exc}", file=sys.stderr)
        return 4 if isinstance(exc, RunLocked) else 2


def _interrupt(signum, frame):
    raise KeyboardInterrupt


if __name__ == "__main__":
    raise SystemExit(main())
