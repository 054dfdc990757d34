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


def line(tag: str, f: dict) -> str:
    b, w, d, c, cr = f["master_bias"], f["wavelength"], f["detections"], f["continuum"], f["cosmics"]
    tp = max(abs(s["throughput_ratio"] - 1) for s in f["shots"])
    return (f"{tag}: bias {100 * b['level_err_max']:.2f}% rn {100 * b['read_noise_err_max']:.2f}% "
            f"traps {b['traps_found']}/{b['traps_injected']} false {b['traps_false']} | wave rms max {w['rms_max']:.3f} A | "
            f"lines S/N>=6 {d['injected_strong']}: completeness {100 * d['completeness']:.1f}% purity "
            f"{100 * d['purity']:.1f}% |dw| med {d['dwave_abs_median']:.2f} A, <0.5 A at S/N>=15 "
            f"{100 * d['dwave_within_0p5_sn15']:.0f}%, <3 err {100 * d['dwave_within_3err']:.0f}%, flux ratio "
            f"{d['flux_ratio_median']:.3f} | throughput err max "
            f"{100 * tp:.1f}% | continuum {c['found_once']}/{c['injected']} once, {c['fragments']} fragments, "
            f"{c['spurious']} spurious of {c['sources']} | cosmics {cr['found']}/{cr['events']}, "
            f"{cr['stray_pixels']} stray px of {cr['masked_pixels']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="*", default=[1, 2, 3])
    ap.add_argument("--n-ifus", type=int, default=1)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--run", type=Path, help="score this run directory instead of simulating")
    ap.add_argument("--data", type=Path, help="the simulated data of --run (default RUN/input)")
    args = ap.parse_args()
    if args.run:
        print(line(str(args.run), scoring.all_figures(args.data or args.run / "input", args.run)))
        return
    for seed in args.seeds:
        work = Path(tempfile.mkdtemp(prefix=f"hetdex-truth-{seed}-"))
        try:
            settings = simulate(work / "input", HetdexSimulation(seed=seed, n_ifus=args.n_ifus))
            cfg = config.resolve(HETDEX, settings=settings, runner={"workers": args.workers})
            res = runner.run(HETDEX, cfg, work / "run", progress=False)
            assert res.ok, {n: s.message for n, s in res.steps.items() if s.state != "done"}
            print(line(f"seed {seed}", scoring.all_figures(work / "input", work / "run")), flush=True)
        finally:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
