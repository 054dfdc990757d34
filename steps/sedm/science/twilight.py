"""When the evening's twilight reaches a sun altitude at a site: the deadline of the afternoon
calibrations (runbook: "Near the end of astronomical twilight, science image acquisition
begins"; the pre-science processing "takes roughly 30 minutes").

The Sun's apparent altitude (astropy's ``get_body('sun')`` in ``AltAz``, no refraction) on a
2-minute grid, the first downward crossing found by linear interpolation: well under a minute
of error, plenty for a deadline.  Nothing is downloaded: the IERS tables are the installed
``astropy-iers-data``, and a date past their predictions takes the degraded polar motion
silently (seconds of time at most).
"""

from __future__ import annotations

import datetime as dt
import warnings

import numpy as np

STEP_MIN = 2.0


def evening_crossing(start: dt.datetime, latitude_deg: float, longitude_deg: float, height_m: float,
                     sun_alt_deg: float, hours: float = 30.0) -> dt.datetime:
    """The first time after ``start`` (UTC) that the Sun sinks through ``sun_alt_deg`` at the
    site; ValueError when it does not within ``hours`` (polar day or night)."""
    import astropy.units as u
    from astropy.coordinates import AltAz, EarthLocation, get_body
    from astropy.time import Time
    from astropy.utils import iers

    minutes = np.arange(0.0, hours * 60.0 + STEP_MIN, STEP_MIN)
    site = EarthLocation.from_geodetic(longitude_deg * u.deg, latitude_deg * u.deg, height_m * u.m)
    with iers.conf.set_temp("auto_download", False), iers.conf.set_temp("auto_max_age", None), \
            iers.conf.set_temp("iers_degraded_accuracy", "ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        times = Time(start.astimezone(dt.timezone.utc).replace(tzinfo=None), scale="utc") + minutes * u.min
        alt = get_body("sun", times).transform_to(AltAz(obstime=times, location=site)).alt.deg
    below = alt < sun_alt_deg
    down = np.flatnonzero(~below[:-1] & below[1:])
    if not down.size:
        raise ValueError(f"the Sun does not sink through {sun_alt_deg} deg within {hours} h of {start.isoformat()} "
                         f"at latitude {latitude_deg}")
    i = int(down[0])
    frac = (alt[i] - sun_alt_deg) / (alt[i] - alt[i + 1])
    return start.astimezone(dt.timezone.utc) + dt.timedelta(minutes=float(minutes[i] + frac * STEP_MIN))
