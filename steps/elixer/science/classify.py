"""One detection's classification: line and continuum measures, the evidence, P(LyA), z_best.

ELiXer's scheme (instruments.md, ELiXer section) as Bayesian evidence, in a few pure functions:

1. measure the line (Gaussian fit), the continuum (whole-spectrum fit; at the line and at g),
   the spectral slope and companion lines (multiline solutions);
2. PLAE/POII from flux and EW (:mod:`.bayes`, Leung et al. 2017) with a Monte Carlo 68 % interval;
3. the evidence the rest of the spectrum holds (:mod:`.evidence`), each a log-likelihood ratio
   ln L(data | LyA) / L(data | [OII]) from a documented model (:mod:`.priors`):

   ==================  =================================================================
   plae_poii           ln(PLAE/POII / midpoint): flux, EW, luminosity functions and the
                       number densities (the prior), against ELiXer's wavelength-dependent
                       50/50 midpoint (1.4 at 4000 A -> 10 at 5000 A)
   companion_lines     the fluxes where [NeIII], the Balmer lines and [OIII] of an [OII]
                       emitter, and NV, CIV, HeII, CIII] of an LAE would be: present or
                       absent, against their ratio priors
   line_shape          asymmetric LyA profile (red wing) against the unresolved doublet
   line_width          broad lines are not [OII] (sigma > 4.5 A, none above 7.6 A)
   continuum_shape     blue power law with the Lyman-alpha forest blueward of the line,
                       against a redder one with the 4000-A break and Ca H and K
   multiline_other     a solution of another frame (H-beta, [OIII], CIV, MgII main line)
   ==================  =================================================================

   Independent pieces of evidence multiply: ln odds = the sum; P(LyA) = odds / (1 + odds).
   Each indicator's vote (the P(LyA) it alone gives from even odds), its ln ratio and weight
   go to the catalogue (``ClassificationExtraFeatures``), as ELiXer's votes do.  The g magnitude
   and EW_rest > 20 A rules of the first version are reported as measures but no longer vote:
   the continuum level and the EW are PLAE/POII's own data, and counting them twice was what made
   low-EW LAEs [OII] and high-EW [OII] LAEs.

4. P(LyA) > threshold (0.5) gives z_best from LyA, else from another frame's multiline solution
   when it has two or more companions (the one ``multiline_other`` counted), else from [OII].

Flags (``flags`` column, bits): 1 line fit failed (detection-table values used), 2 continuum at the
line not detected (EW is a lower limit), 4 PLAE/POII interval spans its midpoint, 8 the multiline
solution disagrees with the classification, 16 line S/N below 4.5.
"""

from __future__ import annotations

import numpy as np

from steps.elixer.science.bayes import plae_poii, plae_poii_mc
from steps.elixer.science.cosmology import Cosmology
from steps.elixer.science.evidence import Evidence, companion_lines, continuum_shape, line_shape, line_width
from steps.elixer.science.lines import LYA, OII
from steps.elixer.science.priors import ClassifierPriors, odds_midpoint
from steps.elixer.science.spectrum import FWHM_PER_SIGMA, continuum, fit_line, multiline_solutions

C_KM_S = 299792.458
FLAG_FIT_FAILED, FLAG_NO_CONTINUUM, FLAG_PLAE_UNSURE, FLAG_MULTILINE_CONFLICT, FLAG_LOW_SN = 1, 2, 4, 8, 16


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.clip(x, -50, 50)))


def plae_evidence(m: dict, p: ClassifierPriors) -> Evidence:
    mid = float(odds_midpoint(p, m["wave"]))
    r = max(float(m["plae"]), 1e-6)
    return Evidence("plae_poii", ln_lr=float(np.log(r / mid)), value=r,
                    detail={"midpoint": mid, "lo": m["plae_lo"], "hi": m["plae_hi"]})


def other_solution(m: dict):
    """The best solution whose main line is neither LyA nor [OII] with two or more companions found."""
    others = [s for s in m["solutions"] if s.name not in ("LyA", "OII") and s.n_found >= 2]
    return others[0] if others else None


