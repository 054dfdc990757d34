"""TEC, all 21 steps on a full-size simulated 2-min sector (default 1,500 TCEs): wall time per step
and in total, optionally beside the same run of an older version of the TEC code.

Per step it prints the wall time (first shard start to last shard end; steps overlap when the
DAG lets them), the summed shard time, the shards and the items per second of shard time; then
the whole run's wall time and the Tier counts.  It takes many minutes (a benchmark, not a test).

``--baseline REV`` (a git revision, e.g. HEAD) also runs the TEC steps of that revision on the
same simulated sector, in the same session, one run after the other: the revision's ``steps/``
tree is exported to a temporary folder (``git archive``, the working tree is not touched) and
run in a subprocess that puts it first on ``PYTHONPATH`` (the core library and the native
kernels are this checkout's).  The table then shows the new and old times side by side, and the
Tier of every TCE is compared.

    PYTHONPATH=shared:. .venv/bin/python benchmarks/bench_tec_full.py [--n-tces 1500] [--workers N]
        [--baseline HEAD] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Issue 16's figures for --n-tces 1500 on 2 cores, quiet machine, before the trapezoid fit was
# compiled and the modshift figures made cheap: printed beside a 1500-TCE run.
ISSUE_1500 = {"total": 689.0, "modshift_med + modshift_alt": 474.0}


def step_times(run_dir: Path, step: str) -> dict | None:
    from astroflow import rundir

    ms = [m for m in rundir.manifests(run_dir / step)]
    if not ms:
        return None
    start = min(m["started"] for m in ms)
    end = max(m["started"] + m["wall_s"] for m in ms)
    items = sum(len(m["ok"]) + len(m["failed"]) + len(m["skipped"]) for m in ms)
    return {"wall": end - start, "busy": sum(m["wall_s"] for m in ms), "shards": len(ms), "items": items,
            "failed": sum(len(m["failed"]) for m in ms)}


def run_tec(settings: dict, run_dir: Path, workers: int) -> dict:
    """Run every TEC step; the wall time, per-step figures, Tiers and the code's location."""
    import pyarrow.parquet as pq

    from astroflow import config, runner
    from steps.tec.pipeline import TEC

    cfg = config.resolve(TEC, settings=settings, runner={"workers": workers})
    t0 = time.perf_counter()
    res = runner.run(TEC, cfg, run_dir, progress=False)
    total = time.perf_counter() - t0
    steps = {name: step_times(run_dir, name) for name in TEC.order()}
    states = {n: s.state for n, s in res.steps.items()}
    tiers = {}
    if (run_dir / "ranking.parquet").is_file():
        tiers = {f"{r['tic']}:{r['planet_number']}": r["tier"] for r in pq.read_table(run_dir / "ranking.parquet").to_pylist()}
    import steps.tec as code
    return {"total": total, "ok": res.ok, "steps": steps, "states": states, "tiers": tiers,
            "order": TEC.order(), "code": str(Path(code.__file__).parent),
            "errors": {n: s.message for n, s in res.steps.items() if s.state != "done"}}


def baseline_run(rev: str, settings: dict, run_dir: Path, workers: int, tmp: Path) -> dict:
    """The TEC steps of git revision ``rev`` on the same settings, in a subprocess."""
    tree = tmp / "baseline-code"
    tree.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "steps"], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tree), str(REPO / "shared")]))
    out = tmp / "baseline.json"
    code = ("import json, sys; from pathlib import Path; sys.path.insert(0, %r); import bench_tec_full as b; "
            "r = b.run_tec(json.loads(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])); "
            "Path(sys.argv[4]).write_text(json.dumps(r))" % str(Path(__file__).parent))
    subprocess.run([sys.executable, "-c", code, json.dumps(settings), str(run_dir), str(workers), str(out)],
                   env=env, check=True, cwd=str(tmp))
    result = json.loads(out.read_text())
    if Path(result["code"]).resolve() != (tree / "steps" / "tec").resolve():
        raise RuntimeError(f"the baseline ran {result['code']}, not the exported {rev} tree")
    return result


def tier_counts(tiers: dict) -> str:
    counts = {t: sum(1 for v in tiers.values() if v == t) for t in (1, 2, 3)}
    unranked = sum(1 for v in tiers.values() if v is None)
    return f"Tier 1 {counts[1]}, Tier 2 {counts[2]}, Tier 3 {counts[3]}, not ranked {unranked}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-tces", type=int, default=1500)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--baseline", metavar="REV", help="also run the TEC code of this git revision (e.g. HEAD)")
    ap.add_argument("--keep", type=Path, help="simulate and run in this folder and keep it (default: a temporary one)")
    args = ap.parse_args()
    from steps.tec.pipeline import TecSimulation, simulate

    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        t0 = time.perf_counter()
        settings = simulate(root / "data", TecSimulation(n_tces=args.n_tces, seed=args.seed, family="spoc"))
        print(f"simulated {args.n_tces} TCEs (2-min, SPOC names) in {time.perf_counter() - t0:.1f} s", flush=True)
        new = run_tec(settings, root / "run", args.workers)
        print(f"this checkout: {new['total']:.1f} s", flush=True)
        old = None
        if args.baseline:
            old = baseline_run(args.baseline, settings, root / f"run-{args.baseline}", args.workers, Path(tmp))
            print(f"baseline {args.baseline}: {old['total']:.1f} s", flush=True)

        head = f"{'step':<26}{'wall s':>9}{'shard s':>10}{'shards':>8}{'items':>7}{'failed':>7}{'items/shard-s':>15}"
        if old:
            head += f"{'old wall s':>12}{'old shard s':>13}{'old failed':>11}"
        print("\n" + head)
        for name in new["order"]:
            t = new["steps"].get(name)
            if t is None:
                state = new["states"].get(name)
                print(f"{name:<26}{'(not run: ' + state + ')' if state else '(disabled)':>9}")
                continue
            rate = t["items"] / t["busy"] if t["busy"] > 0 else float("inf")
            line = (f"{name:<26}{t['wall']:>9.1f}{t['busy']:>10.1f}{t['shards']:>8d}{t['items']:>7d}{t['failed']:>7d}"
                    f"{rate:>15.2f}")
            o = (old or {}).get("steps", {}).get(name)
            if o:
                line += f"{o['wall']:>12.1f}{o['busy']:>13.1f}{o['failed']:>11d}"
            print(line)
        print(f"\nall 21 steps: {new['total']:.1f} s wall with {args.workers} workers; run ok: {new['ok']}; "
              f"{tier_counts(new['tiers'])}")
        if not new["ok"]:
            print(new["errors"])
        if args.n_tces == 1500:
            ms = sum(new["steps"][n]["wall"] for n in ("modshift_med", "modshift_alt") if new["steps"].get(n))
            print(f"issue 16 (1500 TCEs, quiet machine): {ISSUE_1500['total']:.0f} s wall, modshift_med + "
                  f"modshift_alt {ISSUE_1500['modshift_med + modshift_alt']:.0f} s; now {new['total']:.1f} s, {ms:.1f} s")
        if old:
            print(f"baseline {args.baseline}: {old['total']:.1f} s wall; run ok: {old['ok']}; {tier_counts(old['tiers'])}")
            diff = sorted(k for k in new["tiers"] if new["tiers"][k] != old["tiers"].get(k))
            changes = ", ".join(f"{k} {old['tiers'].get(k)}->{new['tiers'][k]}" for k in diff[:20])
            print(f"speed-up {old['total'] / new['total']:.2f}x; TCEs whose Tier differs: {len(diff)}"
                  + (f" ({changes})" if diff else ""))


if __name__ == "__main__":
    main()
