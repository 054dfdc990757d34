"""Report images of one detection (runbook 18.2 outputs): ``{detectid}.png/.pdf``, ``_mini.png``,
``_nei.png``.  Matplotlib's object API on the Agg canvas (no pyplot state, safe in workers).

Drawing is the cost of a report, so the figures are built once per process
(:func:`painter`) and reused: their axes, labels, fonts and static panels are laid out at
construction; each detection only replaces the data of the artists that change (spectrum, fit,
markers, fibers, the text) and the axis limits, then the canvas renders it.  No per-call style
work, no new figures, no pyplot.  ``report_figure`` / ``mini_figure`` / ``neighborhood_figure``
remain for a one-off figure (a notebook), drawn by the same painter.

Text is most of what Agg spends on these figures (the information panel, the tick labels), and
Matplotlib rasterises every glyph of every string at every draw.  :class:`_GlyphCanvas` keeps the
rasterised glyphs of a process (keyed by font, size, glyph and quarter-pixel position), so a
glyph is rendered by FreeType once and then copied: the same pixels to a quarter of a pixel.
"""

from __future__ import annotations

import io
import math
import struct
import zlib
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg, get_hinting_flag
from matplotlib.font_manager import fontManager as _fontManager
from matplotlib.font_manager import get_font
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, MaxNLocator

try:
    from matplotlib.ft2font import FT2Font, RenderMode
except ImportError:  # an older Matplotlib: no glyph cache
    FT2Font = RenderMode = None

from astroflow.atomic import atomic_path
from steps.elixer.science.spectrum import gaussian

PNG_DPI = 72
MAX_MARKERS = 8  # companion-line markers drawn on the full spectrum


class _GlyphRendererAgg(RendererAgg):
    """RendererAgg whose glyph bitmaps come from a process-wide cache (see the module docstring)."""

    cache: dict = {}

    def _draw_text_glyphs_and_boxes(self, gc, x, y, angle, glyphs, boxes):
        cos, sin = math.cos(math.radians(angle)), math.sin(math.radians(angle))
        load_flags = get_hinting_flag()
        aa = bool(gc.get_antialiased())
        height = self.height
        cache = self.cache
        for font, size, glyph_index, slant, extend, dx, dy in glyphs:
            x64 = round(0x40 * (x + dx * cos - dy * sin))
            y64 = round(0x40 * (height - y + dx * sin + dy * cos))
            ix, fx = divmod(x64, 64)
            iy, fy = divmod(y64, 64)
            fx, fy = fx & ~15, fy & ~15  # quarter pixels
            key = (font.fname, size, self.dpi, glyph_index, slant, extend, angle, fx, fy, aa, load_flags)
            hit = cache.get(key)
            if hit is None:
                font.set_size(size, self.dpi)
                font._set_transform((0x10000 * np.array([[cos, -sin], [sin, cos]])
                                     @ [[extend, extend * slant], [0, 1]]).round().astype(int), [fx, fy])
                bitmap = font._render_glyph(glyph_index, load_flags, RenderMode.NORMAL if aa else RenderMode.MONO)
                buf = np.array(bitmap.buffer, copy=True)
                if not aa:
                    buf *= 0xff
                hit = cache[key] = (buf, bitmap.left, bitmap.top)
            buf, left, top = hit
            self._renderer.draw_text_image(buf, left + ix, int(height) - (top + iy) + buf.shape[0], 0, gc)
        if boxes:
            super()._draw_text_glyphs_and_boxes(gc, x, y, angle, (), boxes)

    layouts: dict = {}
    fonts: dict = {}
    heights: dict = {}

    def _font_files(self, prop):
        key = hash(prop)
        hit = self.fonts.get(key)
        if hit is None or hit[0] != prop:
            hit = self.fonts[key] = (prop.copy(), tuple(_fontManager._find_fonts_by_props(prop)))
        return hit[1]

    def _prepare_font(self, font_prop):
        font = get_font(self._font_files(font_prop))
        font.clear()
        font.set_size(font_prop.get_size_in_points(), self.dpi)
        return font

    def _get_font_height_metrics(self, prop):
        """The font's ascent, descent and line gap in pixels (what ``Text._get_layout`` otherwise reads
        from the font tables at every draw), once per font, size and dpi."""
        key = (self._font_files(prop), prop.get_size_in_points(), self.dpi)
        hit = self.heights.get(key)
        if hit is None:
            font = get_font(key[0])
            hit = (None, None, None)
            for table_name, gap, asc, desc in (("OS/2", "sTypoLineGap", "sTypoAscender", "sTypoDescender"),
                                               ("hhea", "lineGap", "ascent", "descent")):
                table = font.get_sfnt_table(table_name)
                if table is None:
                    continue
                scale = 1 / font.get_sfnt_table("head")["unitsPerEm"] * key[1] * self.dpi / 72
                hit = (table[asc] * scale, -table[desc] * scale, table[gap] * scale)
                break
            self.heights[key] = hit
        return hit

    def draw_text(self, gc, x, y, s, prop, angle, ismath=False, mtext=None):
        if ismath or (mtext is not None and (mtext.get_fontfeatures() or mtext.get_language())):
            return super().draw_text(gc, x, y, s, prop, angle, ismath, mtext)
        font = self._prepare_font(prop)
        key = (s, font.fname, prop.get_size_in_points(), self.dpi, get_hinting_flag())
        items = self.layouts.get(key)
        if items is None:
            if len(self.layouts) > 20000:
                self.layouts.clear()
            items = self.layouts[key] = [(it.ft_object, it.glyph_index, it.x, it.y)
                                         for it in font._layout(s, flags=get_hinting_flag())]
        size = prop.get_size_in_points()
        self._draw_text_glyphs_and_boxes(gc, x, y, angle, ((f, size, g, 0, 1, dx, dy) for f, g, dx, dy in items), [])


