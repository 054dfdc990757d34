"""HETDEX end to end on one simulated shot: wall time per step.

Simulates one month with ``--n-ifus`` IFUs (78 at full size: 312 amplifiers, three dithered
exposures, a minimal calibration set) and reduces it with the embedded runner, then prints, per
step, the elapsed wall time of the step, the summed shard time and the summed shard CPU time (the
work per step; on a machine shared with other jobs, compare CPU sums, which the load hardly moves).

    .venv/bin/python benchmarks/bench_hetdex.py                 # full size, all cores
    .venv/bin/python benchmarks/bench_hetdex.py --n-ifus 2 --workers 2
    .venv/bin/python benchmarks/bench_hetdex.py --dir W --reuse-input   # reduce W/input again

It ends with the acceptance figures of the reduction against the simulator's truth.  ``--save F``
writes the figures as JSON; ``--baseline F`` prints them beside a saved run's, with the ratio
(old / new), so that an earlier commit's code (checked out elsewhere and put first on PYTHONPATH)
and this one are compared on the same input in one session:

    git worktree add /tmp/old COMMIT
    PYTHONPATH=/tmp/old/shared:/tmp/old .venv/bin/python benchmarks/bench_hetdex.py --dir W --save old.json
    PYTHONPATH=shared:. .venv/bin/python benchmarks/bench_hetdex.py --dir W --reuse-input --baseline old.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from astroflow import config, rundir, runner
from steps.hetdex import scoring
from steps.hetdex.pipeline import HETDEX


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-ifus", type=int, default=78)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--n-zero", type=int, default=3, help="zero frames (full calibration months have dozens)")
    ap.add_argument("--images", action="store_true", help="write /Data/Images into the shot file (large)")
    ap.add_argument("--dir", type=Path, default=None, help="work folder (default: a temporary one, removed)")
    ap.add_argument("--reuse-input", action="store_true", help="reduce DIR/input again if it was simulated before")
    ap.add_argument("--save", type=Path, default=None, help="write the figures to this JSON file")
    ap.add_argument("--baseline", type=Path, default=None, help="a --save file to print beside these figures")
    args = ap.parse_args()
    from steps.hetdex.simulate import simulate_month

    work = args.dir or Path(tempfile.mkdtemp(prefix="bench-hetdex-"))
    try:
        t0 = time.perf_counter()
        if args.reuse_input and (work / "input/settings.json").exists():
            settings = json.loads((work / "input/settings.json").read_text())
        else:
            settings = simulate_month(work / "input", n_ifus=args.n_ifus, n_zero=args.n_zero, n_flat=1, n_twi=1, n_arc=1,
                                      workers=args.workers)
        t_sim = time.perf_counter() - t0
        settings["images_in_shot_files"] = args.images
        cfg = config.resolve(HETDEX, settings=settings, runner={"workers": args.workers})
        shutil.rmtree(work / "run", ignore_errors=True)
        t0 = time.perf_counter()
        res = runner.run(HETDEX, cfg, work / "run", progress=False)
        total = time.perf_counter() - t0
        assert res.ok, {n: s.message for n, s in res.steps.items() if s.state != "done"}
        print(f"simulate: {t_sim:.1f} s for {args.n_ifus} IFUs ({4 * args.n_ifus} amps)")
        steps = {}
        for name in HETDEX.order():
            ms = rundir.manifests(work / "run" / name)
            if ms:
                steps[name] = {"units": len(ms),
                               "elapsed_s": max(m["started"] + m["wall_s"] for m in ms) - min(m["started"] for m in ms),
                               "shard_s": sum(m["wall_s"] for m in ms),
                               "cpu_s": sum(m.get("cpu_s", 0.0) for m in ms),
                               "peak_mb": max(m.get("peak_rss_mb", 0.0) for m in ms)}
        steps["total"] = {"units": sum(s["units"] for s in steps.values()), "elapsed_s": total,
                          "shard_s": sum(s["shard_s"] for s in steps.values()),
                          "cpu_s": sum(s["cpu_s"] for s in steps.values()),
                          "peak_mb": max(s["peak_mb"] for s in steps.values())}
        figures = scoring.summary(scoring.all_figures(work / "input", work / "run"))
        base = json.loads(args.baseline.read_text()) if args.baseline else None
        print_steps(steps, base["steps"] if base else None)
        print(f"total reduction wall time: {total:.1f} s with {args.workers} workers"
              + (f" (baseline {base['steps']['total']['elapsed_s']:.1f} s: {base['steps']['total']['elapsed_s'] / total:.2f}x)"
                 if base else ""))
        for shot in (work / "run/release/shots").glob("*.h5"):
            print(f"shot file {shot.name}: {shot.stat().st_size / 2**30:.2f} GiB")
        print("against the truth: " + figures)
        if base:
            print("baseline truth:    " + base["truth"])
        if args.save:
            args.save.write_text(json.dumps({"n_ifus": args.n_ifus, "workers": args.workers, "steps": steps,
                                             "truth": figures}, indent=1))
    finally:
        if args.dir is None:
            shutil.rmtree(work, ignore_errors=True)


def print_steps(steps: dict, base: dict | None) -> None:
    """Per step: units, elapsed, summed shard time and CPU time, peak memory; beside a baseline's,
    with ratios (the CPU ratio is the one to read on a shared machine: it hardly moves with the load)."""
    head = f"{'step':16s} {'units':>6s} {'elapsed s':>10s} {'shard-sum s':>12s} {'cpu-sum s':>10s} {'peak MB':>8s}"
    print(head + (f" | {'base elapsed':>12s} {'base shards':>11s} {'ratio':>6s} {'base cpu':>9s} {'ratio':>6s}" if base else ""))
    for name, s in steps.items():
        line = (f"{name:16s} {s['units']:6d} {s['elapsed_s']:10.1f} {s['shard_s']:12.1f} {s.get('cpu_s', 0.0):10.1f}"
                f" {s['peak_mb']:8.0f}")
        if base and name in base:
            b = base[name]
            line += f" | {b['elapsed_s']:12.1f} {b['shard_s']:11.1f} {b['shard_s'] / max(s['shard_s'], 1e-9):5.2f}x"
            if b.get("cpu_s") and s.get("cpu_s"):
                line += f" {b['cpu_s']:9.1f} {b['cpu_s'] / s['cpu_s']:5.2f}x"
        print(line)


if __name__ == "__main__":
    main()
