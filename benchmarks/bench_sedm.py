"""SEDM at full size: one night of 2048 x 2048 frames (1027 spaxels, 15 transients), scored against the truth.

    python benchmarks/bench_sedm.py [--dir DIR] [--reuse-input] [--workers 2]

Prints the wall time of each step's units and its span, the afternoon calibrations' total (the
runbook: "roughly 30 minutes") and the unit time per standard or science frame (flexure to
spectra), then the night against the simulation's truth: per transient the injected and graded
quality, S/N, the flux-calibrated spectrum over the truth (median over 4500-8500 A; issue 14:
within 2 % at S/N >= 20), the type and redshift against the injected ones; the median per-spaxel
wavelength rms (<= 2 A) and the flexure errors (0.2 px across, 2 A along).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from astroflow import rundir
from steps.sedm.extract import read_spectrum
from steps.sedm.pipeline import SEDM

from common import simulated, timed_run

AFTERNOON = ("night", "calibration_sets", "master_bias", "debias_crr", "geometry", "hexagrid", "wavesolution", "flat",
             "fallback", "fluxcal_link", "calibrations")
PER_FRAME = ("flexure", "cube", "extract", "quality", "fluxcal", "calibrate", "classify", "spectra", "verify")


def simulate(root: Path) -> dict:
    from steps.sedm.simulate import simulate_night

    return simulate_night(root, full=True)


def rows(out: Path, step: str) -> dict[str, dict]:
    return {r["filename"]: r for r in rundir.read_dataset(out / step).to_pylist()}


def score(out: Path, truth: Path) -> None:
    frames = {r["filename"]: r for r in pq.read_table(truth / "frames.parquet").to_pylist()}
    transients = pq.read_table(truth / "transients.parquet").to_pylist()
    quality, calibrated, classified = rows(out, "quality"), rows(out, "calibrate"), rows(out, "classify")
    print(f"\n{'object':<14} {'case':<14} {'type':<4} {'z':>6} {'Q in':>4} {'Q':>2} {'S/N':>5} {'cal/truth':>9} "
          f"{'class':<5} {'z fit':>6} {'dz':>7}")
    ratios, dz, right, counted = [], [], 0, 0
    for t in transients:
        name = t["filename"]
        q, c, k = quality.get(name, {}), calibrated.get(name, {}), classified.get(name, {})
        ratio = float("nan")
        if c.get("calibrated"):
            sp = read_spectrum(out / c["calibrated_path"])
            band = (sp["wavelength"] >= 4500) & (sp["wavelength"] <= 8500)
            ratio = float(np.median(sp["flux"][band] / np.interp(sp["wavelength"], t["wavelength"], t["flux"])[band]))
        snr, z = c.get("snr", float("nan")), k.get("z", float("nan"))
        if snr >= 20 and t["quality"] <= 2:
            counted += 1
            ratios.append(ratio)
            dz.append(z - t["z"])
            right += k.get("type") == t["type"]
        print(f"{t['object']:<14} {t['case'] or 'regular':<14} {t['type']:<4} {t['z']:6.4f} {t['quality']:4d} "
              f"{q.get('quality', -1):2d} {snr:5.0f} {ratio:9.4f} {k.get('type') or '-':<5} {z:6.4f} {z - t['z']:7.4f}")
    graded = sum(quality.get(n, {}).get("quality") == f["quality"] for n, f in frames.items() if n in quality)
    print(f"\nquality equal to the injected case: {graded} of {len(quality)} frames")
    if counted:
        dev = np.abs(np.array(ratios) - 1)
        print(f"S/N >= 20 transients: {counted}; flux-calibrated / truth worst {np.nanmax(dev) * 100:.2f} % "
              f"(median {np.nanmedian(dev) * 100:.2f} %); injected type {right} of {counted}; "
              f"|dz| worst {np.nanmax(np.abs(dz)):.4f}")
    (wave,) = rundir.read_dataset(out / "wavesolution").to_pylist()
    print(f"wavelength solution: median per-spaxel rms {wave['median_rms']:.2f} A, {wave['n_good']} of "
          f"{wave['n_traces']} spaxels good")
    flex = rows(out, "flexure")
    across = [abs(r["flexure_x"] - frames[n]["flexure_across_px"]) for n, r in flex.items()]
    along = [abs(r["flexure_lambda"] - frames[n]["flexure_lambda_a"]) for n, r in flex.items()]
    print(f"flexure: worst error {max(across):.3f} px across, {max(along):.2f} A along ({len(flex)} frames)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, help="work folder (default: a temporary one)")
    ap.add_argument("--reuse-input", action="store_true")
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    work = a.dir or Path(tempfile.mkdtemp(prefix="bench-sedm-"))
    settings = simulated(work / "input", a.reuse_input, simulate)
    steps = timed_run(SEDM, {k: v for k, v in settings.items() if k != "truth"}, work / "run", a.workers,
                      strict=False)
    print(f"\n{'step':<17} {'items':>6} {'unit s':>8} {'span s':>8}")
    for name in (*AFTERNOON, *PER_FRAME, "upload", "night_report"):
        s = steps[name]
        print(f"{name:<17} {s['items']:>6} {s['wall_s']:>8.1f} {s['span_s']:>8.1f}")
    afternoon = sum(steps[n]["wall_s"] for n in AFTERNOON)
    n_frames = max(steps["flexure"]["items"], 1)
    per_frame = sum(steps[n]["wall_s"] for n in PER_FRAME) / n_frames
    print(f"\nwhole night {steps['_total']['wall_s']:.0f} s with {a.workers} workers, "
          f"{steps['_total']['failed_items']} failed items; afternoon calibrations {afternoon:.0f} s of unit time; "
          f"{per_frame:.1f} s of unit time per standard or science frame ({n_frames} frames)")
    score(work / "run", Path(settings["truth"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
