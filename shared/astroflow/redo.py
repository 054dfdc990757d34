"""Item redo: a person recomputes some items of a step, optionally with other parameters.

``astroflow redo RUN STEP --items KEY[,KEY...] [--set STEP.PARAM=VALUE]`` replaces the runbook's
hand re-runs (SEDM's ``redex`` of one object with a manual position, ELiXer's ``recover`` of the
reports that went missing).  A request bumps the items' generation and records their parameter
overrides in ``RUN/<step>/_overrides.json``; the planner then sees exactly those items as stale
("redo requested") and recomputes them as a patch (new parts; the older rows superseded in every
read, never rewritten), and what reads them becomes stale in turn.  The overrides stay with the
items: a later recomputation of their shard applies them again, until ``--clear``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from astroflow import config as run_config
from astroflow import rundir
from astroflow.errors import ConfigError
from astroflow.lock import run_lock
from astroflow.registry import get_pipeline


def request(run_dir: str | Path, step: str, items: list[str], params: dict | None = None,
            clear: bool = False) -> dict[str, dict]:
    """Record a redo of ``items`` of ``step`` (with parameter overrides); returns the overrides."""
    run_dir = Path(run_dir).absolute()
    cfg = run_config.load(run_dir)
    pipeline = get_pipeline(cfg.pipeline)
    declared = pipeline.step(step)
    step_dir = run_dir / step
    plan = rundir.Plan.load(step_dir)
    if plan is None:
        raise ConfigError(f"{step}: the step has not been planned in {run_dir}; run it first")
    unknown = [i for i in items if i not in plan.item_shard]
    if unknown:
        sample = ", ".join(list(plan.item_shard)[:5])
        raise ConfigError(f"{step} has no item(s) {', '.join(unknown[:10])}; items look like: {sample}")
    if params:
        try:
            declared.params.model_validate({**cfg.steps.get(step, {}), **params})
        except ValidationError as exc:
            raise ConfigError(run_config.explain(exc, f"steps.{step}")) from None
    with run_lock(run_dir):
        overrides = rundir.read_overrides(step_dir)
        for i in items:
            entry = overrides.get(i, {"generation": 0, "params": {}})
            overrides[i] = {"generation": entry["generation"] + 1,
                            "params": {} if clear else {**entry["params"], **(params or {})}}
        rundir.write_overrides(step_dir, overrides)
    return {i: overrides[i] for i in items}
