"""The ledger's own cost: 100,000 trivial items through one fan-out on 2 workers.

    python benchmarks/bench_ledger.py [--items 100000] [--workers 2] [--dir DIR]

Prints items per second of the whole run (planning, shards, commits: the item itself does
nothing) against a baseline measured in the same process (the same items through the same
process function in a plain loop, no ledger), the time of ``astroflow status`` on the finished
run (goal under 1 s), and of the same ``astroflow run`` again with nothing to do (goal under 5 s).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PIPELINE = "benchfan=bench_ledger:BENCH"

if __package__ in (None, ""):
    sys.path.insert(0, str(HERE))

from astroflow.pipeline import Pipeline, Settings  # noqa: E402
from astroflow.step import FanOut, Step  # noqa: E402


class BenchSettings(Settings):
    n: int = 100_000


def _numbers(ctx):
    return [{"i": i} for i in range(ctx.settings.n)]


def _items(ctx):
    return ctx.table("numbers").to_pylist()


def _process(ctx, item):
    return {"i": item["i"], "twice": 2 * item["i"]}


BENCH = Pipeline("benchfan", settings=BenchSettings, steps=[
    Step("numbers", run=_numbers, doc="the items"),
    FanOut("fan", inputs=("numbers",), items=_items, process=_process, key=("i",), shard_size=100,
           doc="one trivial item each"),
])


def _cli(args: list[str]) -> float:
    env = {**os.environ, "ASTROFLOW_PIPELINES": PIPELINE,
           "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "astroflow.cli", *args], env=env, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if done.returncode != 0:
        sys.exit(f"astroflow {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return dt


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--dir", type=Path, help="work folder (default: a temporary one)")
    a = ap.parse_args()
    work = a.dir or Path(tempfile.mkdtemp(prefix="bench-ledger-"))
    out = work / "run"

    t0 = time.perf_counter()
    for i in range(a.items):
        _process(None, {"i": i})
    baseline = time.perf_counter() - t0

    run = ["run", "benchfan", "--out", str(out), "--n", str(a.items), "--workers", str(a.workers), "--no-progress"]
    t_run = _cli(run)
    t_status = min(_cli(["status", str(out)]) for _ in range(3))
    t_again = _cli(run)
    print(f"{a.items:,} items, {a.workers} workers, run directory {out}")
    print(f"  run:             {t_run:8.2f} s  {a.items / t_run:10,.0f} items/s of ledger overhead "
          f"(plain loop: {a.items / baseline:,.0f} items/s, {t_run / baseline:,.0f}x)")
    print(f"  status:          {t_status:8.2f} s  (goal < 1 s)")
    print(f"  again, no work:  {t_again:8.2f} s  (goal < 5 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
