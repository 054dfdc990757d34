"""Benchmark of the native model-shift test (TEC step 13, modshift_test.py calling modshift).

Prints:
  1. the shift scan at 20,000 points: FFT correlation (ours) vs the original's
     O(n^2) loop (the same C++ code, ``direct_scan``), and the whole test with
     either scan; acceptance: the FFT scan at least 100x faster;
  2. the whole process ``python -m steps.tec.modshift_cli FILE --json`` on a
     100,000-point file;
  3. with ``--original BIN`` (a build of J. Coughlin's modshift.cpp, e.g.
     ``g++ -std=c++11 -O3 -include cmath -o /tmp/modshift modshift.cpp`` from a
     fetched copy; never commit it) or ``--original-src FILE.cpp`` (built here
     into a temporary folder): the original's time on the same 100,000-point
     file and the speed ratio (acceptance 50x, goal 200x), and the outputs of
     both on a planet, an EB with a secondary at phase 0.5 and an odd/even 2:1
     eclipse (sigma_pri/sec/ter/pos, FA1, FA2, Fred within 5 %, or 0.3
     absolute below 3).

Run from the repository root:
    PYTHONPATH=shared:. .venv/bin/python benchmarks/bench_modshift.py [--original /tmp/orig/modshift_tec]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "tec"))
import modshift_reference as ref  # noqa: E402

from astroflow import _modshift  # noqa: E402

ORIGINAL_ORDER = ("sigma_pri", "sigma_sec", "sigma_ter", "sigma_pos", "sigma_oe", "dmm", "shape", "tat", "fa1",
                  "fa2", "fred", "phase_pri", "phase_sec", "phase_ter", "phase_pos", "sec_depth", "sec_depth_err")
COMPARED = ("sigma_pri", "sigma_sec", "sigma_ter", "sigma_pos", "fa1", "fa2", "fred")


def best_of(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times), float(np.median(times))


def child_cpu(fn):
    """Runs fn (which starts subprocesses); returns (wall seconds, CPU seconds of its children)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    fn()
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def write_tec_file(path, t, f, m):
    """The input file as TEC's modshift_test.py writes it ('{:f} {:f} {:f}')."""
    np.savetxt(path, np.c_[t, f, m], fmt="%f")
    return path


def run_original(binary, path, period, epoch, workdir):
    """Runs the original (it writes scratch files into its working directory); returns (seconds, outputs)."""
    t0 = time.perf_counter()
    proc = subprocess.run([str(binary), str(path), "bench", "obj", f"{period:f}", f"{epoch:f}", "0"],
                          capture_output=True, text=True, cwd=workdir)
    elapsed = time.perf_counter() - t0
    fields = proc.stdout.split()
    if proc.returncode != 0 or len(fields) < 18:
        raise RuntimeError(f"original failed (rc {proc.returncode}): {proc.stderr[-500:]}")
    return elapsed, dict(zip(ORIGINAL_ORDER, map(float, fields[1:18])))


