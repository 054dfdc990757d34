"""The CHINJ01 Task against the simulator's truth: the injection threshold within 0.25 V per
quadrant and drain delay (the issue's acceptance), the notch and slope, the contract dataset, its
flags; a test cut short analysed as found and flagged; the hinge fit on synthetic curves."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import run_tests

from steps.vison import scoring
from steps.vison.science import chinj


THRESHOLD_TOLERANCE_V = 0.25  # the acceptance


def quadrants(truth) -> dict:
    return {(r["ccd"], r["quadrant"]): r for r in truth.table("quadrants")}


def test_threshold_within_a_quarter_volt_and_notch_of_truth(vison_injection_run):
    out, _, truth = vison_injection_run
    t = quadrants(truth)
    rows = scoring.contract(out, "D00", "CHINJ01", "chinj")
    assert sorted((r["ccd"], r["quadrant"], r["id_dly"]) for r in rows) == sorted(
        (c, q, d) for c, q in t for d in (106.0, 212.0))
    errors, notch, slope = [], [], []
    for r in rows:
        true = t[r["ccd"], r["quadrant"]]
        errors.append(r["threshold_v"] - true["chinj_threshold_v"])
        # the interval the data allow holds the truth: the fit says how well it knows the threshold
        assert abs(errors[-1]) <= r["threshold_err_v"] + 0.02, (r, true["chinj_threshold_v"])
        assert r["n_points"] == 21
        notch.append(r["notch_adu"] * true["gain_e_per_adu"] / true["chinj_notch_e"] - 1)
        slope.append(r["slope_adu_per_v"] * true["gain_e_per_adu"] / true["chinj_slope_e_per_v"] - 1)
    print(f"CHINJ01 threshold error: max |dV| {max(map(abs, errors)):.3f} V, mean {np.mean(errors):+.3f} V; "
          f"notch max |rel| {max(map(abs, notch)):.4f}; slope median |rel| {np.median(np.abs(slope)):.3f}")
    assert max(abs(e) for e in errors) < THRESHOLD_TOLERANCE_V, errors
    assert max(abs(e) for e in notch) < 0.01, notch  # the plateau holds 8+ frames of 3840 pixels
    schema = pq.read_schema(next((out / "D00" / "CHINJ01" / "chinj").glob("*.parquet")))
    assert str(schema.field("ccd").type) == "int8" and {"threshold_v", "slope_adu_per_v", "notch_adu"} <= set(
        schema.names)


def test_a_test_cut_short_is_analysed_as_found_and_flagged(vison_day, tmp_path):
    day, truth = vison_day
    first = day.tests["CHINJ01"][0]  # the first 15 frames: one drain delay, IG1 2-5.5 V
    run_tests(day, tmp_path / "run", ["CHINJ01"], obsid_limits={"CHINJ01": (first, first + 14)})
    t = quadrants(truth)
    rows = scoring.contract(tmp_path / "run", "D00", "CHINJ01", "chinj")
    assert len(rows) == 12 and {r["id_dly"] for r in rows} == {106.0}
    for r in rows:
        assert abs(r["threshold_v"] - t[r["ccd"], r["quadrant"]]["chinj_threshold_v"]) < THRESHOLD_TOLERANCE_V
    for r in scoring.contract(tmp_path / "run", "D00", "CHINJ01", "flags"):
        assert "MISSDATA" in r["flag_names"] and "SUBTASKCRASH" not in r["flag_names"], r
        assert any("1 drain delay" in x for x in r["reasons"]) and any("15 IG1 values" in x for x in r["reasons"])


def test_hinge_fit_on_synthetic_curves_and_what_it_cannot_say():
    rng = np.random.default_rng(5)
    v = np.arange(2.0, 7.001, 0.25)
    for threshold, slope, notch in ((4.37, 6000.0, 4000.0), (4.61, 3000.0, 4500.0), (4.05, 9000.0, 3000.0)):
        y = np.clip(slope * (v - threshold), 0, notch) + rng.normal(0, 0.3, v.size)
        fit = chinj.fit_injection(v, y, np.full(v.size, 0.3))
        assert not fit.problems, fit
        assert abs(fit.threshold_v - threshold) <= fit.threshold_err_v + 0.02
        assert fit.notch_adu == pytest.approx(notch, rel=1e-3)
        if fit.n_rise >= 2:  # the rise's line fixes the threshold and the slope
            assert fit.threshold_err_v < 0.05 and fit.slope_adu_per_v == pytest.approx(slope, rel=0.02)
    # one point on the rise: the threshold lies between the last empty IG1 and that point
    y = np.clip(9000.0 * (v - 4.1), 0, 3000.0)
    fit = chinj.fit_injection(v, y, np.full(v.size, 0.3))
    assert 4.0 <= fit.threshold_v - fit.threshold_err_v - 0.02 and fit.threshold_v + fit.threshold_err_v <= 4.27
    flat = chinj.fit_injection(v, rng.normal(0, 0.3, v.size), np.full(v.size, 0.3))
    assert np.isnan(flat.threshold_v) and "no injection" in flat.problems[0]
    early = chinj.fit_injection(v, np.clip(5000.0 * (v - 1.8), 0, 2e4), np.full(v.size, 0.3))
    assert any("not bracketed" in p for p in early.problems)
    assert "fewer than" in chinj.fit_injection(v[:3], v[:3], np.ones(3)).problems[0]


def test_injected_rows_follow_the_commanded_pattern():
    rows = chinj.injected_rows(300, 30, 100)
    assert rows[:30].all() and not rows[30:130].any() and rows[130:160].all() and rows.sum() == 30 + 30 + 30
    assert chinj.injected_rows(10, 10, 0).all() and not chinj.injected_rows(10, 0, 5).any()
    image = np.where(rows[:, None], 1000.0, 2.0) + np.random.default_rng(1).normal(0, 1.0, (300, 64))
    level = chinj.injection_level(image.astype(np.float32), rows)
    assert level["injection_adu"] == pytest.approx(998.0, abs=0.1) and level["noise_adu"] == pytest.approx(1, 0.1)


def test_run_report_tables_threshold_and_notch(vison_injection_run):
    from steps.vison.report import run_report_section

    out, _, _ = vison_injection_run
    page = run_report_section(out)
    assert "charge injection: threshold and notch (CHINJ01)" in page
    for r in scoring.contract(out, "D00", "CHINJ01", "chinj"):
        assert f'<td class="num">{r["threshold_v"]:.3f}</td>' in page
        assert f'<td class="num">{r["notch_adu"]:.1f}</td>' in page
