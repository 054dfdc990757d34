"""The ledger decides freshness: what a change recomputes, counted in commits, on the toy pipeline."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from astroflow import config, redo, rundir, runner, status
from astroflow.errors import AstroflowError, ConfigError
from astroflow.registry import get_pipeline
from astroflow.step import Context

TOY = "toy"


def run(out, workers=1, settings=None, steps=None, **kw):
    """The toy on ``out``, resuming its configuration (as the same command would) with overrides."""
    toy = get_pipeline(TOY)
    base = config.load(out).model_dump(exclude={"code_version"}) if (Path(out) / config.RUN_FILE).exists() else {}
    cfg = config.resolve(toy, base, settings=settings or {}, runner={"workers": workers}, steps=steps or {})
    return runner.run(toy, cfg, out, progress=False, **kw)


def commits(out, step) -> dict[str, str]:
    """unit -> commit id of every committed unit of a step."""
    return {m["unit"]: m["commit"] for m in rundir.Ledger(Path(out) / step).units.values()}


def recomputed(before: dict, after: dict) -> set[str]:
    return {u for u, c in after.items() if before.get(u) != c}


def snapshot(out):
    return {s: commits(out, s) for s in ("numbers", "square", "cube", "total", "letters")}


def step_state(out, name):
    return next(s for s in status.collect(out)["steps"] if s["step"] == name)


def values(out, step, col):
    return sorted(rundir.read_dataset(Path(out) / step).column(col).to_pylist())


def save_settings(out, **settings):
    """Change the run's settings as a later command would, without running (for status)."""
    toy = get_pipeline(TOY)
    old = config.load(out)
    cfg = config.resolve(toy, old.model_dump(exclude={"code_version"}), settings=settings)
    cfg.code_version = old.code_version
    return config.save(cfg, out)


def test_a_rerun_of_a_finished_run_recomputes_nothing(tmp_path):
    run(tmp_path)
    before = snapshot(tmp_path)
    res = run(tmp_path)
    assert res.ok and snapshot(tmp_path) == before
    assert all(s.work.units == [] for s in res.steps.values())


def test_changed_setting_recomputes_only_its_readers(tmp_path):
    run(tmp_path)
    before = snapshot(tmp_path)
    assert save_settings(tmp_path, scale=3) == ["settings.scale: 1 -> 3"]
    total = step_state(tmp_path, "total")
    assert total["state"] == "stale" and total["reason"] == "settings.scale changed (1 -> 3)"
    assert step_state(tmp_path, "square")["state"] == "done"
    run(tmp_path, settings={"scale": 3})
    after = snapshot(tmp_path)
    assert {s for s in after if recomputed(before[s], after[s])} == {"total"}
    assert rundir.read_dataset(tmp_path / "total").to_pylist()[0]["sum"] == 3 * (sum(i * i for i in range(20)) - 9)
    history = [json.loads(line) for line in (tmp_path / config.HISTORY).read_text().splitlines()]
    assert history[-1]["changes"] == ["settings.scale: 1 -> 3"]

    # a setting square reads: square, and what reads square, recompute; numbers and letters do not
    before = snapshot(tmp_path)
    save_settings(tmp_path, bad=[7])
    assert step_state(tmp_path, "square")["reason"] == "settings.bad changed ([] -> [7])"
    assert step_state(tmp_path, "cube")["reason"].startswith("input square")
    run(tmp_path, settings={"bad": [7]})
    after = snapshot(tmp_path)
    assert {s for s in after if recomputed(before[s], after[s])} == {"square", "cube", "total"}
    assert 7 not in values(tmp_path, "cube", "i")


