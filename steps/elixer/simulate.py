"""Simulated HETDEX line detections (the stand-in for the reduction pipeline's detections file).

Writes ``detect_sim.h5`` in the hetdex_api layout (``/Detections``, ``/Spectra``, ``/Fibers``),
``detectids.txt`` and ``truth.csv``.  The populations come from published luminosity functions and
equivalent-width distributions, independent of the classifier's defaults, and each spectrum has
the features real ones have (the evidence the classifier may use, drawn here with their scatter):

* LAEs, 1.88 < z < 3.52: Schechter LF of Gronwall et al. 2015 (log n(>1.5e42) = -3.08 / -2.98 and
  log L* = 42.61 / 42.77 at z = 2.063 / 3.104, alpha = -1.65), exponential EW_rest with w0 = 50 /
  100 A (Gronwall et al. 2015 table 6).  Those fits describe narrow-band LAEs, EW_rest > 20 A; a
  further ``low_ew_lae_fraction`` (default 10 %) of Lyman-alpha lines is drawn from the same
  exponential extrapolated below 20 A (weak-LyA continuum-bright galaxies, the hard cases).
  - the line: an asymmetric red peak (the skewed Gaussian of Shibuya et al. 2014, a_asym 0.05-0.35,
    intrinsic FWHM 150-450 km/s), in half of them a weak blue peak (10-30 % of the flux,
    200-450 km/s blueward), the IGM's transmission applied to its blue side, then the VIRUS
    resolution (FWHM 5.6 A) and the 2-A pixels;
  - the continuum: f_lambda ~ lambda^beta with beta ~ N(-2.1, 0.35) for EW_rest > 40 A, reddening
    to N(-1.6, 0.4) at low EW (continuum-bright LBGs; Shapley et al. 2003); the interstellar
    absorption lines of the LBG composite (SiII 1260, OI 1302, CII 1334, SiIV, SiII 1527, CIV, FeII,
    AlII; EW_rest 1-3 A times 0.2-1, weaker for strong LyA); the IGM of Madau 1995
    (tau = 0.0036 (lambda / 1216)^3.46 blueward of LyA, + 0.0017 (lambda / 1026)^3.46 blueward of
    LyB, the Lyman limit below 912 A rest), its optical depth scaled per sightline by a lognormal
    of 0.15 dex, with forest fluctuations pixel to pixel;
  - companions: CIV, HeII, CIII] at a few per cent of LyA (Stark et al. 2014 for low-mass LAEs);
    3 % broad-line (AGN) LAEs with NV, CIV, HeII and CIII] of 10-30 %.
* [OII] emitters, 0.05 < z < 0.48: Schechter LF of Ciardullo et al. 2013 (alpha = -1.2, four
  bins), exponential EW_rest with w0 = 8.0-21.5 A (Ciardullo et al. 2013 table 1).
  - the line: the 3726.03 / 3728.82 doublet (F3729/F3726 uniform in 1.0-1.5), velocity dispersion
    25-100 km/s per member, at the VIRUS resolution (unresolved, one broadened line);
  - the continuum: the host's D_n(4000) (Balogh et al. 1999 bands) from ~1.45 for EW_rest ~ 0 to
    ~1.1 above 50 A (the high-EW emitters are young, blue, metal-poor: Kauffmann et al. 2003),
    Ca II K and H in absorption (EW_rest 1-6 A, growing with the break), a small Balmer break at
    3646 A and Balmer absorption under the Balmer lines; beta ~ N(-0.3, 0.4) at low EW to
    N(-1.5, 0.4) at high EW;
  - companions (to the [OII] flux, lognormal): H-beta 0.33 (0.15 dex), [OIII] 5007 0.45
    (0.3 dex), [OIII] 4959 = 5007 / 2.98, [NeIII] 3869 0.09 (0.2 dex), H-gamma = 0.47 H-beta,
    H-delta = 0.26 H-beta (case B); at high EW the ionisation is higher: [OIII] x 3.5,
    [NeIII] x 2.2, H-beta x 1.4 at EW_rest >= 50 A (low-metallicity emitters; Nakajima & Ouchi 2014).
* Counts per wavelength follow each LF integrated above the detection limit times the comoving
  volume (flat LCDM, H0 = 70, Omega_M = 0.3); the class mix is what the sky gives, not chosen.
  ``only`` (LAE or OII), ``lae_ew_range`` and ``oii_ew_min`` draw enriched samples of one class and
  EW range (the hard cases), with everything else as in the natural mix.
* Noise: per-pixel errors from a HETDEX-like sensitivity curve, plus a smooth sky residual (0.02e-17
  rms in offset, tilt and curvature, and a rise at the blue end, as ELiXer's residual models of
  empty apertures have); lines are detected when their measured S/N >= 4.5.

Truth columns: detectid, true_class (LAE / OII), z, wave, flux (1e-17 erg/s/cm^2), ew_rest (A,
own frame), sigma (A, the observed line's rms width), sn_true, g_mag, agn, beta, asym (LyA
a_asym), d4000 (OII host), igm (LAE sightline scale of tau).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from steps.elixer.detfile import DETECTION_FIELDS, FIBER_FIELDS, SPECTRA_FIELDS
from steps.elixer.science.cosmology import Cosmology
from steps.elixer.science.lines import CA_H, CA_K, ISM_UV, LINES, LYA, LYB, LYMAN_LIMIT, OII, OII_DOUBLET, WAVE_GRID
from steps.elixer.science.priors import upper_gamma

SIGMA_INST = 5.6 / 2.3548  # VIRUS resolution, A
WAVE_RANGE = (3500.0, 5500.0)
NOISE_WAVE = np.array([3470, 3600, 3800, 4000, 4500, 5000, 5540.0])
NOISE_PER_A = np.array([0.75, 0.45, 0.33, 0.28, 0.24, 0.23, 0.30])  # 1e-17 erg/s/cm^2/A per pixel, 1 sigma
SKY_RESIDUAL = 0.02  # rms of the smooth continuum residual, 1e-17 erg/s/cm^2/A (ELiXer's HDR3 models: 0.015-0.03)
SKY_BLUE = 0.04  # rms of its rise at the blue end (e-folding 100 A from 3470 A; ELiXer's models reach 0.08)
SN_DETECT = 4.5
C_A_S = 2.99792458e18


def pixel_noise(wave):
    return np.interp(wave, NOISE_WAVE, NOISE_PER_A)


def flux_noise_1sigma(wave, sigma=2.8):
    """1-sigma line-flux error (1e-17) of an optimal Gaussian extraction on 2-A pixels."""
    return pixel_noise(wave) * np.sqrt(2 * np.sqrt(np.pi) * sigma * 2.0)


# --- populations (published LFs) ------------------------------------------------------------------
def lae_lf(z):
    t = (z - 2.063) / (3.104 - 2.063)
    log_ls = 42.61 + (42.77 - 42.61) * t
    n_tot = 10 ** (-3.08 + (-2.98 + 3.08) * t)
    phi = n_tot / upper_gamma(-1.65 + 1, 1.5e42 / 10**log_ls)
    return phi, 10**log_ls, -1.65, 50.0 + (100.0 - 50.0) * t


def oii_lf(z):
    zs, lls, ln405, w0 = [0.100, 0.2625, 0.3875, 0.505], [41.07, 41.29, 41.50, 41.68], [-2.30, -2.12, -2.07, -2.07], [8.0, 11.5, 16.6, 21.5]
    ls = 10 ** np.interp(z, zs, lls)
    phi = 10 ** np.interp(z, zs, ln405) / upper_gamma(-1.2 + 1, 10**40.5 / ls)
    return phi, ls, -1.2, float(np.interp(z, zs, w0))


@dataclass
class Source:
    cls: str
    z: float
    wave: float  # observed wavelength of the line's flux-weighted centre
    flux: float  # 1e-17 erg/s/cm^2
    ew_rest: float
    sigma: float  # rms width of the observed (instrument-broadened) line, A
    beta: float
    agn: bool = False
    fwhm_kms: float = 0.0  # intrinsic (LyA red peak) or per doublet member (OII, as FWHM of sigma_v)
    asym: float = 0.0  # LyA a_asym
    blue_frac: float = 0.0  # LyA blue-peak share of the flux
    blue_kms: float = 0.0
    ratio3729: float = 1.3  # OII doublet F3729 / F3726
    d4000: float = 1.0  # OII host break
    igm: float = 1.0  # LAE sightline scale of the IGM optical depth
    ism: float = 0.0  # LAE interstellar absorption strength (x the LBG composite)
    companions: dict = field(default_factory=dict)  # line name -> flux ratio to the main line


@dataclass(frozen=True)
class Stress:
    """Departures from the default physics, to check that a classifier is not tuned to this simulator
    (``astroflow``'s score runs the same truth tests on each; all 1 / 0 is the default)."""

    igm_scale: float = 1.0  # x the IGM optical depth
    lya_asym: float = 1.0  # x the LyA asymmetry (0: symmetric lines, no blue peak)
    lae_beta_shift: float = 0.0  # added to the LAEs' UV slopes (> 0: redder)
    oii_beta_shift: float = 0.0  # added to the [OII] hosts' slopes (< 0: bluer)
    d4000_scale: float = 1.0  # x (D_n(4000) - 1) of the [OII] hosts
    oii_line_scale: float = 1.0  # x the [OII] emitters' companion ratios
    sky_scale: float = 1.0  # x the sky-residual continuum
    noise_scale: float = 1.0  # true noise / the error array's (> 1: errors under-reported)


STRESS = {
    "default": Stress(),
    "weak_igm": Stress(igm_scale=0.6), "strong_igm": Stress(igm_scale=1.6),
    "symmetric_lya": Stress(lya_asym=0.0), "red_lae": Stress(lae_beta_shift=0.5),
    "blue_oii": Stress(oii_beta_shift=-0.5, d4000_scale=0.6), "weak_oii_lines": Stress(oii_line_scale=0.5),
    "sky": Stress(sky_scale=5.0), "noise": Stress(noise_scale=1.15),
}


def _draw_ew(rng, cls, w0, low_ew_fraction, lae_ew_range, oii_ew_min):
    if cls == "LAE" and lae_ew_range is not None:
        lo, hi = lae_ew_range
        u = rng.random()
        return -w0 * np.log(np.exp(-lo / w0) - u * (np.exp(-lo / w0) - np.exp(-hi / w0)))  # truncated exponential
    if cls == "OII" and oii_ew_min is not None:
        return oii_ew_min + rng.exponential(w0)
    if cls == "LAE" and rng.random() >= low_ew_fraction:
        return 20.0 + rng.exponential(w0)  # the LF's own sample: EW_rest > 20 A, exponential (memoryless)
    if cls == "LAE":
        return -w0 * np.log(1 - rng.random() * (1 - np.exp(-20.0 / w0)))  # the extrapolated tail below 20 A
    return rng.exponential(w0)


def _lae_properties(rng, src: Source, st: Stress = Stress()) -> None:
    t = float(np.clip((src.ew_rest - 10.0) / 30.0, 0, 1))  # 0: continuum-bright LBG, 1: strong LAE
    src.agn = rng.random() < 0.03
    src.fwhm_kms = rng.uniform(1500, 4000) if src.agn else rng.uniform(150, 450)
    src.asym = 0.0 if src.agn else rng.uniform(0.05, 0.35) * st.lya_asym
    if not src.agn and rng.random() < 0.5:
        src.blue_frac, src.blue_kms = rng.uniform(0.1, 0.3) * min(st.lya_asym, 1.0), rng.uniform(200, 450)
    src.beta = rng.normal(-1.6 - 0.5 * t, 0.4 - 0.05 * t) + st.lae_beta_shift
    src.igm = float(10 ** rng.normal(0, 0.15)) * st.igm_scale
    src.ism = rng.uniform(0.2, 1.0) * (1 - 0.6 * t)
    if src.agn:
        src.companions = {k: v * 10 ** rng.normal(0, 0.15) for k, v in
                          {"NV": 0.1, "CIV": 0.25, "HeII": 0.08, "CIII]": 0.15}.items()}
    else:
        src.companions = {"CIV": 10 ** rng.normal(-1.7, 0.3), "HeII": 10 ** rng.normal(-1.9, 0.3),
                          "CIII]": 10 ** rng.normal(-1.3, 0.3)}


def _oii_properties(rng, src: Source, st: Stress = Stress()) -> None:
    t = float(np.clip(src.ew_rest / 50.0, 0, 1))  # 0: old, red host; 1: young, metal-poor starburst
    src.fwhm_kms = 2.3548 * rng.uniform(25, 100)
    src.ratio3729 = rng.uniform(1.0, 1.5)
    src.d4000 = 1 + (float(np.exp(rng.normal(np.log(1.45 - 0.35 * t), 0.06))) - 1) * st.d4000_scale
    src.beta = rng.normal(-0.3 - 1.2 * t, 0.4) + st.oii_beta_shift
    k = st.oii_line_scale
    hb = 0.33 * 10 ** rng.normal(0, 0.15) * (1 + 0.4 * t) * k
    o3 = 0.45 * 10 ** rng.normal(0, 0.3) * (1 + 2.5 * t) * k
    src.companions = {"H-beta": hb, "[OIII]": o3, "[OIII]4959": o3 / 2.98,
                      "[NeIII]": 0.09 * 10 ** rng.normal(0, 0.2) * (1 + 1.2 * t) * k,
                      "H-gamma": 0.47 * hb, "H-delta": 0.26 * hb}


def _draw_population(rng, n: int, cosmo: Cosmology, low_ew_fraction: float, only: str | None = None,
                     lae_ew_range=None, oii_ew_min=None, stress: Stress = Stress()) -> list[Source]:
    """Draw n detectable sources, class and wavelength in proportion to LF x volume above the limit."""
    grid = np.linspace(*WAVE_RANGE, 201)
    mids = 0.5 * (grid[1:] + grid[:-1])
    rates = {}
    for cls, rest, lf in (("LAE", LYA, lae_lf), ("OII", OII, oii_lf)):
        z = mids / rest - 1
        r = np.zeros_like(mids)
        for i, (zi, wi) in enumerate(zip(z, mids)):
            if cls == "OII" and zi < 0.05:
                continue
            phi, ls, alpha, _ = lf(zi)
            lmin = 4 * np.pi * cosmo.luminosity_distance_cm(zi) ** 2 * 3.0 * flux_noise_1sigma(wi) * 1e-17
            r[i] = phi * upper_gamma(alpha + 1, lmin / ls) * cosmo.dvdz(zi) / rest
        rates[cls] = r
    total = rates["LAE"].sum() + rates["OII"].sum()
    out = []
    while len(out) < n:
        cls = only or ("LAE" if rng.random() < rates["LAE"].sum() / total else "OII")
        rest, lf = (LYA, lae_lf) if cls == "LAE" else (OII, oii_lf)
        k = rng.choice(len(mids), p=rates[cls] / rates[cls].sum())
        wave = rng.uniform(grid[k], grid[k + 1])
        z = wave / rest - 1
        phi, ls, alpha, w0 = lf(z)
        d2 = 4 * np.pi * cosmo.luminosity_distance_cm(z) ** 2
        lmin = d2 * 3.0 * flux_noise_1sigma(wave) * 1e-17
        lum = _schechter_draw(rng, alpha, ls, lmin)
        flux = lum / d2 / 1e-17
        ew = _draw_ew(rng, cls, w0, low_ew_fraction, lae_ew_range, oii_ew_min)
        src = Source(cls, z, wave, flux, ew, 0.0, 0.0)
        (_lae_properties if cls == "LAE" else _oii_properties)(rng, src, stress)
        src.sigma = float(np.sqrt(_line_moments(src)[1]))
        sn = flux / flux_noise_1sigma(wave, src.sigma)
        if sn + rng.normal() < SN_DETECT:
            continue
        out.append(src)
    return out


def _schechter_draw(rng, alpha, lstar, lmin):
    """One luminosity from a Schechter function above lmin (inverse CDF on a log grid)."""
    x = np.logspace(np.log10(lmin / lstar), np.log10(lmin / lstar) + 4, 400)
    cdf = 1 - upper_gamma(alpha + 1, x) / upper_gamma(alpha + 1, x[0])
    return float(np.interp(rng.random(), cdf, x) * lstar)


# --- spectra ---------------------------------------------------------------------------------------
FINE = 0.25  # A, the grid on which line profiles are built before the instrument and the pixels


def _gauss(wave, center, sigma, flux):
    return flux * np.exp(-0.5 * ((wave - center) / sigma) ** 2) / (np.sqrt(2 * np.pi) * sigma)


def madau_tau(wave, z, scale: float = 1.0):
    """Effective IGM optical depth of Madau 1995 (LyA and LyB series terms, the Lyman limit)."""
    w = np.asarray(wave, float)
    tau = np.where(w < LYA * (1 + z), 0.0036 * (w / LYA) ** 3.46, 0.0)
    tau = tau + np.where(w < LYB * (1 + z), 0.0017 * (w / LYB) ** 3.46, 0.0)
    tau = tau + np.where(w < LYMAN_LIMIT * (1 + z), 3.0, 0.0)
    return scale * tau


def _intrinsic_line(src: Source, x: np.ndarray) -> np.ndarray:
    """Unit-flux line profile on the fine grid ``x`` (observed A) before the instrument."""
    c = 299792.458
    if src.cls == "OII":
        z = src.z
        sig_v = src.fwhm_kms / 2.3548 / c
        r = src.ratio3729
        prof = np.zeros_like(x)
        for rest, share in zip(OII_DOUBLET, (1 / (1 + r), r / (1 + r))):
            cw = rest * (1 + z)
            prof += _gauss(x, cw, max(sig_v * cw, 0.05), share)
        return prof
    center = src.wave
    if src.agn:
        prof = _gauss(x, center, src.fwhm_kms / 2.3548 / c * center, 1.0)
    else:
        d = src.fwhm_kms / 2.3548 / c * center
        dx = x - center
        width = src.asym * dx + d
        red = np.where(width > 0, np.exp(-0.5 * dx**2 / np.maximum(width, 1e-6) ** 2), 0.0)
        red /= red.sum() * FINE
        prof = (1 - src.blue_frac) * red
        if src.blue_frac:
            prof += _gauss(x, center * (1 - src.blue_kms / c), 0.6 * d, src.blue_frac)
        prof *= np.exp(-madau_tau(x, src.z, src.igm) * (x < center))  # the IGM eats the blue side
    return prof


def _observed_line(src: Source, x: np.ndarray) -> np.ndarray:
    """The line on the fine grid after the instrument (unit intrinsic flux; the IGM may take some)."""
    prof = _intrinsic_line(src, x)
    k = np.arange(-int(5 * SIGMA_INST / FINE), int(5 * SIGMA_INST / FINE) + 1) * FINE
    kern = np.exp(-0.5 * (k / SIGMA_INST) ** 2)
    return np.convolve(prof, kern / kern.sum(), mode="same")


def _line_moments(src: Source) -> tuple[float, float]:
    x = src.wave + np.arange(-80.0, 80.0, FINE)
    p = _observed_line(src, x)
    mu = float(np.sum(x * p) / np.sum(p))
    return mu, float(np.sum((x - mu) ** 2 * p) / np.sum(p))


def _binned_line(src: Source, wave: np.ndarray) -> np.ndarray:
    """Flux density of the observed line averaged over each 2-A pixel of ``wave``."""
    x = src.wave + np.arange(-80.0, 80.0, FINE)
    p = _observed_line(src, x)
    out = np.zeros_like(wave)
    sel = np.abs(wave - src.wave) < 78
    edges = np.concatenate([wave[sel] - 1.0, [wave[sel][-1] + 1.0]]) if sel.any() else np.array([])
    if len(edges):
        cum = np.concatenate([[0.0], np.cumsum(p) * FINE])
        xe = np.concatenate([x - FINE / 2, [x[-1] + FINE / 2]])
        out[sel] = np.diff(np.interp(edges, xe, cum)) / 2.0
    return out


def _absorption(w, center, sigma, ew):
    """Fractional depth profile of an absorption line of equivalent width ``ew`` (observed A)."""
    return ew * np.exp(-0.5 * ((w - center) / sigma) ** 2) / (np.sqrt(2 * np.pi) * sigma)


ISM_EW = {"SiII1260": 1.6, "OI1302": 2.2, "CII1334": 1.7, "SiIV1394": 1.8, "SiIV1403": 0.9,
          "SiII1527": 1.7, "CIV1549": 3.0, "FeII1608": 0.9, "AlII1671": 1.0}  # Shapley et al. 2003, A rest


def _continuum(src: Source, w: np.ndarray, rng) -> np.ndarray:
    """Noise-free continuum (1e-17 erg/s/cm^2/A): ``src.flux / (ew_rest (1 + z))`` at the line."""
    cont_line = src.flux / (src.ew_rest * (1 + src.z))
    z = src.z
    rest = w / (1 + z)
    shape = (w / src.wave) ** src.beta
    if src.cls == "LAE":
        tau = madau_tau(w, z, src.igm)
        fluct = np.exp(rng.normal(0, 0.35, w.size) * np.sqrt(np.clip(tau, 0, 1)))  # forest structure
        trans = np.where(w < src.wave, np.clip(np.exp(-tau) * fluct, 0, 1), 1.0)
        absorb = np.zeros_like(w)
        for name, rw in ISM_UV.items():
            ew = ISM_EW[name] * src.ism * (1 + z)
            absorb += _absorption(w, rw * (1 + z) * (1 - 150 / 299792.458), 2.6, ew)
        shape = shape * trans * np.clip(1 - absorb, 0, 1)
        norm = 1.0
    else:
        d = src.d4000
        step = 1 / d + (1 - 1 / d) / (1 + np.exp(-(rest - 3975.0) / 18.0))  # the 4000-A break
        balmer = 0.25 * rng.random()  # the Balmer break, spread over the crowding high-order Balmer lines
        step = step / (1 + balmer / (1 + np.exp((rest - 3660.0) / 12.0)))
        ew_k = (1.0 + 10.0 * (d - 1)) * rng.uniform(0.7, 1.3)
        absorb = _absorption(rest, CA_K, 3.0, ew_k) + _absorption(rest, CA_H, 3.0, 0.8 * ew_k)
        ew_bal = rng.uniform(1.0, 4.0)
        for name in ("H-delta", "H-gamma", "H-beta"):
            absorb += _absorption(rest, LINES[name], 6.0, ew_bal)
        shape = shape * step * np.clip(1 - absorb, 0, 1)
        norm = 1 / (1 / d + (1 - 1 / d) / (1 + np.exp(-(OII - 3975.0) / 18.0)))
    return cont_line * shape * norm


def source_spectrum(src: Source, rng) -> tuple[np.ndarray, dict]:
    """Noise-free f_lambda (1e-17 erg/s/cm^2/A) on the HETDEX grid, and the companion lines."""
    w = WAVE_GRID
    spec = _continuum(src, w, rng) + src.flux * _binned_line(src, w)
    lines = {}
    c = 299792.458
    for name, ratio in src.companions.items():
        cw = LINES[name] * (1 + src.z)
        if not (w[0] < cw < w[-1]):
            continue
        if src.cls == "LAE":
            sig = np.hypot(SIGMA_INST, (src.fwhm_kms if src.agn else 150.0) / 2.3548 / c * cw)
            cw = cw * (1 - 250 / c)  # LyA is redshifted from the systemic velocity of the other lines
        else:
            sig = np.hypot(SIGMA_INST, src.fwhm_kms / 2.3548 / c * cw)
        spec = spec + _gauss(w, cw, sig, src.flux * ratio)
        lines[name] = (cw, src.flux * ratio)
    return spec, lines


def simulate_detections(out: Path, n: int = 300, seed: int = 0, first_detectid: int = 3090000001,
                        low_ew_lae_fraction: float = 0.1, only: str | None = None,
                        lae_ew_range: tuple[float, float] | None = None, oii_ew_min: float | None = None,
                        stress: str | Stress = "default") -> dict:
    """Write the detections file, the detectid list and the truth table; return their paths.

    ``only`` ("LAE" or "OII"), ``lae_ew_range`` (EW_rest bounds of the LAEs, A) and ``oii_ew_min``
    (lowest EW_rest of the [OII] emitters, A) draw enriched samples of the hard cases; ``stress``
    (a name of :data:`STRESS` or a :class:`Stress`) departs from the default physics."""
    st = STRESS[stress] if isinstance(stress, str) else stress
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    cosmo = Cosmology()
    sources = _draw_population(rng, n, cosmo, low_ew_lae_fraction, only, lae_ew_range, oii_ew_min, st)
    det = np.zeros(n, dtype=DETECTION_FIELDS)
    spec = np.zeros(n, dtype=SPECTRA_FIELDS)
    fibers = []
    truth = []
    shots = [(20230117, 15, 168.4, 50.8), (20231102, 8, 23.1, 0.4), (20240310, 21, 210.2, 51.7)]
    for i, src in enumerate(sources):
        did = first_detectid + i
        date, obsid, ra0, dec0 = shots[i % len(shots)]
        shotid = date * 1000 + obsid
        model, _ = source_spectrum(src, rng)
        noise = pixel_noise(WAVE_GRID)
        x = (WAVE_GRID - 4500.0) / 1000.0
        sky = st.sky_scale * (SKY_RESIDUAL * (rng.normal() + rng.normal() * x + 0.5 * rng.normal() * x**2)
                              + SKY_BLUE * rng.normal() * np.exp(-(WAVE_GRID - 3470.0) / 100.0))
        flam = model + sky + rng.normal(0, noise * st.noise_scale)
        fn1 = flux_noise_1sigma(src.wave, src.sigma)
        centre = _line_moments(src)[0]
        flux_obs = src.flux * float(np.sum(_binned_line(src, WAVE_GRID)) * 2.0)  # after the IGM
        flux_meas = flux_obs + rng.normal(0, fn1)
        cont_line = src.flux / (src.ew_rest * (1 + src.z))
        ifux, ifuy = rng.uniform(-24, 24, 2)
        mf = f"multi_{rng.integers(20, 120):03d}_{rng.integers(20, 110):03d}_{rng.integers(10, 600):03d}_{rng.choice(['LL', 'LU', 'RL', 'RU'])}"
        fibnum = int(rng.integers(1, 113))
        ra, dec = ra0 + rng.uniform(-0.2, 0.2), dec0 + rng.uniform(-0.2, 0.2)
        row = det[i]
        row["detectid"], row["shotid"], row["date"], row["obsid"] = did, shotid, date, obsid
        row["fiber_id"] = f"{shotid}_1_{mf}_{fibnum:03d}".encode()
        row["ra"], row["dec"] = ra, dec
        row["wave"], row["wave_err"] = centre + rng.normal(0, 0.3), 0.3
        row["flux"], row["flux_err"] = flux_meas, fn1
        row["linewidth"], row["linewidth_err"] = src.sigma * rng.normal(1, 0.08), 0.3
        row["continuum"], row["continuum_err"] = 2 * (cont_line + rng.normal(0, 0.02)), 0.04
        row["sn"], row["sn_err"] = flux_meas / fn1, 1.0
        row["chi2"], row["chi2_err"], row["noise_ratio"] = rng.uniform(0.8, 1.4), 0.2, rng.uniform(0.9, 1.1)
        row["inputid"] = f"{date}v{obsid:03d}_{mf}_{fibnum:03d}".encode()
        row["x_raw"], row["y_raw"] = rng.integers(0, 1032, 2)
        row["x_ifu"], row["y_ifu"], row["weight"] = ifux, ifuy, rng.uniform(0.3, 0.6)
        row["fibnum"], row["multiframe"], row["expnum"] = fibnum, mf.encode(), 1
        row["specid"], row["ifuslot"], row["ifuid"], row["amp"] = mf[6:9].encode(), mf[10:13].encode(), mf[14:17].encode(), mf[18:20].encode()
        row["chi2fib"], row["apcor"], row["sn_cen"] = rng.uniform(0.8, 1.3), rng.uniform(0.85, 0.95), flux_meas / fn1
        row["flux_noise_1sigma"], row["sn_3fib"], row["sn_3fib_cen"] = fn1, flux_meas / fn1 * 0.8, flux_meas / fn1 * 0.8
        s = spec[i]
        s["detectid"] = did
        s["wave1d"] = WAVE_GRID
        s["spec1d"], s["spec1d_err"] = 2 * flam, 2 * noise  # per 2-A pixel
        s["spec1d_ffsky"] = 2 * (flam + rng.normal(0, 0.2 * noise))
        s["spec1d_nc"], s["spec1d_nc_err"] = 2 * flam / 0.9, 2 * noise / 0.9
        s["counts1d"], s["counts1d_err"] = 20 * flam, 20 * noise
        s["apsum_counts"], s["apsum_counts_err"] = 21 * flam, 21 * noise
        s["apcor"] = np.linspace(0.85, 0.92, 1036)
        for k in range(15):
            exp = k // 5 + 1
            dx, dy = rng.normal(0, 1.3, 2)
            dist = float(np.hypot(dx, dy))
            fib = np.zeros((), dtype=FIBER_FIELDS)
            fib["detectid"], fib["ra"], fib["dec"] = did, ra + dx / 3600 / np.cos(np.radians(dec)), dec + dy / 3600
            fib["x_ifu"], fib["y_ifu"], fib["multiframe"] = ifux + dx, ifuy + dy, mf.encode()
            fib["fibnum"] = max(1, min(112, fibnum + k - 7))
            fib["fiber_id"] = f"{shotid}_{exp}_{mf}_{int(fib['fibnum']):03d}".encode()
            fib["expnum"], fib["distance"], fib["wavein"] = exp, dist, src.wave
            fib["timestamp"] = f"{date}T0{exp}0000.0".encode()
            fib["date"], fib["obsid"], fib["weight"] = date, obsid, float(np.exp(-0.5 * (dist / 0.75) ** 2) / 6)
            fib["specid"], fib["ifuslot"], fib["ifuid"], fib["amp"] = row["specid"], row["ifuslot"], row["ifuid"], row["amp"]
            fib["x_raw"], fib["y_raw"] = row["x_raw"], row["y_raw"]
            fibers.append(fib)
        g_flam = float(np.median(model[np.abs(WAVE_GRID - 4686.0) < 60]))
        g_mag = -2.5 * np.log10(g_flam * 1e-17 * 4686.0**2 / C_A_S) - 48.6 if g_flam > 0 else 99.9
        truth.append({"detectid": did, "true_class": src.cls, "z": round(src.z, 5), "wave": round(src.wave, 3),
                      "flux": round(src.flux, 4), "ew_rest": round(src.ew_rest, 3), "sigma": round(src.sigma, 3),
                      "sn_true": round(flux_obs / fn1, 3), "g_mag": round(float(g_mag), 3), "agn": int(src.agn),
                      "beta": round(src.beta, 3), "asym": round(src.asym, 3), "d4000": round(src.d4000, 3),
                      "igm": round(src.igm, 3)})
    path = out / "detect_sim.h5"
    tmp = out / ".detect_sim.h5.tmp"
    with h5py.File(tmp, "w") as f:
        for name, data in (("Detections", det), ("Spectra", spec), ("Fibers", np.array(fibers, dtype=FIBER_FIELDS))):
            f.create_dataset(name, data=data, chunks=True, compression="gzip", compression_opts=4)
    tmp.replace(path)
    (out / "detectids.txt").write_text("".join(f"{r['detectid']}\n" for r in truth))
    with open(out / "truth.csv", "w", newline="") as fh:
        wr = csv.DictWriter(fh, fieldnames=list(truth[0]))
        wr.writeheader()
        wr.writerows(truth)
    return {"detections": path, "detectids": out / "detectids.txt", "truth": out / "truth.csv"}


def read_truth(path: str | Path) -> dict[int, dict]:
    with open(path) as fh:
        return {int(r["detectid"]): r for r in csv.DictReader(fh)}
