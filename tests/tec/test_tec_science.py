"""TEC science functions scored against constructed truth.

Runbook steps 4 (skyline), 5/6/11 (federation, known planets, TOIs), 7 (self-match),
12 (flux triage) and 13 (trapezoid fit).
"""

import time

import numpy as np
import pytest

from steps.tec.science.federation import (
    angular_separation_arcsec, classify, cone_match, federate, known_flag, match_known_planets,
    match_tois, period_significance)
from steps.tec.science.selfmatch import self_match, self_match_flag
from steps.tec.science.skyline import bad_cadence_mask, skyline_flags
from steps.tec.science.trapezoid import trapezoid_fit, trapezoid_model
from steps.tec.science.triage import flux_triage

T_START, T_END = 1325.30, 1353.20       # a sector-like data span (BTJD)
DT = 10.0 / 1440.0


def random_tces(rng, n):
    """Random, realistic ephemerides: P 0.5-20 d log-uniform, T ~ 2.5 h (P/3 d)^(1/3)."""
    period = 10 ** rng.uniform(np.log10(0.5), np.log10(20.0), n)
    epoch = T_START + rng.uniform(0, 1, n) * period
    duration = np.clip(2.5 * (period / 3.0) ** (1 / 3) * rng.uniform(0.6, 1.4, n), 0.5, 10)
    return period, epoch, duration


# ---------------------------------------------------------------------------------------------
# Dense-grid statement of the algorithms, written from the runbook text, to check the
# vectorised versions.
# ---------------------------------------------------------------------------------------------

def _in_window(t, period, epoch, width_h):
    ph = np.mod(t - epoch, period) / period
    ph = np.where(ph > 0.5, ph - 1.0, ph)
    return np.abs(ph) <= width_h / 24.0 / period / 2.0


