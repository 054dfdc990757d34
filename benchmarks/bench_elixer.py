"""ELiXer benchmarks (runbook 18.5, 18.2 and 18.3), the old code and the new side by side.

1. Report databases (``--images``, default 100,000, 0 to skip): report images of ``--size``
   bytes in a folder tree, into SQLite databases with ``astroflow elixer report-db`` semantics;
   seconds per image (runbook anchor 0.04-0.05 s per image).
2. Report drawing (``--reports``, default 20): seconds per detection for PNG + PDF + mini on
   simulated detections, classification timed apart.
3. Merge (``--merge-n``, default 100,000, 0 to skip): a classify dataset of that many
   detections (synthetic rows in the step's schema, written through the core's ledger), merged
   into ``elixer_cat.h5`` by the merge step; and the 18.3 ``merge`` of four dispatch catalogues
   of a quarter each.  Peak memory (max RSS) of each merge, and its seconds.

"Old" is the code at ``--baseline`` (a git revision, default the commit before the streaming
merge and the reused report figure), exported with ``git archive`` and run in subprocesses
against the same inputs; "new" is this working tree.  ``--baseline none`` runs only the new.

    PYTHONPATH=shared:. .venv/bin/python benchmarks/bench_elixer.py [--images N] [--reports N] [--merge-n N]
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

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
TREE = Path(os.environ.get("ELIXER_TREE", REPO))  # the code under test (a worker may run an old export)
sys.path[:0] = [str(HERE), str(TREE / "shared"), str(TREE)]

ANCHOR_S = 0.045
BASELINE = "b7555de"  # ELiXer before issue 16 (per-call figures, whole-catalogue merge)
PIPELINE = "elxbench=bench_elixer:BENCH"


# --- 1. report databases -----------------------------------------------------------------------
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


# --- 2. report drawing (worker) ----------------------------------------------------------------
def worker_reports(n: int, sim_dir: str) -> dict:
    import numpy as np

    from steps.elixer import plots
    from steps.elixer.detfile import DetectionsFile, detection_rows
    from steps.elixer.science.classify import classify

    det_path = Path(sim_dir) / "detect_sim.h5"
    rows = detection_rows(det_path)[:n]
    f = DetectionsFile(det_path)
    painter = plots.ReportPainter() if hasattr(plots, "ReportPainter") else None  # the new API
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        for k, r in enumerate(rows):
            s = f.spectrum(r["detectid"])
            w, fl, e = s["wave1d"], s["spec1d"] / 2, s["spec1d_err"] / 2
            t0 = time.perf_counter()
            m = classify(w, fl, e, r)
            t1, c1 = time.perf_counter(), time.process_time()
            fibers = f.fiber_rows(r["detectid"])
            if painter is not None:
                painter.report(out / f"{k}.png", out / f"{k}.pdf", r, w, fl, e, m, fibers)
                painter.mini(out / f"{k}_mini.png", r, w, fl, e, m)
            else:
                fig = plots.report_figure(r, w, fl, e, m, fibers)
                plots.write_report(out / f"{k}.png", out / f"{k}.pdf", fig)
                plots.write_report(out / f"{k}_mini.png", None, plots.mini_figure(r, w, fl, e, m))
            t2, c2 = time.perf_counter(), time.process_time()
            if k:  # the first call pays the imports and the figure's construction
                times.append((t1 - t0, t2 - t1, c2 - c1))
    f.close()
    cls, draw, cpu = np.median(np.array(times), axis=0)
    mean_draw = float(np.mean(np.array(times)[:, 1]))
    return {"n": len(times), "classify_s": float(cls), "draw_s": float(draw), "draw_mean_s": mean_draw,
            "draw_cpu_s": float(cpu)}


# --- 3. merge -----------------------------------------------------------------------------------
from astroflow.pipeline import Pipeline, Settings  # noqa: E402
from astroflow.step import FanOut  # noqa: E402


class BenchSettings(Settings):
    n: int = 100_000


def _items(ctx):
    return [{"detectid": 3000000001 + i} for i in range(ctx.settings.n)]


def _setup(ctx, items):
    import numpy as np

    from steps.elixer.catalog import DETECTION_COLUMNS

    rng = np.random.default_rng(ctx.shard)
    return {"rng": rng, "cols": DETECTION_COLUMNS, "wave": (3470.0 + 2.0 * np.arange(1036)).astype("f4")}


def _synthetic_row(ctx, item):
    """One classify row in the step's schema: the catalogue columns, two lines, the spectrum."""
    st = ctx.state
    rng = st["rng"]
    did = item["detectid"]
    row = {k: None for k in st["cols"]}
    row.update(detectid=did, elixer_version="astroflow-0.8.1", elixer_datetime="2026-11-23 10:00:00",
               shotid=20230117015, wavelength_obs=float(rng.uniform(3500, 5500)), sn=float(rng.uniform(4.5, 30)),
               flux_line=float(rng.uniform(5, 50)), plya_classification=float(rng.random()), z_best=2.5,
               classification_labels="LyA", multiline_name="", flags=0)
    lines = [{"detectid": did, "wavelength": row["wavelength_obs"] * (1 + 0.3 * k), "sn": 5.0, "flux_line": 3.0,
              "sol_num": k, "used": k < 2} for k in range(3)]
    row["spectra_lines"] = json.dumps(lines)
    row["cal_wavelength"] = st["wave"]
    row["cal_flux"] = rng.normal(0, 0.3, 1036).astype("f4")
    row["cal_flux_err"] = (0.3 + 0.01 * rng.random(1036)).astype("f4")
    row["num_fibers"] = 15
    row["reports_built"] = ["png"]
    row["votes"] = json.dumps([{"name": "plae_poii", "vote": 0.7, "weight": 1.0, "value": 3.0}])
    return row


