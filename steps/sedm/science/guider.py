"""The guider (rainbow camera) astrometry of an SEDM science exposure, in our words after pysedm's
``astrometry``/``rainbowcam``: stack the guider frames taken during the exposure, check their
astrometric solution (WCS), and place the target on the IFU.

Pure functions over arrays, headers and ``astropy.wcs.WCS``.

* :func:`stack` -- the guider frames summed after each one's median level is removed (pysedm
  builds one guider image per exposure from all its frames).
* :func:`count_sources` -- point sources in the stacked image: connected groups of at least
  ``min_pixels`` pixels above ``nsigma`` robust standard deviations of the background.
* :func:`check_wcs` -- whether the astrometry can be trusted, and why not: every frame has a
  2-axis celestial WCS, the frames agree (their world position of the image centre within
  ``agree_arcsec``), the solution is where the telescope pointed (the header's RA/DEC on the
  frame, or within ``pointing_arcsec`` of its edge: a solve that lands elsewhere is a failed one), its pixel scale is finite,
  and the stacked image has at least ``min_sources`` stars (a blind solve needs several; a field
  too sparse to solve is SEDM's usual astrometry failure).
* :func:`ifu_offset` -- the target's position on the IFU, arcsec east and north of the IFU centre,
  through the WCS: both the target (OBJRA/OBJDEC) and the IFU centre (the telescope's RA/DEC,
  where SEDM points the IFU) go to guider pixels; the pixel difference times the WCS's pixel
  scale matrix is the offset on the sky's tangent plane.
"""

from __future__ import annotations

import warnings

import numpy as np
from astropy.coordinates import Angle
from astropy.wcs import WCS, FITSFixedWarning
from scipy import ndimage

MAD_TO_SIGMA = 1.482602218505602


def parse_ra(value) -> float:
    """Right ascension in degrees from a header value: sexagesimal hours ('HH:MM:SS.ss') or degrees."""
    if isinstance(value, str) and (":" in value or " " in value.strip()):
        return float(Angle(value.strip(), unit="hourangle").deg)
    return float(value)


def parse_dec(value) -> float:
    """Declination in degrees: sexagesimal ('+DD:MM:SS.s') or degrees."""
    if isinstance(value, str) and (":" in value or " " in value.strip()):
        return float(Angle(value.strip(), unit="deg").deg)
    return float(value)


def stack(images: list[np.ndarray]) -> np.ndarray:
    frames = [np.asarray(im, float) for im in images]
    return np.sum([f - np.median(f) for f in frames], axis=0)


def count_sources(image: np.ndarray, *, nsigma: float = 5.0, min_pixels: int = 3) -> int:
    data = np.asarray(image, float)
    med = np.median(data)
    sigma = MAD_TO_SIGMA * np.median(np.abs(data - med))
    if not np.isfinite(sigma) or sigma <= 0:
        return 0
    labels, n = ndimage.label(data > med + nsigma * sigma)
    if n == 0:
        return 0
    sizes = ndimage.sum(np.ones_like(data), labels, index=np.arange(1, n + 1))
    return int(np.sum(sizes >= min_pixels))


def celestial_wcs(header) -> WCS | None:
    """The header's celestial WCS, or None when it has none."""
    if not str(header.get("CTYPE1", "")).startswith("RA") or not str(header.get("CTYPE2", "")).startswith("DEC"):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        w = WCS(header, naxis=2)
    return w if w.has_celestial else None


def _separation_arcsec(ra1, dec1, ra2, dec2) -> float:
    r1, d1, r2, d2 = map(np.radians, (ra1, dec1, ra2, dec2))
    c = np.sin(d1) * np.sin(d2) + np.cos(d1) * np.cos(d2) * np.cos(r1 - r2)
    return float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))) * 3600.0)


def check_wcs(headers: list, shape: tuple[int, int], stacked: np.ndarray | None, pointing: tuple[float, float], *,
              agree_arcsec: float = 2.0, pointing_arcsec: float = 120.0, min_sources: int = 4) -> tuple[WCS | None, str]:
    """(the WCS to use, "") or (None, why the astrometry failed)."""
    if not headers:
        return None, "no guider frames during the exposure"
    wcss = [celestial_wcs(h) for h in headers]
    missing = sum(w is None for w in wcss)
    if missing:
        return None, f"{missing} of {len(headers)} guider frames carry no astrometric solution (WCS)"
    cy, cx = (shape[0] - 1) / 2.0, (shape[1] - 1) / 2.0
    centres = [w.all_pix2world([[cx, cy]], 0)[0] for w in wcss]
    worst = max(_separation_arcsec(*centres[0], *c) for c in centres)
    if worst > agree_arcsec:
        return None, f"the guider frames' solutions disagree by {worst:.1f} arcsec (limit {agree_arcsec:g})"
    scale = wcss[0].pixel_scale_matrix
    if not np.all(np.isfinite(scale)) or abs(np.linalg.det(scale)) == 0:
        return None, "the WCS has no finite pixel scale"
    pra, pdec = pointing
    if np.isfinite(pra) and np.isfinite(pdec):
        ifu = wcss[0].all_world2pix([[pra, pdec]], 0)[0]
        margin = pointing_arcsec / (3600.0 * np.sqrt(abs(np.linalg.det(scale))))
        if not (np.all(np.isfinite(ifu)) and -margin <= ifu[0] <= shape[1] - 1 + margin
                and -margin <= ifu[1] <= shape[0] - 1 + margin):
            return None, (f"the telescope's RA/DEC fall {_separation_arcsec(*centres[0], pra, pdec):.0f} arcsec "
                          f"from the solution's centre, off the guider frame")
    if stacked is not None:
        n = count_sources(stacked)
        if n < min_sources:
            return None, f"only {n} stars in the stacked guider image (a solution needs {min_sources})"
    return wcss[0], ""


def ifu_offset(wcs: WCS, target: tuple[float, float], centre: tuple[float, float]) -> tuple[float, float]:
    """The target's position (arcsec east, north) relative to the IFU centre, through ``wcs``."""
    pix = wcs.all_world2pix([list(target), list(centre)], 0)
    d = pix[0] - pix[1]
    xi, eta = wcs.pixel_scale_matrix @ d  # deg on the tangent plane (RA axis first: east)
    return float(xi * 3600.0), float(eta * 3600.0)
