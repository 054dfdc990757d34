"""A tiny PDF writer for TEC's figure pages: text in the standard fonts, vector lines and dots,
raw images, plot panels with ticks.  No matplotlib.

Why: with matplotlib 3.11 a page of three panels costs 0.1-0.4 s (per-artist layout, ticks,
font subsetting per file), which made the model-shift figures half of a full-sector run; a page
here takes a few milliseconds.  Text stays extractable (pypdf, pdftotext); the fonts
(Helvetica, Helvetica-Bold, Courier) are the PDF standard fonts, not embedded.  The simulator's
DV reports (``simulate_pdf``) are written with the same writer.
"""

from __future__ import annotations

import io
import math
import zlib

import numpy as np

PAGE_W, PAGE_H = 612.0, 792.0

# Helvetica advance widths (1/1000 em) for ASCII 32..126, from the standard AFM metrics.
_HELV = [278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, 556, 556, 556, 556,
         556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556, 1015, 667, 667, 722, 722, 667, 611, 778,
         722, 278, 500, 667, 556, 833, 722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278,
         278, 278, 469, 556, 333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556,
         556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584]
FONTS = {"F1": "Helvetica", "F2": "Helvetica-Bold", "F3": "Courier"}


def text_width(s: str, size: float, font: str = "F1") -> float:
    """Advance width (points) of s in a standard font (Helvetica-Bold measured as Helvetica)."""
    if font == "F3":
        return 0.6 * size * len(s)
    return sum(_HELV[ord(c) - 32] if 32 <= ord(c) < 127 else 556 for c in s) * size / 1000.0


def _esc(s: str) -> str:
    s = s.encode("latin-1", "replace").decode("latin-1")
    return s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


