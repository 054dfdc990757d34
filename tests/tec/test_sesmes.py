"""Tests of TEC's alternative-detrending SES/MES statistics (tec.md step 10)
on synthetic 10-minute light curves with known injected transits."""
import numpy as np
import pytest
from scipy.signal import lfilter

from steps.tec.science import tps
from steps.tec.science.detrend import detrend, smoothn
from steps.tec.science.gapfill import burg_ar, fill_extend, fill_noise
from steps.tec.science.sesmes import ses_mes_stats

CAD_PER_HR = 6
T0 = 1500.0
FLUX_LEVEL = 12000.0


def light_curve(seed, *, days=27.0, sigma=500e-6, red=30e-6, trend_amp=0.005,
                trend_days=8.0, depth=1000e-6, dur_h=3.0, period=3.3, epoch=1.7):
    """27-d 10-min light curve: orbit gap, scattered invalid bins, slow sine
    and linear trends, white + red (1-d correlated) noise, box transits.

    Returns time, flux, valid, in-transit mask, per-cadence noise sigma."""
    rng = np.random.default_rng(seed)
    n = int(days * 24 * CAD_PER_HR)
    t = T0 + np.arange(n) / (24.0 * CAD_PER_HR)
    valid = np.ones(n, dtype=bool)
    valid[n // 2 - 150:n // 2 + 30] = False
    valid[rng.choice(n, 40, replace=False)] = False
    red_noise = lfilter([1.0], [1.0, -0.9], rng.normal(0.0, 1.0, n)) * np.sqrt(1 - 0.81)
    rel = (1.0 + trend_amp * np.sin(2 * np.pi * t / trend_days) + 0.003 * (t - T0) / days
           + rng.normal(0.0, sigma, n) + red * red_noise)
    in_tr = np.abs(tps.phase(t, period, T0 + epoch)) * period * 24.0 < dur_h / 2.0
    rel[in_tr] -= depth
    t[~valid & (np.arange(n) % 3 == 0)] = np.nan          # some invalid bins lack a time
    return t, rel * FLUX_LEVEL, valid, in_tr, np.hypot(sigma, red)


def run(t, f, v, seed=0, **kw):
    args = dict(period=3.3, epoch=T0 + 1.7, duration_h=3.0, depth_ppm=1000.0,
                pulse_dur_h=3.0, cad_per_hr=CAD_PER_HR)
    args.update(kw)
    return ses_mes_stats(t, f, v, rng=np.random.default_rng(seed), **args)


@pytest.mark.parametrize("seed", [1, 2])
def test_new_mes_matches_injected_snr(seed):
    t, f, v, in_tr, sigma = light_curve(seed)
    expected = 1000e-6 / sigma * np.sqrt(np.sum(in_tr & v))
    r = run(t, f, v, seed)
    assert r["valid_alt_det"] == 1 and r["valid_ses"] == 1
    assert r["new_ntran"] == 8
    assert abs(r["new_mes"] / expected - 1.0) < 0.2, (r["new_mes"], expected)
    # the reference signal has the same depth and noise: similar MES
    assert abs(r["new_mes_r"] / expected - 1.0) < 0.25
    # CDPP at 3 h near sigma / sqrt(18 cadences); the TPS whitening runs
    # high when the transits themselves sit in its MAD windows
    assert 0.8 < r["cdpp_ppm"] / (sigma * 1e6 / np.sqrt(18)) < 1.35
    # peaks at the transit times
    assert np.all(np.abs(r["transit_peak_times"] - r["transit_times"]) < 1.0 / 24.0)


def test_clean_planet_passes_triage_gates():
    t, f, v, _, _ = light_curve(3)
    r = run(t, f, v, 3, tce_mes=23.0)
    assert r["valid_alt_det"] == 1 and r["valid_ses"] == 1
    assert r["new_mes"] > 4.5
    assert (23.0 - r["new_mes"]) / 23.0 < (np.log10(23.0) - 1) * 0.26 + 0.53
    assert r["mn_ses2mn_mes"] < 0.85 and r["ses2mes"] < 0.85
    assert r["chases_sumry"] > 0.3 and r["chases_sumry_r"] > 0.3
    for key in ("transit_times", "transit_ses", "transit_peak_times", "transit_chases"):
        assert len(r[key]) == r["new_ntran"]
    det = r["alt_detrend"]
    assert det.dtype == np.float32 and det.shape == t.shape
    assert np.all(np.isnan(det[~v])) and np.all(np.isfinite(det[v]))
    assert abs(np.median(det[v]) - 1.0) < 1e-3


def test_single_huge_event_is_flagged():
    """All the signal in one transit: SES/MES (mean noise) far above the
    reference's, and nearby noise rivals the other 'transits' (low CHASES)."""
    t, f, v, _, _ = light_curve(4, depth=0.0)
    one = np.abs(t - (T0 + 1.7 + 2 * 3.3)) < 1.5 / 24.0
    f[one] -= 0.0025 * FLUX_LEVEL
    r = run(t, f, v, 4, depth_ppm=350.0, tce_mes=8.0)
    assert r["valid_ses"] == 1
    assert np.argmax(r["transit_ses"]) == 2
    assert r["mn_ses2mn_mes"] > 1.5
    assert r["mn_ses2mn_mes"] > 1.1 * r["mn_ses2mn_mes_r"]
    assert r["chases_sumry"] < 0.3
    # the same data with a real planet look nothing like it
    t, f, v, _, _ = light_curve(4)
    good = run(t, f, v, 4, tce_mes=23.0)
    assert good["mn_ses2mn_mes"] < 0.6


def test_detrend_keeps_depth_and_removes_strong_sine():
    t, f, v, in_tr, sigma = light_curve(5, trend_amp=0.02, trend_days=4.0, red=0.0)
    det, _ = detrend(f, v, ~in_tr, int(np.ceil(CAD_PER_HR * 3.0)))
    oot = v & ~in_tr
    depth = np.median(det[oot]) - np.mean(det[v & in_tr])
    assert abs(depth / 1000e-6 - 1.0) < 0.1
    # the 2 %, 4-day sine is gone: 1-hour means scatter like white noise
    n6 = (np.flatnonzero(oot).size // 6) * 6
    hourly = det[np.flatnonzero(oot)[:n6]].reshape(-1, 6).mean(axis=1)
    assert np.std(hourly) < 1.5 * sigma / np.sqrt(6)


def test_smoothn_follows_smooth_curve_and_resists_outliers():
    rng = np.random.default_rng(6)
    x = np.linspace(0, 100, 512)
    truth = np.cos(x / 10.0) + (x / 50.0) ** 2
    y = truth + rng.normal(0, 0.1, x.size)
    y[[100, 200, 300]] += 5.0
    y[150:170] = np.nan
    z, s = smoothn(y)
    assert s > 0 and np.all(np.isfinite(z))
    assert np.sqrt(np.mean((z - truth) ** 2)) < 0.05


def test_burg_recovers_ar4():
    poles = np.array([0.8, -0.5, 0.6 + 0.3j, 0.6 - 0.3j])
    a_true = np.real(np.poly(poles))[1:]
    e = np.random.default_rng(7).normal(0.0, 1.0, 20000)
    x = lfilter([1.0], np.concatenate(([1.0], a_true)), e)
    a, var = burg_ar(x, 4)
    assert np.allclose(a, a_true, atol=0.03)
    assert abs(var - 1.0) < 0.05


def test_fill_extend_power_of_two_and_noise_level():
    rng = np.random.default_rng(8)
    n = 3000
    y = 1.0 + rng.normal(0.0, 1e-3, n)
    valid = np.ones(n, dtype=bool)
    valid[:5] = False                      # leading gap joins the padding
    valid[1000:1300] = False
    valid[2000] = False
    out, v_ext = fill_extend(y, valid, 300, np.random.default_rng(9))
    assert out.size == 4096 and v_ext.size == 4096
    assert np.array_equal(v_ext[:n], valid) and not v_ext[n:].any()
    assert np.all(np.isfinite(out))
    assert np.allclose(out[:n][valid], y[valid])
    filled = out[~v_ext]
    assert abs(np.mean(filled) - 1.0) < 3e-4
    assert 0.7e-3 < np.std(filled) < 1.3e-3


def test_fill_noise_guards_degenerate_sides():
    rng = np.random.default_rng(10)
    # no data before, constant data after (zero MAD): no crash, finite fill
    fill = fill_noise(50, np.zeros(0), np.ones(3), rng)
    assert np.all(np.isfinite(fill)) and np.allclose(fill, 1.0)
    fill = fill_noise(20, np.full(100, 2.0), rng.normal(2.0, 0.01, 100), rng)
    assert np.all(np.isfinite(fill)) and abs(np.mean(fill) - 2.0) < 0.01


def test_tps_ses_of_box_in_white_noise():
    rng = np.random.default_rng(11)
    n, width, centre = 4096, 18, 2000
    ses = []
    for _ in range(5):
        x = 1.0 + rng.normal(0.0, 1e-3, n)
        x[centre - width // 2:centre - width // 2 + width] -= 2e-3
        corr, norm, _ = tps.statistic_time_series(x, width)
        s = corr / norm
        assert abs(np.argmax(s) - centre) <= 2
        ses.append(s[centre])
    assert abs(np.mean(ses) / (2.0 * np.sqrt(width)) - 1.0) < 0.1


@pytest.mark.parametrize("kw", [dict(period=0.25, epoch=T0 + 0.1, duration_h=1.0),
                                dict(duration_h=20.0, period=3.3),
                                dict(too_few=True)])
def test_gates(kw):
    t, f, v, _, _ = light_curve(12)
    if kw.pop("too_few", False):
        v = v.copy()
        v[np.flatnonzero(v)[150:]] = False
    r = run(t, f, v, **kw)
    assert r["valid_alt_det"] == 0 and r["valid_ses"] == 0
    for key in ("new_mes", "ses2mes", "mn_ses2mn_mes", "chases_sumry", "new_mes_r",
                "chases_sumry_r", "cdpp_ppm"):
        assert np.isnan(r[key])
    assert np.all(np.isnan(r["alt_detrend"])) and r["alt_detrend"].shape == t.shape


def test_gate_valid_fraction_ignores_long_gaps():
    t, f, v, _, _ = light_curve(13)
    holey = v.copy()
    holey[np.flatnonzero(holey)[::2]] = False       # half the cadences lost
    assert run(t, f, holey)["valid_alt_det"] == 0
    # a 10-day hole (a missing sector) does not count against the fraction
    t2, f2, v2, _, _ = light_curve(13, days=40.0)
    v2[(t2 - T0 > 13.0) & (t2 - T0 < 24.0)] = False
    assert run(t2, f2, v2)["valid_alt_det"] == 1


def test_deterministic_for_seed():
    t, f, v, _, _ = light_curve(14)
    a, b, c = run(t, f, v, 5), run(t, f, v, 5), run(t, f, v, 6)
    for key in ("new_mes", "new_mes_r", "chases_sumry", "cdpp_ppm"):
        assert a[key] == b[key]
    assert np.array_equal(a["alt_detrend"], b["alt_detrend"], equal_nan=True)
    assert a["new_mes_r"] != c["new_mes_r"]


def test_chases_summary_rule():
    assert tps.chases_summary(np.array([0.2, 0.6])) == 0.2
    assert tps.chases_summary(np.array([0.1, 0.2, 0.9])) == 0.2
    assert tps.chases_summary(np.array([0.1, 0.2, 0.3, 0.4, 1.0])) == pytest.approx(0.3)
    assert tps.chases_summary(np.array([0.5])) == 0.0
