"""NRES on the independent sample night (cpt/nres03, 2024-01-15): read as the archive writes it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from astroflow import config, rundir, runner, status
from steps.nres.pipeline import NRES

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT.parent / "shared" / "samples" / "nres-night"


def run_nres(data_root: Path, out: Path, **settings):
    base = {"data_root": str(data_root), "site": "cpt", "instrument": "nres03", "start": "2024-01-15",
            "end": "2024-01-16", "targets": str(data_root / "targets.csv")}
    cfg = config.resolve(NRES, settings={**base, **settings}, runner={"workers": 1})
    return runner.run(NRES, cfg, out, progress=False)


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("nres") / "run"
    return run_nres(SAMPLE, out), out


def test_the_sample_night_is_indexed_without_format_errors(sample_run):
    res, out = sample_run
    assert res.ok, {n: s.message for n, s in res.steps.items()}
    rows = rundir.read_dataset(out / "index").to_pylist()
    assert len(rows) == 32
    kinds = {}
    for r in rows:
        kinds[r["obstype"]] = kinds.get(r["obstype"], 0) + 1
    assert kinds == {"BIAS": 5, "DARK": 5, "LAMPFLAT": 10, "DOUBLE": 2, "TARGET": 10}
    flats = {r["fiber_state"] for r in rows if r["obstype"] == "LAMPFLAT"}
    assert flats == {"110", "011"}
    science = [r for r in rows if r["obstype"] == "TARGET"]
    assert {r["science_fiber"] for r in science} == {0} and "HD49933" in {r["object"] for r in science}
    assert all(r["site"] == "cpt" and r["camera"] == "fl13" and r["nx"] == 1056 for r in rows)


def test_bad_frames_are_named_and_ignored_ones_not_listed(tmp_path):
    data = tmp_path / "data"
    shutil.copytree(SAMPLE, data)
    raw = data / "cpt" / "nres03" / "20240115" / "raw"
    target = raw / "cptnrs03-fl13-20240115-0025-e00.fits.fz"
    target.write_bytes(target.read_bytes()[:20000])  # truncated
    shutil.copy(raw / "cptnrs03-fl13-20240115-0001-b00.fits.fz", raw / "cptnrs03-fl13-20240115-0099-g00.fits.fz")
    out = tmp_path / "run"
    run_nres(data, out)
    st = next(s for s in status.collect(out)["steps"] if s["step"] == "index")
    assert st["items_ok"] == 31 and st["items_failed"] == 1
    err = st["errors"][0]
    assert err["file"] == str(target) and "incomplete FITS" in err["message"]
    assert "cptnrs03-fl13-20240115-0099-g00.fits.fz" not in rundir.read_dataset(out / "index").column("filename").to_pylist()


def test_the_sample_night_is_calibrated(sample_run):
    res, out = sample_run
    masters = {(r["type"], r["fiber_state"]): r for s in ("stack_bias", "stack_dark", "stack_flat", "stack_arc")
               for r in rundir.read_dataset(out / s).to_pylist()}
    assert set(masters) == {("BIAS", ""), ("DARK", ""), ("FLAT", "110"), ("FLAT", "011"), ("DOUBLE", "110"),
                            ("DOUBLE", "011")}
    assert masters[("BIAS", "")]["n_frames"] == 5
    assert abs(masters[("BIAS", "")]["read_noise"] / 7.0 - 1) < 0.02  # the header's RDNOISE
    traced = rundir.read_dataset(out / "trace").to_pylist()[0]
    assert (traced["n_orders"], traced["n_traces"]) == (12, 36) and traced["median_rms_px"] < 0.1
    reduced = rundir.read_dataset(out / "reduce_target").to_pylist()
    assert all(r["bias"].startswith("cptnres03_fl13_bias_20240115") and r["dark"] for r in reduced)


def test_the_sample_night_gets_wavelengths_and_velocities(sample_run):
    res, out = sample_run
    for r in rundir.read_dataset(out / "wavelength").to_pylist():
        assert r["n_lines"] > 50 and r["siglam"] < 0.005 and r["m_max"] - r["m_min"] == 11, r
    rv = rundir.read_dataset(out / "rv").to_pylist()
    assert len(rv) == 10 and all(r["n_orders"] >= 8 and abs(r["rv"]) < 1e5 for r in rv)
    assert {r["template"] for r in rv} == {"HD49933"}  # the night's five exposures made the ZERO
