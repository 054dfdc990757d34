"""NRES optics for the simulator: echelle orders, fibers, traces, wavelengths, blaze, rendering.

Pure functions over NumPy arrays (no file I/O); ``steps.nres.simulate`` drives them.

What is simulated
    A quasi-Littrow R4 echelle (blaze angle ~76 deg, ~43 grooves/mm) with a prism-like cross
    disperser and a flat-field camera.  The wavelength reaching column ``x`` of order ``m`` in
    fiber ``f`` follows the grating equation

        m * lambda = sigma * cos(gamma_f) * (sin(alpha) + sin(beta)),
        beta = beta_c + arctan((x - x_c) / F)             (F: camera focal length in pixels)

    so the dispersion varies along the order as cos(beta) does, and ``lambda * m`` is about
    constant from order to order (NRES: orders 52-118, 380-860 nm).  The three fibers sit at
    different heights on the slit: fiber 0 highest in ``y`` within its order, fiber 1 (the
    reference ThAr fiber) in the middle, fiber 2 lowest; their off-plane angles ``gamma_f``
    differ by the angle of that height, which moves each fiber's wavelength solution by about a
    pixel.  The blaze is the scalar sinc^2 of a blazed facet evaluated with the same angles
    (``blaze``), peaking at the centre column and vanishing one free spectral range away.  Line
    widths follow a constant resolving power R ~ 53,000 (a Gaussian line-spread function of
    constant velocity width; FWHM about 2.9 pixels at the centre of an order).
    Traces are degree-4 Legendre series in ``x`` (tilted and curved, the curvature growing
    toward the blue); the cross-dispersion profile is a Gaussian core (sigma ~1.5 px, varying
    along the order and per fiber) with 3 % of the light in a Gaussian halo twice as wide,
    integrated over each pixel.  Each night the unit moves a little (incidence angle and trace
    position), which the nightly calibrations absorb.

Geometry conventions (also the truth's)
    Images are ``[y, x]`` (rows, columns) with 0-based pixel centres; ``x`` runs along the orders
    (wavelength increases with ``x``), ``y`` across them.  Order index ``i`` counts traces from
    the bottom of the detector, and the absolute echelle order is ``m = first_order + i`` (red at
    the bottom).  Polynomials in ``x`` are Legendre series in ``t = 2 x / (nx - 1) - 1``.

What is simplified, and why
    Lines are perpendicular to the trace within one fiber's image (the real slit tilt spreads a
    line by ~0.2 px across the 3-sigma width of the profile, small next to an extraction
    aperture).  No scattered light, no ghosts, no fringing: they matter for the extraction's
    background and are left to later work.  The small geometry is the central 1024 columns of the
    same echelle and camera (about half a free spectral range of each order; the full detector
    shows about two, so neighbouring orders share wavelengths), with its own cross-disperser
    spacing so that a dozen contiguous orders (m = 76-87, 512-590 nm) fill 1024 rows.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from numpy.polynomial import legendre
from scipy.special import ndtr

C_KM_S = 299792.458
FIBERS = (0, 1, 2)
TRACE_DEGREE = 4
WAVE_DEGREE = 8  # Legendre degree of the truth's lambda(x): < 1e-8 A from the exact model
HALO_FRACTION = 0.03
HALO_WIDTH = 2.0  # halo sigma / core sigma
BAND_HALF = 14  # rows rendered on each side of a trace centre (4.5 halo sigmas)


@dataclass(frozen=True)
class Geometry:
    """A detector format and the part of the echelle it sees."""

    name: str
    nx: int
    ny: int
    n_overscan: int
    first_order: int
    n_orders: int
    y_bottom: float  # centre-column y of the first order's fiber 1
    y_top: float  # centre-column y of the last order's fiber 1
    tilt_px: float  # Legendre P1 coefficient of the traces
    curve_px: float  # P2 coefficient (first order; grows 30 % toward the last)
    fiber_sep_px: float  # fiber 0 above fiber 1 above fiber 2, at the centre


SMALL = Geometry("small", nx=1024, ny=1024, n_overscan=32, first_order=76, n_orders=12, y_bottom=42.0,
                 y_top=952.0, tilt_px=5.0, curve_px=9.0, fiber_sep_px=12.0)
FULL = Geometry("full", nx=4096, ny=4096, n_overscan=32, first_order=52, n_orders=67, y_bottom=52.0,
                y_top=3950.0, tilt_px=12.0, curve_px=24.0, fiber_sep_px=12.5)


@dataclass(frozen=True)
class Spectrograph:
    """One NRES unit on one night: the echelle, the camera and the traces."""

    geometry: Geometry
    groove_a: float  # groove spacing sigma (Angstrom)
    blaze_rad: float  # facet (blaze) angle
    alpha_rad: float  # incidence angle (moves a little each night)
    beta_c_rad: float  # diffraction angle imaged on the centre column
    gamma_rad: float  # off-plane angle of fiber 1
    dgamma_rad: float  # off-plane angle step between fibers (fiber 0: +1 step, fiber 2: -1)
    camera_px: float  # camera focal length in pixels (F)
    resolution: float  # resolving power lambda / FWHM
    sigma_px: float  # cross-dispersion core sigma at the centre
    fiber_throughput: tuple[float, float, float]
    trace_coeffs: np.ndarray  # (n_orders, 3, TRACE_DEGREE + 1) Legendre coefficients of y(t)

    @property
    def orders(self) -> np.ndarray:
        return self.geometry.first_order + np.arange(self.geometry.n_orders)

    @property
    def lsf_sigma_kms(self) -> float:
        return C_KM_S / (self.resolution * 2.0 * np.sqrt(2.0 * np.log(2.0)))


def design(geometry: Geometry, rng: np.random.Generator) -> Spectrograph:
    """One unit as built: the NRES design with the small differences between units."""
    blaze = np.radians(75.96 + rng.normal(0.0, 0.03))
    alpha = blaze + np.radians(0.35)
    n = geometry.n_orders
    i = np.arange(n)
    m = geometry.first_order + i
    # fiber-1 centre-column heights: spacing grows toward the blue as a prism's does (~ m^0.6)
    p = m ** 1.6
    y_centre = geometry.y_bottom + (geometry.y_top - geometry.y_bottom) * (p - p[0]) / (p[-1] - p[0])
    y_centre = y_centre + rng.normal(0.0, 1.5)
    tilt = geometry.tilt_px * (1.0 + 0.2 * (i / max(n - 1, 1) - 0.5)) + rng.normal(0.0, 0.5)
    curve = geometry.curve_px * (1.0 + 0.3 * i / max(n - 1, 1)) + rng.normal(0.0, 0.5)
    cubic = 0.1 * geometry.tilt_px + rng.normal(0.0, 0.1, n)
    quartic = 0.03 * geometry.curve_px + rng.normal(0.0, 0.05, n)
    coeffs = np.zeros((n, 3, TRACE_DEGREE + 1))
    sep = geometry.fiber_sep_px * (1.0 + 0.05 * (i / max(n - 1, 1) - 0.5)) + rng.normal(0.0, 0.2)
    for f in FIBERS:
        s = 1 - f  # +1 for fiber 0 (highest), -1 for fiber 2
        # c0 so that y(t=0) = y_centre: P2(0) = -1/2, P4(0) = 3/8
        coeffs[:, f, 0] = y_centre + s * sep + 0.5 * curve - 0.375 * quartic
        coeffs[:, f, 1] = tilt + s * 0.03 * sep
        coeffs[:, f, 2] = curve
        coeffs[:, f, 3] = cubic
        coeffs[:, f, 4] = quartic
    camera_px = 19212.0 * (1.0 + rng.normal(0.0, 0.003))
    return Spectrograph(
        geometry=geometry,
        groove_a=1e7 / (43.40 * (1.0 + rng.normal(0.0, 5e-4))),
        blaze_rad=blaze,
        alpha_rad=alpha,
        beta_c_rad=2.0 * blaze - alpha,  # the blaze peak on the centre column
        gamma_rad=np.radians(0.6 + rng.normal(0.0, 0.05)),
        dgamma_rad=geometry.fiber_sep_px / camera_px,
        camera_px=camera_px,
        resolution=53000.0 * (1.0 + rng.normal(0.0, 0.01)),
        sigma_px=1.5 * (1.0 + rng.normal(0.0, 0.03)),
        fiber_throughput=(float(rng.uniform(0.95, 1.05)), float(rng.uniform(0.88, 0.96)),
                          float(rng.uniform(0.95, 1.05))),
        trace_coeffs=coeffs,
    )


def on_night(unit: Spectrograph, rng: np.random.Generator) -> Spectrograph:
    """The unit on one night: the incidence angle and the traces moved by a fraction of a pixel."""
    coeffs = unit.trace_coeffs.copy()
    coeffs[:, :, 0] += rng.normal(0.0, 0.3)
    coeffs[:, :, 1] += rng.normal(0.0, 0.08)
    return replace(unit, alpha_rad=unit.alpha_rad + rng.normal(0.0, 1.2e-5), trace_coeffs=coeffs)


def xnorm(x, nx: int) -> np.ndarray:
    return 2.0 * np.asarray(x, dtype=float) / (nx - 1) - 1.0


def _gamma(unit: Spectrograph, fiber: int) -> float:
    return unit.gamma_rad + (1 - fiber) * unit.dgamma_rad


def _beta(unit: Spectrograph, x) -> np.ndarray:
    """Diffraction angle imaged on column(s) ``x`` (a flat-field camera: tangent mapping)."""
    xc = (unit.geometry.nx - 1) / 2.0
    return unit.beta_c_rad + np.arctan((np.asarray(x, dtype=float) - xc) / unit.camera_px)


def wavelength(unit: Spectrograph, order: int, fiber: int, x) -> np.ndarray:
    """Vacuum wavelength (A) reaching column(s) ``x`` of order index ``order`` in ``fiber``."""
    m = unit.geometry.first_order + order
    return unit.groove_a * np.cos(_gamma(unit, fiber)) * (np.sin(unit.alpha_rad) + np.sin(_beta(unit, x))) / m


def blaze(unit: Spectrograph, order: int, fiber: int, x) -> np.ndarray:
    """Blaze efficiency (peak 1) at column(s) ``x``: the facet's sinc^2 diffraction envelope."""
    lam = wavelength(unit, order, fiber, x)
    beta = _beta(unit, x)
    phase = (unit.groove_a * np.cos(_gamma(unit, fiber)) * np.cos(unit.blaze_rad)
             * (np.sin(unit.alpha_rad - unit.blaze_rad) + np.sin(beta - unit.blaze_rad)) / lam)
    return np.sinc(phase) ** 2


