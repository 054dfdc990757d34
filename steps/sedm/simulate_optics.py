"""The SEDM IFU for the simulator: the hexagonal lenslet grid, its short tilted traces, their
pixel-to-wavelength polynomials, spaxel throughput, flexure and the rendering of traces.

Pure functions over NumPy arrays (no file I/O).

What is simulated
    A hexagonal lenslet array of ``ring`` rings around a central lenslet (1027 spaxels for the full
    instrument, 169 small), 0.75 arcsec apart on the sky.  Its images on the CCD form the lattice
    of a TIGER-type IFU: the hexagonal lattice scaled to ``pitch_px`` and rotated by ``angle_deg``
    so that the short spectra, dispersed along +x (blue to red) with a small tilt, interleave without
    touching (at least ~6.5 px, 7.2 by design, between the centres of any two overlapping traces).  Each spaxel has
    its own origin (x0, y0: the column and row of trace pixel p = 0), tilt, cross-dispersion width,
    line width, throughput (a smooth field pattern times a 3 % lenslet-to-lenslet scatter) and
    pixel-to-wavelength polynomial ``lambda(p)`` (vacuum A, degree 4 in p, numpy.polynomial
    order): the prism's near-constant resolution makes the dispersion grow towards the red, about
    ``lambda_blue * (lambda_red / lambda_blue) ** (p / (L - 1))`` (3550-9600 A over 160 px small,
    240 px full), with per-spaxel offsets of ~10 A, a 1 % change of range and a smooth distortion
    of up to ~6 A; the polynomial fitted to that is the truth the frames are rendered from.  Flexure moves every trace of a frame by
    ``(dx, dy)`` px: dx along dispersion (the wavelength of every pixel changes), dy across.

What is simplified, and why
    The trace is a straight line with a Gaussian cross profile (the real traces are slightly curved
    and their profile has wings; a straight tilt already makes a pipeline trace each spaxel), the
    lenslet footprint on the sky is a circle of the hexagon's area when sources are integrated, and
    flexure is a rigid shift (SEDM's measured flexure is about that: < 2 px, nearly uniform).
    Lines and continua are integrated over each pixel's extent along the trace exactly (the error
    function for lines), so a line's centroid is where ``lambda(p)`` says to far better than 0.1 px.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.special import erf

from steps.sedm.simulate_detector import N_OVERSCAN

SPAXEL_ARCSEC = 0.75
LAMBDA_BLUE = 3550.0
LAMBDA_RED = 9600.0
HALF_ROWS = 4  # rows rendered on each side of a trace centre


@dataclass(frozen=True)
class Layout:
    """The instrument's size: the hexagonal grid and the frame it is imaged on."""

    ring: int
    pitch_px: float
    angle_deg: float
    trace_len: int  # pixels along dispersion per trace
    ny: int
    nx: int  # columns written, overscan included


SMALL = Layout(ring=7, pitch_px=38.0, angle_deg=25.25, trace_len=160, ny=768, nx=768)
FULL = Layout(ring=18, pitch_px=51.0, angle_deg=27.0, trace_len=240, ny=2048, nx=2048)


@dataclass(frozen=True)
class Spaxels:
    """The true geometry of one night's IFU, one entry per spaxel (arrays of length n)."""

    q: np.ndarray  # axial hexagonal indices
    r: np.ndarray
    sky_x: np.ndarray  # arcsec east of the IFU centre (TEL_PA 0)
    sky_y: np.ndarray  # arcsec north
    x0: np.ndarray  # column of p = 0 (no flexure)
    y0: np.ndarray  # row of the trace centre at p = 0
    tilt: np.ndarray  # rows per column along the trace
    sigma_y: np.ndarray  # cross-dispersion Gaussian sigma (px)
    sigma_line: np.ndarray  # line sigma along dispersion (px)
    throughput: np.ndarray  # relative, mean 1
    wave_coeffs: np.ndarray  # (n, 5) vacuum A = sum c_k p^k
    trace_len: int

    @property
    def n(self) -> int:
        return self.q.size


def hex_grid(ring: int) -> tuple[np.ndarray, np.ndarray]:
    """Axial indices (q, r) of a hexagon of ``ring`` rings, ordered by r then q."""
    r, q = np.meshgrid(np.arange(-ring, ring + 1), np.arange(-ring, ring + 1), indexing="ij")
    q, r = q.ravel(), r.ravel()
    keep = np.abs(q + r) <= ring
    return q[keep], r[keep]


def lattice(q: np.ndarray, r: np.ndarray, scale: float, angle_rad: float) -> tuple[np.ndarray, np.ndarray]:
    """Cartesian positions of axial indices on a hexagonal lattice of spacing ``scale``."""
    a, b = angle_rad, angle_rad + np.pi / 3
    return scale * (q * np.cos(a) + r * np.cos(b)), scale * (q * np.sin(a) + r * np.sin(b))