def _run_centres(mask):
    edges = np.diff(np.concatenate([[0], mask.astype(int), [0]]))
    start, end = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
    out = np.zeros(mask.size, bool)
    out[(start + end) // 2] = True
    return out


def _dense_stat(cp, ce, cd, rp, re):
    t = np.arange(T_START, T_END, DT)
    ref = _run_centres(_in_window(t, rp, re, 1.0))
    width = 2 * cd
    if width / 24 / cp > 0.25:
        width = 0.25 * cp * 24
    width = max(width, 0.5 if cp < 1 else 1.0)
    full = _in_window(t, cp, ce, width)
    n_cand = max(1, _run_centres(full).sum())
    stat = np.sum(full & ref) / n_cand - np.sum(~full & ref) / max(1, ref.sum())
    if cp < rp / 3.0 * (1 + 1e-12) or cp > 3.0 * rp * (1 - 1e-12) or rp < 0.11:
        stat = -1.0
    return stat


# ---------------------------------------------------------------------------------------------
# Step 4: skyline
# ---------------------------------------------------------------------------------------------

def test_skyline_flags_injected_shared_times_only():
    rng = np.random.default_rng(11)
    period, epoch, duration = random_tces(rng, 1500)
    bad_times = np.array([1331.50, 1344.20])
    # 120 single-transit signals at each bad time (a shared systematic)
    inj_epoch = np.repeat(bad_times, 120)
    inj_period = np.full(inj_epoch.size, 200.0)
    inj_dur = np.full(inj_epoch.size, 1.0)
    grid, counts, flagged = skyline_flags(np.r_[epoch, inj_epoch], np.r_[period, inj_period],
                                          np.r_[duration, inj_dur], T_START, T_END)
    assert grid.size == np.arange(T_START, T_END, DT).size
    near = np.min(np.abs(grid[:, None] - bad_times[None, :]), axis=1) <= 0.5 / 24
    assert flagged[near].all()                      # every injected cell is flagged
    assert flagged[~near].mean() < 0.01             # chance flags stay at the Gaussian tail
    # a high threshold leaves exactly the injected cells
    _, _, strict = skyline_flags(np.r_[epoch, inj_epoch], np.r_[period, inj_period],
                                 np.r_[duration, inj_dur], T_START, T_END, threshold=6.0)
    assert strict.any() and not strict[~near].any() and strict[near].all()
    # without the injection nothing stands out at that level
    _, _, clean = skyline_flags(epoch, period, duration, T_START, T_END, threshold=6.0)
    assert not clean.any()


def test_skyline_counts_match_dense_grid_and_duration_cap():
    rng = np.random.default_rng(12)
    period, epoch, duration = random_tces(rng, 300)
    duration[:50] = 9.0                               # capped at 5 h
    grid, counts, _ = skyline_flags(epoch, period, duration, T_START, T_END)
    dense = sum(_in_window(grid, p, e, min(d, 5.0)).astype(int)
                for p, e, d in zip(period, epoch, duration))
    assert np.array_equal(counts, dense)


def test_skyline_multi_sector_threshold():
    rng = np.random.default_rng(13)
    period, epoch, duration = random_tces(rng, 1000)
    _, counts, single = skyline_flags(epoch, period, duration, T_START, T_END)
    _, _, multi = skyline_flags(epoch, period, duration, T_START, T_END, multi_sector=True)
    assert multi.sum() <= single.sum()
    med = np.median(counts)
    # normalised MAD, floored at the Poisson scatter of the median count
    scale = max(np.median(np.abs(counts - med)) / 0.6744897501960817, np.sqrt(med), 1.0)
    assert np.array_equal(single, (counts - med) / scale > 2.75)
    assert np.array_equal(multi, (counts - med) / scale > 3.5)


def test_bad_cadence_mask_five_minutes():
    times = T_START + np.arange(2000) * 2.0 / 1440.0
    flagged = np.array([times[100] + 0.5 / 1440.0])  # a single flagged time still counts
    mask = bad_cadence_mask(times, flagged)
    dist = np.abs(times - flagged[0]) * 1440.0
    assert np.array_equal(mask, dist < 5.0)
    assert mask.sum() == 5
    assert not bad_cadence_mask(times, []).any()


# ---------------------------------------------------------------------------------------------
# Step 5: federation
# ---------------------------------------------------------------------------------------------

def test_federation_classes():
    p, e, d = 3.2, 1327.1, 3.0
    # exact
    stat, cls, ratio, fed = federate(p, e, d, p, e, T_START, T_END)
    assert (stat, cls, ratio, fed) == (1.0, 1, 1.0, True)
    # small epoch offset (1 h, inside the 2x duration window) still class 1
    assert federate(p, e, d, p, e + 1 / 24, T_START, T_END)[1:4:2] == (1, True)
    # anti-phased: same period, no overlap
    stat, cls, _, fed = federate(p, e, d, p, e + p / 2, T_START, T_END)
    assert stat == -1.0 and cls == 0 and not fed
    # slightly different period within the 1:1 tolerance
    assert federate(p, e, d, p * 1.004, e, T_START, T_END)[3]
    # reference at half the candidate period: every candidate transit hit, half the refs not
    stat, cls, ratio, fed = federate(2 * p, e, d, p, e, T_START, T_END)
    assert cls == 2 and ratio == 0.5 and fed and stat == pytest.approx(0.5, abs=0.1)
    # reference at twice the candidate period
    stat, cls, ratio, fed = federate(p, e, d, 2 * p, e, T_START, T_END)
    assert cls == 2 and ratio == 2.0 and fed
    # period outside [P/3, 3P] and too short reference period give -1
    assert federate(10 * p, e, d, p, e, T_START, T_END)[0] == -1.0
    assert federate(0.1, e, 0.5, 0.1, e, T_START, T_END)[0] == -1.0


def test_classify_boundaries():
    stat = np.array([0.8, 0.79, 0.4, 0.39, 0.15, 0.14, -0.5, -0.51, 0.14, 0.5, 0.9])
    ratio = np.array([1.0] * 8 + [1.01, 0.44, 0.3])
    cls, fed = classify(stat, ratio)
    assert cls.tolist() == [1, 2, 2, 3, 3, 4, 4, 0, 0, 2, 1]
    assert fed.tolist() == [True] * 7 + [False, False, False, False]
    assert classify(0.3, 1.005)[1] and not classify(0.3, 1.007)[1]


def test_federation_class4_and_short_period_floor():
    p, e = 2.0, 1327.0
    # 1:1 period within 0.6 %: the reference drifts out of the +-1 h window after a few
    # transits, the stat goes negative, and the 1:1 rule still federates it (class 4)
    stat, cls, ratio, fed = federate(p, e, 1.0, p * 1.005, e, T_START, T_END)
    assert -0.5 <= stat < 0.15 and cls == 4 and fed
    # a 0.7 % period difference is no longer 1:1
    stat, cls, ratio, fed = federate(p, e, 1.0, p * 1.007, e, T_START, T_END)
    assert cls == 0 and not fed
    # candidates with P < 1 d use the 0.5 h floor: a 0.2 h TCE 25 min off the ref misses
    stat, cls, _, _ = federate(0.8, e, 0.1, 0.8, e + 25 / 1440, T_START, T_END)
    assert stat < 0.15
    # the same with P > 1 d (1 h floor, +-30 min window) matches
    stat, cls, _, _ = federate(1.2, e, 0.1, 1.2, e + 25 / 1440, T_START, T_END)
    assert cls == 1


def test_federation_unrelated_never_federated():
    rng = np.random.default_rng(21)
    n = 20000
    cp, rp = rng.uniform(0.5, 15, n), rng.uniform(0.5, 15, n)
    ce, re = T_START + rng.uniform(0, 1, n) * cp, T_START + rng.uniform(0, 1, n) * rp
    stat, cls, ratio, fed = federate(cp, ce, rng.uniform(1, 4, n), rp, re, T_START, T_END)
    unrelated = period_significance(cp, rp) < 2.0
    assert unrelated.sum() > 10000
    assert not fed[unrelated].any()
    assert np.all(cls[unrelated] != 1)


def test_federation_matches_dense_grid():
    rng = np.random.default_rng(22)
    for _ in range(150):
        cp = rng.uniform(0.3, 20)
        ce = rng.uniform(T_START - 3, T_END)
        cd = rng.uniform(0.3, 8)
        kind = rng.integers(3)
        if kind == 0:
            rp, re = cp, ce + rng.normal(0, 0.05)
        elif kind == 1:
            rp, re = cp * rng.choice([0.5, 2.0, 1 / 3.0 * 1.01]), ce + rng.normal(0, 0.03)
        else:
            rp, re = cp * rng.uniform(0.35, 2.9), rng.uniform(T_START, T_END)
        assert federate(cp, ce, cd, rp, re, T_START, T_END)[0] == pytest.approx(
            _dense_stat(cp, ce, cd, rp, re), abs=1e-12)


def test_period_significance_and_separation():
    assert period_significance(3.0, 3.0) == np.inf
    assert period_significance(3.0, 6.0) == np.inf           # harmonic
    assert period_significance(3.0, 4.5) < 1.0
    assert period_significance(3.0, 3.003) > 3.0
    assert period_significance(3.0, 3.03) < 3.0
    assert angular_separation_arcsec(10.0, -30.0, 10.0, -30.0 + 1 / 60) == pytest.approx(60.0)
    assert angular_separation_arcsec(0.0, 89.99, 180.0, 89.99) == pytest.approx(72.0, rel=1e-6)
    i, j = cone_match([10.0, 50.0, np.nan], [-30.0, 20.0, 0.0],
                      [10.0 + 100 / 3600 / np.cos(np.radians(30)), 50.1, 0.0],
                      [-30.0, 20.0, 0.0], 180.0)
    assert list(zip(i, j)) == [(0, 0)]


# ---------------------------------------------------------------------------------------------
# Steps 6, 11: known planets and TOIs
# ---------------------------------------------------------------------------------------------

def _tce_table():
    return [
        dict(tic=100, planet_number=1, ra=10.0, dec=-30.0, period=3.5, epoch=1326.20, duration=2.5),
        dict(tic=100, planet_number=2, ra=10.0, dec=-30.0, period=7.1, epoch=1329.90, duration=3.0),
        dict(tic=200, planet_number=1, ra=40.0, dec=-50.0, period=5.0, epoch=1327.00, duration=3.0),
        dict(tic=300, planet_number=1, ra=80.0, dec=-60.0, period=1.7, epoch=1325.90, duration=1.5),
        dict(tic=400, planet_number=1, ra=120.0, dec=-10.0, period=9.0, epoch=1330.00, duration=4.0),
    ]


def test_match_known_planets():
    known = [
        # same TIC, archive epoch propagated to within 20 min
        dict(name="K-1 b", tic=100, ra=10.0, dec=-30.0, period=3.5001, epoch_btjd=1326.21,
             duration_h=2.4),
        # no TIC in the archive row: found by the 180" cone (60" away)
        dict(name="W-2 b", tic=None, ra=80.0 + 60 / 3600 / np.cos(np.radians(60)), dec=-60.0,
             period=1.7, epoch_btjd=1325.91 - 100 * 1.7, duration_h=1.5),
        # far away from every TCE
        dict(name="far b", tic=None, ra=200.0, dec=10.0, period=5.0, epoch_btjd=1327.0,
             duration_h=3.0),
        # no usable ephemeris: dropped
        dict(name="bad b", tic=200, ra=40.0, dec=-50.0, period=float("nan"), epoch_btjd=1327.0,
             duration_h=3.0),
    ]
    recs = {(r["tic"], r["planet_number"]): r
            for r in match_known_planets(_tce_table(), known, T_START, T_END)}
    r = recs[(100, 1)]
    assert r["known_name"] == "K-1 b" and r["known_matched"] and r["known_federated"]
    assert r["known_class"] == 1 and not r["known_other_pn"]
    r = recs[(100, 2)]
    assert not r["known_matched"] and r["known_other_pn"]
    r = recs[(300, 1)]
    assert r["known_name"] == "W-2 b" and r["known_matched"] and r["known_federated"]
    r = recs[(200, 1)]
    assert r["known_n_compared"] == 0 and r["known_class"] == -1 and not r["known_matched"]
    assert recs[(400, 1)]["known_name"] == ""


def test_match_tois_and_known_flag():
    tois = [
        dict(tic=100, toi=101.01, disposition="PC", period=3.5, epoch_btjd=1326.20),
        # same period as TIC 200's TCE but in anti-phase: matched, not federated
        dict(tic=200, toi=202.01, disposition="PC", period=5.0, epoch_btjd=1329.50),
        # single-transit TOI (NaN period -> 1000 d) on TIC 400
        dict(tic=400, toi=404.01, disposition="CP", period=float("nan"), epoch_btjd=1330.0),
    ]
    tces = _tce_table()
    recs = match_tois(tces, tois, T_START, T_END)
    by = {(r["tic"], r["planet_number"]): r for r in recs}
    assert by[(100, 1)]["toi"] == 101.01 and by[(100, 1)]["toi_federated"]
    assert by[(100, 1)]["toi_disposition"] == "PC"
    assert by[(100, 2)]["toi_other_pn"] and not by[(100, 2)]["toi_matched"]
    assert by[(200, 1)]["toi_matched"] and not by[(200, 1)]["toi_federated"]
    assert by[(200, 1)]["toi_stat"] == -1.0
    assert by[(400, 1)]["toi_matched"] and by[(400, 1)]["toi_stat"] == -1.0
    assert by[(300, 1)]["toi_n_compared"] == 0

    known = [dict(name="K-1 b", tic=100, ra=10.0, dec=-30.0, period=3.5, epoch_btjd=1326.2,
                  duration_h=2.5)]
    kp = match_known_planets(tces, known, T_START, T_END)
    flag = known_flag([r["toi_matched"] for r in recs], [r["toi_federated"] for r in recs],
                      [r["toi_other_pn"] for r in recs], [r["known_matched"] for r in kp],
                      [r["known_other_pn"] for r in kp])
    # (100,1) known planet overrides TOI; (100,2) known planet on same TIC; (200,1) TOI not
    # federated; (300,1) nothing; (400,1) TOI matched not federated
    assert flag.tolist() == [2, 4, -1, 0, -1]
    assert known_flag([True], [True], [False], [False], [False]).tolist() == [1]
    assert known_flag([False], [False], [True], [False], [False]).tolist() == [3]


def test_matching_is_fast_at_sector_scale():
    rng = np.random.default_rng(31)
    n = 1500
    period, epoch, duration = random_tces(rng, n)
    tic = rng.choice(10**9, n, replace=False)
    ra, dec = rng.uniform(0, 360, n), rng.uniform(-90, -10, n)
    tces = dict(tic=tic, planet_number=np.ones(n, int), ra=ra, dec=dec, period=period,
                epoch=epoch, duration=duration)
    m = 6000
    known = dict(name=[f"P{k}" for k in range(m)], tic=np.r_[tic[:300], np.full(m - 300, -1)],
                 ra=rng.uniform(0, 360, m), dec=rng.uniform(-90, 90, m),
                 period=np.r_[period[:300], rng.uniform(0.5, 30, m - 300)],
                 epoch_btjd=np.r_[epoch[:300], rng.uniform(1000, 2000, m - 300)],
                 duration_h=np.full(m, 3.0))
    t0 = time.perf_counter()
    recs = match_known_planets(tces, known, T_START, T_END)
    assert time.perf_counter() - t0 < 3.0
    assert all(r["known_federated"] for r in recs[:300])


# ---------------------------------------------------------------------------------------------
# Step 7: self-match
# ---------------------------------------------------------------------------------------------

def test_self_match_finds_injected_pair_fast():
    rng = np.random.default_rng(41)
    n = 1500
    period, epoch, duration = random_tces(rng, n)
    tic = rng.choice(10**9, n, replace=False)
    pn = np.ones(n, int)
    ra, dec = rng.uniform(0, 360, n), rng.uniform(-90, -10, n)
    # injected contamination: TCE 1 is TCE 0's signal seen on a star 40" away
    period[1], epoch[1], duration[1] = period[0] * (1 + 2e-5), epoch[0] + 0.005, duration[0]
    dec[1] = dec[0] + 40.0 / 3600.0
    ra[1] = ra[0]
    # same period, other phase, on a third star: compared but not federated
    period[2], epoch[2] = period[0], epoch[0] + period[0] / 2
    # a second TCE on TIC 0's own star at the same period is never compared
    tic = np.r_[tic, tic[0]]
    pn = np.r_[pn, 2]
    period, epoch, duration = np.r_[period, period[0]], np.r_[epoch, epoch[0]], np.r_[duration, 3.0]
    ra, dec = np.r_[ra, ra[0]], np.r_[dec, dec[0]]
    tces = dict(tic=tic, planet_number=pn, period=period, epoch=epoch, duration=duration,
                ra=ra, dec=dec)

    t0 = time.perf_counter()
    recs = self_match(tces, T_START, T_END)
    assert time.perf_counter() - t0 < 2.0
    for a, b in ((0, 1), (1, 0)):
        r = recs[a]
        assert r["best_tic"] == tic[b] and r["best_federated"] and r["best_class"] == 1
        assert tic[b] in r["matched_tics"] and tic[2] not in r["matched_tics"]
        assert r["min_log_sep"] == pytest.approx(np.log10(40.0), abs=1e-3)
        assert r["flagged"]
    assert tic[0] not in recs[2]["matched_tics"]
    assert tic[0] not in recs[-1]["matched_tics"] and tic[-1] not in recs[0]["matched_tics"]
    # Random ephemerides: most TCEs have no federated partner.  Chance matches exist (mostly
    # short-period harmonics, which the federation rule accepts as class 2), but none of them
    # is a close pair on the sky.
    others = recs[3:-1]
    assert np.mean([r["n_fed"] == 0 for r in others]) > 0.6
    assert not any(r["min_log_sep"] < 3.3 for r in others)


def test_self_match_flag_rule():
    assert self_match_flag([0, 1, 1, 2, 1], [np.nan, 3.0, 3.5, 4.0, np.nan]).tolist() == [
        False, True, False, True, True]


# ---------------------------------------------------------------------------------------------
# Step 12: flux triage
# ---------------------------------------------------------------------------------------------

CLEAN = dict(tic=1, planet_number=1, period=3.0, mes=10.0, valid_alt_det=1, valid_ses=1,
             new_mes=9.0, new_ntran=4, mn_ses2mn_mes=0.5, mn_ses2mn_mes_r=0.5, chases_sumry=0.8)


def _triage(rows):
    cols = {k: np.array([r[k] for r in rows]) for k in CLEAN}
    return flux_triage(**cols)


@pytest.mark.parametrize("change, reason", [
    (dict(valid_alt_det=np.nan), "NoSesMes"),
    (dict(valid_alt_det=0, valid_ses=0, new_mes=1.0), "AltDetFail"),
    (dict(valid_ses=0, new_mes=1.0), "SesStatFail"),
    (dict(new_mes=4.4), "newMesBelowThresh"),
    (dict(new_mes=np.nan), "newMesBelowThresh"),
    (dict(new_mes=4.6), "newMesShrink"),                                   # limit 0.53 at MES 10
    (dict(mes=100.0, new_mes=20.0), "newMesShrink"),                       # limit 0.79
    (dict(mn_ses2mn_mes=0.98), "ses2MesFail"),
    (dict(mes=20.0, new_mes=18.0, mn_ses2mn_mes=0.9), "ses2MesFail"),
    (dict(chases_sumry=0.2), "ChasesFail"),
    (dict(mes=60.0, new_mes=50.0, chases_sumry=0.05), "ChasesFail"),
    (dict(mes=60.0, new_mes=50.0, new_ntran=3, chases_sumry=0.2), "ChasesFail"),
])
def test_triage_each_rule_fires(change, reason):
    passed, why = _triage([dict(CLEAN, **change)])
    assert not passed[0] and why[0] == reason


@pytest.mark.parametrize("change", [
    {},
    dict(new_mes=4.75),                                                    # shrink 0.525 < 0.53
    dict(mes=100.0, new_mes=25.0),                                         # shrink 0.75 < 0.79
    dict(mn_ses2mn_mes=0.98, mn_ses2mn_mes_r=0.95),                        # like the reference
    dict(mn_ses2mn_mes=0.9),                                               # MES <= 13 needs 0.97
    dict(new_mes=5.0, new_ntran=4, chases_sumry=0.1),                      # single SES 2.5
    dict(mes=60.0, new_mes=50.0, chases_sumry=0.2),                        # strong-signal override
])
def test_triage_clean_cases_pass(change):
    passed, why = _triage([dict(CLEAN, **change)])
    assert passed[0] and why[0] == ""


def test_triage_secondary_of_lower_planet_number():
    rows = [dict(CLEAN, tic=7, planet_number=1, period=2.0),
            dict(CLEAN, tic=7, planet_number=2, period=4.0),       # harmonic of PN 1
            dict(CLEAN, tic=7, planet_number=3, period=2.9),       # unrelated
            dict(CLEAN, tic=7, planet_number=4, period=2.0 * 1.0001, valid_ses=0),
            dict(CLEAN, tic=8, planet_number=2, period=4.0),       # other TIC: no primary
            dict(CLEAN, tic=7, planet_number=5, period=2.9)]       # same as PN 3
    passed, why = _triage(rows)
    assert passed.tolist() == [True, False, True, False, True, False]
    assert why.tolist() == ["", "SecondaryOfPN_01", "", "SesStatFail", "", "SecondaryOfPN_03"]


# ---------------------------------------------------------------------------------------------
# Step 13: trapezoid fit
# ---------------------------------------------------------------------------------------------

def test_trapezoid_model_shape():
    t = 1330.0 + np.linspace(-0.2, 0.2, 4001)
    m = trapezoid_model(t, 5.0, 1330.0, 1e-3, 4.8, 0.5)      # T = 0.2 d, flat 0.1 d
    assert m[np.abs(t - 1330.0) <= 0.05] == pytest.approx(-1e-3)
    assert np.all(m[np.abs(t - 1330.0) > 0.1] == 0.0)
    assert m[np.argmin(np.abs(t - 1330.075))] == pytest.approx(-0.5e-3, rel=1e-3)
    # integrating over a long cadence smooths the corners but keeps the area
    ms = trapezoid_model(t, 5.0, 1330.0, 1e-3, 4.8, 0.5, cadence_days=30 / 1440)
    assert ms.sum() == pytest.approx(m.sum(), rel=1e-3)
    assert ms.min() > -1e-3 - 1e-12
    edge = np.argmin(np.abs(t - 1330.1))                     # last contact: 0 unsmoothed
    assert m[edge] == pytest.approx(0.0, abs=1e-9) and ms[edge] < -1e-6


@pytest.mark.parametrize("seed", [1, 2])
def test_trapezoid_fit_recovers_injection(seed):
    rng = np.random.default_rng(seed)
    t = np.arange(T_START, T_END, 10 / 1440)
    period, epoch, depth, dur_h, ratio = 2.7, 1326.31, 2000e-6, 3.2, 0.55
    truth = trapezoid_model(t, period, epoch, depth, dur_h, ratio, cadence_days=10 / 1440)
    flux = truth + rng.normal(0, 250e-6, t.size)
    flux[50:60] = np.nan                                   # gaps are tolerated
    fit = trapezoid_fit(t, flux, period, epoch + 0.01, dur_h * 1.2, depth * 1e6 * 0.85,
                        np.random.default_rng(seed))
    assert fit.success
    assert fit.depth_ppm == pytest.approx(depth * 1e6, rel=0.03)
    assert fit.duration_h == pytest.approx(dur_h, rel=0.03)
    assert abs(fit.epoch - epoch) < 3 / 1440
    assert fit.model.shape == t.shape and np.all(np.isfinite(fit.model))
    dt = np.abs((t - epoch + period / 2) % period - period / 2)
    assert np.all(fit.model[dt > 0.6 * dur_h / 24 + 10 / 1440] == 0.0)    # baseline 0
    assert np.max(np.abs(fit.model - truth)) < 0.15 * depth
    # the same seed gives the same answer
    again = trapezoid_fit(t, flux, period, epoch + 0.01, dur_h * 1.2, depth * 1e6 * 0.85,
                          np.random.default_rng(seed))
    assert again.epoch == fit.epoch and again.depth == fit.depth


def test_trapezoid_fit_without_data_in_window():
    t = np.arange(T_START, T_END, 10 / 1440)
    fit = trapezoid_fit(t, np.zeros_like(t), 2.0, 1400.0 + 0.5, 2.0, 1000.0,
                        np.random.default_rng(0), valid=np.zeros(t.size, bool))
    assert not fit.success and np.all(fit.model == 0.0)
