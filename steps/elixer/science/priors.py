"""The documented priors of the LAE / [OII] classification (a pydantic model, every value settable).

Sources of the defaults (facts as used by ELiXer's Bayes module, after Leung et al. 2017, ApJ 843, 130):

* LAE luminosity function: Schechter, alpha = -1.65; log phi* and log L* linear in z between the
  z = 2.063 and z = 3.104 fits of Ciardullo et al. 2012 (ApJ 744, 110): log phi* = -2.86 / -3.17
  [Mpc^-3], log L* = 42.33 / 42.76 [erg/s].  EW_rest distribution exponential with scale
  w0 = 50 / 64 A at the same redshifts (Ci12 figure 9).
* [OII] luminosity function: Schechter, alpha = -1.2, Ciardullo et al. 2013 (ApJ 769, 83) table 1
  in four bins z = 0.100, 0.2625, 0.3875, 0.505: log L* = 41.07, 41.29, 41.50, 41.68, cumulative
  density above log L = 40.5 of -2.30, -2.12, -2.07, -2.07 [Mpc^-3]; EW_rest scale
  w0 = 8.0, 11.5, 16.6, 21.5 A.
* Survey depth: the 5-sigma line-flux limit versus wavelength that normalises both luminosity
  functions (L_min) and sets the prior P(LAE) = n_LAE / (n_LAE + n_OII) per unit wavelength.
* Decision: PLAE/POII clipped to [0.001, 1000]; its 50/50 midpoint moves linearly from 1.4 at
  4000 A to 10 at 5000 A (Leung et al. 2017 table 3, as ELiXer); P(LyA) > 0.5 is LyA.
* Vote: g-band magnitude zero point 24.2 at 4500 A moving 1.2 mag per 1000 A (LAEs are fainter),
  Gaussian width 0.5 mag; a line sigma above 4.5 A is unlikely [OII] and none is above 7.6 A.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy.special import gamma, gammaincc


class LaeLF(BaseModel):
    model_config = ConfigDict(extra="forbid")
    alpha: float = Field(-1.65, description="Schechter faint-end slope")
    z_ref: tuple[float, float] = Field((2.063, 3.104), description="redshifts of the two reference fits")
    log_phi_star: tuple[float, float] = Field((-2.86, -3.17), description="log10 phi* [Mpc^-3] at z_ref")
    log_l_star: tuple[float, float] = Field((42.33, 42.76), description="log10 L* [erg/s] at z_ref")
    w0: tuple[float, float] = Field((50.0, 64.0), description="EW_rest exponential scale [A] at z_ref")


class OiiLF(BaseModel):
    model_config = ConfigDict(extra="forbid")
    alpha: float = Field(-1.2, description="Schechter faint-end slope")
    z_ref: tuple[float, ...] = (0.100, 0.2625, 0.3875, 0.505)
    log_l_star: tuple[float, ...] = (41.07, 41.29, 41.50, 41.68)
    log_n_405: tuple[float, ...] = Field((-2.30, -2.12, -2.07, -2.07), description="log10 density above L = 10^40.5")
    w0: tuple[float, ...] = (8.0, 11.5, 16.6, 21.5)


class ClassifierPriors(BaseModel):
    """Every number the classification uses; set under ``[settings.priors]`` of a run configuration."""

    model_config = ConfigDict(extra="forbid")

    lae: LaeLF = LaeLF()
    oii: OiiLF = OiiLF()
    h0: float = 70.0
    omega_m: float = 0.3
    flux_limit_wave: tuple[float, ...] = (3500.0, 3700.0, 4000.0, 4500.0, 5000.0, 5500.0)
    flux_limit: tuple[float, ...] = Field(
        (1.6e-16, 1.0e-16, 7.0e-17, 5.5e-17, 5.0e-17, 5.5e-17),
        description="5-sigma line-flux limit [erg/s/cm^2] at flux_limit_wave (normalises the LFs)")
    flux_bin: float = Field(0.05, description="half width of the flux and EW bins of P(data|class), fractional")
    odds_clip: tuple[float, float] = (0.001, 1000.0)
    midpoint_wave: tuple[float, float] = (4000.0, 5000.0)
    midpoint_odds: tuple[float, float] = (1.4, 10.0)
    mc_samples: int = Field(100, ge=10, description="Monte Carlo draws for the PLAE/POII interval")
    mag_zero_4500: float = 24.2
    mag_zero_slope: float = Field(1.2, description="mag per 1000 A")
    mag_sigma: float = 0.5
    mag_limit: float = Field(24.8, description="g continuum limit of a HETDEX spectrum")
    sigma_transition: float = Field(4.5, description="line sigma [A] above which [OII] becomes unlikely")
    sigma_max_oii: float = Field(7.6, description="largest [OII] line sigma [A]")
    multiline_min_sn: float = Field(4.0, description="S/N of a companion line that makes a multiline solution")
    weight_plae: float = 1.0
    weight_ew: float = 0.5
    weight_mag: float = 0.5
    weight_sigma: float = 1.0
    weight_multiline: float = 3.0
    weight_slope: float = 0.5
    slope_boundary: float = Field(-1.3, description="beta (f_lambda ~ lambda^beta) between blue LAE and red [OII] hosts")
    plya_threshold: float = 0.5


def upper_gamma(a: float, x):
    """Upper incomplete gamma Gamma(a, x) for any real a (recurrence below a = 0)."""
    x = np.asarray(x, float)
    if a > 0:
        return gammaincc(a, x) * gamma(a)
    return (upper_gamma(a + 1, x) - x**a * np.exp(-x)) / a


def lae_params(p: ClassifierPriors, z):
    """phi* [Mpc^-3], L* [erg/s], w0 [A] of LAEs at redshift z (linear in z, extrapolated)."""
    l = p.lae
    t = (np.asarray(z, float) - l.z_ref[0]) / (l.z_ref[1] - l.z_ref[0])
    lin = lambda pair: pair[0] + (pair[1] - pair[0]) * t  # noqa: E731
    return 10 ** lin(l.log_phi_star), 10 ** lin(l.log_l_star), lin(l.w0)


def _piecewise(zs, values, z):
    """ELiXer's [OII] inter/extrapolation: linear within the bin pair around z, extrapolated at the ends."""
    zs, values, z = np.asarray(zs), np.asarray(values), np.asarray(z, float)
    i = np.clip(np.searchsorted(zs, z, side="left") - 1, 0, len(zs) - 2)
    return values[i] + (values[i + 1] - values[i]) / (zs[i + 1] - zs[i]) * (z - zs[i])


def oii_params(p: ClassifierPriors, z):
    o = p.oii
    l_star = 10 ** _piecewise(o.z_ref, o.log_l_star, z)
    n405 = 10 ** _piecewise(o.z_ref, o.log_n_405, z)
    phi_star = n405 / upper_gamma(o.alpha + 1, 10**40.5 / l_star)
    return phi_star, l_star, _piecewise(o.z_ref, o.w0, z)


def flux_limit(p: ClassifierPriors, wave):
    return np.interp(wave, p.flux_limit_wave, p.flux_limit)


def odds_midpoint(p: ClassifierPriors, wave):
    """The PLAE/POII value that is 50/50 at this wavelength."""
    return np.interp(wave, p.midpoint_wave, p.midpoint_odds)


def mag_zero(p: ClassifierPriors, wave):
    """g magnitude above which (fainter) a line at this wavelength is more likely LyA."""
    return p.mag_zero_4500 + p.mag_zero_slope * (np.asarray(wave, float) - 4500.0) / 1000.0
