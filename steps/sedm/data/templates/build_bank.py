"""Build the classifier's template bank (``python -m steps.sedm.data.templates.build_bank``).

Each template is a rest-frame spectrum made from published spectral features, not from the
simulator: a blackbody continuum of the epoch's temperature times one P-Cygni profile per line of
a line list (every component of a multiplet at its own rest wavelength, each with a blueshifted
Gaussian absorption at the epoch's velocity and an emission near the rest wavelength).  Line
lists, velocities, temperatures and how they change with age follow the reviews of Filippenko
(1997, ARA&A 35, 309) and Gal-Yam (2017, Handbook of Supernovae), Branch et al. (2006, PASP 118,
560) for SNe Ia, and Gutierrez et al. (2017, ApJ 850, 89) for SNe II; the numbers are rounded
by hand.  See README.md for the list, the epochs and how this differs from the simulator.

Writes ``{name}.csv`` (``wavelength`` rest A, ``flux`` normalised to a mean of 1) and ``bank.csv``
(name, type, subtype, age_days, temperature_k, velocity_kms).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
C_KMS = 299792.458
WAVE = np.arange(3000.0, 10001.0, 5.0)

# rest wavelengths (A) of the lines used, multiplets as their components
LINES = {
    "CaII_HK": (3933.7, 3968.5), "SiII_4130": (4128.1, 4130.9), "MgII": (4481.2,), "FeII_blend": (4923.9, 5018.4, 5169.0),
    "SII": (5453.9, 5640.3), "SiII_5972": (5957.6, 5978.9), "SiII_6355": (6347.1, 6371.4), "OI": (7771.9, 7774.2, 7775.4),
    "CaII_IR": (8498.0, 8542.1, 8662.1), "FeIII": (4419.6, 5127.4), "TiII": (4395.0, 4443.8, 4501.3, 4563.8),
    "NaI": (5890.0, 5895.9), "HeI_4471": (4471.5,), "HeI_5876": (5875.6,), "HeI_6678": (6678.2,), "HeI_7065": (7065.2,),
    "Halpha": (6562.8,), "Hbeta": (4861.3,), "Hgamma": (4340.5,), "FeII_5169": (5169.0,),
}


def planck(lam, t):
    x = lam * 1e-8
    return 1.0 / x ** 5 / np.expm1(1.4388 / (x * t))


def pcygni(lam, rest, velocity, depth, width_kms, emission, emission_width=None):
    """One line's profile (multiplicative): absorption of ``depth`` at ``velocity`` (km/s
    blueshift), an emission of ``emission`` x depth near the rest wavelength."""
    out = np.ones_like(lam)
    for r in rest:
        centre = r * (1.0 - velocity / C_KMS)
        sigma = r * width_kms / C_KMS
        out *= 1.0 - depth * np.exp(-0.5 * ((lam - centre) / sigma) ** 2)
        if emission:
            ew = r * (emission_width or 0.6 * velocity) / C_KMS
            out *= 1.0 + emission * depth * np.exp(-0.5 * ((lam - r * (1 + 500 / C_KMS)) / ew) ** 2)
    return out


# name: type, subtype, age (d), temperature (K), velocity (km/s), {line: (depth, velocity offset, emission)}
BANK = {
    "Ia-norm_m07": ("Ia", "Ia-norm", -7, 11500, 12500, {"CaII_HK": (0.50, 3000, 0.3), "SiII_4130": (0.12, 0, 0.2),
                    "MgII": (0.30, 0, 0.3), "FeII_blend": (0.15, -1500, 0.2), "SII": (0.20, -3500, 0.2),
                    "SiII_5972": (0.10, 0, 0.2), "SiII_6355": (0.45, 0, 0.35), "OI": (0.15, 0, 0.2),
                    "CaII_IR": (0.30, 3000, 0.3)}),
    "Ia-norm_p00": ("Ia", "Ia-norm", 0, 10500, 11000, {"CaII_HK": (0.55, 3000, 0.3), "SiII_4130": (0.12, 0, 0.2),
                    "MgII": (0.35, 0, 0.3), "FeII_blend": (0.20, -1500, 0.2), "SII": (0.25, -3000, 0.2),
                    "SiII_5972": (0.12, 0, 0.2), "SiII_6355": (0.50, 0, 0.35), "OI": (0.20, 0, 0.2),
                    "CaII_IR": (0.35, 3000, 0.3)}),
    "Ia-norm_p07": ("Ia", "Ia-norm", 7, 9000, 10500, {"CaII_HK": (0.55, 2500, 0.3), "MgII": (0.30, 0, 0.3),
                    "FeII_blend": (0.30, -1500, 0.3), "SII": (0.15, -3000, 0.2), "SiII_5972": (0.15, 0, 0.2),
                    "SiII_6355": (0.45, 0, 0.35), "OI": (0.20, 0, 0.2), "CaII_IR": (0.45, 2500, 0.3),
                    "NaI": (0.10, -1000, 0.3)}),
    "Ia-norm_p15": ("Ia", "Ia-norm", 15, 7500, 10000, {"CaII_HK": (0.60, 2000, 0.3), "MgII": (0.25, 0, 0.3),
                    "FeII_blend": (0.40, -1500, 0.4), "SII": (0.05, -3000, 0.2), "SiII_5972": (0.10, 0, 0.2),
                    "SiII_6355": (0.30, 0, 0.4), "OI": (0.15, 0, 0.2), "CaII_IR": (0.55, 2000, 0.4),
                    "NaI": (0.20, -1000, 0.4)}),
    "Ia-norm_p25": ("Ia", "Ia-norm", 25, 6500, 9500, {"CaII_HK": (0.60, 2000, 0.4), "FeII_blend": (0.50, -1500, 0.5),
                    "SiII_6355": (0.15, 0, 0.5), "OI": (0.10, 0, 0.2), "CaII_IR": (0.60, 2000, 0.5),
                    "NaI": (0.30, -1000, 0.5)}),
    "Ia-91T_p00": ("Ia", "Ia-91T", 0, 12000, 10500, {"CaII_HK": (0.25, 2000, 0.2), "FeIII": (0.25, -500, 0.2),
                   "SII": (0.08, -3000, 0.1), "SiII_6355": (0.20, 0, 0.3), "CaII_IR": (0.15, 2000, 0.2)}),
    "Ia-91bg_p00": ("Ia", "Ia-91bg", 0, 7000, 10000, {"CaII_HK": (0.55, 2000, 0.3), "TiII": (0.45, 0, 0.2),
                    "FeII_blend": (0.20, -1500, 0.2), "SII": (0.15, -3000, 0.2), "SiII_5972": (0.30, 0, 0.2),
                    "SiII_6355": (0.50, 0, 0.3), "OI": (0.30, 0, 0.2), "CaII_IR": (0.45, 2000, 0.3)}),
    "Ib-norm_p00": ("Ib", "Ib-norm", 0, 8500, 9000, {"CaII_HK": (0.45, 2000, 0.3), "HeI_4471": (0.20, 0, 0.3),
                    "FeII_blend": (0.25, 0, 0.3), "HeI_5876": (0.40, 0, 0.5), "HeI_6678": (0.20, 0, 0.4),
                    "HeI_7065": (0.25, 0, 0.4), "OI": (0.25, 0, 0.3), "CaII_IR": (0.40, 1000, 0.5)}),
    "Ib-norm_p15": ("Ib", "Ib-norm", 15, 6500, 8000, {"CaII_HK": (0.50, 2000, 0.4), "HeI_4471": (0.20, 0, 0.3),
                    "FeII_blend": (0.35, 0, 0.4), "HeI_5876": (0.50, 0, 0.6), "HeI_6678": (0.25, 0, 0.5),
                    "HeI_7065": (0.30, 0, 0.5), "OI": (0.30, 0, 0.4), "CaII_IR": (0.50, 1000, 0.7)}),
    "Ic-norm_p00": ("Ic", "Ic-norm", 0, 8000, 10000, {"CaII_HK": (0.50, 2000, 0.3), "FeII_blend": (0.35, 0, 0.3),
                    "NaI": (0.20, 0, 0.3), "SiII_6355": (0.15, 0, 0.3), "OI": (0.45, 0, 0.3),
                    "CaII_IR": (0.50, 1000, 0.5)}),
    "Ic-norm_p15": ("Ic", "Ic-norm", 15, 6500, 9000, {"CaII_HK": (0.55, 2000, 0.4), "FeII_blend": (0.40, 0, 0.4),
                    "NaI": (0.30, 0, 0.4), "OI": (0.50, 0, 0.4), "CaII_IR": (0.55, 1000, 0.7)}),
    "IIP_p05": ("II", "IIP", 5, 13000, 9500, {"Halpha": (0.12, 0, 5.0), "Hbeta": (0.20, 0, 1.5), "Hgamma": (0.15, 0, 1.0),
                "HeI_5876": (0.15, 0, 1.0)}),
    "IIP_p15": ("II", "IIP", 15, 9000, 8000, {"Halpha": (0.25, 0, 3.5), "Hbeta": (0.30, 0, 1.2), "Hgamma": (0.20, 0, 0.8),
                "FeII_5169": (0.10, 0, 0.5), "NaI": (0.15, 0, 1.0), "CaII_IR": (0.20, 0, 1.0)}),
    "IIP_p30": ("II", "IIP", 30, 6800, 6500, {"Halpha": (0.30, 0, 3.5), "Hbeta": (0.35, 0, 1.0), "Hgamma": (0.25, 0, 0.5),
                "FeII_5169": (0.25, 0, 0.5), "NaI": (0.30, 0, 1.0), "CaII_IR": (0.40, 0, 1.2)}),
    "IIP_p50": ("II", "IIP", 50, 5800, 5500, {"Halpha": (0.35, 0, 3.5), "Hbeta": (0.40, 0, 1.0), "Hgamma": (0.30, 0, 0.5),
                "FeII_5169": (0.35, 0, 0.5), "NaI": (0.40, 0, 1.0), "CaII_IR": (0.50, 0, 1.2)}),
    "IIb_p10": ("II", "IIb", 10, 8000, 9000, {"Halpha": (0.25, 0, 2.0), "Hbeta": (0.25, 0, 1.0),
                "HeI_5876": (0.30, 0, 0.6), "HeI_6678": (0.15, 0, 0.4), "HeI_7065": (0.20, 0, 0.4),
                "FeII_blend": (0.20, 0, 0.3), "CaII_IR": (0.35, 0, 0.6)}),
}
IIN = ("IIn_p10", "II", "IIn", 10, 10000, 1000)  # narrow Balmer emission on a blue continuum


def spectrum(temperature, velocity, lines) -> np.ndarray:
    flux = planck(WAVE, temperature)
    for line, (depth, dv, emission) in lines.items():
        v = velocity + dv
        flux = flux * pcygni(WAVE, LINES[line], v, depth, 0.12 * v + 1200.0, emission)
    return flux / flux.mean()


def iin() -> np.ndarray:
    flux = planck(WAVE, IIN[4])
    for rest, amp in ((6562.8, 1.6), (4861.3, 0.5), (4340.5, 0.25)):
        sigma = rest * IIN[5] / C_KMS
        flux = flux * (1.0 + amp * np.exp(-0.5 * ((WAVE - rest) / sigma) ** 2))
    return flux / flux.mean()


def main(out: Path = HERE) -> None:
    rows = []
    for name, (kind, sub, age, t, v, lines) in BANK.items():
        _write(out / f"{name}.csv", spectrum(t, v, lines))
        rows.append((name, kind, sub, age, t, v))
    _write(out / f"{IIN[0]}.csv", iin())
    rows.append(IIN)
    with (out / "bank.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["name", "type", "subtype", "age_days", "temperature_k", "velocity_kms"])
        w.writerows(rows)


def _write(path: Path, flux: np.ndarray) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["wavelength", "flux"])
        w.writerows((f"{lam:.1f}", f"{fl:.6f}") for lam, fl in zip(WAVE, flux))


if __name__ == "__main__":
    main()
