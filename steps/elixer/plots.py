"""Report images of one detection (runbook 18.2 outputs): ``{detectid}.png/.pdf``, ``_mini.png``,
``_nei.png``.  Matplotlib's object API on the Agg canvas (no pyplot state, safe in workers)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from astroflow.atomic import atomic_path
from steps.elixer.science.spectrum import gaussian

PNG_DPI = 72


def _save(fig: Figure, path: Path, fmt: str) -> None:
    FigureCanvasAgg(fig)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt, dpi=PNG_DPI)


def _spectrum_panels(ax_full, ax_zoom, wave, flam, err, m):
    fit = m["fit"]
    ax_full.plot(wave, flam, lw=0.6, color="k", drawstyle="steps-mid")
    ax_full.plot(wave, err, lw=0.5, color="0.6")
    ax_full.axvline(fit.wave, color="r", lw=0.8)
    for sol in m["solutions"][:1]:
        for ln in sol.lines:
            if ln["found"]:
                ax_full.axvline(ln["wave"], color="b", lw=0.6, ls="--")
                ax_full.text(ln["wave"], ax_full.get_ylim()[1] * 0.9, ln["name"], fontsize=6, color="b", rotation=90)
    ax_full.set_xlabel("wavelength (A)", fontsize=7)
    ax_full.set_ylabel("f_lambda (1e-17 cgs/A)", fontsize=7)
    ax_full.set_xlim(wave[0], wave[-1])
    sel = np.abs(wave - fit.wave) < 40
    ax_zoom.errorbar(wave[sel], flam[sel], err[sel], fmt=".", ms=2, lw=0.5, color="k")
    xs = np.linspace(fit.wave - 40, fit.wave + 40, 200)
    ax_zoom.plot(xs, gaussian(xs, fit.flux, fit.wave, fit.sigma, fit.cont), color="r", lw=1)
    ax_zoom.set_title(f"line {fit.wave:.1f} A  S/N {m['sn']:.1f}  sigma {fit.sigma:.2f} A", fontsize=7)
    for ax in (ax_full, ax_zoom):
        ax.tick_params(labelsize=6)


def _fiber_panel(ax, fibers, title="fibers (weight)"):
    if fibers is None or len(fibers) == 0:
        ax.text(0.5, 0.5, "no fiber table", ha="center", va="center", fontsize=7, transform=ax.transAxes)
        ax.set_axis_off()
        return
    x = np.asarray(fibers["x_ifu"], float) if "x_ifu" in fibers.dtype.names else np.asarray(fibers["ra"], float)
    y = np.asarray(fibers["y_ifu"], float) if "y_ifu" in fibers.dtype.names else np.asarray(fibers["dec"], float)
    w = np.asarray(fibers["weight"], float) if "weight" in fibers.dtype.names else np.ones_like(x)
    ax.scatter(x, y, c=w, s=120, cmap="viridis", edgecolors="k", linewidths=0.3)
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_title(title, fontsize=7)
    ax.tick_params(labelsize=6)


def _text_panel(ax, det, m):
    ax.set_axis_off()
    lines = [
        f"detectid {det['detectid']}   shot {det.get('shotid', '')}",
        f"RA {det.get('ra', float('nan')):.5f}  Dec {det.get('dec', float('nan')):.5f}",
        f"P(LyA) {m['plya']:.3f}   z_best {m['z_best']:.4f} ({m['label']}, p {m['z_best_pz']:.2f})",
        f"PLAE/POII {m['plae']:.3g}  [{m['plae_lo']:.3g}, {m['plae_hi']:.3g}]",
        f"flux {m['fit'].flux:.2f} +- {m['fit'].flux_err:.2f} e-17   EW_rest(LyA) {m['ew_rest_lya']:.1f} A",
        f"g (spectrum) {m['mag_g']:.2f}   slope {m['slope']:.2f}   flags {m['flags']}",
        "votes (1 = LyA):",
    ] + [f"  {v['name']:<15s} {v['vote']:.2f} x {v['weight']:.2f}" for v in m["votes"]]
    ax.text(0.0, 1.0, "\n".join(lines), va="top", ha="left", family="monospace", fontsize=6.5,
            transform=ax.transAxes)


def report_figure(det, wave, flam, err, m, fibers, im2d=None) -> Figure:
    fig = Figure(figsize=(10, 7))
    gs = fig.add_gridspec(3, 3, height_ratios=[1, 1, 1.1])
    fig.suptitle(f"ELiXer (astroflow) report  {det['detectid']}", fontsize=9)
    _text_panel(fig.add_subplot(gs[0, :2]), det, m)
    _fiber_panel(fig.add_subplot(gs[0, 2]), fibers)
    ax2d = fig.add_subplot(gs[1, :2])
    if im2d is not None:
        ax2d.imshow(im2d, origin="lower", aspect="auto", cmap="gray")
        ax2d.set_title("2D cut-out", fontsize=7)
    else:
        ax2d.text(0.5, 0.5, "no 2D cut-out in the detections file", ha="center", va="center", fontsize=7,
                  transform=ax2d.transAxes)
        ax2d.set_axis_off()
    ax_zoom = fig.add_subplot(gs[1, 2])
    _spectrum_panels(fig.add_subplot(gs[2, :]), ax_zoom, wave, flam, err, m)
    fig.subplots_adjust(left=0.06, right=0.97, bottom=0.07, top=0.92, hspace=0.45, wspace=0.3)
    return fig


def mini_figure(det, wave, flam, err, m) -> Figure:
    fig = Figure(figsize=(3.2, 2.4))
    ax = fig.add_subplot(1, 1, 1)
    fit = m["fit"]
    sel = np.abs(wave - fit.wave) < 60
    ax.plot(wave[sel], flam[sel], color="k", lw=0.7, drawstyle="steps-mid")
    ax.axvline(fit.wave, color="r", lw=0.6)
    ax.set_title(f"{det['detectid']}  P(LyA) {m['plya']:.2f}  z {m['z_best']:.3f}", fontsize=7)
    ax.tick_params(labelsize=5)
    fig.subplots_adjust(left=0.12, right=0.97, bottom=0.12, top=0.88)
    return fig


def neighborhood_figure(det, fibers, neighbours, radius: float) -> Figure:
    """Detections of the same file within ``radius`` arcsec (offsets in arcsec) and the fibers."""
    fig = Figure(figsize=(4, 4))
    ax = fig.add_subplot(1, 1, 1)
    ra0, dec0 = float(det.get("ra", 0.0)), float(det.get("dec", 0.0))
    cosd = np.cos(np.radians(dec0))
    if fibers is not None and len(fibers) and "ra" in fibers.dtype.names:
        ax.scatter((fibers["ra"] - ra0) * 3600 * cosd, (fibers["dec"] - dec0) * 3600, s=60, facecolors="none",
                   edgecolors="0.5", linewidths=0.5, label="fibers")
    for nb in neighbours:
        dx, dy = (nb["ra"] - ra0) * 3600 * cosd, (nb["dec"] - dec0) * 3600
        ax.plot(dx, dy, "o", color="tab:orange", ms=4)
        ax.text(dx, dy, f" {nb['detectid']}\n {nb['wave']:.0f}A", fontsize=5)
    ax.plot(0, 0, "r+", ms=10)
    ax.set_xlim(-radius, radius)
    ax.set_ylim(-radius, radius)
    ax.set_aspect("equal")
    ax.set_xlabel("dRA (arcsec)", fontsize=6)
    ax.set_ylabel("dDec (arcsec)", fontsize=6)
    ax.set_title(f"{det['detectid']}: neighbourhood {radius:g}\"", fontsize=7)
    ax.tick_params(labelsize=5)
    return fig


def write_report(path_png: Path | None, path_pdf: Path | None, fig: Figure) -> None:
    if path_png is not None:
        _save(fig, path_png, "png")
    if path_pdf is not None:
        _save(fig, path_pdf, "pdf")
