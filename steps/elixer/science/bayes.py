"""LAE versus [OII] posterior odds (PLAE/POII) of one emission line, after Leung et al. 2017.

    PLAE/POII = P(LAE) P(L, EW | LAE) / ( P(OII) P(L, EW | OII) )

* the line is LyA at z = wave/1215.67 - 1 or [OII] at z = wave/3727.8 - 1;
* P(L | class): the Schechter luminosity function of that redshift, normalised above the survey's
  limiting luminosity, probed in a +-5 % bin around the observed luminosity;
* P(EW | class): the exponential rest-frame EW distribution, in a +-5 % bin around the observed EW;
  with no continuum detection the EW is a lower limit and the survival probability is used;
* P(LAE) = n_LAE / (n_LAE + n_OII): both functions integrated above the limit, times the comoving
  volume of the redshift slice that the same wavelength interval maps to.

Bins are small, so each probability is its density times the bin width, computed in logarithms (no
underflow for very bright or very faint lines).  The odds are clipped to [0.001, 1000].
"""

from __future__ import annotations

import numpy as np

from steps.elixer.science.cosmology import Cosmology
from steps.elixer.science.lines import LYA, OII
from steps.elixer.science.priors import ClassifierPriors, flux_limit, lae_params, oii_params, upper_gamma


def _log_class_terms(wave, flux, ew_obs, ew_is_limit, rest, phi, lstar, w0, alpha, p, cosmo):
    """log of prior density n(wave) and of P(L) P(EW) for one class (arrays over samples)."""
    z = wave / rest - 1.0
    four_pi_d2 = 4 * np.pi * cosmo.luminosity_distance_cm(z) ** 2
    l_min = four_pi_d2 * flux_limit(p, wave)
    norm = upper_gamma(alpha + 1, l_min / lstar)  # n(>L_min) / phi*
    log_n = np.log(phi * norm * cosmo.dvdz(z) / rest)  # objects per unit wavelength (dz/dwave = 1/rest)
    x = np.maximum(four_pi_d2 * flux, 1e-30) / lstar
    log_pl = np.log(2 * p.flux_bin) + (alpha + 1) * np.log(x) - x - np.log(norm)
    y = np.maximum(ew_obs, 1e-6) / (1 + z) / w0
    log_pew = np.where(ew_is_limit, -y, np.log(2 * p.flux_bin) + np.log(y) - y)
    return log_n, log_pl + log_pew


def plae_poii(wave, flux_cgs, ew_obs, ew_is_limit=False, p: ClassifierPriors | None = None,
              cosmo: Cosmology | None = None):
    """PLAE/POII for a line at ``wave`` (A) of flux ``flux_cgs`` (erg/s/cm^2) and observed EW (A).

    ``flux_cgs`` and ``ew_obs`` may be arrays (Monte Carlo draws); returns an array of clipped odds.
    """
    p = p or ClassifierPriors()
    cosmo = cosmo or Cosmology(p.h0, p.omega_m)
    flux, ew, limit = np.broadcast_arrays(np.atleast_1d(np.asarray(flux_cgs, float)), np.asarray(ew_obs, float),
                                          np.asarray(ew_is_limit, bool))
    lo, hi = p.odds_clip
    if wave <= OII * 1.0005:  # no [OII] blueward of its rest wavelength
        return np.full(flux.shape, hi)
    z_lae, z_oii = wave / LYA - 1, wave / OII - 1
    phi_l, ls_l, w0_l = lae_params(p, z_lae)
    phi_o, ls_o, w0_o = oii_params(p, z_oii)
    n_l, d_l = _log_class_terms(wave, flux, ew, limit, LYA, phi_l, ls_l, w0_l, p.lae.alpha, p, cosmo)
    n_o, d_o = _log_class_terms(wave, flux, ew, limit, OII, phi_o, ls_o, w0_o, p.oii.alpha, p, cosmo)
    log_odds = (n_l + d_l) - (n_o + d_o)
    return np.clip(np.exp(np.clip(log_odds, -50, 50)), lo, hi)


def prior_plae(wave, p: ClassifierPriors | None = None, cosmo: Cosmology | None = None) -> float:
    """P(LAE) from number densities and volumes alone (no line data)."""
    p = p or ClassifierPriors()
    cosmo = cosmo or Cosmology(p.h0, p.omega_m)
    if wave <= OII:
        return 1.0
    phi_l, ls_l, w0_l = lae_params(p, wave / LYA - 1)
    phi_o, ls_o, w0_o = oii_params(p, wave / OII - 1)
    n_l, _ = _log_class_terms(wave, np.array([1e-16]), np.array([1.0]), False, LYA, phi_l, ls_l, w0_l, p.lae.alpha, p, cosmo)
    n_o, _ = _log_class_terms(wave, np.array([1e-16]), np.array([1.0]), False, OII, phi_o, ls_o, w0_o, p.oii.alpha, p, cosmo)
    return float(1.0 / (1.0 + np.exp(np.ravel(n_o)[0] - np.ravel(n_l)[0])))


def plae_poii_mc(wave, flux, flux_err, cont, cont_err, p: ClassifierPriors | None = None,
                 cosmo: Cosmology | None = None, rng=None, unit: float = 1e-17):
    """Odds at the measured values plus a 68 % Monte Carlo interval (lo, hi).

    ``flux`` in ``unit`` erg/s/cm^2, ``cont`` in ``unit`` erg/s/cm^2/A.  A continuum below 2 sigma
    is a non-detection: the EW is the lower limit flux / (max(cont, 0) + 2 sigma).
    """
    p = p or ClassifierPriors()
    rng = rng if rng is not None else np.random.default_rng(0)

    def ew_of(f, c):
        sig = max(cont_err, 1e-6)
        limit = c < 2 * sig
        c_used = np.where(limit, np.maximum(c, 0) + 2 * sig, c)
        return f / c_used, limit

    ew, limit = ew_of(np.array([flux]), np.array([cont]))
    best = plae_poii(wave, max(flux, 1e-3) * unit, ew, limit, p, cosmo)[0]
    fs = np.maximum(rng.normal(flux, max(flux_err, 1e-6), p.mc_samples), 1e-3)
    cs = rng.normal(cont, max(cont_err, 1e-6), p.mc_samples)
    ews, lims = ew_of(fs, cs)
    draws = plae_poii(wave, fs * unit, ews, lims, p, cosmo)
    lo, hi = np.percentile(draws, [16, 84])
    return float(best), float(lo), float(hi)
