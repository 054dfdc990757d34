"""What the full-size pipeline benchmarks share: a simulated input kept for ``--reuse-input``, and
one timed run of a pipeline with each step's unit time, items and span from its manifests."""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

from astroflow import config, rundir, runner


def simulated(root: Path, reuse: bool, make: Callable[[Path], dict]) -> dict:
    """The settings of the input simulated under ``root`` by ``make(root)``, made again unless
    ``reuse`` and an earlier simulation's ``settings.json`` is there."""
    marker = root / "settings.json"
    if reuse and marker.exists():
        return json.loads(marker.read_text())
    shutil.rmtree(root, ignore_errors=True)
    t0 = time.perf_counter()
    settings = make(root)
    print(f"simulation: {time.perf_counter() - t0:.0f} s", flush=True)
    marker.write_text(json.dumps(settings, default=str))
    return settings


def timed_run(pipeline, settings: dict, out: Path, workers: int, *, strict: bool = True) -> dict[str, dict]:
    """Run ``pipeline`` into a fresh ``out``: per step ``wall_s`` (the units' time), ``items`` and
    ``span_s`` (first start to last end); ``_total``: the run's wall time and failed items.  With
    ``strict`` a step that did not finish ends the benchmark, else it is reported."""
    shutil.rmtree(out, ignore_errors=True)
    cfg = config.resolve(pipeline, settings=settings, runner={"workers": workers})
    t0 = time.perf_counter()
    res = runner.run(pipeline, cfg, out, progress=False)
    total = time.perf_counter() - t0
    bad = [(n, s.state, s.message) for n, s in res.steps.items() if s.state != "done"]
    if bad and strict:
        sys.exit(f"run failed: {bad}")
    if bad:
        print(f"steps not done: {bad}", file=sys.stderr)
    steps = {}
    for s in pipeline.steps:
        ms = rundir.manifests(out / s.name)
        steps[s.name] = {"wall_s": sum(m["wall_s"] for m in ms), "items": sum(len(m["items"]) for m in ms),
                         "span_s": (max(m["started"] + m["wall_s"] for m in ms) - min(m["started"] for m in ms))
                         if ms else 0.0}
    steps["_total"] = {"wall_s": total, "failed_items": res.failed_items}
    return steps