def test_new_items_are_appended_without_recomputing_committed_shards(tmp_path):
    run(tmp_path, settings={"n": 20})
    before = snapshot(tmp_path)
    run(tmp_path, settings={"n": 26})
    after = snapshot(tmp_path)
    assert recomputed(before["numbers"], after["numbers"]) == {"shard-00000"}
    new_square = recomputed(before["square"], after["square"])
    assert new_square and not (new_square & set(before["square"]))  # only new shards
    assert not (recomputed(before["cube"], after["cube"]) & set(before["cube"]))  # old cube items fresh
    assert values(tmp_path, "square", "i") == [i for i in range(26) if i != 3]
    assert values(tmp_path, "cube", "i") == [i for i in range(26) if i != 3]
    # fewer items: shards holding removed items are retired, their rows and products gone
    run(tmp_path, settings={"n": 22, "products": True})
    assert values(tmp_path, "square", "i") == [i for i in range(22) if i != 3]
    assert sorted(p.name for p in (tmp_path / "products").glob("*.txt")) == sorted(
        f"sq-{i}.txt" for i in range(22) if i != 3)


def test_arriving_files_grow_the_plan(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    for i in range(6):
        (raw / f"{i:03d}.num").write_text(str(i))
    out = tmp_path / "run"
    run(out, settings={"data_root": str(raw)})
    before = commits(out, "square")
    (raw / "006.num").write_text("6")
    assert step_state(out, "square")["reason"].startswith("files matching")
    run(out)
    after = commits(out, "square")
    assert set(before) < set(after) and not recomputed(before, after) - (set(after) - set(before))
    assert values(out, "square", "i") == [0, 1, 2, 4, 5, 6]


def test_raw_file_replaced_renamed_or_touched(tmp_path):
    src = tmp_path / "numbers.txt"
    src.write_text("1 2 3 4")
    out = tmp_path / "run"
    run(out, settings={"source": str(src)})
    first = commits(out, "numbers")
    os.utime(src, (time.time() + 5, time.time() + 5))  # touched, content unchanged
    assert step_state(out, "numbers")["state"] == "done"
    run(out)
    assert commits(out, "numbers") == first
    src.write_text("1 2 3 4 5")  # replaced at the same path
    assert step_state(out, "numbers")["reason"] == f"file {src} changed"
    run(out)
    assert commits(out, "numbers") != first and values(out, "square", "i") == [1, 2, 4, 5]
    other = tmp_path / "other.txt"
    other.write_text("8 9")  # given under a new path
    run(out, settings={"source": str(other)})
    assert values(out, "square", "i") == [8, 9]


def test_force_removes_the_products_and_makes_dependants_stale(tmp_path):
    run(tmp_path, settings={"products": True})
    assert len(list((tmp_path / "products").glob("*.txt"))) == 19
    before = snapshot(tmp_path)
    run(tmp_path, settings={"products": False}, force=True, only="square")
    assert list((tmp_path / "products").glob("*.txt")) == []  # registered products went with the step
    assert step_state(tmp_path, "total")["reason"] == "input square changed"
    assert step_state(tmp_path, "cube")["state"] == "stale"
    assert snapshot(tmp_path)["total"] == before["total"]  # --only: not run, but shown stale


def test_retry_failed_reaches_the_downstream_fanouts(tmp_path):
    run(tmp_path, settings={"bad": [5, 13]})
    assert 5 not in values(tmp_path, "cube", "i")
    before = snapshot(tmp_path)
    (tmp_path / "fix-5").touch()
    (tmp_path / "fix-13").touch()
    res = run(tmp_path, retry_failed=True)
    assert res.ok
    after = snapshot(tmp_path)
    assert values(tmp_path, "square", "i") == [i for i in range(20) if i != 3]  # each once
    assert values(tmp_path, "cube", "i") == [i for i in range(20) if i != 3]
    assert not (recomputed(before["cube"], after["cube"]) & set(before["cube"]))  # only the new cube items
    assert recomputed(before["square"], after["square"]) == {u for u in after["square"] if u.startswith("p")}
    assert recomputed(before["total"], after["total"]) == {"shard-00000"}


def test_a_part_without_its_manifest_is_never_read(tmp_path):
    run(tmp_path)
    sq = tmp_path / "square"
    part = next(sq.glob("part-shard-00001-*.parquet"))
    (sq / "part-shard-00009-0123456789ab.parquet").write_bytes(part.read_bytes())  # a stray part
    assert values(tmp_path, "square", "i") == [i for i in range(20) if i != 3]
    (sq / rundir.MANIFESTS / "shard-00001.json").unlink()  # un-committed: its rows disappear
    assert values(tmp_path, "square", "i") == [i for i in range(20) if i not in (3, 4, 5, 6, 7)]
    assert len(ds.dataset(sq, format="parquet").files) == 6  # pyarrow alone would see both
    run(tmp_path)  # the planner recomputes the shard and clears the stray part
    assert values(tmp_path, "square", "i") == [i for i in range(20) if i != 3]
    assert not (sq / "part-shard-00009-0123456789ab.parquet").exists()


def test_redo_items_with_an_override(tmp_path):
    run(tmp_path)
    before = snapshot(tmp_path)
    with pytest.raises(ConfigError, match="no item"):
        redo.request(tmp_path, "square", ["99"])
    with pytest.raises(ConfigError, match="offset"):
        redo.request(tmp_path, "square", ["2"], {"offset": "x"})
    redo.request(tmp_path, "square", ["2", "7"], {"offset": 100})
    assert step_state(tmp_path, "square")["reason"].startswith("redo requested with {'offset': 100}")
    run(tmp_path)
    after = snapshot(tmp_path)
    rows = {r["i"]: r["sq"] for r in rundir.read_dataset(tmp_path / "square").to_pylist()}
    assert len(rows) == 19 and rows[2] == 104 and rows[7] == 149 and rows[5] == 25
    patches = recomputed(before["square"], after["square"])
    assert len(patches) == 1 and next(iter(patches)).startswith("p")
    assert {r["i"]: r["cube"] for r in rundir.read_dataset(tmp_path / "cube").to_pylist()}[7] == 149 * 7
    assert len(recomputed(before["cube"], after["cube"])) == 1  # one patch: the cube items 2 and 7
    assert step_state(tmp_path, "square")["state"] == "done"
    # the overrides stay with the items when their shard is recomputed; --clear drops them
    run(tmp_path, steps={"square": {"offset": 1}})
    rows = {r["i"]: r["sq"] for r in rundir.read_dataset(tmp_path / "square").to_pylist()}
    assert rows[2] == 104 and rows[5] == 26
    redo.request(tmp_path, "square", ["2"], clear=True)
    run(tmp_path, steps={"square": {"offset": 1}})
    assert {r["i"]: r["sq"] for r in rundir.read_dataset(tmp_path / "square").to_pylist()}[2] == 5


def test_undeclared_dataset_read_is_an_error(tmp_path):
    run(tmp_path)
    ctx = Context("toy", "cube", tmp_path, None, None, inputs=("square",))
    with pytest.raises(AstroflowError, match="does not declare"):
        ctx.table("numbers")
    with pytest.raises(AstroflowError, match="no rows for i=99"):
        ctx.row("square", i=99)
    assert ctx.row("square", i=4)["sq"] == 16


def test_run_dir_inside_a_data_root_is_refused(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "001.num").write_text("1")
    with pytest.raises(ConfigError, match="inside the raw data folder"):
        run(raw / "run", settings={"data_root": str(raw)})
    assert not (raw / "run").exists()
    cli = subprocess.run([sys.executable, "-m", "astroflow.cli", "run", "toy", "--data-root", str(raw),
                          "--out", str(raw)], capture_output=True, text=True)
    assert cli.returncode == 2 and "inside the raw data folder" in cli.stderr


def test_run_json_holds_absolute_paths(tmp_path, monkeypatch):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "001.num").write_text("1")
    monkeypatch.chdir(tmp_path)
    run(tmp_path / "run", settings={"data_root": "raw"})
    assert config.load(tmp_path / "run").settings["data_root"] == str(raw)


