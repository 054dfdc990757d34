"""The ledger on the independent sample sector: the freshness cases measured there before the
core's second stage (a TOI CSV replaced or renamed, --force of one step, a fixed bad input)."""

import gzip
import shutil

import pytest

from astroflow import config, rundir, runner, status
from steps.tec.pipeline import TEC


def run_tec(out, **kw):
    base = config.load(out).model_dump(exclude={"code_version"})
    settings = kw.pop("settings", {})
    return runner.run(TEC, config.resolve(TEC, base, settings=settings, runner={"workers": 1}), out,
                      progress=False, **kw)


def commits(out):
    return {step.name: {m["unit"]: m["commit"] for m in rundir.Ledger(out / step.name).units.values()}
            for step in TEC.steps}


def changed(before, after):
    return {s for s in after if before[s] != after[s]}


def state(out, name):
    return next(s for s in status.collect(out)["steps"] if s["step"] == name)


def matched_tois(out):
    return {r["toi"] for r in rundir.read_dataset(out / "federate_toi").to_pylist() if r["toi_matched"]}


@pytest.fixture
def copy(sample_sector, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(sample_sector, data)
    out = tmp_path / "run"
    settings = {"data_root": str(data), "sector": 33, "toi_csv": str(data / "toi.csv"),
                "known_planets": str(data / "known_planets.csv")}
    cfg = config.resolve(TEC, settings=settings, runner={"workers": 1})
    assert runner.run(TEC, cfg, out, progress=False).ok
    return data, out


def test_a_toi_csv_replaced_or_renamed_is_not_reused(copy):
    data, out = copy
    assert 1548.01 in matched_tois(out)
    before = commits(out)
    lines = (data / "toi.csv").read_text().splitlines(keepends=True)
    (data / "toi.csv").write_text("".join(line for line in lines if ",1548.01," not in line))
    assert state(out, "federate_toi")["reason"] == f"file {data / 'toi.csv'} changed"
    assert run_tec(out).ok
    assert 1548.01 not in matched_tois(out)  # the removed TOI no longer matches
    after = commits(out)
    assert {"federate_toi", "rank"} <= changed(before, after)
    assert not changed(before, after) & {"gather", "resample", "ses_mes", "modshift_med", "modshift_alt"}

    renamed = data / "toi-renamed.csv"
    shutil.copy(data / "toi.csv", renamed)
    (data / "toi.csv").write_text("".join(lines))  # the old path holds the full list again
    assert run_tec(out, settings={"toi_csv": str(renamed)}).ok
    assert 1548.01 not in matched_tois(out)  # the new path is read, not the old one


def test_force_of_one_step_makes_its_readers_stale(copy):
    _, out = copy
    before = commits(out)
    assert run_tec(out, force=True, only="federate_toi").ok
    assert changed(before, commits(out)) == {"federate_toi"}
    assert state(out, "rank")["state"] == "stale" and state(out, "rank")["reason"] == "input federate_toi changed"
    assert not status.collect(out)["complete"]
    assert run_tec(out).ok and status.collect(out)["complete"]


def test_a_fixed_input_reaches_every_later_step_with_retry_failed(copy):
    data, out = copy
    xml = sorted((data / "sector-033" / "dv-results").glob("*459440820*"))[0]
    good = xml.read_bytes()
    raw = gzip.decompress(good)
    xml.write_bytes(gzip.compress(raw[: len(raw) // 2]))  # truncated: its TCEs are lost
    run_tec(out)
    assert state(out, "gather")["items_failed"] == 1
    n_triage = len(rundir.read_dataset(out / "flux_triage"))
    assert 459440820 not in set(rundir.read_dataset(out / "ses_mes").column("tic").to_pylist())
    xml.write_bytes(good)  # fixed
    assert run_tec(out, retry_failed=True).ok
    for step in ("resample", "ses_mes", "flux_triage", "modshift_med", "sweet"):
        tics = rundir.read_dataset(out / step).column("tic").to_pylist()
        assert 459440820 in tics, step
    assert len(rundir.read_dataset(out / "flux_triage")) == n_triage + 3
    assert status.collect(out)["complete"]


def test_a_product_that_arrives_later_is_listed_and_computed(sample_sector, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(sample_sector, data)
    xml = sorted((data / "sector-033" / "dv-results").glob("*459440820*"))[0]
    held = tmp_path / xml.name
    xml.rename(held)  # not delivered yet
    out = tmp_path / "run"
    settings = {"data_root": str(data), "sector": 33, "toi_csv": str(data / "toi.csv"),
                "known_planets": str(data / "known_planets.csv")}
    assert runner.run(TEC, config.resolve(TEC, settings=settings, runner={"workers": 1}), out, progress=False).ok
    before = commits(out)
    held.rename(xml)
    assert state(out, "gather")["reason"] == f"files under {data} changed"
    assert run_tec(out).ok
    after = commits(out)
    assert set(before["gather"]) < set(after["gather"])  # a new shard for the new file
    assert all(after["gather"][u] == c for u, c in before["gather"].items())  # the others untouched
    assert all(after["resample"][u] == c for u, c in before["resample"].items())
    assert 459440820 in rundir.read_dataset(out / "ses_mes").column("tic").to_pylist()
    # skyline (the sector's bad cadences, from every light curve) changes with a new star, and
    # the steps that read it are recomputed: the ledger follows the science's own dependencies
    assert after["skyline"] != before["skyline"]
