"""TEC runbook steps 12-21 against constructed truth: SWEET, model-shift verdicts, momentum
dumps, RANK ramps and Tier rules, report and TEV file names."""

import io
import math

import numpy as np
import pytest

from steps.tec.merge4tev import tev_name, tev_sector
from steps.tec.modump_check import dump_fraction
from steps.tec.reports import report_name
from steps.tec.science.centroid import pixel_significance
from steps.tec.science.modshift_verdict import albedo_percentiles, modshift_verdict
from steps.tec.science.ranking import (
    FLAG_ORDER, TceEvidence, centroid_flag, expected_duration_h, min_pdc_noise, ramp, rank_score, tce_flags,
    tier_of)
from steps.tec.science.sweet import fit_sine, robust_std, sweet_flag, sweet_test

DT = 10.0 / 1440.0
TIME = np.arange(1325.3, 1353.2, DT)


# --- SWEET (step 13) ---------------------------------------------------------------------------

def sector_flux(rng, noise=300e-6, trend=True):
    t = TIME
    base = 1.0 + (2e-3 * ((t - t.mean()) / 14.0) ** 2 if trend else 0.0)
    return t, 5000.0 * base * (1 + rng.normal(0, noise, t.size))


@pytest.mark.parametrize("factor", [1.0, 0.5, 2.0])
def test_sweet_flags_a_sinusoid_at_p_half_and_double(factor):
    rng = np.random.default_rng(1)
    t, f = sector_flux(rng)
    p = 1.3
    f = f * (1 + 2e-3 * np.sin(2 * np.pi * (t - 1325.7) / (p * factor)))
    res = sweet_test(t, f, p)
    assert res.ratio < 0.8 and sweet_flag(res.ratio)
    best = int(np.argmin(res.ratios))
    assert res.fits[best].period == pytest.approx(p * factor)
    assert res.fits[best].amplitude == pytest.approx(2e-3, rel=0.05)


def test_sweet_passes_a_transiting_planet_and_flat_noise():
    rng = np.random.default_rng(2)
    t, f = sector_flux(rng)
    res = sweet_test(t, f, 2.0)
    assert 0.95 < res.ratio <= 1.02 and not sweet_flag(res.ratio)
    dt = np.mod(t - 1326.0 + 1.0, 2.0) - 1.0
    f2 = f * np.where(np.abs(dt) < 1.5 / 24, 1 - 3e-3, 1.0)
    assert not sweet_flag(sweet_test(t, f2, 2.0).ratio)
    assert not sweet_flag(float("nan"))  # not tested is no fail


def test_sweet_sine_fit_recovers_phase_and_respects_amplitude_bound():
    t = np.linspace(-10, 10, 2000)
    y = 0.01 * np.sin(2 * np.pi * (t - 0.3) / 1.7) + 0.001
    amp, t0, off, model = fit_sine(t, y, 1.7, amp_max=1.0, offset_max=1.0)
    assert amp == pytest.approx(0.01, rel=1e-6) and off == pytest.approx(0.001, rel=1e-6)
    assert np.mod(t0 - 0.3 + 0.85, 1.7) - 0.85 == pytest.approx(0.0, abs=1e-6)
    amp, *_ = fit_sine(t, y, 1.7, amp_max=0.004, offset_max=1.0)
    assert amp == pytest.approx(0.004)


def test_sweet_rejects_too_few_points():
    with pytest.raises(ValueError, match="at least 20"):
        sweet_test(TIME[:10], np.ones(10), 1.0)
    assert robust_std(np.array([0.0, 1.0, -1.0])) == pytest.approx(1.4826, rel=1e-3)


# --- model-shift verdicts (steps 12 and 17) ------------------------------------------------------

def ms(**kw):
    base = dict(sigma_pri=40.0, sigma_sec=2.0, sigma_ter=1.8, sigma_pos=1.9, sigma_oe=0.5, fa1=4.7, fa2=2.0,
                fred=1.0, phase_pri=0.0, phase_sec=0.3, sec_depth=20e-6, sec_depth_err=10e-6)
    base.update(kw)
    return base


def verdict(m, rp=0.1, rp_e=0.005, a=10.0, dur_d=0.125, period=3.0, seed=0):
    return modshift_verdict(m, dur_d, period, rp, rp_e, a, np.random.default_rng(seed))