class _GlyphCanvas(FigureCanvasAgg):
    def get_renderer(self):
        w, h = self.get_width_height(physical=True)
        key = w, h, self.figure.dpi
        if self._lastKey != key:
            self.renderer = _GlyphRendererAgg(w, h, self.figure.dpi)
            self._lastKey = key
        return self.renderer


class _MonoPanel:
    """Lines of monospace text composed from a glyph atlas into an image (the information panel's
    PNG): FreeType renders each character once per process; a panel costs array copies, not text
    layout.  The PDF keeps the vector text."""

    def __init__(self, size_pt: float, dpi: float):
        from matplotlib.font_manager import FontProperties, findfont

        self.font = font = get_font(findfont(FontProperties(family="monospace", size=size_pt)))
        font.set_size(size_pt, dpi)
        self.flags = get_hinting_flag()
        self.advance = max(1, int(round(font.load_char(ord("M"), flags=self.flags).horiAdvance / 64)))
        scale = size_pt * dpi / 72 / font.units_per_EM
        self.ascent = int(math.ceil(font.ascender * scale))
        self.line = int(round(1.2 * (font.ascender - font.descender) * scale))
        self.glyphs: dict[str, tuple] = {}

    def _glyph(self, ch: str):
        hit = self.glyphs.get(ch)
        if hit is None:
            font = self.font
            font._set_transform(np.array([[0x10000, 0], [0, 0x10000]]), [0, 0])
            bm = font._render_glyph(font.get_char_index(ord(ch)), self.flags, RenderMode.NORMAL)
            hit = self.glyphs[ch] = (np.array(bm.buffer, copy=True), int(bm.left), int(bm.top))
        return hit

    def image(self, lines: list[str]) -> np.ndarray:
        """RGBA (black text, coverage in alpha) of ``lines``."""
        width = self.advance * (max((len(t) for t in lines), default=1) + 1)
        height = self.line * len(lines) + self.line
        cov = np.zeros((height, width), np.uint8)
        for row, text in enumerate(lines):
            base = self.ascent + row * self.line
            for col, ch in enumerate(text):
                if ch == " ":
                    continue
                buf, left, top = self._glyph(ch)
                y0, x0 = base - top, col * self.advance + left
                h, w = buf.shape
                if h == 0 or w == 0 or y0 < 0 or x0 < 0 or y0 + h > height or x0 + w > width:
                    continue
                np.maximum(cov[y0:y0 + h, x0:x0 + w], buf, out=cov[y0:y0 + h, x0:x0 + w])
        rgba = np.zeros((height, width, 4), np.uint8)
        rgba[:, :, 3] = cov
        return rgba


