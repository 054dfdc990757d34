"""The PTC0X Task (PTC01): the gain within 1 % of the simulator's truth per quadrant, the full
well, the contract dataset, its flags; a test acquired with fewer fluences than its structure
analysed as found and flagged; the fit itself on synthetic curves."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import task_flags

from astroflow import config, runner
from steps.vison import scoring
from steps.vison.pipeline import VISON
from steps.vison.science import ptc
from steps.vison.simulate import SERIALS

SERIAL_SETTINGS = {f"CCD{i + 1}": s for i, s in enumerate(SERIALS)}


def run(out, **settings):
    cfg = config.resolve(VISON, settings=settings, runner={"workers": 1})
    return runner.run(VISON, cfg, out, progress=False)


@pytest.fixture(scope="module")
def ptc_run(tmp_path_factory):
    """PTC01 as its structure has it (11 fluences, 92 frames x 3 CCDs), 256 x 192 image pixels per
    quadrant: 6 x the default geometry's, for pair variances that give the gain to ~0.25 %."""
    from steps.vison.simulate import simulate_day

    root = tmp_path_factory.mktemp("vison_ptc")
    day = simulate_day(root / "sim", tests=("PTC01",), image_size=(256, 192))
    out = root / "run"
    res = run(out, data_root=str(day.day_folder), tests=["PTC01"], serials=SERIAL_SETTINGS)
    assert res.ok and res.failed_items == 0, {n: s.message for n, s in res.steps.items() if s.state != "done"}
    return out, day


def truth(day) -> dict:
    return {(r["ccd"], r["quadrant"]): r for r in pq.read_table(day.truth / "quadrants.parquet").to_pylist()}


def test_gain_within_1_percent_and_full_well_of_truth_per_quadrant(ptc_run):
    out, day = ptc_run
    t = truth(day)
    gains = scoring.contract(out, "D00", "PTC01", "gain")
    assert sorted((r["ccd"], r["quadrant"]) for r in gains) == sorted(t)
    for r in gains:
        true = t[r["ccd"], r["quadrant"]]
        error = r["gain_e_per_adu"] / true["gain_e_per_adu"] - 1
        assert abs(error) < 0.01, (r, true["gain_e_per_adu"])
        assert abs(r["gain_e_per_adu"] - true["gain_e_per_adu"]) < 5 * r["gain_err"] + 0.004 * true["gain_e_per_adu"]
        assert r["fwc_adu"] == pytest.approx(true["fwc_adu"], rel=0.01)
        assert r["n_pairs"] == 46  # 8 levels x 5 pairs + 3 x 2
    schema = pq.read_schema(next((out / "D00" / "PTC01" / "gain").glob("*.parquet")))
    assert str(schema.field("ccd").type) == "int8" and schema.names == [
        "ccd", "quadrant", "gain_e_per_adu", "gain_err", "fwc_adu", "n_pairs"]


def test_flags_of_a_complete_ptc(ptc_run):
    out, _ = ptc_run
    # the full structure, good data: nothing about data, configuration or saturation is raised
    flags = task_flags(out, "PTC01", {"MISSDATA", "BADDATA", "WRONG_ROE_CONF", "SUBTASKCRASH", "SATURATION",
                                      "NONSATURATION", "FLUENCE_OOL", "LOSTPIXELS"})
    for r in flags:
        # 49k pixels per quadrant give the gain to ~0.25 %: above vison's 1e-3, so BADFIT says so
        assert "BADFIT" in r["flag_names"] and any("relative error" in x for x in r["reasons"])


def test_fewer_fluences_are_analysed_as_found_and_flagged(vison_day, tmp_path):
    day, _ = vison_day  # the session's day: its PTC01 cut to the first 50 frames, 5 of the 11 fluences
    first = day.tests["PTC01"][0]
    res = run(tmp_path / "run", data_root=str(day.day_folder), tests=["PTC01"], serials=SERIAL_SETTINGS,
              obsid_limits={"PTC01": (first, first + 49)})
    assert res.ok and res.failed_items == 0
    t = truth(day)
    gains = scoring.contract(tmp_path / "run", "D00", "PTC01", "gain")
    assert len(gains) == 12
    for r in gains:
        assert r["n_pairs"] == 25 and np.isnan(r["fwc_adu"])
        assert r["gain_e_per_adu"] == pytest.approx(t[r["ccd"], r["quadrant"]]["gain_e_per_adu"], rel=0.05)
    for r in scoring.contract(tmp_path / "run", "D00", "PTC01", "flags"):
        assert {"MISSDATA", "NONSATURATION"} <= set(r["flag_names"]), r
        assert any("5 fluence levels" in x and "structure has 11" in x for x in r["reasons"])
        assert any("50 frames of PTC01" in x for x in r["reasons"])
        assert "SUBTASKCRASH" not in r["flag_names"]


def test_fit_recovers_a_synthetic_gain_rejects_outliers_and_says_why_it_cannot():
    rng = np.random.default_rng(3)
    gain, ron2, a2 = 3.3, 1.5, 2e-7
    s = np.repeat([2e3, 5e3, 1e4, 2e4, 3e4, 5e4], 20) * rng.uniform(0.98, 1.02, 120)
    v = (ron2 + s / gain + a2 * s**2) * (1 + 0.003 * rng.standard_normal(s.size))
    v[7] *= 1.5  # an outlier (a cosmic in a tile)
    for constant in (ron2, None):
        fit = ptc.fit_ptc(s, v, constant)
        assert fit.gain == pytest.approx(gain, rel=3 * fit.relative_error) and fit.relative_error < 2e-3
        assert fit.n_points == 100 and fit.n_used == 99  # 50 ke- is out of range, the outlier rejected
        assert fit.coeffs[2] == pytest.approx(a2, rel=0.1)
    few = ptc.fit_ptc(s[:3], v[:3], ron2)
    assert np.isnan(few.gain) and "fewer than" in few.problems[0]
    flat = ptc.fit_ptc(s[:100], np.full(100, 1.0), None)
    assert flat.problems and np.isnan(flat.gain)
    levels = [{"signal_adu": 3e4, "variance_adu2": 1e4, "saturated_fraction": 0.0},
              {"signal_adu": 6.1e4, "variance_adu2": 50.0, "saturated_fraction": 0.0},
              {"signal_adu": 6.2e4, "variance_adu2": 2e4, "saturated_fraction": 0.9}]
    fit = ptc.fit_ptc(s, v, ron2)
    assert ptc.full_well(levels, fit) == 6.2e4 and np.isnan(ptc.full_well(levels[:1], fit))


def test_pair_points_cancel_the_flat_pattern():
    rng = np.random.default_rng(4)
    pattern = 1e4 * (1 + 0.01 * rng.standard_normal((200, 310)))
    a, b = (pattern + rng.normal(0, 50.0, pattern.shape) for _ in range(2))
    points = ptc.pair_points(a.astype(np.float32), b.astype(np.float32))
    assert [p["tile"] for p in points] == [0] and points[0]["n_pixels"] == 200 * 310  # one tile: edges join
    assert points[0]["variance_adu2"] == pytest.approx(2500.0, rel=0.03)
    assert points[0]["signal_adu"] == pytest.approx(1e4, rel=0.002)
    assert len(ptc.tiles((2066, 2048))) == 36
