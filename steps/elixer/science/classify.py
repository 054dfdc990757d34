"""One detection's classification: line and continuum measures, PLAE/POII, votes, P(LyA), z_best.

ELiXer's scheme (instruments.md, ELiXer section) in a few pure functions:

1. measure the line (Gaussian fit), the continuum (whole-spectrum fit; at the line and at g),
   the spectral slope and companion lines (multiline solutions);
2. PLAE/POII from flux and EW (:mod:`.bayes`) with a Monte Carlo 68 % interval;
3. each indicator casts a vote in [0, 1] (1 = LyA) with a weight; P(LyA) is the weighted mean:

   ==================  =================================================================
   PLAE/POII           above or below its wavelength-dependent midpoint (1.4 -> 10)
   EW_rest(LyA)        above or below 20 A (weight grows with the EW's significance)
   g magnitude         brighter than mag_zero(wave) votes [OII]; fainter votes LyA only
                       while the EW is ambiguous (15-25 A)
   line width          sigma > 4.5 A votes LyA, full weight at 7.6 A (no [OII] is broader)
   multiline           a solution with companions decides: LyA frame 1, any other 0
   spectral slope      a significantly red continuum votes [OII]
   ==================  =================================================================

4. P(LyA) > threshold (0.5) gives z_best from LyA, else the best multiline solution, else [OII].

Flags (``flags`` column, bits): 1 line fit failed (detection-table values used), 2 continuum at the
line not detected (EW is a lower limit), 4 PLAE/POII interval spans its midpoint, 8 the multiline
solution disagrees with PLAE/POII, 16 line S/N below 4.5.
"""

from __future__ import annotations

import numpy as np

from steps.elixer.science.bayes import plae_poii, plae_poii_mc
from steps.elixer.science.cosmology import Cosmology
from steps.elixer.science.lines import LYA, OII
from steps.elixer.science.priors import ClassifierPriors, mag_zero, odds_midpoint
from steps.elixer.science.spectrum import FWHM_PER_SIGMA, continuum, fit_line, multiline_solutions

C_KM_S = 299792.458
FLAG_FIT_FAILED, FLAG_NO_CONTINUUM, FLAG_PLAE_UNSURE, FLAG_MULTILINE_CONFLICT, FLAG_LOW_SN = 1, 2, 4, 8, 16


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.clip(x, -50, 50)))


def _snr_weight(sn: float) -> float:
    """Line-based votes count less for faint lines (ELiXer: (S/N - 1) / 5 below S/N 4... here to 6)."""
    return float(np.clip((sn - 1.0) / 5.0, 0.0, 1.0))


def votes(m: dict, p: ClassifierPriors) -> list[dict]:
    """The indicators' votes (1 = LyA) and weights from the measures ``m`` (see :func:`measure`)."""
    out = []
    wave, sn = m["wave"], m["sn"]
    snw = _snr_weight(sn)
    mid = float(odds_midpoint(p, wave))
    r, lo, hi = m["plae"], m["plae_lo"], m["plae_hi"]
    w = p.weight_plae * (0.5 if lo < mid < hi else 1.0)
    out.append({"name": "plae_poii", "vote": float(_sigmoid(2.0 * np.log(r / mid))), "weight": w, "value": r})

    ew, ew_err = m["ew_rest_lya"], m["ew_rest_lya_err"]
    signif = abs(ew - 20.0) / max(ew_err, 1.0)
    out.append({"name": "ew_rest_lya", "vote": 1.0 if ew > 20.0 else 0.0,
                "weight": p.weight_ew * snw * float(np.clip(signif / 2.0, 0, 1)), "value": ew})

    mz = float(mag_zero(p, wave))
    mag, mag_err = m["mag_g"], m["mag_g_err"]
    if m["g_sn"] >= 3.0 and mag < mz:
        gw = 1.0 - np.exp(-(((mag - mz) / (np.sqrt(2) * p.mag_sigma)) ** 2))
        out.append({"name": "g_mag", "vote": 0.0, "weight": p.weight_mag * float(gw), "value": mag})
    elif 15.0 < ew < 25.0:
        faint = mag if m["g_sn"] >= 3.0 else max(mag, p.mag_limit)
        gw = 1.0 - np.exp(-(((faint - mz) / (np.sqrt(2) * p.mag_sigma)) ** 2))
        out.append({"name": "g_mag", "vote": 1.0, "weight": 0.5 * p.weight_mag * float(gw), "value": faint})

    sig = m["sigma"]
    if sig > p.sigma_transition and sn >= 5.0:
        frac = float(np.clip((sig - p.sigma_transition) / (p.sigma_max_oii - p.sigma_transition), 0, 1))
        out.append({"name": "line_sigma", "vote": 1.0, "weight": p.weight_sigma * frac, "value": sig})

    sol = m["solution"]
    if sol is not None:
        out.append({"name": "multiline", "vote": 1.0 if sol.name == "LyA" else 0.0,
                    "weight": p.weight_multiline * float(min(1.0, sol.score / 8.0)), "value": sol.z})

    # UV slope redward of the line: LAEs are blue (beta ~ -2), [OII] hosts red (beta > -1)
    beta, beta_err = m["slope_red"], m["slope_red_err"]
    if np.isfinite(beta) and np.isfinite(beta_err) and beta_err < 1.0:
        signif = abs(beta - p.slope_boundary) / beta_err
        if signif > 2.0:
            out.append({"name": "spectral_slope", "vote": 1.0 if beta < p.slope_boundary else 0.0,
                        "weight": p.weight_slope * float(min(1.0, (signif - 2.0) / 3.0)), "value": beta})
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
    return {
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
    wsum = sum(v["weight"] for v in vs)
    plya = sum(v["vote"] * v["weight"] for v in vs) / wsum if wsum > 0 else 0.5
    wave = m["wave"]
    z_lya, z_oii = wave / LYA - 1, wave / OII - 1
    sol = m["solution"]
    if sol is not None and (sol.name == "LyA") != (m["plae"] > odds_midpoint(p, wave)):
        m["flags"] |= FLAG_MULTILINE_CONFLICT
    if plya > p.plya_threshold or z_oii < 0:
        z_best, pz, label = z_lya, plya, "LyA"
        alt = (sol.z, 1 - plya, sol.name) if sol is not None and sol.name != "LyA" else (z_oii, 1 - plya, "OII")
    elif sol is not None and sol.name != "LyA":
        z_best, pz, label = sol.z, 1 - plya, sol.name
        alt = (z_lya, plya, "LyA")
    else:
        z_best, pz, label = z_oii, 1 - plya, "OII"
        alt = (z_lya, plya, "LyA")
    m.update(votes=vs, plya=float(plya), z_best=float(z_best), z_best_pz=float(pz), label=label,
             z_best_2=float(alt[0]), z_best_pz_2=float(alt[1]), label_2=alt[2],
             fwhm_aa=m["sigma"] * FWHM_PER_SIGMA, fwhm_kms=m["sigma"] * FWHM_PER_SIGMA / wave * C_KM_S)
    return m
