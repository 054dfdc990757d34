"""TEC, all 21 steps on a full-size simulated 2-min sector (default 1,500 TCEs): wall time per step
and in total.

Per step it prints the wall time (first shard start to last shard end; steps overlap when the
DAG lets them), the summed shard time, the shards and the items per second of shard time; then
the whole run's wall time.  It takes many minutes (a benchmark, not a test).

    PYTHONPATH=shared:. .venv/bin/python benchmarks/bench_tec_full.py [--n-tces 1500] [--workers N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from astroflow import config, rundir, runner
from steps.tec.pipeline import TEC, TecSimulation, simulate


def step_times(run_dir: Path, step: str) -> dict | None:
    ms = [m for m in rundir.manifests(run_dir / step)]
    if not ms:
        return None
    start = min(m["started"] for m in ms)
    end = max(m["started"] + m["wall_s"] for m in ms)
    items = sum(len(m["ok"]) + len(m["failed"]) + len(m["skipped"]) for m in ms)
    return {"wall": end - start, "busy": sum(m["wall_s"] for m in ms), "shards": len(ms), "items": items,
            "failed": sum(len(m["failed"]) for m in ms)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-tces", type=int, default=1500)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--keep", type=Path, help="simulate and run in this folder and keep it (default: a temporary one)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        t0 = time.perf_counter()
        settings = simulate(root / "data", TecSimulation(n_tces=args.n_tces, seed=args.seed, family="spoc"))
        print(f"simulated {args.n_tces} TCEs (2-min, SPOC names) in {time.perf_counter() - t0:.1f} s", flush=True)
        cfg = config.resolve(TEC, settings=settings, runner={"workers": args.workers})
        t0 = time.perf_counter()
        res = runner.run(TEC, cfg, root / "run", progress=False)
        total = time.perf_counter() - t0
        print(f"\n{'step':<26}{'wall s':>9}{'shard s':>10}{'shards':>8}{'items':>7}{'failed':>7}{'items/shard-s':>15}")
        for name in TEC.order():
            t = step_times(root / "run", name)
            if t is None:
                print(f"{name:<26}{'(not run: ' + res.steps[name].state + ')' if name in res.steps else '(disabled)':>9}")
                continue
            rate = t["items"] / t["busy"] if t["busy"] > 0 else float("inf")
            print(f"{name:<26}{t['wall']:>9.1f}{t['busy']:>10.1f}{t['shards']:>8d}{t['items']:>7d}{t['failed']:>7d}"
                  f"{rate:>15.2f}")
        print(f"\nall 21 steps: {total:.1f} s wall with {args.workers} workers; run ok: {res.ok}")
        if not res.ok:
            print({n: (s.state, s.message) for n, s in res.steps.items() if s.state != "done"})


if __name__ == "__main__":
    main()
