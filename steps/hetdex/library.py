"""Calibration libraries as products of the run, found by date.

``RUN/lib_calib/lib_mbias/{YYYYMM}/masterbias_{specid}_{contid}_{amp}.fits`` (runbook 4),
``lib_pflat/pixelflat_cam{specid}_{amp}.fits`` (Chenxu's flats), ``lib_bkg/{YYYYMM}/...``
(runbook 5), ``lib_cal/{YYYYMM}/cal_{ifuslot}_{specid}_{amp}.fits`` (runbook 6),
``lib_res/{YYYYMM}/res_{ifuslot}_{specid}_{amp}.fits`` (runbook 14_b-d).  A lookup for
a night takes the night's month, else the nearest earlier month of the run, else the same in the
configured ``calib_library`` of an earlier run.
"""

from __future__ import annotations

from pathlib import Path

from astroflow.errors import ItemError

LIB = "lib_calib"


def rel(kind: str, month: str | None, name: str) -> Path:
    return Path(LIB) / kind / month / name if month else Path(LIB) / kind / name


def find(run_dir: Path, settings, kind: str, date: str, name: str, monthly: bool = True) -> Path:
    roots = [Path(run_dir) / LIB]
    if settings.calib_library is not None:
        roots.append(Path(settings.calib_library))
    want = date[:6]
    for root in roots:
        base = root / kind
        if not monthly:
            if (base / name).exists():
                return base / name
            continue
        months = sorted((p.name for p in base.glob("[0-9]" * 6) if (p / name).exists()), reverse=True)
        for m in months:
            if m <= want:
                return base / m / name
        if months:
            return base / months[-1] / name
    raise ItemError(f"no {kind} calibration {name} for {date} in {' or '.join(map(str, roots))}")
