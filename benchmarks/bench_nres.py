"""NRES at full size: one night of 4096 x 4096 frames (67 orders x 3 fibers), 1 and 2 workers.

    python benchmarks/bench_nres.py [--dir DIR] [--reuse-input] [--workers 1 2]

Prints, per step, the wall time of the run's units and the time per frame, for the calibration
stacking of the night (BIAS, DARK, FLAT x 2 fiber states, DOUBLE x 2: issue 13's goal under 5
minutes on 2 cores) and for the science frames (reduce, extract, classify, rv: goal under 60 s per frame on
one core), each with 1 and with 2 workers in the same session, and the ratio; then the velocities
against the simulation's truth per S/N group (rms, mean, median RVERR and chi, the rms of error /
RVERR: issue 13's acceptance is rms < 10 m/s at S/N 100 and RVERR within a factor 2 of the
scatter) and per frame.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from steps.nres import scoring
from steps.nres.pipeline import NRES

from common import simulated, timed_run

CALIBRATION = ("index", "reduce_bias", "stack_bias", "reduce_dark", "stack_dark", "reduce_flat", "stack_flat",
               "trace", "profile", "reduce_arc", "stack_arc", "wavelength")
SCIENCE = ("reduce_target", "extract", "template", "classify", "rv", "summary")
PER_FRAME = ("reduce_target", "extract", "classify", "rv")


def simulate(root: Path) -> dict:
    from steps.nres.simulate import simulate_nights

    return simulate_nights(root, sites=("cpt",), nights=1, full=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, help="work folder (default: a temporary one)")
    ap.add_argument("--reuse-input", action="store_true")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    a = ap.parse_args()
    work = a.dir or Path(tempfile.mkdtemp(prefix="bench-nres-"))
    settings = simulated(work / "input", a.reuse_input, simulate)
    results = {w: timed_run(NRES, settings, work / f"run-{w}", w) for w in a.workers}
    print(f"\n{'step':<16}" + "".join(f"{f'{w} worker(s) s':>16}{'s/item':>9}" for w in a.workers))
    for name in (*CALIBRATION, *SCIENCE):
        line = f"{name:<16}"
        for w in a.workers:
            s = results[w][name]
            line += f"{s['span_s']:>16.1f}{(s['wall_s'] / s['items']) if s['items'] else 0:>9.1f}"
        print(line)
    for w in a.workers:
        r = results[w]
        cal = sum(r[n]["span_s"] for n in CALIBRATION)
        n_sci = r["reduce_target"]["items"]
        per_frame = sum(r[n]["wall_s"] for n in PER_FRAME) / max(n_sci, 1)
        print(f"{w} worker(s): run {r['_total']['wall_s']:.0f} s; calibrations of the night {cal:.0f} s "
              f"(goal < 300 s on 2 cores); one science frame {per_frame:.1f} s of unit time "
              f"(reduce + extract + classify + rv; goal < 60 s on one core), {n_sci} frames")
    # the science at full size, scored against the simulation's truth (issue 13's acceptance figures)
    scores = scoring.velocities(work / f"run-{a.workers[-1]}", work / "input" / "truth")
    for snr in sorted({round(x["snr"] / 50) * 50 for x in scores}):
        sel = [x for x in scores if round(x["snr"] / 50) * 50 == snr]
        err = np.array([x["rv_error"] for x in sel])
        chi = np.sqrt(np.mean((err / np.array([x["rv_err"] for x in sel])) ** 2))
        print(f"S/N ~{snr}: {len(sel)} frames, RV rms {np.sqrt(np.mean(err ** 2)):.1f} m/s against the truth "
              f"(goal < 10 at S/N 100), mean {err.mean():+.1f} m/s, median RVERR "
              f"{np.median([x['rv_err'] for x in sel]):.1f} m/s, chi {chi:.2f} (rms of error / RVERR; goal 0.5-2), "
              f"max |BARYCORR error| {max(abs(x['barycorr_error']) for x in sel):.3f} m/s")
    print(f"{'frame':<44}{'object':>9}{'S/N':>5}{'RV-truth':>9}{'RVERR':>7}")
    for x in sorted(scores, key=lambda x: x["filename"]):
        print(f"{x['filename']:<44}{x['object']:>9}{x['snr']:>5.0f}{x['rv_error']:>+9.2f}{x['rv_err']:>7.2f}")
    if len(a.workers) == 2:
        w1, w2 = a.workers
        print(f"speed-up {w2} vs {w1} workers: {results[w1]['_total']['wall_s'] / results[w2]['_total']['wall_s']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
