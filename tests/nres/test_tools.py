"""The NRES runbook's commands on the sample night: stack, post, nightly, new-site, targets, db, trace0."""

from __future__ import annotations

import json
from pathlib import Path

from astroflow import rundir
from astroflow.calib import Library
from astroflow.cli import main as astroflow
from steps.nres.db import MIGRATIONS

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT.parent / "shared" / "samples" / "nres-night"
SITE = ["--site", "cpt", "--camera", "fl13", "--nres-instrument", "nres03"]


def test_stack_runs_only_up_to_the_type_asked(tmp_path):
    out = tmp_path / "run"
    rc = astroflow(["nres", "stack", *SITE, "--calibration-type", "BIAS", "--start", "2024-01-15T08:00:00",
                    "--nights", "1", "--data-root", str(SAMPLE), "--out", str(out), "--workers", "1", "--no-progress"])
    assert rc == 0
    assert len(rundir.read_dataset(out / "stack_bias")) == 1
    assert not (out / "reduce_dark").exists()


def test_post_admits_the_frames_and_reduces_them(tmp_path):
    out = tmp_path / "run"
    raw = SAMPLE / "cpt" / "nres03" / "20240115" / "raw"
    rc = astroflow(["nres", "post", str(raw / "*-b00.fits.fz"), *SITE, "--data-root", str(SAMPLE),
                    "--out", str(out), "--workers", "1", "--no-progress"])
    assert rc == 1  # only biases arrived: the steps after them cannot run yet
    assert len(rundir.read_dataset(out / "index")) == 5 and len(rundir.read_dataset(out / "stack_bias")) == 1


def test_new_site_dry_run_and_the_raw_root_guard(tmp_path, capsys):
    args = ["nres", "new-site", *SITE, "--start", "2024-01-15", "--end", "2024-01-16", "--data-root", str(SAMPLE),
            "--out", str(tmp_path / "run")]
    assert astroflow([*args, "--products-root", str(tmp_path / "products"), "--dry-run"]) == 0
    plan = capsys.readouterr().out
    assert "bias,blaz,ccor" in plan and "index -> reduce_bias" in plan
    assert astroflow([*args, "--products-root", str(SAMPLE / "reduced")]) == 2
    assert "inside the raw data root" in capsys.readouterr().err


def test_targets_names_a_malformed_row(tmp_path, capsys):
    assert astroflow(["nres", "targets", str(SAMPLE / "targets.csv")]) == 0
    bad = tmp_path / "targets.csv"
    lines = (SAMPLE / "targets.csv").read_text().splitlines()
    bad.write_text("\n".join(lines[:2] + [lines[2].replace(",3.50,", ",")] + lines[3:]) + "\n")
    assert astroflow(["nres", "targets", str(bad)]) == 1
    assert "row 'HD10700' has 16 fields where the header has 17" in capsys.readouterr().err


def test_a_hand_trace_becomes_the_camera_trace(tmp_path, capsys):
    from steps.nres.products import read_traces
    from steps.nres.science.trace import hand_trace_from_traces, write_hand_trace

    out = tmp_path / "run"
    assert astroflow(["nres", "stack", *SITE, "--calibration-type", "FLAT", "--start", "2024-01-15", "--nights", "1",
                      "--data-root", str(SAMPLE), "--out", str(out), "--workers", "1", "--no-progress"]) == 0
    assert astroflow(["run", "nres", "--out", str(out), "--until", "trace", "--no-progress"]) == 0
    found = read_traces(out / rundir.read_dataset(out / "trace").to_pylist()[0]["path"])
    hand = tmp_path / "ref_trace.txt"
    hand.write_text(write_hand_trace(hand_trace_from_traces(found)))
    capsys.readouterr()
    assert astroflow(["nres", "trace0", *SITE, "--filename", str(hand), "--date", "2024-01-10", "--nx", "1024",
                      "--ny", "1024", "--out", str(out)]) == 0
    made = json.loads(capsys.readouterr().out)
    assert made["orders"] == 12
    lib = Library.for_run(out, migrations=MIGRATIONS)
    assert Path(lib.get(made["calibration_id"]).path).name.endswith("_hand.fits")
    assert astroflow(["nres", "db", "--out", str(out)]) == 0