def multiline_other(m: dict, p: ClassifierPriors) -> Evidence:
    """A solution whose main line is neither LyA nor [OII] (ELiXer's multiline vote, frames H-beta,
    [OIII], CIV, MgII): two or more companions found; the more found, the more against LyA."""
    ev = Evidence("multiline_other")
    s = other_solution(m)
    if s is not None:
        ev.value = s.score
        ev.ln_lr = -p.weight_multiline * float(min(1.0, s.score / 16.0))
        ev.detail = {"name": s.name, "z": s.z}
    return ev


def votes(m: dict, p: ClassifierPriors) -> list[dict]:
    """The indicators (see the module docstring) as ELiXer-style votes: name, vote in [0, 1]
    (1 = LyA; the P(LyA) the indicator alone gives), weight (its multiplier in the log odds), value
    and ln_lr (its ln likelihood ratio)."""
    evs = [plae_evidence(m, p), *m["evidence"], multiline_other(m, p)]
    out = []
    for ev in evs:
        out.append({"name": ev.name, "vote": ev.vote, "weight": 1.0, "value": float(ev.value), "ln_lr": float(ev.ln_lr)})
    return out


def measure(wave, flam, err, det: dict, p: ClassifierPriors, cosmo: Cosmology, rng) -> dict:
    """All measures of one detection (spectrum in 1e-17 erg/s/cm^2/A)."""
    flags = 0
    fit = fit_line(wave, flam, err, det["wave"], det.get("linewidth", 3.0), det.get("flux"))
    if not fit.ok or not np.isfinite(fit.flux_err) or fit.flux <= 0:
        flags |= FLAG_FIT_FAILED
        fe = det.get("flux_err", np.nan)
        fit.flux, fit.flux_err = float(det.get("flux", fit.flux)), float(fe if np.isfinite(fe) and fe > 0 else fit.flux / 5)
        fit.wave, fit.sigma = float(det["wave"]), float(det.get("linewidth", fit.sigma))
        fit.wave_err = float(det.get("wave_err", np.nan))
    sols = multiline_solutions(wave, flam, err, fit.wave, fit.sigma, p.multiline_min_sn)
    others = [ln["wave"] for s in sols for ln in s.lines if ln["found"]]
    cont = continuum(wave, flam, err, fit.wave, fit.sigma, others)
    # the continuum at the line: the whole-spectrum fit and the line fit's local level, weighted
    c_vals = [(cont.at_line, cont.at_line_err)]
    if fit.ok and np.isfinite(fit.cont_err) and fit.cont_err > 0:
        c_vals.append((fit.cont, fit.cont_err))
    wts = np.array([1 / e**2 for _, e in c_vals])
    c_comb = float(np.sum([v * w for (v, _), w in zip(c_vals, wts)]) / wts.sum())
    c_comb_err = float(1 / np.sqrt(wts.sum()))
    if c_comb < 2 * c_comb_err:
        flags |= FLAG_NO_CONTINUUM
    z_lya = fit.wave / LYA - 1
    ew_obs = fit.flux / (max(c_comb, 0) + 2 * c_comb_err) if c_comb < 2 * c_comb_err else fit.flux / c_comb
    ew_obs_err = ew_obs * np.hypot(fit.flux_err / max(fit.flux, 1e-9), c_comb_err / max(abs(c_comb), c_comb_err))
    plae, lo, hi = plae_poii_mc(fit.wave, fit.flux, fit.flux_err, c_comb, c_comb_err, p, cosmo, rng)
    sn = fit.sn if fit.ok and fit.sn > 0 else float(det.get("sn", fit.sn))
    if sn < 4.5:
        flags |= FLAG_LOW_SN
    if lo < odds_midpoint(p, fit.wave) < hi:
        flags |= FLAG_PLAE_UNSURE

    def plae_with(c, ce):
        lim = c < 2 * ce
        ew = fit.flux / (max(c, 0) + 2 * ce) if lim else fit.flux / c
        return float(plae_poii(fit.wave, max(fit.flux, 1e-3) * 1e-17, ew, lim, p, cosmo)[0]), ew

    plae_line, ew_line = plae_with(fit.cont, fit.cont_err if np.isfinite(fit.cont_err) else c_comb_err)
    plae_wide, ew_wide = plae_with(cont.at_line, cont.at_line_err)
    comp = companion_lines(wave, flam, err, fit.wave, fit.flux, fit.flux_err, fit.sigma, p)
    shape = line_shape(wave, flam, err, fit.wave, fit.flux, fit.sigma, sn, p)
    width = line_width(fit.sigma, fit.sigma_err, sn, p)
    masked = [ln["wave"] for ln in comp.detail.get("lines", [])] + others
    cshape = continuum_shape(wave, flam, err, fit.wave, fit.sigma, masked, p)
    return {
        "evidence": [comp, shape, width, cshape],
        "fit": fit, "cont": cont, "solutions": sols, "solution": sols[0] if sols else None,
        "wave": fit.wave, "sn": sn, "sigma": fit.sigma, "flags": flags,
        "cont_comb": c_comb, "cont_comb_err": c_comb_err,
        "ew_obs": ew_obs, "ew_rest_lya": ew_obs / (1 + z_lya), "ew_rest_lya_err": ew_obs_err / (1 + z_lya),
        "ew_line_rest": ew_line / (1 + z_lya), "ew_wide_rest": ew_wide / (1 + z_lya),
        "plae": plae, "plae_lo": lo, "plae_hi": hi, "plae_line": plae_line, "plae_wide": plae_wide,
        "mag_g": cont.mag_g, "mag_g_err": cont.mag_g_err,
        "g_sn": cont.g_flam / cont.g_flam_err if cont.g_flam_err > 0 else 0.0,
        "slope": cont.slope, "slope_err": cont.slope_err,
        "slope_red": cont.slope_red, "slope_red_err": cont.slope_red_err,
    }


