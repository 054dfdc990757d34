"""``astroflow status RUN``: expected versus produced, per step, from the ledger alone.

It replaces tec_status.py, ``ls -l *txt`` for zero-length files, ``find | wc`` and reading
``parallel --results`` folders: shards done/total, items ok/failed/skipped, missing or
zero-length outputs, and the first errors with the file each came from.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from astroflow import config as run_config
from astroflow import rundir
from astroflow.registry import get_pipeline


@dataclass
class StepStatus:
    step: str
    doc: str
    enabled: bool
    state: str  # not started, planned, partial, done, failed-items
    shards_done: int = 0
    shards_total: int = 0
    items_ok: int = 0
    items_failed: int = 0
    items_skipped: int = 0
    rows: int = 0
    wall_s: float = 0.0
    peak_rss_mb: float = 0.0
    missing_outputs: list[str] = field(default_factory=list)
    empty_outputs: list[str] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)


def step_status(run_dir: Path, step, enabled: bool, max_errors: int = 5) -> StepStatus:
    step_dir = run_dir / step.name
    st = StepStatus(step.name, step.describe(), enabled, "not started")
    p = rundir.Plan.load(step_dir)
    if p is None:
        if not enabled:
            st.state = "disabled"
        return st
    ms = rundir.manifests(step_dir)
    committed = {m["unit"] for m in ms}
    st.shards_total = p.n_shards
    st.shards_done = sum(rundir.shard_unit(i) in committed for i in range(p.n_shards))
    outcomes = rundir.item_outcomes(step_dir)
    st.items_ok = sum(v == "ok" for v in outcomes.values())
    st.items_failed = sum(v == "failed" for v in outcomes.values())
    st.items_skipped = sum(v == "skipped" for v in outcomes.values())
    for m in ms:
        st.rows += m.get("rows", 0)
        st.wall_s += m.get("wall_s", 0.0)
        st.peak_rss_mb = max(st.peak_rss_mb, m.get("peak_rss_mb", 0.0))
        outputs = ([m["part"]] if m.get("part") else []) + m.get("files", [])
        for rel in outputs:
            path = (step_dir / rel) if rel == m.get("part") else (run_dir / rel)
            if not path.exists():
                st.missing_outputs.append(str(path.relative_to(run_dir)))
            elif path.stat().st_size == 0:
                st.empty_outputs.append(str(path.relative_to(run_dir)))
    failed_now = {k for k, v in outcomes.items() if v == "failed"}
    seen = set()
    for err in reversed(rundir.read_errors(step_dir)):
        if err["item"] in failed_now and err["item"] not in seen:
            seen.add(err["item"])
            st.errors.append({k: err[k] for k in ("item", "error_type", "message", "file")})
    st.errors = sorted(st.errors, key=lambda e: e["item"])[:max_errors]
    if st.shards_done < st.shards_total:
        st.state = "partial" if st.shards_done else "planned"
    elif st.items_failed or st.missing_outputs or st.empty_outputs:
        st.state = "done with problems"
    else:
        st.state = "done"
    return st


def collect(run_dir: str | Path) -> dict:
    run_dir = Path(run_dir)
    cfg = run_config.load(run_dir)
    pipeline = get_pipeline(cfg.pipeline)
    enabled = cfg.enabled_steps(pipeline)
    steps = [step_status(run_dir, pipeline.step(n), n in enabled) for n in pipeline.order()]
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
        problems = (
            [f"  missing output: {p}" for p in s["missing_outputs"]]
            + [f"  zero-length output: {p}" for p in s["empty_outputs"]]
            + [f"  {e['item']}: {e['error_type']}: {e['message']}" + (f" [{e['file']}]" if e["file"] else "")
               for e in s["errors"]]
        )
        if problems:
            lines += ["", f"{s['step']}:"] + problems
    lines += ["", "complete" if status["complete"] else "incomplete"]
    return "\n".join(lines)


def render_json(status: dict) -> str:
    return json.dumps(status, indent=1)