def test_clean_planet_has_unique_primary_and_no_secondary():
    v = verdict(ms())
    assert v.primary_good and v.primary_reason == 0
    assert not v.secondary_good and not v.has_secondary and not v.override


@pytest.mark.parametrize("kw, reason", [
    (dict(sigma_pri=4.0), 1),                     # pri / Fred < FA1
    (dict(sigma_pri=6.0, fred=1.5), 1),           # red noise lowers the significance
    (dict(sigma_pri=8.0, sigma_ter=7.0), 2),      # pri - ter < FA2
    (dict(sigma_pri=8.0, sigma_pos=7.0), 4),      # pri - pos < FA2
    (dict(sigma_pri=8.0, sigma_ter=7.0, sigma_pos=7.0), 6),
    (dict(fred=0.0), 8),                          # degenerate light curve
])
def test_primary_rules(kw, reason):
    v = verdict(ms(**kw))
    assert not v.primary_good and v.primary_reason == reason


def test_eclipsing_binary_secondary_is_significant_and_not_overridden():
    # deep secondary: its albedo (secdepth / (Rp/a)^2) is far above 1
    v = verdict(ms(sigma_sec=25.0, sigma_ter=2.0, sigma_pos=1.5, phase_sec=0.5, sec_depth=3000e-6, sec_depth_err=50e-6))
    assert v.secondary_good and v.secondary_reason == 0
    assert not v.override and v.has_secondary
    assert v.albedo_p5 > 1


def test_secondary_reason_four_is_kept():  # the original lost it in a misspelt variable
    v = verdict(ms(sigma_sec=10.0, sigma_ter=2.0, sigma_pos=9.0))
    assert not v.secondary_good and v.secondary_reason == 4


def test_half_period_override():
    # equal primary and secondary half a period apart: the TCE is at twice the true period
    v = verdict(ms(sigma_pri=30.0, sigma_sec=29.5, sigma_ter=2.0, sigma_pos=1.5, phase_pri=0.001, phase_sec=0.5,
                   sec_depth=1000e-6))
    assert v.secondary_good and v.override and v.override_reason == 1 and not v.has_secondary
    # the same depths but not half a period apart: no override (albedo far above 1)
    v = verdict(ms(sigma_pri=30.0, sigma_sec=29.5, sigma_ter=2.0, sigma_pos=1.5, phase_pri=0.0, phase_sec=0.4,
                   sec_depth=1000e-6))
    assert v.secondary_good and v.has_secondary


def test_albedo_override_for_a_hot_jupiter_occultation():
    # Rp/R* = 0.1, a/R* = 4: (Rp/a)^2 = 6.25e-4; a 150 ppm occultation is albedo 0.24
    v = verdict(ms(sigma_sec=12.0, sigma_ter=2.0, sigma_pos=1.5, phase_sec=0.5, sec_depth=150e-6, sec_depth_err=12e-6),
                rp=0.1, rp_e=0.003, a=4.0)
    assert v.secondary_good and v.override and v.override_reason == 2
    assert v.albedo_p5 < 1 and v.albedo_p50 == pytest.approx(0.24, rel=0.1)


def test_albedo_draws_are_seeded_and_use_1000_draws():
    a = albedo_percentiles(150e-6, 30e-6, 0.1, 0.01, 4.0, np.random.default_rng(5))
    b = albedo_percentiles(150e-6, 30e-6, 0.1, 0.01, 4.0, np.random.default_rng(5))
    assert a == b
    assert all(math.isnan(x) for x in albedo_percentiles(150e-6, 30e-6, 0.1, 0.01, float("nan"), np.random.default_rng(5)))
    # negative error (not measured) gives no spread
    p5, p50 = albedo_percentiles(150e-6, -1.0, 0.1, -1.0, 4.0, np.random.default_rng(5))
    assert p5 == pytest.approx(p50) == pytest.approx(0.24)


# --- momentum dumps (step 15) --------------------------------------------------------------------

def test_momentum_dump_fraction():
    dumps = np.array([1330.0, 1333.5, 1337.0])
    events = np.array([1330.05, 1333.4, 1335.0, 1337.3])
    n, frac = dump_fraction(events, dumps, duration_days=0.125)
    assert n == 2 and frac == pytest.approx(0.5)
    assert dump_fraction(events, [], 0.1) == (0, 0.0)
    assert dump_fraction([], dumps, 0.1) == (0, 0.0)
    assert dump_fraction(dumps + 0.01, dumps, 0.1) == (3, 1.0)


