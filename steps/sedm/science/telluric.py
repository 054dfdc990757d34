"""Telluric absorption (O2 and H2O) measured on a standard and scaled to another airmass, as pure
functions: pysedm's model (``pysedm/utils/atmosphere.py``, ``TelluricLines``) without its
telluric template file.

pysedm writes the transmission at airmass X as ``T_O2 ** (X ** rho_O2 * c_O2) * T_H2O ** (X **
rho_H2O * c_H2O)`` with ``rho_O2 = 0.58``, ``rho_H2O = 0.4`` and the bands confined to its
``TELLURIC_REGIONS`` (O2: the gamma band 6270-6332 A, the B band 6862-6965 A, the A band
7586-7703 A; H2O: seven windows from 5880 to 9930 A); it fits the amplitudes ``c`` of a KPNO
telluric spectrum on the standard.  Here the band shapes come from the standard itself: inside
the regions the standard's observed-to-reference ratio over the smooth inverse sensitivity is its
transmission ``T_std`` at its airmass ``X_std``; the optical depth per unit ``X ** rho`` (the
"airmass-1" depth, one array per species) is ``-ln(T_std) / X_std ** rho``, and a frame at airmass
``X`` is divided by ``exp(-tau_1 * X ** rho)``.  Deviation from pysedm, and why: no telluric
template ships with the project (pysedm's is a data file of its own), so the standard's
measured bands, at the instrument's resolution, are the template; the scaling law and its
exponents are pysedm's.  The amplitude reported per species is the band's equivalent width at
airmass 1 (A).

A bin counts as inside a region when any part of it (its centre +- half the bin width) is: at
SEDM's ~25 A bins a band's edge spreads into the neighbouring bin.
"""

from __future__ import annotations

import numpy as np

TELLURIC_REGIONS = {
    "O2": ((6270.2, 6331.7), (6862.1, 6964.6), (7585.8, 7703.0)),
    "H2O": ((5880.5, 5959.6), (6466.5, 6522.2), (6979.3, 7067.2), (7143.3, 7398.2), (7887.6, 8045.8),
            (8083.9, 8420.8), (8916.0, 9929.8)),
}
"""pysedm's telluric regions (A), per absorbing species."""
RHO = {"O2": 0.58, "H2O": 0.4}
"""pysedm's airmass exponents: the optical depth grows as ``airmass ** rho``."""
SPECIES = ("O2", "H2O")


def bin_edges(lam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper edges of bins centred on ``lam`` (increasing), halfway to the neighbours."""
    lam = np.asarray(lam, float)
    mid = 0.5 * (lam[1:] + lam[:-1])
    lo = np.concatenate([[lam[0] - (mid[0] - lam[0])], mid])
    hi = np.concatenate([mid, [lam[-1] + (lam[-1] - mid[-1])]])
    return lo, hi


def in_regions(lam: np.ndarray, regions) -> np.ndarray:
    """True for bins of ``lam`` that overlap any of ``regions`` ((lo, hi) A)."""
    lo, hi = bin_edges(lam)
    out = np.zeros(len(lo), bool)
    for a, b in regions:
        out |= (hi > a) & (lo < b)
    return out


def species_masks(lam: np.ndarray) -> dict[str, np.ndarray]:
    """Per species, the bins of ``lam`` its bands may touch; a bin in both goes to O2."""
    o2 = in_regions(lam, TELLURIC_REGIONS["O2"])
    return {"O2": o2, "H2O": in_regions(lam, TELLURIC_REGIONS["H2O"]) & ~o2}


def airmass1_depth(lam: np.ndarray, transmission: np.ndarray, airmass: float) -> dict[str, np.ndarray]:
    """Per species, the optical depth per unit ``airmass ** rho`` of a transmission measured at
    ``airmass`` (0 outside the species' regions; transmissions above 1, noise, give 0)."""
    t = np.clip(np.where(np.isfinite(transmission), transmission, 1.0), 1e-3, 1.0)
    tau = -np.log(t)
    return {sp: np.where(mask, tau, 0.0) / float(airmass) ** RHO[sp] for sp, mask in species_masks(lam).items()}


def transmission(tau1: dict[str, np.ndarray], airmass: float) -> np.ndarray:
    """The telluric transmission at ``airmass`` of airmass-1 depths ``tau1`` (per species)."""
    total = sum(np.asarray(tau1[sp], float) * float(airmass) ** RHO[sp] for sp in SPECIES)
    return np.exp(-total)


def equivalent_width(lam: np.ndarray, tau: np.ndarray) -> float:
    """Equivalent width (A) of an absorption of optical depth ``tau`` on bins centred at ``lam``."""
    lo, hi = bin_edges(lam)
    return float(np.sum((1.0 - np.exp(-np.asarray(tau, float))) * (hi - lo)))


def on_grid(lam_from: np.ndarray, tau1: dict[str, np.ndarray], lam_to: np.ndarray) -> dict[str, np.ndarray]:
    """Airmass-1 depths moved to another wavelength grid (linear interpolation, 0 outside)."""
    return {sp: np.interp(lam_to, lam_from, tau1[sp], left=0.0, right=0.0) for sp in SPECIES}
