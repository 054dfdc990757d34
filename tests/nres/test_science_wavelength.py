"""ThAr line finding, blind identification and the 2D wavelength solution of
steps/nres/science/wavelength.py on synthetic echelle arcs with a known lambda(x, m)."""

from pathlib import Path

import numpy as np
import pytest

from steps.nres.science import wavelength as W

LIST = Path(__file__).resolve().parents[2] / "steps" / "nres" / "data" / "thar_lines.csv"
C_KMS = 299792.458


@pytest.fixture(scope="module")
def line_list():
    return W.parse_line_list(LIST.read_text())


def echelle(nx, m0, n_orders, s=-1, v_px=1.88, kappa=0.07, G0=448000.0, flip=False):
    """lambda(x, m) of an echelle: ln(m lambda) = ln G0 + h u + kappa h u^2 + a small order term."""
    h = v_px / C_KMS * nx

    def lam(x, m):
        u = (np.asarray(x, float) - 0.5 * (nx - 1)) / nx
        u = -u if flip else u
        return G0 * np.exp(h * u + kappa * h * u * u + 2e-4 * h * u * (m - 85) / 30.0) / m

    return lam, m0 + s * np.arange(n_orders)


def arcs(lam, ms, nx, wl, amp, seed=0, sigma=1.3, jitter=1.0, keep=0.6, peak=3e3, noise=15.0, shift=0.0):
    """Arc spectra: a random subset of the list's lines, with their own (log-normal scattered)
    amplitudes, Gaussian lines of width ``sigma`` px, Poisson and read noise; ``shift`` (px) moves
    every line (another fiber, or a drift). Returns flux, variance and the true line positions."""
    rng = np.random.default_rng(seed)
    x = np.arange(nx)
    flux = np.zeros((len(ms), nx))
    truth = []
    for i, m in enumerate(ms):
        lgrid = lam(x, m)
        o = np.argsort(lgrid)
        sel = np.flatnonzero((wl > lgrid.min()) & (wl < lgrid.max()))
        sel = sel[rng.random(sel.size) < keep]
        xl = np.interp(wl[sel], lgrid[o], x[o].astype(float)) + shift
        a = amp[sel] / amp.max() * peak * 60 * np.exp(rng.normal(0, jitter, sel.size))
        for xx, aa in zip(xl, a):
            lo, hi = max(0, int(xx) - 8), min(nx, int(xx) + 9)
            xs = np.arange(lo, hi)
            flux[i, lo:hi] += aa * np.exp(-0.5 * ((xs - xx) / sigma) ** 2)
        truth.append((xl, a))
    var = noise ** 2 + flux
    return flux + rng.normal(0, 1, flux.shape) * np.sqrt(var), var, truth


def errors(sol, lam, ms, nx):
    """(rms, max) of the solution minus the truth over the central 90 % of every order (the ends
    of the orders hold no lines to anchor the polynomial)."""
    x = np.arange(int(0.05 * nx), int(0.95 * nx), 4)
    d = np.concatenate([sol(x, sol.m_of_index(i)) - lam(x, m) for i, m in enumerate(ms)])
    return float(np.sqrt(np.mean(d ** 2))), float(np.max(np.abs(d)))


def test_find_lines_centroids():
    rng = np.random.default_rng(1)
    nx = 800
    x = np.arange(nx)
    centres = np.arange(40.3, 760, 37.7)
    flux = sum(5000 * np.exp(-0.5 * ((x - c) / 1.3) ** 2) for c in centres)
    var = 100 + flux
    lines = W.find_lines(flux + rng.normal(0, 1, nx) * np.sqrt(var), var)
    assert lines["x"].size == centres.size
    assert np.max(np.abs(lines["x"] - centres)) < 0.03
    assert np.allclose(np.median(lines["sigma"]), 1.3, atol=0.05)
    assert np.all(lines["x_err"] < 0.03)