# --- RANK and Tiers (step 19) --------------------------------------------------------------------

def test_ramps_run_from_one_to_a_tenth_in_log():
    assert ramp(2.0, 2.0, 6.0) == pytest.approx(0.0)            # log10(1)
    assert ramp(6.0, 2.0, 6.0) == pytest.approx(-1.0)           # log10(0.1)
    assert ramp(4.0, 2.0, 6.0) == pytest.approx(np.log10(0.55))
    assert ramp(1.0, 2.0, 6.0) == 0.0 and ramp(30.0, 2.0, 6.0) == -1.0   # clipped
    assert ramp(12.0, 12.0, 9.0) == 0.0 and ramp(9.0, 12.0, 9.0) == pytest.approx(-1.0)  # MES rises
    assert ramp(float("nan"), 2.0, 6.0) == -1.0


def test_expected_duration_of_the_earth():
    assert expected_duration_h(1.0, 4.437, 365.25) == pytest.approx(10.19559, rel=1e-4)


def test_rank_of_an_ideal_and_a_poor_tce():
    # ideal: small, high MES, bright, expected duration, low insolation, SNR/MES <= 0.9, depths agree
    t_exp = float(expected_duration_h(1.0, 4.437, 10.0))
    best = rank_score(1.5, 20.0, 8.0, t_exp, 1.0, 4.437, 10.0, 1.0, 18.0, 1000.0, 1000.0)
    assert best == pytest.approx(1.0)
    worst = rank_score(10.0, 8.0, 14.0, 4 * t_exp, 1.0, 4.437, 10.0, 100.0, 30.0, 1000.0, 2000.0)
    assert worst == pytest.approx(0.0)
    mid = rank_score(4.0, 20.0, 8.0, t_exp, 1.0, 4.437, 10.0, 1.0, 18.0, 1000.0, 1000.0)
    assert mid == pytest.approx(1.0 + np.log10(0.55) / 7)             # Rp half way up its ramp
    snr_eq_mes = rank_score(1.5, 20.0, 8.0, t_exp, 1.0, 4.437, 10.0, 1.0, 20.0, 1000.0, 1000.0)
    assert snr_eq_mes == pytest.approx(1.0 + np.log10(0.55) / 7)      # SNR/MES = 1, half way


GOOD = dict(modshift_alt=dict(primary_good=True, secondary_good=False, override=False, sigma_oe=0.5),
            modshift_dv=dict(primary_good=True, secondary_good=False, override=False, sigma_oe=0.5))


def evidence(**kw):
    base = dict(rp=2.0, snr=15.0, cent_oot_offset=1.0, cent_oot_offset_e=1.0, cent_tic_offset=1.0,
                cent_tic_offset_e=1.0, sweet_ratio=0.99, min_pdc_noi=0.95, modump_fraction=0.0, **GOOD)
    base.update(kw)
    return TceEvidence(**base)


def test_clean_tce_is_tier_1():
    f = tce_flags(evidence())
    assert f.flags == [] and f.tier == 1 and f.bits() == "0" * len(FLAG_ORDER)


@pytest.mark.parametrize("kw, flag", [
    (dict(cent_oot_offset=4.0), "CenOOT"),
    (dict(cent_tic_offset=1.0, cent_tic_offset_e=-1.0), "CenTIC"),
    (dict(modshift_alt=dict(GOOD["modshift_alt"], primary_good=False)), "UniqAlt"),
    (dict(modshift_dv=dict(GOOD["modshift_dv"], primary_good=False)), "UniqDV"),
    (dict(modshift_alt=dict(GOOD["modshift_alt"], sigma_oe=3.0)), "OEAlt"),
    (dict(modshift_dv=dict(GOOD["modshift_dv"], secondary_good=True, override=True)), "HasSecDVPlanet?"),
    (dict(self_match=True), "OthTCEMtch"),
    (dict(min_pdc_noi=0.7), "PDCsummary"),
    (dict(rp=21.0), "RpBig"),
    (dict(modump_fraction=0.95), "MoDump"),
    (dict(modshift_alt=None), "NoModshiftAlt"),
])
def test_single_flags_give_tier_2(kw, flag):
    f = tce_flags(evidence(**kw))
    assert f.flags == [flag] and f.tier == 2
    assert f.bits()[FLAG_ORDER.index(flag)] == "1" and f.text() == flag + "_"


