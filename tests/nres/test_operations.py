"""NRES as an operation: raw data never changes, a killed run resumes with nothing reduced twice,
and the same night gives the same products on SQLite and on PostgreSQL."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from astroflow import config, rundir, runner
from steps.nres.pipeline import NRES


def raw_state(root: Path) -> dict[str, tuple[str, int]]:
    return {str(p): (hashlib.md5(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*.fits*"))}


def rv_values(out: Path) -> dict[str, float]:
    return {r["filename"]: round(r["rv"], 6) for r in rundir.read_dataset(out / "rv").to_pylist()}


@pytest.fixture(scope="module")
def night(nres_sim):
    """The simulation's first site, one night (a quarter of the demo's work)."""
    return {**nres_sim.settings, "end": nres_sim.settings["start"][:8] + "23"}, nres_sim


def test_kill_9_then_the_same_command_reduces_nothing_twice_and_raw_is_untouched(night, tmp_path,
                                                                                 start_until_committed):
    settings, sim = night
    before = raw_state(sim.root)
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "astroflow.cli", "run", "nres", "--out", str(out), "--workers", "2",
           "--no-progress", *[f"--{k.replace('_', '-')}={v}" for k, v in settings.items()]]
    manifests = out / "reduce_target" / rundir.MANIFESTS
    proc = start_until_committed(cmd, manifests, 1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    committed = {p.name: p.read_bytes() for p in manifests.glob("*.json")}
    assert committed, "the run was killed before any science frame was reduced"
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert all((manifests / n).read_bytes() == b for n, b in committed.items())  # not reduced again
    rv = rundir.read_dataset(out / "rv").column("filename").to_pylist()
    science = [r["filename"] for r in rundir.read_dataset(out / "index").to_pylist() if r["obstype"] == "TARGET"]
    assert sorted(rv) == sorted(science)  # every frame in rv/ once
    assert raw_state(sim.root) == before  # checksums and mtimes of the raw data unchanged


@pytest.mark.docker
def test_the_same_products_on_sqlite_and_postgresql(night, tmp_path, postgres_database):
    settings, _ = night
    outs = {}
    for name, url in (("sqlite", None), ("postgresql", postgres_database)):
        out = tmp_path / name
        cfg = config.resolve(NRES, settings=settings, runner={"workers": 2, "db_url": url})
        assert runner.run(NRES, cfg, out, progress=False).ok
        outs[name] = out
    assert rv_values(outs["sqlite"]) == rv_values(outs["postgresql"])
    cal = {n: sorted(r["filename"] for r in rundir.read_dataset(o / "calibrations").to_pylist()) for n, o in outs.items()}
    assert cal["sqlite"] == cal["postgresql"] and len(cal["sqlite"]) >= 9
    for name in ("standards.csv", "zeros.csv"):  # the library written out in the IDL formats
        text = {n: next(o.glob(f"reduced/*/*/csv/{name}")).read_text() for n, o in outs.items()}
        assert text["sqlite"] == text["postgresql"]
    assert next(outs["sqlite"].glob("reduced/*/*/csv/standards.csv")).read_text().count("\n") >= 10


def test_frames_dropped_into_a_watched_folder_are_reduced_once(night, tmp_path):
    """The queue listener as ``astroflow watch nres``: one night's frames written into the data root
    in observation order (each first half-written), reduced as they arrive, each science frame once."""
    import shutil
    import threading

    from astroflow.watch import WatchOptions, watch
    from steps.nres.simulate_replay import replay

    settings, sim = night
    day = settings["start"].replace("-", "")
    source = tmp_path / "night"
    shutil.copytree(sim.root / "cpt" / "nres03" / day, source / "cpt" / "nres03" / day)
    watched = tmp_path / "archive"
    writer = threading.Thread(target=replay, args=(watched, source),
                              kwargs={"speed": 2000.0, "max_wait_s": 1.0, "half_written_s": 0.3})
    cfg = config.resolve(NRES, settings={**settings, "data_root": str(watched)}, runner={"workers": 2})
    out = tmp_path / "run"
    log = io.StringIO()
    writer.start()
    try:
        rc = watch(NRES, cfg, out, WatchOptions(poll_s=1.0, settle_s=0.5, max_wait_s=60.0, idle_stop_s=6.0), out=log)
    finally:
        writer.join()
    assert rc == 0, log.getvalue()[-3000:]
    science = sorted(p.name for p in (source / "cpt" / "nres03" / day / "raw").glob("*e00.fits.fz"))
    reduced = [i for m in (out / "reduce_target" / rundir.MANIFESTS).glob("*.json")
               for i in json.loads(m.read_text())["items"]]
    assert sorted(reduced) == science  # each science frame reduced once, none half-written
    assert sorted(rundir.read_dataset(out / "rv").column("filename").to_pylist()) == science
