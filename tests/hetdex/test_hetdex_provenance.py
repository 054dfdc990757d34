"""Every HETDEX FITS and H5 product says what made it: code version, run, configuration hash,
calibrations; DATE is the file's creation time (the observation's date is DATE-OBS / DAY-OBS)."""

from __future__ import annotations

import json
import re

import h5py
from astropy.io import fits

from astroflow import config

ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")


def test_every_fits_product_carries_its_provenance(demo):
    run = demo["run"]
    want = config.load(run).config_hash()
    found = sorted(p for p in run.rglob("*.fits") if "/input/" not in str(p))
    kinds = {p.name.split("_")[0] for p in found}
    assert {"masterbias", "multi", "cal"} <= kinds, kinds
    for path in found:
        head = fits.getheader(path)
        assert ISO.fullmatch(head["DATE"]), (path, head.get("DATE"))
        assert head["PIPEVER"] and head["PIPELINE"] == "hetdex" and head["RUNNAME"] == run.name, path
        assert head["CONFHASH"] == want, path
    multi = fits.getheader(next(p for p in found if p.name.startswith("multi_")))
    assert multi["CALBIAS"].startswith("masterbias_") and multi["PIPESTEP"] == "sci_reduce"
    assert re.fullmatch(r"\d{8}", multi["DAY-OBS"]) and ISO.fullmatch(multi["DATE-OBS"])
    assert multi["DATE-OBS"].replace("-", "")[:8] in (multi["DAY-OBS"], str(int(multi["DAY-OBS"]) + 1))


def test_every_h5_product_carries_its_provenance(demo):
    run = demo["run"]
    found = sorted((run / "release").rglob("*.h5"))
    assert len(found) >= 6
    for path in found:
        with h5py.File(path, "r") as h:
            attrs = dict(h.attrs)
        assert attrs["pipeline"] == "hetdex" and attrs["run"] == run.name, path
        assert attrs["config_hash"] == config.load(run).config_hash() and attrs["astroflow_version"], path
        assert ISO.fullmatch(attrs["created"]) and isinstance(json.loads(attrs["calibrations"]), dict), path


def test_the_detection_catalogue_reads_back_with_its_units(demo):
    import astropy.units as u

    import astroflow

    t = astroflow.read(demo["run"], "detections", columns=["detectid", "ra", "wave", "flux", "linewidth", "spec1d"])
    assert t["ra"].unit == u.deg and t["wave"].unit == u.AA and t["linewidth"].unit == u.AA
    assert t["flux"].unit.is_equivalent(u.erg / u.s / u.cm**2)
    assert t["flux"].to(u.erg / u.s / u.cm**2).value[0] == 1e-17 * t["flux"].value[0]
    assert t["spec1d"].unit.is_equivalent(u.erg / u.s / u.cm**2 / u.AA) and t["spec1d"].ndim == 2


def test_the_run_report_shows_the_shot_and_its_amplifiers(demo):
    from astroflow.report import write_report

    run = demo["run"]
    page = write_report(run).read_text()
    figures = run / "report_files"
    for pattern in ("hetdex_sky_*.png", "hetdex_flux_limits_*.png", "hetdex_amplifiers.png"):
        found = sorted(figures.glob(pattern))
        assert found and all(p.stat().st_size > 5000 for p in found), pattern
        assert all(f"report_files/{p.name}" in page for p in found)