_VIRIDIS = np.array([[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], float)


def _colormap(img: np.ndarray) -> np.ndarray:
    """Map an image to RGB bytes (a 5-anchor viridis)."""
    a = np.where(np.isfinite(img), img, np.nan)
    lo, hi = np.nanmin(a), np.nanmax(a)
    x = np.nan_to_num((a - lo) / (hi - lo) if hi > lo else a * 0, nan=0.0) * (len(_VIRIDIS) - 1)
    i = np.clip(np.floor(x).astype(int), 0, len(_VIRIDIS) - 2)
    f = (x - i)[..., None]
    rgb = _VIRIDIS[i] * (1 - f) + _VIRIDIS[i + 1] * f
    return rgb.astype(np.uint8)


def _rgb(c) -> str:
    return f"{c[0]:g} {c[1]:g} {c[2]:g}"


class Page:
    """One page: a list of content-stream operators and its images."""

    def __init__(self) -> None:
        self.ops: list[str] = []
        self.images: list[np.ndarray] = []
        self.links: list[tuple[float, float, float, float, str]] = []

    def link(self, x: float, y: float, w: float, h: float, url: str) -> None:
        """A clickable rectangle opening ``url`` (a PDF link annotation)."""
        self.links.append((x, y, w, h, url))

    def text(self, x: float, y: float, s: str, size: float = 10, bold: bool = False, align: str = "left",
             font: str | None = None, rgb=None) -> None:
        font = font or ("F2" if bold else "F1")
        if align == "center":
            x -= text_width(s, size, font) / 2
        elif align == "right":
            x -= text_width(s, size, font)
        colour = f"{_rgb(rgb)} rg " if rgb is not None else ""
        self.ops.append(f"BT {colour}/{font} {size:g} Tf 1 0 0 1 {x:.2f} {y:.2f} Tm ({_esc(s)}) Tj ET")

    def lines(self, x: float, y: float, lines: list[str], size: float = 10, step: float = 12.7,
              font: str = "F1") -> float:
        """Left-aligned lines going down from y; returns the y of the next line."""
        for s in lines:
            self.text(x, y, s, size, font=font)
            y -= step
        return y

    def polyline(self, xs, ys, width: float = 1.0, rgb=(0, 0, 0), dash: tuple | None = None) -> None:
        if len(xs) < 2:
            return
        pts = " ".join(f"{x:.2f} {y:.2f} l" for x, y in zip(xs[1:], ys[1:]))
        d = f"[{' '.join(f'{v:g}' for v in dash)}] 0 d " if dash else ""
        self.ops.append(f"q {rgb[0]:g} {rgb[1]:g} {rgb[2]:g} RG {width:g} w {d}{xs[0]:.2f} {ys[0]:.2f} m {pts} S Q")

    def dots(self, xs, ys, size: float = 1.6, gray: float = 0.35) -> None:
        h = size / 2
        body = " ".join(f"{x - h:.2f} {y - h:.2f} {size:g} {size:g} re" for x, y in zip(xs, ys))
        self.ops.append(f"q {gray:g} g {body} f Q")

    def rect(self, x: float, y: float, w: float, h: float, width: float = 0.8) -> None:
        self.ops.append(f"q 0 G {width:g} w {x:.2f} {y:.2f} {w:.2f} {h:.2f} re S Q")

    def clip(self, x: float, y: float, w: float, h: float) -> None:
        """Clip what follows to a rectangle until ``unclip``."""
        self.ops.append(f"q {x:.2f} {y:.2f} {w:.2f} {h:.2f} re W n")

    def unclip(self) -> None:
        self.ops.append("Q")

    def image(self, x: float, y: float, w: float, h: float, img: np.ndarray) -> None:
        """Draw a 2-D array (row 0 at the top) with a viridis colour map."""
        self.images.append(_colormap(img))
        self.ops.append(f"q {w:.2f} 0 0 {h:.2f} {x:.2f} {y:.2f} cm /Im{len(self.images) - 1} Do Q")

    def gray_image(self, x: float, y: float, w: float, h: float, img: np.ndarray) -> None:
        """Draw a 2-D uint8 gray image (row 0 at the top, 255 white) as is."""
        self.images.append(np.ascontiguousarray(img, dtype=np.uint8))
        self.ops.append(f"q {w:.2f} 0 0 {h:.2f} {x:.2f} {y:.2f} cm /Im{len(self.images) - 1} Do Q")


def build_pdf(pages: list[Page], title: str = "", creator: str = "", fonts: tuple[str, ...] = ("F1", "F2")) -> bytes:
    """Serialise pages into a PDF 1.4 file (standard fonts, not embedded)."""
    objs: list[bytes] = []  # object i has number i + 1

    def add(body: bytes) -> int:
        objs.append(body)
        return len(objs)

    catalog = add(b"")  # filled below
    pages_obj = add(b"")
    font_objs = {f: add(f"<< /Type /Font /Subtype /Type1 /BaseFont /{FONTS[f]} /Encoding /WinAnsiEncoding >>"
                        .encode()) for f in fonts}
    kids = []
    for p in pages:
        xobj = []
        for i, img in enumerate(p.images):
            data = zlib.compress(img.tobytes(), 6)
            space = "DeviceRGB" if img.ndim == 3 else "DeviceGray"
            n = add(b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /%s "
                    b"/BitsPerComponent 8 /Interpolate false /Filter /FlateDecode /Length %d >>\nstream\n"
                    % (img.shape[1], img.shape[0], space.encode(), len(data)) + data + b"\nendstream")
            xobj.append(f"/Im{i} {n} 0 R")
        content = zlib.compress("\n".join(p.ops).encode("latin-1"), 6)
        c = add(b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(content) + content + b"\nendstream")
        font_res = " ".join(f"/{f} {n} 0 R" for f, n in font_objs.items())
        res = f"<< /Font << {font_res} >> /XObject << {' '.join(xobj)} >> >>"
        annots = [add(f"<< /Type /Annot /Subtype /Link /Rect [{x:.2f} {y:.2f} {x + w:.2f} {y + h:.2f}] /Border [0 0 0] "
                      f"/A << /S /URI /URI ({_esc(url)}) >> >>".encode()) for x, y, w, h, url in p.links]
        annot = f" /Annots [{' '.join(f'{a} 0 R' for a in annots)}]" if annots else ""
        kids.append(add(f"<< /Type /Page /Parent {pages_obj} 0 R /MediaBox [0 0 {PAGE_W:g} {PAGE_H:g}] "
                        f"/Resources {res} /Contents {c} 0 R{annot} >>".encode()))
    objs[pages_obj - 1] = (f"<< /Type /Pages /Kids [{' '.join(f'{k} 0 R' for k in kids)}] /Count {len(kids)} >>"
                           .encode())
    objs[catalog - 1] = f"<< /Type /Catalog /Pages {pages_obj} 0 R >>".encode()
    info = add(f"<< /Title ({_esc(title)}) /Creator ({_esc(creator)}) /Producer (astroflow) >>".encode())
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objs, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % i + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1))
    out.write(b"".join(b"%010d 00000 n \n" % o for o in offsets))
    out.write(b"trailer\n<< /Size %d /Root %d 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n"
              % (len(objs) + 1, catalog, info, xref))
    return out.getvalue()