def _canvas(fig: Figure):
    """The glyph-caching canvas where this Matplotlib has the private API it relies on, else plain Agg."""
    ok = FT2Font is not None and all(hasattr(x, a) for x, a in (
        (RendererAgg, "_draw_text_glyphs_and_boxes"), (RendererAgg, "_prepare_font"), (FT2Font, "_render_glyph"),
        (FT2Font, "_set_transform"), (FT2Font, "_layout")))
    return _GlyphCanvas(fig) if ok else FigureCanvasAgg(fig)


def _write(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(data)


def _limits(lo, hi, pad=0.08):
    if not (np.isfinite(lo) and np.isfinite(hi)) or hi <= lo:
        return -1.0, 1.0
    d = (hi - lo) * pad
    return lo - d, hi + d


def _robust_range(y):
    """From the 0.5th percentile (a few bad pixels below do not squash the plot) to the maximum (the line)."""
    y = y[np.isfinite(y)]
    if not y.size:
        return -1.0, 1.0
    return float(np.percentile(y, 0.5)), float(np.max(y))


class ReportPainter:
    """The three report figures, built once; :meth:`report`, :meth:`mini`, :meth:`neighbourhood`
    redraw only their changing artists and write the files atomically."""

    def __init__(self):
        # --- the main report: text, fibers, 2-D placeholder, zoom, full spectrum -------------------
        fig = Figure(figsize=(10, 7), dpi=PNG_DPI)
        _canvas(fig)
        gs = fig.add_gridspec(3, 3, height_ratios=[1, 1, 1.1])
        ax_text = fig.add_subplot(gs[0, :2])
        ax_text.set_axis_off()
        # the title belongs to an Axes (not the Figure) so that it can be one of the redrawn artists
        self.title = ax_text.text(0.5, 0.98, "", fontsize=9, ha="center", va="top", transform=fig.transFigure)
        self.text = ax_text.text(0.0, 1.0, "", va="top", ha="left", family="monospace", fontsize=6.5,
                                 transform=ax_text.transAxes)
        self.ax_text = ax_text
        self.panel = _MonoPanel(6.5, PNG_DPI) if isinstance(fig.canvas, _GlyphCanvas) else None
        self.panel_image = fig.figimage(np.zeros((1, 1, 4), np.uint8), origin="upper", animated=True)
        self.ax_fib = fig.add_subplot(gs[0, 2])
        self.ax_fib.set_title("fibers (weight)", fontsize=7)
        self.ax_fib.tick_params(labelsize=6)
        self.fib = self.ax_fib.scatter([], [], c=[], s=120, cmap="viridis", edgecolors="k", linewidths=0.3)
        self.no_fib = self.ax_fib.text(0.5, 0.5, "no fiber table", ha="center", va="center", fontsize=7,
                                       transform=self.ax_fib.transAxes, visible=False)
        ax2d = fig.add_subplot(gs[1, :2])
        ax2d.text(0.5, 0.5, "no 2D cut-out in the detections file", ha="center", va="center", fontsize=7,
                  transform=ax2d.transAxes)
        ax2d.set_axis_off()
        self.ax_zoom = ax_zoom = fig.add_subplot(gs[1, 2])
        self.zoom_pts, = ax_zoom.plot([], [], ".", ms=2, color="k")
        self.zoom_err = LineCollection([], colors="k", linewidths=0.5)
        ax_zoom.add_collection(self.zoom_err)
        self.zoom_fit, = ax_zoom.plot([], [], color="r", lw=1)
        self.zoom_title = ax_zoom.set_title("", fontsize=7)
        ax_zoom.tick_params(labelsize=6)
        self.ax_full = ax_full = fig.add_subplot(gs[2, :])
        self.full_flux, = ax_full.plot([], [], lw=0.6, color="k", drawstyle="steps-mid")
        self.full_err, = ax_full.plot([], [], lw=0.5, color="0.6")
        self.full_line = ax_full.axvline(0, color="r", lw=0.8)
        self.markers = [ax_full.axvline(0, color="b", lw=0.6, ls="--", visible=False) for _ in range(MAX_MARKERS)]
        self.marker_text = [ax_full.text(0, 0, "", fontsize=6, color="b", rotation=90, visible=False)
                            for _ in range(MAX_MARKERS)]
        ax_full.xaxis.set_major_locator(FixedLocator(np.arange(3500.0, 5501.0, 250.0)))
        self.full_range = (3470.0, 3470.0 + 2.0 * 1035)  # the HETDEX grid; another one redraws the background
        ax_full.set_xlim(*self.full_range)
        ax_full.set_xlabel("wavelength (A)", fontsize=7)
        ax_full.set_ylabel("f_lambda (1e-17 cgs/A)", fontsize=7)
        ax_full.tick_params(labelsize=6)
        for ax in (self.ax_fib, ax_zoom, ax_full):
            ax.yaxis.set_major_locator(MaxNLocator(5))
        for ax in (self.ax_fib, ax_zoom):
            ax.xaxis.set_major_locator(MaxNLocator(5))
        fig.subplots_adjust(left=0.06, right=0.97, bottom=0.07, top=0.92, hspace=0.45, wspace=0.3)
        self.fig = fig
        pos = self.ax_fib.get_position()
        self.fib_box = (pos.width * fig.get_figwidth(), pos.height * fig.get_figheight())
        # what changes from one detection to the next, drawn over a background of the rest (blitting);
        # animated artists are still drawn when a figure is saved (the PDF)
        self.dynamic = [self.fib, self.zoom_err, self.zoom_pts, self.zoom_fit, self.full_err, self.full_flux,
                        self.full_line, *self.markers, self.ax_fib.xaxis, self.ax_fib.yaxis, self.ax_zoom.xaxis,
                        self.ax_zoom.yaxis, self.ax_full.yaxis, self.title, self.text, self.no_fib, self.zoom_title,
                        *self.marker_text]
        for a in self.dynamic:
            a.set_animated(True)
        self._background = None
        # --- the mini image ------------------------------------------------------------------------
        mini = Figure(figsize=(3.2, 2.4), dpi=PNG_DPI)
        _canvas(mini)
        ax = mini.add_subplot(1, 1, 1)
        self.mini_flux, = ax.plot([], [], color="k", lw=0.7, drawstyle="steps-mid")
        self.mini_line = ax.axvline(0, color="r", lw=0.6)
        self.mini_title = ax.set_title("", fontsize=7)
        ax.tick_params(labelsize=5)
        mini.subplots_adjust(left=0.12, right=0.97, bottom=0.12, top=0.88)
        self.mini_fig, self.ax_mini = mini, ax
        # --- the neighbourhood ---------------------------------------------------------------------
        nei = Figure(figsize=(4, 4), dpi=PNG_DPI)
        _canvas(nei)
        ax = nei.add_subplot(1, 1, 1)
        self.nei_fib = ax.scatter([], [], s=60, facecolors="none", edgecolors="0.5", linewidths=0.5, label="fibers")
        self.nei_pts, = ax.plot([], [], "o", color="tab:orange", ms=4)
        self.nei_labels: list = []
        ax.plot(0, 0, "r+", ms=10)
        ax.set_aspect("equal")
        ax.set_xlabel("dRA (arcsec)", fontsize=6)
        ax.set_ylabel("dDec (arcsec)", fontsize=6)
        self.nei_title = ax.set_title("", fontsize=7)
        ax.tick_params(labelsize=5)
        self.nei_fig, self.ax_nei = nei, ax
        _quiet_core_fonts()
        _afm_font_once()

    # --- the main report ---------------------------------------------------------------------------
    def _update_report(self, det, wave, flam, err, m, fibers):
        fit = m["fit"]
        self.title.set_text(f"ELiXer (astroflow) report  {det['detectid']}")
        lines = _text_lines(det, m)
        self.text.set_text("\n".join(lines))
        if self.panel is not None:
            self.panel_image.set_data(self.panel.image(lines))
        # fibers
        if fibers is None or len(fibers) == 0:
            self.fib.set_visible(False)
            self.no_fib.set_visible(True)
            self.ax_fib.xaxis.set_visible(False)
            self.ax_fib.yaxis.set_visible(False)
        else:
            names = fibers.dtype.names
            x = np.asarray(fibers["x_ifu"] if "x_ifu" in names else fibers["ra"], float)
            y = np.asarray(fibers["y_ifu"] if "y_ifu" in names else fibers["dec"], float)
            w = np.asarray(fibers["weight"], float) if "weight" in names else np.ones_like(x)
            self.fib.set_offsets(np.column_stack([x, y]))
            self.fib.set_array(w)
            self.fib.set_clim(np.nanmin(w), np.nanmax(w) if np.nanmax(w) > np.nanmin(w) else np.nanmin(w) + 1)
            self.fib.set_visible(True)
            self.no_fib.set_visible(False)
            self.ax_fib.xaxis.set_visible(True)
            self.ax_fib.yaxis.set_visible(True)
            cx, cy = np.nanmean(x), np.nanmean(y)
            half = max(np.nanmax(np.abs(x - cx)), np.nanmax(np.abs(y - cy)), 1.0) * 1.25
            bw, bh = self.fib_box  # equal scales on both axes, as an equal aspect would
            self.ax_fib.set_xlim(cx - half * max(1.0, bw / bh), cx + half * max(1.0, bw / bh))
            self.ax_fib.set_ylim(cy - half * max(1.0, bh / bw), cy + half * max(1.0, bh / bw))
        # zoom on the line
        sel = np.abs(wave - fit.wave) < 40
        ws, fs, es = wave[sel], flam[sel], err[sel]
        self.zoom_pts.set_data(ws, fs)
        self.zoom_err.set_segments(np.stack([np.column_stack([ws, fs - es]), np.column_stack([ws, fs + es])], axis=1))
        xs = np.linspace(fit.wave - 40, fit.wave + 40, 200)
        model = gaussian(xs, fit.flux, fit.wave, fit.sigma, fit.cont)
        self.zoom_fit.set_data(xs, model)
        lo = np.nanmin(np.r_[fs - es, model]) if fs.size else -1.0
        hi = np.nanmax(np.r_[fs + es, model]) if fs.size else 1.0
        self.ax_zoom.set_xlim(fit.wave - 42, fit.wave + 42)
        self.ax_zoom.set_ylim(*_limits(lo, hi))
        self.zoom_title.set_text(f"line {fit.wave:.1f} A  S/N {m['sn']:.1f}  sigma {fit.sigma:.2f} A")
        # the full spectrum
        self.full_flux.set_data(wave, flam)
        self.full_err.set_data(wave, err)
        self.full_line.set_xdata([fit.wave, fit.wave])
        ylo, yhi = _limits(*_robust_range(np.r_[flam, err]), pad=0.05)
        if (float(wave[0]), float(wave[-1])) != self.full_range:
            self.full_range = (float(wave[0]), float(wave[-1]))
            self.ax_full.set_xlim(*self.full_range)
            self._background = None
        self.ax_full.set_ylim(ylo, yhi)
        found = [ln for sol in m["solutions"][:1] for ln in sol.lines if ln["found"]][:MAX_MARKERS]
        for k, (mk, tx) in enumerate(zip(self.markers, self.marker_text)):
            if k < len(found):
                mk.set_xdata([found[k]["wave"], found[k]["wave"]])
                tx.set_position((found[k]["wave"], yhi * 0.9))
                tx.set_text(found[k]["name"])
            mk.set_visible(k < len(found))
            tx.set_visible(k < len(found))

    def report(self, path_png: Path | None, path_pdf: Path | None, det, wave, flam, err, m, fibers) -> None:
        """Write ``{detectid}.png`` and/or ``.pdf`` (either may be None)."""
        self._update_report(det, wave, flam, err, m, fibers)
        if path_png is not None:
            _write(path_png, self._blit_png())
        if path_pdf is not None:
            _write(path_pdf, _render(self.fig, "pdf"))

    def _blit_png(self) -> bytes:
        """Only the panels' changing artists, drawn over the cached background of the rest."""
        canvas = self.fig.canvas
        if self._background is None:
            canvas.draw()  # everything but the animated artists
            self._background = canvas.copy_from_bbox(self.fig.bbox)
        else:
            canvas.restore_region(self._background)
        renderer = canvas.get_renderer()
        for a in self.dynamic:
            if a.get_visible() and not (a is self.text and self.panel is not None):
                a.draw(renderer)
        if self.panel is not None:  # the information panel from the glyph atlas, at the text's place
            bbox = self.ax_text.bbox
            self.panel_image.ox = int(round(bbox.x0))
            self.panel_image.oy = int(round(bbox.y1)) - self.panel_image.get_array().shape[0]
            self.panel_image.draw(renderer)
        return png_bytes(np.asarray(canvas.buffer_rgba()))

    # --- mini -------------------------------------------------------------------------------------
    def _update_mini(self, det, wave, flam, err, m):
        fit = m["fit"]
        sel = np.abs(wave - fit.wave) < 60
        self.mini_flux.set_data(wave[sel], flam[sel])
        self.mini_line.set_xdata([fit.wave, fit.wave])
        self.ax_mini.set_xlim(fit.wave - 61, fit.wave + 61)
        self.ax_mini.set_ylim(*_limits(*_robust_range(flam[sel]), pad=0.08))
        self.mini_title.set_text(f"{det['detectid']}  P(LyA) {m['plya']:.2f}  z {m['z_best']:.3f}")

    def mini(self, path_png: Path, det, wave, flam, err, m) -> None:
        self._update_mini(det, wave, flam, err, m)
        _write(path_png, _render(self.mini_fig, "png"))

    # --- neighbourhood ----------------------------------------------------------------------------
    def _update_nei(self, det, fibers, neighbours, radius):
        ra0, dec0 = float(det.get("ra", 0.0)), float(det.get("dec", 0.0))
        cosd = np.cos(np.radians(dec0))
        if fibers is not None and len(fibers) and "ra" in fibers.dtype.names:
            self.nei_fib.set_offsets(np.column_stack([(fibers["ra"] - ra0) * 3600 * cosd, (fibers["dec"] - dec0) * 3600]))
        else:
            self.nei_fib.set_offsets(np.zeros((0, 2)))
        dx = np.array([(nb["ra"] - ra0) * 3600 * cosd for nb in neighbours])
        dy = np.array([(nb["dec"] - dec0) * 3600 for nb in neighbours])
        self.nei_pts.set_data(dx, dy)
        for t in self.nei_labels:
            t.remove()
        self.nei_labels = [self.ax_nei.text(x, y, f" {nb['detectid']}\n {nb['wave']:.0f}A", fontsize=5)
                           for x, y, nb in zip(dx, dy, neighbours)]
        self.ax_nei.set_xlim(-radius, radius)
        self.ax_nei.set_ylim(-radius, radius)
        self.nei_title.set_text(f"{det['detectid']}: neighbourhood {radius:g}\"")

    def neighbourhood(self, path_png: Path, det, fibers, neighbours, radius: float) -> None:
        self._update_nei(det, fibers, neighbours, radius)
        _write(path_png, _render(self.nei_fig, "png"))


# PDFs use the standard PDF fonts (Helvetica, Courier): no font program to build and embed per file
PDF_RC = {"pdf.use14corefonts": True, "pdf.compression": 6}


def _afm_font_once() -> None:
    """Matplotlib's PDF writer parses a core font's whole AFM file (kerning pairs and all) for each
    PDF only to read its name; read it from the AFM cache that the text metrics already use.
    The same font dictionary is written."""
    try:
        from matplotlib.backends import backend_pdf
        from matplotlib.backends._backend_pdf_ps import _cached_get_afm_from_fname
    except ImportError:
        return
    pdf_file = backend_pdf.PdfFile
    if getattr(pdf_file, "_astroflow_afm_cached", False) or not hasattr(pdf_file, "_write_afm_font"):
        return

    def _write_afm_font(self, filename):
        fontdict = {"Type": backend_pdf.Name("Font"), "Subtype": backend_pdf.Name("Type1"),
                    "BaseFont": backend_pdf.Name(_cached_get_afm_from_fname(filename).get_fontname()),
                    "Encoding": backend_pdf.Name("WinAnsiEncoding")}
        obj = self.reserveObject("font dictionary")
        self.writeObject(obj, fontdict)
        return obj

    pdf_file._write_afm_font = _write_afm_font
    pdf_file._astroflow_afm_cached = True


def png_bytes(rgba: np.ndarray, level: int = 1) -> bytes:
    """An 8-bit RGB PNG of an RGBA buffer (opaque figures): no filter, zlib ``level``; twice as fast
    as PIL's encoder for the same size."""
    h, w = rgba.shape[:2]
    rows = np.empty((h, 1 + 3 * w), np.uint8)
    rows[:, 0] = 0  # filter type none
    rows[:, 1:] = rgba[:, :, :3].reshape(h, 3 * w)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows.tobytes(), level)) + chunk(b"IEND", b""))


