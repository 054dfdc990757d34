"""The night's outputs other tools read: spectrum files (FITS and ascii) and RUNDIR/spectra/,
verify plots, report.txt/report_ztf.txt, the sinks (off by default, once each when on), and redex
accept, reject and --recover."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from astropy.io import fits

from conftest import raw_state, sedm_settings


def _night(run) -> Path:
    return run.out / "redux" / run.sim.settings["date"]


def test_spectrum_files_table_and_plots(sedm_run):
    rows = {r["filename"]: r for r in sedm_run.rows("spectra")}
    quality = {r["filename"]: r["quality"] for r in sedm_run.rows("quality")}
    assert set(rows) == set(quality) and len(rows) >= 5
    for name, r in rows.items():
        assert r["quality"] == quality[name]
        head = fits.getheader(sedm_run.out / r["fits_path"])
        assert head["QUALITY"] == r["quality"] and head["OBJECT"] == r["object"]
        assert Path(r["fits_path"]).name.startswith("spec_forcepsf_auto_lstep1__crr_b_ifu")
        text = (sedm_run.out / r["txt_path"]).read_text().splitlines()
        keys = dict(line[2:].split(": ", 1) for line in text if line.startswith("# ") and ": " in line)
        for key in ("OBJECT", "EXPTIME", "AIRMASS", "QUALITY", "FLUXCAL", "CLASSIFIER", "SNIDMATCHTYPE",
                    "SNIDMATCHSUBTYPE", "SNIDMATCHREDSHIFT", "SNIDMATCHRLAP"):
            assert key in keys, (key, r["txt_path"])
        data = [line.split() for line in text if not line.startswith("#")]
        assert len(data) == fits.getdata(sedm_run.out / r["fits_path"]).size and len(data[0]) == 3
        if r["type"]:
            assert "SNID-like, not SNID" in keys["CLASSIFIER"] and head["SNIDTYPE"] == r["type"]
        if r["quality"] > 2:
            assert not r["type"]
    verify = {r["filename"]: r for r in sedm_run.rows("verify")}
    assert set(verify) == set(rows)
    for r in verify.values():
        png = sedm_run.out / r["png_path"]
        assert png.name.startswith("verify_forcepsf_auto_lstep1__") and png.read_bytes()[:4] == b"\x89PNG"


def test_report_txt_lists_every_spectrum_and_no_sink_is_called(sedm_run):
    lines = (_night(sedm_run) / "report.txt").read_text().splitlines()
    assert lines[0].split() == ["UTStart", "Object", "Exptime", "Air", "Qual", "method", "Allocation", "Type", "z",
                                "Rlap", "Classifier"]
    spectra = sedm_run.rows("spectra")
    assert len(lines) == 1 + len(spectra)
    assert {line.split()[1] for line in lines[1:]} == {r["object"] for r in spectra}
    assert (_night(sedm_run) / "report_ztf.txt").read_text().splitlines()[1:] == []
    assert sedm_run.rows("upload") == [] and not (sedm_run.out / "outbox").exists()


@pytest.fixture(scope="module")
def copied(sedm_run, tmp_path_factory):
    """A copy of the night's run, to change it without touching the shared one."""
    out = tmp_path_factory.mktemp("sedm_outputs") / "run"
    shutil.copytree(sedm_run.out, out, symlinks=True)
    return out


def _rerun(sedm_run, out, **settings):
    from astroflow import config, runner
    from steps.sedm.pipeline import SEDM

    cfg = config.resolve(SEDM, settings={**sedm_settings(sedm_run.sim.settings), **settings},
                         runner={"workers": 1})
    return runner.run(SEDM, cfg, out, progress=False)


def test_sinks_on_send_each_acceptable_spectrum_once(sedm_run, copied):
    on = {"sinks": {name: {"enabled": True} for name in ("marshal", "slack", "pharos")}}
    result = _rerun(sedm_run, copied, **on)
    assert result.ok
    assert {n for n, s in result.steps.items() if s.units} <= {"upload", "night_report"}
    spectra = [r for r in sedm_run.rows("spectra") if r["quality"] <= 2]
    ztf = [r for r in spectra if r["object"].startswith("ZTF")]
    outbox = copied / "outbox"
    assert len(list((outbox / "marshal").glob("*.json"))) == len(ztf)
    assert len(list((outbox / "slack").glob("*.json"))) == len(spectra)
    assert len(list((outbox / "pharos").glob("*.json"))) == len(spectra)
    report_ztf = (copied / "redux" / sedm_run.sim.settings["date"] / "report_ztf.txt").read_text().splitlines()
    assert len(report_ztf) == 1 + len(ztf)
    again = _rerun(sedm_run, copied, **on)
    assert again.steps["upload"].units == 0
    assert len(list((outbox / "marshal").glob("*.json"))) == len(ztf)


def test_redex_accept_reject_recover(sedm_run, copied):
    from steps.sedm.redex import main, tagged_files

    before = raw_state(sedm_run.sim.root)
    graded = {r["filename"]: r for r in sedm_run.rows("quality")}
    five = next(f for f, r in graded.items() if r["quality"] == 5)
    good = next(f for f, r in graded.items() if r["quality"] == 0 and r["kind"] == "science")
    hhmmss = Path(good).stem[-8:]
    erow = next(r for r in sedm_run.rows("extract") if r["filename"] == good)

    def spectra():
        from astroflow.rundir import read_dataset

        return {r["filename"]: r for r in read_dataset(copied / "spectra").to_pylist()}

    assert main([hhmmss, str(erow["centroid_x"]), str(erow["centroid_y"]), "--run", str(copied), "--reject",
                 "--json"]) == 0
    assert spectra()[good]["redo_tag"] == "" and not [p for p in (copied / "redux").rglob("*_redo*")]
    assert main([hhmmss, str(erow["centroid_x"] + 0.2), str(erow["centroid_y"]), "--run", str(copied), "--accept",
                 "--local", "--method", "aperture"]) == 0
    row = spectra()[good]
    assert row["redo_tag"].startswith("redo") and row["method"] == "aperture"
    assert tagged_files(copied, row["redo_tag"]) and (copied / row["fits_path"]).is_file()
    report = (copied / "redux" / sedm_run.sim.settings["date"] / "report.txt").read_text()
    assert row["redo_tag"] in report
    assert main([Path(five).stem[-8:], "--run", str(copied), "--recover"]) == 0
    assert spectra()[five]["quality"] == 1
    assert raw_state(sedm_run.sim.root) == before


def test_redex_names_an_unknown_frame(copied, capsys):
    from steps.sedm.redex import main

    assert main(["23_59_59", "--run", str(copied), "--accept"]) == 2
    assert "no single extracted frame at 23_59_59" in capsys.readouterr().err


def test_final_report_mails_once_through_the_outbox(sedm_run, copied):
    from steps.sedm.final_report import final_report

    _rerun(sedm_run, copied, sinks={"email": {"enabled": True}}, email_to="sedm@example.org")
    out = final_report(copied, final=True, comment="clear night")
    body = json.loads((copied / "outbox" / "email" / f"night_{sedm_run.sim.settings['date']}_final.json").read_text())
    assert body["fields"]["to"] == "sedm@example.org" and "clear night" in body["fields"]["body"]
    assert out["counts"]["spectra"] == len(sedm_run.rows("spectra"))
