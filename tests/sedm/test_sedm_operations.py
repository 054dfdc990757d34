"""``astroflow sedm watch`` and ``astroflow sedm night``: the core's watcher and run on SEDM's
night, and the watcher's defaults from the pipeline's declaration (tonight's UT date, 2 h)."""

from __future__ import annotations

from pathlib import Path

from astroflow.cli import main
from astroflow.rundir import read_dataset

from conftest import copy_frames, raw_state


def _small_night(sim, out: Path) -> Path:
    """The slow-readout biases and one dome flat of the simulated night."""
    keep = [r["filename"] for r in sim.ifu() if r["imgtype"] == "bias" and r["adcspeed"] == 0.1]
    keep.append(next(r["filename"] for r in sim.ifu() if r["lamp"] == "dome"))
    return copy_frames(sim, out, keep)


def test_watch_links_the_nights_frames_and_stops_when_idle(sedm_sim, tmp_path, capsys):
    root = _small_night(sedm_sim, tmp_path / "raw")
    before = raw_state(root)
    date = sedm_sim.settings["date"]
    cfg = tmp_path / "sedm.toml"
    cfg.write_text(f'pipeline = "sedm"\n[run]\nworkers = 2\n[settings]\ndata_root = "{root}"\n')
    out = tmp_path / "run"
    rc = main(["sedm", "watch", "--config", str(cfg), "--out", str(out), "--partition", date, "--poll", "0.1",
               "--settle", "0.1", "--idle-stop", "0.5"])
    err = capsys.readouterr().err
    assert rc == 1  # the lone dome flat is too few (the night's deadline, 2024, has passed)
    assert "watch sedm" in err and "11 seen, 11 admitted (+11)" in err and "stopped (nothing changed" in err
    masters = {r["set"]: r for r in read_dataset(out / "master_bias").to_pylist()}
    assert masters["bias_0.1"]["status"] == "complete"
    assert len(list((out / "redux" / date).glob("ifu*.fits"))) == 11  # every IFU frame linked in
    assert raw_state(root) == before


def test_night_reruns_a_past_night_into_its_own_run(sedm_sim, tmp_path, monkeypatch, capsys):
    root = _small_night(sedm_sim, tmp_path / "raw")
    date = sedm_sim.settings["date"]
    monkeypatch.chdir(tmp_path)
    assert main(["sedm", "night"]) == 2  # the date is required
    rc = main(["sedm", "night", "--date", date, "--data-root", str(root), "--workers", "2", "--no-progress"])
    assert rc == 1 and (tmp_path / "runs" / f"sedm-{date}" / "redux" / date / "bias0.1.fits").is_file()
    assert "outputs: runs/sedm-" in capsys.readouterr().out


def test_the_watchers_defaults_are_the_pipelines(monkeypatch, tmp_path):
    """No --partition: tonight's UT date, unless the configuration names the night; no
    --idle-stop: the pipeline's 2 h."""
    import astroflow.watch as w
    from astroflow import arrivals

    seen = {}
    monkeypatch.setattr(w, "watch", lambda pipeline, cfg, out, opts: seen.update(
        date=cfg.settings["date"], idle=opts.idle_stop_s) or 0)
    cfg = tmp_path / "sedm.toml"
    cfg.write_text(f'pipeline = "sedm"\n[settings]\ndata_root = "{tmp_path}"\n')
    assert w.main(["sedm", "--config", str(cfg), "--out", str(tmp_path / "run")]) == 0
    assert seen == {"date": arrivals.resolve_partition("tonight"), "idle": 7200.0}
    cfg.write_text(cfg.read_text() + 'date = "20240612"\n')
    assert w.main(["sedm", "--config", str(cfg), "--out", str(tmp_path / "run"), "--idle-stop", "5"]) == 0
    assert seen == {"date": "20240612", "idle": 5.0}
