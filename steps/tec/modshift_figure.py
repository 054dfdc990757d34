"""The model-shift page of runbook steps 12 and 17: the figure of one test, one PDF page.

The page of the original (gnuplot, drawn by the modshift program): the folded light curve
(points, the median in 200 phase bins, the trapezoid model) with the phases of the primary,
secondary, tertiary and positive events marked, zooms on the primary (with the model) and on the
secondary, the verdicts, and the 17 numbers.

Written with the project's small PDF writer (``steps.tec.pdfpage``): the folded points are one
gray image, the rest vector lines and text in the standard fonts.  A page takes a few
milliseconds; matplotlib took 0.2-0.4 s per page (axes, ticks and font subsetting per file),
half of a full-sector run.
"""

from __future__ import annotations

import numpy as np

from astroflow.atomic import write_bytes
from steps.tec.pdfpage import Page, Panel, build_pdf, data_limits
from steps.tec.science.modshift import OUTPUT_KEYS

EVENTS = (("phase_pri", (1, 0, 0), "pri"), ("phase_sec", (0, 0, 1), "sec"), ("phase_ter", (0, 0.5, 0), "ter"),
          ("phase_pos", (0.75, 0, 0.75), "pos"))
N_BINS = 200
MAIN_BOX = (61.2, 491.0, 520.2, 221.8)
ZOOM_BOXES = ((61.2, 261.4, 244.8, 174.2), (336.6, 261.4, 244.8, 174.2))


def binned_median(phase: np.ndarray, flux: np.ndarray, n_bins: int = N_BINS) -> tuple[np.ndarray, np.ndarray]:
    """Median flux in ``n_bins`` equal phase bins over [-0.25, 0.75) (NaN for empty bins)."""
    edges = np.linspace(-0.25, 0.75, n_bins + 1)
    idx = np.clip(np.digitize(phase, edges) - 1, 0, n_bins - 1)
    order = np.argsort(idx, kind="stable")
    counts = np.bincount(idx, minlength=n_bins)
    groups = np.split(flux[order], np.cumsum(counts)[:-1])
    med = np.array([np.median(g) if g.size else np.nan for g in groups])
    return 0.5 * (edges[1:] + edges[:-1]), med


def _finite(v) -> bool:
    return v is not None and bool(np.isfinite(v))


def modshift_page(time, flux, model, period, epoch, out: dict, which: str, tic: int, pn: int) -> bytes:
    """The page as PDF bytes."""
    ppm = 1e6
    time, flux, model = (np.asarray(a, float) for a in (time, flux, model))
    phase = np.mod(time - epoch, period) / period
    phase = np.where(phase >= 0.75, phase - 1.0, phase)           # [-0.25, 0.75) as modshift
    page = Page()
    title = "DV median detrended" if which == "med" else "TEC alternative detrending"
    page.text(306.0, 765.0, f"TIC {tic} planet {pn}: model-shift test ({title})", 12, align="center")

    order = np.argsort(phase, kind="stable")
    centres, binned = binned_median(phase, flux)
    main = Panel(page, MAIN_BOX, (-0.25, 0.75), data_limits([flux * ppm, model * ppm]))
    main.raster_points(phase, flux * ppm)
    main.dots(centres, binned * ppm, size=2.2, gray=0.0)
    main.line(phase[order], model[order] * ppm, rgb=(1, 0, 0))
    legend = []
    for key, rgb, label in EVENTS:
        if _finite(out.get(key)):
            main.vline(float(out[key]), rgb=rgb)
            legend.append((label, rgb))
    x, y = MAIN_BOX[0] + MAIN_BOX[2] - 34, MAIN_BOX[1] + 6 + 9 * (len(legend) - 1)
    for label, rgb in legend:
        page.polyline([x, x + 12], [y + 2.5, y + 2.5], rgb=rgb, dash=(1, 1.5))
        page.text(x + 15, y, label, 7)
        y -= 9
    main.frame(xlabel="phase", ylabel="relative flux [ppm]")

    dur = max(out.get("trp_duration_h") or 0.0, 0.5) / 24.0
    for box, (key, label) in zip(ZOOM_BOXES, (("phase_pri", "primary"), ("phase_sec", "secondary"))):
        centre = float(out[key]) if _finite(out.get(key)) else 0.0
        dt = (phase - centre) * period
        dt = (dt + 0.5 * period) % period - 0.5 * period
        near = np.abs(dt) < 3 * dur
        hours, f_near = dt[near] * 24, flux[near] * ppm
        series = [f_near]
        if key == "phase_pri":
            o = np.argsort(hours, kind="stable")
            m_hours, m_near = hours[o], model[near][o] * ppm
            series.append(m_near)
        zoom = Panel(page, box, (-3 * dur * 24, 3 * dur * 24), data_limits(series))
        zoom.raster_points(hours, f_near, gray=128)
        if key == "phase_pri":
            zoom.line(m_hours, m_near, rgb=(1, 0, 0))
        zoom.frame(xlabel="hours from event", title=f"{label} (phase {centre:.3f})")

    lines = [f"{k} = {out[k] * (1e6 if k.startswith('sec_depth') else 1):.3f}{' ppm' if k.startswith('sec_depth') else ''}"
             for k in OUTPUT_KEYS if _finite(out.get(k))]
    verdict = ("no model-shift result" if not out["modshift_valid"] else
               f"primary unique: {out['primary_good']} (reason {out['primary_reason']}); "
               f"significant secondary: {out['secondary_good']}; override: {out['override_reason']}")
    page.text(61.2, 205.9, verdict + (" [half period retry]" if out["half_period_retry"] else ""), 8)
    for x0, chunk in zip((61.2, 336.6), (lines[:9], lines[9:])):
        page.lines(x0, 31.7 + 9.6 * (len(chunk) - 1), chunk, size=8, step=9.6, font="F3")
    return build_pdf([page], title=f"TIC {tic} planet {pn} model-shift", creator="astroflow TEC",
                     fonts=("F1", "F3"))


def plot_modshift(path, time, flux, model, period, epoch, out: dict, which: str, tic: int, pn: int) -> None:
    """Write the model-shift page of one TCE (see the module docstring) to ``path``."""
    write_bytes(path, modshift_page(time, flux, model, period, epoch, out, which, tic, pn))
