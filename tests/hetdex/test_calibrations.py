"""HETDEX calibrations in the library: the month look-up, and what a reduced frame records."""

from __future__ import annotations

import pytest
from astropy.io import fits

from astroflow.calib import Library, NoCalibration
from astroflow.calib.cli import main as calib
from astroflow.rundir import Ledger, read_dataset
from steps.hetdex.library import CALIBRATIONS, month_start, night

AMP = {"specid": "086", "contid": "07", "amp": "LL"}


@pytest.fixture
def months(tmp_path):
    """A library with master biases for 2023-12, 2024-01 and 2024-03 (and one for another amp)."""
    lib = Library(f"sqlite:///{tmp_path / 'calibrations.db'}")
    for month in ("202312", "202401", "202403"):
        path = tmp_path / f"masterbias_{month}.fits"
        path.write_text(month)
        lib.register("bias", path, month_start(month), AMP)
    other = tmp_path / "masterbias_202402_other.fits"
    other.write_text("other amp")
    lib.register("bias", other, month_start("202402"), {**AMP, "amp": "LU"})
    return lib


@pytest.mark.parametrize("date,month,fallback", [
    ("20240105", "202401", False),   # the night's own month
    ("20240215", "202401", False),   # no February master: the earlier month, never the later March
    ("20240320", "202403", False),
    ("20231231", "202312", False),
    ("20240620", "202403", True),    # beyond the two-month look-back: the nearest earlier, as a fallback
])
def test_a_night_finds_its_month_or_an_earlier_one(months, date, month, fallback):
    choice = months.select(CALIBRATIONS["bias"], night(date), AMP)
    assert choice.record.path.endswith(f"masterbias_{month}.fits")
    assert choice.fallback is fallback


def test_no_earlier_month_is_an_explained_failure(months):
    with pytest.raises(NoCalibration) as err:
        months.select(CALIBRATIONS["bias"], night("20231115"), AMP)
    text = str(err.value)
    assert "masterbias_202312.fits" in text and "after the observation" in text


def test_a_reduced_frame_names_its_calibrations(demo, capsys):
    row = read_dataset(demo["run"] / "sci_reduce").to_pylist()[0]
    head = fits.getheader(demo["run"] / row["path"])
    assert head["CALBIAS"].startswith("masterbias_") and head["CALTWICA"].startswith("cal_")
    assert head["PIPEVER"]
    m = next(iter(Ledger(demo["run"] / "sci_reduce").active))
    item = m["ok"][0]
    assert {r["type"] for r in m["calibrations"][item]} >= {"bias", "twical", "bkg"}
    assert calib(["explain", str(demo["run"]), f"sci_reduce:{item}"]) == 0
    assert "masterbias_" in capsys.readouterr().out
    lib = Library.for_run(demo["run"])
    bias = next(r for r in m["calibrations"][item] if r["type"] == "bias")
    assert any(u["item"] == item for u in lib.uses_of(bias["path"]))
