"""The calibration library on SQLite and PostgreSQL: registering, selecting per policy, the
explanations, marking bad and good, the event log and the uses of each calibration."""

from __future__ import annotations

import hashlib
import os
import pickle
from datetime import UTC, datetime, timedelta

import pytest

from astroflow.calib import (
    CalibrationError,
    CalibrationNotFound,
    CalibType,
    Library,
    NoCalibration,
    Provenance,
)
from astroflow.errors import ItemError

T0 = datetime(2019, 1, 5, 3, 0, tzinfo=UTC)
AMP = {"specid": "086", "amp": "LL"}
BIAS = CalibType("bias", match=("specid", "amp"))
DAY = timedelta(days=1)


def reg(lib, make_file, name, days, attributes=AMP, ctype="bias", **kw) -> int:
    """Register a new file ``name`` taken ``days`` from T0 (negative: before)."""
    return lib.register(ctype, make_file(name), T0 + days * DAY, attributes, **kw)


# register ------------------------------------------------------------------------------------


def test_register_stores_every_field(lib, make_file):
    path = make_file("mbias.fits")
    prov = Provenance(run="/runs/201901", step="master_bias", item="086LL", unit="shard-00002", code_version="0.1.0")
    cid = lib.register("bias", path, datetime(2019, 1, 4, 12, 0), {"specid": "086", "amp": "LL", "nframes": 11},
                       good_until=T0 + 30 * DAY, frames=["raw/b1.fits", "raw/b2.fits"], provenance=prov)
    for key in (cid, path, str(path)):
        cal = lib.get(key)
        assert cal.id == cid and cal.path == str(path) and cal.type == "bias"
    assert cal.dateobs == datetime(2019, 1, 4, 12, 0, tzinfo=UTC)  # naive input taken as UTC
    assert cal.dateobs.tzinfo is not None and cal.good_until == T0 + 30 * DAY and cal.good_after is None
    assert cal.attributes == {"specid": "086", "amp": "LL", "nframes": 11}
    assert cal.checksum == hashlib.sha256(path.read_bytes()).hexdigest()
    assert cal.frames == ("raw/b1.fits", "raw/b2.fits") and cal.provenance == prov
    assert cal.is_master and not cal.is_bad and cal.created <= datetime.now(UTC)


def test_register_is_an_upsert_by_path(lib, make_file):
    path = make_file("mbias.fits")
    first = lib.register("bias", path, T0, AMP)
    rev = lib.revision()
    assert lib.register("bias", path, T0, AMP) == first
    assert lib.revision() == rev, "an identical registration changes nothing"
    assert lib.register("bias", path, T0, {**AMP, "nframes": 9}) == first
    assert len(lib.list()) == 1 and lib.get(first).attributes["nframes"] == 9
    update = lib.events(first)[-1]
    assert update["action"] == "update" and "attributes" in update["reason"] and lib.revision() > rev


def test_new_content_clears_the_bad_flag(lib, make_file):
    path = make_file("mbias.fits")
    cid = lib.register("bias", path, T0, AMP)
    created = lib.get(cid).created
    lib.mark_bad(cid, "hot column")
    path.write_text("remade")
    assert lib.register("bias", path, T0, AMP) == cid
    cal = lib.get(cid)
    assert not cal.is_bad and cal.bad_reason is None and cal.created > created
    assert cal.checksum == hashlib.sha256(b"remade").hexdigest()
    event = lib.events(cid)[-1]
    assert event["action"] == "update" and "new content" in event["reason"] and "hot column" in event["reason"]


def test_register_errors_name_the_file(lib, tmp_path, make_file):
    with pytest.raises(CalibrationError, match="missing.fits"):
        lib.register("bias", tmp_path / "missing.fits", T0, AMP)
    with pytest.raises(CalibrationError, match="good_after"):
        lib.register("bias", make_file("x.fits"), T0, AMP, good_after=T0, good_until=T0 - DAY)
    with pytest.raises(CalibrationError, match="JSON"):
        lib.register("bias", make_file("y.fits"), T0, {"when": object()})
    with pytest.raises(CalibrationNotFound, match="id 999"):
        lib.get(999)


# select --------------------------------------------------------------------------------------