def agree(a, b):
    if abs(b) < 3 and abs(a) < 3:
        return abs(a - b) <= 0.3
    return abs(a - b) <= 0.05 * abs(b)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--original", type=Path, help="binary of the original modshift program")
    p.add_argument("--original-src", type=Path, help="modshift.cpp of the original, built into a temporary folder")
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args(argv)

    print(f"# machine: {os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f}")
    # 1. shift scan and whole test at 20,000 points
    t, f, m, tr = ref.synthetic_light_curve("planet", n=20000, seed=1)
    order = np.argsort(((t - tr["epoch"]) / tr["period"] + 0.25) % 1.0, kind="stable")
    fs, ms = f[order], m[order]
    inside = np.flatnonzero(ms != 0)
    start, end = int(inside[0]) - 1, int(inside[-1]) + 2
    fft_s, _ = best_of(lambda: _modshift.shift_sums(fs, ms, 0.0, start, end, direct=False), args.repeat)
    dir_s, _ = best_of(lambda: _modshift.shift_sums(fs, ms, 0.0, start, end, direct=True), max(2, args.repeat // 2))
    print(f"shift scan, 20000 points: FFT {fft_s * 1e3:.2f} ms, O(n^2) {dir_s * 1e3:.1f} ms, "
          f"ratio {dir_s / fft_s:.0f}x (acceptance >= 100x)")
    run_fft, _ = best_of(lambda: _modshift.run(t, f, m, tr["period"], tr["epoch"]), args.repeat)
    run_par, _ = best_of(lambda: _modshift.run(t, f, m, tr["period"], tr["epoch"], parallel=True), args.repeat)
    run_dir, _ = best_of(lambda: _modshift.run(t, f, m, tr["period"], tr["epoch"], direct_scan=True), 2)
    ref_s, _ = best_of(lambda: ref.modshift(t, f, m, tr["period"], tr["epoch"]), 1)
    print(f"whole test, 20000 points: native {run_fft * 1e3:.1f} ms (sub-passes in threads {run_par * 1e3:.1f} ms), "
          f"native with O(n^2) scan {run_dir:.2f} s ({run_dir / run_fft:.0f}x), numpy reference {ref_s:.2f} s")

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        # 2. whole process on a 100,000-point file
        t, f, m, tr = ref.synthetic_light_curve("planet", n=100_000, seed=9)
        big = write_tec_file(tmp / "lc100k.txt", t, f, m)
        cmd = [sys.executable, "-m", "steps.tec.modshift_cli", str(big), "--period", "3", "--epoch",
               f"{tr['epoch']:f}", "--json"]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "shared"), str(REPO)]))
        runs = [child_cpu(lambda: subprocess.run(cmd, check=True, capture_output=True, env=env, cwd=REPO))
                for _ in range(args.repeat)]
        cli_best, cli_med = min(w for w, _ in runs), float(np.median([w for w, _ in runs]))
        cli_cpu = min(c for _, c in runs)
        print(f"whole process, 100000 points: {cli_best:.3f} s best, {cli_med:.3f} s median wall, "
              f"{cli_cpu:.3f} s CPU ({' '.join(cmd[1:3])} FILE ...)")
        for parallel in (False, True):
            best, _ = best_of(lambda: _modshift.run_file(str(big), 3.0, tr["epoch"], parallel=parallel), args.repeat)
            print(f"  in-process run_file (read + test), parallel={parallel}: {best * 1e3:.0f} ms")
        bare, _ = best_of(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True), args.repeat)
        print(f"  bare interpreter start: {bare * 1e3:.0f} ms")

        # 3. the original program
        binary = args.original
        if binary is None and args.original_src is not None:
            binary = tmp / "modshift_original"
            subprocess.run(["g++", "-std=c++11", "-O3", "-w", "-include", "cmath", "-o", str(binary),
                            str(args.original_src)], check=True)
        if binary is None:
            print("original: not given (--original BIN or --original-src FILE.cpp); comparison skipped")
            return 0
        work = tmp / "work"
        work.mkdir()
        orig_s, orig_cpu = child_cpu(lambda: run_original(binary, big, 3.0, tr["epoch"], work))
        again = [child_cpu(lambda: subprocess.run(cmd, check=True, capture_output=True, env=env, cwd=REPO))
                 for _ in range(args.repeat)]  # ours again, right after, under the same load
        ours_wall, ours_cpu = min(w for w, _ in again), min(c for _, c in again)
        print(f"original, 100000 points: {orig_s:.2f} s wall, {orig_cpu:.2f} s CPU; ours {ours_wall:.3f} s wall, "
              f"{ours_cpu:.3f} s CPU: ratio {orig_s / ours_wall:.0f}x wall, {orig_cpu / ours_cpu:.0f}x CPU "
              f"(acceptance 50x, goal 200x)")

        ok = True
        for kind, seed in (("planet", 1), ("eb", 2), ("oe", 3)):
            t, f, m, tr = ref.synthetic_light_curve(kind, n=20000, seed=seed)
            path = write_tec_file(tmp / f"{kind}.txt", t, f, m)
            data = np.loadtxt(path)
            o_s, orig = run_original(binary, path, tr["period"], tr["epoch"], work)
            n_s, _ = best_of(lambda: _modshift.run(data[:, 0], data[:, 1], data[:, 2], tr["period"], tr["epoch"]), 3)
            ours = _modshift.run(data[:, 0], data[:, 1], data[:, 2], tr["period"], tr["epoch"])
            print(f"\n{kind} (20000 points): original {o_s:.2f} s, native {n_s * 1e3:.1f} ms")
            print(f"  {'output':<14s} {'original':>12s} {'astroflow':>12s}")
            for k in ORIGINAL_ORDER:
                mark = ""
                if k in COMPARED:
                    good = agree(ours[k], orig[k])
                    ok &= good
                    mark = "ok" if good else "DIFFERS"
                print(f"  {k:<14s} {orig[k]:>12.6g} {ours[k]:>12.6g}  {mark}")
        print("\ncomparison with the original:", "PASS" if ok else "FAIL")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
