"""Runbook step 20, rank_tces.py -w {} -n N (worker mode): the TEC report PDF of each ranked TCE.

Fans out over the ranked TCEs, best RANK first, and joins (pypdf, no ghostscript) into
``pdfs/tec-s{SSSS}-{TIC:016d}-{PN:02d}.pdf`` (SSSS the last sector):

1. the DV one-page summary ``*_dvs.pdf`` (found by the file-name family: no edits of
   ``summaryPostfix`` for FTL names);
2. the model-shift figure on the TEC detrending (step 17), then on the DV detrending (step 12);
3. a "Tier N flags" page: the Tier, RANK, KNOWN flag and every flag with its meaning (the
   original stamped "Tier N ..." in red on the first page through a PostScript file);
4. the difference-image page(s) from step 7 (and the optional step 18 figures);
5. the twexo page (step 16).

A missing part (no DV summary in the export, a TCE without a difference image) is listed on the
flags page and in the row's ``missing``; the report is still written.
"""

from __future__ import annotations

import io

import pyarrow as pa

from astroflow.atomic import atomic_path
from astroflow.errors import ItemError
from astroflow.step import FanOut, Resources
from steps.tec.modshift import figure_name
from steps.tec.products import ProductError
from steps.tec.tces import sector_products
from steps.tec.science.ranking import FLAG_ORDER, NOT_COUNTED

SCHEMA = pa.schema([("tic", pa.int64()), ("planet_number", pa.int32()), ("tier", pa.int8()), ("path", pa.string()),
                    ("n_parts", pa.int32()), ("n_pages", pa.int32()), ("missing", pa.list_(pa.string()))])

FLAG_MEANING = {
    "CenOOT": "DV centroid offset from the out-of-transit centroid > 3 sigma",
    "CenTIC": "DV centroid offset from the TIC position > 3 sigma",
    "UniqAlt": "model-shift: primary not unique (TEC detrending)",
    "UniqDV": "model-shift: primary not unique (DV detrending)",
    "HasSecAlt": "model-shift: significant secondary eclipse (TEC detrending)",
    "HasSecDV": "model-shift: significant secondary eclipse (DV detrending)",
    "OEAlt": "model-shift: odd/even depth difference (TEC detrending)",
    "OEDV": "model-shift: odd/even depth difference (DV detrending)",
    "Sweet": "SWEET: a sinusoid at P, P/2 or 2P explains the light curve",
    "OthTCEMtch": "ephemeris matches TCEs on other stars (systematic)",
    "PDCsummary": "PDC noise goodness PDC_NOI < 0.8",
    "RpBig": "planet radius too large (> 20 Re, 25 Re for FTL)",
    "MoDump": "more than 90 % of the events near momentum dumps",
    "HasSecAltPlanet?": "secondary explained (half period or planet albedo), TEC detrending",
    "HasSecDVPlanet?": "secondary explained (half period or planet albedo), DV detrending",
    "NoModshiftAlt": "model-shift gave no result (TEC detrending)",
    "NoModshiftDV": "model-shift gave no result (DV detrending)",
}
KNOWN_MEANING = {0: "none", 1: "TOI, federated", -1: "TOI matched, not federated", 2: "known planet",
                 3: "TOI on this TIC at another planet number", 4: "known planet on this TIC at another planet number"}


def report_name(tic: int, pn: int, sector: int) -> str:
    """``tec-s{SSSS}-{TIC:016d}-{PN:02d}.pdf`` (SSSS: the run's last sector)."""
    return f"tec-s{sector:04d}-{tic:016d}-{pn:02d}.pdf"


def ranked(ctx) -> list[dict]:
    try:
        summaries = sector_products(ctx, "dvs")
    except ProductError:
        summaries = {}
    rows = [r for r in ctx.rows("rank", columns=["tic", "planet_number", "tier", "rank", "known_flag", "flags"])
            if r["tier"] is not None]
    rows.sort(key=lambda r: (-r["rank"], r["tic"], r["planet_number"]))
    for r in rows:
        dvs = summaries.get((r["tic"], r["planet_number"]))
        r["dvs"] = str(dvs) if dvs else None
    return rows


def load(ctx, items) -> dict:
    from steps.tec.vetted import tic_where

    flt = tic_where(items)
    diff: dict = {}
    for r in ctx.rows("dv_report_pages", columns=["tic", "planet_number", "sector", "found", "path"], where=flt):
        if r["found"]:
            diff.setdefault((r["tic"], r["planet_number"]), []).append(r)
    bsc: dict = {}
    if ctx.has_input("centroid_figures"):
        for r in ctx.rows("centroid_figures", columns=["tic", "planet_number", "sector", "path"], where=flt):
            bsc.setdefault((r["tic"], r["planet_number"]), []).append(r)
    twexo = {r["tic"]: r["path"] for r in ctx.rows("twexo", columns=["tic", "path"], where=flt)}
    return {"diff": diff, "bsc": bsc, "twexo": twexo}


