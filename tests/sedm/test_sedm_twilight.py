"""The calibrations' deadline: the evening's twilight at Palomar, found as the Sun's downward
crossing of the altitude, and the settings that resolve it."""

from __future__ import annotations

import datetime as dt

import pytest

from steps.sedm.science.twilight import evening_crossing
from steps.sedm.settings import SedmSettings

PALOMAR = (33.35633, -116.86492, 1712.0)


def _sun_altitude(when: dt.datetime) -> float:
    import astropy.units as u
    from astropy.coordinates import AltAz, EarthLocation, get_body
    from astropy.time import Time
    from astropy.utils import iers

    lat, lon, h = PALOMAR
    site = EarthLocation.from_geodetic(lon * u.deg, lat * u.deg, h * u.m)
    with iers.conf.set_temp("auto_download", False), iers.conf.set_temp("auto_max_age", None):
        t = Time(when.replace(tzinfo=None), scale="utc")
        return float(get_body("sun", t).transform_to(AltAz(obstime=t, location=site)).alt.deg)


@pytest.mark.parametrize("date", ["2024-06-12", "2024-12-21", "2018-09-07"])
@pytest.mark.parametrize("altitude", [-0.833, -18.0])
def test_the_crossing_is_the_evenings_at_that_altitude(date, altitude):
    start = dt.datetime.fromisoformat(f"{date}T00:00:00+00:00") - dt.timedelta(hours=6)
    when = evening_crossing(start, *PALOMAR, altitude)
    assert start < when < start + dt.timedelta(hours=12)  # the Palomar evening (UT 18:00-06:00)
    assert _sun_altitude(when) == pytest.approx(altitude, abs=0.05)  # about 15 s of time
    assert _sun_altitude(when - dt.timedelta(minutes=10)) > altitude  # the Sun is setting


def test_summer_twilight_is_later_than_winters_and_the_deadline_is_before_it():
    june = SedmSettings(data_root="/tmp", date="20240612").deadline()
    december = SedmSettings(data_root="/tmp", date="20241221").deadline()
    assert dt.time(3, 30) < june.time() < dt.time(4, 30) and dt.time(1, 0) < december.time() < dt.time(2, 15)
    start = dt.datetime(2024, 6, 11, 18, tzinfo=dt.UTC)
    assert evening_crossing(start, *PALOMAR, -18.0) - june == dt.timedelta(minutes=30)
    fixed = SedmSettings(data_root="/tmp", date="20240612", calibration_deadline="2024-06-12T02:00:00-07:00")
    assert fixed.deadline() == dt.datetime(2024, 6, 12, 9, tzinfo=dt.UTC)
    with pytest.raises(ValueError, match="timezone"):
        SedmSettings(data_root="/tmp", date="20240612", calibration_deadline="2024-06-12T02:00:00")