def test_nearest_in_time(lib, make_file):
    far = reg(lib, make_file, "a.fits", -3)
    near = reg(lib, make_file, "b.fits", -1.2)
    after = reg(lib, make_file, "c.fits", +2)
    choice = lib.select(BIAS, T0, AMP)
    assert choice.record.id == near and not choice.fallback
    assert choice.reason == "nearest in time, 1.2 d before; matching specid=086, amp=LL"
    assert [(c.id, why.split(":")[0]) for c, why in choice.rejected] == [(after, "farther in time"),
                                                                         (far, "farther in time")]
    assert lib.select(BIAS, T0 + 1.5 * DAY, AMP).record.id == after  # nearest may be later


def test_before_takes_only_older_ones(lib, make_file):
    older = reg(lib, make_file, "a.fits", -2)
    later = reg(lib, make_file, "b.fits", +0.1)
    choice = lib.select(CalibType("bias", match=("specid", "amp"), select="before"), T0, AMP)
    assert choice.record.id == older and choice.reason.startswith("latest before the observation, 2.0 d before")
    assert dict((c.id, why) for c, why in choice.rejected)[later].startswith("after the observation (2.4 h after)")


def test_lookback_and_fallback(lib, make_file, db_url):
    old = reg(lib, make_file, "old.fits", -40)
    reg(lib, make_file, "older.fits", -45)
    strict = CalibType("bias", match=("specid", "amp"), select="before", lookback_days=30)
    with pytest.raises(NoCalibration) as caught:
        lib.select(strict, T0, AMP)
    assert "older than the look-back of 30 d (40.0 d before)" in str(caught.value)
    lenient = CalibType("bias", match=("specid", "amp"), select="before", lookback_days=30, fallback=True)
    choice = lib.select(lenient, T0, AMP)
    assert choice.record.id == old and choice.fallback
    assert choice.reason.startswith("fallback: none within the look-back of 30 d; nearest earlier, 40.0 d before")
    assert choice.as_record()["fallback"] is True
    near = reg(lib, make_file, "new.fits", -3)
    again = lib.select(lenient, T0, AMP)
    assert again.record.id == near and not again.fallback  # a fallback is only taken when needed
    lib.record_uses([{**_use(choice, "f1"), "fallback": choice.fallback}])
    assert [u["fallback"] for u in lib.uses_of(old)] == [True]


def test_matching_attributes(lib, make_file):
    right = reg(lib, make_file, "a.fits", -5)
    wrong = reg(lib, make_file, "b.fits", -1, attributes={"specid": "087", "amp": "LL"})
    as_int = reg(lib, make_file, "c.fits", -2, attributes={"specid": 86, "amp": "LL"}, ctype="dark")
    choice = lib.select(BIAS, T0, AMP)
    assert choice.record.id == right
    assert wrong not in [c.id for c, _ in choice.rejected], "wrong attributes are not candidates when one matches"
    dark = CalibType("dark", match=("specid", "amp"))
    assert lib.select(dark, T0, {"specid": "86", "amp": "LL"}).record.id == as_int  # 86 matches "86"
    with pytest.raises(NoCalibration, match=r"wrong specid=86 \(wanted 086\)"):
        lib.select(dark, T0, AMP)  # ... but not "086"
    with pytest.raises(ItemError, match="has no amp"):
        lib.select(BIAS, T0, {"specid": "086"})


def test_validity_window(lib, make_file):
    expired = reg(lib, make_file, "a.fits", -1, good_until=T0 - 0.5 * DAY)
    not_yet = reg(lib, make_file, "b.fits", -0.5, good_after=T0 + DAY)
    valid = reg(lib, make_file, "c.fits", -4, good_after=T0 - 10 * DAY, good_until=T0 + DAY)
    choice = lib.select(BIAS, T0, AMP)
    assert choice.record.id == valid
    why = dict((c.id, w) for c, w in choice.rejected)
    assert why[expired].startswith("outside validity window (good until 2019-01-04T15:00:00+00:00)")
    assert why[not_yet].startswith("outside validity window (good after 2019-01-06T03:00:00+00:00)")


def test_bad_ones_are_skipped_until_marked_good(lib, make_file):
    near = reg(lib, make_file, "a.fits", -1)
    second = reg(lib, make_file, "b.fits", -2)
    lib.mark_bad(near, "hot column")
    choice = lib.select(BIAS, T0, AMP)
    assert choice.record.id == second
    assert dict((c.id, w) for c, w in choice.rejected)[near] == "marked bad: hot column"
    lib.mark_good(near)
    assert lib.select(BIAS, T0, AMP).record.id == near


