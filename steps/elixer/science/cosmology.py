"""Flat Lambda-CDM distances (H0 = 70, Omega_M = 0.3, no radiation, as Leung et al. 2017).

Only what the LAE/[OII] odds need: luminosity distance (cm) and comoving volume per unit redshift
per steradian (Mpc^3).  The values are ``astropy.cosmology.FlatLambdaCDM``'s (``Tcmb0 = 0``),
tabulated on a redshift grid (spacing 0.0015) so that each call on the Monte Carlo draws is a
cheap interpolation (relative error below 1e-6 against astropy).  A redshift beyond the grid
extends it (it is never clamped to its last value: at z = 7 a grid that stopped at 6 gave a
luminosity distance 4 % and a dV/dz 12 % too small); a negative or non-finite redshift is refused.
"""

from __future__ import annotations

import numpy as np

C_KM_S = 299792.458
MPC_CM = 3.0856775814913673e24  # astropy.units.Mpc in cm
DZ = 0.0015  # grid spacing


class Cosmology:
    def __init__(self, h0: float = 70.0, omega_m: float = 0.3, z_max: float = 6.0):
        from astropy.cosmology import FlatLambdaCDM

        self.h0, self.omega_m = h0, omega_m
        self.astropy = FlatLambdaCDM(H0=h0, Om0=omega_m, Tcmb0=0.0)
        self.dh = C_KM_S / h0  # Hubble distance, Mpc
        self._tabulate(z_max)

    def _tabulate(self, z_max: float) -> None:
        import astropy.units as u

        self.z = np.linspace(0.0, z_max, int(np.ceil(z_max / DZ)) + 1)
        dc = self.astropy.comoving_distance(self.z).to_value(u.Mpc)
        # D_C / z is smooth down to z = 0 (where it is the Hubble distance): interpolating it keeps
        # the relative error small at low redshift, where D_C itself bends between the nodes
        self.dc_over_z = np.concatenate([[self.dh], dc[1:] / self.z[1:]])
        self.inv_e = self.astropy.inv_efunc(self.z)

    def _covered(self, z) -> np.ndarray:
        """``z`` as an array, the grid extended to cover it; a negative or non-finite z is refused."""
        z = np.asarray(z, float)
        if z.size and not (np.all(np.isfinite(z)) and np.min(z) >= 0.0):
            bad = z[~(np.isfinite(z) & (z >= 0.0))].ravel()[0]
            raise ValueError(f"redshift {bad} is not a finite value >= 0")
        top = float(np.max(z)) if z.size else 0.0
        if top > self.z[-1]:
            self._tabulate(max(2.0 * self.z[-1], 1.1 * top))
        return z

    def comoving_distance(self, z):
        """Line-of-sight comoving distance, Mpc."""
        z = self._covered(z)
        return z * np.interp(z, self.z, self.dc_over_z)

    def luminosity_distance_cm(self, z):
        z = self._covered(z)
        return (1 + z) * self.comoving_distance(z) * MPC_CM

    def dvdz(self, z):
        """Comoving volume per unit redshift per steradian, Mpc^3."""
        z = self._covered(z)
        return self.dh * self.comoving_distance(z) ** 2 * np.interp(z, self.z, self.inv_e)


DEFAULT = Cosmology()
