"""TEC steps 1-11 on the independent sample sector, and on broken copies of it."""

import gzip
import shutil

import pyarrow.dataset as ds
import pytest
from astropy.io import fits

from astroflow import config, runner, status
from steps.tec.pipeline import TEC


def run_tec(data_root, out, sample, **settings):
    base = {"data_root": str(data_root), "sector": 33, "toi_csv": str(sample / "toi.csv"),
            "known_planets": str(sample / "known_planets.csv")}
    cfg = config.resolve(TEC, settings={**base, **settings}, runner={"workers": 1})
    return runner.run(TEC, cfg, out, progress=False)


def step(st, name):
    return next(s for s in st["steps"] if s["step"] == name)


@pytest.fixture(scope="module")
def sample_run(sample_sector, tmp_path_factory):
    out = tmp_path_factory.mktemp("s33")
    res = run_tec(sample_sector, out, sample_sector)
    return res, out


def test_sample_sector_runs_without_format_errors(sample_run):
    res, out = sample_run
    assert res.ok, {n: (s.state, s.message) for n, s in res.steps.items()}
    st = status.collect(out)
    assert st["complete"]
    for s in st["steps"]:
        assert s["items_failed"] == 0, (s["step"], s["errors"])
    gather = ds.dataset(out / "gather", format="parquet").to_table()
    assert gather.num_rows == 18
    assert len(set(gather.column("tic").to_pylist())) == 14
    triage = ds.dataset(out / "flux_triage", format="parquet").to_table()
    assert triage.schema.field("tic").type == "int64" and triage.schema.field("planet_number").type == "int32"
    assert triage.num_rows == 18
    pages = ds.dataset(out / "dv_report_pages", format="parquet").to_table().to_pylist()
    assert sum(p["found"] for p in pages) >= 14
    assert all((out / p["path"]).stat().st_size > 0 for p in pages if p["found"])
    assert (out / "sector33_tce.txt").read_text().count("\n") == 19


def test_known_planets_of_the_sample_are_federated(sample_run):
    _, out = sample_run
    rows = {(r["tic"], r["planet_number"]): r
            for r in ds.dataset(out / "federate_known", format="parquet").to_table().to_pylist()}
    # SYN-101 b, c, d are the three TCEs of TIC 459440820 in the sample's archive table
    names = {rows[(459440820, pn)]["known_name"] for pn in (1, 2, 3)}
    assert names == {"SYN-101 b", "SYN-101 c", "SYN-101 d"}


def _break(src, dst):
    """A copy of the sample with one file of each kind broken."""
    shutil.copytree(src, dst)
    sector = dst / "sector-033"
    xml = sorted((sector / "dv-results").glob("*459440820*"))[0]
    data = gzip.decompress(xml.read_bytes())
    xml.write_bytes(gzip.compress(data[: len(data) // 2]))  # truncated XML
    dvt = sorted((sector / "dv-time-series").glob("*45900161*"))[0]
    with fits.open(dvt) as h:
        fits.HDUList([x.copy() for x in h if x.name != "STATISTICS"]).writeto(dvt.with_suffix(""), overwrite=True)
    dvt.unlink()  # FITS missing its statistics extension (now plain, not gzipped)
    dvt2 = sorted((sector / "dv-time-series").glob("*62033713*"))[0]
    with fits.open(dvt2) as h:
        hdus = [x.copy() for x in h]
        for x in hdus[1:]:
            for col in ("LC_INIT", "PDCSAP_FLUX"):
                if col in x.columns.names:
                    x.data[col][:] = float("nan")
        fits.HDUList(hdus).writeto(dvt2.with_suffix(""), overwrite=True)
    dvt2.unlink()  # all-NaN light curve
    pdf = sorted((sector / "dv-reports").glob("*324709156*_dvr.pdf"))[0]
    pdf.unlink()
    pdf.symlink_to(dst / "does-not-exist.pdf")  # unreadable file
    (dst / "toi.csv").write_text("just,one,line\n")  # malformed TOI CSV
    return dst


def test_bad_inputs_are_recorded_per_item_and_the_rest_completes(sample_sector, tmp_path):
    broken = _break(sample_sector, tmp_path / "data")
    out = tmp_path / "run"
    res = run_tec(broken, out, broken)
    st = status.collect(out)
    errors = {s["step"]: s["errors"] for s in st["steps"]}
    gather_err = errors["gather"]
    assert len(gather_err) == 1 and "459440820" in gather_err[0]["file"]
    resample_err = {e["item"]: e for e in errors["resample"]}
    assert set(resample_err) == {"45900161", "62033713"}
    assert "STATISTICS" in resample_err["45900161"]["message"].upper()
    assert "62033713" in resample_err["62033713"]["file"]
    assert any("324709156" in (e["file"] or "") for e in errors["dv_report_pages"])
    assert res.steps["federate_toi"].state == "failed"
    assert "toi.csv" in (errors["federate_toi"][0]["file"] or errors["federate_toi"][0]["message"])
    for name in ("dump", "skyline", "federate_known", "self_match", "ses_mes", "flux_triage"):
        assert res.steps[name].state == "done", (name, res.steps[name].message)
    triage = ds.dataset(out / "flux_triage", format="parquet").to_table().to_pylist()
    assert len(triage) == 15  # the 3 TCEs of the truncated XML are missing, the rest are triaged
    assert "NoSesMes" in {t["reason"] for t in triage}
    text = status.render_text(st)
    assert "459440820" in text and "toi.csv" in text
