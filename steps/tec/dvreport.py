"""DV report PDF pages: runbook step 8.

Replaces TEC `get_dv_report_page.py`, which ran `pdftotext -layout`, counted
the roman-numbered front pages, grepped the figure path of each difference
image, read the printed arabic page label 5 lines further on and cut the page
out with ghostscript.  Here pypdf extracts each page's text, the page holding
the figure path *is* the answer (no label arithmetic, which crashed on a
non-numeric label), and pypdf writes the one-page PDF atomically.
"""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from steps.tec.products import ProductError

__all__ = ["CENTSUM", "find_difference_image_pages", "extract_pages", "page_texts"]

CENTSUM = "centsum"  # key of the multi-sector centroid-offset summary page


def _reader(pdf_path):
    import pypdf

    path = Path(pdf_path)
    if not path.is_file():
        raise ProductError(path, "DV report PDF does not exist")
    try:
        reader = pypdf.PdfReader(str(path), strict=False)
        _ = len(reader.pages)
        return reader
    except Exception as exc:  # pypdf raises PdfReadError, ValueError, KeyError... on bad files
        raise ProductError(path, f"not a readable PDF (truncated or corrupt?): {exc}") from exc


def page_texts(pdf_path) -> list[str]:
    """The extracted text of every page (pypdf; no external tools)."""
    reader = _reader(pdf_path)
    texts = []
    for i, page in enumerate(reader.pages):
        try:
            texts.append(page.extract_text() or "")
        except Exception as exc:
            raise ProductError(pdf_path, f"cannot extract text of page {i + 1}: {exc}") from exc
    return texts


def find_difference_image_pages(pdf_path, tic: int, pn: int, sectors, texts: list[str] | None = None) -> dict:
    """Locate the difference-image page of each sector of one TCE.

    Searches every page for
    ``planet-{PN:02d}/difference-image/{TIC:016d}-{PN:02d}-difference-image-{s:02d}``
    (the sector number must not run on into more digits, so sector 3 never
    matches sector 33) and for the multi-sector summary
    ``...-difference-image-centroid-offsets``.  Text is searched as extracted
    and, failing that, with whitespace removed (a path wrapped over two
    lines).  Returns {sector: 0-based page index} for the sectors found, plus
    {CENTSUM: index} when the summary page exists; a sector with no
    difference image is simply absent.  Pass `texts` (from `page_texts`) to
    search several planets of one report without extracting it again."""
    if texts is None:
        texts = page_texts(pdf_path)
    compact = [re.sub(r"\s+", "", t) for t in texts]
    stem = re.escape(f"planet-{pn:02d}/difference-image/{int(tic):016d}-{pn:02d}-difference-image-")
    wanted = {int(s): re.compile(stem + rf"0*{int(s)}(?![0-9])") for s in sectors}
    wanted_compact = {int(s): re.compile(stem + rf"0*{int(s)}(?:\.fig|(?![0-9]))") for s in sectors}
    summary = re.compile(stem + r"centroid-offsets")
    out: dict = {}
    for s in wanted:
        for pages, pat in ((texts, wanted[s]), (compact, wanted_compact[s])):
            hit = next((i for i, t in enumerate(pages) if pat.search(t)), None)
            if hit is not None:
                out[s] = hit
                break
    hit = next((i for i, t in enumerate(compact) if summary.search(t)), None)
    if hit is not None:
        out[CENTSUM] = hit
    return out


def extract_pages(pdf_path, pages, out_path) -> Path:
    """Write the given page(s) (0-based index or list of indices) of a PDF to
    `out_path`, atomically: a temporary file in the same folder renamed into
    place, so a killed step leaves no half-written PDF under the final name."""
    import pypdf

    reader = _reader(pdf_path)
    idx = [pages] if isinstance(pages, int) else list(pages)
    n = len(reader.pages)
    bad = [p for p in idx if not 0 <= p < n]
    if not idx or bad:
        raise ProductError(pdf_path, f"page index {bad or idx} out of range: the report has {n} pages")
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    writer = pypdf.PdfWriter()
    try:
        for p in idx:
            writer.add_page(reader.pages[p])
    except Exception as exc:
        raise ProductError(pdf_path, f"cannot copy page(s) {idx}: {exc}") from exc
    fd, tmp = tempfile.mkstemp(prefix=f".{out_path.name}.", suffix=".tmp", dir=out_path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            writer.write(fh)
        os.replace(tmp, out_path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return out_path
