"""ELiXer benchmarks (runbook 18.5 and 18.2).

1. Report databases: write ``--images`` (default 100,000) report images of ``--size`` bytes into a
   folder tree (png / _nei / _mini over several detectid prefixes), build the SQLite databases with
   ``astroflow elixer report-db`` semantics and print seconds per image (runbook anchor 0.04-0.05 s
   per image; goal >= 100x faster).
2. Report generation: seconds per detection for classification + PNG + PDF (+ mini) on simulated
   detections.

    PYTHONPATH=shared:. .venv/bin/python benchmarks/bench_elixer.py [--images N] [--size BYTES] [--reports N]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "shared"), str(Path(__file__).resolve().parents[1])]

ANCHOR_S = 0.045


def bench_db(n_images: int, size: int, workers: int | None) -> float:
    from steps.elixer.report_db import build_report_dbs

    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "reports"
        payload = b"\x89PNG\r\n\x1a\n" + os.urandom(size) + b"IEND\xaeB`\x82"
        kinds = ["", "_nei", "_mini"]
        t0 = time.perf_counter()
        for i in range(n_images):
            d = 3000000000 + (i // 3) * 7  # spans several 100,000-detectid prefixes
            folder = tree / f"dispatch_{i // 3 % 16}"
            if i < 16 * 3:
                folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{d}{kinds[i % 3]}.png").write_bytes(payload)
        print(f"wrote {n_images} images of {size} B in {time.perf_counter() - t0:.1f} s")
        t0 = time.perf_counter()
        results = build_report_dbs(tree, Path(tmp) / "db", ("png", "nei", "mini"), workers)
        dt = time.perf_counter() - t0
        n = sum(r["inserted"] for r in results)
    per = dt / n
    print(f"report-db: {n} images into {len(results)} databases in {dt:.2f} s = {per * 1e3:.3f} ms per image "
          f"({ANCHOR_S / per:.0f}x faster than the runbook's {ANCHOR_S} s)")
    return per


def bench_reports(n: int) -> float:
    import numpy as np

    from steps.elixer import plots
    from steps.elixer.detfile import DetectionsFile, detection_rows
    from steps.elixer.science.classify import classify
    from steps.elixer.simulate import simulate_detections

    with tempfile.TemporaryDirectory() as tmp:
        paths = simulate_detections(Path(tmp), n=n, seed=1)
        rows = detection_rows(paths["detections"])
        f = DetectionsFile(paths["detections"])
        times = []
        for r in rows:
            t0 = time.perf_counter()
            s = f.spectrum(r["detectid"])
            w, fl, e = s["wave1d"], s["spec1d"] / 2, s["spec1d_err"] / 2
            m = classify(w, fl, e, r)
            t1 = time.perf_counter()
            fig = plots.report_figure(r, w, fl, e, m, f.fiber_rows(r["detectid"]))
            plots.write_report(Path(tmp) / "r.png", Path(tmp) / "r.pdf", fig)
            plots.write_report(Path(tmp) / "r_mini.png", None, plots.mini_figure(r, w, fl, e, m))
            times.append((t1 - t0, time.perf_counter() - t0))
        f.close()
    cls, tot = np.median(np.array(times), axis=0)
    print(f"reports: {n} detections, median {cls:.3f} s classification, {tot:.3f} s per detection with PNG + PDF + mini")
    return tot


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=100_000)
    ap.add_argument("--size", type=int, default=4000, help="bytes per image")
    ap.add_argument("--reports", type=int, default=10)
    ap.add_argument("--workers", type=int, default=None)
    a = ap.parse_args()
    bench_db(a.images, a.size, a.workers)
    bench_reports(a.reports)
    return 0


if __name__ == "__main__":
    sys.exit(main())
