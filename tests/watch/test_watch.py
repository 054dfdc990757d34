"""``astroflow watch`` on the toy night: slow writers, a corrupt frame, idle stop, kill -9 and restart.

Each frame is one unit of ``measure`` (shard size 1), and ``measure`` appends one line per frame
it processes to ``calls.log``: "processed once" is checked there, in the manifests and in the
rows per key.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from astroflow import argo, arrivals, cli, config, rundir
from astroflow.registry import get_pipeline
from astroflow.watch import WatchOptions, main, watch

NIGHT = "20250101"


def frame(value: float, shape=(64, 64)) -> bytes:
    buf = io.BytesIO()
    fits.PrimaryHDU(np.full(shape, value, dtype="f4")).writeto(buf)
    return buf.getvalue()


@pytest.fixture
def night(tmp_path):
    """The raw folder of one night, a run directory beside it, and the run's configuration file."""
    raw = tmp_path / "raw" / NIGHT / "raw"
    raw.mkdir(parents=True)
    cfg = tmp_path / "run.toml"
    cfg.write_text(
        'pipeline = "nightly"\n[run]\nworkers = 1\n[settings]\n'
        f'raw_root = "{tmp_path / "raw"}"\nnight = "{NIGHT}"\ncalls_log = "{tmp_path / "calls.log"}"\n'
    )
    return raw, tmp_path / "run", cfg


def calls(run: Path) -> Counter:
    log = run.parent / "calls.log"
    return Counter(line.split()[0] for line in log.read_text().splitlines()) if log.exists() else Counter()


def measured(run: Path) -> Counter:
    return Counter(rundir.read_dataset(run / "measure").column("frame").to_pylist())


def manifests(run: Path, step: str = "measure") -> list[str]:
    return sorted(p.name for p in (run / step / rundir.MANIFESTS).glob("*.json"))


def resolved(cfg: Path):
    pipeline = get_pipeline("nightly")
    return pipeline, config.resolve(pipeline, config.read_config_file(cfg))


def run_watch(cfg: Path, run: Path, opts: WatchOptions) -> tuple[int, list[str]]:
    pipeline, rc = resolved(cfg)
    out = io.StringIO()
    code = watch(pipeline, rc, run, opts, out=out)
    return code, out.getvalue().splitlines()


