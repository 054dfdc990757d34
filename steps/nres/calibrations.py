"""NRES calibrations in the library: their types, what must match, and how far back to look.

banzai-nres groups calibration frames by its calibration-set criteria and picks the nearest
good master of the same criteria: BIAS by site, instrument, camera, binning and readout mode;
DARK adds the CCD temperature set point; FLAT and DOUBLE add the fiber state (which fibers were
lit); a TRIPLE (two DOUBLEs with complementary fibers), a TRACE, a PROFILE and a WAVELENGTH
solution go with the camera.  A master further back than the look-back is still used when no
nearer one exists, recorded as a fallback (a night with two flats where five are needed keeps
the previous master, and says so).  Masters live in the reduced tree of the runbook
(``reduced/{site}/{instrument}/bias|dark|flat|trace|dble|trip|thar|zero/``).
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from astroflow.calib import CalibType

CAMERA = ("site", "instrument", "camera", "binning", "mode")
LOOKBACK = {"lookback_days": 14, "fallback": True}

CALIBRATIONS = {
    "BIAS": CalibType("BIAS", match=CAMERA, **LOOKBACK),
    "DARK": CalibType("DARK", match=(*CAMERA, "temperature"), **LOOKBACK),
    "FLAT": CalibType("FLAT", match=(*CAMERA, "fiber_state"), **LOOKBACK),
    "DOUBLE": CalibType("DOUBLE", match=(*CAMERA, "fiber_state"), **LOOKBACK),
    "TRIPLE": CalibType("TRIPLE", match=CAMERA, **LOOKBACK),
    "TRACE": CalibType("TRACE", match=CAMERA, **LOOKBACK),
    "PROFILE": CalibType("PROFILE", match=(*CAMERA, "fiber_state"), **LOOKBACK),
    "WAVELENGTH": CalibType("WAVELENGTH", match=CAMERA, **LOOKBACK),
    "ZERO": CalibType("ZERO", match=("target",), select="nearest"),  # a standard's template (classify chooses)
}

FOLDERS = {"BIAS": "bias", "DARK": "dark", "FLAT": "flat", "DOUBLE": "dble", "TRIPLE": "trip", "TRACE": "trace",
           "PROFILE": "blaz", "WAVELENGTH": "thar", "ZERO": "zero"}


def camera_attributes(row: dict) -> dict:
    """The matching attributes of a frame of the index (temperature rounded to the set point)."""
    return {"site": row["site"], "instrument": row["instrument"], "camera": row["camera"],
            "binning": row["binning"], "mode": row["mode"]}


def temperature(row: dict) -> str:
    return f"{round(float(row['ccd_temp'])):d}"


def observed(row: dict) -> datetime:
    return datetime.fromisoformat(row["dateobs"]).astimezone(timezone.utc)


def reduced_path(row: dict, ctype: str, name: str) -> Path:
    """Where a master goes in the reduced tree: ``reduced/{site}/{instrument}/{folder}/{name}``."""
    return Path("reduced") / row["site"] / row["instrument"] / FOLDERS[ctype] / name