def test_ties_go_to_the_newest_creation(lib, make_file):
    first = reg(lib, make_file, "a.fits", -1)
    second = reg(lib, make_file, "b.fits", -1)
    choice = lib.select(BIAS, T0, AMP)
    assert choice.record.id == second and choice.reason.endswith("newest of 2 equally near")
    assert choice.rejected[0][0].id == first and choice.rejected[0][1] == "equally near, created earlier"


def test_masters_only(lib, make_file):
    frame = reg(lib, make_file, "frame.fits", -1, is_master=False)
    with pytest.raises(NoCalibration, match="not a master"):
        lib.select(BIAS, T0, AMP)
    frames = CalibType("bias", match=("specid", "amp"), masters_only=False)
    assert lib.select(frames, T0, AMP).record.id == frame


def test_no_calibration_names_each_criterion(lib, make_file):
    reg(lib, make_file, "camera.fits", -1, attributes={"specid": "087", "amp": "LL"})
    bad = reg(lib, make_file, "bad.fits", -2)
    lib.mark_bad(bad, "light leak")
    reg(lib, make_file, "window.fits", -3, good_until=T0 - 2 * DAY)
    reg(lib, make_file, "after.fits", +1)
    reg(lib, make_file, "old.fits", -60)
    policy = CalibType("bias", match=("specid", "amp"), select="before", lookback_days=30)
    with pytest.raises(NoCalibration) as caught:
        lib.select(policy, T0, AMP)
    exc = caught.value
    assert isinstance(exc, ItemError)
    text = str(exc)
    assert text.startswith("no bias calibration for an observation at 2019-01-05T03:00:00+00:00 "
                           "with specid=086, amp=LL (only before the observation, look-back 30 d)")
    assert lib.url in text and "5 candidate(s):" in text
    for name, criterion in [("camera.fits", "wrong specid=087 (wanted 086)"), ("bad.fits", "marked bad: light leak"),
                            ("window.fits", "outside validity window"), ("after.fits", "after the observation"),
                            ("old.fits", "older than the look-back of 30 d")]:
        line = next(ln for ln in text.splitlines() if name in ln)
        assert criterion in line, line
    assert len(exc.rejected) == 5


def test_no_calibration_message_is_capped(lib, make_file):
    for i in range(15):
        reg(lib, make_file, f"cam{i}.fits", -i - 1, attributes={"specid": f"{100 + i}", "amp": "LL"})
    with pytest.raises(NoCalibration) as caught:
        lib.select(BIAS, T0, AMP)
    lines = str(caught.value).splitlines()
    assert len(lines) <= 11 and lines[-1].strip().startswith("... and")
    with pytest.raises(NoCalibration, match="no flat calibration is registered"):
        lib.select(CalibType("flat"), T0, {})


# marking, events, revision ---------------------------------------------------------------------


def test_mark_bad_mark_good_events_and_revision(lib, make_file):
    assert lib.revision() == 0
    cid = reg(lib, make_file, "a.fits", -1)
    r1 = lib.revision()
    assert r1 > 0
    cal = lib.mark_bad(cid, "hot column", user="ops")
    assert cal.is_bad and cal.bad_reason == "hot column"
    r2 = lib.revision()
    assert r2 > r1
    lib.mark_bad(cid, "hot column", user="ops")
    assert lib.revision() == r2, "marking it bad again for the same reason is no change"
    assert not lib.mark_good(cid, user="ops").is_bad
    lib.mark_good(cid)
    events = lib.events(cid)
    assert [e["action"] for e in events] == ["register", "mark-bad", "mark-good"]
    assert events[1]["user"] == "ops" and events[1]["reason"] == "hot column"
    assert events[2]["reason"] == "was bad: hot column"
    assert lib.revision() == events[-1]["id"]
    with pytest.raises(CalibrationError, match="reason"):
        lib.mark_bad(cid, " ")
    with pytest.raises(CalibrationNotFound):
        lib.mark_bad(str(make_file("other.fits")), "x")


# uses ------------------------------------------------------------------------------------------


def _use(choice, item, step="bias_sub", run="/runs/r1", unit="shard-00000") -> dict:
    rec = choice.as_record()
    return {"calibration_id": rec["id"], "run": run, "step": step, "item": item, "unit": unit,
            "policy": rec["policy"], "reason": rec["reason"], "fallback": rec["fallback"]}