def _cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "astroflow.cli", *args], capture_output=True, text=True,
                          timeout=120, **kw)


def test_failed_items_exit_non_zero_and_step_failures_are_shown(tmp_path):
    out = tmp_path / "run"
    done = _cli("run", "toy", "--out", str(out), "--bad", "5", "--no-progress")
    assert done.returncode == 1 and "1 item(s) failed" in done.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    out2 = tmp_path / "run2"
    done = _cli("run", "toy", "--out", str(out2), "--data-root", str(empty), "--no-progress")
    assert done.returncode == 1
    st = step_state(out2, "square")
    assert st["state"] == "failed" and st["failure"]["file"] == str(empty)
    text = _cli("status", str(out2)).stdout
    assert "step failed: ItemError: no *.num files in the data root" in text and str(empty) in text
    assert step_state(out2, "letters")["state"] == "done"


def test_timeout_fails_only_the_slow_item(tmp_path):
    run(tmp_path, settings={"slow_at": 5})
    st = step_state(tmp_path, "square")
    assert st["items_failed"] == 1 and st["errors"][0]["error_type"] == "ItemTimeout"
    assert "timeout_s" in st["errors"][0]["message"]


def test_a_killed_worker_fails_its_own_unit_and_the_run_goes_on(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "kill").touch()
    res = run(out, workers=2, settings={"kill_at": 6})
    assert res.steps["square"].state == "failed" and "SIGKILL" in res.steps["square"].message
    assert res.steps["letters"].state == "done" and res.steps["total"].state == "blocked"
    st = step_state(out, "square")
    assert st["crashes"] and "signal 9" in st["crashes"][0]["message"]
    assert st["shards_done"] == st["shards_total"] - 1
    (out / "kill").unlink()
    before = commits(out, "square")
    res = run(out, workers=2)
    assert res.ok
    assert len(recomputed(before, commits(out, "square"))) == 1  # only the crashed unit
    assert values(out, "square", "i") == [i for i in range(20) if i != 3]
    assert step_state(out, "square")["crashes"] == []


