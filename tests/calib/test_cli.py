"""``astroflow calib`` (its ``main``) against a hand-made run directory whose manifests record the
calibrations each item used, in the ledger format the core writes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from astroflow.calib import CalibType, Library
from astroflow.calib.cli import main

T0 = datetime(2019, 1, 5, 3, 0, tzinfo=UTC)
DAY = timedelta(days=1)
BIAS = CalibType("bias", match=("specid", "amp"), select="before", lookback_days=30)
LL = {"specid": "086", "amp": "LL"}
LU = {"specid": "086", "amp": "LU"}


def _write(path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


@pytest.fixture
def run(tmp_path, lib, make_file):
    """RUN with a step bias_sub whose shard used calibrations for frames f1 (LL) and f2 (LU), and
    a later patch unit that redid f2 (the ledger's format: a plan, manifests with their items,
    files and calibrations); the library knows those uses."""
    run = tmp_path / "run"
    _write(run / "run.json", {"pipeline": "hetdex", "settings": {}, "steps": {}})
    ids = {
        "ll": lib.register("bias", make_file("mbias_LL.fits"), T0 - 2 * DAY, LL),
        "ll_old": lib.register("bias", make_file("mbias_LL_old.fits"), T0 - 5 * DAY, LL),
        "ll_later": lib.register("bias", make_file("mbias_LL_later.fits"), T0 + DAY, LL),
        "lu": lib.register("bias", make_file("mbias_LU.fits"), T0 - 3 * DAY, LU),
        "ru": lib.register("bias", make_file("mbias_RU.fits"), T0 - 1 * DAY, {"specid": "086", "amp": "RU"}),
    }
    f1, f2 = lib.select(BIAS, T0, LL), lib.select(BIAS, T0, LU)
    step = run / "bias_sub"
    _write(step / "_plan.json", {"version": 2, "deps": {}, "shards": [
        {"id": 0, "ids": ["f1", "f2"], "items": [{"id": "f1"}, {"id": "f2"}]}]})
    shard = {"unit": "shard-00000", "commit": "c1", "committed_ns": 1, "items": ["f1", "f2"], "ok": ["f1", "f2"],
             "failed": [], "skipped": [], "files": ["bias_sub/f1.fits", "bias_sub/f2.fits"],
             "calibrations": {"f1": [f1.as_record()], "f2": [f2.as_record()]}}
    patch = {"unit": "p0001-00000", "commit": "c2", "committed_ns": 2, "items": ["f2"], "ok": ["f2"],
             "failed": [], "skipped": [], "files": ["bias_sub/f2.fits"], "calibrations": {"f2": [f2.as_record()]}}
    _write(step / "_manifests" / "shard-00000.json", shard)
    _write(step / "_manifests" / "p0001-00000.json", patch)
    uses = [{"calibration_id": c.record.id, "run": str(run), "step": "bias_sub", "item": item, "unit": unit,
             "policy": c.as_record()["policy"], "reason": c.reason, "fallback": c.fallback}
            for c, item, unit in [(f1, "f1", "shard-00000"), (f2, "f2", "p0001-00000")]]
    lib.record_uses(uses)
    return run, ids


def calib(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_list_and_show(run, db_url, capsys):
    _, ids = run
    code, out, _ = calib(capsys, "list", "--db", db_url, "--json")
    assert code == 0 and [c["id"] for c in json.loads(out)] == [ids["ll_old"], ids["lu"], ids["ll"], ids["ru"],
                                                                ids["ll_later"]]
    code, out, _ = calib(capsys, "list", "--db", db_url, "--attr", "amp=LU")
    assert code == 0 and "mbias_LU.fits" in out and "mbias_LL" not in out
    code, out, _ = calib(capsys, "show", ids["ll"], "--db", db_url, "--json")
    shown = json.loads(out)
    assert code == 0 and shown["calibration"]["path"].endswith("mbias_LL.fits")
    assert [(u["step"], u["item"]) for u in shown["uses"]] == [("bias_sub", "f1")]
    assert [e["action"] for e in shown["events"]] == ["register"]
    code, out, _ = calib(capsys, "show", shown["calibration"]["path"], "--db", db_url)
    assert code == 0 and "used by 1 item(s)" in out and "bias_sub:f1" in out


def test_explain_an_item(run, db_url, capsys):
    run_dir, ids = run
    code, out, _ = calib(capsys, "explain", run_dir, "bias_sub:f1", "--db", db_url, "--json")
    assert code == 0
    (item,) = json.loads(out)["items"]
    assert (item["step"], item["item"], item["unit"]) == ("bias_sub", "f1", "shard-00000")
    (used,) = item["calibrations"]
    assert used["recorded"]["id"] == ids["ll"] and not used["differs"] and used["today"]["id"] == ids["ll"]
    why = {r["id"]: r["why"] for r in used["rejected"]}
    assert why[ids["ll_old"]].startswith("farther in time: 5.0 d before")
    assert why[ids["ll_later"]].startswith("after the observation")
    code, text, _ = calib(capsys, "explain", run_dir, "bias_sub:f1", "--db", db_url)
    assert code == 0
    assert "why:      latest before the observation, 2.0 d before; matching specid=086, amp=LL" in text
    assert "policy:   only before the observation, look-back 30 d" in text
    assert "today:    the same choice" in text and "after the observation" in text


def test_explain_says_when_the_choice_would_differ(run, db_url, capsys, lib, make_file):
    run_dir, ids = run
    newer = lib.register("bias", make_file("mbias_LL_new.fits"), T0 - 0.5 * DAY, LL)
    code, out, _ = calib(capsys, "explain", run_dir, "bias_sub:f1", "--db", db_url, "--json")
    used = json.loads(out)["items"][0]["calibrations"][0]
    assert code == 0 and used["differs"] and used["today"]["id"] == newer
    assert {r["id"]: r["why"] for r in used["rejected"]}[ids["ll"]].startswith("farther in time")
    for cid in (newer, ids["ll"], ids["ll_old"]):
        lib.mark_bad(cid, "light leak")
    code, text, _ = calib(capsys, "explain", run_dir, "bias_sub:f1", "--db", db_url)
    assert code == 0 and "now:      marked bad: light leak" in text
    assert "today:    no calibration qualifies now" in text and "#" + str(newer) + " " in text


def test_explain_a_product_path(run, db_url, capsys):
    run_dir, ids = run
    code, out, _ = calib(capsys, "explain", run_dir, "bias_sub/f2.fits", "--db", db_url, "--json")
    items = json.loads(out)["items"]
    assert code == 0 and [(i["item"], i["unit"]) for i in items] == [("f2", "p0001-00000")]  # the patch is latest
    assert items[0]["calibrations"][0]["recorded"]["id"] == ids["lu"]
    code, out, _ = calib(capsys, "explain", run_dir, run_dir / "bias_sub" / "f1.fits", "--db", db_url, "--json")
    assert code == 0 and [i["item"] for i in json.loads(out)["items"]] == ["f1"]


def test_explain_not_found(run, db_url, capsys, tmp_path):
    run_dir, _ = run
    code, _, err = calib(capsys, "explain", run_dir, "bias_sub:f9", "--db", db_url)
    assert code == 2 and "no item 'f9'" in err
    code, _, err = calib(capsys, "explain", run_dir, "other/x.fits", "--db", db_url)
    assert code == 2 and "neither STEP:ITEM" in err
    code, _, err = calib(capsys, "explain", tmp_path, "bias_sub:f1", "--db", db_url)
    assert code == 2 and "not a run directory" in err


def test_mark_bad_dry_run_changes_nothing(run, db_url, capsys, lib):
    run_dir, ids = run
    before = lib.revision()
    code, out, _ = calib(capsys, "mark-bad", ids["lu"], "--reason", "light leak", "--dry-run", "--db", db_url, "--json")
    plan = json.loads(out)
    assert code == 0 and plan["dry_run"]
    assert [(i["run"], i["step"], i["item"]) for i in plan["items"]] == [(str(run_dir), "bias_sub", "f2")]
    assert lib.revision() == before and not lib.get(ids["lu"]).is_bad
    code, out, _ = calib(capsys, "mark-bad", ids["lu"], "--reason", "light leak", "--user", "ops", "--db", db_url)
    assert code == 0 and "1 item(s) used it" in out and f"{run_dir}  bias_sub:f2" in out
    cal = lib.get(ids["lu"])
    assert cal.is_bad and cal.bad_reason == "light leak" and lib.events(cal.id)[-1]["user"] == "ops"
    code, out, _ = calib(capsys, "mark-good", cal.path, "--db", db_url)
    assert code == 0 and not lib.get(ids["lu"]).is_bad


def test_usage_and_not_found_exit_2(run, db_url, capsys):
    assert calib(capsys, "mark-bad", "1", "--db", db_url)[0] == 2  # --reason is required
    assert calib(capsys, "frobnicate")[0] == 2
    code, _, err = calib(capsys, "show", "/no/such.fits", "--db", db_url)
    assert code == 2 and "no calibration with path /no/such.fits" in err
    code, _, err = calib(capsys, "list", "--db", "mysql://x/y")
    assert code == 2 and "unsupported database" in err
    assert calib(capsys, "--help")[0] == 0


def test_run_option_uses_the_runs_default_library(tmp_path, capsys, make_file, monkeypatch):
    monkeypatch.delenv("ASTROFLOW_DB_URL", raising=False)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    Library.for_run(run_dir).register("flat", make_file("flat.fits"), T0, {})
    code, out, _ = calib(capsys, "list", "--run", run_dir, "--json")
    assert code == 0 and [c["type"] for c in json.loads(out)] == ["flat"]
    code, _, err = calib(capsys, "list")
    assert code == 2 and "--db URL or --run RUN" in err