def test_blind_solution_sample_like(line_list):
    wl, amp = line_list
    nx = 1024
    lam, ms = echelle(nx, 91, 12)
    flux, var, _ = arcs(lam, ms, nx, wl, amp, seed=2)
    sol, _table, q = W.solve(flux, np.arange(12), wl, amp, variances=var)
    assert (sol.m0, sol.s) == (91, -1)
    assert q["RMS"] <= 0.005 and q["SIGLAM"] <= 0.005
    assert q["NLINES"] > 0.5 * q["NLINEDET"]
    rms, mx = errors(sol, lam, ms, nx)
    assert rms < 0.002 and mx < 0.006
    assert 0 < q["RVPRECSN"] < 10


def test_blind_solution_reversed_directions_with_curvature(line_list):
    # red orders, m increasing with the trace index, wavelength decreasing along x, stronger curvature
    wl, amp = line_list
    nx = 1024
    lam, ms = echelle(nx, 60, 10, s=+1, v_px=2.5, kappa=0.15, flip=True)
    flux, var, _ = arcs(lam, ms, nx, wl, amp, seed=3, keep=0.8)
    sol, _table, q = W.solve(flux, np.arange(10), wl, amp, variances=var)
    assert (sol.m0, sol.s) == (60, 1)
    assert q["RMS"] <= 0.005
    rms, mx = errors(sol, lam, ms, nx)
    assert rms < 0.003 and mx < 0.01


def test_guided_solution_of_another_fiber_and_the_drift(line_list):
    wl, amp = line_list
    nx = 1024
    lam, ms = echelle(nx, 91, 12)
    flux1, var1, _ = arcs(lam, ms, nx, wl, amp, seed=4)
    sol1, _, _ = W.solve(flux1, np.arange(12), wl, amp, variances=var1)
    # fiber 0 sits 2.6 px away along the dispersion
    lam0 = lambda x, m: lam(np.asarray(x) + 2.6, m)
    flux0, var0, _ = arcs(lam, ms, nx, wl, amp, seed=5, shift=-2.6)
    sol0, _, q0 = W.solve(flux0, np.arange(12), wl, amp, variances=var0, guess=sol1)
    assert abs(sol0.meta["guide_shift_px"] + 2.6) < 0.5
    rms, mx = errors(sol0, lam0, ms, nx)
    assert q0["RMS"] <= 0.005 and rms < 0.002 and mx < 0.006
    # the simultaneous fiber moved by +0.02 px: the drift in velocity
    ref = [W.find_lines(f, v) for f, v in zip(flux1, var1)]
    fluxd, vard, _ = arcs(lam, ms, nx, wl, amp, seed=4, shift=0.02)
    now = [W.find_lines(f, v) for f, v in zip(fluxd, vard)]
    d = W.drift(now, ref, sol1, np.arange(12))
    v_true = 0.02 * 1.88e3                              # px times m/s per px
    assert abs(d["drift"] - v_true) < max(3 * d["drift_err"], 3.0)
    corrected = W.apply_drift(sol1(500.0, 85), d["drift"])
    assert corrected < sol1(500.0, 85)


def test_quality_figures():
    rng = np.random.default_rng(6)
    lam = rng.uniform(4000, 6000, 400)
    table = {"wavelength": lam, "fit": lam + rng.normal(0, 0.003, lam.size)}
    q = W.quality(table, n_detected=500)
    assert abs(q["SIGLAM"] - 0.003) < 0.0005
    expected = 0.003 / 5000 * C_KMS * 1000 / np.sqrt(400)
    assert abs(q["RVPRECSN"] / expected - 1) < 0.2
    assert q["NLINEDET"] == 500 and q["NLINES"] == 400


def test_solution_arrays_round_trip_and_blind_failure(line_list):
    wl, amp = line_list
    sol, _ = W.fit_solution(np.array([10.0, 500, 900, 100, 600, 1000]), np.array([80, 80, 80, 81, 81, 81]),
                            np.array([5000.0, 5010, 5018, 4940, 4950, 4958]), 1024, 1, 1, m0=80, s=1)
    back = W.WavelengthSolution.from_arrays(sol.to_arrays())
    assert np.allclose(back(300.0, 80), sol(300.0, 80))
    noise = np.random.default_rng(7).normal(0, 1, (6, 1024))
    with pytest.raises(ValueError):
        W.solve(noise, np.arange(6), wl, amp)
