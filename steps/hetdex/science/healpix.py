"""HEALPix ang2pix in the RING scheme (Gorski et al. 2005), as ``healpy.ang2pix(nside, ra, dec,
lonlat=True)``: the fiber index's ``healpix`` column at nside 2**15."""

from __future__ import annotations

import numpy as np


def ang2pix_ring(nside: int, ra, dec) -> np.ndarray:
    ra = np.asarray(ra, np.float64)
    dec = np.asarray(dec, np.float64)
    z = np.sin(np.radians(dec))
    za = np.abs(z)
    tt = np.mod(np.radians(ra), 2 * np.pi) * (2 / np.pi)  # in [0, 4)
    nl4 = 4 * nside
    ncap = 2 * nside * (nside - 1)
    npix = 12 * nside * nside
    out = np.empty(np.broadcast(ra, dec).shape, np.int64)
    eq = za <= 2.0 / 3.0
    # equatorial belt
    temp1 = nside * (0.5 + tt[eq])
    temp2 = nside * z[eq] * 0.75
    jp = (temp1 - temp2).astype(np.int64)
    jm = (temp1 + temp2).astype(np.int64)
    ir = nside + 1 + jp - jm
    kshift = 1 - (ir & 1)
    ip = (jp + jm - nside + kshift + 1) // 2
    ip = np.mod(ip, nl4)
    out[eq] = ncap + (ir - 1) * nl4 + ip
    # polar caps
    pc = ~eq
    tp = tt[pc] - np.floor(tt[pc])
    tmp = nside * np.sqrt(3 * (1 - za[pc]))
    jp = (tp * tmp).astype(np.int64)
    jm = ((1.0 - tp) * tmp).astype(np.int64)
    ir = jp + jm + 1
    ip = (tt[pc] * ir).astype(np.int64)
    ip = np.mod(ip, 4 * ir)
    north = z[pc] > 0
    out[pc] = np.where(north, 2 * ir * (ir - 1) + ip, npix - 2 * ir * (ir + 1) + ip)
    return out
