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
* Line width: a line sigma above 4.5 A is unlikely [OII] and none is above 7.6 A
  (ELiXer's LINEWIDTH_SIGMA_TRANSITION and LINEWIDTH_SIGMA_MAX_OII).

The spectral evidence (:mod:`.evidence`), each a likelihood ratio:

* Companion-line ratios to [OII] 3727 (observed, not dereddened; lognormal, median and dex):
  [NeIII] 3869 0.10 (0.30 dex): SDSS star-forming galaxies span 0.03-0.4 (Levesque & Richardson
  2014, Nakajima & Ouchi 2014, higher at low metallicity); the Balmer lines together,
  H-beta 0.35 (0.30 dex; [OII]/H-beta ~ 1-5 observed, Kewley et al. 2004, Moustakas et al. 2006)
  with H-gamma = 0.47 and H-delta = 0.26 H-beta (case B, Osterbrock & Ferland 2006); [OIII] 5007
  0.5 (0.45 dex: O32 from 0.1 to 10, Kewley & Dopita 2002, Nakajima & Ouchi 2014) with
  4959 = 5007 / 2.98 (Storey & Zeippen 2000).  Each [OII] group's prior has a further 10 % tail
  1 dex wide (dusty or metal-rich emitters, Balmer lines filled by absorption, AGN): the absence
  of a line is evidence, never proof.  Ratios to LyA, a mixture of star-forming LAEs
  (97 %: CIV, HeII, CIII] and NV of 0.02-0.05, 0.4 dex; Stark et al. 2014, Shapley et al. 2003)
  and AGN (3 %: 0.1-0.25, 0.3 dex).  LyA lies 300 +- 250 km/s redward of the other lines'
  systemic redshift (Hashimoto et al. 2013, Steidel et al. 2010).
* Robustness: a 2 % chance (``epsilon``) that what is measured at a line's place is something
  else (sky residual, neighbour, bad pixel), with fluxes up to half the line's; fits' chi-square
  differences tempered by 0.5; caps of the log-likelihood ratios (companions 12, shape 3,
  continuum 6, width 4).
* Continuum: LyA host beta ~ N(-1.9, 0.6) (Bouwens et al. 2009, Hathi et al. 2016 for z ~ 2-3
  LAEs and LBGs), the Madau 1995 IGM optical depth scaled by 10^N(0, 0.2 dex) per sightline;
  [OII] host beta ~ N(-0.6, 0.9) (optical continua of star-forming galaxies at z < 0.5), D_n(4000)
  flat in log from 1.0 to 2.3 (Kauffmann et al. 2003: star-forming 1.1-1.6, passive 1.7-2.2),
  ramping from Ca K (3934 A) to 4000 A, Ca K EW 1.5 + 8 (D_n(4000) - 1) A, H = 0.8 K
  (the relation of Ca K with the break in galaxy spectra, approximate); a sky residual of
  0.03e-17 erg/s/cm^2/A rms in offset and in tilt per 1000 A (ELiXer's HDR3 models of the
  residual in empty 3.5" apertures are 0.015-0.03e-17 from 3800 to 5400 A, up to 0.08e-17 at
  3470 A; the bluest 80 A are left out).
* Combination: ln odds = ln(PLAE/POII / midpoint) + the sum of the evidence's ln ratios
  (independent pieces of evidence multiply); P(LyA) = odds / (1 + odds).
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


class CompanionGroup(BaseModel):
    """Lines that share one flux ratio to the main line (``lines``: name -> coefficient), with the
    ratio's lognormal populations ``(median, dex, weight)``."""

    model_config = ConfigDict(extra="forbid")
    name: str
    lines: dict[str, float]
    populations: list[tuple[float, float, float]]


OII_COMPANIONS = [  # each: the core population and a 10 % tail 1 dex wide (dust, Balmer absorption, AGN, odd ones)
    CompanionGroup(name="NeIII", lines={"[NeIII]": 1.0}, populations=[(0.10, 0.30, 0.9), (0.10, 1.0, 0.1)]),
    CompanionGroup(name="Balmer", lines={"H-beta": 1.0, "H-gamma": 0.47, "H-delta": 0.26},
                   populations=[(0.35, 0.30, 0.9), (0.35, 1.0, 0.1)]),
    CompanionGroup(name="OIII", lines={"[OIII]": 1.0, "[OIII]4959": 1 / 2.98}, populations=[(0.5, 0.45, 0.9), (0.5, 1.0, 0.1)]),
]
LYA_COMPANIONS = [
    CompanionGroup(name=n, lines={n: 1.0}, populations=[(sf, 0.4, 0.97), (agn, 0.3, 0.03)])
    for n, sf, agn in (("NV", 0.02, 0.1), ("CIV", 0.03, 0.25), ("HeII", 0.02, 0.1), ("CIII]", 0.05, 0.15))
]


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
    sigma_transition: float = Field(4.5, description="line sigma [A] above which [OII] becomes unlikely")
    sigma_max_oii: float = Field(7.6, description="largest [OII] line sigma [A]")
    multiline_min_sn: float = Field(4.0, description="S/N of a companion line that makes a multiline solution")
    weight_multiline: float = Field(3.0, description="ln ratio against LyA of a strong solution of another frame")
    plya_threshold: float = 0.5
    # the spectral evidence (see the module docstring for the sources)
    oii_companions: list[CompanionGroup] = Field(default_factory=lambda: list(OII_COMPANIONS))
    lya_companions: list[CompanionGroup] = Field(default_factory=lambda: list(LYA_COMPANIONS))
    lya_systemic_kms: float = Field(300.0, description="LyA's offset redward of the systemic redshift, km/s")
    lya_systemic_sd_kms: float = Field(250.0, description="its scatter, km/s (widens the companions' profiles)")
    epsilon: float = Field(0.02, gt=0, lt=1, description="chance that a measure at a line's place is something else")
    other_scale: float = Field(0.5, gt=0, description="that something else's flux scale, x the line flux")
    temper: float = Field(0.5, gt=0, le=1, description="factor on the shape fits' log-likelihood differences")
    companions_cap: float = 12.0
    shape_cap: float = 3.0
    shape_min_sn: float = Field(5.0, description="line S/N below which the profile is not compared")
    width_max_ln_lr: float = Field(4.0, description="ln LR of a line at sigma_max_oii or broader")
    continuum_cap: float = 6.0
    cont_wave: tuple[float, float] = Field((3550.0, 5480.0), description="wavelengths used for the continuum shape")
    lae_beta: tuple[float, float] = Field((-1.9, 0.6), description="LyA host UV slope: mean, sd")
    oii_beta: tuple[float, float] = Field((-0.6, 0.9), description="[OII] host optical slope: mean, sd")
    igm_scale_dex: float = Field(0.2, description="sightline scatter of the IGM optical depth, dex")
    d4000_max: float = 2.3
    cahk_ew0: float = Field(1.5, description="Ca K rest EW [A] at no break")
    cahk_ew_per_break: float = Field(8.0, description="Ca K rest EW [A] per unit of D_n(4000) - 1")
    cahk_sigma: float = Field(2.5, description="rest-frame sigma of Ca H and K [A]")
    sky_offset_sd: float = Field(0.03, description="sky-residual continuum offset, 1e-17 erg/s/cm^2/A")
    sky_tilt_sd: float = Field(0.03, description="sky-residual continuum tilt, 1e-17 erg/s/cm^2/A per 1000 A")


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

