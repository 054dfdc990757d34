"""The evidence a HETDEX spectrum holds beyond the line's flux and EW: likelihood ratios LyA / [OII].

Each function returns an :class:`Evidence`: the measured value(s) and ``ln_lr``, the natural log
of L(data | LyA) / L(data | [OII]) (positive favours LyA), from explicit likelihood models whose
numbers are in :class:`~steps.elixer.science.priors.ClassifierPriors` with their sources.  Each
model is made robust the same way, so that no single feature decides against everything else
because the model is imperfect: the likelihood is a mixture with a small probability ``epsilon``
that the measurement is something else (a sky residual, a neighbour's line, a bad pixel), the
chi-square differences of the shape fits are tempered (multiplied by ``temper``, for correlated
noise and for real profiles and continua that are neither model exactly) and rescaled by the
better model's reduced chi-square when the errors are too small, and each ``ln_lr`` is capped.

1. :func:`companion_lines`: the lines the other lines of each frame would give.  Under [OII]
   (z = wave / 3727.8 - 1): [NeIII] 3869, the Balmer lines H-delta, H-gamma, H-beta (one
   ratio to [OII], case-B decrements), [OIII] 4959 + 5007 (one ratio, 1 : 2.98).  Under LyA:
   NV, CIV, HeII, CIII] (a star-forming and a 3 % AGN population).  A group's likelihood under
   its own frame integrates the measured fluxes over the lognormal prior of its ratio; under the
   other frame the lines are absent (flux 0 +- error).  A detected companion is strong evidence,
   and so is its absence where the ratio prior says it would be seen.
2. :func:`line_shape`: the line fitted as LyA (the asymmetric profile of Shibuya et al. 2014:
   a Gaussian whose width grows redward, ``sigma(dx) = a dx + d``) and as the [OII] doublet
   (3726.03 / 3728.82 at the [OII] redshift, one width, F3729/F3726 in 0.35-1.5); the tempered
   chi-square difference.  The red/blue flux ratio about the peak (ELiXer's ``rb_flux_asym``)
   is reported with it.
3. :func:`line_width`: ELiXer's rule that no [OII] line is broader than sigma = 7.6 A (from 4.5 A
   it becomes unlikely), as a likelihood ratio growing to ``width_max_ln_lr``.
4. :func:`continuum_shape`: the continuum (lines masked) fitted as a LyA host (a power law with
   the Lyman-alpha forest and LyB / Lyman-limit absorption of Madau 1995 blueward of the line, the
   IGM's optical depth scaled per sightline) and as an [OII] host (a power law with the 4000-A
   break D_n(4000) at 1.07 x the line wavelength and Ca II H and K in absorption), each
   marginalised over its shape parameters on a grid with their priors, the amplitude and a
   sky residual (offset and tilt, with priors) fitted; the tempered log-likelihood difference.  The forest decrement
   blueward of the line and the break are reported as measured.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.special import logsumexp

from steps.elixer.science.lines import BREAK_4000, CA_H, CA_K, LINES, LYA, LYB, LYMAN_LIMIT, OII, OII_DOUBLET
from steps.elixer.science.priors import ClassifierPriors

C_KM_S = 299792.458
SQRT2PI = np.sqrt(2 * np.pi)
SIGMA_INST = 5.6 / 2.3548  # VIRUS resolution, A


@dataclass
class Evidence:
    name: str
    ln_lr: float = 0.0  # ln L(data | LyA) / L(data | OII), after tempering and the cap
    value: float = float("nan")  # the indicator's headline measure
    detail: dict = field(default_factory=dict)

    @property
    def vote(self) -> float:
        """P(LyA) this indicator alone gives from even odds (ELiXer's vote in [0, 1])."""
        return float(1.0 / (1.0 + np.exp(-np.clip(self.ln_lr, -50, 50))))


def _good(wave, flam, err):
    return np.isfinite(wave) & np.isfinite(flam) & np.isfinite(err) & (err > 0)


def _norm_logpdf(x, mu, sd):
    return -0.5 * ((x - mu) / sd) ** 2 - np.log(sd * SQRT2PI)


# --- 1. companion lines -----------------------------------------------------------------------------
def measure_line_flux(wave, flam, err, center: float, sigma: float) -> tuple[float, float]:
    """Flux and error of a Gaussian of fixed centre and width on a local straight-line continuum."""
    sel = _good(wave, flam, err) & (np.abs(wave - center) < 4 * sigma + 16.0)
    if sel.sum() < 8:
        return np.nan, np.nan
    w, f, e = wave[sel], flam[sel], err[sel]
    prof = np.exp(-0.5 * ((w - center) / sigma) ** 2) / (SQRT2PI * sigma)
    a = np.vstack([prof, np.ones_like(w), (w - center) / 20.0]).T / e[:, None]
    coef, *_ = np.linalg.lstsq(a, f / e, rcond=None)
    cov = np.linalg.inv(a.T @ a)
    resid = (f - (a * e[:, None]) @ coef) / e
    scale = max(1.0, float(np.sqrt(np.sum(resid**2) / max(len(w) - 3, 1))))
    return float(coef[0]), float(np.sqrt(cov[0, 0]) * scale)


def _group_loglike(fluxes, errs, coeffs, main_flux, main_err, median, dex, p: ClassifierPriors):
    """ln L of a group's measured fluxes when each is ``coeff x r x F`` with log10 r ~ N(log10 median, dex),
    mixed with the ``epsilon`` chance that the measures are something else."""
    fluxes, errs, coeffs = map(np.asarray, (fluxes, errs, coeffs))
    lr = np.log10(median) + dex * np.linspace(-4, 4, 81)
    prior = np.exp(-0.5 * np.linspace(-4, 4, 81) ** 2)
    prior /= prior.sum()
    r = 10**lr
    pred = coeffs[None, :] * r[:, None] * main_flux
    sd = np.sqrt(errs[None, :] ** 2 + (pred * main_err / max(main_flux, 1e-9)) ** 2)
    model = logsumexp(np.sum(_norm_logpdf(fluxes[None, :], pred, sd), axis=1), b=prior)
    return np.logaddexp(np.log1p(-p.epsilon) + model, np.log(p.epsilon) + _other_loglike(fluxes, errs, main_flux, p))


def _absent_loglike(fluxes, errs, main_flux, p: ClassifierPriors):
    fluxes, errs = np.asarray(fluxes), np.asarray(errs)
    model = np.sum(_norm_logpdf(fluxes, 0.0, errs))
    return np.logaddexp(np.log1p(-p.epsilon) + model, np.log(p.epsilon) + _other_loglike(fluxes, errs, main_flux, p))


def _other_loglike(fluxes, errs, main_flux, p: ClassifierPriors):
    """Something else at these wavelengths: fluxes of either sign up to ``other_scale`` x the line."""
    sd = np.sqrt(np.asarray(errs) ** 2 + (p.other_scale * max(main_flux, 0.0)) ** 2)
    return float(np.sum(_norm_logpdf(np.asarray(fluxes), 0.0, sd)))


def companion_lines(wave, flam, err, line_wave: float, line_flux: float, line_flux_err: float, line_sigma: float,
                    p: ClassifierPriors, wave_range=(3500.0, 5500.0)) -> Evidence:
    """ln L(LyA) - ln L(OII) of the fluxes measured where each frame's companions would be."""
    ev = Evidence("companion_lines")
    if not (np.isfinite(line_flux) and line_flux > 0):
        return ev
    fl_err = line_flux_err if np.isfinite(line_flux_err) and line_flux_err > 0 else line_flux / 5
    sig_line = float(np.clip(line_sigma if np.isfinite(line_sigma) else 3.0, SIGMA_INST, 8.0))
    frames = {"OII": (OII, 0.0, p.oii_companions), "LyA": (LYA, p.lya_systemic_kms, p.lya_companions)}
    total = 0.0
    lines_out = []
    for frame, (rest, offset_kms, groups) in frames.items():
        z = line_wave / rest - 1.0
        if z < 0:
            continue
        for group in groups:
            fluxes, errs, coeffs, names = [], [], [], []
            for name, coeff in group.lines.items():
                cw = LINES[name] * (1 + z) * (1 - offset_kms / C_KM_S)
                if not (wave_range[0] + 15 <= cw <= wave_range[1] - 15) or abs(cw - line_wave) < 4 * sig_line + 10:
                    continue
                if frame == "OII":
                    sig = float(np.clip(sig_line * cw / line_wave, SIGMA_INST, 6.0))
                else:  # LyA is broadened by its radiative transfer; the other lines are not, but lie less sure
                    sig = float(np.hypot(SIGMA_INST, p.lya_systemic_sd_kms / C_KM_S * cw))
                f, e = measure_line_flux(wave, flam, err, cw, sig)
                if not np.isfinite(e):
                    continue
                fluxes.append(f), errs.append(e), coeffs.append(coeff), names.append(name)
                lines_out.append({"frame": frame, "name": name, "wave": float(cw), "flux": f, "flux_err": e,
                                  "sn": f / e if e > 0 else 0.0})
            if not fluxes:
                continue
            own = np.logaddexp.reduce([_group_loglike(fluxes, errs, coeffs, line_flux, fl_err, m, d, p) + np.log(w)
                                       for m, d, w in group.populations])
            absent = _absent_loglike(fluxes, errs, line_flux, p)
            d_ln = float(own - absent)
            total += d_ln if frame == "LyA" else -d_ln
            ev.detail[f"{frame}:{group.name}"] = round(d_ln if frame == "LyA" else -d_ln, 3)
    ev.ln_lr = float(np.clip(total, -p.companions_cap, p.companions_cap))
    ev.value = float(total)
    ev.detail["lines"] = lines_out
    return ev


# --- 2. line shape ------------------------------------------------------------------------------------
def _skewed(x, flux, mu, d, a):
    """Unit-area-scaled asymmetric Gaussian (Shibuya et al. 2014): width a (x - mu) + d."""
    dx = x - mu
    width = a * dx + d
    g = np.where(width > 0.05, np.exp(-0.5 * dx**2 / np.maximum(width, 0.05) ** 2), 0.0)
    # area of the profile: integral of exp(-dx^2 / 2 (a dx + d)^2) ~ sqrt(2 pi) d (1 + 3 a^2) for |a| < 0.5
    return flux * g / (SQRT2PI * d * (1 + 3 * a * a))


def _doublet(x, flux, mu, sigma, ratio, sep):
    """[OII] 3726 + 3729: centroid ``mu``, members ``sep`` apart, F3729 / F3726 = ``ratio``."""
    f1, f2 = 1 / (1 + ratio), ratio / (1 + ratio)
    x1, x2 = mu - f2 * sep, mu + f1 * sep
    return flux * (f1 * np.exp(-0.5 * ((x - x1) / sigma) ** 2) + f2 * np.exp(-0.5 * ((x - x2) / sigma) ** 2)) / (SQRT2PI * sigma)


def _profile_fit(f, e, shapes):
    """Best chi-square over a grid of unit-flux ``shapes`` (n_shapes x n_pix), flux >= 0 and a constant fitted."""
    iv = 1.0 / e**2
    sgg = shapes**2 @ iv
    sg1 = shapes @ iv
    s11 = iv.sum()
    sgy = shapes @ (iv * f)
    s1y, syy = float(np.sum(iv * f)), float(np.sum(iv * f * f))
    det = sgg * s11 - sg1**2
    amp = (sgy * s11 - sg1 * s1y) / det
    chi2 = syy - (amp * sgy + (sgg * s1y - sg1 * sgy) / det * s1y)
    chi2 = np.where(amp < 0, syy - s1y**2 / s11, chi2)
    k = int(np.argmin(chi2))
    return float(chi2[k]), k, float(amp[k])


def line_shape(wave, flam, err, line_wave: float, line_flux: float, line_sigma: float, line_sn: float,
               p: ClassifierPriors) -> Evidence:
    """Asymmetric LyA profile against the unresolved [OII] doublet: tempered chi-square difference.

    Both models are fitted on the same pixels over the same grid of centres (+-2 A about the fitted
    line), each with its own two shape parameters (LyA: width d and asymmetry a; [OII]: member sigma
    and F3729/F3726) and its flux and a constant; profiles are averaged over the 2-A pixels."""
    ev = Evidence("line_shape")
    sig0 = float(np.clip(line_sigma if np.isfinite(line_sigma) else 3.0, 1.8, 10.0))
    half = max(24.0, 5 * sig0)
    sel = _good(wave, flam, err) & (np.abs(wave - line_wave) < half)
    if sel.sum() < 12 or not (np.isfinite(line_flux) and line_flux > 0) or line_sn < p.shape_min_sn:
        return ev
    w, f, e = wave[sel], flam[sel], err[sel]
    sep = (OII_DOUBLET[1] - OII_DOUBLET[0]) * line_wave / OII
    mus = line_wave + np.arange(-2.0, 2.01, 0.25)
    # pixel averages: three sub-samples per 2-A pixel (Simpson)
    xs = (w[None, :] + np.array([-1.0, 0.0, 1.0])[:, None])  # 3 x n
    wts = np.array([1.0, 4.0, 1.0])[:, None, None] / 6.0
    ds = np.geomspace(0.8 * SIGMA_INST, max(1.6 * sig0, 1.2 * SIGMA_INST), 12)
    asyms = np.array([-0.1, 0.0, 0.08, 0.16, 0.25, 0.35, 0.5])
    m_, d_, a_ = np.meshgrid(mus, ds, asyms, indexing="ij")
    m_, d_, a_ = m_.ravel(), d_.ravel(), a_.ravel()
    lya = np.sum(wts * _skewed(xs[:, None, :], 1.0, m_[None, :, None], d_[None, :, None], a_[None, :, None]), axis=0)
    sig_hi = max(np.sqrt(max(sig0**2 - (sep / 2) ** 2, 0.0)) * 1.6, 1.2 * SIGMA_INST)
    sigs = np.geomspace(0.9 * SIGMA_INST, sig_hi, 12)
    ratios = np.array([0.35, 0.6, 0.9, 1.2, 1.5])
    m_o, s_o, r_o = np.meshgrid(mus, sigs, ratios, indexing="ij")
    m_o, s_o, r_o = m_o.ravel(), s_o.ravel(), r_o.ravel()
    oii = np.sum(wts * _doublet(xs[:, None, :], 1.0, m_o[None, :, None], s_o[None, :, None], r_o[None, :, None], sep),
                 axis=0)
    chi_l, kl, _ = _profile_fit(f, e, lya)
    chi_o, ko, _ = _profile_fit(f, e, oii)
    dof = max(len(w) - 5, 1)
    scale = max(1.0, min(chi_l, chi_o) / dof)
    d_chi = (chi_o - chi_l) / scale  # > 0: the LyA profile fits better
    ev.ln_lr = float(np.clip(0.5 * p.temper * d_chi, -p.shape_cap, p.shape_cap))
    ev.value = float(a_[kl])
    ev.detail.update(asym=float(a_[kl]), d=float(d_[kl]), oii_sigma=float(s_o[ko]), oii_ratio=float(r_o[ko]),
                     chi2_lya=float(chi_l), chi2_oii=float(chi_o), dof=dof,
                     rb_flux_asym=red_blue_ratio(wave, flam, err, float(m_[kl]), sig0))
    return ev


def red_blue_ratio(wave, flam, err, center: float, sigma: float) -> tuple[float, float]:
    """ELiXer's line asymmetry: flux redward of the centre over flux blueward, within about 1 sigma + 1 pixel."""
    width = max(3, int(round(sigma / 2.0)))
    i = int(np.argmin(np.abs(wave - center)))
    if i - 1 - width < 0 or i + 2 + width > len(wave):
        return (float("nan"), float("nan"))
    frac_blue = float(np.clip((center - (wave[i] - 1.0)) / 2.0, 0, 1))
    red = np.sum(flam[i + 1:i + 2 + width]) + flam[i] * (1 - frac_blue)
    blue = np.sum(flam[i - 1 - width:i]) + flam[i] * frac_blue
    red_e = np.sqrt(np.sum(err[i + 1:i + 2 + width] ** 2) + (err[i] * (1 - frac_blue)) ** 2)
    blue_e = np.sqrt(np.sum(err[i - 1 - width:i] ** 2) + (err[i] * frac_blue) ** 2)
    if blue <= 0 or red <= 0:
        return (float("nan"), float("nan"))
    rat = red / blue
    return (float(rat), float(rat * np.hypot(red_e / red, blue_e / blue)))


# --- 3. line width ------------------------------------------------------------------------------------
def line_width(sigma: float, sigma_err: float, sn: float, p: ClassifierPriors) -> Evidence:
    """Broad lines are not [OII]: 0 below ``sigma_transition``, rising to ``width_max_ln_lr`` at ``sigma_max_oii``."""
    ev = Evidence("line_width", value=float(sigma))
    if not np.isfinite(sigma) or sn < 5.0:
        return ev
    lo = sigma - (sigma_err if np.isfinite(sigma_err) else 0.0)
    frac = float(np.clip((lo - p.sigma_transition) / (p.sigma_max_oii - p.sigma_transition), 0, 1))
    ev.ln_lr = p.width_max_ln_lr * frac
    return ev


# --- 4. continuum shape -------------------------------------------------------------------------------
def madau_tau(wave, z):
    """Mean IGM optical depth of Madau 1995: LyA and LyB series, and the Lyman limit (tau 3)."""
    w = np.asarray(wave, float)
    tau = np.where(w < LYA * (1 + z), 0.0036 * (w / LYA) ** 3.46, 0.0)
    tau = tau + np.where(w < LYB * (1 + z), 0.0017 * (w / LYB) ** 3.46, 0.0)
    return tau + np.where(w < LYMAN_LIMIT * (1 + z), 3.0, 0.0)


def _oii_host_shape(rest, d4000, p: ClassifierPriors):
    """Relative continuum of an [OII] host: a break of ``d4000`` ramping from Ca K to 4000 A, H and K in absorption."""
    lo, hi = CA_K, BREAK_4000[2]
    ramp = np.clip((rest - lo) / (hi - lo), 0, 1)
    shape = 1 / d4000 + (1 - 1 / d4000) * ramp
    ew = p.cahk_ew0 + p.cahk_ew_per_break * (d4000 - 1)
    absorb = (ew * np.exp(-0.5 * ((rest - CA_K) / p.cahk_sigma) ** 2)
              + 0.8 * ew * np.exp(-0.5 * ((rest - CA_H) / p.cahk_sigma) ** 2)) / (SQRT2PI * p.cahk_sigma)
    return shape * np.clip(1 - absorb, 0, 1)


def _marginal(y, ivar, shapes, log_prior, nuisance, nuisance_sd):
    """ln of the likelihood for each shape g of a grid: y = A g + nuisance @ c, A >= 0 fitted, the
    nuisance terms (a sky residual: offset and tilt) fitted with Gaussian priors of sd ``nuisance_sd``.

    Closed form (the nuisance block eliminated first).  Returns (ln L per shape, chi2 per shape)."""
    bwb = (nuisance * ivar[:, None]).T @ nuisance + np.diag(1.0 / np.asarray(nuisance_sd) ** 2)
    pinv = np.linalg.inv(bwb)
    bwy = nuisance.T @ (ivar * y)
    gwb = (shapes * ivar[None, :]) @ nuisance  # K x q
    gwg = shapes**2 @ ivar
    gwy = shapes @ (ivar * y)
    base = float(np.sum(ivar * y * y) - bwy @ pinv @ bwy)
    schur = gwg - np.einsum("kq,qr,kr->k", gwb, pinv, gwb)
    t = gwy - gwb @ (pinv @ bwy)
    amp = t / np.maximum(schur, 1e-300)
    chi2 = np.where(amp > 0, base - t * amp, base)
    return -0.5 * chi2 + log_prior, chi2


def continuum_shape(wave, flam, err, line_wave: float, line_sigma: float, mask_waves, p: ClassifierPriors) -> Evidence:
    """The continuum as a LyA host (forest blueward of the line) or as an [OII] host (4000-A break)."""
    ev = Evidence("continuum_shape")
    z_l, z_o = line_wave / LYA - 1, line_wave / OII - 1
    if z_o < 0:
        return ev
    sig = float(np.clip(line_sigma if np.isfinite(line_sigma) else 3.0, 1.5, 10.0))
    mask = _good(wave, flam, err) & (wave > p.cont_wave[0]) & (wave < p.cont_wave[1])
    mask &= np.abs(wave - line_wave) > max(20.0, 5 * sig)
    for mw in mask_waves:
        mask &= np.abs(wave - mw) > 14.0
    if mask.sum() < 100:
        return ev
    w, y = wave[mask], flam[mask]
    ivar = 1.0 / err[mask] ** 2
    x = np.log(w / line_wave)
    betas = np.arange(-3.5, 2.01, 0.2)  # a smooth nuisance: a coarse grid marginalises it well
    # LyA host: beta x IGM scale
    scales = 10 ** np.array([-0.4, -0.2, 0.0, 0.2, 0.4])
    tau = madau_tau(w, z_l) * (w < line_wave)
    sh_l = np.exp(betas[:, None, None] * x[None, None, :]) * np.exp(-scales[None, :, None] * tau[None, None, :])
    lp_l = (_norm_logpdf(betas, p.lae_beta[0], p.lae_beta[1])[:, None]
            + _norm_logpdf(np.log10(scales), 0.0, p.igm_scale_dex)[None, :])
    lp_l = (lp_l - logsumexp(lp_l)).ravel()
    # [OII] host: beta x D4000
    d4000 = np.exp(np.linspace(0.0, np.log(p.d4000_max), 10))
    rest = w / (1 + z_o)
    host = np.array([_oii_host_shape(rest, d, p) for d in d4000])
    sh_o = np.exp(betas[:, None, None] * x[None, None, :]) * host[None, :, :]
    lp_o = _norm_logpdf(betas, p.oii_beta[0], p.oii_beta[1])[:, None] + np.zeros(len(d4000))[None, :]
    lp_o = (lp_o - logsumexp(lp_o)).ravel()
    sky = np.vstack([np.ones_like(w), (w - 4500.0) / 1000.0]).T  # a sky residual: offset and tilt
    sky_sd = (p.sky_offset_sd, p.sky_tilt_sd)
    ll_l, chi_l = _marginal(y, ivar, sh_l.reshape(-1, len(w)), lp_l, sky, sky_sd)
    ll_o, chi_o = _marginal(y, ivar, sh_o.reshape(-1, len(w)), lp_o, sky, sky_sd)
    dof = max(len(w) - 4, 1)
    scale = max(1.0, min(chi_l.min(), chi_o.min()) / dof)
    # rescale the chi-squares (not the priors) when the errors are too small
    ln_l = logsumexp(ll_l + 0.5 * chi_l * (1 - 1 / scale))
    ln_o = logsumexp(ll_o + 0.5 * chi_o * (1 - 1 / scale))
    d_ln = float(ln_l - ln_o)
    ev.ln_lr = float(np.clip(p.temper * d_ln, -p.continuum_cap, p.continuum_cap))
    ev.value = d_ln
    kl, ko = int(np.argmax(ll_l)), int(np.argmax(ll_o))
    ev.detail.update(beta_lya=float(betas[kl // len(scales)]), igm_scale=float(scales[kl % len(scales)]),
                     beta_oii=float(betas[ko // len(d4000)]), d4000=float(d4000[ko % len(d4000)]),
                     chi2_lya=float(chi_l[kl]), chi2_oii=float(chi_o[ko]), dof=dof, n_pix=int(len(w)))
    ev.detail.update(_breaks(wave, flam, err, mask, line_wave, z_o))
    return ev


def _breaks(wave, flam, err, mask, line_wave, z_o) -> dict:
    """Model-free measures for the catalogue: the flux ratio across the line (red / blue, within 250 A),
    and D_n(4000) at the [OII] redshift (Balogh et al. 1999 bands)."""
    def mean(lo, hi):
        s = mask & (wave >= lo) & (wave <= hi)
        if s.sum() < 8:
            return np.nan, np.nan
        wt = 1 / err[s] ** 2
        return float(np.sum(flam[s] * wt) / wt.sum()), float(1 / np.sqrt(wt.sum()))

    b, be = mean(line_wave - 250, line_wave - 20)
    r, re = mean(line_wave + 20, line_wave + 250)
    lo1, hi1, lo2, hi2 = (v * (1 + z_o) for v in BREAK_4000)
    db, dbe = mean(lo1, hi1)
    dr, dre = mean(lo2, hi2)
    out = {"forest_ratio": np.nan, "forest_ratio_err": np.nan, "d4000_n": np.nan, "d4000_n_err": np.nan}
    if np.isfinite(b) and np.isfinite(r) and r > 0 and b > 0:
        out["forest_ratio"], out["forest_ratio_err"] = r / b, r / b * np.hypot(be / b, re / r)
    if np.isfinite(db) and np.isfinite(dr) and db > 0 and dr > 0:
        out["d4000_n"], out["d4000_n_err"] = dr / db, dr / db * np.hypot(dbe / db, dre / dr)
    return {k: float(v) for k, v in out.items()}
