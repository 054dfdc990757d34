"""Calibrations through the core: chosen by policy, recorded per item, explained, and a bad one
recomputes exactly the items that used it (SQLite and PostgreSQL, the same assertions)."""

from __future__ import annotations

from pathlib import Path

import pytest

from astroflow import config, rundir, runner, status
from astroflow.calib import Library
from astroflow.calib.cli import main as calib
from astroflow.registry import get_pipeline

HERE = Path(__file__).parent


@pytest.fixture(autouse=True)
def caltoy_registered(register_pipeline):
    register_pipeline(HERE, "caltoy=toy_calib:CALTOY")


def run(out, db_url, **settings):
    p = get_pipeline("caltoy")
    base = config.load(out).model_dump(exclude={"code_version"}) if (out / config.RUN_FILE).exists() else {}
    cfg = config.resolve(p, base, settings=settings, runner={"workers": 1, "db_url": db_url})
    return runner.run(p, cfg, out, progress=False)


def chosen(out) -> dict[str, str]:
    return {f"{r['frame']}:{r['camera']}": r["bias"] for r in rundir.read_dataset(out / "reduce").to_pylist()}


def test_bad_calibration_recomputes_exactly_its_items(tmp_path, db_url, capsys):
    out = tmp_path / "run"
    assert run(out, db_url).ok
    assert chosen(out) == {"20240102:a": "bias-20240101-a.txt", "20240102:b": "bias-20240101-b.txt",
                           "20240106:a": "bias-20240105-a.txt", "20240106:b": "bias-20240105-b.txt",
                           "20240107:a": "bias-20240105-a.txt", "20240107:b": "bias-20240105-b.txt"}
    row = rundir.read_dataset(out / "reduce").to_pylist()[0]
    assert row["cards"] == "PIPEVER,CALBIAS"
    m = next(iter(rundir.Ledger(out / "reduce").active))
    item = m["ok"][0]
    assert m["calibrations"][item][0]["reason"].startswith("latest before the observation")

    assert calib(["explain", str(out), "reduce:20240106:a"]) == 0
    text = capsys.readouterr().out
    assert "bias-20240105-a.txt" in text and "bias-20240101-a.txt" in text  # chosen, and a rejected one

    bad = str((out / "masters/bias-20240105-a.txt").resolve())
    assert calib(["mark-bad", bad, "--reason", "light leak", "--dry-run", "--db", db_url]) == 0
    preview = capsys.readouterr().out
    assert "20240106:a" in preview and "20240107:a" in preview and "20240102:a" not in preview
    assert Library(db_url).get(bad).is_bad is False
    assert calib(["mark-bad", bad, "--reason", "light leak", "--db", db_url]) == 0

    st = next(s for s in status.collect(out)["steps"] if s["step"] == "reduce")
    assert st["state"] == "stale" and st["items_stale"] == 2
    assert st["reason"].startswith("calibration bias-20240105-a.txt marked bad: light leak")
    before = {m["unit"]: m["commit"] for m in rundir.Ledger(out / "reduce").units.values()}
    assert run(out, db_url).ok
    after = {m["unit"]: m["commit"] for m in rundir.Ledger(out / "reduce").units.values()}
    new = [u for u, c in after.items() if before.get(u) != c]
    assert len(new) == 1 and new[0].startswith("p")  # one patch
    patch = rundir.Ledger(out / "reduce").units[new[0]]
    assert sorted(patch["items"]) == ["20240106:a", "20240107:a"]  # exactly the two that used it
    now = chosen(out)
    assert now["20240106:a"] == now["20240107:a"] == "bias-20240101-a.txt"  # the one before it
    assert now["20240106:b"] == "bias-20240105-b.txt"
    uses = Library(db_url).uses_of(bad)
    assert uses == []  # its items now use another one

    # marked good again: the same two items go back to it
    assert calib(["mark-good", bad, "--db", db_url]) == 0
    assert run(out, db_url).ok
    assert chosen(out)["20240107:a"] == "bias-20240105-a.txt"
    assert len(rundir.read_dataset(out / "reduce")) == 6  # every item once


def test_a_later_run_finds_an_earlier_partitions_masters(tmp_path, db_url):
    """Two runs on one library: the second makes no masters and finds the first's by date."""
    first, second = tmp_path / "night1", tmp_path / "night2"
    assert run(first, db_url, masters=["20240101"], frames=["20240102"]).ok
    assert run(second, db_url, masters=[], frames=["20240108"]).ok
    assert chosen(second) == {"20240108:a": "bias-20240101-a.txt", "20240108:b": "bias-20240101-b.txt"}
    used = next(iter(rundir.Ledger(second / "reduce").active))["calibrations"]
    assert all(Path(r[0]["path"]).is_relative_to(first) for r in used.values())


def test_an_item_that_found_no_calibration_reruns_once_one_qualifies(tmp_path, db_url):
    """A failed look-up is a dependency too: the frames of camera a fail while every one of its
    masters is bad, and recompute, alone, once one is good again (frames arriving before their
    calibrations, in a watched night, rely on it)."""
    out = tmp_path / "run"
    assert run(out, db_url).ok
    masters = [str((out / f"masters/bias-{n}-a.txt").resolve()) for n in ("20240101", "20240105")]
    for m in masters:
        assert calib(["mark-bad", m, "--reason", "light leak", "--db", db_url]) == 0
    run(out, db_url)
    assert sorted(rundir.Ledger(out / "reduce").outcomes().items()) == [
        ("20240102:a", "failed"), ("20240102:b", "ok"), ("20240106:a", "failed"), ("20240106:b", "ok"),
        ("20240107:a", "failed"), ("20240107:b", "ok")]
    assert calib(["mark-good", masters[0], "--db", db_url]) == 0
    st = next(s for s in status.collect(out)["steps"] if s["step"] == "reduce")
    assert st["state"] == "stale" and st["items_stale"] == 3 and "qualifies now" in st["reason"]
    assert run(out, db_url).ok
    assert set(rundir.Ledger(out / "reduce").outcomes().values()) == {"ok"}
    assert {k: v for k, v in chosen(out).items() if k.endswith(":a")} == {
        f"{d}:a": "bias-20240101-a.txt" for d in ("20240102", "20240106", "20240107")}
