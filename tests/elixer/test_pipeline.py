"""The ELiXer pipeline end to end: run, catalogue layout, sample file, kill + recover, merges, report DBs."""

import multiprocessing
import os
import sqlite3
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from astroflow.cli import main as astroflow
from steps.elixer import cli
from steps.elixer.catalog import DTYPES, read_catalog
from steps.elixer.report_db import fetch

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT.parent / "shared" / "samples" / "elixer-detections"
if not SAMPLE.is_dir():
    SAMPLE = Path("/work/shared/samples/elixer-detections")
REQUIRED = ["detectid", "z_best", "z_best_pz", "plya_classification", "combined_plae", "combined_plae_lo",
            "combined_plae_hi", "flux_line", "flux_line_err", "sn", "wavelength_obs", "fwhm_line_aa",
            "eqw_rest_lya_line", "continuum_line", "mag_g_wide", "multiline_flag", "multiline_z", "multiline_name",
            "spectral_slope", "flags", "classification_labels"]


@pytest.fixture(scope="module")
def small_run(sim_small, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "run"
    rc = astroflow(["elixer", "run", "--detections", str(sim_small["detections"]), "--out", str(out),
                    "--workers", "1", "--no-pdf", "--mini", "--set", "classify.shard_size=4", "--no-progress"])
    assert rc == 0
    return out


def test_run_writes_reports_and_catalogue(small_run, sim_small):
    ids = [int(x) for x in Path(sim_small["detectids"]).read_text().split()]
    for d in ids:
        assert (small_run / "reports" / f"{d}.png").stat().st_size > 1000
        assert (small_run / "reports" / f"{d}_mini.png").exists()
        assert not (small_run / "reports" / f"{d}.pdf").exists()
    with h5py.File(small_run / "elixer_cat.h5") as f:
        det = f["Detections"][:]
        assert sorted(det["detectid"]) == sorted(ids)
        assert all(k in det.dtype.names for k in REQUIRED)
        assert det.dtype["detectid"] == np.dtype("<i8")
        assert det.dtype["multiline_name"].kind == "S" and det.dtype["classification_labels"].kind == "S"
        assert ((det["plya_classification"] >= 0) & (det["plya_classification"] <= 1)).all()
        assert f["CalibratedSpectra"].shape[0] == len(ids) and f["SpectraLines"].shape[0] >= len(ids)
        assert f["Version"][0]["version"] == b"0.8.1"
        for name in ("Aperture", "CatalogMatch", "ExtractedObjects", "ElixerApertures"):
            assert f[name].dtype == DTYPES[name]


def test_the_classification_table_reads_back_with_its_units(small_run):
    import astropy.units as u

    import astroflow as af

    t = af.read(small_run, "classify", columns=["detectid", "wavelength_obs", "flux_line", "continuum_line",
                                                "fwhm_line_kms", "cal_flux"])
    assert t["wavelength_obs"].unit == u.AA and t["fwhm_line_kms"].unit == u.km / u.s
    assert t["flux_line"].unit.to(u.erg / u.s / u.cm**2) == pytest.approx(1e-17)
    assert t["continuum_line"].unit.to(u.erg / u.s / u.cm**2 / u.AA) == pytest.approx(1e-17)
    assert t["cal_flux"].unit.is_equivalent(u.erg / u.s / u.cm**2 / u.AA)


def test_the_run_report_links_every_report_and_draws_the_classifications(small_run, sim_small):
    from astroflow.report import write_report

    page = write_report(small_run).read_text()
    for d in (int(x) for x in Path(sim_small["detectids"]).read_text().split()):
        assert f'href="reports/{d}.png"' in page, d
    for name in ("elixer_classifications", "elixer_ew_wavelength"):
        assert (small_run / "report_files" / f"{name}.png").stat().st_size > 5000
        assert f"report_files/{name}.png" in page


def test_catalogue_opens_with_pytables(small_run):
    tables = pytest.importorskip("tables")
    with tables.open_file(str(small_run / "elixer_cat.h5")) as h5:
        dt = h5.root.Detections
        d = int(dt.cols.detectid[0])
        row = dt.read_where(f"detectid == {d}")
        assert len(row) == 1 and 0 <= row["plya_classification"][0] <= 1
        assert h5.root.SpectraLines.get_where_list(f"detectid == {d}").size >= 1
        assert h5.root.CalibratedSpectra.cols.flux[0].shape == (1036,)


def test_independent_sample_runs(tmp_path):
    out = tmp_path / "sample"
    rc = astroflow(["elixer", "run", "--detections", str(SAMPLE / "detect_sample.h5"), "--detectids",
                    str(SAMPLE / "detectids.txt"), "--out", str(out), "--workers", "1", "--no-png", "--no-pdf",
                    "--no-progress"])
    assert rc == 0
    cat = read_catalog(out / "elixer_cat.h5", ["Detections"])["Detections"]
    ids = [int(x) for x in (SAMPLE / "detectids.txt").read_text().split()]
    assert sorted(cat["detectid"]) == sorted(ids)
    assert np.isfinite(cat["z_best"]).all() and (cat["z_best"] > -0.01).all()


def _run_then_kill(args, out: Path, victim: Path):
    """Run ELiXer in a child process and kill it once ``victim`` (a report of the second shard) exists."""
    proc = multiprocessing.get_context("spawn").Process(target=astroflow, args=(args,))
    proc.start()
    deadline = time.time() + 120
    while time.time() < deadline and not victim.exists():
        time.sleep(0.05)
    proc.kill()
    proc.join()


def test_kill_half_way_then_recover_builds_exactly_the_missing(sim_small, tmp_path):
    out = tmp_path / "killed"
    ids = [int(x) for x in Path(sim_small["detectids"]).read_text().split()]
    args = ["elixer", "run", "--detections", str(sim_small["detections"]), "--out", str(out), "--workers", "1",
            "--no-pdf", "--set", "classify.shard_size=6", "--no-progress"]
    _run_then_kill(args, out, out / "reports" / f"{ids[7]}.png")  # shard 1 is half done
    before = {p.name: p.stat().st_mtime_ns for p in (out / "reports").glob("*.png")}
    assert 0 < len(before) < len(ids)
    assert cli.count([str(out)]) == 1  # counts do not match yet
    assert cli.recover(["--out", str(out), "--no-progress"]) == 0
    after = {p.name: p.stat().st_mtime_ns for p in (out / "reports").glob("*.png")}
    assert set(after) == {f"{d}.png" for d in ids}
    assert all(after[n] == t for n, t in before.items())  # nothing rebuilt that existed
    redone = [r for r in _rows(out) if r["detectid"] in ids[6:]]  # the killed shard, rerun by recover
    built = {r["detectid"] for r in redone if "png" in r["reports_built"]}
    assert built == {d for d in ids if f"{d}.png" not in before}  # exactly the missing
    assert cli.count([str(out)]) == 0
    det = read_catalog(out / "elixer_cat.h5", ["Detections"])["Detections"]  # the merge kept the latest rows only
    assert sorted(det["detectid"]) == sorted(ids)


def _rows(out):
    from astroflow.rundir import read_dataset

    latest = {}
    for r in read_dataset(out / "classify", columns=["detectid", "reports_built"]).to_pylist():
        latest[r["detectid"]] = r
    return list(latest.values())


def test_prep_recover_clears_incomplete_and_recover_rebuilds(small_run, sim_small, capsys):
    ids = [int(x) for x in Path(sim_small["detectids"]).read_text().split()]
    broken = small_run / "reports" / f"{ids[0]}.png"
    broken.write_bytes(broken.read_bytes()[:500])  # truncated PNG
    (small_run / "reports" / f"{ids[1]}_mini.png").unlink()  # incomplete detection
    assert cli.prep_recover(["--out", str(small_run)]) == 0  # lists only
    assert broken.exists()
    assert cli.prep_recover(["--out", str(small_run), "--yes"]) == 0
    assert not broken.exists() and not (small_run / "reports" / f"{ids[1]}.png").exists()
    assert cli.recover(["--out", str(small_run), "--no-progress"]) == 0
    assert cli.count([str(small_run)]) == 0


def test_merge_and_merge_unique(small_run, tmp_path):
    cat = small_run / "elixer_cat.h5"
    assert cli.merge(["--run", str(small_run)]) == 0
    merged = tmp_path / "both.h5"
    assert cli.merge(["--out", str(merged), str(cat), str(cat)]) == 0
    n = len(read_catalog(cat, ["Detections"])["Detections"])
    assert len(read_catalog(merged, ["Detections"])["Detections"]) == n  # duplicates keep one row
    # merge-unique keeps the newer of two rows per detectid
    newer = tmp_path / "newer.h5"
    data = read_catalog(cat)
    data["Detections"]["elixer_datetime"] = b"2099-01-01 00:00:00"
    data["Detections"]["z_best"] = 9.0
    from steps.elixer.catalog import write_catalog

    write_catalog(newer, {k: v for k, v in data.items() if k != "Version"})
    out = tmp_path / "unique.h5"
    assert cli.merge_unique([f"{out},{cat},{newer}"]) == 0
    det = read_catalog(out)["Detections"]
    assert len(det) == n and (det["z_best"] == 9.0).all()
    assert cli.merge_unique([f"{out},{cat},{newer}"]) == 2  # refuses to overwrite


def test_report_db_create_update_and_read(tmp_path):
    src = tmp_path / "tree" / "dispatch_0" / "x"
    src.mkdir(parents=True)
    png = b"\x89PNG\r\n\x1a\n" + os.urandom(300) + b"IEND\xaeB`\x82"
    ids = [3090000001, 3090000002, 3090112345]
    for d in ids:
        (src / f"{d}.png").write_bytes(png)
        (src / f"{d}_nei.png").write_bytes(png[::-1])
        (src / f"{d}_mini.png").write_bytes(png)
    (src / "notes.txt").write_text("ignored")
    dbs = tmp_path / "db"
    assert astroflow(["elixer", "report-db", "--reports", str(tmp_path / "tree"), "--out", str(dbs)]) == 0
    names = sorted(p.name for p in dbs.glob("*.db"))
    assert names == ["elixer_reports_30900.db", "elixer_reports_30900_mini.db", "elixer_reports_30900_nei.db",
                     "elixer_reports_30901.db", "elixer_reports_30901_mini.db", "elixer_reports_30901_nei.db"]
    assert fetch(dbs / "elixer_reports_30900.db", ids[0]) == png
    assert fetch(dbs / "elixer_reports_30900_nei.db", ids[1]) == png[::-1]
    with sqlite3.connect(dbs / "elixer_reports_30900.db") as conn:
        cols = conn.execute("PRAGMA table_info(report)").fetchall()
        assert [(c[1], c[2], c[5]) for c in cols] == [("detectid", "BIGINT", 1), ("image", "BLOB", 0)]
        assert conn.execute("SELECT image FROM report").fetchone()[0][:2] == b"\x1f\x8b"  # gzip
    # update: rerun with a changed image replaces, never duplicates
    (src / f"{ids[0]}.png").write_bytes(png + b"x")
    assert astroflow(["elixer", "report-db", "--reports", str(tmp_path / "tree"), "--out", str(dbs)]) == 0
    assert fetch(dbs / "elixer_reports_30900.db", ids[0]) == png + b"x"
    with sqlite3.connect(dbs / "elixer_reports_30900.db") as conn:
        assert conn.execute("SELECT count(*) FROM report").fetchone()[0] == 2


def test_declared_pipeline_and_usage_errors(tmp_path):
    from astroflow.registry import get_pipeline

    p = get_pipeline("elixer")
    assert [s.name for s in p.steps] == ["classify", "merge", "count", "report_db"]
    assert astroflow(["elixer", "run", "--detections", str(tmp_path / "nope.h5"), "--out", str(tmp_path / "r")]) == 2
    assert astroflow(["elixer", "report-db", "--reports", str(tmp_path / "nope"), "--out", str(tmp_path)]) == 2


def test_votes_in_classification_extra_features(small_run, sim_small):
    """Each indicator's vote, weight and ln likelihood ratio per detection, as ELiXer's table has them."""
    ids = sorted(int(x) for x in Path(sim_small["detectids"]).read_text().split())
    cat = read_catalog(small_run / "elixer_cat.h5", ["Detections", "ClassificationExtraFeatures"])
    feats, det = cat["ClassificationExtraFeatures"], cat["Detections"]
    assert sorted(feats["detectid"]) == ids
    for name in ("plae_poii_combined", "companion_lines", "line_shape", "line_sigma", "continuum_shape"):
        votes = feats[f"{name}_vote"]
        assert ((votes >= 0) & (votes <= 1)).all(), name
        assert np.isfinite(feats[f"{name}_ln_lr"] if f"{name}_ln_lr" in feats.dtype.names
                           else feats["line_sigma_ln_lr"]).all()
    order = np.argsort(det["detectid"])
    plya = det["plya_classification"][order]
    odds = feats["combined_ln_odds"][np.argsort(feats["detectid"])]
    assert np.allclose(plya, 1 / (1 + np.exp(-np.clip(odds, -50, 50))), atol=2e-3)
    with h5py.File(small_run / "elixer_cat.h5") as f:
        assert f["ClassificationExtraFeatures"].dtype == DTYPES["ClassificationExtraFeatures"]


def test_merges_stream_in_chunks(small_run, tmp_path, monkeypatch):
    """The 18.3 merge copies in chunks: a chunk of a few rows gives the same catalogue as one chunk."""
    from steps.elixer import catalog

    cat = small_run / "elixer_cat.h5"
    whole = tmp_path / "whole.h5"
    catalog.merge_catalogs(whole, [cat, cat])
    monkeypatch.setattr(catalog, "CHUNK_BYTES", 1)  # one row at a time
    rows = tmp_path / "rows.h5"
    counts = catalog.merge_catalogs(rows, [cat, cat])
    a, b = read_catalog(whole), read_catalog(rows)
    for name in ("Detections", "SpectraLines", "CalibratedSpectra", "ClassificationExtraFeatures"):
        assert len(a[name]) == len(b[name]) == counts[name]
        assert a[name].tobytes() == b[name].tobytes(), name
    assert len(b["Detections"]) == len(np.unique(b["Detections"]["detectid"]))
