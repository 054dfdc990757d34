"""The TP01 Task against the simulator's truth: at least 90 % of the injected traps found and at
most 5 % of the catalogue false (the issue's acceptance), their tau and capture probability, the
contract dataset, its flags; the dipole finder and the tau fit on synthetic frames."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import run_tests

from steps.vison import scoring
from steps.vison.science import traps


def matched(out, truth):
    true = {(t["ccd"], t["quadrant"], t["x"], t["y"]): t for t in truth.table("traps")}
    found = {(r["ccd"], r["quadrant"], r["x"], r["y"]): r for r in scoring.contract(out, "D00", "TP01", "traps")}
    return true, found


def test_traps_found_with_few_false(vison_injection_run):
    out, _, truth = vison_injection_run
    true, found = matched(out, truth)
    hits = set(true) & set(found)
    false = set(found) - set(true)
    print(f"TP01: {len(hits)} of {len(true)} traps found ({len(hits) / len(true):.1%}), "
          f"{len(false)} false of {len(found)} ({len(false) / max(len(found), 1):.1%})")
    assert len(hits) >= 0.9 * len(true), (len(hits), len(true))
    assert len(false) <= 0.05 * len(found), sorted(false)[:10]
    schema = pq.read_schema(next((out / "D00" / "TP01" / "traps").glob("*.parquet")))
    assert schema.names == ["ccd", "quadrant", "x", "y", "tau", "pc"] and str(schema.field("ccd").type) == "int8"


def test_tau_and_capture_probability_of_the_traps_found(vison_injection_run):
    out, _, truth = vison_injection_run
    true, found = matched(out, truth)
    keys = sorted(set(true) & set(found))
    tau = np.array([np.log(found[k]["tau"] / true[k]["tau"]) for k in keys])
    pc = np.array([found[k]["pc"] / true[k]["pc"] - 1 for k in keys])
    print(f"TP01 tau: median |ln ratio| {np.median(np.abs(tau)):.3f}, "
          f"within 30 %: {np.mean(np.abs(tau) < np.log(1.3)):.1%}; "
          f"pc: median |rel| {np.median(np.abs(pc)):.3f}, within 30 %: {np.mean(np.abs(pc) < 0.3):.1%}")
    assert np.all(np.isfinite(tau)) and np.all(np.isfinite(pc))  # the session's PTC01 gave the gain
    assert np.median(np.abs(tau)) < 0.1 and np.mean(np.abs(tau) < np.log(1.3)) > 0.9
    assert np.median(np.abs(pc)) < 0.1 and np.mean(np.abs(pc) < 0.3) > 0.9
    assert abs(np.median(tau)) < 0.1 and abs(np.median(pc)) < 0.1  # no bias


def test_without_a_ptc_pc_is_vison_s_adu_and_a_test_cut_short_is_flagged(vison_day, tmp_path):
    day, truth = vison_day
    first = day.tests["TP01"][0]  # the reference and 10 pumped frames: 2 modes x 5 dwells, one drain delay
    run_tests(day, tmp_path / "run", ["TP01"], obsid_limits={"TP01": (first, first + 10)})
    gains = {(t["ccd"], t["quadrant"]): t["gain_e_per_adu"] for t in truth.table("quadrants")}
    true = {(t["ccd"], t["quadrant"], t["x"], t["y"]): t["pc"] for t in truth.table("traps")}
    rows = pq.read_table(tmp_path / "run" / "tp_meta").to_pylist()
    assert rows and all(np.isnan(r["pc"]) and r["gain_from"] is None for r in rows)
    ratios = [r["pc_adu"] * gains[r["ccd"], r["quadrant"]] / true[k] for r in rows
              if (k := (r["ccd"], r["quadrant"], r["x"], r["y"])) in true]
    assert len(ratios) > 0.5 * len(true) and abs(np.median(ratios) - 1) < 0.1
    for r in scoring.contract(tmp_path / "run", "D00", "TP01", "flags"):
        assert "MISSDATA" in r["flag_names"] and "SUBTASKCRASH" not in r["flag_names"], r
        assert any("11 frames of TP01" in x for x in r["reasons"])


def synthetic(rng, n_frames: int, amp: float, hot: float):
    """Frames of a 64 x 96 injection (1e4 ADU, 100 ADU noise) with one trap moving ``amp`` ADU
    towards y + 1 or y - 1 (alternating, as the modes do) and one hot pixel of ``hot`` ADU."""
    out = []
    for i in range(n_frames):
        image = 1e4 + rng.normal(0, 100.0, (64, 96))
        image[30, 40] -= amp
        image[30 + (1 if i % 2 else -1), 40] += amp
        image[10, 70] += hot
        out.append(image.astype(np.float32))
    return out


def test_dipole_finder_takes_the_trap_not_the_hot_pixel_and_the_fit_recovers_tau():
    rng = np.random.default_rng(7)
    stacks = {}
    for dwell in (200.0, 1000.0):
        stacks[dwell] = traps.DipoleStack.empty((64, 96))
        for image in synthetic(rng, 8, 200.0, 800.0):
            stacks[dwell].add(image)
    found, noise = traps.find_traps(stacks)
    assert [(d.x, d.y) for d in found] == [(40, 30)]
    assert set(noise) == {200.0, 1000.0}
    for a, e in zip(found[0].amplitudes_adu, found[0].errors_adu):  # the error is the stack's: 100 x sqrt(6 / 8) / 3
        assert abs(a - 200.0) < 3 * e and e == pytest.approx(100 * np.sqrt(6 / 8) / 3, rel=0.2)
    dwells = np.array([200.0, 1000.0, 2000.0, 4000.0, 8000.0])
    for tau, pc in ((300.0, 0.5), (1500.0, 0.9), (5000.0, 0.3)):
        amp = 5000 * pc * (np.exp(-dwells / tau) - np.exp(-2 * dwells / tau))
        fit_tau, fit_pc, chi2 = traps.fit_tau_pc(dwells, amp, np.full(5, 1.0), 5000)
        assert fit_tau == pytest.approx(tau, rel=0.02) and fit_pc == pytest.approx(pc, rel=0.02) and chi2 < 1
    assert np.isnan(traps.fit_tau_pc(dwells[:2], [1.0, 1.0], [1.0, 1.0], 5000)[0])


def test_run_report_counts_the_traps(vison_injection_run):
    from steps.vison.report import run_report_section

    out, _, _ = vison_injection_run
    page = run_report_section(out)
    section = page[page.index("D00 / TP01"):]
    assert "traps (TP01)" in section
    found = scoring.contract(out, "D00", "TP01", "traps")
    for c, q in {(r["ccd"], r["quadrant"]) for r in found}:
        n = sum(1 for r in found if (r["ccd"], r["quadrant"]) == (c, q))
        assert f'<td class="num">{c}</td><td>{q}</td><td class="num">{n}</td>' in section