def _render(fig: Figure, fmt: str) -> bytes:
    buf = io.BytesIO()
    if fmt == "png":
        fig.canvas.draw()
        return png_bytes(np.asarray(fig.canvas.buffer_rgba()))
    else:
        with matplotlib.rc_context(PDF_RC):
            fig.savefig(buf, format="pdf", dpi=PNG_DPI, metadata={"Creator": None, "Producer": None, "CreationDate": None})
    return buf.getvalue()


class _NoHelveticaWeightWarning:
    """Drop font_manager's warning that the core fonts have no 'normal' weight (their AFMs say 'Medium')."""

    def filter(self, record) -> bool:
        msg = record.getMessage()
        return not (msg.startswith("findfont: Failed to find font weight normal for") and "now using medium" in msg)


def _quiet_core_fonts() -> None:
    import logging

    log = logging.getLogger("matplotlib.font_manager")
    if not any(isinstance(f, _NoHelveticaWeightWarning) for f in log.filters):
        log.addFilter(_NoHelveticaWeightWarning())


def _text_lines(det, m) -> list[str]:
    lines = [
        f"detectid {det['detectid']}   shot {det.get('shotid', '')}",
        f"RA {det.get('ra', float('nan')):.5f}  Dec {det.get('dec', float('nan')):.5f}",
        f"P(LyA) {m['plya']:.3f}   z_best {m['z_best']:.4f} ({m['label']}, p {m['z_best_pz']:.2f})",
        f"PLAE/POII {m['plae']:.3g}  [{m['plae_lo']:.3g}, {m['plae_hi']:.3g}]",
        f"flux {m['fit'].flux:.2f} +- {m['fit'].flux_err:.2f} e-17   EW_rest(LyA) {m['ew_rest_lya']:.1f} A",
        f"g (spectrum) {m['mag_g']:.2f}   slope {m['slope']:.2f}   flags {m['flags']}",
        "votes (1 = LyA; ln L(LyA)/L(OII)):",
    ]
    for v in m["votes"]:
        lines.append(f"  {v['name']:<16s} {v['vote']:.2f} x {v['weight']:.2f}   ln {v.get('ln_lr', float('nan')):+.2f}")
    return lines


