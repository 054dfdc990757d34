"""Simulated HETDEX line detections (the stand-in for the reduction pipeline's detections file).

Writes ``detect_sim.h5`` in the hetdex_api layout (``/Detections``, ``/Spectra``, ``/Fibers``),
``detectids.txt`` and ``truth.csv``.  The populations come from published luminosity functions and
equivalent-width distributions, independent of the classifier's defaults:

* LAEs, 1.88 < z < 3.52: Schechter LF of Gronwall et al. 2015 (log n(>1.5e42) = -3.08 / -2.98 and
  log L* = 42.61 / 42.77 at z = 2.063 / 3.104, alpha = -1.65), exponential EW_rest with w0 = 50 /
  100 A (Gronwall et al. 2015 table 6).  Those fits describe narrow-band LAEs, EW_rest > 20 A; a
  further ``low_ew_lae_fraction`` (default 10 %) of Lyman-alpha lines is drawn from the same
  exponential extrapolated below 20 A (weak-LyA continuum-bright galaxies, the hard cases).  UV continuum f_lambda ~ lambda^beta, beta ~ N(-2, 0.4),
  Lyman-alpha forest absorption blueward of the line (tau = 0.0036 (lambda / 1216)^3.46, Madau
  1995 style); 3 % broad-line (AGN) LAEs with CIV, HeII and CIII].
* [OII] emitters, 0.05 < z < 0.48: Schechter LF of Ciardullo et al. 2013 (alpha = -1.2, four
  bins), exponential EW_rest with w0 = 8.0-21.5 A (Ciardullo et al. 2013 table 1); red continuum
  (beta ~ N(-0.6, 0.5)) with a 4000-A break; companion lines H-beta / [OII] ~ 0.4, [OIII] 5007 /
  [OII] ~ 0.5 (0.3 dex scatter), [OIII] 4959 = 5007 / 2.98, [NeIII] / [OII] ~ 0.1, H-gamma = 0.47 H-beta.
* Counts per wavelength follow each LF integrated above the detection limit times the comoving
  volume (flat LCDM, H0 = 70, Omega_M = 0.3); the class mix is what the sky gives, not chosen.
* Noise: per-pixel errors from a HETDEX-like sensitivity curve, plus a smooth sky-residual
  continuum offset; lines are detected when their measured S/N >= 4.5.

Truth columns: detectid, true_class (LAE / OII), z, wave, flux (1e-17 erg/s/cm^2), ew_rest (A,
own frame), sigma (A), sn_true, g_mag.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from steps.elixer.detfile import DETECTION_FIELDS, FIBER_FIELDS, SPECTRA_FIELDS
from steps.elixer.science.cosmology import Cosmology
from steps.elixer.science.lines import LINES, LYA, OII, WAVE_GRID
from steps.elixer.science.priors import upper_gamma

SIGMA_INST = 5.6 / 2.3548  # VIRUS resolution, A
WAVE_RANGE = (3500.0, 5500.0)
NOISE_WAVE = np.array([3470, 3600, 3800, 4000, 4500, 5000, 5540.0])
NOISE_PER_A = np.array([0.75, 0.45, 0.33, 0.28, 0.24, 0.23, 0.30])  # 1e-17 erg/s/cm^2/A per pixel, 1 sigma
SKY_RESIDUAL = 0.012  # rms of the smooth continuum offset, 1e-17 erg/s/cm^2/A
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
    wave: float
    flux: float  # 1e-17 erg/s/cm^2
    ew_rest: float
    sigma: float
    beta: float
    agn: bool = False


def _draw_population(rng, n: int, cosmo: Cosmology, low_ew_fraction: float) -> list[Source]:
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
        cls = "LAE" if rng.random() < rates["LAE"].sum() / total else "OII"
        rest, lf = (LYA, lae_lf) if cls == "LAE" else (OII, oii_lf)
        k = rng.choice(len(mids), p=rates[cls] / rates[cls].sum())
        wave = rng.uniform(grid[k], grid[k + 1])
        z = wave / rest - 1
        phi, ls, alpha, w0 = lf(z)
        d2 = 4 * np.pi * cosmo.luminosity_distance_cm(z) ** 2
        lmin = d2 * 3.0 * flux_noise_1sigma(wave) * 1e-17
        lum = _schechter_draw(rng, alpha, ls, lmin)
        flux = lum / d2 / 1e-17
        if cls == "LAE" and rng.random() >= low_ew_fraction:
            ew = 20.0 + rng.exponential(w0)  # the LF's own sample: EW_rest > 20 A, exponential (memoryless)
        elif cls == "LAE":
            ew = -w0 * np.log(1 - rng.random() * (1 - np.exp(-20.0 / w0)))  # the extrapolated tail below 20 A
        else:
            ew = rng.exponential(w0)
        agn = cls == "LAE" and rng.random() < 0.03
        if cls == "LAE":
            fwhm_kms = rng.uniform(1500, 4000) if agn else rng.uniform(150, 450)
            beta = rng.normal(-2.0, 0.4)
        else:
            fwhm_kms = rng.uniform(60, 250)
            beta = rng.normal(-0.6, 0.5)
        sig_int = fwhm_kms / 2.3548 / 299792.458 * wave
        sigma = float(np.hypot(SIGMA_INST, sig_int))
        if cls == "OII":
            sigma = float(np.hypot(sigma, 0.5 * 2.8 * (1 + z)))  # the unresolved 3726/3729 doublet
        sn = flux / flux_noise_1sigma(wave, sigma)
        if sn + rng.normal() < SN_DETECT:
            continue
        out.append(Source(cls, z, wave, flux, ew, sigma, beta, agn))
    return out


def _schechter_draw(rng, alpha, lstar, lmin):
    """One luminosity from a Schechter function above lmin (inverse CDF on a log grid)."""
    x = np.logspace(np.log10(lmin / lstar), np.log10(lmin / lstar) + 4, 400)
    cdf = 1 - upper_gamma(alpha + 1, x) / upper_gamma(alpha + 1, x[0])
    return float(np.interp(rng.random(), cdf, x) * lstar)


# --- spectra ---------------------------------------------------------------------------------------
def _gauss(wave, center, sigma, flux):
    return flux * np.exp(-0.5 * ((wave - center) / sigma) ** 2) / (np.sqrt(2 * np.pi) * sigma)


def source_spectrum(src: Source, rng) -> tuple[np.ndarray, dict]:
    """Noise-free f_lambda (1e-17 erg/s/cm^2/A) on the HETDEX grid, and the companion lines."""
    w = WAVE_GRID
    cont_line = src.flux / (src.ew_rest * (1 + src.z))  # continuum at the line, redward
    cont = cont_line * (w / src.wave) ** src.beta
    lines = {}
    if src.cls == "LAE":
        tau = 0.0036 * (w / LYA) ** 3.46
        cont = np.where(w < src.wave, cont * np.exp(-tau), cont)
        ratios = {"CIV": 0.25, "HeII": 0.08, "CIII]": 0.15} if src.agn else {"CIV": 0.02}
        rest = LYA
    else:
        cont = np.where(w < 4000.0 * (1 + src.z), cont * rng.uniform(0.55, 0.85), cont)
        hb = 0.4 * 10 ** rng.normal(0, 0.15)
        o3 = 0.5 * 10 ** rng.normal(0, 0.3)
        ratios = {"H-beta": hb, "[OIII]": o3, "[OIII]4959": o3 / 2.98, "[NeIII]": 0.1 * 10 ** rng.normal(0, 0.2),
                  "H-gamma": 0.47 * hb}
        rest = OII
    spec = cont + _gauss(w, src.wave, src.sigma, src.flux)
    for name, ratio in ratios.items():
        cw = LINES[name] * (1 + src.z)
        if w[0] < cw < w[-1]:
            spec += _gauss(w, cw, src.sigma * cw / src.wave, src.flux * ratio)
            lines[name] = (cw, src.flux * ratio)
    _ = rest
    return spec, lines


def simulate_detections(out: Path, n: int = 300, seed: int = 0, first_detectid: int = 3090000001,
                        low_ew_lae_fraction: float = 0.1) -> dict:
    """Write the detections file, the detectid list and the truth table; return their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    cosmo = Cosmology()
    sources = _draw_population(rng, n, cosmo, low_ew_lae_fraction)
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
        sky = SKY_RESIDUAL * (rng.normal() + rng.normal() * x + 0.5 * rng.normal() * x**2)
        flam = model + sky + rng.normal(0, noise)
        fn1 = flux_noise_1sigma(src.wave, src.sigma)
        flux_meas = src.flux + rng.normal(0, fn1)
        cont_line = src.flux / (src.ew_rest * (1 + src.z))
        ifux, ifuy = rng.uniform(-24, 24, 2)
        mf = f"multi_{rng.integers(20, 120):03d}_{rng.integers(20, 110):03d}_{rng.integers(10, 600):03d}_{rng.choice(['LL', 'LU', 'RL', 'RU'])}"
        fibnum = int(rng.integers(1, 113))
        ra, dec = ra0 + rng.uniform(-0.2, 0.2), dec0 + rng.uniform(-0.2, 0.2)
        row = det[i]
        row["detectid"], row["shotid"], row["date"], row["obsid"] = did, shotid, date, obsid
        row["fiber_id"] = f"{shotid}_1_{mf}_{fibnum:03d}".encode()
        row["ra"], row["dec"] = ra, dec
        row["wave"], row["wave_err"] = src.wave + rng.normal(0, 0.3), 0.3
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
        g_flam = src.flux / (src.ew_rest * (1 + src.z)) * (4686.0 / src.wave) ** src.beta
        g_mag = -2.5 * np.log10(g_flam * 1e-17 * 4686.0**2 / C_A_S) - 48.6 if g_flam > 0 else 99.9
        truth.append({"detectid": did, "true_class": src.cls, "z": round(src.z, 5), "wave": round(src.wave, 3),
                      "flux": round(src.flux, 4), "ew_rest": round(src.ew_rest, 3), "sigma": round(src.sigma, 3),
                      "sn_true": round(src.flux / fn1, 3), "g_mag": round(float(g_mag), 3), "agn": int(src.agn)})
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