def pixel_edges(unit: Spectrograph, order: int, fiber: int) -> np.ndarray:
    """Wavelengths at the nx + 1 pixel edges of one trace (A)."""
    return wavelength(unit, order, fiber, np.arange(unit.geometry.nx + 1) - 0.5)


def trace_y(unit: Spectrograph, order: int, fiber: int, x) -> np.ndarray:
    """Centre row of the trace at column(s) ``x``."""
    return legendre.legval(xnorm(x, unit.geometry.nx), unit.trace_coeffs[order, fiber])


def profile_sigma(unit: Spectrograph, order: int, fiber: int, x) -> np.ndarray:
    """Cross-dispersion core sigma (px) at column(s) ``x``: wider at the ends of an order and in
    the blue, slightly different per fiber."""
    t = xnorm(x, unit.geometry.nx)
    n = unit.geometry.n_orders
    return unit.sigma_px * (1.0 + 0.06 * (1.5 * t * t - 0.5) + 0.04 * (order / max(n - 1, 1) - 0.5)
                            + 0.02 * (fiber - 1))


def wave_coefficients(unit: Spectrograph, order: int, fiber: int) -> tuple[np.ndarray, float]:
    """Legendre coefficients of lambda(x) over the detector width, and the fit's largest error (A)."""
    x = np.arange(unit.geometry.nx)
    lam = wavelength(unit, order, fiber, x)
    t = xnorm(x, unit.geometry.nx)
    c = legendre.legfit(t, lam, WAVE_DEGREE)
    return c, float(np.abs(legendre.legval(t, c) - lam).max())


