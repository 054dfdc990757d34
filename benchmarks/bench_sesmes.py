"""Seconds per TCE of the ses_mes_stats science on one core.

Runs ~50 synthetic single-sector TCEs (27 d of 10-minute bins, an orbit gap,
scattered invalid bins, trends, white + red noise, a range of periods,
durations and depths) through ``steps.tec.science.sesmes.ses_mes_stats`` and
prints the mean wall time per TCE. TEC's original takes 2-3 s per TCE; the
goal is at most 0.3 s.

    cd /work/main && OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \\
        PYTHONPATH=shared:. .venv/bin/python benchmarks/bench_sesmes.py
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from scipy.signal import lfilter  # noqa: E402

from steps.tec.science.sesmes import ses_mes_stats  # noqa: E402

CAD_PER_HR = 6


def synthetic_tce(rng: np.random.Generator) -> tuple[tuple, dict]:
    n = int(27.0 * 24 * CAD_PER_HR)
    t = 2000.0 + np.arange(n) / (24.0 * CAD_PER_HR)
    valid = np.ones(n, dtype=bool)
    valid[n // 2 - rng.integers(60, 200):n // 2 + rng.integers(10, 60)] = False
    valid[rng.choice(n, rng.integers(10, 80), replace=False)] = False
    period = float(rng.uniform(0.5, 12.0))
    dur_h = float(rng.uniform(1.0, min(8.0, 0.15 * period * 24)))
    depth = float(rng.uniform(300, 5000)) * 1e-6
    sigma = float(rng.uniform(200, 2000)) * 1e-6
    epoch = 2000.0 + float(rng.uniform(0, period))
    red = lfilter([1.0], [1.0, -0.9], rng.normal(0, 0.3 * sigma, n))
    flux = (1.0 + rng.uniform(0, 0.01) * np.sin(2 * np.pi * t / rng.uniform(2, 15))
            + rng.normal(0, sigma, n) + 0.3 * red)
    ph = (t - epoch) / period
    flux[np.abs(ph - np.round(ph)) * period * 24 < dur_h / 2] -= depth
    kw = dict(period=period, epoch=epoch, duration_h=dur_h, depth_ppm=depth * 1e6,
              pulse_dur_h=float(np.clip(dur_h * rng.uniform(0.8, 1.3), 1.0, 15.0)),
              cad_per_hr=CAD_PER_HR)
    return (t, flux * 5e4, valid), kw


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=50, help="number of synthetic TCEs")
    ap.add_argument("--seed", type=int, default=2024)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    cases = [synthetic_tce(rng) for _ in range(args.n)]
    ses_mes_stats(*cases[0][0], rng=np.random.default_rng(0), **cases[0][1])  # warm-up
    times, n_valid = [], 0
    for i, (arrays, kw) in enumerate(cases):
        t0 = time.perf_counter()
        out = ses_mes_stats(*arrays, rng=np.random.default_rng(i), **kw)
        times.append(time.perf_counter() - t0)
        n_valid += out["valid_alt_det"]
    times = np.array(times)
    print(f"ses_mes_stats: {times.mean():.3f} s per TCE (median {np.median(times):.3f}, "
          f"max {times.max():.3f}) over {len(times)} TCEs, {n_valid} passed the gate; "
          f"goal <= 0.3 s, original 2-3 s")


if __name__ == "__main__":
    main()