_PAINTER: ReportPainter | None = None


def painter() -> ReportPainter:
    """The process's painter (built on first use; workers keep it across shards)."""
    global _PAINTER
    if _PAINTER is None:
        _PAINTER = ReportPainter()
    return _PAINTER


# --- one-off figures (the first version's API, drawn by the painter) ----------------------------------
class _Drawn:
    """A figure already updated for one detection: ``write_report`` renders it."""

    def __init__(self, fig: Figure):
        self.fig = fig


def report_figure(det, wave, flam, err, m, fibers, im2d=None) -> _Drawn:
    pt = painter()
    pt._update_report(det, wave, flam, err, m, fibers)
    return _Drawn(pt.fig)


def mini_figure(det, wave, flam, err, m) -> _Drawn:
    pt = painter()
    pt._update_mini(det, wave, flam, err, m)
    return _Drawn(pt.mini_fig)


def neighborhood_figure(det, fibers, neighbours, radius: float) -> _Drawn:
    pt = painter()
    pt._update_nei(det, fibers, neighbours, radius)
    return _Drawn(pt.nei_fig)


def write_report(path_png: Path | None, path_pdf: Path | None, fig) -> None:
    fig = fig.fig if isinstance(fig, _Drawn) else fig
    if path_png is not None:
        _write(path_png, painter()._blit_png() if _PAINTER is not None and fig is _PAINTER.fig else _render(fig, "png"))
    if path_pdf is not None:
        _write(path_pdf, _render(fig, "pdf"))
