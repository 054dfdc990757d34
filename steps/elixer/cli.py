"""``astroflow elixer merge|merge-unique|recover|prep-recover|report-db|count``: runbook step 18.

    astroflow run elixer --detections FILE --out RUN [--detectids LIST] [--workers N] [--mini] [--nei]
                                                          # (or astroflow elixer run ...): 18.1-18.3
    astroflow elixer merge --run RUN                      # 18.3 (re)join the shard parts -> RUN/elixer_cat.h5
    astroflow elixer merge --out OUT.h5 A.h5 B.h5 ...     # join elixer_cat.h5 files (dispatch_*/...)
    astroflow elixer merge-unique OUT.h5,A.h5,B.h5        # 18.6 one row per detectid, the newest
    astroflow elixer count RUN [--json]                   # 18.4 expected vs present reports per type
    astroflow elixer prep-recover --out RUN [--yes]       # 18.4 clear failed / incomplete reports
    astroflow elixer recover --out RUN [--workers N]      # 18.4 rebuild only the missing reports
                                                          # (astroflow redo RUN classify --items ...)
    astroflow elixer report-db --reports DIR --out DIR    # 18.5 SQLite report databases

Exit codes: 0 done (counts match), 1 finished with missing reports or failed items, 2 usage error.
Heavy modules are imported inside the commands so that ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

KINDS = ("png", "pdf", "nei", "mini")


def _err(msg: str) -> int:
    print(f"astroflow elixer: {msg}", file=sys.stderr)
    return 2


def _print_counts(rows) -> None:
    print(f"{'type':<6}{'expected':>10}{'present':>10}{'missing':>10}")
    for r in rows:
        print(f"{r['type']:<6}{r['expected']:>10}{r['whole']:>10}{r['missing']:>10}")


def merge(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="astroflow elixer merge", description="Join catalogue parts into one elixer_cat.h5 (runbook 18.3).")
    p.add_argument("files", nargs="*", type=Path, help="elixer_cat.h5 files to join (with --out)")
    p.add_argument("--run", type=Path, help="run directory: join its shard parts into RUN/elixer_cat.h5")
    p.add_argument("--out", type=Path, help="output file when joining FILES")
    a = p.parse_args(argv)
    if a.run:
        from steps.elixer.merge import CATALOG, catalog_from_parts

        if not (a.run / "classify").is_dir():
            return _err(f"{a.run}: no classify step folder (not an ELiXer run directory)")
        counts = catalog_from_parts(a.run / "classify", a.run / CATALOG)
        print(json.dumps({"out": str(a.run / CATALOG), "rows": counts}))
        return 0
    if not a.files or not a.out:
        return _err("give --run RUN, or --out OUT.h5 and the files to join")
    from steps.elixer.catalog import merge_catalogs

    missing = [str(f) for f in a.files if not f.is_file()]
    if missing:
        return _err(f"no such file(s): {', '.join(missing)}")
    print(json.dumps({"out": str(a.out), "rows": merge_catalogs(a.out, a.files)}))
    return 0


def merge_unique(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="astroflow elixer merge-unique",
                                description="Join two merged catalogues keeping one row per detectid, the newest (runbook 18.6).")
    p.add_argument("files", nargs="+", help="OUT,FILE1,FILE2 (ELiXer's form) or FILE1 FILE2 with --out")
    p.add_argument("--out", type=Path)
    a = p.parse_args(argv)
    names = [x for f in a.files for x in f.split(",") if x]
    if a.out is None:
        if len(names) != 3:
            return _err("expected OUT,FILE1,FILE2")
        out, f1, f2 = names
    else:
        if len(names) != 2:
            return _err("expected FILE1 FILE2 with --out")
        out, (f1, f2) = a.out, names
    for f in (f1, f2):
        if not Path(f).is_file():
            return _err(f"{f}: no such file")
    if Path(out).exists():
        return _err(f"{out} exists; merge-unique writes a new file")
    from steps.elixer.catalog import merge_unique as do_merge

    print(json.dumps({"out": str(out), "rows": do_merge(out, f1, f2)}))
    return 0


def _load_run(run_dir: Path):
    from astroflow import config as run_config
    from steps.elixer.settings import ElixerSettings

    cfg = run_config.load(run_dir)
    if cfg.pipeline != "elixer":
        raise ValueError(f"{run_dir} is a {cfg.pipeline} run, not an ELiXer run")
    return cfg, ElixerSettings.model_validate(cfg.settings)


def count(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="astroflow elixer count", description="Expected vs present reports per type (runbook 18.4).")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    from steps.elixer.count import report_counts

    try:
        _cfg, s = _load_run(a.run_dir)
    except Exception as exc:
        return _err(str(exc))
    rows = report_counts(a.run_dir, s.report_types())
    if a.json:
        print(json.dumps(rows))
    else:
        _print_counts(rows)
    return 0 if all(r["missing"] == 0 for r in rows) else 1


def _failed_items(run_dir: Path) -> set[int]:
    from astroflow import rundir

    return {int(i) for i, o in rundir.item_outcomes(run_dir / "classify").items() if o == "failed"}


def prep_recover(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="astroflow elixer prep-recover",
                                description="Remove the reports of detections that failed or are incomplete, so recover rebuilds them.")
    p.add_argument("--out", "--run-dir", dest="out", type=Path, required=True)
    p.add_argument("--yes", action="store_true", help="delete (default: list only)")
    a = p.parse_args(argv)
    from steps.elixer.count import expected_ids
    from steps.elixer.reportfiles import is_whole, scan

    try:
        _cfg, s = _load_run(a.out)
    except Exception as exc:
        return _err(str(exc))
    found = scan(a.out / "reports")
    kinds = s.report_types()
    failed = _failed_items(a.out)
    doomed = []
    for did in expected_ids(a.out):
        files = [found[k][did] for k in kinds if did in found[k]]
        incomplete = len(files) < len(kinds) or not all(is_whole(f) for f in files)
        if (did in failed or incomplete) and files:
            doomed.extend(files)
    for f in doomed:
        print(f)
    if not a.yes:
        print(f"{len(doomed)} file(s) would be removed; rerun with --yes to remove them", file=sys.stderr)
        return 0
    for f in doomed:
        f.unlink(missing_ok=True)
    print(f"removed {len(doomed)} file(s); now run: astroflow elixer recover --out {a.out}", file=sys.stderr)
    return 0


def recover(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="astroflow elixer recover",
                                description="Rerun the detections whose reports are missing or failed; only those reports are built (runbook 18.4).")
    p.add_argument("--out", "--run-dir", dest="out", type=Path, required=True)
    p.add_argument("--workers", type=int)
    p.add_argument("--check", action="store_true", help="only print the counts")
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)
    from astroflow import redo, rundir
    from astroflow.cli import _run_and_report
    from steps.elixer.count import expected_ids
    from steps.elixer.pipeline import ELIXER
    from steps.elixer.reportfiles import counts as report_counts
    from steps.elixer.reportfiles import is_whole, scan

    try:
        cfg, s = _load_run(a.out)
    except Exception as exc:
        return _err(str(exc))
    ids = expected_ids(a.out)
    if a.check:
        rows = report_counts(ids, a.out / "reports", s.report_types())
        _print_counts(rows)
        return 0 if all(r["missing"] == 0 for r in rows) else 1
    found = scan(a.out / "reports")
    todo = {d for d in ids for k in s.report_types() if d not in found[k] or not is_whole(found[k][d])}
    todo |= _failed_items(a.out)
    committed = set(rundir.Ledger(a.out / "classify").latest)
    again = sorted(str(d) for d in todo if str(d) in committed)  # the rest are in shards never committed
    if again:
        redo.request(a.out, "classify", again)
    print(f"recover: {len(todo)} detection(s) with missing or failed reports", file=sys.stderr)
    if a.workers:
        cfg.run.workers = a.workers
    rc = _run_and_report(ELIXER, cfg, a.out, progress=not a.no_progress)
    rows = report_counts(expected_ids(a.out), a.out / "reports", s.report_types())
    _print_counts(rows)
    return rc if rc else (0 if all(r["missing"] == 0 for r in rows) else 1)


def report_db(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="astroflow elixer report-db",
                                description="Report images of a folder tree -> elixer_reports_{prefix}[_nei|_mini].db (runbook 18.5).")
    p.add_argument("--reports", type=Path, required=True, help="folder tree of {detectid}[_nei|_mini].png / .pdf")
    p.add_argument("--out", type=Path, required=True, help="folder of the databases (created or updated)")
    p.add_argument("--types", default="png,nei,mini", help="report types: png,nei,mini[,pdf]")
    p.add_argument("--workers", type=int, help="databases written at once (default: the core count)")
    p.add_argument("--gzip-level", type=int, default=1, help="gzip level of the stored images (1 fastest)")
    p.add_argument("--no-gzip", action="store_true", help="store raw bytes (what hetdex_api's reader returns as is)")
    a = p.parse_args(argv)
    if not a.reports.is_dir():
        return _err(f"{a.reports}: no such folder")
    kinds = [k for k in a.types.split(",") if k]
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        return _err(f"unknown report type(s) {bad}; choose from {', '.join(KINDS)}")
    import time

    from steps.elixer.report_db import build_report_dbs

    t0 = time.perf_counter()
    results = build_report_dbs(a.reports, a.out, kinds, a.workers, a.gzip_level, not a.no_gzip)
    n = sum(r["inserted"] for r in results)
    dt = time.perf_counter() - t0
    for r in results:
        print(f"{Path(r['db']).name}: {r['inserted']} image(s)")
    print(f"{n} image(s) into {len(results)} database(s) in {dt:.2f} s ({dt / max(n, 1) * 1e3:.3f} ms per image)")
    return 0
