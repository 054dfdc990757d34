"""vison at full size: BIAS01 full analysis on 3 CCDs x 10 frames of 4238 x 4172, 2 workers.

    python benchmarks/bench_vison.py [--dir DIR] [--reuse-input] [--workers 2] [--frames 10] [--small]

Prints the run's wall time, each sub-task's span and unit time, the peak memory (the largest
resident set of one unit's process, and of this process), the results' size on disk (the whole
run directory and the Task's folder ``RUN/D00/BIAS01``), and the answers against the simulator's
truth (RON, prescan offsets).  The anchor (the vison cook-book, session D11): BIAS01 check + full
analysis 11 minutes on 6 cores, 1.9 GB of results before clean-up; the goal: under 1 minute.
``--small`` runs the reduced geometry instead (a smoke test of the script, seconds).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from astroflow import config, rundir, runner
from steps.vison import scoring
from steps.vison.pipeline import VISON
from steps.vison.simulate import SERIALS

ANCHOR = "vison: 11 min on 6 cores, 1.9 GB of results (cook-book, BIAS01 of session D11)"


def simulate(root: Path, reuse: bool, frames: int, full: bool) -> dict:
    marker = root / "settings.json"
    if reuse and marker.exists():
        return json.loads(marker.read_text())
    from steps.vison.simulate import simulate_day

    shutil.rmtree(root, ignore_errors=True)
    t0 = time.perf_counter()
    day = simulate_day(root, full_size=full, tests=("BIAS01",), max_frames=frames)
    print(f"simulation: {time.perf_counter() - t0:.0f} s ({frames} frames x 3 CCDs, "
          f"{day.geometry.shape[1]} x {day.geometry.shape[0]})", flush=True)
    settings = {"data_root": str(day.day_folder), "tests": ["BIAS01"], "session": "D00",
                "serials": {f"CCD{i + 1}": s for i, s in enumerate(SERIALS)}, "truth": str(day.truth)}
    marker.write_text(json.dumps(settings))
    return settings


def size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, help="work folder (default: a temporary one)")
    ap.add_argument("--reuse-input", action="store_true", help="keep the simulated day of an earlier run")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--frames", type=int, default=10)
    ap.add_argument("--small", action="store_true", help="the reduced geometry (a smoke test)")
    a = ap.parse_args()
    work = a.dir or Path(tempfile.mkdtemp(prefix="bench-vison-"))
    settings = simulate(work / "input", a.reuse_input, a.frames, not a.small)
    truth = settings.pop("truth")
    out = work / "run"
    shutil.rmtree(out, ignore_errors=True)
    cfg = config.resolve(VISON, settings=settings, runner={"workers": a.workers})
    t0 = time.perf_counter()
    res = runner.run(VISON, cfg, out, progress=False)
    wall = time.perf_counter() - t0
    if not res.ok:
        sys.exit(f"run failed: {[(n, s.message) for n, s in res.steps.items() if s.state != 'done']}")
    print(f"\n{'step':<12}{'span s':>9}{'unit s':>9}{'units':>7}{'peak MB':>9}")
    peak = 0.0
    for s in VISON.steps:
        ms = rundir.manifests(out / s.name)
        if not ms:
            continue
        span = max(m["started"] + m["wall_s"] for m in ms) - min(m["started"] for m in ms) if all(
            "started" in m for m in ms) else float("nan")
        unit_peak = max(m.get("peak_rss_mb", 0.0) for m in ms)
        peak = max(peak, unit_peak)
        print(f"{s.name:<12}{span:>9.1f}{sum(m['wall_s'] for m in ms):>9.1f}{len(ms):>7}{unit_peak:>9.0f}")
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    ron = scoring.ron_errors(out, truth)
    offsets = scoring.offset_errors(out, truth)
    print(f"\nBIAS01 full analysis, 3 CCDs x {a.frames} frames, {a.workers} workers ({os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.1f}): wall {wall:.1f} s (goal < 60 s; {ANCHOR})")
    print(f"peak memory: {max(peak, children):.0f} MB in one worker process, {own:.0f} MB in this one")
    print(f"results: {size_mb(out):.0f} MB in {out} ({size_mb(out / 'D00' / 'BIAS01'):.0f} MB in D00/BIAS01)")
    print(f"RON: max |relative error| {max(abs(r['relative_error']) for r in ron):.2%} over {len(ron)} quadrants "
          f"(mean {np.mean([r['relative_error'] for r in ron]):+.2%}); prescan offsets: max |error| "
          f"{max(abs(o['error_adu']) for o in offsets):.3f} ADU over {len(offsets)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
