"""Focal plane <-> sky: the gnomonic projection about the shot centre with the parallactic angle.

Focal-plane x, y in arcsec (x towards east at pa = 0, y towards north); pa in degrees east of
north rotates the focal plane on the sky.  Used by the simulator (truth) and by astrometry.
"""

from __future__ import annotations

import numpy as np

ARCSEC = np.pi / 180 / 3600


def focal_to_sky(x, y, ra0, dec0, pa=0.0):
    """Focal-plane arcsec -> (ra, dec) degrees."""
    c, s = np.cos(np.radians(pa)), np.sin(np.radians(pa))
    xi = (np.asarray(x) * c - np.asarray(y) * s) * ARCSEC
    eta = (np.asarray(x) * s + np.asarray(y) * c) * ARCSEC
    a0, d0 = np.radians(ra0), np.radians(dec0)
    den = np.cos(d0) - eta * np.sin(d0)
    ra = a0 + np.arctan2(xi, den)
    dec = np.arctan2(np.sin(d0) + eta * np.cos(d0), np.hypot(xi, den))
    return np.degrees(ra) % 360.0, np.degrees(dec)


def sky_to_focal(ra, dec, ra0, dec0, pa=0.0):
    """(ra, dec) degrees -> focal-plane arcsec."""
    a, d = np.radians(np.asarray(ra)), np.radians(np.asarray(dec))
    a0, d0 = np.radians(ra0), np.radians(dec0)
    cosc = np.sin(d0) * np.sin(d) + np.cos(d0) * np.cos(d) * np.cos(a - a0)
    xi = np.cos(d) * np.sin(a - a0) / cosc / ARCSEC
    eta = (np.cos(d0) * np.sin(d) - np.sin(d0) * np.cos(d) * np.cos(a - a0)) / cosc / ARCSEC
    c, s = np.cos(np.radians(pa)), np.sin(np.radians(pa))
    return xi * c + eta * s, -xi * s + eta * c