def one_tce(ctx, item) -> dict:
    from pypdf import PdfWriter
    from pypdf.errors import PdfReadError

    s = ctx.settings
    tic, pn = item["tic"], item["planet_number"]
    folder = ctx.run_dir / s.tce_dir(tic)
    parts, missing = [], []

    def add(path, what):
        if path is not None and path.is_file():
            parts.append((path, what))
        else:
            missing.append(what)

    add(ctx.uses(item["dvs"]) if item["dvs"] else None, "DV summary (_dvs.pdf)")
    add(folder / figure_name(tic, pn, "alt"), "model-shift figure, TEC detrending")
    add(folder / figure_name(tic, pn, "med"), "model-shift figure, DV detrending")
    flags_at = len(parts)
    diffs = sorted(ctx.state["diff"].get((tic, pn), []), key=lambda r: (r["sector"] < 0, r["sector"]))
    if not diffs:
        missing.append("difference image (DV report)")
    for r in diffs:
        add(ctx.run_dir / r["path"], f"difference image sector {r['sector']}")
    for r in sorted(ctx.state["bsc"].get((tic, pn), []), key=lambda r: r["sector"]):
        add(ctx.run_dir / r["path"], f"pixel significance sector {r['sector']}")
    tw = ctx.state["twexo"].get(tic)
    add(ctx.run_dir / tw if tw else None, "twexo page")

    rel = f"pdfs/{report_name(tic, pn, s.sector)}"
    ordered = parts[:flags_at] + [(tier_page(item, missing), "flags page")] + parts[flags_at:]
    writer = PdfWriter()
    for src, what in ordered:
        try:
            writer.append(src if isinstance(src, io.BytesIO) else str(src))
        except (PdfReadError, OSError, ValueError) as exc:
            raise ItemError(f"cannot read the {what}: {exc}", None if isinstance(src, io.BytesIO) else src) from exc
    with atomic_path(ctx.product(rel)) as tmp, open(tmp, "wb") as fh:
        writer.write(fh)
    n_parts = len(ordered)
    return {"tic": tic, "planet_number": pn, "tier": item["tier"], "path": rel, "n_parts": n_parts,
            "n_pages": len(writer.pages), "missing": missing}


def tier_page(item: dict, missing: list[str]) -> io.BytesIO:
    """The "Tier N flags" page, as an in-memory PDF (``steps.tec.pdfpage``)."""
    from steps.tec.pdfpage import PAGE_H, PAGE_W, Page, build_pdf

    page = Page()
    x = 0.08 * PAGE_W

    def text(y_frac, s, size, indent=0.0, font="F1", rgb=None):
        page.text(x + indent * PAGE_W, y_frac * PAGE_H - size * 0.8, s, size, font=font, rgb=rgb)

    text(0.93, f"Tier {item['tier']}", 28, rgb=(1, 0, 0))
    text(0.87, f"TIC {item['tic']}  planet {item['planet_number']}", 14)
    text(0.84, f"RANK {item['rank']:.4f}   KNOWN {item['known_flag']} "
         f"({KNOWN_MEANING.get(item['known_flag'], '?')})", 11)
    y = 0.79
    flags = sorted(item["flags"], key=FLAG_ORDER.index) if item["flags"] else []
    text(y, "Flags" if flags else "No flags", 13)
    y -= 0.035
    for f in flags:
        note = " (not counted)" if f in NOT_COUNTED else ""
        text(y, f"{f}: {FLAG_MEANING.get(f, '')}{note}", 10, indent=0.02, font="F3")
        y -= 0.025
    if missing:
        y -= 0.02
        text(y, "Not in this report", 13)
        y -= 0.035
        for m in missing:
            text(y, m, 10, indent=0.02)
            y -= 0.025
    return io.BytesIO(build_pdf([page], title=f"TIC {item['tic']} planet {item['planet_number']} Tier {item['tier']}",
                                creator="astroflow TEC", fonts=("F1", "F3")))


reports = FanOut(
    "reports",
    inputs=("rank", "dv_report_pages", "modshift_med", "modshift_alt", "twexo"),
    optional_inputs=("centroid_figures",),
    items=ranked,
    setup=load,
    process=one_tce,
    key=("tic", "planet_number"),
    schema=SCHEMA,
    shard_size=25,
    resources=Resources(cpu="1", memory="1Gi"),
    doc=__doc__,
)


def run_report_section(run_dir) -> str:
    """The TEC section of the run's HTML report (:mod:`steps.tec.run_figures`): the period-depth
    plane and MES histogram by Tier, and the three Tier tables, each TCE linked to its PDF."""
    from steps.tec.run_figures import section

    return section(run_dir)
