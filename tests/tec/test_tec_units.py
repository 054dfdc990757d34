"""Units and descriptions of the TEC tables (astroflow.read -> QTable), and twexo's coordinates."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import Angle

import astroflow
from astroflow import units
from steps.tec.pipeline import TEC
from steps.tec.twexo import sexagesimal


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """A small simulated sector run up to ses_mes (one worker)."""
    from astroflow import config, runner
    from steps.tec.pipeline import TecSimulation, simulate

    data = tmp_path_factory.mktemp("tec-units-sim")
    settings = simulate(data, TecSimulation(n_tces=6, seed=3))
    out = tmp_path_factory.mktemp("tec-units-run")
    cfg = config.resolve(TEC, settings=settings, runner={"workers": 1})
    res = runner.run(TEC, cfg, out, until="ses_mes", progress=False)
    assert all(s.state == "done" for s in res.steps.values()), res.steps
    return out


def test_every_declared_unit_parses():
    for step in TEC.steps:
        assert units.check(step.schema) == [], step.name


def test_ses_mes_reads_as_a_qtable_with_units(small_run):
    t = astroflow.read(small_run, "ses_mes")
    assert len(t) >= 1
    assert t["cdpp_ppm"].unit.to(u.dimensionless_unscaled) == pytest.approx(1e-6)
    assert t["new_mes"].unit == u.dimensionless_unscaled and isinstance(t["new_mes"], u.Quantity)
    assert t["time"].unit == u.d and "BTJD" in t["time"].info.description
    assert t["tic"].unit is None and t["tic"].info.description == "TESS Input Catalog id"
    g = astroflow.read(small_run, "gather", columns=["tic", "planet_number", "ra", "at_period", "at_depth", "logg"])
    assert g["ra"].unit == u.deg and g["at_period"].unit == u.d
    assert (g["at_depth"].to(u.percent).value == pytest.approx(np.asarray(g["at_depth"].value) * 1e-4))
    assert g["logg"].unit.physical_unit == u.cm / u.s ** 2  # dex(cm / s2)
    r = astroflow.read(small_run, "resample", columns=["time", "pdc_flux"])
    assert r["pdc_flux"].unit == u.electron / u.s


@pytest.mark.parametrize("ra, dec, text", [
    (15.25, 5.5, "01h01m00.00s +05d30m00.0s"),  # the hand-written formatter printed 01h00m60.00s
    (15.2499999, -0.0001, "01h01m00.00s -00d00m00.4s"),
    (359.99999999, -89.99999999, "00h00m00.00s -90d00m00.0s"),
    (187.27791667, 2.05238889, "12h29m06.70s +02d03m08.6s"),  # 3C 273
])
def test_twexo_coordinates_are_astropy_angles(ra, dec, text):
    assert sexagesimal(ra, dec) == text
    h, d = text.split()
    assert Angle(h).degree == pytest.approx(ra % 360, abs=0.01 / 240) or h == "00h00m00.00s"
    assert Angle(d).degree == pytest.approx(dec, abs=0.1 / 3600)
    assert sexagesimal(float("nan"), 0.0) == "-"
