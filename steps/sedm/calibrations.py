"""SEDM calibrations in the library: their types, what must match, how far back to look.

A master bias belongs to one ADC speed and one frame size (sedmpy's ``bias2.0.fits`` and
``bias0.1.fits`` in each night directory).  Tonight's master is the one used (look-back one
day); when tonight's set was too small, the nearest earlier night's good master stands in and
the choice is recorded as a fallback.  The trace match (``{date}_TraceMatch.json``) goes with
the frame size, looked up the same way.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from astroflow.calib import CalibType

BIAS = "BIAS"
TRACEMATCH = "TRACEMATCH"
CALIBRATIONS = {
    BIAS: CalibType(BIAS, match=("adcspeed", "nx", "ny"), select="nearest", lookback_days=1.0, fallback=True),
    TRACEMATCH: CalibType(TRACEMATCH, match=("nx", "ny"), select="nearest", lookback_days=1.0, fallback=True),
}


def bias_attributes(row: dict) -> dict:
    return {"adcspeed": f"{float(row['adcspeed']):.1f}", "nx": int(row["nx"]), "ny": int(row["ny"])}


def observed(row: dict) -> datetime:
    """A frame's start (UTC) from MJD_OBS."""
    return datetime(1858, 11, 17, tzinfo=timezone.utc) + timedelta(days=float(row["mjd_obs"]))


def bias_name(adcspeed: float) -> str:
    return f"bias{float(adcspeed):.1f}.fits"
