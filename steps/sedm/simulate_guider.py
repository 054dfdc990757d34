"""The SEDM guider (the rainbow camera, RC) for the simulator: the frames taken during a science
exposure, with the astrometric solution as a WCS.

Pure functions over NumPy arrays; the WCS is an ``astropy.wcs.WCS``.

What is simulated
    Frames ``rc{YYYYMMDD}_{HH_MM_SS}.fits`` (``GUIDER_PER_EXPOSURE`` per science exposure, spread
    over it), 0.394 arcsec per pixel (a 13.4 arcmin field at full size, 256 x 256 pixels by default),
    north up and east left (TEL_PA 0), the IFU centre at the reference pixel: the WCS's CRVAL is the
    telescope's RA/DEC (the IFU centre), so the target's pixel follows from OBJRA/OBJDEC.  The field
    holds the transient, any neighbour in the IFU and a seeded field of stars (r = 14-20.5), Gaussian
    PSFs of the exposure's seeing, a sky of ~20.5 mag/arcsec^2, read noise and a 1000 ADU offset.
    When the astrometry failed (the guider_failed and neighbour cases), the field is sparse (two
    field stars: too few for a blind solve) and the frames carry no WCS.

What is simplified, and why
    The WCS written is the true one: it stands in for the astrometry.net solution that SEDM
    computes on the stacked guider image and that cannot run here; a pipeline checks it exists and
    is consistent and otherwise falls back to the brightest spaxel (quality 5).  No distortion
    terms, no guiding errors between frames (SEDM guides to < 0.3 arcsec).
"""

from __future__ import annotations

import numpy as np
from astropy.wcs import WCS

from steps.sedm import simulate_spectra as spec

PIXEL_ARCSEC = 0.394
GUIDER_PER_EXPOSURE = 3
GUIDER_EXPTIME = 30.0
BAND_A = 1300.0  # r-band width used to turn a 6200 A flux density into photons
SKY_MAG_ARCSEC2 = 20.5
READ_NOISE_E = 8.0
GAIN = 1.0  # e-/ADU of the RC camera in this simulation
OFFSET_ADU = 1000.0
SPARSE_FIELD = 2  # field stars kept where the astrometry fails


def guider_wcs(ra: float, dec: float, n: int, mjd: float | None = None) -> WCS:
    """The guider's TAN WCS: the IFU centre (``ra``, ``dec`` deg) at the centre of an n x n frame."""
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [ra, dec]
    w.wcs.crpix = [(n + 1) / 2.0, (n + 1) / 2.0]
    s = PIXEL_ARCSEC / 3600.0
    w.wcs.cd = [[-s, 0.0], [0.0, s]]
    w.wcs.radesys = "ICRS"
    w.wcs.equinox = 2000.0
    if mjd is not None:
        w.wcs.mjdobs = mjd
    return w


def field_stars(n: int, rng: np.random.Generator) -> np.ndarray:
    """(k, 3): x, y offsets (arcsec east, north of the IFU centre) and r magnitudes of field stars."""
    half = n * PIXEL_ARCSEC / 2.0
    k = max(8, int(25 * (n / 256.0) ** 2))
    return np.column_stack([rng.uniform(-half, half, k), rng.uniform(-half, half, k), rng.uniform(14.0, 20.5, k)])


def rate_e_s(mag) -> np.ndarray:
    """Electrons per second of an r = ``mag`` (AB) point source."""
    return spec.photons(spec.ab_flux(np.asarray(mag, float), 6200.0), 6200.0) * BAND_A * spec.AREA_CM2 * 0.3


def render(n: int, sources: np.ndarray, seeing: float, rng: np.random.Generator) -> np.ndarray:
    """One guider frame (n, n) uint16 of ``sources`` (k, 3: x, y arcsec, r mag)."""
    sky = rate_e_s(SKY_MAG_ARCSEC2) * PIXEL_ARCSEC ** 2 * GUIDER_EXPTIME
    image = np.full((n, n), sky, np.float64)
    sigma = seeing / 2.3548 / PIXEL_ARCSEC
    c = (n - 1) / 2.0
    px = c - sources[:, 0] / PIXEL_ARCSEC  # east is left
    py = c + sources[:, 1] / PIXEL_ARCSEC
    counts = rate_e_s(sources[:, 2]) * GUIDER_EXPTIME
    half = int(np.ceil(4 * sigma))
    for x, y, e in zip(px, py, counts):
        x0, y0 = round(x), round(y)
        xs = np.arange(max(0, x0 - half), min(n, x0 + half + 1))
        ys = np.arange(max(0, y0 - half), min(n, y0 + half + 1))
        if xs.size == 0 or ys.size == 0:
            continue
        g = np.exp(-0.5 * (((xs[None, :] - x) ** 2 + (ys[:, None] - y) ** 2) / sigma ** 2))
        image[np.ix_(ys, xs)] += e * g / (2 * np.pi * sigma ** 2)
    noisy = image + rng.standard_normal(image.shape) * np.sqrt(image + READ_NOISE_E ** 2)
    return np.clip(np.rint(noisy / GAIN + OFFSET_ADU), 0, 65535).astype(np.uint16)