def _bench_pipeline():
    from steps.elixer.classify import SCHEMA

    return Pipeline("elxbench", settings=BenchSettings, steps=[
        FanOut("classify", items=_items, setup=_setup, process=_synthetic_row, key=("detectid",), schema=SCHEMA,
               shard_size=200, doc="synthetic classify rows"),
    ])


BENCH = _bench_pipeline() if os.environ.get("ELIXER_TREE") is None else None


def make_classify_run(run_dir: Path, n: int, workers: int) -> float:
    env = {**os.environ, "ASTROFLOW_PIPELINES": PIPELINE,
           "PYTHONPATH": os.pathsep.join([str(HERE), str(REPO / "shared"), str(REPO), os.environ.get("PYTHONPATH", "")])}
    env.pop("ELIXER_TREE", None)
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "astroflow.cli", "run", "elxbench", "--out", str(run_dir), "--n", str(n),
                           "--workers", str(workers), "--no-progress"], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"making the classify dataset failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return time.perf_counter() - t0


def _peak_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def worker_merge(run_dir: str, out: str) -> dict:
    from steps.elixer.merge import catalog_from_parts  # imports first: the floor of the peak

    import h5py  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    floor = _peak_mb()
    t0 = time.perf_counter()
    counts = catalog_from_parts(Path(run_dir) / "classify", Path(out))
    return {"s": time.perf_counter() - t0, "peak_mb": _peak_mb(), "floor_mb": floor, "rows": counts}


def worker_split(cat: str, out_dir: str, parts: int) -> dict:
    """Cut a catalogue into ``parts`` dispatch catalogues (for the 18.3 merge of files)."""
    import h5py

    from steps.elixer.catalog import CatalogWriter

    paths = []
    with h5py.File(cat, "r") as f:
        ids = f["Detections"]["detectid"]
        edges = [int(x) for x in __import__("numpy").linspace(0, len(ids), parts + 1)]
        for k in range(parts):
            lo, hi = edges[k], edges[k + 1]
            p = Path(out_dir) / f"dispatch_{k}.h5"
            keep = set(int(d) for d in ids[lo:hi])
            with CatalogWriter(p) as w:
                for name in ("Detections", "CalibratedSpectra"):
                    for a in range(lo, hi, 5000):
                        w.append(name, f[name][a:min(a + 5000, hi)])
                lines = f["SpectraLines"]
                for a in range(0, lines.shape[0], 20000):
                    chunk = lines[a:a + 20000]
                    w.append("SpectraLines", chunk[[int(d) in keep for d in chunk["detectid"]]])
            paths.append(str(p))
    return {"files": paths}


def worker_merge_files(out: str, files: list[str]) -> dict:
    from steps.elixer.catalog import merge_catalogs

    import h5py  # noqa: F401

    floor = _peak_mb()
    t0 = time.perf_counter()
    rows = merge_catalogs(out, files)
    return {"s": time.perf_counter() - t0, "peak_mb": _peak_mb(), "floor_mb": floor, "rows": rows}


