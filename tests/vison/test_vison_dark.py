"""The DARK01 Task against the simulator's truth: the dark current per quadrant, the hot pixels and
columns, the master dark in the calibration library (made with the master bias BIAS01 registered
there), the flags; without a master bias meta fails naming it; the science on synthetic frames."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
from astropy.io import fits

from astroflow import config, rundir, runner
from steps.vison import scoring
from steps.vison.pipeline import VISON
from steps.vison.science import dark
from steps.vison.simulate import SERIALS

SERIAL_SETTINGS = {f"CCD{i + 1}": s for i, s in enumerate(SERIALS)}
# each frame's offset comes from 21 x 1024 trimmed prescan pixels, to ~0.012 ADU: 2-8 % of a 565 s
# dark of 1-3e-3 e-/s (0.2-0.5 ADU); the mean over 4 darks and the master bias's 10 frames, ~5 %
DARK_TOLERANCE = 0.12


@pytest.fixture(scope="module")
def dark_run(tmp_path_factory):
    """BIAS01 and DARK01 in one session, 64 x 1024 image pixels per quadrant (the rows give the
    prescan offsets a 0.2 ADU dark needs)."""
    from steps.vison.simulate import simulate_day

    root = tmp_path_factory.mktemp("vison_dark")
    day = simulate_day(root / "sim", tests=("BIAS01", "DARK01"), image_size=(64, 1024))
    out = root / "run"
    cfg = config.resolve(VISON, settings={"data_root": str(day.day_folder), "tests": ["BIAS01", "DARK01"],
                                          "serials": SERIAL_SETTINGS}, runner={"workers": 1})
    res = runner.run(VISON, cfg, out, progress=False)
    assert res.ok and res.failed_items == 0, {n: s.message for n, s in res.steps.items() if s.state != "done"}
    return out, day


def truth(day, name: str) -> list[dict]:
    return pq.read_table(day.truth / f"{name}.parquet").to_pylist()


def test_dark_current_per_quadrant_within_tolerance_of_truth(dark_run):
    out, day = dark_run
    quads = {(r["ccd"], r["quadrant"]): r for r in truth(day, "quadrants")}
    rows = scoring.contract(out, "D00", "DARK01", "dark")
    assert sorted((r["ccd"], r["quadrant"]) for r in rows) == sorted(quads)
    errors = []
    for r in rows:
        t = quads[r["ccd"], r["quadrant"]]
        errors.append(r["dark_adu_per_s"] * t["gain_e_per_adu"] / t["dark_e_per_s"] - 1)
        assert r["n_frames"] == 4 and 0 < r["dark_err_adu_per_s"] < 0.1 * r["dark_adu_per_s"], r
    assert max(abs(e) for e in errors) < DARK_TOLERANCE, errors
    assert abs(np.mean(errors)) < 0.03, errors  # no bias from the master bias or the defects
    schema = pq.read_schema(next((out / "D00" / "DARK01" / "dark").glob("*.parquet")))
    assert str(schema.field("ccd").type) == "int8"


def test_hot_pixels_and_columns_found_with_few_false(dark_run):
    out, day = dark_run
    found = scoring.contract(out, "D00", "DARK01", "defects")
    for kind in ("hot_pixel", "hot_column"):
        true = {(d["ccd"], d["quadrant"], d["x"], d["y"]) for d in truth(day, "defects") if d["kind"] == kind}
        mine = {(d["ccd"], d["quadrant"], d["x"], d["y"]) for d in found if d["kind"] == kind}
        assert len(true & mine) >= 0.95 * len(true), (kind, len(true & mine), len(true))
        assert len(mine - true) <= 0.01 * len(mine), (kind, sorted(mine - true)[:10])
    counts = {(r["ccd"], r["quadrant"]): r for r in scoring.contract(out, "D00", "DARK01", "dark")}
    assert sum(r["n_hot_pixels"] for r in counts.values()) == sum(d["kind"] == "hot_pixel" for d in found)


def test_master_dark_in_the_library_made_with_the_master_bias(dark_run):
    out, day = dark_run
    from astroflow.calib import Library

    lib = Library.for_run(out)
    darks = lib.list("MASTER_DARK")
    assert sorted(c.attributes["ccd"] for c in darks) == [1, 2, 3]
    assert {c.attributes["serial"] for c in darks} == set(SERIALS)
    path = sorted((out / "D00" / "DARK01" / "products").glob("EUC_MD_DARK01_CCD*_SN_*.fits"))[0]
    with fits.open(path) as hdul:
        assert [h.name for h in hdul] == ["PRIMARY", "MASTER_DARK", "DARK_DEFECTS"]
        head = hdul["MASTER_DARK"].header
        assert head["BUNIT"] == "ADU/s" and head["NCOMBINE"] == 4 and head["MBIAS"].startswith("EUC_MB_BIAS01_CCD1")
        assert head["CALMBIAS"] == head["MBIAS"]  # the provenance stamp names the master bias used
        assert head["PIPESTEP"] == "dark_meta" and "CONFHASH" in head
        assert hdul["MASTER_DARK"].data.shape == day.geometry.shape
        assert set(np.unique(hdul["DARK_DEFECTS"].data)) == {0, dark.HOT_PIXEL, dark.HOT_COLUMN}
    bias = sorted((out / "D00" / "BIAS01" / "products").glob("EUC_MB_*.fits"))[0]
    assert fits.getheader(bias, 1)["PIPESTEP"] == "bias_meta"  # the master bias is stamped too
    for r in scoring.contract(out, "D00", "DARK01", "flags"):  # good data: nothing raised
        assert not r["flag_names"], r
    from steps.vison.report import run_report_section

    page = run_report_section(out)
    first = min(scoring.contract(out, "D00", "DARK01", "dark"), key=lambda r: (r["ccd"], r["quadrant"]))
    assert "D00 / DARK01" in page and f"<td>{first['dark_adu_per_s']:.3g}</td>" in page


def test_without_a_master_bias_meta_fails_naming_it_and_the_rest_is_done(dark_run, tmp_path):
    _, day = dark_run
    cfg = config.resolve(VISON, settings={"data_root": str(day.day_folder), "tests": ["DARK01"]},
                         runner={"workers": 1}, steps={"hk": {"enabled": False}})
    res = runner.run(VISON, cfg, tmp_path / "run", progress=False)
    assert res.failed_items == 3 and res.steps["dark_meta"].state == "failed"
    assert res.steps["dark_check"].state == res.steps["dark_prep"].state == "done"
    errors = rundir.Ledger(tmp_path / "run" / "dark_meta").errors()
    assert sorted(e["item"] for e in errors) == ["DARK01:1", "DARK01:2", "DARK01:3"]
    assert all("no MASTER_BIAS calibration" in e["message"] and "rdmode=fwd_bas" in e["message"] for e in errors)


def test_defects_and_level_on_synthetic_frames():
    rng = np.random.default_rng(5)
    shape, exptime = (400, 300), 565.0
    rate = np.full(shape, 5e-4, dtype=np.float32)
    rate[:, 40] += 0.05  # a hot column (28 ADU in 565 s: below the pixel threshold, far above the noise)
    rate[(10, 200, 350), (5, 100, 250)] = (0.2, 0.5, 1.0)
    bias = rng.normal(0, 0.3, shape).astype(np.float32)
    frames = rate * exptime + bias + rng.normal(0, 1.2, (4, *shape)).astype(np.float32)
    rates = dark.dark_rates(frames, bias, [exptime] * 4)
    mask, found = dark.find_defects(dark.master_dark(rates), exptime)
    assert sorted((x, y, k) for x, y, k, _ in found) == [(5, 10, "hot_pixel"), (40, -1, "hot_column"),
                                                         (100, 200, "hot_pixel"), (250, 350, "hot_pixel")]
    level, err, per_frame = dark.dark_level(rates, mask)
    assert level == pytest.approx(5e-4, abs=3 * err) and len(per_frame) == 4 and err < 5e-5
    with pytest.raises(ValueError, match="each must be positive"):
        dark.dark_rates(frames, bias, [exptime, 0.0, exptime, exptime])
