"""SEDM calibrations in the library: their types, what must match, how far back to look.

A master bias belongs to one ADC speed and one frame size (sedmpy's ``bias2.0.fits`` and
``bias0.1.fits`` in each night directory).  Tonight's master is the one used (look-back one
day); when tonight's set was too small, the nearest earlier night's good master stands in and
the choice is recorded as a fallback.  The geometry products (``{date}_TraceMatch.json``,
``{date}_HexaGrid.json``, ``{date}_WaveSolution.fits``, ``{date}_Flat.fits``) go with the frame
size, looked up the same way; a fluxcal (``fluxcal_*.fits``) only from before the observation,
the nearest (``fluxcal_link``), or, for a science frame (``calibrate``, ``FLUXCAL_NEAREST``: the
same products under a second declared policy), the one nearest in time within a day, before or
after, else the latest earlier one as a recorded fallback.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from astroflow.calib import CalibType, NoCalibration

BIAS = "BIAS"
TRACEMATCH = "TRACEMATCH"
WAVESOLUTION = "WAVESOLUTION"
FLAT = "FLAT"
HEXAGRID = "HEXAGRID"
FLUXCAL = "FLUXCAL"
FLUXCAL_NEAREST = "FLUXCAL_NEAREST"  # the FLUXCAL products, looked up nearest in time (calibrate)
CALIBRATIONS = {
    BIAS: CalibType(BIAS, match=("adcspeed", "nx", "ny"), select="nearest", lookback_days=1.0, fallback=True),
    TRACEMATCH: CalibType(TRACEMATCH, match=("nx", "ny"), select="nearest", lookback_days=1.0, fallback=True),
    WAVESOLUTION: CalibType(WAVESOLUTION, match=("nx", "ny"), select="nearest", lookback_days=1.0, fallback=True),
    HEXAGRID: CalibType(HEXAGRID, match=("nx", "ny"), select="nearest", lookback_days=1.0, fallback=True),
    FLAT: CalibType(FLAT, match=("nx", "ny"), select="nearest", lookback_days=1.0, fallback=True),
    FLUXCAL: CalibType(FLUXCAL, match=(), select="before", lookback_days=1.0, fallback=True),
    FLUXCAL_NEAREST: CalibType(FLUXCAL, match=(), select="nearest", lookback_days=1.0, fallback=True),
}
"""The night's products and the type each is registered as; a fallback older than the
``fallback_nights`` setting is refused (the library's fallback takes the nearest earlier one
at any distance)."""


def frame_attributes(row: dict) -> dict:
    return {"nx": int(row["nx"]), "ny": int(row["ny"])}


def night_of(dateobs: str) -> str:
    """The UT date (YYYYMMDD) of a calibration's ISO time."""
    return dateobs[:10].replace("-", "")


def bias_attributes(row: dict) -> dict:
    return {"adcspeed": f"{float(row['adcspeed']):.1f}", "nx": int(row["nx"]), "ny": int(row["ny"])}


def observed(row: dict) -> datetime:
    """A frame's start (UTC) from MJD_OBS."""
    return datetime(1858, 11, 17, tzinfo=timezone.utc) + timedelta(days=float(row["mjd_obs"]))


def bias_name(adcspeed: float) -> str:
    return f"bias{float(adcspeed):.1f}.fits"


def look_up(ctx, ctype: str, at: datetime, max_nights: float | None = None, **attributes) -> tuple[Path, dict]:
    """The calibration the library's policy picks for ``at`` (``ctx.calibration``) and the record
    of the choice (``dateobs``, ``reason``, ``fallback``); a fallback more than ``max_nights``
    older than ``at`` is refused with :class:`NoCalibration` (the library's fallback takes the
    nearest earlier one at any distance)."""
    path = ctx.calibration(ctype, at, **attributes)
    used = next(u for u in ctx.calibrations_used[ctx.item_id or ctx.step] if u["path"] == str(path))
    age = (at - datetime.fromisoformat(used["dateobs"])).total_seconds() / 86400.0
    if used["fallback"] and max_nights is not None and age > max_nights:
        raise NoCalibration(f"the latest good {ctype}, {path.name}, is {age:.1f} nights old "
                            f"(the fallback reaches {max_nights:g} nights back)")
    return path, used
