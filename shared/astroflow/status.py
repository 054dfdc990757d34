"""``astroflow status RUN``: expected versus produced, per step, from the ledger alone.

It replaces tec_status.py, ``ls -l *txt`` for zero-length files, ``find | wc`` and reading
``parallel --results`` folders: shards done/total, items ok/failed/skipped, missing or
zero-length outputs, the first errors with the file each came from, a step that failed as a
whole (with its file), units whose worker died, and what is *stale*: what the same command
would recompute, with the reason ("settings.sector changed (33 -> 34)", "input ses_mes changed").
Nothing is run and no item list is listed again.

:func:`write_metrics` puts the same figures in ``RUN/metrics.prom``, the Prometheus text format
that node_exporter's textfile collector (or any scraper of files) reads: items per outcome, wall
and CPU seconds, items per second and peak memory per step, and whether the run is complete.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from astroflow import config as run_config
from astroflow.atomic import write_text
from astroflow import deps, rundir
from astroflow.planner import _units, state_for
from astroflow.registry import get_pipeline


@dataclass
class StepStatus:
    step: str
    doc: str
    enabled: bool
    state: str  # disabled, not started, failed, planned, partial, stale, done with problems, done
    reason: str = ""
    shards_done: int = 0
    shards_total: int = 0
    items_ok: int = 0
    items_failed: int = 0
    items_skipped: int = 0
    items_stale: int = 0
    rows: int = 0
    units: int = 0  # committed units holding the latest outcomes (the sums below are over them)
    wall_s: float = 0.0  # the units' own time on the clock, summed
    cpu_s: float = 0.0  # the units' CPU time (user + system, threads and children), summed
    peak_rss_mb: float = 0.0  # the largest peak resident memory of one unit
    started: float | None = None  # when the first of these units began (Unix time)
    finished: float | None = None  # when the last of them committed (Unix time)
    elapsed_s: float = 0.0  # finished - started: the step's span on the clock, parallel units overlapping
    missing_outputs: list[str] = field(default_factory=list)
    empty_outputs: list[str] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)
    failure: dict | None = None
    crashes: list[dict] = field(default_factory=list)


def step_status(run_dir: Path, step, enabled: bool, cfg, state: deps.State, max_errors: int | None = 5) -> StepStatus:
    """One step's figures from its ledger; ``errors`` holds the first ``max_errors`` failed items
    (None: all of them), each with its unit and that unit's log (relative to the run directory)."""
    step_dir = run_dir / step.name
    st = StepStatus(step.name, step.describe(), enabled, "not started" if enabled else "disabled")
    failure = rundir.read_failure(step_dir)
    if failure:
        st.failure = {k: failure.get(k) for k in ("error_type", "message", "file")}
    st.crashes = list(rundir.crashes(step_dir).values())
    ledger = state.ledger(step.name)
    if ledger.plan is None:
        if failure:
            st.state, st.reason = "failed", f"{failure['error_type']}: {failure['message']}"
        return st
    plan = ledger.plan
    st.shards_total = plan.n_shards
    st.shards_done = sum(s.unit in ledger.units for s in plan.shards)
    outcomes = ledger.outcomes()
    st.items_ok = sum(v == "ok" for v in outcomes.values())
    st.items_failed = sum(v == "failed" for v in outcomes.values())
    st.items_skipped = sum(v == "skipped" for v in outcomes.values())
    for m in ledger.active:
        st.units += 1
        st.rows += m.get("rows", 0)
        st.wall_s += m.get("wall_s", 0.0)
        st.cpu_s += m.get("cpu_s", 0.0)
        st.peak_rss_mb = max(st.peak_rss_mb, m.get("peak_rss_mb", 0.0))
        if "started" in m:
            st.started = min(st.started or m["started"], m["started"])
        st.finished = max(st.finished or 0.0, m["committed_ns"] / 1e9)
        outputs = [(step_dir / m["part"])] if m.get("part") else []
        outputs += [run_dir / f for f in m.get("files", ())]
        for path in outputs:
            if not path.exists():
                st.missing_outputs.append(str(path.relative_to(run_dir)))
            elif path.stat().st_size == 0:
                st.empty_outputs.append(str(path.relative_to(run_dir)))
    if st.started is not None and st.finished is not None:
        st.elapsed_s = round(max(0.0, st.finished - st.started), 3)
    logs = {m["unit"]: m.get("log") for m in ledger.active}
    st.errors = sorted(({**{k: e[k] for k in ("item", "error_type", "message", "file", "unit")},
                         "log": f"{step.name}/{rundir.LOGS}/{logs[e['unit']]}" if logs.get(e["unit"]) else None}
                        for e in ledger.errors()), key=lambda e: e["item"])[:max_errors]
    if enabled:
        phash = rundir.params_hash(cfg.step_params(get_pipeline(cfg.pipeline), step.name).model_dump())
        st.reason = deps.stale(plan.deps, state, params=phash) or ""
        if not st.reason:
            todo = [u for u in _units(ledger, step, state, phash, False, 1, {}, rundir.read_overrides(step_dir), 1)
                    if u["unit"] in ledger.units or not rundir.is_shard_unit(u["unit"])]
            st.items_stale = sum(len(u["items"]) for u in todo)
            st.reason = todo[0]["reason"] if todo else ""
    if failure:
        st.state, st.reason = "failed", f"{failure['error_type']}: {failure['message']}"
    elif st.shards_done < st.shards_total:
        st.state = "partial" if st.shards_done else "planned"
        if st.crashes:
            st.reason = st.crashes[0]["message"]
    elif st.reason:
        st.state = "stale"
    elif st.items_failed or st.missing_outputs or st.empty_outputs:
        st.state = "done with problems"
    else:
        st.state = "done"
    return st


