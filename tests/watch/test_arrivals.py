"""Arrivals: the FITS completeness check, settling, admission, catch-up sweeps and night names."""

from __future__ import annotations

import datetime as dt
import io
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from astroflow import arrivals
from astroflow.arrivals import Arrivals, Settling, fits_complete, last_night
from astroflow.errors import AstroflowError

UTC = dt.UTC


def fits_bytes(hdus) -> bytes:
    buf = io.BytesIO()
    fits.HDUList(hdus).writeto(buf)
    return buf.getvalue()


def image(value: float = 1.0, shape=(40, 30)) -> bytes:
    return fits_bytes([fits.PrimaryHDU(np.full(shape, value, dtype="f4"))])


def multi_extension() -> bytes:
    primary = fits.PrimaryHDU()
    primary.header["NEXTEND"] = 2
    table = fits.BinTableHDU.from_columns(
        [fits.Column(name="x", format="PJ()", array=np.array([np.arange(5), np.arange(3)], dtype=object))]
    )
    return fits_bytes([primary, fits.ImageHDU(np.ones((50, 50), dtype="f4")), table])


def fpacked() -> bytes:
    data = np.random.default_rng(1).normal(size=(200, 200)).astype("f4")
    return fits_bytes([fits.PrimaryHDU(), fits.CompImageHDU(data)])


