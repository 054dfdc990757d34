"""DV report PDFs for the simulated sector: full report `_dvr.pdf`, per-TCE one-page
summary `_dvs.pdf` and the per-target mini-report `_dvm.pdf`.

The pages are written by the project's tiny PDF writer (``steps.tec.pdfpage``: text in the
standard Helvetica font, vector plots, small raw images) and pypdf sets the page labels of the full report
(roman front matter i-iii, then arabic from 1), the way SPOC numbers its reports.
Text is extractable with pypdf and pdftotext. The difference-image page carries the
`planet-NN/difference-image/...fig` line followed by four caption lines and the
arabic page label, which is what TEC's get_dv_report_page greps.

Why not matplotlib: with matplotlib 3.11 each text line costs ~3 ms to lay out and
every file pays ~0.05-0.1 s of TrueType subsetting, which made the PDFs 65 % of the
simulator's run time (0.5 s per target). This writer takes ~2 ms per file.
"""

from __future__ import annotations

import io

import numpy as np

from steps.tec.pdfpage import PAGE_H, PAGE_W, Page, build_pdf, text_width  # noqa: F401 (re-exported)

LEFT = 49.0
LINE = 12.7  # points between text lines


def with_page_labels(pdf: bytes, n_front: int) -> bytes:
    """Roman labels (i, ii, ...) on the first n_front pages, arabic from 1 after (pypdf writer)."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    n = len(writer.pages)
    if n_front:
        writer.set_page_label(0, n_front - 1, style="/r", start=1)
    if n > n_front:
        writer.set_page_label(n_front, n - 1, style="/D", start=1)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


# -- page content ---------------------------------------------------------------------------


def _plot(page: Page, box: tuple, x: np.ndarray, y: np.ndarray, model: np.ndarray | None,
          xlabel: str, ylabel: str) -> None:
    """Framed scatter plot with a model line and 5 ticks per axis."""
    x0, y0, w, h = box
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    m = model[ok] if model is not None and model.size == ok.size else None
    xlo, xhi = (float(x.min()), float(x.max())) if x.size else (-1.0, 1.0)
    ylo, yhi = (float(np.percentile(y, 1)), float(np.percentile(y, 99))) if y.size else (-1.0, 1.0)
    if m is not None and m.size:
        ylo = min(ylo, float(np.min(m)))
    pad = 0.1 * ((yhi - ylo) or 1.0)
    ylo, yhi = ylo - pad, yhi + pad
    xhi = xhi if xhi > xlo else xlo + 1.0

    def fx(v):
        return x0 + w * (np.asarray(v) - xlo) / (xhi - xlo)

    def fy(v):
        return y0 + h * (np.clip(np.asarray(v), ylo, yhi) - ylo) / (yhi - ylo)

    page.rect(x0, y0, w, h)
    page.dots(fx(x), fy(y))
    if m is not None and m.size:
        order = np.argsort(x)
        page.polyline(fx(x[order]), fy(m[order]), 1.2, (0.84, 0.15, 0.16))
    for v in np.linspace(xlo, xhi, 5):
        page.text(float(fx(v)), y0 - 11, f"{v:.3g}", 8, align="center")
    for v in np.linspace(ylo, yhi, 5):
        page.text(x0 - 4, float(fy(v)) - 3, f"{v:.0f}", 8, align="right")
    page.text(x0 + w / 2, y0 - 26, xlabel, 9, align="center")
    page.text(x0 - 50, y0 + h + 8, ylabel, 9)


def _fold_plot(page: Page, p: dict) -> None:
    _plot(page, (90, 400, 470, 300), p["fold_x"], p["fold_y"], p["fold_model"], "Phase (hours)",
          "Relative flux (ppm)")


def _footer(page: Page, label: str, y: float = 23.8) -> None:
    page.text(PAGE_W / 2, y, label, 10, align="center")


def dv_report_pdf(t: dict, planets: list[dict], creator: str) -> bytes:
    """Full DV report: 3 roman front pages, DV SUMMARY (page 1), per TCE a results page and a
    difference-image page, and an appendix."""
    tic, sector = t["tic"], t["sector"]
    pages = []
    pg = Page()
    pg.lines(LEFT, 560, ["Data Validation Report", f"TIC {tic}", f"Sector {sector}",
                         "Science Processing Operations Center (SPOC)", "NASA Ames Research Center",
                         f"Pipeline instance {t['pin']}, DV export {t['dv_stamp']}"], size=12, step=20)
    _footer(pg, "i")
    pages.append(pg)
    contents = ["Contents", "DV overview page ........ 1"]
    label = 2
    for p in planets:
        contents += [f"Planet candidate {p['pn']} results ........ {label}",
                     f"Planet candidate {p['pn']} difference image ........ {label + 1}"]
        label += 2
    contents.append(f"Appendix: pipeline parameters ........ {label}")
    pg = Page()
    pg.lines(LEFT, 752.4, contents)
    _footer(pg, "ii")
    pages.append(pg)
    pg = Page()
    pg.lines(LEFT, 752.4, ["Target properties", f"TIC ID: {tic}", f"RA (deg): {t['ra']:.6f}",
                           f"Dec (deg): {t['dec']:.6f}", f"TESS mag: {t['tmag']:.3f}", f"Teff (K): {t['teff']:.0f}",
                           f"log g (cgs): {t['logg']:.3f}", f"Radius (Rsun): {t['radius']:.3f}",
                           f"Camera {t['camera']}  CCD {t['ccd']}", f"Number of TCEs: {len(planets)}"])
    _footer(pg, "iii")
    pages.append(pg)
    pg = Page()
    pg.text(LEFT, 752.4, f"DV SUMMARY FOR TIC {tic}", 11, bold=True)
    pg.lines(LEFT, 735.0, [f"Sector {sector}, {len(planets)} threshold crossing event(s)"]
             + [f"Planet {p['pn']:02d}: period {p['period']:.5f} d, epoch {p['epoch']:.5f} BTJD, "
                f"depth {p['depth']:.0f} ppm, duration {p['duration']:.2f} h, MES {p['mes']:.2f}" for p in planets],
             size=9)
    _footer(pg, "1")
    pages.append(pg)
    label = 2
    for p in planets:
        pg = Page()
        _fold_plot(pg, p)
        pg.text(LEFT, 330, f"Planet Candidate {p['pn']} Results", 11, bold=True)
        pg.lines(LEFT, 312, [f"Orbital period: {p['period']:.6f} d", f"Epoch: {p['epoch']:.6f} BTJD",
                             f"Transit depth: {p['depth']:.1f} ppm", f"Transit duration: {p['duration']:.3f} h",
                             f"Multiple event statistic: {p['mes']:.3f}", f"Observed transits: {p['ntran']}"])
        _footer(pg, str(label))
        pages.append(pg)
        pg = Page()
        d = p["diffimg"]
        for (x, y), key, title in (((80, 470), "diff", "Difference flux"), ((330, 470), "oot", "Out of transit flux"),
                                   ((80, 200), "intr", "In transit flux"), ((330, 200), "snr", "Difference SNR")):
            pg.text(x + 100, y + 212, title, 10, align="center")
            pg.image(x, y, 200, 200, d[key])
        pg.text(LEFT, 752.4, f"Difference Image for Target {tic}, Planet Candidate {p['pn']}, Sector {sector}",
                11, bold=True)
        y = pg.lines(LEFT, 134.6, [
            f"planet-{p['pn']:02d}/difference-image/{tic:016d}-{p['pn']:02d}-difference-image-{sector:02d}.fig",
            f"Figure {label + 1}. Difference image for TIC {tic}, planet candidate {p['pn']}, sector {sector}.",
            "Clockwise from upper left: difference flux, out-of-transit flux, difference SNR, in-transit flux.",
            "The TIC reference position is marked with x; the out-of-transit centroid with +.",
            f"Quality metric attempted and {'valid' if d['quality'] > 0.7 else 'invalid'}; "
            f"{d['ntransits']} transits used."], size=8, step=9.9)
        _footer(pg, str(label + 1), y=y)
        pages.append(pg)
        label += 2
    pg = Page()
    pg.lines(LEFT, 752.4, ["Appendix: pipeline parameters", "TPS: search pulse durations 1.0-15.0 h, threshold 7.1",
                           "DV: limb-darkened transit model, robust fit, bootstrap false-alarm estimate"])
    _footer(pg, str(label))
    pages.append(pg)
    return with_page_labels(build_pdf(pages, f"DV report TIC {tic}", creator), 3)


def dv_summary_pdf(t: dict, p: dict, creator: str) -> bytes:
    """One-page DV report summary for one TCE."""
    pg = Page()
    _fold_plot(pg, p)
    pg.text(LEFT, 330, f"DV Report Summary - TIC {t['tic']}, Planet Candidate {p['pn']}", 11, bold=True)
    pg.lines(LEFT, 312, [f"Sector {t['sector']}   Tmag {t['tmag']:.2f}   Teff {t['teff']:.0f} K   "
                         f"R* {t['radius']:.2f} Rsun",
                         f"P = {p['period']:.6f} d   T0 = {p['epoch']:.5f} BTJD   depth = {p['depth']:.0f} ppm   "
                         f"dur = {p['duration']:.2f} h   MES = {p['mes']:.2f}"])
    return build_pdf([pg], f"DV summary TIC {t['tic']} planet {p['pn']}", creator)


def dv_minireport_pdf(t: dict, planets: list[dict], creator: str) -> bytes:
    """Per-target mini-report: the TCEs listed on one page (a second page past 40 TCEs)."""
    lines = [f"  {p['pn']:02d}: P={p['period']:.5f} d  depth={p['depth']:.0f} ppm  MES={p['mes']:.2f}  "
             f"Ntran={p['ntran']}" for p in planets]
    pages = []
    for k in range(0, max(len(lines), 1), 40):
        pg = Page()
        head = [f"DV Mini-Report - TIC {t['tic']}", f"Sector {t['sector']}, {len(planets)} TCE(s)"] if k == 0 else []
        pg.lines(LEFT, 752.4, head + lines[k:k + 40])
        pages.append(pg)
    return build_pdf(pages, f"DV mini-report TIC {t['tic']}", creator)
