"""The night survives its accidents: a corrupt frame is a named error and the night goes on;
``kill -9`` during the science frames, then the same command, gives every frame once in
``spectra/`` with nothing committed before the kill done again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from astroflow.cli import main
from astroflow.rundir import manifests, read_dataset
from astroflow.status import collect

from conftest import copy_frames, raw_state, sedm_settings


def test_a_truncated_frame_is_named_and_the_night_goes_on(sedm_sim, tmp_path):
    keep = [r["filename"] for r in sedm_sim.ifu() if r["imgtype"] == "bias" and r["adcspeed"] == 0.1]
    root = copy_frames(sedm_sim, tmp_path / "raw", keep)
    date = sedm_sim.settings["date"]
    science = next(r["filename"] for r in sedm_sim.ifu(imgtype="science"))
    whole = (sedm_sim.night / science).read_bytes()
    (root / date / science).write_bytes(whole[: len(whole) // 3])  # the transfer died a third of the way
    rc = main(["run", "sedm", "--data-root", str(root), "--date", date, "--out", str(tmp_path / "run"),
               "--workers", "2", "--no-progress"])
    assert rc == 1
    steps = {s["step"]: s for s in collect(tmp_path / "run")["steps"]}
    (err,) = steps["night"]["errors"]
    assert err["item"] == science and err["error_type"] == "FrameFormatError" and "truncated" in err["message"]
    assert steps["night"]["items_ok"] == 10 and steps["master_bias"]["items_ok"] == 1


def test_kill_9_during_the_science_frames_then_the_same_command(sedm_sim, tmp_path):
    s = sedm_settings(sedm_sim.settings)
    before = raw_state(sedm_sim.root)
    out = tmp_path / "run"
    argv = [sys.executable, "-m", "astroflow.cli", "run", "sedm", "--data-root", s["data_root"], "--date", s["date"],
            "--standards", s["standards"], "--out", str(out), "--workers", "2", "--no-progress"]
    first = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        limit = time.monotonic() + 600
        while not manifests(out / "cube") and first.poll() is None and time.monotonic() < limit:
            time.sleep(0.2)
        assert first.poll() is None, "the run ended before its first cube: nothing to kill"
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(30)
    committed = {step: {m["unit"]: json.dumps(m, sort_keys=True) for m in manifests(out / step)}
                 for step in ("night", "debias_crr", "wavesolution", "flexure", "cube")}
    assert committed["cube"] and not manifests(out / "spectra")  # killed part of the way through the science
    second = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    assert second.returncode == 0, second.stderr[-2000:]
    for step, units in committed.items():  # what had committed is not done again
        now = {m["unit"]: json.dumps(m, sort_keys=True) for m in manifests(out / step)}
        assert all(now[u] == text for u, text in units.items()), step
    spectra = [r["filename"] for r in read_dataset(out / "spectra").to_pylist()]
    frames = [r["filename"] for r in sedm_sim.ifu() if r["imgtype"] in ("standard", "science")]
    assert sorted(spectra) == sorted(frames)  # every frame once
    night = out / "redux" / s["date"]
    assert len(list(night.glob("spec_forcepsf_*.fits"))) == len(frames)
    assert raw_state(sedm_sim.root) == before
