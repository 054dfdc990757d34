"""TEC front half (steps 1-11): seconds per TCE for resample and ses_mes on one core, and the
speed-up of the whole front half from 1 to 2 workers, measured in this process on one simulated
sector (ratios, not absolute seconds, are what to compare on noisy machines).

    .venv/bin/python benchmarks/bench_tec_front.py [--n-tces 200]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # one core per process, also for the 1-worker baseline

import argparse
import tempfile
import time
from pathlib import Path

from astroflow import config, rundir, runner
from steps.tec.pipeline import TEC, TecSimulation, simulate


def step_seconds(run_dir: Path, step: str) -> tuple[float, int]:
    """Summed shard wall time and the number of TCE rows the step wrote."""
    ms = rundir.manifests(run_dir / step)
    return sum(m["wall_s"] for m in ms), sum(m["rows"] for m in ms)


def timed_run(settings: dict, out: Path, workers: int) -> float:
    """Wall time of TEC steps 1-11 (up to flux_triage) with ``workers`` processes."""
    cfg = config.resolve(TEC, settings=settings, runner={"workers": workers},
                         steps={"ses_mes": {"shard_size": 10}, "resample": {"shard_size": 10}})
    t0 = time.perf_counter()
    res = runner.run(TEC, cfg, out, progress=False, until="flux_triage")
    elapsed = time.perf_counter() - t0
    assert res.ok, {n: s.message for n, s in res.steps.items() if s.state != "done"}
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-tces", type=int, default=200)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        settings = simulate(tmp / "data", TecSimulation(n_tces=args.n_tces))
        print(f"simulated {args.n_tces} TCEs in {time.perf_counter() - t0:.1f} s")
        one = timed_run(settings, tmp / "w1", 1)
        two = timed_run(settings, tmp / "w2", 2)
        for step in ("resample", "ses_mes"):
            wall, n = step_seconds(tmp / "w1", step)
            print(f"{step:<10} {wall / max(n, 1):.3f} s per TCE on one core ({n} TCEs, {wall:.1f} s)")
        print(f"front half, 1 worker : {one:.1f} s")
        print(f"front half, 2 workers: {two:.1f} s")
        print(f"speed-up 1 -> 2 workers: {one / two:.2f}x (goal > 1.8)")


if __name__ == "__main__":
    main()
