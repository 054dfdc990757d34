"""Runbook step 21, merge4tev.py: the TEV ingest file of each TIC (DV mini-report + TEC reports).

Fans out over the TICs that have TEC reports: the TIC's DV mini-report ``*_dvm.pdf`` (found by
the file-name family: no edits of ``miniHdr``/``miniTail``/``sourceDir``/``outDir``) followed by
all its TEC report PDFs in planet-number order, joined into
``tevpdfs/tec-s{SSSS}-{TIC:016d}-00001_dvm.pdf`` where SSSS is the sector, or 1000 + the last
sector for a multi-sector run.  A TIC without a mini-report is an item error.
"""

from __future__ import annotations

import pyarrow as pa

from astroflow.atomic import atomic_path
from astroflow.errors import ItemError
from astroflow.step import FanOut, Resources
from steps.tec.products import ProductError
from steps.tec.tces import sector_products

SCHEMA = pa.schema([("tic", pa.int64()), ("path", pa.string()), ("n_reports", pa.int32()), ("n_pages", pa.int32())])


def tev_sector(sector: int, multi_sector: bool) -> int:
    return 1000 + sector if multi_sector else sector


def tev_name(tic: int, sector: int, multi_sector: bool = False) -> str:
    """``tec-s{SSSS}-{TIC:016d}-00001_dvm.pdf``; SSSS = sector, or 1000 + sector for multi-sector runs."""
    return f"tec-s{tev_sector(sector, multi_sector):04d}-{tic:016d}-00001_dvm.pdf"


def tics(ctx) -> list[dict]:
    try:
        minis = sector_products(ctx, "dvm")
    except ProductError:
        minis = {}
    by_tic: dict = {}
    for r in ctx.rows("reports", columns=["tic", "planet_number", "path"]):
        by_tic.setdefault(r["tic"], []).append((r["planet_number"], r["path"]))
    return [{"tic": tic, "dvm": str(minis[tic]) if tic in minis else None,
             "reports": [p for _, p in sorted(reps)]} for tic, reps in sorted(by_tic.items())]


def one_tic(ctx, item) -> dict:
    from pypdf import PdfWriter
    from pypdf.errors import PdfReadError

    s = ctx.settings
    tic = item["tic"]
    if item["dvm"] is None:
        raise ItemError(f"no DV mini-report (*_dvm.pdf) of TIC {tic} for sectors {s.dv_sectors} under {s.data_root}")
    writer = PdfWriter()
    for path in [ctx.uses(item["dvm"])] + [ctx.run_dir / p for p in item["reports"]]:
        try:
            writer.append(str(path))
        except (PdfReadError, OSError, ValueError) as exc:
            raise ItemError(f"cannot read: {exc}", path) from exc
    rel = f"tevpdfs/{tev_name(tic, s.sector, s.multi_sector)}"
    with atomic_path(ctx.product(rel)) as tmp, open(tmp, "wb") as fh:
        writer.write(fh)
    return {"tic": tic, "path": rel, "n_reports": len(item["reports"]), "n_pages": len(writer.pages)}


merge4tev = FanOut(
    "merge4tev",
    inputs=("reports",),
    items=tics,
    process=one_tic,
    key=("tic",),
    schema=SCHEMA,
    shard_size=50,
    resources=Resources(cpu="1", memory="1Gi"),
    doc=__doc__,
)