def collect(run_dir: str | Path, max_errors: int | None = 5) -> dict:
    """The run's status: per step (:class:`StepStatus`, as dicts) and whether it is complete."""
    run_dir = Path(run_dir)
    cfg = run_config.load(run_dir)
    pipeline = get_pipeline(cfg.pipeline)
    enabled = cfg.enabled_steps(pipeline)
    state = state_for(run_dir, cfg)
    steps = []
    for name in pipeline.order():
        s = step_status(run_dir, pipeline.step(name), name in enabled, cfg, state, max_errors)
        if s.state not in ("done", "done with problems", "disabled"):
            state.changed.add(name)
        steps.append(s)
    return {
        "run_dir": str(run_dir),
        "pipeline": cfg.pipeline,
        "code_version": cfg.code_version,
        "complete": all(s.state in ("done", "disabled") for s in steps),
        "steps": [asdict(s) for s in steps],
    }


def render_text(status: dict) -> str:
    lines = [f"run {status['run_dir']}  pipeline {status['pipeline']}  code {status['code_version']}", ""]
    header = f"{'step':<24} {'state':<19} {'shards':>9} {'ok':>7} {'failed':>7} {'skipped':>8} {'rows':>8}"
    lines += [header, "-" * len(header)]
    for s in status["steps"]:
        shards = f"{s['shards_done']}/{s['shards_total']}"
        lines.append(
            f"{s['step']:<24} {s['state']:<19} {shards:>9} {s['items_ok']:>7} {s['items_failed']:>7} "
            f"{s['items_skipped']:>8} {s['rows']:>8}"
        )
    for s in status["steps"]:
        problems = []
        if s["failure"]:
            f = s["failure"]
            problems.append(f"  step failed: {f['error_type']}: {f['message']}" + (f" [{f['file']}]" if f["file"] else ""))
        elif s["state"] == "stale":
            what = f"{s['items_stale']} item(s)" if s["items_stale"] else "the step"
            problems.append(f"  stale ({what}): {s['reason']}")
        problems += [f"  {c['unit']}: {c['message']}" for c in s["crashes"]]
        problems += [f"  missing output: {p}" for p in s["missing_outputs"]]
        problems += [f"  zero-length output: {p}" for p in s["empty_outputs"]]
        problems += [f"  {e['item']}: {e['error_type']}: {e['message']}" + (f" [{e['file']}]" if e["file"] else "")
                     for e in s["errors"]]
        if problems:
            lines += ["", f"{s['step']}:"] + problems
    lines += ["", "complete" if status["complete"] else "incomplete"]
    return "\n".join(lines)


def render_json(status: dict) -> str:
    return json.dumps(status, indent=1)


METRICS_FILE = "metrics.prom"
_METRICS = [  # name, type, help
    ("astroflow_run_complete", "gauge", "1 when every enabled step of the run is done"),
    ("astroflow_step_items", "gauge", "items of the step by outcome (ok, failed, skipped, stale)"),
    ("astroflow_step_wall_seconds", "gauge", "summed wall time of the step's committed units"),
    ("astroflow_step_cpu_seconds", "gauge", "summed CPU time of the step's committed units"),
    ("astroflow_step_items_per_second", "gauge", "items processed per second of unit wall time"),
    ("astroflow_step_peak_rss_bytes", "gauge", "largest resident memory of one of the step's units"),
]


def render_prometheus(status: dict) -> str:
    """The run's figures in the Prometheus text exposition format (one sample per line)."""
    def labels(**kw) -> str:
        esc = {k: str(v).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") for k, v in kw.items()}
        return "{" + ",".join(f'{k}="{v}"' for k, v in esc.items()) + "}"

    run = {"pipeline": status["pipeline"], "run": Path(status["run_dir"]).name}
    samples: dict[str, list[str]] = {name: [] for name, _, _ in _METRICS}
    samples["astroflow_run_complete"].append(f"{labels(**run)} {int(status['complete'])}")
    for s in status["steps"]:
        step = {**run, "step": s["step"]}
        for outcome in ("ok", "failed", "skipped", "stale"):
            samples["astroflow_step_items"].append(f"{labels(**step, outcome=outcome)} {s['items_' + outcome]}")
        done = s["items_ok"] + s["items_failed"] + s["items_skipped"]
        samples["astroflow_step_wall_seconds"].append(f"{labels(**step)} {s['wall_s']:.3f}")
        samples["astroflow_step_cpu_seconds"].append(f"{labels(**step)} {s['cpu_s']:.3f}")
        rate = done / s["wall_s"] if s["wall_s"] > 0 else 0.0
        samples["astroflow_step_items_per_second"].append(f"{labels(**step)} {rate:.4g}")
        samples["astroflow_step_peak_rss_bytes"].append(f"{labels(**step)} {int(s['peak_rss_mb'] * 2**20)}")
    lines = []
    for name, kind, text in _METRICS:
        lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"] + [name + v for v in samples[name]]
    return "\n".join(lines) + "\n"


def write_metrics(run_dir: str | Path, status: dict | None = None) -> Path:
    """Write ``RUN/metrics.prom`` (atomically) from :func:`collect`'s status of the run."""
    return write_text(Path(run_dir) / METRICS_FILE, render_prometheus(status or collect(run_dir)))
