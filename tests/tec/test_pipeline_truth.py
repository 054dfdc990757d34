"""TEC steps 1-11 on a simulated sector, scored against the simulator's truth."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from astroflow import config, rundir, runner
from steps.tec.pipeline import TEC, TecSimulation, simulate

N_TCES = 120
PLANETS = ("planet", "multi")


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    data = tmp_path_factory.mktemp("sim")
    settings = simulate(data, TecSimulation(n_tces=N_TCES, seed=7))
    return data, settings


@pytest.fixture(scope="module")
def run(sim, tmp_path_factory):
    data, settings = sim
    out = tmp_path_factory.mktemp("run")
    cfg = config.resolve(TEC, settings=settings, runner={"workers": 2})
    res = runner.run(TEC, cfg, out, progress=False)
    assert res.ok, {n: (s.state, s.message) for n, s in res.steps.items() if s.state != "done"}
    truth = pq.read_table(data / "truth.parquet").to_pylist()
    return out, {(t["tic"], t["planet_number"]): t for t in truth}


def table(out, step):
    return {(r["tic"], r["planet_number"]): r for r in ds.dataset(out / step, format="parquet").to_table().to_pylist()}


def test_every_tce_gathered(run):
    out, truth = run
    assert set(table(out, "gather")) == set(truth)


def test_skyline_flags_injected_cadences(run, sim):
    out, _ = run
    data, _ = sim
    injected = pq.read_table(data / "truth_skyline.parquet").column("time").to_numpy()
    flagged = ds.dataset(out / "skyline", format="parquet").to_table().column("time").to_numpy()
    assert len(injected) and len(flagged)
    nearest = np.min(np.abs(injected[:, None] - flagged[None, :]), axis=1)
    assert np.mean(nearest < 10 / 1440) >= 0.9


def test_federation_finds_known_planets_and_tois_without_false_matches(run):
    out, truth = run
    known = table(out, "federate_known")
    tois = table(out, "federate_toi")
    for key, t in truth.items():
        if t["known_planet_name"]:
            assert known[key]["known_matched"] and known[key]["known_name"] == t["known_planet_name"], key
            assert known[key]["known_class"] in (1, 2), key
        else:
            assert not known[key]["known_federated"], key
        if np.isfinite(t["toi"]):
            assert tois[key]["toi_federated"] and tois[key]["toi"] == pytest.approx(t["toi"]), key
            assert tois[key]["toi_class"] in (1, 2), key
        else:
            assert not tois[key]["toi_federated"], key


def test_triage_passes_planets_and_fails_systematics(run):
    out, truth = run
    triage = table(out, "flux_triage")
    planets = [k for k, t in truth.items() if t["kind"] in PLANETS and t["snr_expected"] >= 10]
    assert len(planets) >= 20
    passed = np.mean([triage[k]["passed"] for k in planets])
    assert passed >= 0.95, [(k, triage[k]["reason"]) for k in planets if not triage[k]["passed"]]
    skyline = [k for k, t in truth.items() if t["in_skyline"]]
    assert skyline and all(not triage[k]["passed"] for k in skyline)
    assert all(triage[k]["reason"] in ("newMesBelowThresh", "newMesShrink") for k in skyline)
    aliases = [k for k, t in truth.items() if t["kind"] in ("half_period_of", "double_period_of")]
    assert aliases and all(triage[k]["reason"].startswith("SecondaryOfPN_") for k in aliases)


def test_ses_mes_recovers_injected_snr(run):
    out, truth = run
    ses = table(out, "ses_mes")
    clean = [k for k, t in truth.items() if t["kind"] in PLANETS and not t["on_momentum_dump"]
             and not t["in_skyline"] and t["snr_expected"] >= 7]
    ratio = np.array([ses[k]["new_mes"] / truth[k]["snr_expected"] for k in clean])
    assert np.mean(np.abs(ratio - 1) < 0.2) >= 0.9, sorted(ratio)


def test_kill_during_ses_mes_then_resume(sim, tmp_path):
    """kill -9 in the middle of ses_mes; the same command again completes, no shard twice."""
    _, settings = sim
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "astroflow.cli", "run", "tec", "--out", str(out), "--workers", "2",
           "--no-progress", "--set", "ses_mes.shard_size=5"]
    for key in ("data_root", "sector", "toi_csv", "known_planets", "family"):
        cmd += ["--" + key.replace("_", "-"), str(settings[key])]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    mdir = out / "ses_mes" / rundir.MANIFESTS
    deadline = time.time() + 300
    while time.time() < deadline and len(list(mdir.glob("*.json"))) < 2:
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    first = {p.name: json.loads(p.read_text())["started"] for p in mdir.glob("*.json")}
    plan = rundir.Plan.load(out / "ses_mes")
    assert 0 < len(first) < plan.n_shards
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    after = {p.name: json.loads(p.read_text())["started"] for p in mdir.glob("*.json")}
    assert all(after[k] == v for k, v in first.items())
    keys = [(r["tic"], r["planet_number"]) for r in
            ds.dataset(out / "ses_mes", format="parquet").to_table(columns=["tic", "planet_number"]).to_pylist()]
    assert len(keys) == len(set(keys)) == N_TCES
