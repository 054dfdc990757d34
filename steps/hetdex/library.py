"""HETDEX calibrations: where the runbook keeps them, and how a frame finds its own.

The products keep the runbook's layout: ``RUN/lib_calib/lib_mbias/{YYYYMM}/masterbias_{specid}_
{contid}_{amp}.fits`` (runbook 4), ``lib_pflat/pixelflat_cam{specid}_{amp}.fits`` (Chenxu's flats),
``lib_bkg/{YYYYMM}/bkg_{specid}_{amp}.fits`` (runbook 5), ``lib_cal/{YYYYMM}/cal_{ifuslot}_
{specid}_{amp}.fits`` (runbook 6), ``lib_res/{YYYYMM}/...`` (runbook 14_b-d).  Each master is
registered in the calibration library (:mod:`astroflow.calib`) as its unit commits, dated by its
month (the first night), and a frame finds its own through the policies below: the month's, else
the nearest earlier month within two months, else an older one recorded as a fallback; never a
later month.  The original looked in the run's own months first and so returned a *later* month
of the same run before the right month of an earlier run (against its own docstring).

Runs share calibrations by sharing one library: ``[run] db_url`` (a site's PostgreSQL, or an
earlier run's ``calibrations.db``) replaces the ``calib_library`` folder setting, and every
reduced frame records which master it used (``astroflow calib explain RUN sci_reduce:...``).
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from astroflow.calib import CalibType

LIB = "lib_calib"
MONTHLY = {"select": "before", "lookback_days": 62, "fallback": True}

CALIBRATIONS = {
    "bias": CalibType("bias", match=("specid", "contid", "amp"), **MONTHLY),
    "pixflat": CalibType("pixflat", match=("specid", "amp")),  # the nearest in time, whatever the month
    "bkg": CalibType("bkg", match=("specid", "amp"), **MONTHLY),
    "twical": CalibType("twical", match=("ifuslot", "specid", "amp"), **MONTHLY),
}


def rel(kind: str, month: str | None, name: str) -> Path:
    return Path(LIB) / kind / month / name if month else Path(LIB) / kind / name


def month_start(month: str) -> datetime:
    """The observation date a monthly master is registered with: its first day (UTC)."""
    return datetime.strptime(month, "%Y%m").replace(tzinfo=timezone.utc)


def night(date: str) -> datetime:
    """The time a frame of night ``YYYYMMDD`` looks its calibrations up at."""
    return datetime.strptime(date, "%Y%m%d").replace(hour=12, tzinfo=timezone.utc)