def test_two_runs_on_one_directory_the_second_refuses(tmp_path):
    out = tmp_path / "run"
    cmd = ["run", "toy", "--out", str(out), "--workers", "2", "--n", "40", "--sleep", "0.1", "--no-progress"]
    first = subprocess.Popen([sys.executable, "-m", "astroflow.cli", *cmd], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline and not list((out / "square" / rundir.MANIFESTS).glob("*.json")):
        time.sleep(0.05)
    second = _cli("run", "toy", "--out", str(out), "--workers", "1", "--n", "40", "--no-progress")
    assert second.returncode == 4
    assert f"pid {first.pid}" in second.stderr and "is being written by another process" in second.stderr
    assert first.wait(timeout=120) == 0
    i = values(out, "square", "i")
    assert i == sorted(set(i)) and len(i) == 39


def test_dry_run_previews_without_running(tmp_path):
    run(tmp_path)
    before = snapshot(tmp_path)
    out = _cli("run", "toy", "--out", str(tmp_path), "--scale", "2", "--dry-run")
    assert out.returncode == 0
    assert "total: 1 unit(s)" in out.stdout and "settings.scale changed (1 -> 2)" in out.stdout
    assert "square: up to date" in out.stdout
    assert snapshot(tmp_path) == before and config.load(tmp_path).settings["scale"] == 1


def test_cli_pattern(tmp_path):
    assert _cli("--version").stdout.startswith("astroflow ")
    for name in ("toy", "tec", "hetdex", "elixer"):
        helped = _cli(name, "--help")
        assert helped.returncode == 0 and "commands" in helped.stdout, helped.stderr
    assert "modshift" in _cli("tec", "--help").stdout and "recover" in _cli("elixer", "--help").stdout
    text = _cli("run", "toy", "--help").stdout
    assert "(int; default 20)" in text and "--products, --no-products" in text
    assert "exit codes" in text
    assert _cli("toy", "nope").returncode == 2
    assert _cli("toy", "run", "--out", str(tmp_path / "r"), "--n", "3", "--no-progress").returncode == 0
