"""The embedded runner, the ledger and the status view on a toy pipeline."""

import json
import os
import signal
import subprocess
import sys
import time

import pyarrow.dataset as ds
import pytest

from astroflow import config, rundir, runner, status
from astroflow.errors import ConfigError
from astroflow.registry import get_pipeline


def run_toy(tmp_path, workers=1, **kw):
    toy = get_pipeline("toy")
    settings = kw.pop("settings", {})
    cfg = config.resolve(toy, settings=settings, runner={"workers": workers})
    return runner.run(toy, cfg, tmp_path, progress=False, **kw)


def squares(run_dir):
    return sorted(ds.dataset(run_dir / "square", format="parquet").to_table().column("i").to_pylist())


def test_runs_in_order_and_skips(tmp_path):
    res = run_toy(tmp_path)
    assert res.ok, res.steps
    assert squares(tmp_path) == [i for i in range(20) if i != 3]
    total = ds.dataset(tmp_path / "total", format="parquet").to_table().to_pylist()
    assert total == [{"n": 19, "sum": sum(i * i for i in range(20)) - 9}]
    st = status.collect(tmp_path)
    sq = next(s for s in st["steps"] if s["step"] == "square")
    assert (sq["shards_done"], sq["shards_total"]) == (5, 5)
    assert (sq["items_ok"], sq["items_failed"], sq["items_skipped"]) == (19, 0, 1)
    assert st["complete"]


def test_two_workers_use_two_processes(tmp_path):
    res = run_toy(tmp_path, workers=2, settings={"sleep": 0.3})
    assert res.ok
    pids = set(ds.dataset(tmp_path / "square", format="parquet").to_table().column("pid").to_pylist())
    assert len(pids) == 2


def test_bad_items_recorded_then_retried_without_duplicates(tmp_path):
    res = run_toy(tmp_path, settings={"bad": [5, 13]})
    assert all(s.state == "done" for s in res.steps.values())  # 2 of 20 failed, below the allowed fraction
    assert res.failed_items == 2 and not res.ok
    st = status.collect(tmp_path)
    sq = next(s for s in st["steps"] if s["step"] == "square")
    assert sq["items_failed"] == 2
    assert {e["item"] for e in sq["errors"]} == {"5", "13"}
    assert all(e["file"] == f"/data/item-{e['item']}.fits" for e in sq["errors"])
    assert "item 5 is bad" in status.render_text(st)
    assert 5 not in squares(tmp_path)

    (tmp_path / "fix-5").touch()
    (tmp_path / "fix-13").touch()
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "square").glob("part-0*.parquet")}
    res = run_toy(tmp_path, settings={"bad": [5, 13]}, retry_failed=True)
    assert res.ok
    assert squares(tmp_path) == [i for i in range(20) if i != 3]  # each exactly once
    after = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "square").glob("part-0*.parquet")}
    assert before == after  # original shards untouched
    total = ds.dataset(tmp_path / "total", format="parquet").to_table().to_pylist()
    assert total[0]["n"] == 19  # the summary step was brought up to date
    sq = next(s for s in status.collect(tmp_path)["steps"] if s["step"] == "square")
    assert (sq["items_failed"], sq["errors"]) == (0, [])


def test_too_many_failures_fail_the_step_and_block_dependants(tmp_path):
    res = run_toy(tmp_path, settings={"bad": list(range(15))})
    assert res.steps["square"].state == "failed"
    assert res.steps["total"].state == "blocked"
    assert not res.ok


def test_resume_redoes_only_uncommitted_shards(tmp_path):
    run_toy(tmp_path)
    mdir = tmp_path / "square" / rundir.MANIFESTS
    stamps = {p.name: json.loads(p.read_text())["started"] for p in mdir.glob("*.json")}
    (mdir / "shard-00002.json").unlink()
    run_toy(tmp_path)
    again = {p.name: json.loads(p.read_text())["started"] for p in mdir.glob("*.json")}
    changed = {k for k in stamps if stamps[k] != again[k]}
    assert changed == {"shard-00002.json"}
    assert squares(tmp_path) == [i for i in range(20) if i != 3]


def test_selection_only_from_until(tmp_path):
    toy = get_pipeline("toy")
    assert toy.select(only="square") == ["square"]
    assert toy.select(start="square") == ["square", "cube", "total"]
    assert toy.select(until="square") == ["numbers", "square"]
    res = run_toy(tmp_path, only="square")
    assert res.steps["square"].state == "blocked"
    assert "numbers" in res.steps["square"].message
    res = run_toy(tmp_path, until="square")
    assert set(res.steps) == {"numbers", "square"} and res.ok


def test_force_recomputes(tmp_path):
    run_toy(tmp_path)
    m = tmp_path / "square" / rundir.MANIFESTS / "shard-00000.json"
    first = json.loads(m.read_text())["started"]
    run_toy(tmp_path, force=True, only="square")
    assert json.loads(m.read_text())["started"] != first