def make_spaxels(layout: Layout, rng: np.random.Generator) -> Spaxels:
    q, r = hex_grid(layout.ring)
    n = q.size
    sky_x, sky_y = lattice(q, r, SPAXEL_ARCSEC, 0.0)
    lx, ly = lattice(q, r, layout.pitch_px, np.radians(layout.angle_deg))
    tilt = 0.03 + rng.normal(0.0, 0.0005, n)
    length = layout.trace_len
    nxi = layout.nx - N_OVERSCAN
    x0 = (nxi - length) / 2.0 + lx + rng.normal(0.0, 0.15, n)
    y0 = layout.ny / 2.0 + ly - tilt * length / 2.0 + rng.normal(0.0, 0.15, n)
    radius = np.hypot(sky_x, sky_y) / (SPAXEL_ARCSEC * layout.ring)
    throughput = (1.0 - 0.12 * radius ** 2 + 0.04 * sky_x / (SPAXEL_ARCSEC * layout.ring)) * rng.normal(1.0, 0.03, n)
    throughput /= throughput.mean()
    p = np.arange(length, dtype=float)
    coeffs = np.empty((n, 5))
    for i in range(n):
        blue = LAMBDA_BLUE + rng.normal(0.0, 10.0)
        red = LAMBDA_RED * (1.0 + rng.normal(0.0, 0.01))
        u = p / (length - 1)
        lam = blue * (red / blue) ** u + rng.normal(0.0, 6.0) * np.sin(np.pi * u) * (u - 0.5)
        coeffs[i] = np.polynomial.polynomial.polyfit(p, lam, 4)
    return Spaxels(q=q, r=r, sky_x=sky_x, sky_y=sky_y, x0=x0, y0=y0, tilt=tilt,
                   sigma_y=rng.uniform(0.9, 1.1, n), sigma_line=rng.uniform(1.0, 1.2, n),
                   throughput=throughput, wave_coeffs=coeffs, trace_len=length)


def shifted(sp: Spaxels, dx: float, dy: float) -> Spaxels:
    """The same IFU with every trace moved by (dx, dy) px (a night's rigid drift)."""
    return replace(sp, x0=sp.x0 + dx, y0=sp.y0 + dy)


def wavelength(coeffs: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Vacuum wavelength (A) at trace pixel ``p`` (n, m) for the spaxels' coefficients (n, k)."""
    return sum(coeffs[:, k, None] * p ** k for k in range(coeffs.shape[1]))


def dispersion(coeffs: np.ndarray, p: np.ndarray) -> np.ndarray:
    """d lambda / d p (A per px) at ``p`` (n, m)."""
    return sum(k * coeffs[:, k, None] * p ** (k - 1) for k in range(1, coeffs.shape[1]))


def pixel_of(coeffs: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """Trace pixel p (n, m) where each spaxel sees vacuum wavelength ``lam`` (m,), by Newton's method."""
    lam = np.broadcast_to(np.asarray(lam, float), (coeffs.shape[0], np.size(lam)))
    p = (lam - coeffs[:, :1]) / coeffs[:, 1:2]
    for _ in range(30):
        step = (wavelength(coeffs, p) - lam) / dispersion(coeffs, p)
        p = p - step
        if np.all(np.abs(step) < 1e-7):
            break
    return p


@dataclass(frozen=True)
class Columns:
    """The detector columns of every trace of one frame (after flexure)."""

    x: np.ndarray  # (n, L) integer columns
    p: np.ndarray  # (n, L) trace pixel at each column centre
    lam: np.ndarray  # (n, L) vacuum A at the column centre
    dlam: np.ndarray  # (n, L) A per px there


def columns(sp: Spaxels, dx: float) -> Columns:
    start = np.rint(sp.x0 + dx).astype(np.int64)
    x = start[:, None] + np.arange(sp.trace_len)[None, :]
    p = x - (sp.x0 + dx)[:, None]
    return Columns(x=x, p=p, lam=wavelength(sp.wave_coeffs, p), dlam=dispersion(sp.wave_coeffs, p))


def line_electrons(sp: Spaxels, cols: Columns, lam_lines: np.ndarray, electrons: np.ndarray) -> np.ndarray:
    """Electrons per column (n, L) of lines at vacuum ``lam_lines`` carrying ``electrons`` (n, m) each,
    integrated exactly over each pixel's extent along the trace."""
    p_line = pixel_of(sp.wave_coeffs, lam_lines)  # (n, m); flexure moves columns and lines together
    s = np.sqrt(2.0) * sp.sigma_line[:, None, None]
    d = cols.p[:, :, None] - p_line[:, None, :]
    frac = 0.5 * (erf((d + 0.5) / s) - erf((d - 0.5) / s))
    return np.einsum("nlm,nm->nl", frac, electrons)


def render(sp: Spaxels, cols: Columns, per_column_e: np.ndarray, dy: float, ny: int, nx: int) -> np.ndarray:
    """Electrons image (ny, nx) of traces carrying ``per_column_e`` (n, L), shifted ``dy`` rows."""
    yc = sp.y0[:, None] + dy + sp.tilt[:, None] * cols.p
    base = np.floor(yc).astype(np.int64)
    offsets = np.arange(-HALF_ROWS, HALF_ROWS + 1)
    rows = base[:, :, None] + offsets[None, None, :]
    s = np.sqrt(2.0) * sp.sigma_y[:, None, None]
    d = rows - yc[:, :, None]
    weight = 0.5 * (erf((d + 0.5) / s) - erf((d - 0.5) / s))
    xs = np.broadcast_to(cols.x[:, :, None], rows.shape)
    ok = (rows >= 0) & (rows < ny) & (xs >= 0) & (xs < nx)
    values = (per_column_e[:, :, None] * weight)[ok]
    image = np.bincount((rows * nx + xs)[ok], weights=values, minlength=ny * nx)
    return image.reshape(ny, nx).astype(np.float32)


def min_trace_separation(sp: Spaxels) -> float:
    """The smallest distance (rows) between the centres of two traces that share columns."""
    dx = sp.x0[:, None] - sp.x0[None, :]
    dy = (sp.y0[:, None] - sp.y0[None, :]) - sp.tilt[None, :] * dx
    share = (np.abs(dx) < sp.trace_len) & ~np.eye(sp.n, dtype=bool)
    return float(np.abs(dy[share]).min())