def classify(wave, flam, err, det: dict, p: ClassifierPriors | None = None, cosmo: Cosmology | None = None,
             rng=None) -> dict:
    """Measures, votes, P(LyA) and z_best of one detection; returns a dict (see :func:`measure`) with
    ``votes``, ``plya``, ``z_best``, ``z_best_pz``, ``z_best_2``, ``z_best_pz_2``, ``label``."""
    p = p or ClassifierPriors()
    cosmo = cosmo or Cosmology(p.h0, p.omega_m)
    rng = rng if rng is not None else np.random.default_rng(int(det.get("detectid", 0)) % (2**32))
    m = measure(np.asarray(wave, float), np.asarray(flam, float), np.asarray(err, float), det, p, cosmo, rng)
    vs = votes(m, p)
    ln_odds = float(sum(v["ln_lr"] * v["weight"] for v in vs))
    plya = float(_sigmoid(ln_odds))
    wave = m["wave"]
    z_lya, z_oii = wave / LYA - 1, wave / OII - 1
    sol = m["solution"]
    if sol is not None and (sol.name == "LyA") != (plya > p.plya_threshold):
        m["flags"] |= FLAG_MULTILINE_CONFLICT
    other = other_solution(m)  # not LyA: [OII], unless another frame's lines say otherwise
    not_lya = (other.z, 1 - plya, other.name) if other is not None else (z_oii, 1 - plya, "OII")
    if plya > p.plya_threshold or z_oii < 0:
        z_best, pz, label = z_lya, plya, "LyA"
        alt = not_lya
    else:
        z_best, pz, label = not_lya
        alt = (z_lya, plya, "LyA")
    m.update(votes=vs, ln_odds=ln_odds, plae_midpoint=float(odds_midpoint(p, wave)), plya=float(plya), z_best=float(z_best), z_best_pz=float(pz), label=label,
             z_best_2=float(alt[0]), z_best_pz_2=float(alt[1]), label_2=alt[2],
             fwhm_aa=m["sigma"] * FWHM_PER_SIGMA, fwhm_kms=m["sigma"] * FWHM_PER_SIGMA / wave * C_KM_S)
    return m