@dataclass(frozen=True)
class Band:
    """Where one trace's light falls: ``rows`` (2 * BAND_HALF + 1, nx) and the fraction of a
    column's light in each of those pixels (``weights``, summing to 1 per column)."""

    rows: np.ndarray
    weights: np.ndarray


def band(unit: Spectrograph, order: int, fiber: int) -> Band:
    """Pixel-integrated cross-dispersion profile of one trace on the rows it covers."""
    x = np.arange(unit.geometry.nx)
    yc = trace_y(unit, order, fiber, x)
    sig = profile_sigma(unit, order, fiber, x)
    rows = np.floor(yc).astype(np.int64) + np.arange(-BAND_HALF, BAND_HALF + 1)[:, None]
    if rows.min() < 0 or rows.max() >= unit.geometry.ny:
        raise ValueError(f"trace {order}/{fiber} leaves the detector")
    lo, hi = rows - 0.5 - yc, rows + 0.5 - yc
    core = ndtr(hi / sig) - ndtr(lo / sig)
    halo = ndtr(hi / (HALO_WIDTH * sig)) - ndtr(lo / (HALO_WIDTH * sig))
    w = (1.0 - HALO_FRACTION) * core + HALO_FRACTION * halo
    return Band(rows=rows.astype(np.int32), weights=(w / w.sum(axis=0)).astype(np.float32))


def render(shape: tuple[int, int], bands: dict, spectra: dict) -> np.ndarray:
    """Electrons on the detector from 1-D spectra: ``spectra[(order, fiber)]`` (electrons per
    column) spread over ``bands[(order, fiber)]``."""
    image = np.zeros(shape, dtype=np.float32)
    cols = np.arange(shape[1])
    for key, counts in spectra.items():
        b = bands[key]
        image[b.rows, cols] += b.weights * np.asarray(counts, dtype=np.float32)
    return image
