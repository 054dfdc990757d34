"""Flux calibration from a spectrophotometric standard, and its use on a frame, as pure functions
(pysedm's ``fluxcalibration.py``: ``FluxCalibrator.fit_inverse_sensitivity`` and
``FluxCalSpectrum.get_inversed_sensitivity``).

``derive``: the standard's extracted spectrum (electrons / s / A, extinction-corrected by the
cube) against its reference (erg / s / cm2 / A, averaged over each bin): the inverse sensitivity
``reference / observed`` (erg / cm2 / electron) is fitted with one smooth Legendre polynomial in
wavelength (in its logarithm, so it stays positive), weighted by the spectrum's variance and
sigma-clipped, with pysedm's avoidance areas masked: the telluric bands (6850-7050, 7450-7750 A)
and the standard's strong absorption lines (H alpha 6400-6650, H beta 4810-4910, H gamma
4300-4350, H delta 4030-4130, H epsilon + Ca II 3900-3980 A), where the reference and the
instrument's line spread differ.  Inside pysedm's telluric regions the observed ratio over the
fit is the standard's telluric transmission, kept as airmass-1 depths per species
(:mod:`steps.sedm.science.telluric`), except where a region overlaps the star's own lines (the
H2O window 6466-6522 A inside H alpha): there the ratio measures the line, not the air.

``calibrate``: a frame's spectrum times the inverse sensitivity, divided by the telluric
transmission at the frame's airmass: F_lambda in erg / s / cm2 / A, with its variance.

Deviation from pysedm, and why: pysedm fits the ratio itself with a degree-20 Legendre
polynomial jointly with a telluric template's amplitudes; here the logarithm of the ratio is fitted
(degree ``DEGREE`` by default, a setting) and the telluric bands are measured afterwards, because
the 300 A gap of the masked A band lets a degree-20 polynomial ring on SEDM's 220 bins, and no
telluric template file ships with the project (see the telluric module).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.polynomial import legendre

from steps.sedm.science import telluric

AVOIDANCE = {
    "telluric": ((6850.0, 7050.0), (7450.0, 7750.0)),
    "absorption": ((6400.0, 6650.0), (4810.0, 4910.0), (4300.0, 4350.0), (4030.0, 4130.0), (3900.0, 3980.0)),
}
"""pysedm's ``AVOIDANCE_AREA`` (A): masked when the inverse sensitivity is fitted."""
DEGREE = 12  # Legendre degree of log(inverse sensitivity)
CLIP = 4.0  # sigma-clipping of the fit, in robust sigmas
ITERATIONS = 4
LOG_FLOOR = 0.003  # smallest error of a bin's log ratio: no bin weighs more than a 0.3 % measurement
MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True)
class FluxCal:
    """A flux calibration: the Legendre coefficients of ln(inverse sensitivity) on ``domain`` (A),
    the standard's wavelength grid with the fitted inverse sensitivity and the telluric airmass-1
    depths on it, the standard's airmass, and fit figures."""

    coefficients: np.ndarray
    domain: tuple[float, float]
    wavelength: np.ndarray
    inverse_sensitivity: np.ndarray
    tau1: dict[str, np.ndarray]
    airmass: float
    degree: int
    n_used: int = 0
    residual_rms: float = float("nan")
    equivalent_width: dict[str, float] = field(default_factory=dict)

    def sensitivity_at(self, lam) -> np.ndarray:
        """Inverse sensitivity (erg / cm2 / electron) at ``lam`` (A); NaN outside the domain."""
        lam = np.asarray(lam, float)
        out = np.exp(legendre.legval(_x(lam, self.domain), self.coefficients))
        return np.where((lam >= self.domain[0]) & (lam <= self.domain[1]), out, np.nan)

    def transmission_at(self, lam, airmass: float) -> np.ndarray:
        """Telluric transmission at ``lam`` and ``airmass`` scaled from the standard's bands."""
        return telluric.transmission(telluric.on_grid(self.wavelength, self.tau1, np.asarray(lam, float)), airmass)


def _x(lam, domain):
    lo, hi = domain
    return (2.0 * np.asarray(lam, float) - (lo + hi)) / (hi - lo)


def mask(lam: np.ndarray, which=("telluric", "absorption")) -> np.ndarray:
    """True for bins of ``lam`` clear of the avoidance areas ``which``."""
    bad = np.zeros(len(lam), bool)
    for kind in which:
        bad |= telluric.in_regions(lam, AVOIDANCE[kind])
    return ~bad


