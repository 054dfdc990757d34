"""The PTC02WAVE Task: the PTC per wavelength, the gain within 1 % of the simulator's truth per
wavelength and quadrant, the contract dataset with its wavelength column, the flags; a specific
name (``PTC02_590``) analysed as its one wavelength."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import task_flags

from astroflow import config, runner
from steps.vison import scoring, tasks
from steps.vison.pipeline import VISON
from steps.vison.ptc02_check import wave_nm
from steps.vison.simulate import SERIALS

SERIAL_SETTINGS = {f"CCD{i + 1}": s for i, s in enumerate(SERIALS)}
# image pixels per quadrant: one pair per fluence, 3-4 fluences within the fit's 1e3-4e4 ADU, so the
# gain's precision goes with the pixels: 245k per quadrant give it to ~0.35 % (a full-size quadrant,
# 4.2M pixels and 36 tiles of 300 x 300, to ~0.1 %)
IMAGE = (512, 480)
TILE = 80  # 6 x 6 tiles per quadrant


def run(out, steps=None, **settings):
    cfg = config.resolve(VISON, settings=settings, runner={"workers": 1}, steps=steps)
    return runner.run(VISON, cfg, out, progress=False)


@pytest.fixture(scope="module")
def ptc02_run(tmp_path_factory):
    """PTC02WAVE as the simulator writes it: 590, 640, 730 and 880 nm, 6 fluences (10-90 % of the
    full well) x 2 frames each, one test."""
    from steps.vison.simulate import simulate_day

    root = tmp_path_factory.mktemp("vison_ptc02")
    day = simulate_day(root / "sim", tests=("PTC02WAVE",), image_size=IMAGE)
    out = root / "run"
    res = run(out, steps={"ptc02_extract": {"tile": TILE}}, data_root=str(day.day_folder), tests=["PTC02WAVE"],
              serials=SERIAL_SETTINGS)
    assert res.ok and res.failed_items == 0, {n: s.message for n, s in res.steps.items() if s.state != "done"}
    return out, day


def truth(day) -> dict:
    return {(r["ccd"], r["quadrant"]): r for r in pq.read_table(day.truth / "quadrants.parquet").to_pylist()}


def test_registry_and_wavelengths():
    assert tasks.resolve("PTC02WAVE") is tasks.PTC02WAVE and tasks.resolve("PTC02_730") is tasks.PTC02WAVE
    assert "PTC02WAVE" not in tasks.NOT_YET
    assert wave_nm("PTC02_730", {3}, 3) == 730 and wave_nm("PTC02WAVE", {1, 5}, 5) == 880
    assert wave_nm("PTC02WAVE", {1, 2}, 2) == 640 and wave_nm("PTC02WAVE", {9}, 9) is None


def test_gain_per_wavelength_within_1_percent_of_truth(ptc02_run):
    out, day = ptc02_run
    t = truth(day)
    gains = scoring.contract(out, "D00", "PTC02WAVE", "gain")
    assert sorted((r["wave_nm"], r["ccd"], r["quadrant"]) for r in gains) == sorted(
        (w, c, q) for w in (590, 640, 730, 880) for c, q in t)
    errors = []
    for r in gains:
        true = t[r["ccd"], r["quadrant"]]["gain_e_per_adu"]
        error = r["gain_e_per_adu"] / true - 1
        errors.append(error)
        assert abs(error) < 0.01, (r, true)
        assert r["gain_err"] > 0 and r["n_pairs"] == 6  # one pair at each of the 6 fluences
    errors = np.array(errors)
    print(f"PTC02WAVE gain error: max |{np.abs(errors).max():.2%}|, mean {errors.mean():+.2%}, "
          f"rms {np.sqrt(np.mean(errors**2)):.2%} over {errors.size} (wavelength, CCD, quadrant)")
    assert abs(errors.mean()) < 0.005  # no bias common to the wavelengths
    schema = pq.read_schema(next((out / "D00" / "PTC02WAVE" / "gain").glob("*.parquet")))
    assert str(schema.field("ccd").type) == "int8" and schema.names == [
        "wave_nm", "ccd", "quadrant", "gain_e_per_adu", "gain_err", "fwc_adu", "n_pairs"]


def test_flags_of_ptc02wave(ptc02_run):
    out, _ = ptc02_run
    # good data at every wavelength: the 6 fluences, no pair skipped, no saturation below half the full well
    flags = task_flags(out, "PTC02WAVE", {"MISSDATA", "BADDATA", "WRONG_ROE_CONF", "SUBTASKCRASH", "SATURATION",
                                          "FLUENCE_OOL", "LOSTPIXELS", "RON_OOL"})
    for r in flags:
        # the reduced frames give the gain to a few 0.1 %: above vison's 1e-3, BADFIT names the wavelength
        assert "BADFIT" in r["flag_names"]
        assert all(" nm: gain relative error" in x for x in r["reasons"] if x.startswith("BADFIT"))


def test_a_specific_name_is_one_wavelength_and_fewer_levels_are_flagged(ptc02_run, tmp_path):
    _, day = ptc02_run
    first = day.tests["PTC02WAVE"][0]  # the 590 nm frames, cut to 4 of its 6 fluences
    res = run(tmp_path / "run", steps={"ptc02_extract": {"tile": TILE}}, data_root=str(day.day_folder),
              tests=["PTC02_590"], serials=SERIAL_SETTINGS, obsid_limits={"PTC02_590": (first, first + 7)})
    assert res.ok and res.failed_items == 0
    gains = scoring.contract(tmp_path / "run", "D00", "PTC02_590", "gain")
    assert len(gains) == 12 and {r["wave_nm"] for r in gains} == {590}
    assert all(r["n_pairs"] == 4 for r in gains)
    flags = scoring.contract(tmp_path / "run", "D00", "PTC02_590", "flags")
    for r in flags:
        assert "MISSDATA" in r["flag_names"]
        assert any("4 fluence levels of PTC02_590 at 590 nm" in x for x in r["reasons"]), r["reasons"]


def test_run_report_tables_the_gain_per_wavelength(ptc02_run):
    from steps.vison.report import run_report_section

    out, _ = ptc02_run
    page = run_report_section(out)
    section = page[page.index("D00 / PTC02WAVE"):]
    assert "gain per wavelength" in section and all(f"{w} nm</th>" in section for w in (590, 640, 730, 880))
    for r in scoring.contract(out, "D00", "PTC02WAVE", "gain"):
        assert f'<td class="num">{r["gain_e_per_adu"]:.4f}</td>' in section
