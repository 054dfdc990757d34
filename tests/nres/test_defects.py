"""NRES on a night with every defect: each bad input is a named error, the night completes."""

from __future__ import annotations

import pytest

from astroflow import config, rundir, runner, status
from steps.nres.pipeline import NRES


@pytest.fixture(scope="module")
def defect_run(nres_sim_defects, tmp_path_factory):
    out = tmp_path_factory.mktemp("nres_defects") / "run"
    cfg = config.resolve(NRES, settings=nres_sim_defects.settings, runner={"workers": 2})
    res = runner.run(NRES, cfg, out, progress=False)
    return res, out, {d["defect"]: d for d in nres_sim_defects.table("defects")}


def errors(out, step):
    return {e["item"]: e for e in next(s for s in status.collect(out)["steps"] if s["step"] == step)["errors"]}


def test_bad_frames_are_named_errors_and_the_night_completes(defect_run):
    res, out, defects = defect_run
    assert all(s.state == "done" for s in res.steps.values()), {n: s.message for n, s in res.steps.items()}
    index = errors(out, "index")
    assert "wrong dimensions" in index[defects["wrong_shape"]["filename"]]["message"]
    assert "without OBJECTS" in index[defects["no_objects"]["filename"]]["message"]
    assert "incomplete FITS" in index[defects["truncated"]["filename"]]["message"]
    assert all(e["file"].endswith(item) for item, e in index.items())
    indexed = set(rundir.read_dataset(out / "index").column("filename").to_pylist())
    assert not indexed & set(defects["ignored_frames"]["filename"].split())


def test_too_few_flats_keep_the_previous_master_and_say_so(defect_run):
    res, out, defects = defect_run
    night = defects["two_flats"]["day_obs"]
    stack = errors(out, "stack_flat")
    (item, err), = [(i, e) for i, e in stack.items() if night in i]
    assert "2 FLAT frame(s)" in err["message"] and "5 needed" in err["message"]
    m = next(m for m in rundir.Ledger(out / "trace").active if any(night in i for i in m["ok"]))
    used = next(recs for item, recs in m["calibrations"].items() if night in item)
    fallback = [r for r in used if r["type"] == "FLAT" and r["attributes"]["fiber_state"] == "011"]
    assert fallback and night not in fallback[0]["path"]  # the previous night's master


def test_targets_without_a_usable_row_get_no_rv_and_a_reason(defect_run):
    res, out, defects = defect_run
    rv = errors(out, "classify")  # the first step that needs the star's row
    missing = defects["missing_target"]["filename"].split()
    for name in missing:
        assert "HD37124: it has no row in targets.csv" in rv[name]["message"]
    malformed = [e for e in rv.values() if "HD30495" in e["message"]]
    assert malformed and "malformed" in malformed[0]["message"] and "fields" in malformed[0]["message"]
    good = rundir.read_dataset(out / "rv").to_pylist()
    assert good and all(abs(r["rv"]) < 1e5 for r in good)


def test_logs_are_json_lines_naming_step_unit_and_the_failed_frame(defect_run):
    import json

    _, out, defects = defect_run
    records = [json.loads(line) for p in (out / "index" / rundir.LOGS).glob("*.jsonl")
               for line in p.read_text().splitlines()]
    assert records and all({"time", "level", "step", "unit", "message"} <= r.keys() for r in records)
    bad = defects["truncated"]["filename"]
    hit = [r for r in records if bad in r["message"]]
    assert hit and hit[0]["level"] == "WARNING" and hit[0]["step"] == "index"