def reference_on_bins(lam: np.ndarray, ref_wave: np.ndarray, ref_flux: np.ndarray) -> np.ndarray:
    """The reference spectrum averaged over each bin of ``lam`` (A); NaN where the reference does
    not cover the bin."""
    ref_wave, ref_flux = np.asarray(ref_wave, float), np.asarray(ref_flux, float)
    order = np.argsort(ref_wave)
    ref_wave, ref_flux = ref_wave[order], ref_flux[order]
    cum = np.concatenate([[0.0], np.cumsum(0.5 * (ref_flux[1:] + ref_flux[:-1]) * np.diff(ref_wave))])
    lo, hi = telluric.bin_edges(lam)

    def integral(w):
        return np.interp(w, ref_wave, cum)

    out = (integral(hi) - integral(lo)) / (hi - lo)
    return np.where((lo >= ref_wave[0]) & (hi <= ref_wave[-1]), out, np.nan)


def derive(lam, counts, variance, ref_wave, ref_flux, airmass: float, degree: int = DEGREE) -> FluxCal:
    """The flux calibration of a standard's spectrum (``lam`` A, ``counts`` electrons / s / A with
    ``variance``; extinction-corrected) against its reference (``ref_wave`` A, ``ref_flux``
    erg / s / cm2 / A) observed at ``airmass``.  Raises ValueError when too few bins are usable."""
    lam, counts = np.asarray(lam, float), np.asarray(counts, float)
    variance = np.asarray(variance, float) if variance is not None else np.full(lam.size, np.nan)
    ref = reference_on_bins(lam, ref_wave, ref_flux)
    ok = np.isfinite(counts) & (counts > 0) & np.isfinite(ref) & (ref > 0)
    if ok.sum() < degree + 5:
        raise ValueError(f"only {int(ok.sum())} bins have both a positive flux and the reference "
                         f"(a degree-{degree} fit needs {degree + 5})")
    domain = (float(lam[ok].min()), float(lam[ok].max()))
    log_ratio = np.full(lam.size, np.nan)
    log_ratio[ok] = np.log(ref[ok] / counts[ok])
    sigma = np.sqrt(np.where(np.isfinite(variance) & (variance > 0), variance, np.nan)) / np.where(ok, counts, np.nan)
    sigma = np.where(np.isfinite(sigma), np.maximum(sigma, LOG_FLOOR), np.nan)
    if not np.isfinite(sigma[ok]).any():
        sigma = np.where(ok, LOG_FLOOR, np.nan)
    sigma = np.where(np.isfinite(sigma), sigma, np.nanmedian(sigma[ok]))
    use = ok & mask(lam)
    x = _x(lam, domain)
    coef = None
    for _ in range(ITERATIONS):
        if use.sum() < degree + 5:
            raise ValueError(f"only {int(use.sum())} bins are left outside the avoidance areas and the "
                             f"clipped points (a degree-{degree} fit needs {degree + 5})")
        coef = legendre.legfit(x[use], log_ratio[use], degree, w=1.0 / sigma[use])
        resid = (log_ratio - legendre.legval(x, coef)) / sigma
        scale = MAD_TO_SIGMA * np.median(np.abs(resid[use])) or 1.0
        keep = ok & mask(lam) & (np.abs(resid) < CLIP * max(scale, 1.0))
        if np.array_equal(keep, use):
            break
        use = keep
    fit = np.exp(legendre.legval(x, coef))
    measured = np.where(ok, (counts * fit) / ref, np.nan)  # observed / (reference / inverse sensitivity)
    measured = np.where(mask(lam, ("absorption",)), measured, 1.0)  # the star's lines are not telluric
    tau1 = telluric.airmass1_depth(lam, measured, airmass)
    resid = np.log(ref[use] / (counts[use] * fit[use]))
    return FluxCal(coefficients=coef, domain=domain, wavelength=lam, inverse_sensitivity=fit, tau1=tau1,
                   airmass=float(airmass), degree=int(degree), n_used=int(use.sum()),
                   residual_rms=float(np.sqrt(np.mean(resid ** 2))),
                   equivalent_width={sp: telluric.equivalent_width(lam, tau1[sp]) for sp in telluric.SPECIES})


def calibrate(lam, counts, variance, cal: FluxCal, airmass: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A frame's spectrum (electrons / s / A, extinction-corrected) in erg / s / cm2 / A:
    ``(flux, variance, telluric transmission)`` at ``airmass``; NaN outside the calibration's
    wavelength range."""
    lam = np.asarray(lam, float)
    transmission = cal.transmission_at(lam, airmass)
    factor = cal.sensitivity_at(lam) / transmission
    flux = np.asarray(counts, float) * factor
    var = np.asarray(variance, float) * factor ** 2 if variance is not None else np.full(lam.size, np.nan)
    return flux, var, transmission