# --- the completeness check ----------------------------------------------------------------------------
@pytest.mark.parametrize("make", [image, multi_extension, fpacked], ids=["image", "extensions", "fpack"])
def test_whole_files_pass_and_every_truncation_fails(tmp_path, make):
    data = make()
    path = tmp_path / "f.fits"
    path.write_bytes(data)
    assert fits_complete(path) is None
    header_end = data.index(b"END" + b" " * 77) + 80
    cuts = {1, 79, 2000, header_end, len(data) // 2, len(data) - 2881}
    for cut in sorted(c for c in cuts if 0 < c < len(data) - 2880):
        path.write_bytes(data[:cut])
        reason = fits_complete(path)
        assert reason and "HDU" in reason or "NEXTEND" in (reason or ""), (cut, reason)


def test_reasons_name_the_problem(tmp_path):
    p = tmp_path / "f.fits"
    data = image(shape=(100, 100))
    p.write_bytes(data[:2880 + 1000])
    assert fits_complete(p) == "HDU 0: header says 40000 bytes of data; the file ends 39000 bytes short"
    p.write_bytes(data[:500])
    assert fits_complete(p).startswith("HDU 0: header ends before its END card")
    p.write_bytes(b"not a fits file at all" * 200)
    assert "not a FITS header" in fits_complete(p)
    p.write_bytes(b"")
    assert fits_complete(p) == "empty file"
    assert fits_complete(tmp_path / "missing.fits").startswith("cannot read")
    p.write_bytes(multi_extension()[:2880])  # the primary header alone: a writer between HDUs
    assert fits_complete(p) == "NEXTEND = 2 but the file holds 0 extension(s) so far"


# --- the declaration ---------------------------------------------------------------------------------------
def test_patterns_name_settings_and_skip_hidden_files(tmp_path):
    decl = Arrivals("raw_root", ("{night}/raw/*.fits", "{night}/cal/**/*.fits"))
    settings = {"raw_root": str(tmp_path), "night": "20250101"}
    for rel in ("20250101/raw/a.fits", "20250101/raw/.a.fits.tmp", "20250101/raw/.b.fits", "20250102/raw/c.fits",
                "20250101/cal/x/y/d.fits", "20250101/raw/e.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    found = [Path(p).relative_to(tmp_path).as_posix() for p in decl.scan(settings)]
    assert found == ["20250101/cal/x/y/d.fits", "20250101/raw/a.fits"]
    for rel in found:
        assert decl.matches(tmp_path / rel, settings)
    for rel in ("20250101/raw/.b.fits", "20250102/raw/c.fits", "20250101/raw/e.txt", "../elsewhere/raw/a.fits"):
        assert not decl.matches(tmp_path / rel, settings), rel
    assert decl.scan({"raw_root": str(tmp_path / "not-yet"), "night": "x"}) == {}
    with pytest.raises(AstroflowError, match="'nite', which is no settings field"):
        Arrivals("raw_root", ("{nite}/*.fits",)).globs(settings)
    with pytest.raises(AstroflowError, match="no field 'data_root'"):
        Arrivals("data_root", ("*.fits",)).root(settings)
    with pytest.raises(AstroflowError, match="relative"):
        Arrivals("raw_root", ("/abs/*.fits",))
    with pytest.raises(AstroflowError, match="tuple of patterns"):
        Arrivals("raw_root", "*.fits")
    logs = Arrivals("raw_root", ("{night}/raw/*.fits", "{night}/*.log"), growing=("{night}/*.log",))
    assert logs.grows(tmp_path / "20250101" / "night.log", settings)
    assert not logs.grows(tmp_path / "20250101" / "raw" / "a.fits", settings)
    assert not decl.grows(tmp_path / "20250101" / "raw" / "a.fits", settings)
    with pytest.raises(AstroflowError, match="growing"):
        Arrivals("raw_root", ("*.fits",), growing=("*.log",))


# --- settling (no I/O: a fake clock and a fake check) -------------------------------------------------------
def test_a_file_is_ready_once_stable_for_the_settling_time_and_complete():
    verdicts = {"a": "HDU 0: short", "b": None}
    s = Settling(lambda p: verdicts[p.name], settle_s=5, max_wait_s=100)
    obs = s.observe({"a": (10, 1), "b": (20, 1)}, now=0)
    assert obs.ready == [] and set(obs.waiting) == {"a", "b"} and obs.changed
    obs = s.observe({"a": (10, 1), "b": (20, 1)}, now=4.9)
    assert obs.ready == [] and not obs.changed
    obs = s.observe({"a": (10, 1), "b": (20, 1)}, now=5)
    assert obs.ready == ["b"] and obs.waiting == {"a": "HDU 0: short"}
    obs = s.observe({"a": (30, 2)}, now=6)  # a grows: settling starts again
    assert obs.changed and "settling" in obs.waiting["a"]
    verdicts["a"] = None
    assert s.observe({"a": (30, 2)}, now=10.9).ready == []
    assert s.observe({"a": (30, 2)}, now=11).ready == ["a"]


def test_a_file_that_stays_incomplete_is_admitted_after_the_maximum_wait_with_its_reason():
    s = Settling(lambda p: "HDU 1: header ends before its END card", settle_s=1, max_wait_s=30)
    s.observe({"x": (5, 1)}, now=0)
    assert s.observe({"x": (5, 1)}, now=29).ready == []
    obs = s.observe({"x": (5, 1)}, now=30)
    assert obs.ready == ["x"] and obs.incomplete == {"x": "HDU 1: header ends before its END card"}


def test_a_file_still_growing_is_never_admitted_however_long_it_takes():
    s = Settling(lambda p: None, settle_s=2, max_wait_s=3)
    for t in range(20):
        assert s.observe({"log": (t, t)}, now=t).ready == []


# --- admission -----------------------------------------------------------------------------------------------
def test_admission_records_are_whole_files_one_per_admitted_path(tmp_path):
    run = tmp_path / "run"
    assert arrivals.admitted(run) is None  # not a watched run: every file counts
    arrivals.mark_watched(run)
    assert arrivals.admitted(run) == set()
    f = tmp_path / "a.fits"
    f.write_bytes(image())
    assert arrivals.admit(run, [f, tmp_path / "b.fits"], {str(tmp_path / "b.fits"): "HDU 0: short"}) == [
        str(f), str(tmp_path / "b.fits")]
    assert arrivals.admit(run, [f]) == []  # once only
    assert arrivals.admitted(run) == {str(f), str(tmp_path / "b.fits")}
    recs = {r["path"]: r for r in arrivals.records(run)}
    assert recs[str(f)]["size"] == f.stat().st_size and recs[str(f)]["incomplete"] is None
    assert recs[str(tmp_path / "b.fits")]["incomplete"] == "HDU 0: short"
    folder = run / arrivals.ARRIVALS_DIR
    assert len(list(folder.glob("*.json"))) == 2 and not [p for p in folder.iterdir() if p.name.startswith(".")]
    (folder / "broken.json").write_text("{")
    with pytest.raises(AstroflowError, match="broken.json: unreadable admission record"):
        arrivals.admitted(run)


def test_receive_waits_for_a_half_written_file(tmp_path):
    """``astroflow init --arrival PATH``: an event names a frame still being written."""
    decl = Arrivals("raw_root", ("raw/*.fits",))
    settings = {"raw_root": str(tmp_path / "data")}
    path = tmp_path / "data" / "raw" / "f1.fits"
    path.parent.mkdir(parents=True)
    data = image(shape=(200, 200))
    path.write_bytes(data[: len(data) // 2])

    def finish():
        time.sleep(0.4)
        path.write_bytes(data)

    writer = threading.Thread(target=finish)
    writer.start()
    t0 = time.monotonic()
    obs = arrivals.receive(tmp_path / "run", decl, settings, path, settle_s=0.1, max_wait_s=20, poll_s=0.05)
    writer.join()
    assert time.monotonic() - t0 >= 0.4
    assert obs.ready == [str(path)] and obs.incomplete == {}
    assert arrivals.admitted(tmp_path / "run") == {str(path)}
    assert arrivals.records(tmp_path / "run")[0]["size"] == len(data)


def test_receive_refuses_what_the_pipeline_does_not_watch_and_sweeps_a_folder(tmp_path):
    decl = Arrivals("raw_root", ("*/raw/*.fits",))
    root = tmp_path / "data"
    settings = {"raw_root": str(root)}
    for name, body in (("n1/raw/a.fits", image()), ("n1/raw/b.fits", image()[:3000]), ("n2/raw/c.fits", image()),
                       ("n1/notes.txt", b"x")):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(body)
    run = tmp_path / "run"
    with pytest.raises(AstroflowError, match=r"notes.txt: not a file this pipeline watches .*\*/raw/\*.fits"):
        arrivals.receive(run, decl, settings, root / "n1" / "notes.txt")
    with pytest.raises(AstroflowError, match="no such file"):
        arrivals.receive(run, decl, settings, root / "n1" / "raw" / "zzz.fits")
    obs = arrivals.receive(run, decl, settings, root / "n1", settle_s=0.1, poll_s=0.05)  # a catch-up sweep
    assert obs.ready == [str(root / "n1/raw/a.fits")]
    assert "ends" in obs.waiting[str(root / "n1/raw/b.fits")]  # left for its own event or the next sweep
    assert arrivals.admitted(run) == {str(root / "n1/raw/a.fits")}


# --- nights ----------------------------------------------------------------------------------------------------
def utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


NIGHTS = [
    # (now, time zone, restart hour, last night), the local time in the comment
    (utc(2025, 6, 15, 12, 0), "UTC", 12, "20250614"),
    (utc(2025, 6, 15, 11, 59), "UTC", 12, "20250613"),
    (utc(2025, 3, 10, 20, 0), "America/Santiago", 16, "20250309"),  # 17:00 -03
    (utc(2025, 3, 10, 18, 59), "America/Santiago", 16, "20250308"),  # 15:59 -03
    # local midnight: a night keeps its name from dusk to dawn
    (utc(2025, 3, 11, 2, 59), "America/Santiago", 16, "20250309"),  # 23:59 on the 10th
    (utc(2025, 3, 11, 3, 1), "America/Santiago", 16, "20250309"),  # 00:01 on the 11th
    # Chile leaves summer time at 00:00 on 6 April 2025: day 20250405 lasts 25 hours
    (utc(2025, 4, 6, 19, 30), "America/Santiago", 16, "20250404"),  # 15:30 -04 (16:30 at the old offset)
    (utc(2025, 4, 6, 20, 0), "America/Santiago", 16, "20250405"),  # 16:00 -04
    # Chile enters summer time at 00:00 on 7 September 2025: day 20250906 lasts 23 hours
    (utc(2025, 9, 7, 18, 59), "America/Santiago", 16, "20250905"),  # 15:59 -03
    (utc(2025, 9, 7, 19, 0), "America/Santiago", 16, "20250906"),  # 16:00 -03 (15:00 at the old offset)
    # Palomar: Pacific time leaves daylight saving at 02:00 on 2 November 2025
    (utc(2025, 11, 2, 19, 59), "America/Los_Angeles", 12, "20251031"),  # 11:59 PST
    (utc(2025, 11, 2, 20, 0), "America/Los_Angeles", 12, "20251101"),  # 12:00 PST
    # MSSL: British summer time starts at 01:00 UTC on 30 March 2025
    (utc(2025, 3, 30, 10, 59), "Europe/London", 12, "20250328"),  # 11:59 BST
    (utc(2025, 3, 30, 11, 0), "Europe/London", 12, "20250329"),  # 12:00 BST
    # Siding Spring, east of Greenwich: the UTC date is already the next year
    (utc(2025, 1, 1, 0, 30), "Australia/Sydney", 12, "20241230"),  # 11:30 AEDT
    (utc(2025, 1, 1, 1, 0), "Australia/Sydney", 12, "20241231"),  # 12:00 AEDT
    # a roll-over at local midnight, no daylight saving
    (utc(2025, 7, 1, 10, 0), "Pacific/Honolulu", 0, "20250630"),  # 00:00 HST
    (utc(2025, 7, 1, 9, 59), "Pacific/Honolulu", 0, "20250629"),  # 23:59 HST
]


@pytest.mark.parametrize("now, zone, hour, night", NIGHTS, ids=[f"{z}-{n.isoformat()}" for n, z, _, _ in NIGHTS])
def test_last_night(now, zone, hour, night):
    assert last_night(now, zone, hour) == night
    assert arrivals.resolve_partition("last-night", zone, hour, now_utc=now) == night


def test_last_night_errors_and_fixed_partitions():
    with pytest.raises(ValueError, match="must carry a time zone"):
        last_night(dt.datetime(2025, 1, 1, 12), "UTC", 12)
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        last_night(utc(2025, 1, 1), "Mars/Olympus", 12)
    with pytest.raises(ValueError, match="restart hour 24"):
        last_night(utc(2025, 1, 1), "UTC", 24)
    assert arrivals.resolve_partition("20250101") == "20250101"
    assert arrivals.resolve_partition("session-7") == "session-7"


def test_tonight_is_the_date_now_in_the_zone():
    """SEDM names a night by its UT date: just after the UT date change it is already tonight's."""
    assert arrivals.resolve_partition("tonight", "UTC", now_utc=utc(2024, 6, 12, 0, 1)) == "20240612"
    assert arrivals.resolve_partition("tonight", "UTC", now_utc=utc(2024, 6, 11, 23, 59)) == "20240611"
    assert arrivals.resolve_partition("tonight", "America/Los_Angeles", now_utc=utc(2024, 6, 12, 0, 1)) == "20240611"
    with pytest.raises(ValueError, match="unknown time zone"):
        arrivals.tonight(utc(2025, 1, 1), "Mars/Olympus")
