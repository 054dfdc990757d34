"""Runbook step 18.5, ``make_report_db.py`` / ``image_db_create.sh`` / ``image_db_update.sh``.

Report images of any folder tree (``{detectid}.png``, ``_nei.png``, ``_mini.png``, ``.pdf``) go into
SQLite files ``elixer_reports_{detectid // 100000}[_nei|_mini|_pdf].db``, table
``report(detectid BIGINT PRIMARY KEY, image BLOB)``, each image gzip-compressed.  One worker per
(type, prefix) database, all at once (the ``&`` of the shell scripts), so no two writers share a
file; each worker inserts in batches of ``batch`` rows, one transaction per batch, ``INSERT OR
REPLACE`` (a rerun or an update replaces, never duplicates).  Creating and updating are the same
command.
"""

from __future__ import annotations

import gzip
import os
import sqlite3
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from steps.elixer.reportfiles import scan

DB_SUFFIX = {"png": "", "nei": "_nei", "mini": "_mini", "pdf": "_pdf"}
SCHEMA = "CREATE TABLE IF NOT EXISTS report (detectid BIGINT PRIMARY KEY, image BLOB NOT NULL)"


def db_name(detectid: int, kind: str) -> str:
    return f"elixer_reports_{detectid // 100000}{DB_SUFFIX[kind]}.db"


def insert_group(db_path: str, files: list[tuple[int, str]], batch: int = 2000, level: int = 1,
                 compress: bool = True) -> dict:
    """Insert (detectid, file) pairs into one database; returns counts and seconds."""
    t0 = time.perf_counter()
    conn = sqlite3.connect(db_path, timeout=60)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(SCHEMA)
        n = 0
        for i in range(0, len(files), batch):
            rows = []
            for did, path in files[i:i + batch]:
                with open(path, "rb") as fh:
                    data = fh.read()
                rows.append((did, gzip.compress(data, compresslevel=level, mtime=0) if compress else data))
            with conn:  # one transaction per batch
                conn.executemany("INSERT OR REPLACE INTO report (detectid, image) VALUES (?, ?)", rows)
            n += len(rows)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("PRAGMA journal_mode=DELETE")
    finally:
        conn.close()
    return {"db": db_path, "inserted": n, "seconds": time.perf_counter() - t0}


def build_report_dbs(reports: Path, out: Path, kinds=("png", "nei", "mini"), workers: int | None = None,
                     level: int = 1, compress: bool = True) -> list[dict]:
    """Every (type, prefix) group of report files under ``reports`` into its database under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    found = scan(reports)
    groups: dict[str, list[tuple[int, str]]] = {}
    for kind in kinds:
        for did, path in sorted(found[kind].items()):
            groups.setdefault(str(out / db_name(did, kind)), []).append((did, str(path)))
    if not groups:
        return []
    workers = max(1, min(workers or os.cpu_count() or 1, len(groups)))
    if workers == 1:
        return [insert_group(db, files, level=level, compress=compress) for db, files in groups.items()]
    with ProcessPoolExecutor(workers) as pool:
        futures = [pool.submit(insert_group, db, files, 2000, level, compress) for db, files in groups.items()]
        return [f.result() for f in futures]


def fetch(db_path: str | Path, detectid: int) -> bytes | None:
    """One report image back (decompressed), as hetdex_api's and ELiXer's readers do."""
    with sqlite3.connect(db_path) as conn:
        row = conn.execute("SELECT image FROM report WHERE detectid = ?", (int(detectid),)).fetchone()
    if row is None:
        return None
    blob = row[0]
    return gzip.decompress(blob) if blob[:2] == b"\x1f\x8b" else blob


# --- the optional pipeline step (runbook 18.5 inside a run) --------------------------------------
from astroflow.step import Step, StepParams  # noqa: E402


class ReportDbParams(StepParams):
    enabled: bool = False  # off by default, as in the runbook (a separate idev session)
    gzip_level: int = 1


def run_step(ctx):
    kinds = [k for k in ("png", "nei", "mini") if k in ctx.settings.report_types()]
    out = ctx.run_dir / "databases"
    results = build_report_dbs(ctx.run_dir / "reports", out, kinds, workers=1, level=ctx.params.gzip_level)
    for r in results:
        ctx.product(Path(r["db"]).relative_to(ctx.run_dir))
    return [{"db": Path(r["db"]).name, "inserted": r["inserted"], "seconds": round(r["seconds"], 3)} for r in results]


report_db = Step("report_db", inputs=("classify",), params=ReportDbParams, run=run_step, doc=__doc__)
