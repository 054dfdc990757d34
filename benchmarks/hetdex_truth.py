"""HETDEX acceptance figures against the simulator's truth, over several seeds (or one run).

    .venv/bin/python benchmarks/hetdex_truth.py --seeds 1 2 3          # simulate + reduce each
    .venv/bin/python benchmarks/hetdex_truth.py --run RUN --data DATA  # score an existing run

Prints one line of figures per run (bias/read-noise errors, traps, wavelength rms, completeness
and purity of S/N >= 6 lines, wavelength errors, throughput, continuum sources, cosmic rays).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from astroflow import config, runner
from steps.hetdex import scoring
from steps.hetdex.pipeline import HETDEX, HetdexSimulation, simulate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="*", default=[1, 2, 3, 4])
    ap.add_argument("--n-ifus", type=int, default=1)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--run", type=Path, help="score this run directory instead of simulating")
    ap.add_argument("--data", type=Path, help="the simulated data of --run (default RUN/input)")
    args = ap.parse_args()
    if args.run:
        print(f"{args.run}: " + scoring.summary(scoring.all_figures(args.data or args.run / "input", args.run)))
        return
    for seed in args.seeds:
        work = Path(tempfile.mkdtemp(prefix=f"hetdex-truth-{seed}-"))
        try:
            settings = simulate(work / "input", HetdexSimulation(seed=seed, n_ifus=args.n_ifus))
            cfg = config.resolve(HETDEX, settings=settings, runner={"workers": args.workers})
            res = runner.run(HETDEX, cfg, work / "run", progress=False)
            assert res.ok, {n: s.message for n, s in res.steps.items() if s.state != "done"}
            print(f"seed {seed}: " + scoring.summary(scoring.all_figures(work / "input", work / "run")), flush=True)
        finally:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