def test_secondary_is_tier_3():
    f = tce_flags(evidence(modshift_alt=dict(GOOD["modshift_alt"], secondary_good=True)))
    assert f.flags == ["HasSecAlt"] and f.has_sec and f.tier == 3


def test_sweet_fail_alone_is_waived_but_not_with_another_flag():
    alone = tce_flags(evidence(sweet_ratio=0.5))
    assert alone.flags == ["Sweet"] and not alone.sweet_fail and alone.tier == 2
    # centroid flags are not counted: the waiver still applies
    assert tce_flags(evidence(sweet_ratio=0.5, cent_oot_offset=5.0)).tier == 2
    both = tce_flags(evidence(sweet_ratio=0.5, modump_fraction=1.0))
    assert both.sweet_fail and both.tier == 3
    assert tce_flags(evidence(sweet_ratio=None)).tier == 1      # P >= 5 d: not tested


def test_odd_even_limit_rises_with_snr_and_ftl_radius_limit():
    oe = dict(modshift_alt=dict(GOOD["modshift_alt"], sigma_oe=3.5))
    assert "OEAlt" in tce_flags(evidence(snr=20.0, **oe)).flags
    assert "OEAlt" not in tce_flags(evidence(snr=40.0, **oe)).flags
    assert "RpBig" not in tce_flags(evidence(rp=22.0, ftl=True)).flags
    assert "RpBig" in tce_flags(evidence(rp=26.0, ftl=True)).flags


def test_tier_rule_table_and_helpers():
    assert [tier_of(False, False, False), tier_of(True, False, False), tier_of(True, True, False),
            tier_of(True, False, True)] == [1, 2, 3, 3]
    assert centroid_flag(3.1, 1.0) and not centroid_flag(2.9, 1.0)
    assert not centroid_flag(float("nan"), 1.0)
    assert min_pdc_noise({1: 0.5, 5: 0.9, 6: 0.7}, 1) == 0.7       # sectors before 4 ignored
    assert min_pdc_noise({1: 0.5}, 1) is None
    assert min_pdc_noise({33: 1.2}, 33) == 1.0


# --- pixel significance (step 18) ----------------------------------------------------------------

def test_pixel_significance_points_at_the_eclipsing_pixel():
    rng = np.random.default_rng(3)
    t = TIME
    cube = np.full((t.size, 7, 7), 100.0) + rng.normal(0, 0.3, (t.size, 7, 7))
    dt = np.mod(t - 1326.0 + 1.5, 3.0) - 1.5
    cube[np.abs(dt) < 1.0 / 24, 1, 5] *= 0.98
    img = pixel_significance(t, cube, np.ones(t.size, bool), 3.0, 1326.0, 2.0)
    j, i = np.unravel_index(np.nanargmax(img["significance"]), (7, 7))
    assert (j, i) == (1, 5) and img["depth"][1, 5] == pytest.approx(0.02, rel=0.1)


# --- file names (steps 20 and 21) ----------------------------------------------------------------

def test_report_and_tev_names():
    assert report_name(141122198, 2, 33) == "tec-s0033-0000000141122198-02.pdf"
    assert tev_name(141122198, 33) == "tec-s0033-0000000141122198-00001_dvm.pdf"
    assert tev_name(25155310, 26, multi_sector=True) == "tec-s1026-0000000025155310-00001_dvm.pdf"
    assert tev_sector(5, True) == 1005 and tev_sector(5, False) == 5


def test_pdf_join_with_pypdf():
    """The reports join single pages with pypdf: a 2 + 1 page join has 3 pages."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from pypdf import PdfReader, PdfWriter

    from steps.tec.reports import tier_page

    w = PdfWriter()
    w.append(tier_page({"tier": 2, "tic": 1, "planet_number": 1, "rank": 0.5, "known_flag": 0,
                        "flags": ["OEAlt", "CenOOT"]}, ["twexo page"]))
    fig = plt.figure()
    buf = io.BytesIO()
    fig.savefig(buf, format="pdf")
    plt.close(fig)
    buf.seek(0)
    w.append(buf)
    w.append(buf)
    out = io.BytesIO()
    w.write(out)
    out.seek(0)
    reader = PdfReader(out)
    assert len(reader.pages) == 3
    assert "Tier 2" in reader.pages[0].extract_text()
