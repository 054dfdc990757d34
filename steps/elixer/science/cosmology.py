"""Flat Lambda-CDM distances on a precomputed grid (H0 = 70, Omega_M = 0.3, as Leung et al. 2017).

Only what the LAE/[OII] odds need: luminosity distance (cm) and comoving volume per unit redshift
per steradian (Mpc^3).  A 4,000-point trapezoid grid keeps every call a cheap interpolation.
"""

from __future__ import annotations

import numpy as np

C_KM_S = 299792.458
MPC_CM = 3.08567758e24


class Cosmology:
    def __init__(self, h0: float = 70.0, omega_m: float = 0.3, z_max: float = 6.0, n: int = 4000):
        self.h0, self.omega_m = h0, omega_m
        self.z = np.linspace(0.0, z_max, n)
        inv_e = 1.0 / np.sqrt(omega_m * (1 + self.z) ** 3 + (1 - omega_m))
        dz = np.diff(self.z)
        self.dh = C_KM_S / h0  # Hubble distance, Mpc
        self.dc = self.dh * np.concatenate([[0.0], np.cumsum(0.5 * (inv_e[1:] + inv_e[:-1]) * dz)])
        self.inv_e = inv_e

    def comoving_distance(self, z):
        return np.interp(z, self.z, self.dc)

    def luminosity_distance_cm(self, z):
        return (1 + np.asarray(z, float)) * self.comoving_distance(z) * MPC_CM

    def dvdz(self, z):
        """Comoving volume per unit redshift per steradian, Mpc^3."""
        dc = self.comoving_distance(z)
        return self.dh * dc**2 * np.interp(z, self.z, self.inv_e)


DEFAULT = Cosmology()