# --- in-process: writers that take their time ---------------------------------------------------------
def test_frames_written_slowly_are_each_admitted_and_processed_once(night):
    raw, run, cfg = night
    bodies = {f"f{i}.fits": frame(i) for i in range(3)}

    def writer():
        (raw / "f0.fits").write_bytes(bodies["f0.fits"])
        with open(raw / "f1.fits", "wb") as fh:  # in chunks, faster than the settling time
            for k in range(4):
                fh.write(bodies["f1.fits"][k * len(bodies["f1.fits"]) // 4:(k + 1) * len(bodies["f1.fits"]) // 4])
                fh.flush()
                time.sleep(0.1)
        half = len(bodies["f2.fits"]) // 2
        (raw / "f2.fits").write_bytes(bodies["f2.fits"][:half])  # then the writer stalls for many polls
        time.sleep(0.8)
        with open(raw / "f2.fits", "ab") as fh:
            fh.write(bodies["f2.fits"][half:])

    thread = threading.Thread(target=writer)
    thread.start()
    code, lines = run_watch(cfg, run, WatchOptions(poll_s=0.05, settle_s=0.2, max_wait_s=30, idle_stop_s=0.6))
    thread.join()
    assert code == 0, lines
    assert calls(run) == {"f0.fits": 1, "f1.fits": 1, "f2.fits": 1}
    assert measured(run) == {"f0.fits": 1, "f1.fits": 1, "f2.fits": 1}
    means = {r["frame"]: r["mean"] for r in rundir.read_dataset(run / "measure").to_pylist()}
    assert means == {"f0.fits": 0.0, "f1.fits": 1.0, "f2.fits": 2.0}  # whole frames were read
    assert manifests(run) == ["shard-00000.json", "shard-00001.json", "shard-00002.json"]
    assert rundir.read_dataset(run / "summary").to_pylist() == [{"night": NIGHT, "frames": 3}]
    assert {r["incomplete"] for r in arrivals.records(run)} == {None}
    stalled = [ln for ln in lines if f"waiting for {NIGHT}/raw/f2.fits: HDU 0: header says" in ln]
    assert len(stalled) >= 3, "the half-written frame waited for several polls, with the FITS reason"
    assert all(" seen, " in ln and " admitted (+" in ln and " unit(s) run, " in ln for ln in lines[:-1])
    assert "stopped (nothing changed for" in lines[-1] and "3 file(s) admitted" in lines[-1]


@pytest.mark.filterwarnings("ignore:File may have been truncated")  # astropy, reading the cut frame
def test_a_frame_that_never_completes_is_admitted_after_the_wait_and_its_error_recorded(night):
    raw, run, cfg = night
    (raw / "good.fits").write_bytes(frame(5))
    (raw / "cut.fits").write_bytes(frame(6)[:4000])
    code, lines = run_watch(cfg, run, WatchOptions(poll_s=0.05, settle_s=0.1, max_wait_s=0.4, idle_stop_s=0.3))
    assert code == 1, lines
    rec = {Path(r["path"]).name: r["incomplete"] for r in arrivals.records(run)}
    assert rec["good.fits"] is None and rec["cut.fits"].startswith("HDU 0: header says")
    assert rundir.item_outcomes(run / "measure") == {"good.fits": "ok", "cut.fits": "failed"}
    (error,) = rundir.read_errors(run / "measure")
    assert error["item"] == "cut.fits" and "cut.fits" in (error["file"] or error["message"])
    assert "1 failed item(s)" in lines[-1]


def test_a_deadline_runs_the_night_again_and_holds_off_the_idle_stop(night):
    """A step that asked whether the deadline had passed (``ctx.past``) is redone when it passes,
    with nothing new arrived; the watcher does not stop idle before it."""
    raw, run, cfg = night
    (raw / "f1.fits").write_bytes(frame(1.0))
    deadline = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1.5)
    cfg.write_text(cfg.read_text() + f'deadline = "{deadline.isoformat()}"\n')
    t0 = time.monotonic()
    code, lines = run_watch(cfg, run, WatchOptions(poll_s=0.05, settle_s=0.05, idle_stop_s=0.2))
    assert code == 0 and dt.datetime.now(dt.UTC) >= deadline and time.monotonic() - t0 < 30
    assert any("next deadline" in line for line in lines)  # while it waits for it
    assert rundir.read_dataset(run / "summary").to_pylist()[0]["closed"] is True
    assert calls(run) == {"f1.fits": 1}  # the frame is not measured again
    ran = [int(re.search(r"(\d+) unit\(s\) run", line).group(1)) for line in lines[:-1]]
    assert sum(1 for n in ran if n) == 2  # the frame's arrival, then the deadline


def test_a_replayed_clock(monkeypatch):
    from astroflow import deps

    monkeypatch.setenv(deps.CLOCK_ENV, "2024-06-12T03:00:00+00:00")
    assert deps.now_utc() == dt.datetime(2024, 6, 12, 3, tzinfo=dt.UTC)
    monkeypatch.setenv(deps.CLOCK_ENV, "2024-06-12T03:00:00")
    with pytest.raises(Exception, match="with its zone"):
        deps.now_utc()


def test_idle_stop_with_its_final_status_line(night):
    _, run, cfg = night
    t0 = time.monotonic()
    code, lines = run_watch(cfg, run, WatchOptions(poll_s=0.05, settle_s=0.1, idle_stop_s=0.3))
    assert code == 0 and 0.3 <= time.monotonic() - t0 < 5
    assert lines[0].startswith("watch nightly ") and "0 seen, 0 admitted (+0), 0 waiting" in lines[0]
    assert "stopped (nothing changed for" in lines[-1] and "0 file(s) admitted, 0 unit(s) run" in lines[-1]
    assert arrivals.admitted(run) == set()  # a watched run, even before its first frame


def test_the_command_line_refuses_a_pipeline_without_arrivals_and_a_missing_configuration(night, tmp_path, capsys,
                                                                                         monkeypatch):
    _, run, cfg = night
    monkeypatch.setenv("ASTROFLOW_PIPELINES", "nightly=night_pipeline:NIGHTLY,plain=night_pipeline:PLAIN")
    assert main(["nightly", "--out", str(run)]) == 2
    assert "is not a run yet: give its configuration with --config" in capsys.readouterr().err
    plain = tmp_path / "plain.toml"
    plain.write_text('pipeline = "plain"\n')
    assert main(["plain", "--config", str(plain), "--out", str(tmp_path / "p")]) == 2
    assert "pipeline plain declares no arrivals" in capsys.readouterr().err
    assert main(["plain", "--config", str(plain), "--out", str(tmp_path / "p"), "--partition", "last-night"]) == 2
    assert "pipeline plain is not partitioned" in capsys.readouterr().err
    assert main(["nightly", "--config", str(cfg), "--out", str(run), "--poll", "0"]) == 2
    assert "poll_s" in capsys.readouterr().err


def test_astroflow_watch_with_partition_last_night_watches_that_night(night):
    _, run, cfg = night
    cfg.write_text(cfg.read_text().replace(f'night = "{NIGHT}"\n', ""))
    assert cli.main(["watch", "nightly", "--config", str(cfg), "--out", str(run), "--partition", "last-night",
                     "--timezone", "America/Santiago", "--restart-hour", "16", "--poll", "0.05", "--idle-stop", "0.1"]) == 0
    night_of_run = config.load(run).settings["night"]
    assert len(night_of_run) == 8 and night_of_run == arrivals.resolve_partition("last-night", "America/Santiago", 16)


# --- the init task of the Argo template, as a pod runs it ---------------------------------------------------
def init_argv(run: Path, cfg: Path, **params: str) -> list[str]:
    """``astroflow init`` exactly as the compiled template's init task calls it, parameters filled in."""
    values = {**{k: v for k, (v, _) in argo.PARAMETERS.items()}, **params}
    argv = []
    for arg in argo.init_command(get_pipeline("nightly"))[1:]:
        arg = arg.replace(argo.RUN_DIR, str(run)).replace(f"{argo.CONFIG_MOUNT}/run.toml", str(cfg))
        argv.append(re.sub(r"\{\{workflow\.parameters\.([a-z-]+)\}\}", lambda m: values[m.group(1)], arg))
    return argv


def test_init_task_with_the_template_defaults_starts_an_unwatched_run(night):
    _, run, cfg = night
    assert cli.main(init_argv(run, cfg)) == 0  # partition "" and arrival "": neither
    assert config.load(run).settings["night"] == NIGHT and arrivals.admitted(run) is None


def test_init_task_resolves_last_night_in_the_site_clock(night):
    _, run, cfg = night
    assert cli.main(init_argv(run, cfg, partition="last-night", timezone="Australia/Sydney", **{"restart-hour": "9"})) == 0
    assert config.load(run).settings["night"] == arrivals.resolve_partition("last-night", "Australia/Sydney", 9)


def test_init_task_admits_an_arrival_once_it_is_complete(night):
    raw, run, cfg = night
    body = frame(4, shape=(128, 128))
    path = raw / "f4.fits"
    path.write_bytes(body[: len(body) // 3])

    def finish():
        time.sleep(1.0)
        path.write_bytes(body)

    writer = threading.Thread(target=finish)
    writer.start()
    assert cli.main(init_argv(run, cfg, partition=NIGHT, arrival=str(path))) == 0
    writer.join()
    (record,) = arrivals.records(run)
    assert record["path"] == str(path) and record["size"] == len(body) and record["incomplete"] is None


def test_init_task_sweeps_a_folder_and_refuses_a_file_it_does_not_watch(night, capsys):
    raw, run, cfg = night
    (raw / "a.fits").write_bytes(frame(1))
    (raw / "b.fits").write_bytes(frame(2))
    assert cli.main(init_argv(run, cfg, partition=NIGHT, arrival=str(raw.parent.parent))) == 0
    assert arrivals.admitted(run) == {str(raw / "a.fits"), str(raw / "b.fits")}
    other = raw.parent.parent / "notes.txt"
    other.write_text("x")
    assert cli.main(init_argv(run, cfg, partition=NIGHT, arrival=str(other))) == 2
    assert "not a file this pipeline watches" in capsys.readouterr().err


# --- a real watcher process: kill -9 and restart -------------------------------------------------------------
def start_watcher(cfg: Path, run: Path, log: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "astroflow.watch", "nightly", "--config", str(cfg), "--out", str(run),
         "--poll", "0.1", "--settle", "0.2", *extra],
        stdout=subprocess.DEVNULL, stderr=open(log, "w"), env=os.environ.copy(),
    )


def wait_for(condition, timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_kill_9_and_restart_process_nothing_twice(night, capsys):
    raw, run, cfg = night
    log = run.parent / "watch-1.log"
    (raw / "f0.fits").write_bytes(frame(0))
    (raw / "f1.fits").write_bytes(frame(1))
    first = start_watcher(cfg, run, log, "--forever")
    try:
        wait_for(lambda: sum(calls(run).values()) == 2, what="the first two frames")
        half = frame(2)
        (raw / "f2.fits").write_bytes(half[: len(half) // 2])
        wait_for(lambda: f"waiting for {NIGHT}/raw/f2.fits: HDU 0" in log.read_text(), what="the stalled frame")
        # a second writer of the same run is refused, naming the first
        assert main(["nightly", "--config", str(cfg), "--out", str(run), "--idle-stop", "1"]) == 4
        assert f"pid {first.pid}" in capsys.readouterr().err
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    assert first.returncode == -signal.SIGKILL
    (raw / "f2.fits").write_bytes(half)
    (raw / "f3.fits").write_bytes(frame(3))
    log2 = run.parent / "watch-2.log"
    second = start_watcher(cfg, run, log2, "--idle-stop", "0.5")
    assert second.wait(60) == 0, log2.read_text()
    assert calls(run) == {"f0.fits": 1, "f1.fits": 1, "f2.fits": 1, "f3.fits": 1}
    assert measured(run) == {"f0.fits": 1, "f1.fits": 1, "f2.fits": 1, "f3.fits": 1}
    assert manifests(run) == [f"shard-{i:05d}.json" for i in range(4)]
    assert rundir.read_dataset(run / "summary").to_pylist() == [{"night": NIGHT, "frames": 4}]
    final = log2.read_text().splitlines()[-1]
    assert "stopped (nothing changed for" in final and "2 file(s) admitted" in final and "0 failed item(s)" in final