def test_uses_trace_a_calibration_to_its_items(lib, make_file):
    a = reg(lib, make_file, "a.fits", -1)
    b = reg(lib, make_file, "b.fits", -1, attributes={"specid": "086", "amp": "LU"})
    ca = lib.select(BIAS, T0, AMP)
    cb = lib.select(BIAS, T0, {"specid": "086", "amp": "LU"})
    assert lib.record_uses([_use(ca, "f1"), _use(ca, "f2"), _use(cb, "f3"), _use(ca, "f1", run="/runs/r2")]) == 4
    uses = lib.uses_of(a)
    assert [(u["run"], u["step"], u["item"]) for u in uses] == [("/runs/r1", "bias_sub", "f1"),
                                                                ("/runs/r1", "bias_sub", "f2"),
                                                                ("/runs/r2", "bias_sub", "f1")]
    assert uses[0]["reason"] == ca.reason and uses[0]["policy"] == BIAS.as_record() and uses[0]["unit"] == "shard-00000"
    assert [u["item"] for u in lib.uses_of(b)] == ["f3"]
    # a re-run item's uses replace its earlier ones: f2 now used b, not a
    lib.record_uses([_use(cb, "f2", unit="r001-00000")])
    assert [u["item"] for u in lib.uses_of(a)] == ["f1", "f1"]
    assert [(u["item"], u["unit"]) for u in lib.uses_of(b)] == [("f2", "r001-00000"), ("f3", "shard-00000")]
    with pytest.raises(CalibrationError, match="999"):
        lib.record_uses([{**_use(ca, "f9"), "calibration_id": 999}])
    with pytest.raises(CalibrationError, match="lacks item"):
        lib.record_uses([{**_use(ca, "f9"), "item": ""}])


def test_list_filters(lib, make_file):
    a = reg(lib, make_file, "a.fits", -1)
    b = reg(lib, make_file, "b.fits", -2, attributes={"specid": 87, "amp": "LL"})
    f = reg(lib, make_file, "f.fits", -3, ctype="flat")
    lib.mark_bad(a, "x")
    assert [c.id for c in lib.list()] == [b, a, f]  # by type, then time
    assert [c.id for c in lib.list("bias")] == [b, a]
    assert [c.id for c in lib.list(bad=True)] == [a]
    assert [c.id for c in lib.list(bad=False)] == [b, f]
    assert [c.id for c in lib.list(specid="87")] == [b]
    assert [c.id for c in lib.list("bias", amp="LL", specid="086")] == [a]


# URLs, processes -------------------------------------------------------------------------------


def test_for_run_chooses_the_database(tmp_path, monkeypatch):
    monkeypatch.delenv("ASTROFLOW_DB_URL", raising=False)
    run = tmp_path / "run"
    run.mkdir()
    assert Library.for_run(run).url == f"sqlite:///{run.resolve()}/calibrations.db"
    monkeypatch.setenv("ASTROFLOW_DB_URL", f"sqlite:///{tmp_path}/site.db")
    assert Library.for_run(run).url == f"sqlite:///{tmp_path}/site.db"
    assert Library.for_run(run, f"sqlite:///{tmp_path}/mine.db").url == f"sqlite:///{tmp_path}/mine.db"
    assert "***" in Library.for_run(run, "postgresql://u:secret@db.example.org/calib").url


def test_sqlite_pragmas(tmp_path):
    lib = Library(f"sqlite:///{tmp_path}/c.db")
    lib.revision()
    with lib._connect().connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 10_000


def test_url_errors_name_the_url(tmp_path):
    with pytest.raises(CalibrationError, match="unsupported database"):
        Library("mysql://u:p@h/db")
    with pytest.raises(CalibrationError, match="not a database URL"):
        Library("calibrations.db")
    with pytest.raises(CalibrationError, match="database file"):
        Library("sqlite://")
    with pytest.raises(CalibrationError, match="does not exist"):
        Library(f"sqlite:///{tmp_path}/nowhere/c.db").revision()
    with pytest.raises(CalibrationError, match=r"127\.0\.0\.1:1/calib"):
        Library("postgresql+psycopg://u:secret@127.0.0.1:1/calib").revision()


def test_pickled_and_forked_libraries_work(lib, make_file):
    cid = reg(lib, make_file, "a.fits", -1)
    copy = pickle.loads(pickle.dumps(lib))
    assert copy.get(cid).path == lib.get(cid).path
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child uses the parent's object, whose engine has open connections
        try:
            os.write(write, str(lib.select(BIAS, T0, AMP).record.id).encode())
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    assert os.read(read, 100).decode() == str(cid)
    assert lib.revision() > 0  # and the parent's connections still work
