"""Runbook, science steps 5h and 6b: "the extraction is recorded in a file called report.txt" and
"the marshal URL is recorded in the file report_ztf.txt".

Rewritten from the night's tables each time a spectrum is added (the ledger reruns this step when
``spectra`` or ``upload`` change), so both files always list every spectrum of the night once,
in UT order, the latest redex of each frame in place of the earlier extraction:

``report.txt``      one line per spectrum: UTStart, Object, Exptime, Air, Qual, method, Allocation,
                    Type, z, Rlap, Classifier (whitespace-aligned, a header line first; empty
                    classifications as ``-``);
``report_ztf.txt``  one line per marshal upload: UTStart, Object, the spectrum file and the
                    marshal's answer (its URL), or nothing when the marshal is off.

Allocation is the program the frame was taken for, from the raw header's ``P60PRNM`` (or
``P60PRID``) when the observatory wrote one, else ``-``.
"""

from __future__ import annotations

import math

import pyarrow as pa
from astropy.io import fits

from astroflow.atomic import write_text
from astroflow.step import Step
from steps.sedm.writer import guard, night_dir

SCHEMA = pa.schema([("file", pa.string()), ("lines", pa.int32())])
COLUMNS = ("UTStart", "Object", "Exptime", "Air", "Qual", "method", "Allocation", "Type", "z", "Rlap", "Classifier")


def _allocation(ctx, filename: str) -> str:
    path = ctx.row("night", filename=filename)["path"]
    head = fits.getheader(ctx.uses(path))
    return str(head.get("P60PRNM") or head.get("P60PRID") or "-").replace(" ", "_")


def _fmt(value, spec: str = "") -> str:
    if value is None or value == "" or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return format(value, spec) if spec else str(value).replace(" ", "_")


def _aligned(rows: list[list[str]]) -> str:
    widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows) + "\n"


def write_reports(ctx) -> list[dict]:
    spectra = sorted(ctx.rows("spectra"), key=lambda r: r["mjd_obs"])
    lines = [list(COLUMNS)]
    for r in spectra:
        lines.append([r["ut_start"], r["object"], _fmt(r["exptime"], ".0f"), _fmt(r["airmass"], ".3f"),
                      str(r["quality"]), r["method"] + (f"({r['redo_tag']})" if r["redo_tag"] else ""),
                      _allocation(ctx, r["filename"]), _fmt(r["type"] + (f"-{r['subtype']}" if r["subtype"] else "")),
                      _fmt(r["z"], ".4f"), _fmt(r["rlap"], ".1f"), _fmt(r["classifier"])])
    by_file = {r["filename"]: r for r in spectra}
    ztf = [["UTStart", "Object", "Spectrum", "Marshal"]]
    for u in sorted(ctx.rows("upload", where={"sink": "marshal"}), key=lambda u: by_file[u["filename"]]["mjd_obs"]):
        s = by_file[u["filename"]]
        ztf.append([s["ut_start"], s["object"], s["fits_path"].rsplit("/", 1)[-1], u["answer"].replace(" ", "_")])
    folder = night_dir(ctx.settings)
    roots = ctx.settings.raw_roots()
    out = []
    for name, table in (("report.txt", lines), ("report_ztf.txt", ztf)):
        rel = folder / name
        write_text(guard(ctx.product(rel), roots), _aligned(table))
        out.append({"file": str(rel), "lines": len(table) - 1})
    return out


night_report = Step("night_report", inputs=("night", "spectra", "upload"), run=write_reports, schema=SCHEMA,
                    doc=__doc__)