def test_manifest_provenance(tmp_path):
    run_toy(tmp_path)
    m = json.loads((tmp_path / "square" / rundir.MANIFESTS / "shard-00000.json").read_text())
    for key in ("code_version", "params", "deps", "item_deps", "ok", "failed", "skipped", "wall_s", "cpu_s",
                "peak_rss_mb", "commit", "part"):
        assert key in m
    assert m["params"]["offset"] == 0
    assert set(m["deps"]["settings"]) == {"bad", "sleep", "kill_at", "slow_at", "products"}  # what square read
    assert rundir.Plan.load(tmp_path / "square").deps["datasets"]["numbers"]  # its item list read numbers
    cube = json.loads((tmp_path / "cube" / rundir.MANIFESTS / "shard-00000.json").read_text())
    assert all(d["where"][0]["dataset"] == "square" for d in cube["item_deps"].values())


def test_config_errors_are_clear(tmp_path):
    toy = get_pipeline("toy")
    with pytest.raises(ConfigError, match="settings.nn"):
        config.resolve(toy, settings={"nn": 3})
    with pytest.raises(ConfigError, match="no step"):
        config.resolve(toy, steps={"nope": {"x": 1}})
    with pytest.raises(ConfigError, match="steps.square|offset|square"):
        config.resolve(toy, steps={"square": {"offset": "abc"}})
    bad = tmp_path / "c.toml"
    bad.write_text("[settings\n")
    with pytest.raises(ConfigError, match="c.toml"):
        config.read_config_file(bad)


def test_cli_kill_and_resume(tmp_path, start_until_committed):
    """kill -9 in the middle of the fan-out, then the same command: every item exactly once."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "astroflow.cli", "run", "toy", "--out", str(out), "--workers", "2",
           "--n", "40", "--sleep", "0.1", "--no-progress"]
    mdir = out / "square" / rundir.MANIFESTS
    proc = start_until_committed(cmd, mdir, 3, timeout_s=60)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    committed = {p.name: json.loads(p.read_text())["started"] for p in mdir.glob("*.json")}
    assert 0 < len(committed) < 10
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    after = {p.name: json.loads(p.read_text())["started"] for p in mdir.glob("*.json")}
    assert all(after[k] == v for k, v in committed.items())  # no committed shard computed twice
    assert squares(out) == [i for i in range(40) if i != 3]
    st = subprocess.run([sys.executable, "-m", "astroflow.cli", "status", str(out), "--json"],
                        capture_output=True, text=True)
    assert st.returncode == 0 and json.loads(st.stdout)["complete"]


def test_cli_rerun_keeps_the_run_configuration(tmp_path):
    """A later command on a run with only some flags keeps the rest of the run's configuration."""
    out = tmp_path / "run"
    base = [sys.executable, "-m", "astroflow.cli", "run", "toy", "--out", str(out), "--no-progress"]
    assert subprocess.run(base + ["--n", "12", "--workers", "1"], capture_output=True).returncode == 0
    again = subprocess.run(base + ["--workers", "2", "--only", "square", "--force"], capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert squares(out) == [i for i in range(12) if i != 3]  # --n 12 kept, not the default
    assert config.load(out).run.workers == 2


def test_workers_die_with_the_runner(tmp_path, start_until_committed):
    """kill -9 of the runner alone (not its process group): its pool workers go too, so none keeps
    writing into the run directory beside the next run."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "astroflow.cli", "run", "toy", "--out", str(out), "--workers", "2",
           "--n", "200", "--sleep", "0.05", "--no-progress"]
    proc = start_until_committed(cmd, out / "square" / rundir.MANIFESTS, 2, timeout_s=60)
    workers = set(ds.dataset(out / "square", format="parquet").to_table().column("pid").to_pylist())
    assert workers
    proc.kill()
    proc.wait()
    deadline = time.time() + 10
    alive = workers
    while alive and time.time() < deadline:
        time.sleep(0.1)
        alive = {p for p in alive if _alive(p)}
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # clean up whatever is left before asserting
    except ProcessLookupError:
        pass
    assert not alive


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_every_run_writes_its_metrics_file(tmp_path):
    """``RUN/metrics.prom``: the status figures in the Prometheus text format (the runbook's Metrics)."""
    import re

    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "astroflow.cli", "run", "toy", "--out", str(out), "--n", "12", "--no-progress"]
    subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    text = (out / "metrics.prom").read_text()
    sample = re.compile(r'^(astroflow_[a-z_]+)\{([a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*)\} (-?[0-9.e+]+)$')
    names = set()
    for line in text.splitlines():
        if line.startswith("#"):
            assert re.match(r"^# (HELP|TYPE) astroflow_[a-z_]+ ", line), line
            continue
        m = sample.match(line)
        assert m, line
        names.add(m.group(1))
    assert names >= {"astroflow_run_complete", "astroflow_step_items", "astroflow_step_wall_seconds",
                     "astroflow_step_cpu_seconds", "astroflow_step_items_per_second", "astroflow_step_peak_rss_bytes"}
    assert 'astroflow_run_complete{pipeline="toy",run="run"} 1' in text
    assert 'astroflow_step_items{pipeline="toy",run="run",step="square",outcome="ok"} 11' in text
    assert 'astroflow_step_items{pipeline="toy",run="run",step="square",outcome="skipped"} 1' in text  # item 3
