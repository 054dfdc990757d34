"""The SEDM pipeline as a whole: a simulated night end to end, a rerun that recomputes nothing,
raw data untouched, too few biases (a named error, the night goes on), the independent sample
night (sets announced as "n of 10" of which fewer are present) and the command line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from astropy.io import fits

from astroflow import config, runner
from astroflow.cli import main
from astroflow.errors import ConfigError
from astroflow.rundir import read_dataset
from astroflow.status import collect, render_text
from steps.sedm.pipeline import SEDM

from conftest import copy_frames, raw_state, sedm_settings

SAMPLE = Path(__file__).resolve().parents[3] / "shared" / "samples" / "sedm-night"
needs_sample = pytest.mark.skipif(not (SAMPLE / "20230518").is_dir(), reason="the independent SEDM sample is absent")


def _run(settings: dict, out: Path, steps: dict | None = None):
    cfg = config.resolve(SEDM, settings=settings, runner={"workers": 2}, steps=steps or {})
    return runner.run(SEDM, cfg, out, progress=False)


def test_the_night_directory_links_every_raw_frame(sedm_run):
    night = sedm_run.out / "redux" / sedm_run.sim.settings["date"]
    raw = sorted(p.name for p in sedm_run.sim.night.glob("*.fits"))
    rows = sedm_run.rows("night")
    assert sorted(r["filename"] for r in rows) == raw
    for name in raw:
        link = night / name
        assert link.is_symlink() and link.resolve() == (sedm_run.sim.night / name).resolve()
    kinds = {r["filename"]: r["kind"] for r in rows}
    truth = {r["filename"]: r for r in sedm_run.sim.table("frames")}
    for name, kind in kinds.items():
        t = truth[name]
        expect = "guider" if t["camera"] == "RC" else t["lamp"] or t["imgtype"]
        assert kind == expect, name
    for r in sedm_run.rows("debias_crr"):
        assert (sedm_run.out / r["b_path"]).is_file() and (sedm_run.out / r["crr_path"]).is_file()
        assert Path(r["b_path"]).name == f"b_{r['filename']}" and Path(r["crr_path"]).name == f"crr_b_{r['filename']}"


def test_masters_are_in_the_calibration_library_and_the_table(sedm_run):
    from astroflow.calib import Library

    lib = Library.for_run(sedm_run.out)
    found = {c.attributes["adcspeed"]: c for c in lib.list("BIAS")}
    assert set(found) == {"2.0", "0.1"}
    table = sedm_run.rows("calibrations")
    made = {f"20240612_{name}": "complete" for name in ("TraceMatch.json", "HexaGrid.json", "WaveSolution.fits",
                                                         "Flat.fits")}
    assert {r["product"]: r["status"] for r in table} == {"bias2.0.fits": "complete", "bias0.1.fits": "complete",
                                                          **made, "fluxcal": "missing"}
    assert all(r["night"] == sedm_run.sim.settings["date"] and r["fallback_from"] == "" for r in table)
    assert {c.type for c in lib.list()} == {"BIAS", "TRACEMATCH", "HEXAGRID", "WAVESOLUTION", "FLAT", "FLUXCAL"}


def test_raw_data_unchanged_and_a_rerun_recomputes_nothing(sedm_run):
    result = _run(sedm_settings(sedm_run.sim.settings), sedm_run.out)
    assert result.ok
    assert all(s.units == 0 for s in result.steps.values()), {n: s.units for n, s in result.steps.items()}
    assert raw_state(sedm_run.sim.root) == sedm_run.raw_before
    assert collect(sedm_run.out)["complete"]


def test_writes_under_the_raw_root_are_refused(sedm_run, tmp_path):
    from steps.sedm.writer import RawDataWrite, guard, link

    raw = sedm_run.sim.root
    with pytest.raises(RawDataWrite):
        guard(raw / "20240612" / "b_x.fits", [raw])
    # a link in the night directory that points into the raw root is never written through
    night_link = sedm_run.out / "redux" / "20240612" / sorted(p.name for p in sedm_run.sim.night.glob("ifu*"))[0]
    with pytest.raises(RawDataWrite):
        guard(night_link, [raw])
    with pytest.raises(RawDataWrite):
        link(raw / "20240612" / "a.fits", raw / "20240612" / "new_link.fits", [raw])
    assert guard(tmp_path / "ok.fits", [raw]) == tmp_path / "ok.fits"
    with pytest.raises(ConfigError, match="raw"):  # a run directory inside the raw root (the core refuses it)
        _run(sedm_settings(sedm_run.sim.settings), raw / "run")
    with pytest.raises(ConfigError, match="redux_root"):
        config.resolve(SEDM, settings={**sedm_settings(sedm_run.sim.settings), "redux_root": str(raw / "redux")})
    assert not (raw / "run").exists() and raw_state(raw) == sedm_run.raw_before


def _few_biases_night(sim, out: Path, n_fast: int = 3) -> Path:
    """A copy of the night with ``n_fast`` of the 10 fast-readout biases and one dome and one Hg frame."""
    rows = sim.ifu()
    keep = [r["filename"] for r in rows if r["imgtype"] == "bias" and r["adcspeed"] == 2.0][:n_fast]
    keep += [r["filename"] for r in rows if r["imgtype"] == "bias" and r["adcspeed"] == 0.1]
    keep += [next(r["filename"] for r in rows if r["lamp"] == lamp) for lamp in ("dome", "Hg")]
    return copy_frames(sim, out, keep)


def test_too_few_biases_a_named_error_and_the_night_goes_on(sedm_sim, tmp_path, capsys):
    root = _few_biases_night(sedm_sim, tmp_path / "raw")
    before = raw_state(root)
    out, redux = tmp_path / "run", tmp_path / "redux"
    rc = main(["run", "sedm", "--data-root", str(root), "--date", sedm_sim.settings["date"], "--out", str(out),
               "--redux-root", str(redux), "--workers", "2", "--no-progress"])
    assert rc == 1  # items failed: the exit code says so
    night = redux / sedm_sim.settings["date"]  # the night directory under the configured reduced root
    assert (night / "bias0.1.fits").is_file() and len(list(night.glob("crr_b_ifu*.fits"))) == 2
    text = render_text(collect(out))
    assert "bias_2.0: TooFewFrames: bias_2.0: 3 frame(s) present (10 announced" in text
    steps = {s["step"]: s for s in collect(out)["steps"]}
    assert steps["master_bias"]["items_ok"] == 1 and steps["master_bias"]["items_skipped"] == 1
    assert steps["debias_crr"]["state"] == "done" and steps["debias_crr"]["items_ok"] == 2
    frames = read_dataset(out / "debias_crr").to_pylist()
    assert {r["bias"] for r in frames} == {""}  # no master at 2.0 MHz tonight, none earlier: the overscan alone
    assert fits.getheader(frames[0]["b_path"])["BIASSUB2"] == "none: overscan only"
    table = {r["product"]: r for r in read_dataset(out / "calibrations").to_pylist()}
    assert table["bias2.0.fits"]["status"] == "missing" and "3 frame(s) present" in table["bias2.0.fits"]["message"]
    assert table["bias0.1.fits"]["status"] == "complete"
    assert table[f"{sedm_sim.settings['date']}_TraceMatch.json"]["status"] == "missing"  # one dome flat: none
    errors = pq.read_table(out / "errors" / "errors.parquet").to_pylist()
    assert {(e["step"], e["item"], e["error_type"]) for e in errors} >= {("calibration_sets", "bias_2.0", "TooFewFrames")}
    assert raw_state(root) == before
    # status as JSON for scripts
    capsys.readouterr()
    assert main(["status", str(out), "--json"]) in (0, 1)
    assert any(e["error_type"] == "TooFewFrames" for s in json.loads(capsys.readouterr().out)["steps"]
               for e in s["errors"])


def test_incomplete_sets_wait_until_the_deadline_then_go_on(sedm_sim, tmp_path, monkeypatch):
    """Before the night's calibration deadline an incomplete set waits (no master from 7 of 10
    biases, no fallback for the geometry); once it has passed, the same run redoes exactly those
    items (the deadline was recorded) and uses the 7 biases, and the lone dome flat is too few."""
    from astroflow import deps

    root = _few_biases_night(sedm_sim, tmp_path / "raw", n_fast=7)
    date = sedm_sim.settings["date"]
    settings = {"data_root": str(root), "date": date, "calibration_deadline": f"{date[:4]}-{date[4:6]}-{date[6:]}T02:00:00Z"}
    out = tmp_path / "run"
    monkeypatch.setenv(deps.CLOCK_ENV, f"{date[:4]}-{date[4:6]}-{date[6:]}T01:00:00+00:00")
    _run(settings, out)
    sets = {r["set"]: r for r in read_dataset(out / "calibration_sets").to_pylist()}
    assert sets["bias_2.0"]["status"] == "waiting" and sets["bias_0.1"]["status"] == "complete"
    assert sets["dome"]["status"] == "waiting" and sets["Cd"]["status"] == "waiting"
    assert [r["set"] for r in read_dataset(out / "master_bias").to_pylist()] == ["bias_0.1"]
    table = {r["product"]: r for r in read_dataset(out / "calibrations").to_pylist()}
    assert table["bias2.0.fits"]["status"] == "waiting"
    assert "waiting for frames until the deadline 2024-06-12T02:00:00Z" in table["bias2.0.fits"]["message"]
    assert table[f"{date}_TraceMatch.json"]["status"] == "waiting"
    status = {s["step"]: s for s in collect(out)["steps"]}
    assert not [e for s in status.values() for e in s["errors"]]  # nothing has failed yet: it waits
    assert status["fallback"]["items_skipped"] == 4

    monkeypatch.setenv(deps.CLOCK_ENV, f"{date[:4]}-{date[4:6]}-{date[6:]}T03:00:00+00:00")
    cfg = config.resolve(SEDM, settings=settings, runner={"workers": 2})
    reasons = [w.summary() for w in runner.preview(SEDM, cfg, out) if not isinstance(w, str)]
    assert any("deadline 2024-06-12T02:00:00+00:00 passed" in r for r in reasons), reasons
    _run(settings, out)
    sets = {r["set"]: r for r in read_dataset(out / "calibration_sets").to_pylist()}
    assert sets["bias_2.0"]["status"] == "partial"
    masters = {r["set"]: r for r in read_dataset(out / "master_bias").to_pylist()}
    assert masters["bias_2.0"]["n_frames"] == 7 and masters["bias_2.0"]["status"] == "partial"
    errors = {(s["step"], e["item"], e["error_type"]) for s in collect(out)["steps"] for e in s["errors"]}
    assert ("calibration_sets", "dome", "TooFewFrames") in errors
    assert ("fallback", "TraceMatch", "GeometrySolutionFailed") in errors


def test_an_earlier_nights_master_stands_in_recorded_as_a_fallback(sedm_sim, tmp_path):
    """Two nights in one library: two nights before, a complete bias set; tonight's fast-readout
    set is too small, so tonight's frames take the earlier master, recorded as a fallback, and the
    table says which night it came from."""
    from steps.sedm.simulate import simulate_night

    lib = f"sqlite:///{tmp_path / 'library.db'}"
    simulate_night(tmp_path / "sim1", date="20240610")
    earlier = tmp_path / "raw1" / "20240610"
    earlier.mkdir(parents=True)
    for p in (tmp_path / "sim1" / "20240610").glob("ifu*.fits"):
        if fits.getval(p, "IMGTYPE") == "bias":
            shutil.copy2(p, earlier / p.name)
    cfg = config.resolve(SEDM, settings={"data_root": str(earlier.parent), "date": "20240610"},
                         runner={"workers": 2, "db_url": lib})
    assert runner.run(SEDM, cfg, tmp_path / "run1", progress=False).steps["master_bias"].state == "done"
    shutil.rmtree(tmp_path / "sim1")
    tonight = _few_biases_night(sedm_sim, tmp_path / "raw2")
    cfg = config.resolve(SEDM, settings={"data_root": str(tonight), "date": sedm_sim.settings["date"]},
                         runner={"workers": 2, "db_url": lib})
    runner.run(SEDM, cfg, tmp_path / "run2", progress=False)
    frames = read_dataset(tmp_path / "run2" / "debias_crr").to_pylist()
    assert {r["bias"] for r in frames} == {"bias2.0.fits"} and all(r["bias_fallback"] for r in frames)
    assert fits.getheader(tmp_path / "run2" / frames[0]["b_path"])["BIASFALL"] is True
    table = {r["product"]: r for r in read_dataset(tmp_path / "run2" / "calibrations").to_pylist()}
    assert table["bias2.0.fits"]["status"] == "fallback" and table["bias2.0.fits"]["fallback_from"] == "20240610"
    assert table["bias0.1.fits"]["status"] == "complete"


@needs_sample
def test_the_independent_sample_night_runs_with_no_format_error(tmp_path):
    """Every set is announced as "n of 10" (biases) or "n of 5" (lamps) with one frame present:
    each is a named TooFewFrames, no frame fails to be read, and the frames are still debiased
    (overscan from OSCANX0/OSCANX1) and cleaned.  One LA-Cosmic iteration keeps the test short."""
    out = tmp_path / "run"
    result = _run({"data_root": str(SAMPLE), "date": "20230518"}, out, steps={"debias_crr": {"niter": 1}})
    status = {s["step"]: s for s in collect(out)["steps"]}
    assert status["night"]["state"] == "done" and status["night"]["items_ok"] == 8
    assert status["debias_crr"]["state"] == "done" and status["debias_crr"]["items_ok"] == 6
    errors = [e for s in status.values() for e in s["errors"]]
    # every set too small, and no earlier night to fall back to: both named
    assert errors and {e["error_type"] for e in errors} == {"TooFewFrames", "GeometrySolutionFailed"}
    assert {e["item"] for e in status["fallback"]["errors"]} == {"TraceMatch", "HexaGrid", "WaveSolution", "Flat"}
    assert "1 frame(s) present (10 announced" in render_text(collect(out))
    night = {r["filename"]: r for r in read_dataset(out / "night").to_pylist()}
    assert {r["kind"] for r in night.values()} == {"bias", "dome", "Hg", "Cd", "Xe", "standard", "science"}
    assert all(r["oscan_x0"] == 2044 and r["oscan_x1"] == 2048 for r in night.values())
    assert {r["set_size"] for r in night.values() if r["kind"] == "bias"} == {10}
    assert result.steps["calibration_sets"].state == "failed"  # every set too small: the step says so
    assert all(result.steps[s].state == "done" for s in ("night", "master_bias", "debias_crr", "geometry",
                                                          "hexagrid", "wavesolution", "flat", "fluxcal_link",
                                                          "calibrations"))
    table = {r["product"]: r for r in read_dataset(out / "calibrations").to_pylist()}
    assert table["20230518_WaveSolution.fits"]["status"] == "missing"
    assert "GeometrySolutionFailed: too few arc frames" in table["20230518_WaveSolution.fits"]["message"]
    assert status["geometry"]["items_skipped"] == 1  # one dome flat of five: no trace match tonight
