"""Runbook step 7, get_dv_report_page.py: the difference-image page of each TCE as its own PDF.

Fans out over TCEs; finds the page in the TIC's ``*_dvr.pdf`` by its figure path with a PDF
library (no pdftotext or ghostscript) and writes ``S{ss}/{tic//1000:04d}/tess_diffImg_{TIC}_{PN}_{s}.pdf``
(and ``..._centsum.pdf`` for the multi-sector centroid summary).  A TCE without a difference
image is recorded with ``found = False``.
"""

from __future__ import annotations

import pyarrow as pa

from astroflow.errors import ItemError
from astroflow.step import FanOut, Resources
from steps.tec.dvreport import CENTSUM, extract_pages, find_difference_image_pages, page_texts
from steps.tec.tces import sector_products

SCHEMA = pa.schema([
    ("tic", pa.int64()), ("planet_number", pa.int32()), ("sector", pa.int32()),
    ("found", pa.bool_()), ("page", pa.int32()), ("path", pa.string()),
])


def tces_with_reports(ctx) -> list[dict]:
    reports = sector_products(ctx, "dvr_pdf")
    items = []
    for r in sorted(ctx.rows("gather", columns=["tic", "planet_number"]), key=lambda r: (r["tic"], r["planet_number"])):
        pdf = reports.get(r["tic"])
        items.append({"tic": r["tic"], "planet_number": r["planet_number"], "pdf": str(pdf) if pdf else None})
    return items


def one_tce(ctx, item) -> list[dict]:
    s = ctx.settings
    tic, pn = item["tic"], item["planet_number"]
    if item["pdf"] is None:
        raise ItemError(f"no DV report (*_dvr.pdf) for TIC {tic} under {s.data_root}")
    first, last = s.dv_sectors
    if item["pdf"] not in ctx.state:  # a TIC's TCEs share one report: extract its text once
        ctx.state[item["pdf"]] = page_texts(ctx.uses(item["pdf"]))
    texts = ctx.state[item["pdf"]]
    pages = find_difference_image_pages(item["pdf"], tic, pn, range(first, last + 1), texts=texts)
    if not pages:
        return [{"tic": tic, "planet_number": pn, "sector": last, "found": False, "page": -1, "path": None}]
    rows = []
    for sector, page in sorted(pages.items(), key=lambda kv: str(kv[0])):
        tag = "centsum" if sector == CENTSUM else f"{sector:02d}"
        rel = s.tce_dir(tic) / f"tess_diffImg_{tic:016d}_{pn:02d}_{tag}.pdf"
        extract_pages(item["pdf"], page, ctx.product(rel))
        rows.append({"tic": tic, "planet_number": pn, "sector": -1 if sector == CENTSUM else sector,
                     "found": True, "page": page, "path": str(rel)})
    return rows


dv_report_pages = FanOut(
    "dv_report_pages",
    inputs=("gather",),
    items=tces_with_reports,
    process=one_tce,
    setup=lambda ctx, items: {},
    key=("tic", "planet_number"),
    schema=SCHEMA,
    shard_size=100,
    resources=Resources(cpu="1", memory="1Gi"),
    doc=__doc__,
)