# --- driver -------------------------------------------------------------------------------------
def _worker(tree: Path, *args) -> dict:
    # one numerical thread per process, as the runner's workers have
    env = {**os.environ, "ELIXER_TREE": str(tree), "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", *map(str, args)], env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"worker {args[0]} ({tree}) failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def export_tree(rev: str, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "steps", "shared"], capture_output=True)
    if archive.returncode != 0:
        sys.exit(f"git archive {rev} failed: {archive.stderr.decode()[-500:]}")
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return dest


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=100_000, help="report-db images (0: skip)")
    ap.add_argument("--size", type=int, default=4000, help="bytes per image")
    ap.add_argument("--reports", type=int, default=20, help="detections drawn (0: skip)")
    ap.add_argument("--merge-n", type=int, default=100_000, help="detections merged (0: skip)")
    ap.add_argument("--baseline", default=BASELINE, help="git revision of the old code ('none': only the new)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3, help="report-drawing runs per code version (best kept)")
    ap.add_argument("--dir", type=Path, help="work folder (default: a temporary one, removed)")
    ap.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        kind, *rest = a.worker
        if kind == "reports":
            res = worker_reports(int(rest[0]), rest[1])
        elif kind == "merge":
            res = worker_merge(rest[0], rest[1])
        elif kind == "split":
            res = worker_split(rest[0], rest[1], int(rest[2]))
        else:
            res = worker_merge_files(rest[0], rest[1:])
        print(json.dumps(res))
        return 0

    tmp = tempfile.TemporaryDirectory(prefix="bench-elixer-") if a.dir is None else None
    work = Path(tmp.name) if tmp else a.dir
    work.mkdir(parents=True, exist_ok=True)
    trees = {}
    if a.baseline != "none":
        trees["old"] = export_tree(a.baseline, work / "old")
    trees["new"] = REPO
    label = {"old": f"old ({a.baseline})", "new": "new (working tree)"}

    if a.images:
        bench_db(a.images, a.size, a.workers)

    if a.reports:
        from steps.elixer.simulate import simulate_detections

        sim = work / "sim"
        simulate_detections(sim, n=a.reports + 1, seed=1)
        res = {k: [] for k in trees}
        for _ in range(a.repeat):  # old and new in turn, so that both see the same machine load
            for k, t in trees.items():
                res[k].append(_worker(t, "reports", a.reports + 1, sim))
        res = {k: min(v, key=lambda r: r["draw_s"]) for k, v in res.items()}
        print(f"\nreport drawing, PNG + PDF + mini, median of {a.reports} detections (the first one not counted), "
              f"best of {a.repeat} runs:")
        for k, r in res.items():
            print(f"  {label[k]:<24s} {r['draw_s']:7.3f} s per detection wall, {r['draw_cpu_s']:.3f} s CPU "
                  f"(mean wall {r['draw_mean_s']:.3f}; classification apart: {r['classify_s']:.3f} s)")
        if "old" in res:
            print(f"  speed-up {res['old']['draw_s'] / res['new']['draw_s']:.1f}x wall, "
                  f"{res['old']['draw_cpu_s'] / res['new']['draw_cpu_s']:.1f}x CPU (goal: under 0.25 s per detection)")

    if a.merge_n:
        run_dir = work / "run"
        t_make = make_classify_run(run_dir, a.merge_n, a.workers)
        size = sum(p.stat().st_size for p in (run_dir / "classify").glob("*.parquet")) / 2**20
        print(f"\nmerge: {a.merge_n:,} detections in RUN/classify ({size:,.0f} MiB of parts, written in {t_make:.0f} s)")
        res = {}
        for k, t in trees.items():  # old first
            res[k] = _worker(t, "merge", run_dir, work / f"cat_{k}.h5")
        cat_mb = (work / "cat_new.h5").stat().st_size / 2**20
        print(f"  merge step, parts -> elixer_cat.h5 ({cat_mb:,.0f} MiB), peak memory (max RSS; after imports):")
        for k, r in res.items():
            print(f"  {label[k]:<24s} {r['peak_mb']:7.0f} MB peak ({r['peak_mb'] - r['floor_mb']:6.0f} MB above the "
                  f"{r['floor_mb']:.0f} MB of imports), {r['s']:6.1f} s, {r['rows']['Detections']:,} rows")
        split = _worker(REPO, "split", work / "cat_new.h5", work, 4)
        files = {}
        for k, t in trees.items():
            files[k] = _worker(t, "files", work / f"merged_{k}.h5", *split["files"])
        print("  18.3 merge of 4 dispatch catalogues of a quarter each:")
        for k, r in files.items():
            print(f"  {label[k]:<24s} {r['peak_mb']:7.0f} MB peak ({r['peak_mb'] - r['floor_mb']:6.0f} MB above the "
                  f"{r['floor_mb']:.0f} MB of imports), {r['s']:6.1f} s, {r['rows']['Detections']:,} rows")
        print("  goal: under 300 MB at 100,000 detections")
    if tmp:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
