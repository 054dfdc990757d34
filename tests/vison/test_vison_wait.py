"""Wait mode (vison_run -W) on a replayed acquisition: each Task starts once its test is complete,
a resubmitted test's last sequence is the one analysed, and ``astroflow vison wait`` is the core
watcher that stops when idle with each test's state.  Also ``--start-obsid`` and ``--check-only``."""

from __future__ import annotations

import datetime as dt
import threading

import pyarrow.dataset as ds
import pytest

from astroflow import config, rundir, runner
from steps.vison import wait
from steps.vison.inventory import last_sequence
from steps.vison.pipeline import VISON
from steps.vison.simulate import SERIALS, simulate_day
from steps.vison.simulate_replay import replay

from conftest import run_tests

SERIAL_FLAGS = ",".join(f"CCD{i + 1}={s}" for i, s in enumerate(SERIALS))


@pytest.fixture(scope="module")
def resubmitted(tmp_path_factory):
    """BIAS01 aborted after 4 frames and resubmitted (ObsIDs 40000-40003, then 40004-40013), DARK01."""
    return simulate_day(tmp_path_factory.mktemp("vison_resubmitted"), tests=("BIAS01", "DARK01"),
                        resubmitted={"BIAS01": 4})


def _obsids(run, step: str) -> list[int]:
    ledger = rundir.Ledger(run / step)
    return sorted(set(ledger.read(columns=["obsid"])["obsid"].to_pylist())) if ledger.latest else []


def test_each_task_starts_once_its_test_is_complete(resubmitted, tmp_path):
    assert resubmitted.tests == {"BIAS01": (40004, 40013), "DARK01": (40014, 40017)}
    cfg = config.resolve(VISON, settings={"data_root": str(tmp_path / "data" / resubmitted.day_folder.name),
                                          "tests": ["BIAS01", "DARK01"], "wait": True,
                                          "serials": dict(s.split("=") for s in SERIAL_FLAGS.split(","))},
                         runner={"workers": 1})
    run, seen = tmp_path / "run", []

    def pause(_seconds):  # between two ObsIDs: the previous one is whole on disk, its EXP_LOG rows too
        runner.run(VISON, cfg, run, progress=False)
        seen.append((_obsids(run, "inventory"), _obsids(run, "bias_check"), _obsids(run, "dark_check")))

    replay(tmp_path / "data", resubmitted.day_folder, sleep=pause)
    pause(0)
    for listed, bias, dark in seen:
        acquired = max(listed)
        assert bias == (list(range(40004, 40014)) if acquired >= 40013 else []), acquired
        assert dark == (list(range(40014, 40018)) if acquired >= 40017 else []), acquired
    offsets = ds.dataset(run / "D00" / "BIAS01" / "offsets").to_table().to_pylist()
    keys = [(r["obsid"], r["ccd"], r["quadrant"], r["region"]) for r in offsets]
    assert len(keys) == len(set(keys)) == 10 * 3 * 4 * 3  # every frame of the last sequence once


def test_the_wait_command_follows_a_live_acquisition(resubmitted, tmp_path, capsys):
    data, run = tmp_path / "data", tmp_path / "run"
    writer = threading.Thread(target=replay, args=(data, resubmitted.day_folder), kwargs={"max_wait_s": 0.3})
    writer.start()
    try:
        code = wait.main(["--day-folder", str(data / resubmitted.day_folder.name), "--out", str(run),
                          "--tests", "BIAS01,DARK01", "--serials", SERIAL_FLAGS, "--workers", "1",
                          "--poll", "0.2", "--settle", "0.2", "--idle-stop", "4"])
    finally:
        writer.join()
    err = capsys.readouterr().err
    assert code == 0, err[-3000:]
    assert "stopped (nothing changed" in err
    assert "BIAS01: complete ObsIDs 40004-40013, 10 frame(s); ObsIDs 40000-40003 left out" in err
    assert "DARK01: complete ObsIDs 40014-40017, 4 frame(s)" in err
    assert _obsids(run, "dark_check") == list(range(40014, 40018))  # the last rows came after its frames
    ron = ds.dataset(run / "D00" / "BIAS01" / "ron").to_table()
    assert ron.num_rows == 12 and set(ron["n_frames"].to_pylist()) == {10}


def test_start_obsid_and_check_only(resubmitted, tmp_path):
    run = run_tests(resubmitted, tmp_path / "run", ["BIAS01"], start_obsid=40006, check_only=True)
    assert _obsids(run, "bias_check") == list(range(40006, 40014))
    assert not rundir.Ledger(run / "bias_basic").latest and not rundir.Ledger(run / "bias_meta").latest
    assert not (tmp_path / "run" / "D00" / "BIAS01" / "ron").exists()
    flags = ds.dataset(tmp_path / "run" / "D00" / "BIAS01" / "flags").to_table().to_pylist()
    assert len(flags) == 12 and any("MISSDATA" in r["flag_names"] for r in flags)  # 8 of 10 frames


def _frames(gaps, settings=None):
    t, out = dt.datetime(2019, 3, 12, 9), []
    for i, gap in enumerate([0.0, *gaps]):
        t += dt.timedelta(seconds=gap)
        out.append({"obsid": 40000 + i, "time": t, "exptime": 0.0, "settings": (settings or {}).get(i, (0.0,))})
    return out


def test_the_last_sequence_is_the_last_restart():
    assert last_sequence(_frames([72.0] * 13)).obsids == list(range(40000, 40014))  # one sequence, whatever its length
    seq = last_sequence(_frames([72.0] * 3 + [672.0] + [72.0] * 9))
    assert seq.obsids == list(range(40004, 40014)) and "40000-40003" in seq.note
    # an interruption before a frame unlike the test's first is not a restart (a source changed, a pause)
    assert last_sequence(_frames([72.0] * 3 + [672.0] + [72.0] * 9, {4: (1.0,)})).obsids[0] == 40000
    missing = _frames([72.0] * 3 + [216.0] + [72.0] * 9)
    missing[4:] = [{**f, "obsid": f["obsid"] + 2} for f in missing[4:]]  # two ObsIDs without EXP_LOG rows
    assert last_sequence(missing).obsids[0] == 40000