# -- plot panels -----------------------------------------------------------------------------


def nice_ticks(lo: float, hi: float, n: int = 5) -> np.ndarray:
    """About n round tick values (1, 2, 2.5, 5 x 10^k steps) within [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return np.array([lo]) if math.isfinite(lo) else np.zeros(0)
    raw = (hi - lo) / max(n, 1)
    mag = 10.0 ** math.floor(math.log10(raw))
    step = next(s * mag for s in (1.0, 2.0, 2.5, 5.0, 10.0) if s * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks = np.arange(first, hi + step * 1e-9, step)
    return np.where(np.abs(ticks) < step * 1e-9, 0.0, ticks)


def tick_label(v: float, step: float) -> str:
    """A tick value with as many decimals as its step needs."""
    if step <= 0 or not math.isfinite(step):
        return f"{v:g}"
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    if step * 10 ** decimals % 1 > 1e-6:  # 2.5 x 10^k steps need one more
        decimals += 1
    return f"{v:.{decimals}f}"


def data_limits(values, pad: float = 0.05) -> tuple[float, float]:
    """Finite min/max of values, widened by pad of the range on each side (a unit range if empty)."""
    parts = [np.asarray(x, float).ravel() for x in values]
    arr = np.concatenate(parts) if parts else np.zeros(0)
    arr = arr[np.isfinite(arr)]
    if not arr.size:
        return -1.0, 1.0
    lo, hi = float(arr.min()), float(arr.max())
    if hi <= lo:
        d = abs(lo) * 0.05 or 1.0
        return lo - d, hi + d
    d = (hi - lo) * pad
    return lo - d, hi + d


class Panel:
    """A rectangle of the page (points) showing data coordinates [x0, x1] x [y0, y1]."""

    def __init__(self, page: Page, box: tuple[float, float, float, float], xlim, ylim) -> None:
        self.page = page
        self.x, self.y, self.w, self.h = box
        self.xlim, self.ylim = (float(xlim[0]), float(xlim[1])), (float(ylim[0]), float(ylim[1]))

    def px(self, x) -> np.ndarray:
        return self.x + (np.asarray(x, float) - self.xlim[0]) / (self.xlim[1] - self.xlim[0]) * self.w

    def py(self, y) -> np.ndarray:
        return self.y + (np.asarray(y, float) - self.ylim[0]) / (self.ylim[1] - self.ylim[0]) * self.h

    def _inside(self, x, y):
        x, y = np.asarray(x, float), np.asarray(y, float)
        ok = np.isfinite(x) & np.isfinite(y)
        return x[ok], y[ok]

    def raster_points(self, x, y, gray: int = 153, px_per_pt: float = 1.5, size_px: int = 2) -> None:
        """Many points as one gray image (white background) filling the panel."""
        x, y = self._inside(x, y)
        w, h = max(int(self.w * px_per_pt), 1), max(int(self.h * px_per_pt), 1)
        img = np.full((h, w), 255, dtype=np.uint8)
        col = np.floor((x - self.xlim[0]) / (self.xlim[1] - self.xlim[0]) * w).astype(np.int64)
        row = np.floor((self.ylim[1] - y) / (self.ylim[1] - self.ylim[0]) * h).astype(np.int64)
        for dr in range(size_px):
            for dc in range(size_px):
                r, c = row + dr - size_px // 2, col + dc - size_px // 2
                ok = (r >= 0) & (r < h) & (c >= 0) & (c < w)
                img[r[ok], c[ok]] = gray
        self.page.gray_image(self.x, self.y, self.w, self.h, img)

    def dots(self, x, y, size: float = 2.0, gray: float = 0.0) -> None:
        x, y = self._inside(x, y)
        self.page.clip(self.x, self.y, self.w, self.h)
        self.page.dots(self.px(x), self.py(y), size=size, gray=gray)
        self.page.unclip()

    def line(self, x, y, width: float = 1.0, rgb=(0, 0, 0), dash=None) -> None:
        x, y = self._inside(x, y)
        if x.size > 2:  # drop points on straight runs (the model is flat almost everywhere)
            keep = np.ones(x.size, bool)
            same = (np.diff(y[:-1]) == 0) & (np.diff(y[1:]) == 0)
            keep[1:-1] = ~same
            x, y = x[keep], y[keep]
        self.page.clip(self.x, self.y, self.w, self.h)
        self.page.polyline(self.px(x), self.py(y), width=width, rgb=rgb, dash=dash)
        self.page.unclip()

    def vline(self, x: float, rgb=(0, 0, 0), dash=(1, 1.5), width: float = 1.0) -> None:
        if math.isfinite(x) and self.xlim[0] <= x <= self.xlim[1]:
            xp = float(self.px(x))
            self.page.polyline([xp, xp], [self.y, self.y + self.h], width=width, rgb=rgb, dash=dash)

    def frame(self, xlabel: str = "", ylabel: str = "", title: str = "", size: float = 8) -> None:
        """Border, ticks with labels on the left and bottom, axis labels and a title."""
        p = self.page
        p.rect(self.x, self.y, self.w, self.h)
        xt = nice_ticks(*self.xlim, n=6)
        yt = nice_ticks(*self.ylim, n=5)
        xstep = xt[1] - xt[0] if xt.size > 1 else 0.0
        ystep = yt[1] - yt[0] if yt.size > 1 else 0.0
        segs = []
        for v in xt:
            xp = float(self.px(v))
            segs.append(f"{xp:.2f} {self.y:.2f} m {xp:.2f} {self.y + 3.5:.2f} l")
            p.text(xp, self.y - size - 3, tick_label(v, xstep), size, align="center")
        for v in yt:
            yp = float(self.py(v))
            segs.append(f"{self.x:.2f} {yp:.2f} m {self.x + 3.5:.2f} {yp:.2f} l")
            p.text(self.x - 3, yp - size * 0.35, tick_label(v, ystep), size, align="right")
        if segs:
            p.ops.append("q 0 G 0.6 w " + " ".join(segs) + " S Q")
        if xlabel:
            p.text(self.x + self.w / 2, self.y - 2 * size - 8, xlabel, size + 1, align="center")
        if ylabel:
            width = max((text_width(tick_label(v, ystep), size) for v in yt), default=0.0)
            xl = self.x - width - 8 - (size + 1) * 0.3
            p.ops.append(f"BT /F1 {size + 1:g} Tf 0 1 -1 0 {xl:.2f} {self.y + self.h / 2 - text_width(ylabel, size + 1) / 2:.2f} Tm "
                         f"({_esc(ylabel)}) Tj ET")
        if title:
            p.text(self.x + self.w / 2, self.y + self.h + 4, title, size + 1, align="center")
