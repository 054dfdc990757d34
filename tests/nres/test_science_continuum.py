"""Blaze division and the 201-pixel running median of steps/nres/science/continuum.py."""

import numpy as np

from steps.nres.science import continuum


def test_normalised_flux_is_one_in_the_continuum_and_keeps_the_lines():
    rng = np.random.default_rng(0)
    nx = 2048
    x = np.arange(nx)
    wave = 5000 + 0.02 * x
    blaze = 0.3 + 0.7 * np.exp(-0.5 * ((x - 1000) / 700.0) ** 2)
    tilt = 1.0 + 0.05 * (x - nx / 2) / nx            # what the flat's blaze leaves over
    lines = np.ones(nx)
    centres = rng.uniform(20, nx - 20, 60)
    for c in centres:
        lines *= 1 - 0.6 * np.exp(-0.5 * ((x - c) / 2.0) ** 2)
    flux_true = 20000 * blaze * tilt * lines
    unc = np.sqrt(flux_true + 25)
    flux = flux_true + rng.normal(0, 1, nx) * unc
    out = continuum.normalize(flux, unc, blaze, 0.001 * blaze, wave)
    nf = out["normflux"]
    cont = lines > 0.999
    assert abs(np.median(nf[cont]) - 1.0) < 0.005
    assert np.std(nf[cont] - 1) < 3 * np.median((unc / flux_true)[cont])
    deep = lines < 0.45
    assert np.all(np.abs(nf[deep] - lines[deep]) < 0.05)
    assert out["feature_mask"][deep].all()
    assert np.all(np.isfinite(out["normuncertainty"]))


def test_broad_line_regions_are_masked_and_orders_vectorised():
    nx = 600
    wave = np.linspace(6500, 6620, nx)                 # H alpha inside
    flux = np.ones(nx) * 1000
    flux[(wave > 6550) & (wave < 6575)] *= 0.4
    nf, _nu = continuum.normalize_orders(np.array([flux, flux]), np.sqrt(np.array([flux, flux])),
                                        np.ones((2, nx)), None, np.array([wave, wave]))
    assert nf.shape == (2, nx)
    ha = (wave > 6555) & (wave < 6570)
    assert np.allclose(nf[:, ha], 0.4, atol=0.02)      # the median does not fill the line in
    assert np.allclose(nf[:, wave < 6520], 1.0, atol=1e-6)
